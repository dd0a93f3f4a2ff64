"""Network simulation for the lab: real Ethernet/VLAN/IPv4/IPv6/TCP/UDP frames from message streams.

Why hand-written ``struct`` packing: the lab emits millions of frames and scapy builds a
Python object tree per packet (~100x slower). Lengths, sequence and acknowledgement
numbers and flags are exact; the IPv4 header checksum is computed (cheap, incremental);
TCP/UDP checksums are left zero (the project reader does not verify them, and offloaded
captures look the same).

Why a model of the network at all: a detector keyed on packet sizes and timing must not
learn the lab's shortcuts. So each flow draws its own conditions: RTT split into the
campus side (capture point to client) and the WAN side (capture point to server),
jitter, loss with retransmission after an RTO, delayed ACKs that are piggybacked when
the receiver answers soon enough, MSS (segmentation of large TLS records), TCP options
(timestamps or not), window, TTL, VLAN tag and IPv6.

The capture point is the campus gateway: a client packet sent at ``t`` is seen at
``t + c``; a server packet sent at ``t`` is seen at ``t + s``; one-way delay is ``c + s``.
Times inside the simulator are float seconds; frames are stored with integer ns.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass

_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10

Packet = tuple[int, bytes]
"""``(timestamp_ns, frame)``."""


@dataclass(slots=True)
class NetProfile:
    """Per-flow network conditions (all times in seconds)."""

    client_delay: float = 0.001  # capture point <-> client, one way
    server_delay: float = 0.02  # capture point <-> server, one way
    jitter: float = 0.0005  # mean of the exponential per-packet jitter
    loss: float = 0.0  # probability a data segment is lost once
    mss: int = 1460
    timestamps: bool = True  # TCP timestamps option (12 bytes per segment)
    window: int = 64240
    delack: float = 0.04  # delayed-ACK timer
    client_ttl: int = 64
    server_ttl: int = 52
    vlan: int = 0
    bandwidth: float = 50e6  # bits/s, paces back-to-back segments

    @property
    def owd(self) -> float:
        return self.client_delay + self.server_delay

    @property
    def rtt(self) -> float:
        return 2.0 * self.owd


def random_profile(rng: random.Random, *, ipv6: bool = False, lan_only: bool = False) -> NetProfile:
    """Draw network conditions from realistic ranges."""
    wifi = rng.random() < 0.4
    client = rng.uniform(0.0002, 0.003) + (rng.uniform(0.001, 0.01) if wifi else 0.0)
    server = rng.uniform(0.0005, 0.004) if lan_only else rng.lognormvariate(-3.6, 0.8)
    mss = rng.choice((1460, 1460, 1460, 1448, 1440, 1400, 1380, 1360, 1300, 1220, 536))
    if ipv6:
        mss = min(mss, 1440)
    return NetProfile(
        client_delay=client,
        server_delay=min(server, 0.35),
        jitter=rng.uniform(0.00005, 0.002) + (rng.uniform(0.0005, 0.006) if wifi else 0.0),
        loss=rng.choice((0.0, 0.0, 0.0005, 0.002, 0.01)),
        mss=mss,
        timestamps=rng.random() < 0.7,
        window=rng.choice((502, 501, 1026, 2053, 8192, 16383, 29200, 64240, 65535)),
        delack=rng.uniform(0.004, 0.04),
        client_ttl=rng.choice((64, 128)),
        server_ttl=rng.randint(40, 120),
        vlan=0,
        bandwidth=rng.choice((10e6, 50e6, 100e6, 300e6)),
    )


def _mac(rng: random.Random) -> bytes:
    b = bytearray(rng.randbytes(6))
    b[0] = (b[0] & 0xFC) | 0x02  # locally administered, unicast
    return bytes(b)


class _Ip:
    """Pre-packed L2+L3 header template for one direction of one flow."""

    __slots__ = ("l2", "v6", "src", "dst", "ttl", "proto", "ident", "_base")

    def __init__(self, l2: bytes, src: bytes, dst: bytes, ttl: int, proto: int, ident: int) -> None:
        self.l2 = l2
        self.v6 = len(src) == 16
        self.src, self.dst, self.ttl, self.proto, self.ident = src, dst, ttl, proto, ident
        if not self.v6:
            words = struct.unpack("!HHHH", src + dst)
            self._base = 0x4500 + 0x4000 + ((ttl << 8) | proto) + sum(words)

    def header(self, l4_len: int) -> bytes:
        if self.v6:
            return (
                self.l2 + struct.pack("!IHBB", 0x60000000, l4_len, self.proto, self.ttl) + self.src + self.dst
            )
        total = 20 + l4_len
        self.ident = (self.ident + 1) & 0xFFFF
        s = self._base + total + self.ident
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return self.l2 + struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            total,
            self.ident,
            0x4000,
            self.ttl,
            self.proto,
            ~s & 0xFFFF,
            self.src,
            self.dst,
        )


def _l2(src_mac: bytes, dst_mac: bytes, vlan: int, v6: bool) -> bytes:
    etype = 0x86DD if v6 else 0x0800
    if vlan:
        return dst_mac + src_mac + struct.pack("!HHH", 0x8100, vlan & 0x0FFF, etype)
    return dst_mac + src_mac + struct.pack("!H", etype)


class _Base:
    def __init__(
        self,
        rng: random.Random,
        net: NetProfile,
        client: tuple[str, int],
        server: tuple[str, int],
        proto: int,
        macs: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.rng = rng
        self.net = net
        self.client, self.server = client, server
        cip, sip = ipaddress.ip_address(client[0]), ipaddress.ip_address(server[0])
        if cip.version != sip.version:
            raise ValueError(f"address families differ: {client[0]} / {server[0]}")
        self.ip_version = cip.version
        v6 = cip.version == 6
        cmac, gmac = macs if macs is not None else (_mac(rng), _mac(rng))
        self._ip = (
            _Ip(
                _l2(cmac, gmac, net.vlan, v6),
                cip.packed,
                sip.packed,
                net.client_ttl,
                proto,
                rng.randrange(65536),
            ),
            _Ip(
                _l2(gmac, cmac, net.vlan, v6),
                sip.packed,
                cip.packed,
                net.server_ttl,
                proto,
                rng.randrange(65536),
            ),
        )
        self.ports = ((client[1], server[1]), (server[1], client[1]))
        self.packets: list[Packet] = []
        self._last_obs = [0.0, 0.0]
        self.payload_bytes = 0

    def _observe(self, direction: int, t_send: float) -> float:
        """Time at the capture point of a packet sent at ``t_send`` by side ``direction``."""
        net = self.net
        base = net.client_delay if direction == 0 else net.server_delay
        obs = t_send + base + self.rng.expovariate(1.0 / net.jitter) if net.jitter > 0 else t_send + base
        if obs <= self._last_obs[direction]:
            obs = self._last_obs[direction] + 1e-6
        self._last_obs[direction] = obs
        return obs


class UdpFlow(_Base):
    """A UDP conversation: each datagram is one frame."""

    def __init__(
        self, rng: random.Random, net: NetProfile, client: tuple[str, int], server: tuple[str, int]
    ) -> None:
        super().__init__(rng, net, client, server, 17)

    def send(self, t: float, direction: int, data: bytes) -> None:
        if self.net.loss and self.rng.random() < self.net.loss and self.rng.random() < 0.5:
            return  # lost before the capture point: never seen
        sport, dport = self.ports[direction]
        udp = struct.pack("!HHHH", sport, dport, 8 + len(data), 0)
        frame = self._ip[direction].header(8 + len(data)) + udp + data
        self.packets.append((int(self._observe(direction, t) * 1e9), frame))
        self.payload_bytes += len(data)


class TcpFlow(_Base):
    """A TCP connection with handshake, segmentation, delayed/piggybacked ACKs, loss and close.

    Call :meth:`open`, then :meth:`send` in non-decreasing sender time per direction
    (messages of the two directions may interleave), then :meth:`close`.
    """

    def __init__(
        self,
        rng: random.Random,
        net: NetProfile,
        client: tuple[str, int],
        server: tuple[str, int],
        macs: tuple[bytes, bytes] | None = None,
    ) -> None:
        super().__init__(rng, net, client, server, 6, macs)
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.acked = [0, 0]  # what each side has acknowledged of the other (absolute seq)
        self.rcv = [0, 0]  # highest byte each side has received (next expected seq)
        self._pending: list[float | None] = [None, None]  # delayed ACK deadline per side
        self._unacked_segs = [0, 0]
        self._ts = [rng.getrandbits(31), rng.getrandbits(31)]
        self._tsrate = [rng.choice((1000.0, 250.0, 100.0)), 1000.0]
        self._opts = net.timestamps
        self.closed = False
        self.open_time = 0.0

    def _tcp(self, direction: int, t_send: float, flags: int, payload: bytes, opts: bytes = b"") -> None:
        ip = self._ip[direction]
        sport, dport = self.ports[direction]
        other = 1 - direction
        ack = self.rcv[direction] & 0xFFFFFFFF if flags & _ACK else 0
        if self._opts and not opts:
            tsval = (self._ts[direction] + int(t_send * self._tsrate[direction])) & 0xFFFFFFFF
            opts = b"\x01\x01\x08\x0a" + struct.pack("!II", tsval, self._ts[other] & 0xFFFFFFFF)
        hlen = 20 + len(opts)
        hdr = struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            self.seq[direction] & 0xFFFFFFFF,
            ack,
            (hlen // 4) << 4,
            flags,
            self.net.window if not flags & _SYN else 64240,
            0,
            0,
        )
        frame = ip.header(hlen + len(payload)) + hdr + opts + payload
        self.packets.append((int(self._observe(direction, t_send) * 1e9), frame))

    def _arrival(self, direction: int, t_send: float) -> float:
        return t_send + self.net.owd

    def open(self, t: float) -> float:
        """Three-way handshake starting at client time ``t``; returns client time it may send."""
        self.open_time = t
        net = self.net
        mss_opt = struct.pack("!BBH", 2, 4, net.mss)
        ws = struct.pack("!BBB", 3, 3, self.rng.choice((7, 8, 9)))
        if self._opts:
            ts = b"\x08\x0a" + struct.pack("!II", self._ts[0], 0)
            syn_opts = mss_opt + b"\x04\x02" + ts + b"\x01" + ws
        else:
            syn_opts = mss_opt + b"\x01" + ws + b"\x01\x01\x04\x02"
        self._tcp(0, t, _SYN, b"", syn_opts)
        self.seq[0] += 1
        self.rcv[1] = self.seq[0]
        t_srv = self._arrival(0, t)
        self.rcv[0] = self.seq[1] + 1
        if self._opts:
            syn_opts = (
                mss_opt
                + b"\x04\x02"
                + b"\x08\x0a"
                + struct.pack("!II", self._ts[1], self._ts[0])
                + b"\x01"
                + ws
            )
        self._tcp(1, t_srv, _SYN | _ACK, b"", syn_opts)
        self.seq[1] += 1
        t_cli = self._arrival(1, t_srv)
        self._tcp(0, t_cli, _ACK, b"")
        return t_cli

    def _flush_ack(self, side: int, before: float) -> None:
        deadline = self._pending[side]
        if deadline is not None and deadline <= before:
            self._tcp(side, deadline, _ACK, b"")
            self._pending[side] = None
            self._unacked_segs[side] = 0

    def send(self, t: float, direction: int, data: bytes) -> float:
        """Send ``data`` from side ``direction`` at sender time ``t``; returns receive time at the peer."""
        if not data or self.closed:
            return t
        other = 1 - direction
        self._flush_ack(other, t + self.net.owd)
        self._flush_ack(direction, t)
        if self._pending[direction] is not None:  # piggyback our pending ACK
            self._pending[direction] = None
            self._unacked_segs[direction] = 0
        net = self.net
        seg = net.mss - (12 if self._opts else 0)
        n = len(data)
        pos = 0
        ts = t
        window = 10
        sent_in_window = 0
        arrival = t
        pace_per_byte = 8.0 / net.bandwidth
        while pos < n:
            chunk = data[pos : pos + seg]
            last = pos + len(chunk) >= n
            flags = _ACK | (_PSH if last else 0)
            lost = net.loss > 0 and self.rng.random() < net.loss
            if lost and self.rng.random() < 0.5:
                # lost after the capture point: the original is seen, then the retransmission
                self._tcp(direction, ts, flags, chunk)
            if lost:
                ts_rtx = ts + max(0.2, 3 * net.rtt) + self.rng.uniform(0, 0.02)
                self._tcp(direction, ts_rtx, flags, chunk)
                arrival = max(arrival, self._arrival(direction, ts_rtx))
            else:
                self._tcp(direction, ts, flags, chunk)
                arrival = max(arrival, self._arrival(direction, ts))
            self.seq[direction] += len(chunk)
            pos += len(chunk)
            self._unacked_segs[other] += 1
            # receiver: ACK every second full segment at once, else arm the delayed-ACK timer
            if self._unacked_segs[other] >= 2:
                self.rcv[other] = self.seq[direction]
                self._tcp(other, arrival, _ACK, b"")
                self._unacked_segs[other] = 0
                self._pending[other] = None
            sent_in_window += 1
            ts += len(chunk) * pace_per_byte
            if sent_in_window >= window and pos < n:
                ts = max(ts, t + net.rtt)
                t = ts
                window = min(window * 2, 256)
                sent_in_window = 0
        self.rcv[other] = self.seq[direction]
        if self._unacked_segs[other]:
            self._pending[other] = arrival + net.delack * self.rng.random()
        self.payload_bytes += n
        return arrival

    def close(self, t: float, direction: int = 0, rst: bool = False) -> None:
        """Close from side ``direction`` at its time ``t``: FIN handshake, or a RST."""
        if self.closed:
            return
        other = 1 - direction
        self._flush_ack(other, t + self.net.owd)
        self._flush_ack(direction, t)
        self._pending = [None, None]
        if rst:
            self._tcp(direction, t, _RST | _ACK, b"")
            self.closed = True
            return
        self._tcp(direction, t, _FIN | _ACK, b"")
        self.seq[direction] += 1
        self.rcv[other] = self.seq[direction]
        t2 = self._arrival(direction, t) + self.rng.uniform(0.0, 0.002)
        self._tcp(other, t2, _FIN | _ACK, b"")
        self.seq[other] += 1
        self.rcv[direction] = self.seq[other]
        self._tcp(direction, self._arrival(other, t2), _ACK, b"")
        self.closed = True
