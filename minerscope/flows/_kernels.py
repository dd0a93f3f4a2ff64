# mypy: disable-error-code="no-untyped-def"
"""Compiled inner loops of the flow assembler (numba ``@njit(cache=True)``).

One pass per packet, in capture order, against a table of live flows. The packet's
canonical 5-tuple (+VLAN) is looked up in an open-addressing hash table; the flow's
state (idle/active timeouts, TCP close, who is the client) advances exactly as a sort of
the whole capture by (5-tuple, time) would make it; the packet's compact record goes to
an append-only *packet log*; and the two things that need payload bytes are done right
away, while the batch's bytes are at hand, so no payload is ever kept:

* each side's first ``prefix_bytes`` (TCP in sequence order) go to that side's region of a
  *prefix arena* (a region moves to the end of the arena, four times larger, when it must
  grow; a full arena is compacted when a quarter of it is garbage);
* each side's TCP byte stream is followed by sequence number and every TLS record is
  written to a *record log* (speculatively: whether the flow is TLS is decided from its
  prefix when it ends; then these records replace the one-message-per-packet default).

State is indexed by *side* (0: sent by the canonically lower endpoint "a"), not by
direction, because a late SYN may still change which side is the client. When flows end,
:func:`take_packets` and :func:`take_records` group their log entries by flow (a counting
sort) and compact what stays, so memory follows the live flows: 23 bytes per packet of
a live flow, its TLS records, and its prefixes.

Flow slot states: ``FREE`` (unused), ``LIVE``, ``EXPIRED`` (silent longer than the idle
timeout, waiting to be emitted), ``DONE`` (cut by a later packet of the same 5-tuple,
waiting to be emitted), ``GHOST`` (emitted after expiring; its 5-tuple, client side and
last time are remembered for ``ghost_ns`` so the conversation's next flow keeps its
client, as if the capture had been assembled in one piece; past a table size the oldest
ghosts make room for live flows, see ``assemble.GHOST_ROOM``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from minerscope.bytescan import find_byte
from minerscope.capture.prefetch import prefetch
from minerscope.memcopy import copy_items

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
MAX_PREAMBLE_PACKETS = 8
"""Packets of a side (from the connection's start) that may precede its first TLS record: a
proxy's request and reply (SOCKS 5 with a password: 3; a chain of proxies: more) or a
STARTTLS exchange. Their records are then framed from the ClientHello/ServerHello on."""

ST_FREE, ST_LIVE, ST_GHOST, ST_DONE, ST_EXPIRED = 0, 1, 2, 3, 4

# flow key columns (uint64): endpoint a, endpoint b, ports|vlan|proto, hash
KEY_COLS = 6
# flow state columns (int64)
C_ST, C_FIRST, C_LAST, C_REASON, C_CLIENT_A, C_SYN, C_FIN_A, C_FIN_B, C_CLOSED, C_NPK, C_IPV = range(11)
C_SIDE = 11  # first per-side column; side s uses C_SIDE + s * SIDE_COLS + W_*/P_*
W_STATE, W_NEXT, W_REM, W_HAVE, W_TYPE, W_LEN, W_HDR, W_FB = range(8)
P_STARTED, P_STOPPED, P_NPK, P_NEXT, P_LEN, P_OFF, P_CAP = range(8, 15)
SIDE_COLS = 15
STATE_COLS = C_SIDE + 2 * SIDE_COLS

# counters (int64 array shared with Python)
K_PLOG, K_MLOG, K_PBYTES, K_GARBAGE, K_FREE, K_CLOCK, K_IP, K_PDEAD, K_MDEAD = range(9)
N_COUNTERS = 9
# K_PLOG/K_MLOG: entries the packet/message log holds; K_PDEAD/K_MDEAD: how many of them
# were handed out already (marked DEAD, dropped at a later take: see _compacting)

LOOKAHEAD = 8
"""Packets ahead of the one being tracked whose flow state is prefetched (a power of two).

Live flows' state is megabytes, read at addresses the hash decides, so most packets of a
flow that is not an elephant would otherwise wait on memory two or three times."""
RING = 2 * LOOKAHEAD
"""Packets ahead whose hash-table slot is prefetched: the slot says where the flow's state
is, so it must be in cache by the time the state is requested, LOOKAHEAD packets later."""

ETHERNET_HEADER = 14
"""Added to a packet's IP length to give the frame size the features read: the size it would
have as untagged Ethernet, the framing the model learnt. The capture's own framing (raw IP,
Linux cooked, VLAN tags, ERSPAN or VXLAN around a mirrored frame, Ethernet padding to 60
bytes) would otherwise move every size by a few bytes and the scores with it."""

_NS = 1_000_000_000  # ns -> s: int64 / int is float64 true division, as numpy's ``ts_ns / _NS``


@njit(cache=True, inline="always")
def _mix(h, v):
    h ^= v
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(29)
    return h


@njit(cache=True, inline="always")
def _plausible_header(data, p, end):
    if p + 5 > end:
        return False
    t = data[p]
    if t < 20 or t > 24 or data[p + 1] != 3 or data[p + 2] > 4:
        return False
    ln = (np.int64(data[p + 3]) << 8) | np.int64(data[p + 4])
    return 0 < ln <= TLS_MAX_RECORD


@njit(cache=True, inline="always")
def _preamble_like(hdr, data, poff, avail, plen):
    """Whether a side's first five bytes (``hdr``, little-endian), not a TLS record, open a
    plaintext exchange that may precede TLS: a SOCKS request or reply (``04 01``, ``05 n``,
    ``05 00``, ``00 5a``), or a text line (HTTP CONNECT and its reply, STARTTLS dialogues:
    five printable bytes, and this packet ends a line). Not ciphertext or a certificate's
    middle that a reordered capture delivered first: those keep the old fallback."""
    b0 = hdr & 0xFF
    b1 = (hdr >> 8) & 0xFF
    if (b0 == 4 or b0 == 5) and 1 <= b1 <= 5:
        return True
    if (b0 == 5 and (b1 == 0 or b1 == 2 or b1 == 0xFF)) or (b0 == 0 and 0x5A <= b1 <= 0x5D):
        return True
    for q in range(5):
        c = (hdr >> (8 * q)) & 0xFF
        if c < 32 or c > 126:
            return False
    return avail == plen and avail > 0 and data[poff + avail - 1] == 10


@njit(cache=True, inline="always")
def _canonical_key(rows, i):
    """Row ``i``'s flow key as ``fkey[:, 0:5]`` holds it, endpoint a being the lower
    (address, port), and whether the packet comes from a."""
    s_hi = rows[i].src_hi
    s_lo = rows[i].src_lo
    d_hi = rows[i].dst_hi
    d_lo = rows[i].dst_lo
    sp = np.uint64(rows[i].sport)
    dp = np.uint64(rows[i].dport)
    from_a = s_hi < d_hi or (s_hi == d_hi and (s_lo < d_lo or (s_lo == d_lo and sp <= dp)))
    if from_a:
        a_hi, a_lo, ap, b_hi, b_lo, bp = s_hi, s_lo, sp, d_hi, d_lo, dp
    else:
        a_hi, a_lo, ap, b_hi, b_lo, bp = d_hi, d_lo, dp, s_hi, s_lo, sp
    misc = (ap << np.uint64(16)) | bp | (np.uint64(rows[i].vlan) << np.uint64(32))
    misc |= np.uint64(rows[i].proto) << np.uint64(48)
    return from_a, a_hi, a_lo, b_hi, b_lo, misc


EPHEMERAL_PORT = 32768
"""Where the ports clients are handed start on Linux (32768-60999); Windows and the IANA
range start at 49152."""


@njit(cache=True, inline="always")
def _client_port_pair(sport, dport):
    """Whether the sender of a TCP connection's first *captured* packet, past its handshake,
    is the client, judged by the ports: a capture that starts while a miner is connected
    often opens with the pool's job push, and taking its sender for the client mirrors
    every directional feature (a TLS LTC miner on 443 scored 0.008 instead of 1.0).

    The client holds the ephemeral port when only one side does; between two ports below
    the ephemeral range the server holds the lower (443, 3333, 8883 ...); two ephemeral
    ports or equal ports give no hint, so the first sender stays the client."""
    s_eph = sport >= EPHEMERAL_PORT
    d_eph = dport >= EPHEMERAL_PORT
    if s_eph != d_eph:
        return s_eph
    if s_eph or sport == dport:
        return True
    return sport > dport


@njit(cache=True, inline="always")
def _key_hash(rows, i):
    """Hash of row ``i``'s canonical key, as ``fkey[:, 5]``."""
    _, a_hi, a_lo, b_hi, b_lo, misc = _canonical_key(rows, i)
    h = np.uint64(0x9E3779B97F4A7C15)
    h = _mix(h, a_hi)
    h = _mix(h, a_lo)
    h = _mix(h, b_hi)
    h = _mix(h, b_lo)
    return _mix(h, misc)


@njit(cache=True)
def track(
    rows, order, start, data, fkey, fst, htab, free, cnt,
    lg_slot, lg_ts, lg_wire, lg_size, lg_plen, lg_side, lg_flags, lg_frag,
    m_slot, m_ord, m_ts, m_len, m_side, m_type, pbytes,
    idle_ns, active_ns, ghost_ns, max_bytes, max_packets,
):  # fmt: skip
    """Advance the flow table by the packets ``rows[order[start:]]`` (all rows when ``order`` is empty).

    Returns the position reached: less than the row count when a log or the free slot
    list ran short (the caller grows them and calls again from there).
    """
    n = order.shape[0] if order.shape[0] > 0 else rows.shape[0]
    hmask = htab.shape[0] - 1
    fflat = fst.reshape(-1)
    kflat = fkey.reshape(-1)
    # two stages ahead: RING packets ahead, hash the packet and request its hash-table
    # slot; LOOKAHEAD ahead, read that slot (in cache by now) and request the flow's state
    ring = np.zeros(RING, np.uint64)  # hashes of the packets ahead, by position
    for j in range(start, min(start + RING, n)):
        hj = _key_hash(rows, order[j] if order.shape[0] > 0 else j)
        ring[j & (RING - 1)] = hj
        prefetch(htab, np.int64(hj & np.uint64(hmask)))
    for j in range(start, n):
        i = order[j] if order.shape[0] > 0 else j
        h = ring[j & (RING - 1)]
        if j + RING < n:
            ia = order[j + RING] if order.shape[0] > 0 else j + RING
            ha = _key_hash(rows, ia)
            ring[(j + RING) & (RING - 1)] = ha
            prefetch(htab, np.int64(ha & np.uint64(hmask)))
        if j + LOOKAHEAD < n:
            sa = htab[np.int64(ring[(j + LOOKAHEAD) & (RING - 1)] & np.uint64(hmask))]
            if sa >= 0:
                prefetch(kflat, sa * KEY_COLS)
                prefetch(fflat, sa * STATE_COLS)
                prefetch(fflat, sa * STATE_COLS + 8)
                prefetch(fflat, sa * STATE_COLS + C_SIDE + W_STATE)
                prefetch(fflat, sa * STATE_COLS + C_SIDE + P_STOPPED)
                prefetch(fflat, sa * STATE_COLS + C_SIDE + SIDE_COLS + W_STATE)
                prefetch(fflat, sa * STATE_COLS + C_SIDE + SIDE_COLS + P_STOPPED)
        if rows[i].ip_version == 0:
            continue
        plen = np.int64(rows[i].payload_len)
        if (
            cnt[K_PLOG] >= lg_slot.shape[0]
            or cnt[K_FREE] < 1
            or cnt[K_MLOG] + plen // 5 + 2 > m_slot.shape[0]
            or cnt[K_PBYTES] + max_bytes > pbytes.shape[0]
        ):
            return j
        ts = rows[i].ts_ns
        cnt[K_IP] += 1
        if ts > cnt[K_CLOCK]:
            cnt[K_CLOCK] = ts
        from_a, a_hi, a_lo, b_hi, b_lo, misc = _canonical_key(rows, i)
        proto = rows[i].proto
        pos = np.int64(h & np.uint64(hmask))
        found = -1
        while True:
            s = htab[pos]
            if s < 0:
                break
            if (
                fkey[s, 5] == h
                and fkey[s, 4] == misc
                and fkey[s, 1] == a_lo
                and fkey[s, 3] == b_lo
                and fkey[s, 0] == a_hi
                and fkey[s, 2] == b_hi
            ):
                found = s
                break
            pos = (pos + 1) & hmask
        # --- flow boundaries (as a sort by (5-tuple, time) followed by one walk would find) ---
        f = np.int64(rows[i].tcp_flags)
        is_tcp = proto == 6
        syn_only = is_tcp and (f & _SYN) != 0 and (f & _ACK) == 0
        new = False
        inherit = -1
        reuse = False
        if found < 0:
            new = True
        else:
            st = fst[found, C_ST]
            if st == ST_LIVE:
                cut = REASON_OPEN
                if ts - fst[found, C_LAST] > idle_ns:
                    new = True
                    cut = REASON_IDLE
                elif active_ns > 0 and ts - fst[found, C_FIRST] > active_ns:
                    new = True
                    cut = REASON_ACTIVE
                elif fst[found, C_CLOSED] != 0 and syn_only:
                    new = True
                if new:
                    if fst[found, C_REASON] == REASON_OPEN:
                        fst[found, C_REASON] = cut
                    fst[found, C_ST] = ST_DONE
                    if cut != REASON_OPEN:
                        inherit = fst[found, C_CLIENT_A]
            elif st == ST_EXPIRED:
                new = True
                fst[found, C_ST] = ST_DONE
                inherit = fst[found, C_CLIENT_A]
            else:  # ghost of an expired flow
                new = True
                reuse = True
                if ts - fst[found, C_LAST] <= ghost_ns:
                    inherit = fst[found, C_CLIENT_A]
        if new:
            if reuse:
                s = found
            else:
                cnt[K_FREE] -= 1
                s = free[cnt[K_FREE]]
                htab[pos] = s
                fkey[s, 0] = a_hi
                fkey[s, 1] = a_lo
                fkey[s, 2] = b_hi
                fkey[s, 3] = b_lo
                fkey[s, 4] = misc
                fkey[s, 5] = h
            fst[s, :] = 0
            fst[s, C_ST] = ST_LIVE
            fst[s, C_FIRST] = ts
            fst[s, C_IPV] = rows[i].ip_version
            fst[s, C_SIDE + W_FB] = -1
            fst[s, C_SIDE + SIDE_COLS + W_FB] = -1
            if syn_only:
                fst[s, C_CLIENT_A] = from_a
                fst[s, C_SYN] = 1
            elif inherit >= 0:
                fst[s, C_CLIENT_A] = inherit  # a timeout split continues the same conversation
            elif is_tcp and (f & _SYN) != 0:
                fst[s, C_CLIENT_A] = not from_a  # a SYN/ACK comes from the server
            elif is_tcp:
                sent_by_client = _client_port_pair(np.int64(rows[i].sport), np.int64(rows[i].dport))
                fst[s, C_CLIENT_A] = from_a if sent_by_client else not from_a
            else:
                fst[s, C_CLIENT_A] = from_a
        else:
            s = found
            if syn_only and fst[s, C_SYN] == 0:
                fst[s, C_CLIENT_A] = from_a
                fst[s, C_SYN] = 1
        fst[s, C_LAST] = ts
        if is_tcp:
            if f & _RST:
                fst[s, C_CLOSED] = 1
                if fst[s, C_REASON] == REASON_OPEN:
                    fst[s, C_REASON] = REASON_RST
            if f & _FIN:
                if from_a:
                    fst[s, C_FIN_A] = 1
                else:
                    fst[s, C_FIN_B] = 1
                if fst[s, C_FIN_A] != 0 and fst[s, C_FIN_B] != 0 and fst[s, C_CLOSED] == 0:
                    fst[s, C_CLOSED] = 1
                    if fst[s, C_REASON] == REASON_OPEN:
                        fst[s, C_REASON] = REASON_FIN
        # --- the packet log ---
        sd = 0 if from_a else 1
        k = cnt[K_PLOG]
        lg_slot[k] = s
        lg_ts[k] = ts
        lg_wire[k] = rows[i].wire_len
        lg_size[k] = rows[i].ip_len + ETHERNET_HEADER
        lg_plen[k] = rows[i].payload_len
        lg_side[k] = sd
        lg_flags[k] = f
        lg_frag[k] = rows[i].frag
        cnt[K_PLOG] = k + 1
        ordinal = fst[s, C_NPK]
        fst[s, C_NPK] = ordinal + 1
        if plen == 0:
            continue
        b = C_SIDE + sd * SIDE_COLS
        poff = rows[i].payload_off
        avail = min(np.int64(rows[i].payload_cap), plen)
        seq = np.uint32(rows[i].seq)
        # --- payload prefix of this side ---
        if fst[s, b + P_STOPPED] == 0:
            ok = True
            skip = np.int64(0)
            if is_tcp:
                if fst[s, b + P_STARTED] != 0:
                    rel = np.int64(np.int32(np.uint32(seq - np.uint32(fst[s, b + P_NEXT]))))
                    if rel > 0:
                        fst[s, b + P_STOPPED] = 1
                        ok = False
                    else:
                        skip = -rel
                        if skip >= plen:
                            ok = False
                if ok:
                    fst[s, b + P_STARTED] = 1
                    fst[s, b + P_NEXT] = np.int64(np.uint32(seq + np.uint32(plen)))
            if ok:
                take = min(avail - skip, max_bytes - fst[s, b + P_LEN])
                if take > 0:
                    have = fst[s, b + P_LEN]
                    if have + take > fst[s, b + P_CAP]:  # move to a larger region at the end of the arena
                        # four times larger: a side that fills its 4096 bytes leaves 1280 bytes of
                        # garbage on the way (256, 1024) instead of 3840, so the arena is compacted
                        # (all live prefixes moved) about once per capture instead of every few batches
                        cap = min(max(4 * fst[s, b + P_CAP], have + take, 256), max_bytes)
                        o = cnt[K_PBYTES]
                        src = fst[s, b + P_OFF]
                        copy_items(pbytes, o, pbytes, src, have)
                        cnt[K_GARBAGE] += fst[s, b + P_CAP]
                        cnt[K_PBYTES] = o + cap
                        fst[s, b + P_OFF] = o
                        fst[s, b + P_CAP] = cap
                    o = fst[s, b + P_OFF] + have
                    copy_items(pbytes, o, data, poff + skip, take)
                    fst[s, b + P_LEN] = have + take
                if avail < plen:
                    fst[s, b + P_STOPPED] = 1  # snap length cut this packet: later bytes would not follow
                fst[s, b + P_NPK] += 1
                if fst[s, b + P_LEN] >= max_bytes or fst[s, b + P_NPK] >= max_packets:
                    fst[s, b + P_STOPPED] = 1
        # --- TLS records of this side's byte stream (kept if the flow turns out to be TLS) ---
        if not is_tcp or fst[s, b + W_STATE] == 2:
            continue
        avail = np.int64(rows[i].payload_cap)
        skip = np.int64(0)
        if fst[s, b + W_STATE] == 0:
            fst[s, b + W_STATE] = 1
        elif fst[s, b + W_STATE] == 3:
            # a plaintext preamble (a proxy request, STARTTLS): TLS starts with a packet that
            # opens with a handshake record, or the side is not TLS after all
            if not (_plausible_header(data, poff, poff + avail) and data[poff] == 22):
                fst[s, b + W_HDR] += 1
                if fst[s, b + W_HDR] >= MAX_PREAMBLE_PACKETS:
                    fst[s, b + W_STATE] = 2
                    fst[s, b + W_FB] = fst[s, b + W_LEN]  # as if it had given up at once
                    fst[s, b + W_HDR] = 0
                    fst[s, b + W_LEN] = 0
                continue
            fst[s, b + W_STATE] = 1
            fst[s, b + W_HDR] = 0
            fst[s, b + W_LEN] = 0
        else:
            rel = np.int64(np.int32(np.uint32(seq - np.uint32(fst[s, b + W_NEXT]))))
            if rel < 0:
                skip = -rel
                if skip >= plen:
                    continue  # a pure retransmission
            elif rel > 0:
                # bytes are missing: resynchronise on a plausible header in this packet
                fst[s, b + W_REM] = 0
                fst[s, b + W_HAVE] = 0
                fst[s, b + W_HDR] = 0
                found_at = -1
                for q in range(0, min(avail, plen) - 4):
                    if _plausible_header(data, poff + q, poff + avail):
                        found_at = q
                        break
                if found_at < 0:
                    fst[s, b + W_NEXT] = np.int64(np.uint32(seq + np.uint32(plen)))
                    fst[s, b + W_STATE] = 2
                    fst[s, b + W_FB] = ordinal  # this packet and later ones: one message each
                    continue
                skip = np.int64(found_at)
        fst[s, b + W_NEXT] = np.int64(np.uint32(seq + np.uint32(plen)))
        p = skip
        while p < plen:
            rem = fst[s, b + W_REM]
            if rem > 0:
                take = min(rem, plen - p)
                rem -= take
                p += take
                fst[s, b + W_REM] = rem
                if rem == 0:
                    k = cnt[K_MLOG]
                    m_slot[k] = s
                    m_ord[k] = ordinal
                    m_ts[k] = ts
                    m_len[k] = fst[s, b + W_LEN]
                    m_side[k] = sd
                    m_type[k] = fst[s, b + W_TYPE]
                    cnt[K_MLOG] = k + 1
                continue
            if p >= avail:
                fst[s, b + W_STATE] = 2  # header bytes not captured (snap length): cannot follow
                fst[s, b + W_FB] = ordinal + 1
                break
            have = fst[s, b + W_HAVE]
            hdr = fst[s, b + W_HDR] | (np.int64(data[poff + p]) << (8 * have))
            have += 1
            p += 1
            if have < 5:
                fst[s, b + W_HAVE] = have
                fst[s, b + W_HDR] = hdr
                continue
            fst[s, b + W_HAVE] = 0
            fst[s, b + W_HDR] = 0
            t = hdr & 0xFF
            ln = (((hdr >> 24) & 0xFF) << 8) | ((hdr >> 32) & 0xFF)
            if (
                t < 20
                or t > 24
                or ((hdr >> 8) & 0xFF) != 3
                or ((hdr >> 16) & 0xFF) > 4
                or ln > TLS_MAX_RECORD
            ):
                if (
                    fst[s, b + W_TYPE] == 0
                    and fst[s, C_SYN] != 0
                    and _preamble_like(hdr, data, poff, avail, plen)
                ):
                    # the side's first bytes from the connection's start are no record: wait
                    # a few packets for TLS to start (state 3); W_LEN keeps the fallback
                    fst[s, b + W_STATE] = 3
                    fst[s, b + W_LEN] = ordinal + 1
                    fst[s, b + W_HDR] = 1
                    break
                fst[s, b + W_STATE] = 2
                fst[s, b + W_FB] = ordinal + 1
                break
            fst[s, b + W_TYPE] = t
            if t == 23 and fst[s, b + P_LEN] > 0:
                # application data: the rest of this side is ciphertext, so its prefix (kept
                # for handshake metadata and Stratum) is complete, after a handshake or, when
                # the capture began mid-session, once records have framed two packets
                first = pbytes[fst[s, b + P_OFF]]
                if first == 22 or (first == 23 and fst[s, b + P_NPK] >= 2):
                    fst[s, b + P_STOPPED] = 1
            fst[s, b + W_LEN] = ln
            fst[s, b + W_REM] = ln
            if ln == 0:
                k = cnt[K_MLOG]
                m_slot[k] = s
                m_ord[k] = ordinal
                m_ts[k] = ts
                m_len[k] = 0
                m_side[k] = sd
                m_type[k] = t
                cnt[K_MLOG] = k + 1
    return n


@njit(cache=True)
def rebuild_hash(fkey, fst, htab):
    """Re-insert every slot that owns its 5-tuple (live, expired, ghost) into an empty ``htab``."""
    htab[:] = -1
    hmask = htab.shape[0] - 1
    for s in range(fst.shape[0]):
        st = fst[s, C_ST]
        if st == ST_LIVE or st == ST_EXPIRED or st == ST_GHOST:
            pos = np.int64(fkey[s, 5] & np.uint64(hmask))
            while htab[pos] >= 0:
                pos = (pos + 1) & hmask
            htab[pos] = s


DEAD = -1
"""``lg_slot``/``m_slot`` of a log entry already handed out (see :func:`take_packets`)."""


@njit(cache=True)
def _group(slot, n, rank, nranks):
    """CSR offsets per rank of the log entries ``[0, n)`` whose slot is emitted (``rank >= 0``)."""
    offs = np.zeros(nranks + 1, np.int64)
    for i in range(n):
        s = slot[i]
        if s >= 0 and rank[s] >= 0:
            offs[rank[s] + 1] += 1
    for r in range(nranks):
        offs[r + 1] += offs[r]
    return offs


@njit(cache=True, inline="always")
def _compacting(offs, nranks, n, dead):
    """Whether this take also squeezes the log: when at least half of its ``n`` entries
    are out (``dead`` earlier ones plus the ones taken now). Otherwise taken entries are
    only marked :data:`DEAD`: an emit of a few flows then reads the log's slot column once
    instead of moving every live record (on the 2M-packet bench file three such emits
    moved 3.9 M records, 0.27 s, to hand out 47 k). At most half the log is dead after
    any take, so memory stays within twice the live records."""
    return 2 * (dead + offs[nranks]) >= n


@njit(cache=True)
def take_packets(
    lg_slot, lg_ts, lg_wire, lg_size, lg_plen, lg_side, lg_flags, lg_frag, n, dead, rank, nranks, client_side
):
    """Move the packet records of emitted slots out, grouped by rank in arrival order; the
    log keeps the rest, squeezed or with the taken ones marked dead (:func:`_compacting`).

    ``client_side[r]`` is the side of flow ``r``'s client, so each record's direction is
    known here. ``dead``: entries of ``[0, n)`` marked before. Returns (CSR offsets, ts in
    seconds, Ethernet-equivalent size, payload length, direction, flags, per-flow sums
    ``(nranks, 6)`` (bytes on the wire):
    c2s packets, c2s bytes, bytes, c2s payload, payload, fragments; entries the log now
    holds; how many of them are dead).
    """
    offs = _group(lg_slot, n, rank, nranks)
    compact = _compacting(offs, nranks, n, dead)
    fill = offs[:-1].copy()
    m = offs[nranks]
    o_ts = np.empty(m, np.float64)  # seconds, as the table wants them (no int64 copy to divide)
    o_size = np.empty(m, np.uint32)
    o_plen = np.empty(m, np.uint32)
    o_dir = np.empty(m, np.uint8)
    o_flags = np.empty(m, np.uint8)
    sums = np.zeros((nranks, 6), np.int64)
    k = 0
    for i in range(n):
        s = lg_slot[i]
        r = rank[s] if s >= 0 else -1
        if r >= 0:
            if not compact:
                lg_slot[i] = DEAD
            j = fill[r]
            fill[r] = j + 1
            wire = np.int64(lg_wire[i])
            plen = np.int64(lg_plen[i])
            c2s = lg_side[i] == client_side[r]
            o_ts[j] = lg_ts[i] / _NS
            o_size[j] = lg_size[i]
            o_plen[j] = lg_plen[i]
            o_dir[j] = 0 if c2s else 1
            o_flags[j] = lg_flags[i]
            if c2s:
                sums[r, 0] += 1
                sums[r, 1] += wire
                sums[r, 3] += plen
            sums[r, 2] += wire
            sums[r, 4] += plen
            sums[r, 5] += lg_frag[i]
        elif compact and s >= 0:
            lg_slot[k] = s
            lg_ts[k] = lg_ts[i]
            lg_wire[k] = lg_wire[i]
            lg_size[k] = lg_size[i]
            lg_plen[k] = lg_plen[i]
            lg_side[k] = lg_side[i]
            lg_flags[k] = lg_flags[i]
            lg_frag[k] = lg_frag[i]
            k += 1
    if compact:
        return offs, o_ts, o_size, o_plen, o_dir, o_flags, sums, k, 0
    return offs, o_ts, o_size, o_plen, o_dir, o_flags, sums, n, dead + m


@njit(cache=True)
def take_records(m_slot, m_ord, m_ts, m_len, m_side, m_type, n, dead, rank, nranks):
    """:func:`take_packets` for the TLS record log: (offsets, ordinal, ts, length, side, type,
    entries held, dead among them)."""
    offs = _group(m_slot, n, rank, nranks)
    compact = _compacting(offs, nranks, n, dead)
    fill = offs[:-1].copy()
    m = offs[nranks]
    o_ord = np.empty(m, np.int64)
    o_ts = np.empty(m, np.int64)
    o_len = np.empty(m, np.uint32)
    o_side = np.empty(m, np.uint8)
    o_type = np.empty(m, np.uint8)
    k = 0
    for i in range(n):
        s = m_slot[i]
        r = rank[s] if s >= 0 else -1
        if r >= 0:
            if not compact:
                m_slot[i] = DEAD
            j = fill[r]
            fill[r] = j + 1
            o_ord[j] = m_ord[i]
            o_ts[j] = m_ts[i]
            o_len[j] = m_len[i]
            o_side[j] = m_side[i]
            o_type[j] = m_type[i]
        elif compact and s >= 0:
            m_slot[k] = s
            m_ord[k] = m_ord[i]
            m_ts[k] = m_ts[i]
            m_len[k] = m_len[i]
            m_side[k] = m_side[i]
            m_type[k] = m_type[i]
            k += 1
    if compact:
        return offs, o_ord, o_ts, o_len, o_side, o_type, k, 0
    return offs, o_ord, o_ts, o_len, o_side, o_type, n, dead + m


@njit(cache=True, inline="always")
def _direction_cols(fst, s, d):
    """Where flow ``s``'s state for direction ``d`` (0: client->server) starts: its side's columns."""
    side = d if fst[s, C_CLIENT_A] != 0 else 1 - d
    return C_SIDE + side * SIDE_COLS


@njit(cache=True)
def take_prefixes(fst, slots, pbytes):
    """Copy the prefixes of ``slots`` out of the arena into one buffer (flow by flow,
    client->server then server->client).

    Returns the buffer; an int64 array ``(len(slots), 4)`` of where each flow's
    client->server bytes lie in it (offset, length), then its server->client bytes; and
    two hints for handshake parsing about the client->server bytes: whether they may
    hold a TLS handshake (they start with a record type, or hold ``16 03``, a handshake
    record's header, anywhere: searched while the bytes just copied are in cache), and
    whether they start with a capital letter, as HTTP methods do.
    """
    nf = slots.shape[0]
    spans = np.zeros((nf, 4), np.int64)
    record_like = np.zeros(nf, np.bool_)
    capital = np.zeros(nf, np.bool_)
    total = 0
    for i in range(nf):
        for d in range(2):
            total += fst[slots[i], _direction_cols(fst, slots[i], d) + P_LEN]
    data = np.empty(total, np.uint8)
    at = 0
    for i in range(nf):
        s = slots[i]
        for d in range(2):
            b = _direction_cols(fst, s, d)
            ln = fst[s, b + P_LEN]
            copy_items(data, at, pbytes, fst[s, b + P_OFF], ln)
            spans[i, 2 * d] = at
            spans[i, 2 * d + 1] = ln
            at += ln
        if spans[i, 1] > 0:
            c0 = data[spans[i, 0]]
            capital[i] = 65 <= c0 <= 90
            record_like[i] = (20 <= c0 <= 23) or holds_pair(
                data, spans[i, 0], spans[i, 0] + spans[i, 1], 0x16, 0x03
            )
    return data, spans, record_like, capital


@njit(cache=True, inline="always")
def holds_pair(data, start, end, a, b):
    """Whether ``data[start:end]`` holds byte ``a`` directly followed by byte ``b``."""
    p = start
    last = end - 1  # the last place ``a`` can be
    while p < last:
        p = find_byte(data, p, last, a)
        if p < last and data[p + 1] == b:
            return True
        p += 1
    return False


@njit(cache=True)
def compact_prefixes(fst, pbytes, used):
    """Move every live prefix region to the front of the arena (in offset order); return bytes used."""
    n = 0
    for s in range(fst.shape[0]):
        for side in range(2):
            if fst[s, C_SIDE + side * SIDE_COLS + P_CAP] > 0:
                n += 1
    key = np.empty(n, np.int64)
    who = np.empty(n, np.int64)
    n = 0
    for s in range(fst.shape[0]):
        for side in range(2):
            b = C_SIDE + side * SIDE_COLS
            if fst[s, b + P_CAP] > 0:
                key[n] = fst[s, b + P_OFF]
                who[n] = s * 2 + side
                n += 1
    order = np.argsort(key)
    o = 0
    for j in range(n):
        s = who[order[j]] // 2
        b = C_SIDE + (who[order[j]] % 2) * SIDE_COLS
        src = fst[s, b + P_OFF]
        ln = fst[s, b + P_LEN]
        if src != o:  # regions only move down, in order: nothing still needed is overwritten
            copy_items(pbytes, o, pbytes, src, ln)
        fst[s, b + P_OFF] = o
        # a side still taking bytes keeps its room: cut to its length, its next packet would
        # move it to the end again and leave it all as garbage
        if fst[s, b + P_STOPPED] != 0:
            fst[s, b + P_CAP] = ln
        o += fst[s, b + P_CAP]
    return o


@njit(cache=True)
def build_messages(pkt_offs, use_records, pkt_dir, pkt_ts, pkt_plen, rec_offs, rec_ord, rec_ts, rec_len,
                   rec_dir, rec_type, fallback):  # fmt: skip
    """Messages of emitted flows: TLS records for TLS flows, one per payload packet otherwise.

    For a TLS flow, direction ``d`` switches to one message per packet from its packet
    number ``fallback[f, d]`` on (``-1``: never), where the record walk lost the stream.
    ``pkt_ts`` is in seconds, ``rec_ts`` in nanoseconds. Two passes (count, then fill), so
    the outputs have their exact size: an emission of a million packets allocates no
    scratch the size of its packets. Returns (CSR offsets per flow, ts seconds, length,
    dir, content type).
    """
    nflows = pkt_offs.shape[0] - 1
    offs = np.zeros(nflows + 1, np.int64)
    o_ts = np.empty(0, np.float64)
    o_len = np.empty(0, np.uint32)
    o_dir = np.empty(0, np.uint8)
    o_type = np.empty(0, np.uint8)
    for fill in range(2):
        if fill == 1:
            for fl in range(nflows):
                offs[fl + 1] += offs[fl]
            m = offs[nflows]
            o_ts = np.empty(m, np.float64)
            o_len = np.empty(m, np.uint32)
            o_dir = np.empty(m, np.uint8)
            o_type = np.empty(m, np.uint8)
        for fl in range(nflows):
            k = offs[fl]
            r = rec_offs[fl]
            r_end = rec_offs[fl + 1]
            for i in range(pkt_offs[fl], pkt_offs[fl + 1]):
                j = i - pkt_offs[fl]
                if use_records[fl]:
                    while r < r_end and rec_ord[r] == j:
                        if fill == 1:
                            o_ts[k] = rec_ts[r] / _NS
                            o_len[k] = rec_len[r]
                            o_dir[k] = rec_dir[r]
                            o_type[k] = rec_type[r]
                        k += 1
                        r += 1
                    d = pkt_dir[i]
                    if fallback[fl, d] < 0 or j < fallback[fl, d]:
                        continue
                if pkt_plen[i] == 0:
                    continue
                if fill == 1:
                    o_ts[k] = pkt_ts[i]
                    o_len[k] = pkt_plen[i]
                    o_dir[k] = pkt_dir[i]
                    o_type[k] = 0
                k += 1
            if fill == 0:
                offs[fl + 1] = k - offs[fl]
    return offs, o_ts, o_len, o_dir, o_type


@njit(cache=True)
def end_flows(fst, expire_before, final):
    """Mark the flows that ended, in one pass over the slot table (its columns are strided).

    A live flow last seen before ``expire_before`` ends ``idle`` (unless TCP closed it
    first) and, unless ``final``, becomes ``EXPIRED``; with ``final`` every other open
    live flow ends ``eof``. Returns whether each slot is out (ended, or live when
    ``final``) and the packets those slots hold.
    """
    n = fst.shape[0]
    out = np.zeros(n, np.bool_)
    packets = np.int64(0)
    for s in range(n):
        st = fst[s, C_ST]
        if st == ST_LIVE:
            if fst[s, C_LAST] < expire_before:
                if fst[s, C_REASON] == REASON_OPEN:
                    fst[s, C_REASON] = REASON_IDLE
                if not final:
                    fst[s, C_ST] = ST_EXPIRED
                out[s] = True
            elif final:
                if fst[s, C_REASON] == REASON_OPEN:
                    fst[s, C_REASON] = REASON_EOF
                out[s] = True
        elif st == ST_DONE or st == ST_EXPIRED:
            out[s] = True
        if out[s]:
            packets += fst[s, C_NPK]
    return out, packets
