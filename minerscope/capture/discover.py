"""Expands the paths a user gives (files and directories) into capture files, by magic bytes.

A directory of incident data holds captures named anything (``.pcap``, ``.cap``,
``.dmp``, no extension, compressed), next to notes and logs. Like the reader, this
never trusts a file name: it opens each file and looks at the first bytes.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from minerscope.capture import compressed
from minerscope.errors import InputError

STDIN = Path("/dev/stdin")
"""Where ``-`` on a command line reads from."""

_MAGICS = (
    b"\xd4\xc3\xb2\xa1",  # pcap, little-endian, microseconds
    b"\xa1\xb2\xc3\xd4",  # pcap, big-endian, microseconds
    b"\x4d\x3c\xb2\xa1",  # pcap, little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d",  # pcap, big-endian, nanoseconds
    b"\x0a\x0d\x0d\x0a",  # pcapng section header block
)


def looks_like_capture(path: Path) -> bool:
    """True when ``path`` starts with a pcap/pcapng magic (also inside gzip, xz, bzip2, zstd)."""
    try:
        with path.open("rb") as fh:
            head = compressed.decompressed_head(fh, 4)
    except OSError:
        return False
    return head in _MAGICS


def is_stream(path: Path) -> bool:
    """True when ``path``'s bytes can be read only once: standard input (``-``), a pipe, a
    FIFO, ``<(...)``, a terminal (not a regular file or a directory, and not a path that
    does not exist).

    Standard input counts even when a regular file is redirected into it: another process
    cannot read it, and where ``/dev/stdin`` duplicates the descriptor (macOS) a second
    reader would share, and move, its offset.
    """
    if path == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def require_piped_stdin(command: str) -> None:
    """Refuse standard input as a capture when nothing is piped into it (a terminal: the
    read would wait for typing); ``command`` is how the user named it, e.g. ``scan -``.

    Raises:
        InputError: standard input is a terminal or closed.
    """
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            f"{command.rpartition(' ')[2]}: standard input is a terminal; pipe a capture into it, "
            f"e.g. ssh SENSOR tcpdump -U -w - | minerscope {command}"
        )


def expand_captures(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield the given files as they are, and the captures found under given directories.

    Files named explicitly are yielded even when they do not look like captures, so the
    reader reports *why* (one clear error) instead of the file vanishing silently.
    Directories are walked in sorted order, so runs are reproducible.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if looks_like_capture(child):
                    yield child
        else:
            yield path
