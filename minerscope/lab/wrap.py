"""``minerscope lab wrap-tls``: a real plaintext session as it would look under TLS.

Why: every public mining capture is plaintext Stratum, while the traffic minerscope must
judge is encrypted. Re-wrapping a real session keeps what is real about it (timing,
direction, message boundaries, the other side's ACK behaviour) and adds exactly what TLS
adds: a genuine handshake at the connection start and genuine record framing of every
application message (each message is passed through a real ``SSLObject.write``; see
:mod:`minerscope.lab.tls`).

How, per TCP connection (other packets pass through untouched):

* each direction's payload is cut into *write groups*: consecutive data segments up to
  one that ends a line (``\\n``) or carries PSH; a group's lines are the messages, each
  wrapped into its own TLS record(s), and the group's new bytes are spread over the
  group's original segments (same times, same packet count unless the MSS overflows);
* the TLS handshake flights are inserted after the TCP handshake, one measured RTT
  apart; if that pushes past the first message, the rest of the connection is shifted by
  the same amount, so every inter-arrival time after the handshake is unchanged;
* sequence and acknowledgement numbers are renumbered consistently: a pure ACK that
  acknowledged byte ``a`` of the old stream acknowledges the matching byte of the new one.
Frames keep their original link, IP and TCP headers (options, window, TTL, MACs); only
lengths, checksums of IPv4 headers, seq/ack and payloads change.
"""

from __future__ import annotations

import bisect
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

from minerscope.errors import CaptureError
from minerscope.lab.tls import TLS13, CertStore, TlsSession


@dataclass
class WrapReport:
    flows: int = 0
    messages: int = 0
    packets_in: int = 0
    packets_out: int = 0
    shifted_s: list[float] = field(default_factory=list)


@dataclass
class _Pkt:
    ts: int
    frame: bytes
    l3: int  # offset of the IP header
    l4: int  # offset of the TCP header
    v6: bool
    payload_off: int
    seq: int
    ack: int
    flags: int
    key: tuple[bytes, int, bytes, int]
    direction: int = 0


def _read(path: Path) -> tuple[int, list[tuple[int, bytes]]]:
    """Read all frames of a pcap/pcapng file (scapy's raw readers) as ``(ts_ns, frame)``."""
    from scapy.utils import RawPcapNgReader, RawPcapReader

    head = path.read_bytes()[:4]
    if len(head) < 4:
        raise CaptureError("file too short to be a capture", path=str(path), offset=0)
    is_ng = head == b"\x0a\x0d\x0d\x0a"
    if not is_ng and head not in (
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\x3c\x4d",
    ):
        raise CaptureError(f"not a pcap or pcapng file (magic {head.hex()})", path=str(path), offset=0)
    frames: list[tuple[int, bytes]] = []
    reader = RawPcapNgReader(str(path)) if is_ng else RawPcapReader(str(path))
    try:
        # pcapng readers carry the link type per packet (per interface), not per file
        linktype = int(getattr(reader, "linktype", -1))
        for data, meta in reader:
            if is_ng:
                if linktype < 0:
                    linktype = int(getattr(meta, "linktype", 1))
                high, low, resol = (int(getattr(meta, a)) for a in ("tshigh", "tslow", "tsresol"))
                ts = ((high << 32) | low) * 1_000_000_000 // resol
            else:
                frac = 1000 if head in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1
                ts = meta.sec * 1_000_000_000 + meta.usec * (1 if frac == 1000 else 1000)
            frames.append((int(ts), bytes(data)))
    finally:
        reader.close()
    return linktype, frames


def _parse(ts: int, frame: bytes, linktype: int) -> _Pkt | None:
    if linktype == 1:
        off = 12
        etype = struct.unpack_from("!H", frame, off)[0] if len(frame) >= 14 else 0
        off = 14
        while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            etype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
    elif linktype == 101:
        off = 0
        etype = 0x0800 if frame and frame[0] >> 4 == 4 else 0x86DD
    else:
        return None
    if etype == 0x0800 and len(frame) >= off + 20:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 6 or struct.unpack_from("!H", frame, off + 6)[0] & 0x3FFF:
            return None
        total = struct.unpack_from("!H", frame, off + 2)[0]
        src, dst = frame[off + 12 : off + 16], frame[off + 16 : off + 20]
        l4, end, v6 = off + ihl, off + total, False
    elif etype == 0x86DD and len(frame) >= off + 40:
        if frame[off + 6] != 6:
            return None
        plen = struct.unpack_from("!H", frame, off + 4)[0]
        src, dst = frame[off + 8 : off + 24], frame[off + 24 : off + 40]
        l4, end, v6 = off + 40, off + 40 + plen, True
    else:
        return None
    if len(frame) < l4 + 20:
        return None
    sport, dport, seq, ack, doff, flags = struct.unpack_from("!HHIIBB", frame, l4)
    poff = l4 + (doff >> 4) * 4
    frame = frame[: max(end, poff)]
    return _Pkt(ts, frame, off, l4, v6, poff, seq, ack, flags, (src, sport, dst, dport))


def _rebuild(p: _Pkt, seq: int, ack: int, payload: bytes, flags: int | None = None) -> bytes:
    hdr = bytearray(p.frame[: p.payload_off])
    struct.pack_into("!II", hdr, p.l4 + 4, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF)
    if flags is not None:
        hdr[p.l4 + 13] = flags
    l4len = len(hdr) - p.l4 + len(payload)
    if p.v6:
        struct.pack_into("!H", hdr, p.l3 + 4, l4len)
    else:
        ihl = p.l4 - p.l3
        struct.pack_into("!H", hdr, p.l3 + 2, ihl + l4len)
        struct.pack_into("!H", hdr, p.l3 + 10, 0)
        s = sum(struct.unpack_from(f"!{ihl // 2}H", hdr, p.l3))
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        struct.pack_into("!H", hdr, p.l3 + 10, ~s & 0xFFFF)
    struct.pack_into("!H", hdr, p.l4 + 16, 0)  # TCP checksum: not recomputed (zero, as offloaded)
    return bytes(hdr) + payload


class _Direction:
    """Old-to-new stream offset map for one direction of one connection."""

    def __init__(self) -> None:
        self.old_ends: list[int] = [0]
        self.new_ends: list[int] = [0]

    def add(self, old_end: int, new_end: int) -> None:
        self.old_ends.append(old_end)
        self.new_ends.append(new_end)

    def map(self, old: int) -> int:
        i = bisect.bisect_right(self.old_ends, old) - 1
        base_old, base_new = self.old_ends[i], self.new_ends[i]
        if i + 1 < len(self.old_ends):
            return min(base_new + (old - base_old), self.new_ends[i + 1])
        return base_new + (old - base_old)


def _wrap_connection(
    pkts: list[_Pkt], rng: random.Random, certs: CertStore, version: str, sni: str
) -> tuple[list[tuple[int, bytes]], int, float]:
    first = pkts[0]
    syn = next((p for p in pkts if p.flags & 0x02 and not p.flags & 0x10), None)
    client_key = (
        syn.key
        if syn
        else (
            first.key
            if first.key[1] >= first.key[3]
            else (first.key[2], first.key[3], first.key[0], first.key[1])
        )
    )
    for p in pkts:
        p.direction = 0 if p.key == client_key else 1
    isn = [0, 0]
    for d in (0, 1):
        dp = [p for p in pkts if p.direction == d]
        isn[d] = (dp[0].seq + (1 if dp[0].flags & 0x02 else 0)) if dp else 0
    synack = next((p for p in pkts if p.flags & 0x12 == 0x12), None)
    rtt = (synack.ts - syn.ts) if syn and synack else 50_000_000
    rtt = max(rtt, 100_000)

    # write groups per direction
    data = [p for p in pkts if len(p.frame) > p.payload_off]
    seen: list[set[int]] = [set(), set()]
    groups: list[tuple[int, list[_Pkt], bytes]] = []  # (direction, segments, bytes)
    open_group: list[tuple[list[_Pkt], bytearray]] = [([], bytearray()), ([], bytearray())]
    for p in data:
        rel = (p.seq - isn[p.direction]) & 0xFFFFFFFF
        if rel in seen[p.direction]:
            continue  # a retransmission: the stream already has these bytes
        seen[p.direction].add(rel)
        segs, buf = open_group[p.direction]
        payload = p.frame[p.payload_off :]
        segs.append(p)
        buf += payload
        if payload.endswith(b"\n") or (p.flags & 0x08 and bytes(buf.lstrip()[:1]) not in (b"{", b"[")):
            groups.append((p.direction, segs, bytes(buf)))
            open_group[p.direction] = ([], bytearray())
    for d in (0, 1):
        segs, buf = open_group[d]
        if segs:
            groups.append((d, segs, bytes(buf)))
    groups.sort(key=lambda g: g[1][0].ts)

    tls = TlsSession(certs, rng, sni or "pool.invalid", version=version, sni=bool(sni))
    flights = tls.handshake()
    hs_start = (max(p.ts for p in pkts if p.flags & 0x02) + rtt // 2) if syn else first.ts
    hs_end = hs_start + rtt * (len(flights) // 2 + 1)
    first_data = groups[0][1][0].ts if groups else hs_end
    shift = max(0, hs_end - first_data + 200_000)

    maps = [_Direction(), _Direction()]
    new_off = [0, 0]
    out: list[tuple[int, bytes]] = []
    template = [next((p for p in pkts if p.direction == d and not p.flags & 0x02), None) for d in (0, 1)]
    # handshake flights
    t = hs_start
    for d, flight in flights:
        tp = template[d]
        if tp is None:
            continue
        mss = 1448
        for i in range(0, len(flight), mss):
            chunk = flight[i : i + mss]
            out.append((t, _rebuild(tp, isn[d] + new_off[d], isn[1 - d] + new_off[1 - d], chunk, 0x18)))
            new_off[d] += len(chunk)
        t += rtt // 2
    base = [new_off[0], new_off[1]]
    maps[0].add(0, base[0])
    maps[1].add(0, base[1])
    # application groups
    old_off = [0, 0]
    messages = 0
    seg_out: dict[int, bytes] = {}
    seg_seq: dict[int, int] = {}
    for d, gsegs, gbuf in groups:
        lines: list[bytes] = gbuf.splitlines(keepends=True) or [gbuf]
        records = b"".join(tls.wrap(d, ln) for ln in lines)
        messages += len(lines)
        mss = max(max(len(s.frame) - s.payload_off for s in gsegs), 536)
        n = len(gsegs)
        per = max(1, -(-len(records) // n))
        pos = 0
        for i, s in enumerate(gsegs):
            take = min(per, mss) if i < n - 1 else len(records) - pos
            chunk = records[pos : pos + take]
            seg_out[id(s)] = chunk
            seg_seq[id(s)] = new_off[d]
            new_off[d] += len(chunk)
            pos += len(chunk)
        old_off[d] += len(gbuf)
        maps[d].add(old_off[d], new_off[d])

    for p in pkts:
        d = p.direction
        ts = p.ts + (shift if p.ts >= first_data else 0)
        ack_old = (p.ack - isn[1 - d]) & 0xFFFFFFFF
        ack = isn[1 - d] + maps[1 - d].map(ack_old) if p.flags & 0x10 else p.ack
        if p.flags & 0x02 or (p.ts < hs_start and len(p.frame) <= p.payload_off):
            out.append((ts, p.frame))  # TCP handshake: unchanged
            continue
        if id(p) in seg_out:
            chunk = seg_out[id(p)]
            mss = max(len(p.frame) - p.payload_off, 536)
            seq0 = isn[d] + seg_seq[id(p)]
            for i in range(0, max(len(chunk), 1), mss):
                out.append((ts + i // mss * 1000, _rebuild(p, seq0 + i, ack, chunk[i : i + mss])))
            continue
        if len(p.frame) > p.payload_off:
            # a retransmission: resend the new bytes at the mapped position (one segment)
            rel = (p.seq - isn[d]) & 0xFFFFFFFF
            start = maps[d].map(rel)
            out.append(
                (
                    ts,
                    _rebuild(
                        p, isn[d] + start, ack, rng.randbytes(min(len(p.frame) - p.payload_off + 22, 1448))
                    ),
                )
            )
            continue
        seq_old = (p.seq - isn[d]) & 0xFFFFFFFF
        out.append((ts, _rebuild(p, isn[d] + maps[d].map(seq_old), ack, b"")))
    return out, messages, shift / 1e9


def wrap_tls(src: Path, dst: Path, *, seed: int = 1, version: str = TLS13, sni: str = "") -> WrapReport:
    """Rewrite every TCP connection of ``src`` under real TLS into ``dst`` (pcapng).

    Raises:
        CaptureError: ``src`` cannot be read or has a link type other than Ethernet/raw IP.
        InputError: ``dst`` cannot be written (named; its folder is checked first).
    """
    from minerscope.capture.writer import PcapngWriter
    from minerscope.lab.output import check_parent, writing

    check_parent(dst)
    linktype, frames = _read(src)
    if linktype not in (1, 101):
        raise CaptureError(
            f"link type {linktype} not supported by wrap-tls (Ethernet or raw IP only)", path=str(src)
        )
    report = WrapReport(packets_in=len(frames))
    conns: dict[tuple[bytes, int, bytes, int, int], list[_Pkt]] = {}
    generation: dict[tuple[bytes, int, bytes, int], int] = {}
    passthrough: list[tuple[int, bytes]] = []
    for ts, frame in frames:
        p = _parse(ts, frame, linktype)
        if p is None:
            passthrough.append((ts, frame))
            continue
        a, b = (p.key[0], p.key[1]), (p.key[2], p.key[3])
        canon = (a[0], a[1], b[0], b[1]) if a <= b else (b[0], b[1], a[0], a[1])
        gen = generation.setdefault(canon, 0)
        lst = conns.setdefault(canon + (gen,), [])
        if (
            p.flags & 0x02
            and not p.flags & 0x10
            and lst
            and any(len(q.frame) > q.payload_off or q.flags & 0x05 for q in lst)
        ):
            # port reuse: a new SYN after the old connection carried data or closed
            generation[canon] = gen + 1
            lst = conns.setdefault(canon + (gen + 1,), [])
        lst.append(p)
    certs = CertStore(seed)
    out = list(passthrough)
    try:
        for index, pkts in enumerate(conns.values()):
            rng = random.Random(f"wrap:{seed}:{index}")
            if not any(len(p.frame) > p.payload_off for p in pkts):
                out.extend((p.ts, p.frame) for p in pkts)
                continue
            wrapped, messages, shift = _wrap_connection(pkts, rng, certs, version, sni)
            out.extend(wrapped)
            report.flows += 1
            report.messages += messages
            report.shifted_s.append(shift)
    finally:
        certs.close()
    out.sort(key=lambda x: x[0])
    with writing(dst), PcapngWriter(dst) as writer:
        iface = writer.add_interface(linktype, name="wrap-tls")
        for ts, frame in out:
            writer.write_packet(iface, ts, frame)
    report.packets_out = len(out)
    return report
