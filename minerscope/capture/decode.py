"""Compiled kernels: walk pcap/pcapng records and decode link, IP and L4 headers in one pass.

Why numba and one pass: a capture is a sequence of variable-length records, so finding
record *n* needs record *n-1*; that walk cannot be vectorised with numpy, and in Python
it costs ~1 us per packet. Compiled, the walk and the header decoding together run at a
few tens of nanoseconds per packet and write straight into the :data:`PACKET_DTYPE` rows,
so no Python object is ever made per packet.

The module keeps the number of compiled entry points small (:func:`walk_pcap`,
:func:`walk_pcapng`, and :func:`end_section` once per pcapng read), all ``cache=True``:
compile time is paid once per machine, not per test. The per-packet decoder
:func:`_decode_frame` is an inner function the walkers share.

Both walkers are *resumable*: they take a buffer holding part of the file and return the
position where they stopped and why (output full, more bytes needed, or damage), so the
Python layer in :mod:`minerscope.capture.pcap` streams any file size through a bounded
buffer. Every length read from the file is checked before it is used; an impossible value
stops the walk with a damage status and its offset instead of reading out of bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from minerscope.capture.bpf import MEMWORDS, keeps
from minerscope.capture.prefetch import prefetch_until

U8 = npt.NDArray[np.uint8]
Rows = npt.NDArray[np.void]
I64 = npt.NDArray[np.int64]

# Scalar constructors typed Any for mypy; numba sees the numpy types they are.
_i64: Any = np.int64
_u64: Any = np.uint64

# Walk status codes (third element of a walker's result tuple).
STATUS_MORE = 0  # stopped at ``pos`` because the next record is not complete in the buffer
STATUS_FULL = 1  # the output array is full; call again from ``pos``
STATUS_DAMAGE = 2  # the record at ``pos`` is impossible; reason in the fourth element

# Damage reasons.
DAMAGE_NONE = 0
DAMAGE_RECORD_LENGTH = 1
DAMAGE_TRAILER = 2
DAMAGE_UNDEFINED_IFACE = 3
DAMAGE_BYTE_ORDER = 4
DAMAGE_BLOCK_LENGTH = 5
DAMAGE_CAPLEN = 6
DAMAGE_TOO_MANY_IFACES = 7

DAMAGE_TEXT = {
    DAMAGE_RECORD_LENGTH: "impossible record length",
    DAMAGE_TRAILER: "block trailer length does not match its header",
    DAMAGE_UNDEFINED_IFACE: "packet refers to an interface no IDB defined",
    DAMAGE_BYTE_ORDER: "section header has no valid byte-order magic",
    DAMAGE_BLOCK_LENGTH: "impossible block length",
    DAMAGE_CAPLEN: "captured length exceeds its block",
    DAMAGE_TOO_MANY_IFACES: "more than 65536 interfaces in one section",
}

MAX_RECORD_BYTES = 64 * 1024 * 1024
"""A security limit: no record or block may claim more bytes than this (Wireshark uses 16 MiB)."""

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_PPP,
        LINKTYPE_PPP_HDLC,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "ETHERNET",
    LINKTYPE_PPP: "PPP",
    LINKTYPE_PPP_HDLC: "PPP_HDLC",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
    105: "IEEE802_11",
    127: "IEEE802_11_RADIOTAP",
    189: "USB_LINUX",
    220: "USB_LINUX_MMAPPED",
    249: "USBPCAP",
}

IFACE_COLUMNS = 6  # linktype, if_tsresol byte, if_tsoffset seconds, snaplen, dropped, received
IFACE_DROPPED = 4  # the interface's latest ISB: isb_ifdrop + isb_osdrop (-1: none reported)
IFACE_RECEIVED = 5  # its isb_ifrecv (-1: none reported)
MAX_IFACES = 65536

# pcapng state vector slots (an int64 array the Python layer keeps between calls).
STATE_BIG_ENDIAN = 0
STATE_N_IFACES = 1
STATE_LAST_TS = 2
# Interface statistics of the sections before the current one (see end_section).
STATE_DROPPED = 3  # packets the capturing system dropped, by interfaces that said
STATE_RECEIVED = 4  # packets those interfaces received
STATE_STATISTICS = 5  # bit 0: some interface reported drops; bit 1: one of them did not say what it received
STATE_SIZE = 6

_NS = 1_000_000_000
_TS_MAX = (1 << 63) - 1
"""Latest representable timestamp (int64 ns, year 2262): later ones saturate here."""
_SEC_MAX = _TS_MAX // _NS

PREFETCH_BYTES = 4096
"""How far ahead of the record being decoded the walkers request cache lines. The walk is a
chain (each record's length says where the next starts), so without it every record header
waits on memory: 120 -> 70 ns per packet on the benchmark capture."""


@njit(cache=True, inline="always")
def _byte(buf: U8, p: Any, k: int) -> Any:
    """``buf[p + k]`` as int64, indexed unsigned: through a signed index numba adds a
    negative-index fix-up to every byte read (``p`` is a position, never negative)."""
    return _i64(buf[np.uint64(p) + np.uint64(k)])


@njit(cache=True)
def _be16(buf: U8, p: int) -> Any:
    return (_byte(buf, p, 0) << 8) | _byte(buf, p, 1)


@njit(cache=True)
def _be32(buf: U8, p: int) -> Any:
    return (_byte(buf, p, 0) << 24) | (_byte(buf, p, 1) << 16) | (_byte(buf, p, 2) << 8) | _byte(buf, p, 3)


@njit(cache=True)
def _be64u(buf: U8, p: int) -> Any:
    v = _u64(0)
    for k in range(8):
        v = (v << _u64(8)) | _u64(_byte(buf, p, k))
    return v


@njit(cache=True)
def _u16(buf: U8, p: int, big: bool) -> Any:
    if big:
        return (_byte(buf, p, 0) << 8) | _byte(buf, p, 1)
    return _byte(buf, p, 0) | (_byte(buf, p, 1) << 8)


@njit(cache=True)
def _u32(buf: U8, p: int, big: bool) -> Any:
    if big:
        return (
            (_byte(buf, p, 0) << 24) | (_byte(buf, p, 1) << 16) | (_byte(buf, p, 2) << 8) | _byte(buf, p, 3)
        )
    return _byte(buf, p, 0) | (_byte(buf, p, 1) << 8) | (_byte(buf, p, 2) << 16) | (_byte(buf, p, 3) << 24)


@njit(cache=True)
def _is_vlan(et: int) -> bool:
    return et == 0x8100 or et == 0x88A8 or et == 0x9100


@njit(cache=True)
def _ethertype_from_nibble(buf: U8, p: int, end: int) -> Any:
    if p >= end:
        return -1
    v = buf[p] >> 4
    if v == 4:
        return 0x0800
    if v == 6:
        return 0x86DD
    return -1


VXLAN_PORT = 4789
GENEVE_PORT = 6081
MAX_TUNNEL_DEPTH = 3
"""Tunnels opened per frame (ERSPAN of VXLAN of IP-in-IP at most); deeper ones stay flows."""


@njit(cache=True)
def _inner_ethernet(buf: U8, r: int, end: int) -> tuple[int, int]:
    if r + 14 > end:
        return -1, r
    return _i64(_be16(buf, r + 12)), r + 14


@njit(cache=True, inline="always")
def _may_tunnel(proto: int) -> bool:
    """Whether a packet of IP protocol ``proto`` can be a tunnel :func:`_tunnel` opens (the
    one test most packets, TCP, pay)."""
    return proto == 17 or proto == 47 or proto == 4 or proto == 41


@njit(cache=True)
def _inner_ip(buf: U8, r: int, end: int, et: int) -> tuple[int, int]:
    """``(et, r)`` when an IP header of that version starts at ``r``, else ``(-1, r)``: a
    protocol 4/41/47 packet carrying something else stays a packet of its own."""
    need = 20 if et == 0x0800 else 40
    if r + need > end or (buf[r] >> 4) != (4 if et == 0x0800 else 6):
        return -1, r
    return et, r


@njit(cache=True)
def _tunnel(buf: U8, q: int, end: int, proto: int) -> tuple[int, int]:
    """``(ethertype, offset)`` of the packet a tunnel header at ``q`` carries, or ``(-1, q)``.

    Why: a sensor fed by remote SPAN sees every mirrored packet inside GRE (ERSPAN), and
    cloud and campus fabrics carry tenants in VXLAN; left closed, a whole mirror session
    is one flow between two routers and no miner in it is ever seen. Opened here: IP in
    IP (4, 41); GRE version 0 carrying IPv4/IPv6, Ethernet (0x6558) or ERSPAN types I/II
    (0x88BE, the 8-byte header present when GRE is sequenced) and III (0x22EB, 12 bytes
    plus the optional 8-byte platform subheader); VXLAN on UDP 4789 with its I flag set;
    GENEVE version 0 on UDP 6081 (cloud load balancers and mirrors) carrying Ethernet or IP.
    """
    if proto == 4 or proto == 41:
        return _inner_ip(buf, q, end, 0x0800 if proto == 4 else 0x86DD)
    if proto == 47:
        if q + 4 > end:
            return -1, q
        flags = _i64(_be16(buf, q))
        if (flags & 0x7) != 0:  # GRE version 1: PPTP's enhanced GRE carries PPP
            return -1, q
        ptype = _i64(_be16(buf, q + 2))
        r = q + 4
        if (flags & 0x8000) != 0:  # checksum + reserved
            r += 4
        if (flags & 0x2000) != 0:  # key
            r += 4
        if (flags & 0x1000) != 0:  # sequence number
            r += 4
        if ptype == 0x0800 or ptype == 0x86DD:
            return _inner_ip(buf, r, end, ptype)
        if ptype == 0x6558:
            return _inner_ethernet(buf, r, end)
        if ptype == 0x88BE:
            return _inner_ethernet(buf, r + 8 if (flags & 0x1000) != 0 else r, end)
        if ptype == 0x22EB and r + 12 <= end:
            return _inner_ethernet(buf, r + 12 + (8 if (buf[r + 11] & 1) != 0 else 0), end)
        return -1, q
    if proto == 17 and q + 16 <= end:
        dport = _be16(buf, q + 2)
        if dport == VXLAN_PORT and (buf[q + 8] & 0x08) != 0:
            return _inner_ethernet(buf, q + 16, end)
        if dport == GENEVE_PORT and (buf[q + 8] >> 6) == 0:
            r = q + 16 + (_i64(buf[q + 8]) & 0x3F) * 4  # past the variable-length options
            ptype = _i64(_be16(buf, q + 10))
            if ptype == 0x6558:
                return _inner_ethernet(buf, r, end)
            if ptype == 0x0800 or ptype == 0x86DD:
                return _inner_ip(buf, r, end, ptype)
    return -1, q


@njit(cache=True)
def _forget_ip(out: Rows, i: int) -> None:
    """Clear the tunnel's own IP header from row ``i``: the packet it carries is the row
    (a carried frame that is not IP, mirrored ARP say, leaves the row non-IP)."""
    out[i].ip_version = 0
    out[i].ip_len = 0
    out[i].proto = 0
    out[i].src_hi = 0
    out[i].src_lo = 0
    out[i].dst_hi = 0
    out[i].dst_lo = 0


@njit(cache=True, inline="always")
def _l4(out: Rows, i: int, buf: U8, q: int, end: int, proto: int, l4len: int) -> None:
    """Fill ports/TCP fields and the payload span for an L4 header at ``q``.

    Inlined where numba compiles the call: LLVM found it too large to inline and called
    it once per packet, passing both arrays field by field (a fifth of the walk's time on
    the bench capture)."""
    if l4len < 0:
        l4len = 0
    have = end - q
    if proto == 6:
        if have >= 4:
            out[i].sport = _be16(buf, q)
            out[i].dport = _be16(buf, q + 2)
        if have >= 14:
            out[i].seq = _be32(buf, q + 4)
            out[i].ack = _be32(buf, q + 8)
            out[i].tcp_flags = buf[q + 13]
            doff = (_i64(buf[q + 12]) >> 4) * 4
            if doff < 20:
                doff = 20
            plen = l4len - doff
            if plen < 0:
                plen = 0
            pc = end - (q + doff)
            if pc > plen:
                pc = plen
            if pc < 0:
                pc = 0
            out[i].payload_off = q + doff
            out[i].payload_len = plen
            out[i].payload_cap = pc
        else:
            plen = l4len - 20
            out[i].payload_off = end
            out[i].payload_len = plen if plen > 0 else 0
        return
    if proto == 17:
        if have >= 4:
            out[i].sport = _be16(buf, q)
            out[i].dport = _be16(buf, q + 2)
        plen = l4len - 8
        if plen < 0:
            plen = 0
        pc = end - (q + 8)
        if pc > plen:
            pc = plen
        if pc < 0:
            pc = 0
        out[i].payload_off = q + 8 if have >= 8 else end
        out[i].payload_len = plen
        out[i].payload_cap = pc
        return
    pc = have
    if pc > l4len:
        pc = l4len
    if pc < 0:
        pc = 0
    out[i].payload_off = q
    out[i].payload_len = l4len
    out[i].payload_cap = pc


@njit(cache=True, inline="always")
def _decode_frame(out: Rows, i: int, buf: U8, off: int, cap: int, lt: int) -> None:
    """Decode one frame (``buf[off:off+cap]`` of link type ``lt``) into row ``i`` of ``out``.

    Rows arrive zeroed, so only fields that have a value are written. A header that is
    not fully captured leaves the row non-IP (``ip_version == 0``) rather than guessing.
    """
    end = off + cap
    out[i].payload_off = off
    p = off
    et = -1
    if lt == 1:
        if cap < 14:
            return
        et = _be16(buf, off + 12)
        p = off + 14
    elif lt == 113:
        if cap < 16:
            return
        et = _be16(buf, off + 14)
        p = off + 16
    elif lt == 276:
        if cap < 20:
            return
        et = _be16(buf, off)
        p = off + 20
    elif lt == 0 or lt == 108:
        if cap < 4:
            return
        af = _u32(buf, off, False)
        if af > 0xFFFF:  # written in the other byte order
            af = _u32(buf, off, True)
        p = off + 4
        if af == 2:
            et = 0x0800
        elif af == 10 or af == 24 or af == 28 or af == 30:
            et = 0x86DD
        else:
            et = -1
    elif lt == 9 or lt == 50:
        if cap >= 2 and buf[off] == 0xFF and buf[off + 1] == 0x03:  # HDLC address/control
            p = off + 2
        if p < end and (buf[p] & 1) == 1:  # protocol-field compression: one byte
            ppp = _i64(buf[p])
            p += 1
        elif p + 2 <= end:
            ppp = _be16(buf, p)
            p += 2
        else:
            return
        et = 0x0800 if ppp == 0x21 else (0x86DD if ppp == 0x57 else -1)
    elif lt == 101:
        et = _ethertype_from_nibble(buf, p, end)
    elif lt == 228:
        et = 0x0800
    elif lt == 229:
        et = 0x86DD
    else:
        return
    et, p = _decode_l3(out, i, buf, p, end, et, True)
    if et >= 0:
        _decode_carried(out, i, buf, p, end, et)


@njit(cache=True, inline="always")
def _decode_l3(out: Rows, i: int, buf: U8, p: int, end: int, et: int, open_tunnels: bool) -> tuple[int, int]:
    """Decode the network layer at ``p`` (ethertype ``et``: VLAN tags, PPPoE, MPLS, IPv4,
    IPv6 and the L4 header) into row ``i``. A tunnel (when ``open_tunnels``, see
    :func:`_tunnel`) is not decoded as L4: ``(ethertype, offset)`` of the packet it carries
    is returned instead; otherwise ``(-1, 0)``."""
    # 802.1Q / 802.1ad / QinQ tags: keep the outermost VLAN id.
    ntag = 0
    while _is_vlan(et) and p + 4 <= end and ntag < 8:
        if ntag == 0 and out[i].vlan == 0:
            out[i].vlan = _be16(buf, p) & 0xFFF
        et = _be16(buf, p + 2)
        p += 4
        ntag += 1
    if et == 0x8864 and p + 8 <= end:  # PPPoE session: PPP protocol 0x21 IPv4, 0x57 IPv6
        ppp = _be16(buf, p + 6)
        p += 8
        et = 0x0800 if ppp == 0x21 else (0x86DD if ppp == 0x57 else -1)
    elif (et == 0x8847 or et == 0x8848) and p < end:  # MPLS: pop to bottom of stack, guess by nibble
        while p + 4 <= end:
            bos = buf[p + 2] & 1
            p += 4
            if bos:
                break
        et = _ethertype_from_nibble(buf, p, end)
    out[i].payload_off = p
    if et == 0x0800:
        if p + 20 > end:
            return -1, 0
        vihl = buf[p]
        ihl = (_i64(vihl) & 0xF) * 4
        if (vihl >> 4) != 4 or ihl < 20 or p + ihl > end:
            return -1, 0
        total = _be16(buf, p + 2)
        if total == 0:  # TCP segmentation offload on the capturing host: length unknown
            total = end - p
        frag = _be16(buf, p + 6)
        proto = _i64(buf[p + 9])
        out[i].ip_version = 4
        out[i].ip_len = total
        out[i].proto = proto
        out[i].src_lo = _u64(0x0000FFFF00000000) | _u64(_be32(buf, p + 12))
        out[i].dst_lo = _u64(0x0000FFFF00000000) | _u64(_be32(buf, p + 16))
        q = p + ihl
        l4len = total - ihl
        if (frag & 0x3FFF) != 0:
            out[i].frag = 1
        if (frag & 0x1FFF) != 0:  # not the first fragment: no L4 header here
            _l4(out, i, buf, q, end, -1, l4len)
            return -1, 0
        if _may_tunnel(proto) and (frag & 0x3FFF) == 0 and open_tunnels:
            inner, at = _tunnel(buf, q, end, proto)
            if inner >= 0:
                return inner, at
        _l4(out, i, buf, q, end, proto, l4len)
        return -1, 0
    if et == 0x86DD:
        if p + 40 > end or (buf[p] >> 4) != 6:
            return -1, 0
        plen = _be16(buf, p + 4)
        nh = _i64(buf[p + 6])
        out[i].ip_version = 6
        out[i].ip_len = 40 + plen if plen != 0 else end - p
        out[i].src_hi = _be64u(buf, p + 8)
        out[i].src_lo = _be64u(buf, p + 16)
        out[i].dst_hi = _be64u(buf, p + 24)
        out[i].dst_lo = _be64u(buf, p + 32)
        q = p + 40
        remaining = plen if plen != 0 else end - q  # 0: jumbogram, use what was captured
        l4_ok = True
        for _ in range(16):
            if nh == 0 or nh == 43 or nh == 60 or nh == 135 or nh == 139 or nh == 140:
                if q + 2 > end:
                    l4_ok = False
                    break
                hl = (_i64(buf[q + 1]) + 1) * 8
                nh = _i64(buf[q])
            elif nh == 51:  # AH counts its length in 4-byte units
                if q + 2 > end:
                    l4_ok = False
                    break
                hl = (_i64(buf[q + 1]) + 2) * 4
                nh = _i64(buf[q])
            elif nh == 44:  # fragment header
                if q + 8 > end:
                    l4_ok = False
                    break
                fo = _be16(buf, q + 2)
                nh = _i64(buf[q])
                hl = 8
                if (fo >> 3) != 0 or (fo & 1) != 0:
                    out[i].frag = 1
                if (fo >> 3) != 0:
                    l4_ok = False
                    q += hl
                    remaining -= hl
                    break
            else:
                break
            q += hl
            remaining -= hl
        out[i].proto = nh
        if q > end:
            q = end
        if not l4_ok:
            _l4(out, i, buf, q, end, -1, remaining)
            return -1, 0
        if _may_tunnel(nh) and out[i].frag == 0 and open_tunnels:
            inner, at = _tunnel(buf, q, end, nh)
            if inner >= 0:
                return inner, at
        _l4(out, i, buf, q, end, nh, remaining)
        return -1, 0
    return -1, 0


@njit(cache=True)
def _decode_carried(out: Rows, i: int, buf: U8, p: int, end: int, et: int) -> None:
    """Make the packet a tunnel carries row ``i``, opening up to :data:`MAX_TUNNEL_DEPTH`
    tunnels in all. Not inlined into :func:`_decode_frame`: almost no packet gets here."""
    for depth in range(1, MAX_TUNNEL_DEPTH + 1):
        _forget_ip(out, i)
        et, p = _decode_l3(out, i, buf, p, end, et, depth < MAX_TUNNEL_DEPTH)
        if et < 0:
            return


# Running counts kept by the walkers (one int64 array per reader, see ``_tally``).
STATS_IP = 256  # slots 0..255: packets per IP protocol
STATS_FRAGMENTS = 257
STATS_LINKTYPE = 258  # slots 258..258+65535: packets per link type (read, kept or not)
STATS_FILTERED = STATS_LINKTYPE + 65536  # packets the capture filter left out
STATS_SIZE = STATS_FILTERED + 1


@njit(cache=True)
def _tally(stats: I64, out: Rows, i: int, lt: int) -> None:
    """Count row ``i`` into ``stats`` while it is in cache (saves passes over the batch later)."""
    if out[i].ip_version != 0:
        stats[out[i].proto] += 1
        stats[STATS_IP] += 1
    stats[STATS_FRAGMENTS] += out[i].frag
    stats[STATS_LINKTYPE + (lt & 0xFFFF)] += 1


@njit(cache=True, inline="always")
def _left_out(stats: I64, lt: Any) -> None:
    """Count a packet the capture filter left out (it still counts for its link type)."""
    stats[STATS_LINKTYPE + (lt & 0xFFFF)] += 1
    stats[STATS_FILTERED] += 1


@njit(cache=True)
def walk_pcap(
    buf: U8,
    pos: int,
    end: int,
    big: bool,
    nsec: bool,
    rec_hdr: int,
    linktype: int,
    max_caplen: int,
    out: Rows,
    stats: I64,
    progs: I64,
    prog_at: I64,
) -> tuple[int, int, int, int]:
    """Walk classic pcap records in ``buf[pos:end]`` into ``out``, keeping the packets the
    capture filter ``progs``/``prog_at`` keeps (:mod:`minerscope.capture.bpf`).

    Returns:
        ``(rows written, position reached, status, damage reason)``.
    """
    n = 0
    cap_out = out.shape[0]
    mult = 1 if nsec else 1000
    mem = np.zeros(MEMWORDS, np.int64)  # the capture filter's scratch memory
    ahead = pos  # first byte whose cache line is not requested yet
    while pos + rec_hdr <= end:
        if n >= cap_out:
            return n, pos, STATUS_FULL, DAMAGE_NONE
        ahead = prefetch_until(buf, ahead, min(pos + PREFETCH_BYTES, end))
        sec = _u32(buf, pos, big)
        frac = _u32(buf, pos + 4, big)
        incl = _u32(buf, pos + 8, big)
        orig = _u32(buf, pos + 12, big)
        if incl > max_caplen:
            return n, pos, STATUS_DAMAGE, DAMAGE_RECORD_LENGTH
        if pos + rec_hdr + incl > end:
            break
        if not keeps(progs, prog_at, linktype, buf, pos + rec_hdr, incl, orig, mem):
            _left_out(stats, linktype)
            pos += rec_hdr + incl
            continue
        out[n].ts_ns = sec * _NS + frac * mult
        out[n].wire_len = orig
        out[n].cap_len = incl
        out[n].linktype = linktype
        _decode_frame(out, n, buf, pos + rec_hdr, incl, linktype)
        _tally(stats, out, n, linktype)
        n += 1
        pos += rec_hdr + incl
    return n, pos, STATUS_MORE, DAMAGE_NONE


@njit(cache=True)
def _ts_to_ns(units: Any, res: Any, offset_s: Any) -> Any:
    """Timestamp units of an interface (``if_tsresol`` byte ``res``) -> ns since the epoch.

    Saturates at :data:`_TS_MAX` instead of wrapping: a broken or hostile ``if_tsresol``
    or ``if_tsoffset`` must not turn into negative or scrambled time (numba integers wrap
    silently).
    """
    if res & 0x80:
        shift = res & 0x7F
        if shift > 63:
            shift = 63
        sec = units >> _u64(shift)
        if sec > _u64(_SEC_MAX):
            return _TS_MAX
        frac = units & ((_u64(1) << _u64(shift)) - _u64(1))
        if shift > 34:  # keep frac * 1e9 inside 64 bits
            frac = frac >> _u64(shift - 34)
            shift = 34
        ns = _i64(sec) * _NS + _i64((frac * _u64(_NS)) >> _u64(shift))
    elif res == 9:
        if units > _u64(_TS_MAX):
            return _TS_MAX
        ns = _i64(units)
    elif res < 9:
        mult = _i64(10 ** (9 - res))
        if units > _u64(_TS_MAX // mult):
            return _TS_MAX
        ns = _i64(units) * mult
    elif res - 9 <= 18:
        ns = _i64(units // _u64(10 ** (res - 9)))
    else:
        ns = 0
    offset = min(max(offset_s, -_SEC_MAX), _SEC_MAX) * _NS
    if offset > 0 and ns > _TS_MAX - offset:
        return _TS_MAX
    return ns + offset


@njit(cache=True, inline="always")
def _option(buf: U8, o: int, oend: int, big: bool) -> tuple[int, int]:
    """Code and length of the pcapng option at ``o`` (options end at ``oend``); code -1
    past the last one: opt_endofopt, or no room for the option's header or value."""
    if o + 4 > oend:
        return -1, 0
    code = _u16(buf, o, big)
    olen = _u16(buf, o + 2, big)
    if code == 0 or o + 4 + olen > oend:
        return -1, 0
    return code, olen


@njit(cache=True)
def _counter(buf: U8, o: int, big: bool) -> Any:
    """A pcapng 64-bit statistics counter at ``o``, saturated to int64 (a hostile value
    must not turn negative)."""
    first = _u32(buf, o, big)
    second = _u32(buf, o + 4, big)
    hi, lo = (first, second) if big else (second, first)
    if hi >= 0x80000000:
        return _TS_MAX
    return (hi << 32) | lo


@njit(cache=True, inline="always")
def _add_counts(a: Any, b: Any) -> Any:
    """``a + b`` of two non-negative counts, saturated at int64's largest (never wraps)."""
    return _TS_MAX if a > _TS_MAX - b else a + b


@njit(cache=True)
def _interface_statistics(buf: U8, pos: int, blen: int, big: bool, nif: int, ifaces: I64) -> None:
    """Keep what an Interface Statistics Block says its interface dropped and received.

    Its counters run from the start of the capture, so the latest block of an interface
    holds its totals (dumpcap writes one as the capture ends). A block naming an interface
    no IDB defined is ignored: statistics are no packets, and the rest of the file is good.
    """
    if blen < 24:
        return
    k = _u32(buf, pos + 8, big)
    if k >= nif:
        return
    dropped = -1
    o = pos + 20
    while True:
        code, olen = _option(buf, o, pos + blen - 4, big)
        if code < 0:
            break
        if olen == 8 and (code == 5 or code == 7):  # isb_ifdrop, isb_osdrop
            v = _counter(buf, o + 4, big)
            dropped = v if dropped < 0 else _add_counts(dropped, v)
        elif olen == 8 and code == 4:  # isb_ifrecv
            ifaces[k, IFACE_RECEIVED] = _counter(buf, o + 4, big)
        o += 4 + ((olen + 3) & ~3)
    if dropped >= 0:
        ifaces[k, IFACE_DROPPED] = dropped


@njit(cache=True)
def end_section(state: I64, ifaces: I64) -> None:
    """Add the section's interface statistics to ``state``: at a new section, before its
    IDBs reuse the interface rows; the reader does it on a copy for the last one."""
    for k in range(state[STATE_N_IFACES]):
        dropped = ifaces[k, IFACE_DROPPED]
        if dropped >= 0:
            state[STATE_DROPPED] = _add_counts(state[STATE_DROPPED], dropped)
            state[STATE_STATISTICS] |= 1
            received = ifaces[k, IFACE_RECEIVED]
            if received >= 0:
                state[STATE_RECEIVED] = _add_counts(state[STATE_RECEIVED], received)
            else:
                state[STATE_STATISTICS] |= 2
    state[STATE_N_IFACES] = 0


@njit(cache=True)
def walk_pcapng(
    buf: U8,
    pos: int,
    end: int,
    state: I64,
    ifaces: I64,
    out: Rows,
    stats: I64,
    progs: I64,
    prog_at: I64,
) -> tuple[int, int, int, int]:
    """Walk pcapng blocks in ``buf[pos:end]``; packet blocks the capture filter keeps
    (``progs``/``prog_at``, see :mod:`minerscope.capture.bpf`) become rows of ``out``.

    ``state`` (byte order, interface count, last timestamp) and ``ifaces`` (one row per
    interface: linktype, tsresol byte, tsoffset, snaplen) persist between calls, so a
    section that spans many buffers keeps its interfaces.

    Returns:
        ``(rows written, position reached, status, damage reason)``.
    """
    n = 0
    cap_out = out.shape[0]
    mem = np.zeros(MEMWORDS, np.int64)  # the capture filter's scratch memory
    ahead = pos
    while pos + 12 <= end:
        ahead = prefetch_until(buf, ahead, min(pos + PREFETCH_BYTES, end))
        btype_le = _u32(buf, pos, False)
        if btype_le == 0x0A0D0D0A:  # SHB: palindromic type; byte order from its magic
            m = _u32(buf, pos + 8, False)
            if m == 0x1A2B3C4D:
                big = False
            elif m == 0x4D3C2B1A:
                big = True
            else:
                return n, pos, STATUS_DAMAGE, DAMAGE_BYTE_ORDER
        else:
            big = state[STATE_BIG_ENDIAN] != 0
        btype = _u32(buf, pos, big)
        blen = _u32(buf, pos + 4, big)
        if blen < 12 or (blen & 3) != 0 or blen > MAX_RECORD_BYTES:
            return n, pos, STATUS_DAMAGE, DAMAGE_BLOCK_LENGTH
        if pos + blen > end:
            break
        if _u32(buf, pos + blen - 4, big) != blen:
            return n, pos, STATUS_DAMAGE, DAMAGE_TRAILER
        if btype == 0x0A0D0D0A:
            if blen < 28:
                return n, pos, STATUS_DAMAGE, DAMAGE_BLOCK_LENGTH
            state[STATE_BIG_ENDIAN] = 1 if big else 0
            end_section(state, ifaces)
        elif btype == 1:  # IDB
            if blen < 20:
                return n, pos, STATUS_DAMAGE, DAMAGE_BLOCK_LENGTH
            k = state[STATE_N_IFACES]
            if k >= ifaces.shape[0]:
                return n, pos, STATUS_DAMAGE, DAMAGE_TOO_MANY_IFACES
            ifaces[k, 0] = _u16(buf, pos + 8, big)
            ifaces[k, 1] = 6
            ifaces[k, 2] = 0
            ifaces[k, 3] = _u32(buf, pos + 12, big)
            ifaces[k, IFACE_DROPPED] = -1
            ifaces[k, IFACE_RECEIVED] = -1
            o = pos + 16
            while True:
                code, olen = _option(buf, o, pos + blen - 4, big)
                if code < 0:
                    break
                if code == 9 and olen >= 1:
                    ifaces[k, 1] = buf[o + 4]
                elif code == 14 and olen == 8:
                    lo = _u32(buf, o + 4, big)
                    hi = _u32(buf, o + 8, big)
                    v = (hi << 32) | lo if not big else (lo << 32) | hi
                    ifaces[k, 2] = v
                o += 4 + ((olen + 3) & ~3)
            state[STATE_N_IFACES] = k + 1
        elif btype == 5:  # ISB
            _interface_statistics(buf, pos, blen, big, state[STATE_N_IFACES], ifaces)
        elif btype == 6 or btype == 2 or btype == 3:  # EPB, obsolete PB, SPB
            if n >= cap_out:
                return n, pos, STATUS_FULL, DAMAGE_NONE
            nif = state[STATE_N_IFACES]
            if btype == 3:
                if blen < 16:
                    return n, pos, STATUS_DAMAGE, DAMAGE_BLOCK_LENGTH
                if nif < 1:
                    return n, pos, STATUS_DAMAGE, DAMAGE_UNDEFINED_IFACE
                iface = 0
                orig = _u32(buf, pos + 8, big)
                incl = blen - 16
                if orig < incl:
                    incl = orig
                snap = ifaces[0, 3]
                if snap > 0 and incl > snap:
                    incl = snap
                data = pos + 12
                ts = state[STATE_LAST_TS]
            else:
                if blen < 32:
                    return n, pos, STATUS_DAMAGE, DAMAGE_BLOCK_LENGTH
                if btype == 6:
                    iface = _u32(buf, pos + 8, big)
                else:
                    iface = _u16(buf, pos + 8, big)
                if iface >= nif:
                    return n, pos, STATUS_DAMAGE, DAMAGE_UNDEFINED_IFACE
                hi = _u64(_u32(buf, pos + 12, big))
                lo = _u64(_u32(buf, pos + 16, big))
                incl = _u32(buf, pos + 20, big)
                orig = _u32(buf, pos + 24, big)
                if 28 + incl + 4 > blen:
                    return n, pos, STATUS_DAMAGE, DAMAGE_CAPLEN
                data = pos + 28
                ts = _ts_to_ns((hi << _u64(32)) | lo, ifaces[iface, 1], ifaces[iface, 2])
                state[STATE_LAST_TS] = ts
            lt = ifaces[iface, 0]
            if not keeps(progs, prog_at, lt, buf, data, incl, orig, mem):
                _left_out(stats, lt)
                pos += blen
                continue
            out[n].ts_ns = ts
            out[n].wire_len = orig
            out[n].cap_len = incl
            out[n].iface = iface
            out[n].linktype = lt
            _decode_frame(out, n, buf, data, incl, lt)
            _tally(stats, out, n, lt)
            n += 1
        pos += blen
    return n, pos, STATUS_MORE, DAMAGE_NONE
