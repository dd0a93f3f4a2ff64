# mypy: disable-error-code="no-untyped-def"
"""Compiled inner loops of the flow assembler (numba ``@njit(cache=True)``).

Grouping packets into flows is sorting (numpy); what remains is inherently sequential
per 5-tuple: idle/active timeouts, the TCP close state machine, following each
direction's byte stream by sequence number to find TLS record boundaries. Those walks
live here, as plain loops over arrays, so the assembler never runs Python per packet.
"""

from __future__ import annotations

import numpy as np
from numba import njit

REASON_OPEN = 0
REASON_FIN = 1
REASON_RST = 2
REASON_IDLE = 3
REASON_ACTIVE = 4
REASON_EOF = 5

_FIN = 0x01
_SYN = 0x02
_RST = 0x04
_ACK = 0x10

TLS_MAX_RECORD = 16384 + 2048
"""Largest plausible TLS record body (RFC 8446 allows 2^14 + 256; TLS 1.2 ciphertext 2^14 + 2048)."""


@njit(cache=True)
def canonical_keys(src_hi, src_lo, sport, dst_hi, dst_lo, dport, vlan, proto):
    """Return (from_a, hash): whether the source is the lower endpoint, and a 64-bit key hash."""
    n = src_hi.shape[0]
    from_a = np.empty(n, np.bool_)
    out = np.empty(n, np.uint64)
    for i in range(n):
        s_hi = src_hi[i]
        s_lo = src_lo[i]
        d_hi = dst_hi[i]
        d_lo = dst_lo[i]
        sp = np.uint64(sport[i])
        dp = np.uint64(dport[i])
        if s_hi < d_hi or (s_hi == d_hi and (s_lo < d_lo or (s_lo == d_lo and sp <= dp))):
            a_hi, a_lo, ap, b_hi, b_lo, bp = s_hi, s_lo, sp, d_hi, d_lo, dp
            from_a[i] = True
        else:
            a_hi, a_lo, ap, b_hi, b_lo, bp = d_hi, d_lo, dp, s_hi, s_lo, sp
            from_a[i] = False
        h = np.uint64(0x9E3779B97F4A7C15)
        for v in (
            a_hi,
            a_lo,
            b_hi,
            b_lo,
            (ap << np.uint64(16))
            | bp
            | (np.uint64(vlan[i]) << np.uint64(32))
            | (np.uint64(proto[i]) << np.uint64(48)),
        ):
            h ^= v
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(29)
        out[i] = h
    return from_a, out


@njit(cache=True, inline="always")
def _same_key(i, j, src_hi, src_lo, sport, dst_hi, dst_lo, dport, vlan, proto, from_a):
    if vlan[i] != vlan[j] or proto[i] != proto[j]:
        return False
    if from_a[i] == from_a[j]:
        return (
            src_hi[i] == src_hi[j]
            and src_lo[i] == src_lo[j]
            and sport[i] == sport[j]
            and dst_hi[i] == dst_hi[j]
            and dst_lo[i] == dst_lo[j]
            and dport[i] == dport[j]
        )
    return (
        src_hi[i] == dst_hi[j]
        and src_lo[i] == dst_lo[j]
        and sport[i] == dport[j]
        and dst_hi[i] == src_hi[j]
        and dst_lo[i] == src_lo[j]
        and dport[i] == sport[j]
    )


@njit(cache=True)
def segment_flows(
    h, src_hi, src_lo, sport, dst_hi, dst_lo, dport, vlan, proto, from_a, ts, flags, idle_ns, active_ns
):
    """Split packets sorted by (key hash, time) into flows.

    Returns per-flow arrays: start index, end reason (REASON_*), whether endpoint "a"
    is the client, whether a SYN was seen, and whether a later flow of the same
    5-tuple follows (so this one can no longer grow).
    """
    n = ts.shape[0]
    starts = np.empty(n + 1, np.int64)
    reason = np.zeros(n + 1, np.uint8)
    client_a = np.zeros(n + 1, np.bool_)
    syn_seen = np.zeros(n + 1, np.bool_)
    followed = np.zeros(n + 1, np.bool_)
    nf = 0
    first_ts = np.int64(0)
    last_ts = np.int64(0)
    fin_a = False
    fin_b = False
    closed = False
    for i in range(n):
        f = flags[i]
        is_tcp = proto[i] == 6
        syn_only = is_tcp and (f & _SYN) != 0 and (f & _ACK) == 0
        new = False
        cut = REASON_OPEN
        if (
            i == 0
            or h[i] != h[i - 1]
            or not _same_key(i, i - 1, src_hi, src_lo, sport, dst_hi, dst_lo, dport, vlan, proto, from_a)
        ):
            new = True
        else:
            if ts[i] - last_ts > idle_ns:
                new = True
                cut = REASON_IDLE
            elif active_ns > 0 and ts[i] - first_ts > active_ns:
                new = True
                cut = REASON_ACTIVE
            elif closed and syn_only:
                new = True
            if new:
                followed[nf - 1] = True
                if reason[nf - 1] == REASON_OPEN:
                    reason[nf - 1] = cut
        if new:
            starts[nf] = i
            first_ts = ts[i]
            fin_a = False
            fin_b = False
            closed = False
            if syn_only:
                client_a[nf] = from_a[i]
                syn_seen[nf] = True
            elif cut == REASON_IDLE or cut == REASON_ACTIVE:
                client_a[nf] = client_a[nf - 1]  # a timeout split continues the same conversation
            elif is_tcp and (f & _SYN) != 0:
                client_a[nf] = not from_a[i]  # a SYN/ACK comes from the server
            else:
                client_a[nf] = from_a[i]
            nf += 1
        elif syn_only and not syn_seen[nf - 1]:
            client_a[nf - 1] = from_a[i]
            syn_seen[nf - 1] = True
        last_ts = ts[i]
        if is_tcp:
            if f & _RST:
                closed = True
                if reason[nf - 1] == REASON_OPEN:
                    reason[nf - 1] = REASON_RST
            if f & _FIN:
                if from_a[i]:
                    fin_a = True
                else:
                    fin_b = True
                if fin_a and fin_b and not closed:
                    closed = True
                    if reason[nf - 1] == REASON_OPEN:
                        reason[nf - 1] = REASON_FIN
    starts[nf] = n
    return starts[: nf + 1], reason[:nf], client_a[:nf], syn_seen[:nf], followed[:nf]


@njit(cache=True, inline="always")
def _plausible_header(data, p, end):
    if p + 5 > end:
        return False
    t = data[p]
    if t < 20 or t > 24 or data[p + 1] != 3 or data[p + 2] > 4:
        return False
    ln = (np.int64(data[p + 3]) << 8) | np.int64(data[p + 4])
    return 0 < ln <= TLS_MAX_RECORD


@njit(cache=True)
def _grow(out_ts, out_len, out_dir, out_type, out_flow, k):
    """Double the message buffers (rare: only when a flow has more records than packets)."""
    if True:
        cap = out_ts.shape[0] * 2 + 16
        n_ts = np.empty(cap, out_ts.dtype)
        n_len = np.empty(cap, out_len.dtype)
        n_dir = np.empty(cap, out_dir.dtype)
        n_type = np.empty(cap, out_type.dtype)
        n_flow = np.empty(cap, out_flow.dtype)
        n_ts[:k] = out_ts[:k]
        n_len[:k] = out_len[:k]
        n_dir[:k] = out_dir[:k]
        n_type[:k] = out_type[:k]
        n_flow[:k] = out_flow[:k]
        out_ts, out_len, out_dir, out_type, out_flow = n_ts, n_len, n_dir, n_type, n_flow
    return out_ts, out_len, out_dir, out_type, out_flow


@njit(cache=True)
def walk_messages(starts, is_tls, is_tcp, pkt_dir, pkt_ts, pkt_seq, pkt_plen, pkt_pcap, pkt_poff, data):
    """Turn each flow's packets into messages.

    TLS flows: each direction's TCP byte stream is followed by sequence number
    (retransmitted bytes skipped), and every TLS record is emitted with the time of the
    packet that completed it. A gap or an implausible header makes the walk look for a
    plausible record header in the next bytes; failing that, the direction falls back
    to one message per payload packet. Other flows: one message per payload packet.
    Returns (flow index, ts_ns, length, dir, content type) arrays.
    """
    nflows = starts.shape[0] - 1
    cap = pkt_ts.shape[0] + 16
    o_ts = np.empty(cap, np.int64)
    o_len = np.empty(cap, np.uint32)
    o_dir = np.empty(cap, np.uint8)
    o_type = np.empty(cap, np.uint8)
    o_flow = np.empty(cap, np.int64)
    k = 0
    hdr = np.zeros((2, 5), np.uint8)
    for fl in range(nflows):
        tls = is_tls[fl]
        # per-direction state: 0 = not started, 1 = walking, 2 = fallback (one msg per packet)
        state = np.zeros(2, np.int64)
        next_seq = np.zeros(2, np.uint32)
        remaining = np.zeros(2, np.int64)  # body bytes still owed by the current record
        hdr_have = np.zeros(2, np.int64)
        rec_type = np.zeros(2, np.uint8)
        rec_len = np.zeros(2, np.int64)
        for i in range(starts[fl], starts[fl + 1]):
            plen = np.int64(pkt_plen[i])
            if plen == 0:
                continue
            d = pkt_dir[i]
            if not (tls and is_tcp[fl]) or state[d] == 2:
                if k >= o_ts.shape[0]:
                    o_ts, o_len, o_dir, o_type, o_flow = _grow(o_ts, o_len, o_dir, o_type, o_flow, k)
                o_ts[k] = pkt_ts[i]
                o_len[k] = plen
                o_dir[k] = d
                o_type[k] = 0
                o_flow[k] = fl
                k += 1
                continue
            base = pkt_poff[i]
            avail = np.int64(pkt_pcap[i])
            seq = pkt_seq[i]
            skip = np.int64(0)
            if state[d] == 0:
                state[d] = 1
                next_seq[d] = seq
            else:
                rel = np.int64(np.int32(np.uint32(seq - next_seq[d])))
                if rel < 0:
                    skip = -rel
                    if skip >= plen:
                        continue  # a pure retransmission
                elif rel > 0:
                    # bytes are missing: resynchronise on a plausible header in this packet
                    remaining[d] = 0
                    hdr_have[d] = 0
                    found = -1
                    for q in range(0, min(avail, plen) - 4):
                        if _plausible_header(data, base + q, base + avail):
                            found = q
                            break
                    next_seq[d] = seq + np.uint32(plen)
                    if found < 0:
                        state[d] = 2
                        if k >= o_ts.shape[0]:
                            o_ts, o_len, o_dir, o_type, o_flow = _grow(o_ts, o_len, o_dir, o_type, o_flow, k)
                        o_ts[k] = pkt_ts[i]
                        o_len[k] = plen
                        o_dir[k] = d
                        o_type[k] = 0
                        o_flow[k] = fl
                        k += 1
                        continue
                    skip = np.int64(found)
                    next_seq[d] = seq
            next_seq[d] = seq + np.uint32(plen)
            p = skip
            while p < plen and state[d] == 1:
                if remaining[d] > 0:
                    take = min(remaining[d], plen - p)
                    remaining[d] -= take
                    p += take
                    if remaining[d] == 0:
                        if k >= o_ts.shape[0]:
                            o_ts, o_len, o_dir, o_type, o_flow = _grow(o_ts, o_len, o_dir, o_type, o_flow, k)
                        o_ts[k] = pkt_ts[i]
                        o_len[k] = rec_len[d]
                        o_dir[k] = d
                        o_type[k] = rec_type[d]
                        o_flow[k] = fl
                        k += 1
                    continue
                if p >= avail:
                    state[d] = 2  # header bytes not captured (snap length): cannot follow
                    break
                hdr[d, hdr_have[d]] = data[base + p]
                hdr_have[d] += 1
                p += 1
                if hdr_have[d] == 5:
                    hdr_have[d] = 0
                    t = hdr[d, 0]
                    ln = (np.int64(hdr[d, 3]) << 8) | np.int64(hdr[d, 4])
                    if t < 20 or t > 24 or hdr[d, 1] != 3 or hdr[d, 2] > 4 or ln > TLS_MAX_RECORD:
                        state[d] = 2
                        break
                    rec_type[d] = t
                    rec_len[d] = ln
                    remaining[d] = ln
                    if ln == 0:
                        if k >= o_ts.shape[0]:
                            o_ts, o_len, o_dir, o_type, o_flow = _grow(o_ts, o_len, o_dir, o_type, o_flow, k)
                        o_ts[k] = pkt_ts[i]
                        o_len[k] = 0
                        o_dir[k] = d
                        o_type[k] = t
                        o_flow[k] = fl
                        k += 1
    return o_flow[:k], o_ts[:k], o_len[:k], o_dir[:k], o_type[:k]


@njit(cache=True)
def collect_prefixes(
    starts, is_tcp, pkt_dir, pkt_seq, pkt_plen, pkt_pcap, pkt_poff, data, max_bytes, max_packets
):
    """Copy the first ``max_bytes`` of each flow's payload per direction (TCP in sequence order).

    Returns (buffer, offsets) with offsets of length ``2 * nflows + 1``; slot ``2*f + d``
    holds flow ``f`` direction ``d``. Retransmitted bytes are skipped; a gap ends the prefix.
    """
    nflows = starts.shape[0] - 1
    lens = np.zeros(2 * nflows, np.int64)
    # pass 1: lengths
    for pass_no in range(2):
        if pass_no == 1:
            offs = np.zeros(2 * nflows + 1, np.int64)
            for j in range(2 * nflows):
                offs[j + 1] = offs[j] + lens[j]
            buf = np.empty(offs[-1], np.uint8)
            lens[:] = 0
        for fl in range(nflows):
            started = np.zeros(2, np.bool_)
            stopped = np.zeros(2, np.bool_)
            npk = np.zeros(2, np.int64)
            next_seq = np.zeros(2, np.uint32)
            for i in range(starts[fl], starts[fl + 1]):
                plen = np.int64(pkt_plen[i])
                if plen == 0:
                    continue
                d = pkt_dir[i]
                slot = 2 * fl + d
                if stopped[d]:
                    continue
                avail = min(np.int64(pkt_pcap[i]), plen)
                skip = np.int64(0)
                if is_tcp[fl]:
                    seq = pkt_seq[i]
                    if started[d]:
                        rel = np.int64(np.int32(np.uint32(seq - next_seq[d])))
                        if rel > 0:
                            stopped[d] = True
                            continue
                        skip = -rel
                        if skip >= plen:
                            continue
                    started[d] = True
                    next_seq[d] = seq + np.uint32(plen)
                take = min(avail - skip, max_bytes - lens[slot])
                if take > 0:
                    if pass_no == 1:
                        dst = offs[slot] + lens[slot]
                        buf[dst : dst + take] = data[pkt_poff[i] + skip : pkt_poff[i] + skip + take]
                    lens[slot] += take
                if avail < plen:
                    stopped[d] = True  # snap length cut this packet: later bytes would not follow
                npk[d] += 1
                if lens[slot] >= max_bytes or npk[d] >= max_packets:
                    stopped[d] = True
    return buf, offs


@njit(cache=True)
def gather_bytes(offs, lens, data):
    """Copy ``data[offs[i]:offs[i]+lens[i]]`` for every i into one buffer; return it and new offsets."""
    n = offs.shape[0]
    new = np.empty(n, np.int64)
    total = np.int64(0)
    for i in range(n):
        new[i] = total
        total += lens[i]
    buf = np.empty(total, np.uint8)
    for i in range(n):
        ln = lens[i]
        if ln > 0:
            buf[new[i] : new[i] + ln] = data[offs[i] : offs[i] + ln]
    return buf, new


@njit(cache=True)
def carry_lengths(starts, from_a, client_a, plen, pcap, poff, data, max_bytes):
    """Payload bytes worth keeping for each packet of a live flow.

    A flow whose first client payload looks like a TLS record (or that has no client
    payload yet) keeps everything: its records are cut later. Other flows keep only the
    packets that can still contribute to the first ``max_bytes`` of a direction.
    """
    keep = np.zeros(plen.shape[0], np.int64)
    for fl in range(starts.shape[0] - 1):
        tls_like = True
        for i in range(starts[fl], starts[fl + 1]):
            if plen[i] > 0 and pcap[i] > 0 and from_a[i] == client_a[fl]:
                b = data[poff[i]]
                tls_like = 20 <= b <= 23
                break
        seen = np.zeros(2, np.int64)
        for i in range(starts[fl], starts[fl + 1]):
            d = 0 if from_a[i] == client_a[fl] else 1
            if tls_like or seen[d] < max_bytes:
                keep[i] = pcap[i]
            seen[d] += plen[i]
    return keep
