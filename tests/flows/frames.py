"""Test helper: real frames built with scapy, decoded into PACKET_DTYPE rows.

Used before (and alongside) the pcap reader: each frame's bytes are real Ethernet/IP/TCP
or UDP bytes, and the row fields are read back from those bytes by scapy's dissector,
so the assembler sees what a reader would produce. Also writes the same frames as a
classic pcap file so tshark can be asked about them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet

from minerscope.capture.packets import PACKET_DTYPE, PacketBatch, parse_ip

Frame = tuple[float, Packet]


def tcp(
    t: float,
    src: str,
    sport: int,
    dst: str,
    dport: int,
    flags: str,
    seq: int = 0,
    ack: int = 0,
    payload: bytes = b"",
) -> Frame:
    """One Ethernet/IPv4|IPv6/TCP frame at time ``t``."""
    l3 = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return t, Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3 / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack
    ) / payload


def udp(t: float, src: str, sport: int, dst: str, dport: int, payload: bytes = b"") -> Frame:
    """One Ethernet/IPv4|IPv6/UDP frame at time ``t``."""
    l3 = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return t, Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3 / UDP(
        sport=sport, dport=dport
    ) / payload


def tcp_session(
    t0: float,
    client: tuple[str, int],
    server: tuple[str, int],
    exchanges: list[tuple[int, bytes]],
    *,
    gap: float = 0.01,
    close: str = "fin",
    mss: int = 1400,
) -> list[Frame]:
    """A complete TCP session: handshake, each (direction, bytes) segmented at ``mss``, close.

    Args:
        exchanges: (0 = client->server, 1 = server->client, data).
        close: ``fin`` (both sides), ``rst`` (client resets) or ``none``.
    """
    (c, cp), (s, sp) = client, server
    cseq, sseq = 1000, 5000
    frames = [
        tcp(t0, c, cp, s, sp, "S", cseq),
        tcp(t0 + gap / 10, s, sp, c, cp, "SA", sseq, cseq + 1),
        tcp(t0 + gap / 5, c, cp, s, sp, "A", cseq + 1, sseq + 1),
    ]
    cseq += 1
    sseq += 1
    t = t0 + gap
    for direction, data in exchanges:
        for i in range(0, len(data), mss):
            chunk = data[i : i + mss]
            if direction == 0:
                frames.append(tcp(t, c, cp, s, sp, "PA", cseq, sseq, chunk))
                cseq += len(chunk)
            else:
                frames.append(tcp(t, s, sp, c, cp, "PA", sseq, cseq, chunk))
                sseq += len(chunk)
            t += gap
    if close == "fin":
        frames += [
            tcp(t, c, cp, s, sp, "FA", cseq, sseq),
            tcp(t + gap / 10, s, sp, c, cp, "FA", sseq, cseq + 1),
            tcp(t + gap / 5, c, cp, s, sp, "A", cseq + 1, sseq + 1),
        ]
    elif close == "rst":
        frames.append(tcp(t, c, cp, s, sp, "R", cseq, 0))
    return frames


def to_batch(frames: list[Frame], source: str = "test.pcap") -> PacketBatch:
    """Decode frames into a PacketBatch (rows in the given order)."""
    rows = np.zeros(len(frames), dtype=PACKET_DTYPE)
    data = bytearray()
    for i, (t, frame) in enumerate(frames):
        raw = bytes(frame)
        pkt = Ether(raw)
        row = rows[i]
        row["ts_ns"] = round(t * 1e9)
        row["wire_len"] = row["cap_len"] = len(raw)
        row["linktype"] = 1
        if pkt.haslayer(Dot1Q):
            row["vlan"] = pkt[Dot1Q].vlan
        l3 = pkt[IP] if pkt.haslayer(IP) else pkt[IPv6] if pkt.haslayer(IPv6) else None
        if l3 is None:
            continue
        row["ip_version"] = l3.version
        row["proto"] = l3.proto if l3.version == 4 else l3.nh
        row["src_hi"], row["src_lo"] = parse_ip(l3.src)
        row["dst_hi"], row["dst_lo"] = parse_ip(l3.dst)
        l4 = pkt[TCP] if pkt.haslayer(TCP) else pkt[UDP] if pkt.haslayer(UDP) else None
        if l4 is None:
            continue
        payload = bytes(l4.payload)
        row["sport"], row["dport"] = l4.sport, l4.dport
        if isinstance(l4, TCP):
            row["seq"], row["ack"] = l4.seq, l4.ack
            row["tcp_flags"] = int(l4.flags)
        row["payload_off"] = len(data) + len(raw) - len(payload)
        row["payload_len"] = row["payload_cap"] = len(payload)
        data += raw
    return PacketBatch(packets=rows, data=np.frombuffer(bytes(data), dtype=np.uint8), source=source)


def write_pcap(frames: list[Frame], path: Path) -> Path:
    """Write frames as a classic microsecond pcap (Ethernet), for tshark."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for t, frame in frames:
        raw = bytes(frame)
        sec = int(t)
        usec = round((t - sec) * 1e6)
        out += struct.pack("<IIII", sec, usec, len(raw), len(raw)) + raw
    path.write_bytes(bytes(out))
    return path


USB_LINUX = 189


def write_pcapng_with_usb(path: Path) -> Path:
    """One TCP session to 203.0.113.9:443 on an Ethernet interface, and one packet on a
    second interface of a link type the reader does not decode (USB_LINUX): a whole
    capture that still leaves a packet out."""
    from minerscope.capture.writer import PcapngWriter

    frames = tcp_session(100.0, ("10.9.0.2", 50123), ("203.0.113.9", 443), [(0, b"hello"), (1, b"world")])
    with PcapngWriter(path) as w:
        eth, usb = w.add_interface(1), w.add_interface(USB_LINUX)
        for t, frame in frames:
            w.write_packet(eth, round(t * 1e9), bytes(frame))
        w.write_packet(usb, round(101.0 * 1e9), bytes(64))
    return path
