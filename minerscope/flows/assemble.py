"""Packets become bidirectional flows: a streaming, vectorised flow table builder.

Why this shape. Captures are large and mining flows are long, so the assembler is a
stream: :class:`FlowAssembler` takes :class:`~minerscope.capture.packets.PacketBatch`
blocks one at a time and returns every flow that can no longer grow as a
:class:`~minerscope.flows.records.FlowTable` chunk. One compiled pass per batch
(:func:`minerscope.flows._kernels.track`) looks each packet's 5-tuple (+VLAN) up in a hash
table of live flows, advances that flow's state, appends a compact record (time, lengths,
side, flags: 23 bytes) to a packet log, and reads the payload bytes it needs *now*: the
prefix of each side and the TLS record boundaries of each TCP byte stream. No payload is
kept after its batch, so memory follows the live flows (their records and prefixes), not
the file. When flows end, their records are grouped by flow in one counting sort and the
summary is numpy work; Python runs per *flow* only to cut the prefix bytes and where a
flow has a cleartext handshake worth parsing. The flows do not depend on how the capture
is cut into batches (for a capture in time order).

Rules. The client is the sender of the SYN without ACK; failing that the receiver of a
SYN/ACK; failing that, for TCP, the side with the client-like port (ephemeral against
not, else the higher of two non-ephemeral ports: a capture often starts with a pool's
push to a miner already connected); failing that the first sender. A flow ends after
``idle_timeout`` seconds of silence, when it has run ``active_timeout`` seconds (off by default), or when TCP closed
it (FIN from both sides, or RST); packets after a close stay with the closed flow until a
new SYN opens the next one. The flow after a timeout split keeps the client of the flow
before it (its 5-tuple is remembered :data:`GHOST_SECONDS` past the idle timeout, within
the memory bound :data:`GHOST_ROOM`); a flow that went silent for ``idle_timeout`` ends
``idle`` even when the capture ends later.

Metadata. The first :attr:`FlowAssembler.prefix_bytes` of each direction (TCP in
sequence order) are kept per flow as ``FlowTable.payload_prefixes``; from them the
assembler fills ``is_tls``/``tls_version``/``sni``/``alpn``/``ja4``/``ja3`` (ClientHello)
and ``http_host``/``ws_path`` (HTTP request head); a flow to an explicit proxy (SOCKS,
HTTP CONNECT, an absolute URL) gets the target in ``proxy_host``/``proxy_port`` and the
rest from the bytes inside the tunnel. DNS answers seen anywhere map server
addresses to names (``dns_names``); :func:`assemble` fills that column from every answer
in the capture, a streaming caller gets the answers seen so far.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.capture import handshake, proxyreq
from minerscope.capture.packets import PROTO_TCP, PROTO_UDP, PacketBatch, ReadReport, format_ip
from minerscope.flows import _kernels as k
from minerscope.flows.arena import GrowingArray
from minerscope.flows.prefixes import PayloadPrefixes
from minerscope.flows.records import FLOW_SUMMARY_SCHEMA, FlowTable
from minerscope.flows.tls13 import relabel_encrypted_handshake
from minerscope.untrusted import path_text

DEFAULT_IDLE_TIMEOUT = 120.0
"""Seconds of silence after which a flow ends (nfstream and CICFlowMeter use 120 s too)."""
DEFAULT_PREFIX_BYTES = 4096
"""Payload bytes kept per flow and direction for handshake parsing and stage 0. A TLS side
stops earlier: with the packet that starts its application data after a handshake."""
DEFAULT_PREFIX_PACKETS = 64
"""Payload packets per direction that may contribute to the prefix."""
MAX_DNS_NAMES_PER_IP = 16
"""Security limit: names remembered for one address from DNS answers."""
MAX_DNS_ADDRESSES = 1_000_000
"""Security limit: addresses remembered from DNS answers over a whole capture."""
DNS_PORTS = (53, 5353)

_REASONS = pl.Series(["", "fin", "rst", "idle", "active", "eof"], dtype=pl.Utf8)
"""``end_reason`` text by ``k.REASON_*`` code (a polars gather: no Python string per flow)."""
_NS = 1_000_000_000


@dataclass(slots=True)
class _Metadata:
    is_tls: bool = False
    tls_version: str = ""
    sni: str = ""
    alpn: str = ""
    ja4: str = ""
    ja3: str = ""
    http_host: str = ""
    ws_path: str = ""
    proxy_host: str = ""
    proxy_port: int = 0


def looks_like_tls(data: bytes) -> bool:
    """True when ``data`` starts with a plausible TLS record header (type 20-23, version 3.x)."""
    if len(data) < 5 or not 20 <= data[0] <= 23 or data[1] != 3 or data[2] > 4:
        return False
    return 0 < int.from_bytes(data[3:5], "big") <= k.TLS_MAX_RECORD


_HTTP_PREFIXES = tuple(m + b" " for m in handshake.HTTP_METHODS)
_HTTP_PREFIX_MAX = max(map(len, _HTTP_PREFIXES))
_SOCKS_VERSIONS = (4, 5)
_CLIENT_HELLO_RE = re.compile(rb"\x16\x03[\x00-\x04]..\x01", re.DOTALL)


def _find_client_hello(data: bytes) -> int:
    """Offset of the first TLS record that starts a ClientHello in ``data``, or -1."""
    m = _CLIENT_HELLO_RE.search(data)
    return m.start() if m else -1


def handshake_metadata(c2s: bytes, s2c: bytes, proto: int) -> dict[str, object]:
    """Cleartext metadata of one flow from the first bytes of each direction.

    Args:
        c2s: first payload bytes client->server (TCP in sequence order).
        s2c: first payload bytes server->client.
        proto: IP protocol of the flow (6 TCP, 17 UDP).

    Returns:
        Values for the ``is_tls``, ``tls_version``, ``sni``, ``alpn``, ``ja4``, ``ja3``,
        ``http_host``, ``ws_path``, ``proxy_host`` and ``proxy_port`` columns (empty
        strings and port 0 when absent).
    """
    tunnel = proxyreq.tunnelled(c2s, s2c) if proto == PROTO_TCP else None
    if tunnel is None:
        return _metadata(c2s, s2c, proto)
    # through an explicit proxy the server that matters is the tunnel's target, not the
    # proxy; what the tunnel carries (TLS, HTTP) is read past the request and the reply
    request, inner_c2s, inner_s2c = tunnel
    return _metadata(inner_c2s, inner_s2c, proto) | {"proxy_host": request.host, "proxy_port": request.port}


def _metadata(c2s: bytes, s2c: bytes, proto: int) -> dict[str, object]:
    """:func:`handshake_metadata` of bytes that open with no proxy request."""
    meta = _Metadata()
    if proto == PROTO_TCP and looks_like_tls(c2s):
        meta.is_tls = True
        try:
            hello = handshake.parse_client_hello(c2s) if c2s[0] == 0x16 else None
        except handshake.HandshakeParseError:
            hello = None
        if hello is not None and c2s[0] == 0x16:
            meta.tls_version = hello.version_name
            meta.sni = hello.sni or ""
            meta.alpn = ",".join(hello.alpn)
            meta.ja4 = handshake.ja4(hello)
            meta.ja3 = handshake.ja3(hello)
        if s2c[:1] == b"\x16":
            try:
                meta.tls_version = handshake.TLS_VERSION_NAMES.get(
                    handshake.parse_server_hello_version(s2c), meta.tls_version
                )
            except handshake.HandshakeParseError:
                pass
    elif proto == PROTO_TCP and (at := _find_client_hello(c2s)) > 0:
        # STARTTLS, PostgreSQL SSLRequest, an unknown proxy: a plaintext preamble, then a ClientHello
        meta = _Metadata(**_metadata(c2s[at:], b"", proto))  # type: ignore[arg-type]
    elif proto == PROTO_TCP and handshake.looks_like_http_request(c2s):
        try:
            head = handshake.parse_http_request(c2s)
        except handshake.HandshakeParseError:
            head = None
        if head is not None:
            meta.http_host = head.host or ""
            if head.websocket_upgrade:
                meta.ws_path = head.path
    return {
        "is_tls": meta.is_tls,
        "tls_version": meta.tls_version,
        "sni": meta.sni,
        "alpn": meta.alpn,
        "ja4": meta.ja4,
        "ja3": meta.ja3,
        "http_host": meta.http_host,
        "ws_path": meta.ws_path,
        "proxy_host": meta.proxy_host,
        "proxy_port": meta.proxy_port,
    }


_I64_MIN = int(np.iinfo(np.int64).min)
_I64_MAX = int(np.iinfo(np.int64).max)
_track: Any = k.track  # (numba's dispatcher stub does not type many arguments)
METADATA_COLUMNS = (
    "is_tls", "tls_version", "sni", "alpn", "ja4", "ja3", "http_host", "ws_path", "proxy_host", "proxy_port",
)  # fmt: skip
"""Summary columns read from a flow's first bytes (:func:`handshake_metadata`)."""
GHOST_SECONDS = 3600.0
"""How long an idle-expired flow's 5-tuple is remembered (beyond the idle timeout) so the
conversation's next flow keeps its client side; a bound on memory, not a rule of flows."""
GHOST_ROOM = 1 << 16
"""Slot-table size (~25 MB) up to which every ghost younger than :data:`GHOST_SECONDS` is kept.

Beyond it the table grows only for flows that still hold records: a full table first
forgets its oldest ghosts (by last packet) until a quarter of it is free, and doubles
only when live and not yet emitted flows fill three quarters of it. So the table stays
under ~2.7 times the peak of live flows (and ``GHOST_ROOM``), whatever the capture's
length; before, a ghost lived an hour of capture time and a long capture with many short
flows grew the table with every flow it had seen (97 MB at 8M packets of the benchmark).
Which ghost is forgotten under that pressure may depend on how the capture is batched."""
_MIN_SLOTS = 1024
_MIN_LOG = 1 << 16


def _doubled(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``arr`` followed by as many zero rows (growing the slot table).

    ``np.zeros`` of a large block takes fresh pages the kernel zero-fills lazily, so only
    the old half is written here. Concatenating with a ``zeros_like`` built a zeroed copy
    first and then wrote both halves into yet another block: about twice the page faults,
    and half the CPU of :meth:`_Logs._more_slots` on the 2M-packet benchmark.
    """
    out = np.zeros((2 * arr.shape[0], *arr.shape[1:]), arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class _Logs:
    """The growable arrays the tracking kernel writes: flow slots, hash, and three logs."""

    _KERNEL_ARGS = (
        "fkey", "fst", "htab", "free", "cnt",
        "lg_slot", "lg_ts", "lg_wire", "lg_size", "lg_plen", "lg_side", "lg_flags", "lg_frag",
        "m_slot", "m_ord", "m_ts", "m_len", "m_side", "m_type", "pbytes",
    )  # fmt: skip
    __slots__ = (*(name for name in _KERNEL_ARGS if name != "pbytes"), "arena", "_grown")

    _PLOG = {"lg_slot": np.int32, "lg_ts": np.int64, "lg_wire": np.uint32, "lg_size": np.uint32,
             "lg_plen": np.uint32,
             "lg_side": np.uint8, "lg_flags": np.uint8, "lg_frag": np.uint8}  # fmt: skip
    _MLOG = {"m_slot": np.int32, "m_ord": np.int64, "m_ts": np.int64, "m_len": np.uint32,
             "m_side": np.uint8, "m_type": np.uint8}  # fmt: skip

    fkey: npt.NDArray[np.uint64]
    fst: npt.NDArray[np.int64]
    htab: npt.NDArray[np.int32]
    free: npt.NDArray[np.int32]
    cnt: npt.NDArray[np.int64]
    lg_slot: npt.NDArray[np.int32]
    lg_ts: npt.NDArray[np.int64]
    lg_wire: npt.NDArray[np.uint32]
    lg_size: npt.NDArray[np.uint32]
    lg_plen: npt.NDArray[np.uint32]
    lg_side: npt.NDArray[np.uint8]
    lg_flags: npt.NDArray[np.uint8]
    lg_frag: npt.NDArray[np.uint8]
    m_slot: npt.NDArray[np.int32]
    m_ord: npt.NDArray[np.int64]
    m_ts: npt.NDArray[np.int64]
    m_len: npt.NDArray[np.uint32]
    m_side: npt.NDArray[np.uint8]
    m_type: npt.NDArray[np.uint8]
    arena: GrowingArray
    _grown: dict[str, GrowingArray]
    """The packet and message logs, each growing in place (:mod:`minerscope.flows.arena`);
    the attribute of the same name is its current array, reset by :meth:`_resize` (the one
    place a log changes size), so kernels and readers take plain attributes."""

    def __init__(self) -> None:
        self.fkey = np.zeros((_MIN_SLOTS, k.KEY_COLS), np.uint64)
        self.fst = np.zeros((_MIN_SLOTS, k.STATE_COLS), np.int64)
        self.htab = np.full(2 * _MIN_SLOTS, -1, np.int32)
        self.free = np.arange(_MIN_SLOTS - 1, -1, -1, dtype=np.int32)
        self.cnt = np.zeros(k.N_COUNTERS, np.int64)
        self.cnt[k.K_FREE] = _MIN_SLOTS
        self.cnt[k.K_CLOCK] = _I64_MIN
        self._grown = {}
        for group in (self._PLOG, self._MLOG):
            for name, dtype in group.items():
                self._grown[name] = GrowingArray(_MIN_LOG, dtype)
                setattr(self, name, self._grown[name].array)
        self.arena = GrowingArray(_MIN_LOG, np.uint8)

    @property
    def pbytes(self) -> npt.NDArray[np.uint8]:
        """The payload-prefix arena's bytes (they grow in place: see :mod:`minerscope.flows.arena`)."""
        return self.arena.array

    def args(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._KERNEL_ARGS)

    def grow(self, need_bytes: int, prefix_bytes: int, clock: int, ghost_ns: int) -> None:
        """Make room for at least one more packet of ``need_bytes`` payload."""
        cnt = self.cnt
        for group, used, extra in (
            (self._PLOG, k.K_PLOG, 1),
            (self._MLOG, k.K_MLOG, need_bytes // 5 + 2),
        ):
            size = next(iter(group))
            cap = getattr(self, size).shape[0]
            if cnt[used] + extra > cap:  # by half: the packet log is the second-largest live state
                new_cap = max(3 * cap // 2, int(cnt[used]) + extra)
                for name in group:
                    self._resize(name, new_cap, int(cnt[used]))
        if cnt[k.K_PBYTES] + prefix_bytes > self.pbytes.shape[0]:
            if 4 * cnt[k.K_GARBAGE] >= cnt[k.K_PBYTES]:
                self.compact_prefixes()
            need = int(cnt[k.K_PBYTES]) + prefix_bytes
            if 4 * need > 3 * self.pbytes.shape[0]:  # grow by half: the arena is the largest live state
                size = max(3 * self.pbytes.shape[0] // 2, 2 * need)
                self.arena.resize(size, int(cnt[k.K_PBYTES]))
        if cnt[k.K_FREE] < 1:
            self._more_slots(clock, ghost_ns)

    def _more_slots(self, clock: int, ghost_ns: int) -> None:
        """Make free slots: forget ghosts (aged ones; oldest first past :data:`GHOST_ROOM`), or double."""
        fst = self.fst
        n = fst.shape[0]
        st = fst[:, k.C_ST]
        ghost = st == k.ST_GHOST
        keep = ghost & (fst[:, k.C_LAST] >= clock - ghost_ns)
        held = n - int(np.count_nonzero(ghost)) - int(np.count_nonzero(st == k.ST_FREE))
        room = 3 * n // 4 - held  # ghosts that fit while a quarter of the table stays free
        fst[ghost & ~keep, k.C_ST] = k.ST_FREE
        n_keep = int(np.count_nonzero(keep))
        if n >= GHOST_ROOM and room >= 0:
            if n_keep > room:  # the table grows for live flows only: the oldest ghosts go
                young = np.flatnonzero(keep)
                old = young[np.argpartition(fst[young, k.C_LAST], n_keep - room - 1)[: n_keep - room]]
                fst[old, k.C_ST] = k.ST_FREE
        elif n - held - n_keep < n // 4:
            self.fkey = _doubled(self.fkey)
            self.fst = _doubled(fst)
            self.htab = np.full(4 * n, -1, np.int32)
        free = np.flatnonzero(self.fst[:, k.C_ST] == k.ST_FREE)[::-1].astype(np.int32)
        self.free = np.zeros(self.fst.shape[0], np.int32)
        self.free[: free.shape[0]] = free
        self.cnt[k.K_FREE] = free.shape[0]
        k.rebuild_hash(self.fkey, self.fst, self.htab)

    def compact_prefixes(self) -> None:
        """Drop the arena's garbage (regions of emitted flows, regions that moved on growing)."""
        self.cnt[k.K_PBYTES] = k.compact_prefixes(self.fst, self.pbytes, int(self.cnt[k.K_PBYTES]))
        self.cnt[k.K_GARBAGE] = 0

    def shrink(self) -> None:
        """Give back log capacity far above what the live flows use (after many flows ended)."""
        cnt = self.cnt
        for group, used in ((self._PLOG, k.K_PLOG), (self._MLOG, k.K_MLOG)):
            cap = getattr(self, next(iter(group))).shape[0]
            n = int(cnt[used])
            if cap > _MIN_LOG and cap > 4 * n:
                for name in group:
                    self._resize(name, max(_MIN_LOG, 2 * n), n)
        used_bytes = int(cnt[k.K_PBYTES])
        if self.pbytes.shape[0] > _MIN_LOG and self.pbytes.shape[0] > 4 * used_bytes:
            self.compact_prefixes()
            self.arena.resize(max(_MIN_LOG, 2 * int(cnt[k.K_PBYTES])), int(cnt[k.K_PBYTES]))

    def _resize(self, name: str, size: int, used: int) -> None:
        """Give log array ``name`` ``size`` entries, keeping its first ``used``: in place,
        in its reserved address space (:mod:`minerscope.flows.arena`), so a growing log is
        not copied and a shrinking one hands its tail back to the kernel."""
        setattr(self, name, self._grown[name].resize(size, used))

    def release(self, slots: npt.NDArray[np.int64]) -> None:
        """Put emitted slots that no longer own their 5-tuple back on the free stack."""
        top = int(self.cnt[k.K_FREE])
        self.fst[slots, k.C_ST] = k.ST_FREE
        self.free[top : top + slots.shape[0]] = slots[::-1]
        self.cnt[k.K_FREE] = top + slots.shape[0]


@dataclass(slots=True)
class FlowAssembler:
    """Streaming flow assembly: ``feed`` batches, collect finished flows, ``finish`` at the end.

    The result does not depend on how the capture is cut into batches: a flow ends when
    its 5-tuple has been silent for ``idle_timeout`` (``end_reason`` ``idle``, decided by
    capture time, whether the next packet of that 5-tuple or of any other flow shows it),
    after ``active_timeout``, or when TCP closed it and a new SYN follows; ``finish``
    ends the rest (``eof``, or ``idle`` when the capture went on past their timeout).

    Attributes:
        idle_timeout: seconds of silence that end a flow.
        active_timeout: seconds after which a flow is cut (None or <= 0: never).
        prefix_bytes: payload bytes kept per flow and direction.
        prefix_packets: payload packets per direction that may contribute to the prefix.
        capture: name written in the ``capture`` column (default: the batch's source).
    """

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    active_timeout: float | None = None
    prefix_bytes: int = DEFAULT_PREFIX_BYTES
    prefix_packets: int = DEFAULT_PREFIX_PACKETS
    capture: str | None = None
    packets_seen: int = 0
    non_ip_packets: int = 0
    _logs: _Logs = field(default_factory=_Logs)
    _last_emit_clock: int = _I64_MIN
    _dns: dict[str, set[str]] = field(default_factory=dict)
    _source: str = ""

    def __post_init__(self) -> None:
        # (a NaN passes any comparison's "else": test what must hold, finiteness included)
        if not (math.isfinite(self.idle_timeout) and self.idle_timeout > 0):
            raise ValueError(f"idle_timeout must be a finite number > 0, got {self.idle_timeout}")
        active = self.active_timeout
        if active is not None and not (math.isfinite(active) and active >= 0):
            raise ValueError(f"active_timeout must be a finite number >= 0, got {active}")

    @property
    def live_packets(self) -> int:
        """Packets of flows still open (their compact records are held until their flow ends)."""
        cnt = self._logs.cnt
        return int(cnt[k.K_PLOG] - cnt[k.K_PDEAD])

    @property
    def open_flows(self) -> int:
        """Flows held now: open, or ended and waiting to be handed out. This is the flow
        cache whose growth on long live runs users watch (nfstream #24, #60); a shorter
        ``idle_timeout`` is what bounds it."""
        state = self._logs.fst[:, k.C_ST]
        return int(np.count_nonzero((state == k.ST_LIVE) | (state >= k.ST_DONE)))

    @property
    def dns_names(self) -> dict[str, set[str]]:
        """Address text -> names, from every DNS answer seen so far."""
        return self._dns

    @property
    def clock_ns(self) -> int | None:
        """Capture time: the latest packet's or :meth:`advance`'s nanoseconds (None before either)."""
        clock = int(self._logs.cnt[k.K_CLOCK])
        return None if clock == _I64_MIN else clock

    @property
    def _idle_ns(self) -> int:
        return int(self.idle_timeout * _NS)

    def feed(self, batch: PacketBatch) -> FlowTable:
        """Add one block of packets; return the flows that ended (possibly none)."""
        if batch.source and not self._source:
            self._source = batch.source
        rows = batch.packets
        n = int(rows.shape[0])
        self.packets_seen += n
        if n == 0:
            return FlowTable.empty()
        logs = self._logs
        ip_before = int(logs.cnt[k.K_IP])
        self._learn_dns(rows, batch.data)
        ts = rows["ts_ns"]
        # a capture in time order (the usual case) is walked as it is; otherwise each
        # flow's packets must still be met in time order
        order = np.zeros(0, np.int64) if bool(np.all(ts[1:] >= ts[:-1])) else np.argsort(ts, kind="stable")
        active_ns = int(self.active_timeout * _NS) if self.active_timeout else 0
        ghost_ns = self._idle_ns + int(GHOST_SECONDS * _NS)
        pos = 0
        while True:
            pos = _track(
                rows, order, pos, batch.data, *logs.args(), self._idle_ns, active_ns, ghost_ns,
                self.prefix_bytes, self.prefix_packets,
            )  # fmt: skip
            if pos >= n:
                break
            i = int(order[pos]) if order.shape[0] else pos
            logs.grow(int(rows[i]["payload_len"]), self.prefix_bytes, int(logs.cnt[k.K_CLOCK]), ghost_ns)
        self.non_ip_packets += n - (int(logs.cnt[k.K_IP]) - ip_before)
        return self._emit(final=False)

    def advance(self, now_ns: int) -> FlowTable:
        """Move capture time on to ``now_ns`` without a packet; return the flows that ended by then.

        Only packets move capture time, so on a quiet link (live capture) a flow that went
        silent, or whose window ran out, would wait for the next packet. This ends what a
        later packet would: every flow idle longer than ``idle_timeout`` (as a packet of any
        flow shows) and every flow older than ``active_timeout`` (as its own next packet
        shows), with the same records and end reasons, and creates no flow. The flow after
        such a cut still keeps its client side. One difference from waiting: a flow cut at
        its window that then stays silent is already out, ended ``active``, where waiting
        would have ended it ``idle``.

        Args:
            now_ns: capture time (the packets' clock: Unix nanoseconds for a live capture).
                The clock never goes back: a value at or before :attr:`clock_ns` leaves it as
                it is, and only what is due at the current clock ends.

        Returns:
            The flows that ended (possibly none), like :meth:`feed`.
        """
        logs = self._logs
        clock = int(logs.cnt[k.K_CLOCK])
        if now_ns > clock:
            clock = logs.cnt[k.K_CLOCK] = min(int(now_ns), _I64_MAX)
        if clock == _I64_MIN:  # no packet and no time yet: nothing can end
            return FlowTable.empty()
        if self.active_timeout:
            # a window cut, as the kernel makes it on the flow's next packet (idle takes
            # precedence there too); the slot turns EXPIRED, not DONE, so that after it is
            # emitted its 5-tuple stays a ghost and the next piece keeps the client side
            fst = logs.fst
            due = (
                (fst[:, k.C_ST] == k.ST_LIVE)
                & (clock - fst[:, k.C_FIRST] > int(self.active_timeout * _NS))
                & (clock - fst[:, k.C_LAST] <= self._idle_ns)
            )
            if due.any():
                slots = np.flatnonzero(due)
                still_open = fst[slots, k.C_REASON] == k.REASON_OPEN
                fst[slots[still_open], k.C_REASON] = k.REASON_ACTIVE
                fst[slots, k.C_ST] = k.ST_EXPIRED
        return self._emit(final=False)

    def finish(self) -> FlowTable:
        """Close every live flow (``end_reason`` ``eof`` unless TCP closed it or it had gone idle)."""
        return self._emit(final=True)

    # -- internals ------------------------------------------------------------------

    def _learn_dns(self, rows: npt.NDArray[np.void], data: npt.NDArray[np.uint8]) -> None:
        sport = rows["sport"]
        cand = (sport == DNS_PORTS[0]) | (sport == DNS_PORTS[1])
        if not cand.any():
            return
        proto = rows["proto"]
        cand &= ((proto == PROTO_UDP) | (proto == PROTO_TCP)) & (rows["payload_cap"] > 12)
        cand &= rows["ip_version"] != 0
        for i in np.flatnonzero(cand):
            off = int(rows["payload_off"][i])
            raw = data[off : off + int(rows["payload_cap"][i])].tobytes()
            if proto[i] == PROTO_TCP:
                raw = raw[2:]
            try:
                msg = handshake.parse_dns(raw)
            except (handshake.HandshakeParseError, ValueError):
                continue
            if not msg.is_response:
                continue
            for addr, names in msg.ip_names().items():
                known = self._dns.get(addr)
                if known is None:
                    if len(self._dns) >= MAX_DNS_ADDRESSES:
                        continue
                    known = self._dns[addr] = set()
                for name in names:
                    if len(known) < MAX_DNS_NAMES_PER_IP:
                        known.add(name)

    def _emit(self, final: bool) -> FlowTable:
        """Hand out the flows that ended; their log records are dropped now or marked for a
        later emit to drop (see ``_kernels._compacting``)."""
        logs = self._logs
        fst = logs.fst
        clock = int(logs.cnt[k.K_CLOCK])
        # one compiled pass: numpy would walk the strided slot table once per column and mask
        out, ended = k.end_flows(fst, max(clock - self._idle_ns, _I64_MIN), final)
        if not final:
            # Emitting reads every live packet record's slot (to find the ended flows'), so wait until
            # the ended flows hold a fair share of them or capture time moved on by an idle timeout.
            if not ended or (
                4 * ended < self.live_packets and clock - self._last_emit_clock <= self._idle_ns
            ):
                return FlowTable.empty()
        self._last_emit_clock = clock
        slots = np.flatnonzero(out)
        if slots.shape[0] == 0:
            return FlowTable.empty()
        slots = slots[np.lexsort((logs.fkey[slots, 5], fst[slots, k.C_FIRST]))]
        table = self._build(slots)
        if final:
            self._logs = _Logs()
        else:
            became_ghost = fst[slots, k.C_ST] == k.ST_EXPIRED
            fst[slots[became_ghost], k.C_ST] = k.ST_GHOST
            logs.release(slots[~became_ghost])
            logs.shrink()
        return table

    def _build(self, slots: npt.NDArray[np.int64]) -> FlowTable:
        logs = self._logs
        cnt = logs.cnt
        nflows = slots.shape[0]
        rank = np.full(logs.fst.shape[0], -1, np.int64)
        rank[slots] = np.arange(nflows)
        fst = logs.fst[slots]
        key = logs.fkey[slots]
        client_a = fst[:, k.C_CLIENT_A] != 0
        client_side = np.where(client_a, 0, 1).astype(np.uint8)

        # packets
        offsets, pkt_ts, size_u32, plen_u32, pkt_dir, flags, sums, held, dead = k.take_packets(
            logs.lg_slot, logs.lg_ts, logs.lg_wire, logs.lg_size, logs.lg_plen, logs.lg_side, logs.lg_flags,
            logs.lg_frag, int(cnt[k.K_PLOG]), int(cnt[k.K_PDEAD]), rank, nflows, client_side,
        )  # fmt: skip
        cnt[k.K_PLOG], cnt[k.K_PDEAD] = held, dead
        packets = np.diff(offsets)
        c2s_packets, c2s_bytes, all_bytes, c2s_pl, all_pl, frags = sums.T
        first_ts = fst[:, k.C_FIRST]
        last_ts = fst[:, k.C_LAST]

        # endpoints: the client is src
        src_hi = np.where(client_a, key[:, 0], key[:, 2])
        src_lo = np.where(client_a, key[:, 1], key[:, 3])
        dst_hi = np.where(client_a, key[:, 2], key[:, 0])
        dst_lo = np.where(client_a, key[:, 3], key[:, 1])
        misc = key[:, 4]
        a_port = ((misc >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.uint16)
        b_port = (misc & np.uint64(0xFFFF)).astype(np.uint16)
        sport = np.where(client_a, a_port, b_port)
        dport = np.where(client_a, b_port, a_port)
        vlan = ((misc >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.uint16)
        proto = ((misc >> np.uint64(48)) & np.uint64(0xFF)).astype(np.uint8)
        src_txt, dst_txt = _format_addresses(src_hi, src_lo, dst_hi, dst_lo)

        # payload prefixes and handshake metadata
        data, spans, record_like, capital = k.take_prefixes(logs.fst, slots, logs.pbytes)
        prefixes = PayloadPrefixes(data, spans)
        cap_cols = np.array([k.C_SIDE + sd * k.SIDE_COLS + c for sd in (0, 1) for c in (k.P_CAP, k.P_LEN)])
        cnt[k.K_GARBAGE] += int(logs.fst[slots][:, cap_cols[0]].sum() + logs.fst[slots][:, cap_cols[2]].sum())
        logs.fst[np.ix_(slots, cap_cols)] = 0  # their regions are garbage, dropped when the arena is full
        is_tcp = proto == PROTO_TCP
        meta_cols = _metadata_columns(
            prefixes, np.flatnonzero(is_tcp & (spans[:, 1] > 0)), record_like, capital
        )
        is_tls = meta_cols["is_tls"].to_numpy()

        # messages: TLS records (for TLS flows) or one per payload packet
        m_offs, r_ord, r_ts, r_len, r_side, r_type, held, dead = k.take_records(
            logs.m_slot, logs.m_ord, logs.m_ts, logs.m_len, logs.m_side, logs.m_type, int(cnt[k.K_MLOG]),
            int(cnt[k.K_MDEAD]), rank, nflows,
        )  # fmt: skip
        cnt[k.K_MLOG], cnt[k.K_MDEAD] = held, dead
        rec_dir = (r_side != np.repeat(client_side, np.diff(m_offs))).astype(np.uint8)
        side_fb = fst[:, [k.C_SIDE + k.W_FB, k.C_SIDE + k.SIDE_COLS + k.W_FB]]
        fallback = np.where(client_a[:, None], side_fb, side_fb[:, ::-1])
        msg_offsets, msg_ts, m_len, m_dir, m_type = k.build_messages(
            offsets, is_tls & is_tcp, pkt_dir, pkt_ts, plen_u32, m_offs, r_ord, r_ts, r_len, rec_dir,
            r_type, fallback,
        )  # fmt: skip
        relabel_encrypted_handshake(msg_offsets, m_dir, m_type)

        dns: list[str] | pl.Series
        if self._dns:
            dns = [",".join(sorted(self._dns.get(d, ()))) for d in dst_txt.to_list()]
        else:
            dns = _constant("", nflows, pl.Utf8)
        source = path_text(self.capture if self.capture is not None else self._source)
        summary = pl.DataFrame(
            {
                "flow_id": np.arange(nflows, dtype=np.int64),
                "capture": _constant(source, nflows, pl.Utf8),
                "proto": proto,
                "ip_version": fst[:, k.C_IPV].astype(np.uint8),
                "src": src_txt,
                "sport": sport,
                "dst": dst_txt,
                "dport": dport,
                "vlan": vlan,
                "first_seen": first_ts / _NS,
                "last_seen": last_ts / _NS,
                "duration": (last_ts - first_ts) / _NS,
                "packets": packets,
                "bytes": all_bytes,
                "c2s_packets": c2s_packets,
                "s2c_packets": packets - c2s_packets,
                "c2s_bytes": c2s_bytes,
                "s2c_bytes": all_bytes - c2s_bytes,
                "c2s_payload_bytes": c2s_pl,
                "s2c_payload_bytes": all_pl - c2s_pl,
                "fragments": frags,
                "end_reason": _REASONS.gather(fst[:, k.C_REASON]),
                "syn_seen": fst[:, k.C_SYN] != 0,
                **meta_cols,
                "dns_names": dns,
                "stage0": _constant("", nflows, pl.Utf8),
            },
            schema=FLOW_SUMMARY_SCHEMA,
        )
        return FlowTable(
            summary=summary,
            pkt_offsets=offsets,
            pkt_ts=pkt_ts,
            pkt_size=size_u32,
            pkt_payload_len=plen_u32,
            pkt_dir=pkt_dir,
            pkt_flags=flags,
            msg_offsets=msg_offsets,
            msg_ts=msg_ts,
            msg_len=m_len,
            msg_dir=m_dir,
            msg_type=m_type,
            payload_prefixes=prefixes,
        )


def _constant(value: object, n: int, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
    """A column of ``n`` times ``value`` (``pl.repeat`` costs five times more per call)."""
    return pl.Series([value], dtype=dtype).new_from_index(0, n)


def _metadata_columns(
    prefixes: PayloadPrefixes,
    candidates: npt.NDArray[np.int64],
    record_like: npt.NDArray[np.bool_],
    capital: npt.NDArray[np.bool_],
) -> dict[str, pl.Series]:
    """Handshake metadata columns; only ``candidates`` (TCP flows with client bytes) whose bytes
    could hold a handshake are parsed: ``record_like`` (a TLS record type first, or ``16 03``
    anywhere) or an HTTP method first (checked where ``capital``: a capital letter first).

    Columns are blank series with the parsed flows' values scattered in: most flows have
    none, and polars builds a constant column much faster than it converts a list.
    """
    n = len(prefixes)
    # a TLS record or "16 03" in the bytes, or a SOCKS version first (a proxied flow)
    parse = record_like[candidates] | np.isin(prefixes.first_bytes(0)[candidates], _SOCKS_VERSIONS)
    head = prefixes.head
    for j in np.flatnonzero(capital[candidates] & ~parse).tolist():
        parse[j] = head(int(candidates[j]), 0, _HTTP_PREFIX_MAX).startswith(_HTTP_PREFIXES)
    parsed_at: list[int] = candidates[parse].tolist()
    parsed = [handshake_metadata(*prefixes[i], proto=PROTO_TCP) for i in parsed_at]
    blank = handshake_metadata(b"", b"", 0)
    cols: dict[str, pl.Series] = {}
    for name in METADATA_COLUMNS:
        col = _constant(blank[name], n, FLOW_SUMMARY_SCHEMA[name])
        if parsed_at:
            col = col.scatter(parsed_at, [meta[name] for meta in parsed])
        cols[name] = col
    return cols


_OCTET_TEXT = pl.Series([str(i) for i in range(256)], dtype=pl.Utf8)
"""Decimal text of every byte value: IPv4 octets are looked up, not formatted per address."""


def _ipv6_texts(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> list[str]:
    """:func:`format_ip` of each address (``hi``/``lo`` halves, none IPv4-mapped); same text.

    ``inet_ntop`` over the packed addresses runs in C iterators (``ipaddress`` is slow);
    its embedded-IPv4 spellings (``::ffff:1.2.3.4``-like) are redone by ``format_ip``.
    """
    packed = np.stack([hi, lo], axis=1).astype(">u8").tobytes()
    ends = range(16, len(packed) + 16, 16)
    ntop6 = partial(socket.inet_ntop, socket.AF_INET6)
    texts = list(map(ntop6, map(packed.__getitem__, map(slice, range(0, len(packed), 16), ends))))
    for j in [j for j, text in enumerate(texts) if "." in text]:
        texts[j] = format_ip(int(hi[j]), int(lo[j]))
    return texts


def _unique_pairs(
    hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """Distinct (hi, lo) pairs and, per input, the index of its pair (``np.unique(axis=0)``
    sorts the rows as opaque records, several times slower than this lexsort)."""
    order = np.lexsort((lo, hi))
    hs, ls = hi[order], lo[order]
    new = np.ones(order.shape[0], np.bool_)
    new[1:] = (hs[1:] != hs[:-1]) | (ls[1:] != ls[:-1])
    inverse = np.empty(order.shape[0], np.int64)
    inverse[order] = np.cumsum(new) - 1
    return hs[new], ls[new], inverse


def _format_addresses(
    src_hi: npt.NDArray[np.uint64],
    src_lo: npt.NDArray[np.uint64],
    dst_hi: npt.NDArray[np.uint64],
    dst_lo: npt.NDArray[np.uint64],
) -> tuple[pl.Series, pl.Series]:
    """Text of every address: IPv4 vectorised in polars, each distinct IPv6 address once."""
    n = src_hi.shape[0]
    hi = np.concatenate([src_hi, dst_hi])
    lo = np.concatenate([src_lo, dst_lo])
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    quad = (lo & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    octets = {f"o{j}": _OCTET_TEXT.gather((quad >> np.uint32(24 - 8 * j)) & np.uint32(255)) for j in range(4)}
    text = pl.DataFrame(octets).select(pl.concat_str(list(octets), separator=".").alias("ip")).to_series()
    other = np.flatnonzero(~v4)
    if other.shape[0]:
        uniq_hi, uniq_lo, inverse = _unique_pairs(hi[other], lo[other])
        texts = pl.Series(_ipv6_texts(uniq_hi, uniq_lo), dtype=pl.Utf8)
        text = text.scatter(other, texts.gather(inverse))
    return text[:n], text[n:]


def reorder_flows(table: FlowTable, order: npt.NDArray[np.int64]) -> FlowTable:
    """Return a table whose flow ``i`` is ``table``'s flow ``order[i]`` (flow_id renumbered)."""

    def gather(offs: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        lens = (offs[1:] - offs[:-1])[order]
        new = np.zeros(order.shape[0] + 1, np.int64)
        np.cumsum(lens, out=new[1:])
        perm = np.repeat(offs[:-1][order] - new[:-1], lens) + np.arange(int(new[-1]), dtype=np.int64)
        return new, perm

    p_off, pp = gather(table.pkt_offsets)
    m_off, mp = gather(table.msg_offsets)
    summary = table.summary[order.tolist()].with_columns(
        pl.int_range(0, len(order), dtype=pl.Int64).alias("flow_id")
    )
    prefixes = table.payload_prefixes
    return FlowTable(
        summary=summary,
        pkt_offsets=p_off,
        pkt_ts=table.pkt_ts[pp],
        pkt_size=table.pkt_size[pp],
        pkt_payload_len=table.pkt_payload_len[pp],
        pkt_dir=table.pkt_dir[pp],
        pkt_flags=table.pkt_flags[pp],
        msg_offsets=m_off,
        msg_ts=table.msg_ts[mp],
        msg_len=table.msg_len[mp],
        msg_dir=table.msg_dir[mp],
        msg_type=table.msg_type[mp],
        payload_prefixes=None if prefixes is None else PayloadPrefixes.of(prefixes).take(order),
    )


def fill_dns_names(table: FlowTable, names: dict[str, set[str]]) -> FlowTable:
    """Return ``table`` with ``dns_names`` recomputed from ``names`` (address -> names)."""
    if not len(table) or not names:
        return table
    col = [",".join(sorted(names.get(d, ()))) for d in table.summary["dst"].to_list()]
    table.summary = table.summary.with_columns(pl.Series("dns_names", col, dtype=pl.Utf8))
    return table


def assemble_capture(
    path: str | Path,
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    active_timeout: float | None = None,
    bpf: str | None = None,
    on_batch: Callable[[ReadReport], None] | None = None,
) -> tuple[FlowTable, ReadReport]:
    """Read a pcap/pcapng file and assemble all its flows (``capture`` column = the file name).

    ``bpf`` is a capture filter (tcpdump syntax): only the packets it keeps are assembled.
    ``on_batch`` sees the read report after each batch (progress: ``bytes_read``).

    Returns:
        The flow table and the reader's :class:`~minerscope.capture.packets.ReadReport`
        (``complete`` is False when the file was damaged; the flows cover what was read).

    Raises:
        NotACaptureError, UnsupportedLinkTypeError, CaptureError, InputError: from the reader.
    """
    from minerscope.capture.pcap import read_capture  # the reader pulls in its numba walker

    batches, report = read_capture(path, bpf=bpf)
    if on_batch is not None:
        batches = _reporting(batches, report, on_batch)
    table = assemble(
        batches, idle_timeout=idle_timeout, active_timeout=active_timeout, capture=Path(path).name
    )
    return table, report


def _reporting(
    batches: Iterator[PacketBatch], report: ReadReport, on_batch: Callable[[ReadReport], None]
) -> Iterator[PacketBatch]:
    for batch in batches:
        yield batch
        on_batch(report)


def assemble(
    batches: Iterable[PacketBatch],
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    active_timeout: float | None = None,
    capture: str | None = None,
) -> FlowTable:
    """Assemble every flow of a stream of batches into one table (flows ordered by first packet).

    Args:
        batches: packet batches in capture order (e.g. from the pcap reader).
        idle_timeout: seconds of silence that end a flow.
        active_timeout: seconds after which a long flow is cut (None: never).
        capture: value of the ``capture`` column (default: the batches' source).

    Returns:
        The complete :class:`FlowTable`, ``dns_names`` filled from all DNS answers.
    """
    asm = FlowAssembler(idle_timeout=idle_timeout, active_timeout=active_timeout, capture=capture)
    chunks = [asm.feed(batch) for batch in batches]
    chunks.append(asm.finish())
    table = FlowTable.concat(chunks)
    if len(table) > 1:
        order = np.argsort(table.summary["first_seen"].to_numpy(), kind="stable")
        if not np.array_equal(order, np.arange(order.shape[0])):
            table = reorder_flows(table, order)
    return fill_dns_names(table, asm.dns_names)
