"""The packet record every stage after the reader works on: one numpy structured dtype.

The reader never builds a Python object per packet. It decodes a block of the file into
a :class:`PacketBatch`: a structured array with one row per packet (:data:`PACKET_DTYPE`)
plus the raw bytes those rows point into, so a downstream stage that needs payload
bytes (TLS ClientHello, DNS answers, plaintext Stratum) slices ``data`` lazily and only
for the few packets it cares about.

Addresses are stored as two big-endian 64-bit halves of an IPv6 address; IPv4 is stored
IPv4-mapped (``::ffff:a.b.c.d``), so one code path handles both and sorting/grouping by
address is plain integer work. :func:`format_ip` turns halves back into text.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

PACKET_DTYPE = np.dtype(
    [
        ("ts_ns", "<i8"),  # capture time, nanoseconds since the Unix epoch
        ("wire_len", "<u4"),  # original length on the wire (pcap orig_len)
        ("cap_len", "<u4"),  # bytes captured
        ("ip_len", "<u4"),  # IP header + payload, from the IP header (0 when not IP)
        ("iface", "<u2"),  # pcapng interface id (0 for classic pcap)
        ("linktype", "<u2"),  # LINKTYPE_* of the interface
        ("ip_version", "u1"),  # 0 = not IP, 4, 6
        ("proto", "u1"),  # IP protocol / final IPv6 next header (6 TCP, 17 UDP, ...)
        ("frag", "u1"),  # 1 when the packet is an IP fragment (not reassembled)
        ("tcp_flags", "u1"),  # TCP flags byte (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ...)
        ("vlan", "<u2"),  # outermost 802.1Q VLAN id, 0 when untagged
        ("src_hi", "<u8"),  # source address, high 64 bits (big-endian interpretation)
        ("src_lo", "<u8"),  # source address, low 64 bits
        ("dst_hi", "<u8"),
        ("dst_lo", "<u8"),
        ("sport", "<u2"),  # 0 for non TCP/UDP
        ("dport", "<u2"),
        ("seq", "<u4"),  # TCP sequence number (0 for UDP)
        ("ack", "<u4"),  # TCP acknowledgement number
        ("payload_off", "<i8"),  # offset of the L4 payload inside PacketBatch.data
        ("payload_len", "<u4"),  # L4 payload length from the IP/TCP/UDP headers
        ("payload_cap", "<u4"),  # payload bytes actually present in the capture (<= payload_len)
    ]
)
"""One row per packet. Non-IP packets have ``ip_version == 0`` and zero addresses."""

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
PROTO_TCP, PROTO_UDP = 6, 17

IPV4_MAPPED_HI = 0
IPV4_MAPPED_LO_PREFIX = 0x0000FFFF00000000

PacketArray = npt.NDArray[np.void]


@dataclass(slots=True)
class PacketBatch:
    """A block of decoded packets and the bytes they point into.

    Attributes:
        packets: structured array of :data:`PACKET_DTYPE`, in file order.
        data: the raw bytes the ``payload_off`` fields index (uint8 array).
        source: the capture's file name (or interface), for messages.
    """

    packets: PacketArray
    data: npt.NDArray[np.uint8]
    source: str = ""

    def payload(self, index: int) -> bytes:
        """Return the captured L4 payload bytes of packet ``index``."""
        row = self.packets[index]
        off = int(row["payload_off"])
        return self.data[off : off + int(row["payload_cap"])].tobytes()


@dataclass(slots=True)
class ReadReport:
    """What reading one capture found: counts, and whether the file was complete.

    ``complete`` is False when damage stopped the reader early; ``damage_offset`` and
    ``warning`` then say where and why (one line, naming the file and byte offset).
    """

    path: str
    file_format: str = ""  # "pcap", "pcapng", plus "+gzip" when compressed
    bytes_read: int = 0  # of the file (a compressed file's compressed bytes: progress against its size)
    packets: int = 0  # packets delivered (kept by the capture filter, when there is one)
    filtered: int = 0  # packets the capture filter left out
    ip_packets: int = 0
    non_ip_packets: int = 0
    fragments: int = 0
    by_protocol: dict[int, int] = field(default_factory=dict)  # IP proto -> packet count
    linktypes: dict[int, int] = field(default_factory=dict)  # linktype -> packet count
    complete: bool = True
    damage_offset: int | None = None
    damage: str | None = None  # "damaged at byte N: why" (what the case file keeps), None if whole
    warning: str | None = None
    # a stream (pipe, FIFO, stdin) is hashed while it is read, as it cannot be read again:
    # SHA-256 and size of its raw bytes once it was read to the end (None for regular files)
    sha256: str | None = None
    size: int = 0
    # what the capturing system says it dropped, from pcapng Interface Statistics Blocks
    # (None: the capture says nothing), and what those interfaces received (None: unknown)
    capture_dropped: int | None = None
    capture_received: int | None = None


def format_ip(hi: int, lo: int) -> str:
    """Return the text form of an address stored as two 64-bit halves (IPv4-mapped -> IPv4)."""
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def parse_ip(text: str) -> tuple[int, int]:
    """Inverse of :func:`format_ip`: text address -> (hi, lo) halves."""
    addr = ipaddress.ip_address(text)
    if isinstance(addr, ipaddress.IPv4Address):
        return 0, IPV4_MAPPED_LO_PREFIX | int(addr)
    value = int(addr)
    return value >> 64, value & 0xFFFFFFFFFFFFFFFF
