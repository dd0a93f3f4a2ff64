"""Decompress a capture on its way into the reader: gzip, xz, bzip2 and zstd.

Why: captures are archived compressed (``tcpdump -w - | zstd``, logrotate's xz, a
sensor's gzip rings), and an analyst should not have to unpack gigabytes to disk first;
Wireshark reads such files directly too. The format is known by its magic bytes, never
by the file name.

Why not :func:`gzip.open`, :func:`lzma.open` or :func:`bz2.open`: they raise on a truncated
or corrupt stream and drop what they decoded in that call. Driving the decompressor
objects directly keeps every byte before the damage and records the problem in
:attr:`DecompressedSource.error`, so the reader still yields every complete packet before
it. Several streams one after another (``cat a.gz b.gz``, pbzip2's blocks, zstd's frames,
xz's padding between streams) decode as one capture, as the command-line tools do.
"""

from __future__ import annotations

import bz2
import lzma
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # the same module, backported by its CPython authors
    from backports import zstd

__all__ = [
    "CODECS",
    "INPUT_CHUNK",
    "NAMES",
    "OUTPUT_CHUNK",
    "XZ_MEMORY_LIMIT",
    "Codec",
    "DecompressedSource",
    "codec_for",
    "decompressed_head",
    "zstd",  # the module this Python has (for tests and the fuzz target to compress with)
]

INPUT_CHUNK = 1024 * 1024
"""Compressed bytes read at a time."""

XZ_MEMORY_LIMIT = 256 * 1024 * 1024
"""The most an xz stream may make liblzma allocate (its header names a dictionary of up to
4 GiB; unlimited by default). ``xz -9e`` needs 65 MiB; zstd's decoder has its own limit
(a 128 MiB window), gzip's and bzip2's needs are small and fixed."""

OUTPUT_CHUNK = 64 * 1024
"""Most bytes one decompressor call may return. A call that meets a failed check (gzip's
CRC at the end of a member, xz's and zstd's checksums, bzip2's stream CRC) raises and
returns nothing, so this is all that a check failing can take from what was decoded."""


class _Decompressor(Protocol):
    """The interface :mod:`lzma`, :mod:`bz2` and :mod:`zstd` decompressors share."""

    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Gzip:
    """:func:`zlib.decompressobj` behind the interface the others share: zlib hands back
    the input it did not reach (``unconsumed_tail``) where they keep it themselves."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(31)
        self._tail = b""

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def needs_input(self) -> bool:
        return not self._tail

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._d.decompress(self._tail + data, max(max_length, 0))
        self._tail = b"" if self._d.eof else self._d.unconsumed_tail
        return out


def _zstd_frame(data: bytes) -> bool:
    """A zstd frame or a skippable frame (magic 0x184D2A50-5F, little-endian) starts here."""
    return data.startswith(b"\x28\xb5\x2f\xfd") or (
        len(data) >= 4 and data[1:4] == b"\x2a\x4d\x18" and data[0] & 0xF0 == 0x50
    )


@dataclass(frozen=True, slots=True)
class Codec:
    """One compressed format: its name (the reader's ``file_format`` suffix), how a stream
    of it starts, a fresh decompressor, and what its decompressor raises on bad data."""

    name: str
    starts: Callable[[bytes], bool]
    new: Callable[[], _Decompressor]
    errors: tuple[type[Exception], ...]


CODECS = (
    Codec("gzip", lambda b: b.startswith(b"\x1f\x8b"), _Gzip, (zlib.error,)),
    Codec(
        "xz",
        lambda b: b.startswith(b"\xfd7zXZ"[:4]),
        lambda: lzma.LZMADecompressor(memlimit=XZ_MEMORY_LIMIT),
        (lzma.LZMAError,),
    ),
    Codec("bzip2", lambda b: b.startswith(b"BZh"), bz2.BZ2Decompressor, (OSError, ValueError)),
    Codec("zstd", _zstd_frame, zstd.ZstdDecompressor, (zstd.ZstdError,)),
)
NAMES = ", ".join(c.name for c in CODECS)
"""The formats read, for messages: ``gzip, xz, bzip2, zstd``."""


def codec_for(head: bytes) -> Codec | None:
    """The format ``head`` (a file's first bytes) starts, or None: not compressed."""
    return next((c for c in CODECS if c.starts(head)), None)


class DecompressedSource:
    """Decompressed bytes of a compressed file, read with ``readinto`` (what the reader's
    sources offer); ``error`` says why decoding stopped before the end, if it did."""

    def __init__(self, f: BinaryIO, prefix: bytes, codec: Codec) -> None:
        self._f = f
        self._codec = codec
        self._d = codec.new()
        self._inp = prefix
        self._done = False
        self.error: str | None = None
        self.consumed = len(prefix)  # compressed bytes taken from the file (progress against its size)

    def _read(self, n: int) -> bytes:
        data = self._f.read(n)
        self.consumed += len(data)
        return data

    def _stop(self, why: str) -> None:
        self.error = why
        self._done = True

    def _next_stream(self) -> bool:
        """After a stream's end: start the next one, or end quietly at the end of the file
        (zero padding tolerated, as gzip and xz write it)."""
        rest = self._d.unused_data or self._inp
        while True:
            rest = rest.lstrip(b"\x00")
            if rest:
                break
            rest = self._read(INPUT_CHUNK)
            if not rest:
                self._done = True
                return False
        name = self._codec.name
        if len(rest) < 4:
            rest += self._read(4)
        if not self._codec.starts(rest):
            self._stop(f"data after the last {name} stream is not {name}")
            return False
        self._d = self._codec.new()
        self._inp = rest
        return True

    def readinto(self, view: memoryview) -> int:
        n = 0
        want = len(view)
        while n < want and not self._done:
            if self._d.eof and not self._next_stream():
                break
            if self._d.needs_input and not self._inp:
                self._inp = self._read(INPUT_CHUNK)
                if not self._inp:
                    self._stop(f"{self._codec.name} stream ends before its end marker (truncated)")
                    break
            try:
                chunk = self._d.decompress(self._inp, min(want - n, OUTPUT_CHUNK))
            except self._codec.errors as exc:
                self._stop(f"{self._codec.name} data cannot be decoded ({exc})")
                break
            self._inp = b""
            view[n : n + len(chunk)] = chunk
            n += len(chunk)
        return n

    def close(self) -> None:
        self._f.close()


def decompressed_head(f: BinaryIO, size: int) -> bytes:
    """Up to ``size`` first bytes of ``f``, decompressed when ``f`` is compressed (what
    finding captures by their magic needs); empty when the data is no good."""
    head = f.read(4)
    codec = codec_for(head)
    if codec is None:
        return head[:size]
    buf = bytearray(size)
    got = DecompressedSource(f, head, codec).readinto(memoryview(buf))  # (short only at the end)
    return bytes(buf[:got])
