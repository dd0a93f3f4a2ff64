"""A slow, obviously-correct walk over *valid* pcap/pcapng files: the reader's oracle.

It only needs to be right for files the real reader accepted as complete, so it checks
nothing; it reports where each record/block ends and whether it carries a packet, which
is all the truncation property needs ("a capture cut at byte k yields exactly the
packets whose records end at or before k"). The corpus builder also uses it to pull
frames out of the bundled sample capture.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

PCAP_HEADER = 24
_PCAP_MAGICS = {  # first 4 bytes -> (byte order, record header bytes)
    b"\xd4\xc3\xb2\xa1": ("<", 16),
    b"\xa1\xb2\xc3\xd4": (">", 16),
    b"\x4d\x3c\xb2\xa1": ("<", 16),
    b"\xa1\xb2\x3c\x4d": (">", 16),
    b"\x34\xcd\xb2\xa1": ("<", 24),
    b"\xa1\xb2\xcd\x34": (">", 24),
}
PACKET_BLOCKS = (2, 3, 6)


@dataclass(frozen=True, slots=True)
class Record:
    """One record (pcap) or block (pcapng): where it ends and, for packets, the frame."""

    end: int
    is_packet: bool
    linktype: int = -1
    frame: bytes = b""


def walk(data: bytes) -> Iterator[Record]:
    """Records of a valid capture, in file order (pcap global header / SHBs included as
    non-packet records so every boundary is listed)."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        yield from _walk_pcapng(data)
        return
    order, rec_hdr = _PCAP_MAGICS[data[:4]]
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x03FFFFFF
    yield Record(PCAP_HEADER, False)
    pos = PCAP_HEADER
    while pos + rec_hdr <= len(data):
        incl = struct.unpack(order + "I", data[pos + 8 : pos + 12])[0]
        end = pos + rec_hdr + incl
        if end > len(data):
            return
        yield Record(end, True, linktype, data[pos + rec_hdr : end])
        pos = end


def _walk_pcapng(data: bytes) -> Iterator[Record]:
    pos = 0
    order = "<"
    links: list[int] = []
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, blen = struct.unpack(order + "II", data[pos : pos + 8])
        end = pos + blen
        if end > len(data):
            return
        if btype == 1:
            links.append(struct.unpack(order + "H", data[pos + 8 : pos + 10])[0])
            yield Record(end, False)
        elif btype == 6 or btype == 2:
            iface = struct.unpack(
                order + ("I" if btype == 6 else "H"), data[pos + 8 : pos + (12 if btype == 6 else 10)]
            )[0]
            incl = struct.unpack(order + "I", data[pos + 20 : pos + 24])[0]
            yield Record(end, True, links[iface], data[pos + 28 : pos + 28 + incl])
        elif btype == 3:
            orig = struct.unpack(order + "I", data[pos + 8 : pos + 12])[0]
            incl = min(blen - 16, orig)
            yield Record(end, True, links[0], data[pos + 12 : pos + 12 + incl])
        else:
            yield Record(end, False)
        pos = end


def packet_ends(data: bytes) -> tuple[list[int], set[int]]:
    """(end offset of each packet record, every record boundary) of a valid capture."""
    ends: list[int] = []
    bounds: set[int] = set()
    for rec in walk(data):
        bounds.add(rec.end)
        if rec.is_packet:
            ends.append(rec.end)
    return ends, bounds
