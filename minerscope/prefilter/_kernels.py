# mypy: disable-error-code="no-untyped-def"
"""Compiled scans of stage 0 over every flow's payload prefixes at once.

Why: most plaintext flows are ruled out as Stratum by one question, whether any line of
either direction starts with ``{`` (``stratum.LINE_BRACE``). Asked per flow from Python
it cost a call, two ``bytes`` objects and two regex scans per flow; here it is one pass
over the :class:`~minerscope.flows.prefixes.PayloadPrefixes` buffer that jumps from
newline to newline (:mod:`minerscope.bytescan`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from minerscope.bytescan import find_byte

_NL = 0x0A
_BRACE = 0x7B


@njit(cache=True, inline="always")
def _blank(x):  # pragma: no cover - compiled
    """The whitespace ``LINE_BRACE`` skips after a newline: space, tab, CR, VT, FF (not LF)."""
    return x == 0x20 or x == 0x09 or x == 0x0D or x == 0x0B or x == 0x0C


@njit(cache=True, inline="always")
def _has_line_brace(data, p, end):  # pragma: no cover - compiled
    while True:
        p = find_byte(data, p, end, _NL)
        if p >= end:
            return False
        p += 1
        while p < end and _blank(data[p]):
            p += 1
        if p < end and data[p] == _BRACE:
            return True


@njit(cache=True)
def line_brace(data, spans, rows):  # pragma: no cover - compiled
    """Per row of ``rows``, whether ``rb"\\n[ \\t\\r\\x0b\\x0c]*\\{"`` matches in its
    client->server or its server->client bytes (``spans``: offset and length of each)."""
    out = np.zeros(rows.shape[0], np.bool_)
    for j in range(rows.shape[0]):
        i = rows[j]
        out[j] = _has_line_brace(data, spans[i, 0], spans[i, 0] + spans[i, 1]) or _has_line_brace(
            data, spans[i, 2], spans[i, 2] + spans[i, 3]
        )
    return out
