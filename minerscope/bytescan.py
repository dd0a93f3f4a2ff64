# mypy: disable-error-code="no-untyped-def"
"""Byte search for compiled kernels: ``find_byte(data, p, end, byte)``.

Why: the prefix scans (a line starting with ``{`` for stage 0, a ``16 03`` record
header for handshake parsing) look for one byte that is rare in most payloads, across
~100 MB of prefixes on a busy capture. A loop that tests one byte per step and may stop
at any byte cannot be vectorised; testing a whole block for the byte without stopping
can (LLVM turns it into a few vector compares: 85 MB in 0.017 s instead of 0.07 s), so
the search skips the blocks that lack the byte and steps byte by byte only through the
block that has it.
"""

from __future__ import annotations

from numba import njit

BLOCK = 64
"""Bytes tested per step (two AVX2 registers; 32 was slower on payloads where the byte
sought is one in ~200)."""


@njit(cache=True, inline="always")
def find_byte(data, p, end, byte):  # pragma: no cover - compiled
    """The position of the first ``byte`` in ``data[p:end]`` (0 <= p, end <= len(data)), or ``end``."""
    while end - p >= BLOCK:
        # a slice, and a count rather than an early exit: only so does the test vectorise
        # (indexing ``data[p + k]`` keeps numba's negative-index fix-up in the loop)
        block = data[p : p + BLOCK]
        seen = 0
        for k in range(BLOCK):
            seen += block[k] == byte
        if seen:
            break
        p += BLOCK
    rest = data[p:end]
    for k in range(rest.shape[0]):
        if rest[k] == byte:
            return p + k
    return end
