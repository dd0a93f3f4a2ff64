"""Write classic pcap and pcapng files: the traffic lab's output and the reader's test oracle.

Tests and the lab need *real* capture bytes in every variant the reader accepts (both
byte orders, micro/nano/power-of-two timestamp resolutions, several pcapng sections and
interfaces with mixed link types, simple and obsolete packet blocks, unknown blocks,
gzip). Writing them here, with ``struct`` and nothing else, keeps them byte-exact and
independent of the reader (the reader is never used to produce its own test input).

Output is deterministic: no wall clock, host name or random value goes into a file (the
gzip header's mtime is 0 and it carries no file name), so the same packets always give
the same bytes and generated fixtures can be cached and compared.
"""

from __future__ import annotations

import gzip as _gzip
import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_OPB = 0x00000002  # obsolete Packet Block
PCAPNG_SPB = 0x00000003
PCAPNG_ISB = 0x00000005
PCAPNG_EPB = 0x00000006

_OPT_ENDOFOPT = 0
_OPT_IF_NAME = 2
_OPT_IF_TSRESOL = 9
_OPT_ISB_IFRECV, _OPT_ISB_IFDROP, _OPT_ISB_OSDROP = 4, 5, 7

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "PcapWriter",
    "PcapngWriter",
]


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def _ts_units(ts_ns: int, tsresol: int) -> int:
    """``ts_ns`` expressed in the units an ``if_tsresol`` byte declares (truncating)."""
    if tsresol & 0x80:
        return (ts_ns << (tsresol & 0x7F)) // 1_000_000_000
    if tsresol >= 9:
        return ts_ns * int(10 ** (tsresol - 9))
    return ts_ns // int(10 ** (9 - tsresol))


class _Sink:
    """Owns the output stream: a path we open (and close) or a caller's binary file object."""

    def __init__(self, target: str | Path | BinaryIO, gzip: bool) -> None:
        self._own: BinaryIO | None = None
        if isinstance(target, (str, Path)):
            self._own = open(target, "wb")  # noqa: SIM115 - closed in close()
            raw: BinaryIO = self._own
        else:
            raw = target
        self._raw = raw
        self._gz: _gzip.GzipFile | None = None
        if gzip:
            # filename="" and mtime=0: no name or wall clock in the gzip header.
            self._gz = _gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            self.out: BinaryIO = self._gz  # type: ignore[assignment]
        else:
            self.out = raw

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._gz = None
        if self._own is not None:
            self._own.close()
            self._own = None
        else:
            self._raw.flush()


class PcapngWriter:
    """Write a pcapng file: sections, interfaces, and packet blocks.

    A Section Header Block is written on construction; :meth:`new_section` starts
    another (interface ids restart at 0 in each section, as the format says).

    Args:
        target: a path, or a binary file object (left open on close).
        gzip: compress the whole output with gzip.
        big_endian: write the section(s) big-endian (readers must honour the byte-order magic).
    """

    def __init__(
        self, target: str | Path | BinaryIO, *, gzip: bool = False, big_endian: bool = False
    ) -> None:
        self._sink = _Sink(target, gzip)
        self._e = ">" if big_endian else "<"
        self._ifaces: list[tuple[int, int]] = []  # (linktype, tsresol byte)
        self.new_section()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close (the file object is closed only if we opened it)."""
        self._sink.close()

    def _block(self, block_type: int, body: bytes) -> None:
        body += b"\x00" * _pad4(len(body))
        total = len(body) + 12
        e = self._e
        self._sink.out.write(struct.pack(e + "II", block_type, total) + body + struct.pack(e + "I", total))

    def _options(self, options: list[tuple[int, bytes]]) -> bytes:
        if not options:
            return b""
        e = self._e
        out = bytearray()
        for code, value in options:
            out += struct.pack(e + "HH", code, len(value)) + value + b"\x00" * _pad4(len(value))
        out += struct.pack(e + "HH", _OPT_ENDOFOPT, 0)
        return bytes(out)

    def new_section(self) -> None:
        """Start a new section (SHB); interfaces added before it are no longer addressable."""
        self._ifaces = []
        body = struct.pack(self._e + "IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1)
        self._block(PCAPNG_SHB, body)

    def add_interface(
        self,
        linktype: int,
        *,
        snaplen: int = 262144,
        tsresol_ns: bool = True,
        name: str | None = None,
        tsresol: int | None = None,
    ) -> int:
        """Write an Interface Description Block and return its id within the section.

        Args:
            linktype: LINKTYPE_* of the interface.
            snaplen: the interface's snapshot length.
            tsresol_ns: declare nanosecond timestamps (``if_tsresol=9``); False keeps the
                format's default of microseconds (no option written).
            name: optional ``if_name``.
            tsresol: raw ``if_tsresol`` byte (overrides ``tsresol_ns``), e.g. ``0x80 | 20``
                for units of 2**-20 s.
        """
        options: list[tuple[int, bytes]] = []
        if name is not None:
            options.append((_OPT_IF_NAME, name.encode()))
        if tsresol is None:
            tsresol = 9 if tsresol_ns else 6
            if tsresol_ns:
                options.append((_OPT_IF_TSRESOL, bytes([9])))
        else:
            options.append((_OPT_IF_TSRESOL, bytes([tsresol])))
        body = struct.pack(self._e + "HHI", linktype, 0, snaplen) + self._options(options)
        self._block(PCAPNG_IDB, body)
        self._ifaces.append((linktype, tsresol))
        return len(self._ifaces) - 1

    def _check_iface(self, iface: int) -> int:
        if not 0 <= iface < len(self._ifaces):
            raise ValueError(f"interface {iface} was not added in this section")
        return self._ifaces[iface][1]

    def write_packet(self, iface: int, ts_ns: int, frame: bytes, orig_len: int | None = None) -> None:
        """Write an Enhanced Packet Block."""
        units = _ts_units(ts_ns, self._check_iface(iface))
        orig = len(frame) if orig_len is None else orig_len
        head = struct.pack(self._e + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(frame), orig)
        self._block(PCAPNG_EPB, head + frame)

    def write_simple_packet(self, frame: bytes, orig_len: int | None = None) -> None:
        """Write a Simple Packet Block (interface 0, no timestamp)."""
        self._check_iface(0)
        orig = len(frame) if orig_len is None else orig_len
        self._block(PCAPNG_SPB, struct.pack(self._e + "I", orig) + frame)

    def write_obsolete_packet(
        self, iface: int, ts_ns: int, frame: bytes, orig_len: int | None = None
    ) -> None:
        """Write an obsolete Packet Block (type 2), still found in old captures."""
        units = _ts_units(ts_ns, self._check_iface(iface))
        orig = len(frame) if orig_len is None else orig_len
        head = struct.pack(self._e + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF, len(frame), orig)
        self._block(PCAPNG_OPB, head + frame)

    def write_statistics(
        self,
        iface: int,
        ts_ns: int,
        *,
        received: int | None = None,
        dropped: int | None = None,
        os_dropped: int | None = None,
    ) -> None:
        """Write an Interface Statistics Block: the interface's counters since the capture
        began (``isb_ifrecv``, ``isb_ifdrop``, ``isb_osdrop``; None leaves one out)."""
        units = _ts_units(ts_ns, self._check_iface(iface))
        counters = ((_OPT_ISB_IFRECV, received), (_OPT_ISB_IFDROP, dropped), (_OPT_ISB_OSDROP, os_dropped))
        options = [(code, struct.pack(self._e + "Q", v)) for code, v in counters if v is not None]
        head = struct.pack(self._e + "III", iface, units >> 32, units & 0xFFFFFFFF)
        self._block(PCAPNG_ISB, head + self._options(options))

    def write_block(self, block_type: int, body: bytes) -> None:
        """Write an arbitrary block (e.g. a custom or unknown block type readers must skip)."""
        self._block(block_type, body)


class PcapWriter:
    """Write a classic libpcap file.

    Args:
        target: a path, or a binary file object (left open on close).
        linktype: LINKTYPE_* in the global header.
        nanosecond: use the nanosecond magic (0xa1b23c4d) instead of microseconds.
        big_endian: write a big-endian file.
        gzip: compress the whole output with gzip.
        snaplen: the global header's snapshot length.
    """

    def __init__(
        self,
        target: str | Path | BinaryIO,
        linktype: int = LINKTYPE_ETHERNET,
        *,
        nanosecond: bool = False,
        big_endian: bool = False,
        gzip: bool = False,
        snaplen: int = 262144,
    ) -> None:
        self._sink = _Sink(target, gzip)
        self._e = ">" if big_endian else "<"
        self._ns = nanosecond
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        self._sink.out.write(struct.pack(self._e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._rec = struct.Struct(self._e + "IIII")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close (the file object is closed only if we opened it)."""
        self._sink.close()

    def write_packet(self, ts_ns: int, frame: bytes, orig_len: int | None = None) -> None:
        """Write one record; the timestamp is truncated to the file's resolution."""
        sec, frac = divmod(ts_ns, 1_000_000_000)
        if not self._ns:
            frac //= 1000
        orig = len(frame) if orig_len is None else orig_len
        self._sink.out.write(self._rec.pack(sec, frac, len(frame), orig) + frame)
