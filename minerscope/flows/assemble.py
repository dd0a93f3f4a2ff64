"""Packets become bidirectional flows: a streaming, vectorised flow table builder.

Why this shape. Captures are large and mining flows are long, so the assembler is a
stream: :class:`FlowAssembler` takes :class:`~minerscope.capture.packets.PacketBatch`
blocks one at a time and returns every flow that can no longer grow as a
:class:`~minerscope.flows.records.FlowTable` chunk. Only packets of *live* flows are
kept between blocks (their rows and payload bytes), so memory follows the live flows,
not the file. Per block, grouping is numpy work: a canonical 5-tuple (+VLAN) hash, one
``lexsort`` by (key, time), ``reduceat`` sums; the parts that are sequential by nature —
idle/active timeouts, the TCP FIN/RST state, following TCP byte streams to cut TLS
records — run in numba kernels (:mod:`minerscope.flows._kernels`). Python runs per
*flow* only where a flow has a cleartext handshake worth parsing.

Rules. The client is the sender of the SYN without ACK; failing that the receiver of a
SYN/ACK; failing that the first sender. A flow ends after ``idle_timeout`` seconds of
silence, when it has run ``active_timeout`` seconds (off by default), or when TCP closed
it (FIN from both sides, or RST); packets after a close stay with the closed flow until a
new SYN opens the next one.

Metadata. The first :attr:`FlowAssembler.prefix_bytes` of each direction (TCP in
sequence order) are kept per flow as ``FlowTable.payload_prefixes``; from them the
assembler fills ``is_tls``/``tls_version``/``sni``/``alpn``/``ja4``/``ja3`` (ClientHello)
and ``http_host``/``ws_path`` (HTTP request head). DNS answers seen anywhere map server
addresses to names (``dns_names``); :func:`assemble` fills that column from every answer
in the capture, a streaming caller gets the answers seen so far.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.capture import handshake
from minerscope.capture.packets import PACKET_DTYPE, PROTO_TCP, PROTO_UDP, PacketBatch, ReadReport, format_ip
from minerscope.flows import _kernels as k
from minerscope.flows.records import FLOW_SUMMARY_SCHEMA, FlowTable

DEFAULT_IDLE_TIMEOUT = 120.0
"""Seconds of silence after which a flow ends (nfstream and CICFlowMeter use 120 s too)."""
DEFAULT_PREFIX_BYTES = 4096
"""Payload bytes kept per flow and direction for handshake parsing and stage 0."""
DEFAULT_PREFIX_PACKETS = 64
"""Payload packets per direction that may contribute to the prefix."""
MAX_DNS_NAMES_PER_IP = 16
"""Security limit: names remembered for one address from DNS answers."""
MAX_DNS_ADDRESSES = 1_000_000
"""Security limit: addresses remembered from DNS answers over a whole capture."""
DNS_PORTS = (53, 5353)

_REASONS = np.array(["", "fin", "rst", "idle", "active", "eof"], dtype=object)
_NS = 1_000_000_000


_COLUMNS = (
    "ts_ns", "wire_len", "ip_version", "proto", "frag", "tcp_flags", "vlan", "src_hi", "src_lo",
    "dst_hi", "dst_lo", "sport", "dport", "seq", "payload_off", "payload_len", "payload_cap",
)  # fmt: skip


class _Cols:
    """Packet rows as contiguous columns: gathers and numba loops on a 90-byte structured
    dtype are several times slower than on plain arrays."""

    __slots__ = ("cols",)

    def __init__(self, cols: dict[str, npt.NDArray[Any]]) -> None:
        self.cols = cols

    @classmethod
    def from_rows(cls, rows: npt.NDArray[np.void]) -> _Cols:
        return cls({name: np.ascontiguousarray(rows[name]) for name in _COLUMNS})

    @classmethod
    def empty(cls) -> _Cols:
        return cls.from_rows(np.zeros(0, dtype=PACKET_DTYPE))

    def __len__(self) -> int:
        return int(self.cols["ts_ns"].shape[0])

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.cols[name]

    def __setitem__(self, name: str, value: npt.NDArray[Any]) -> None:
        self.cols[name] = value

    def take(self, index: npt.NDArray[Any]) -> _Cols:
        return _Cols({name: col[index] for name, col in self.cols.items()})

    @staticmethod
    def cat(a: _Cols, b: _Cols) -> _Cols:
        return _Cols({name: np.concatenate([a.cols[name], b.cols[name]]) for name in a.cols})


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


def looks_like_tls(data: bytes) -> bool:
    """True when ``data`` starts with a plausible TLS record header (type 20-23, version 3.x)."""
    if len(data) < 5 or not 20 <= data[0] <= 23 or data[1] != 3 or data[2] > 4:
        return False
    return 0 < int.from_bytes(data[3:5], "big") <= k.TLS_MAX_RECORD


_HTTP_PREFIXES = tuple(m + b" " for m in handshake.HTTP_METHODS)
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
        ``http_host`` and ``ws_path`` columns (empty strings when absent).
    """
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
        # STARTTLS, PostgreSQL SSLRequest, SOCKS: a plaintext preamble, then a ClientHello
        meta = _Metadata(**handshake_metadata(c2s[at:], b"", proto))  # type: ignore[arg-type]
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
    }


@dataclass(slots=True)
class FlowAssembler:
    """Streaming flow assembly: ``feed`` batches, collect finished flows, ``finish`` at the end.

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
    _carry: _Cols = field(default_factory=_Cols.empty)
    _carry_data: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    _clock: int = np.iinfo(np.int64).min
    _last_run_clock: int = np.iinfo(np.int64).min
    _pending: list[tuple[_Cols, npt.NDArray[np.uint8]]] = field(default_factory=list)
    _pending_n: int = 0
    _dns: dict[str, set[str]] = field(default_factory=dict)
    _source: str = ""

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be > 0, got {self.idle_timeout}")
        if self.active_timeout is not None and self.active_timeout < 0:
            raise ValueError(f"active_timeout must be >= 0, got {self.active_timeout}")

    @property
    def live_packets(self) -> int:
        """Packets of flows still open (held until their flow ends)."""
        return len(self._carry) + self._pending_n

    @property
    def dns_names(self) -> dict[str, set[str]]:
        """Address text -> names, from every DNS answer seen so far."""
        return self._dns

    def feed(self, batch: PacketBatch) -> FlowTable:
        """Add one block of packets; return the flows that ended (possibly none)."""
        if batch.source and not self._source:
            self._source = batch.source
        rows = batch.packets
        self.packets_seen += int(rows.shape[0])
        ip = rows["ip_version"] != 0
        n_ip = int(np.count_nonzero(ip))
        self.non_ip_packets += int(rows.shape[0]) - n_ip
        if n_ip == 0:
            return FlowTable.empty()
        pkts = _Cols.from_rows(rows)
        if n_ip != rows.shape[0]:
            pkts = pkts.take(ip)
        self._learn_dns(pkts, batch.data)
        self._clock = max(self._clock, int(pkts["ts_ns"].max()))
        # a batch's payloads lie in one range of the buffer: keep just that range
        offs = pkts["payload_off"]
        lo = int(offs.min())
        hi = int((offs + pkts["payload_cap"]).max())
        pkts["payload_off"] = offs - lo
        self._pending.append((pkts, batch.data[lo:hi].copy()))
        self._pending_n += len(pkts)
        # Live packets are walked again whenever new ones join them, so wait until the new
        # packets outnumber them (total work stays linear) or until capture time has moved
        # an idle timeout on (so ended flows still come out promptly).
        idle_ns = int(self.idle_timeout * _NS)
        if self._pending_n < len(self._carry) and self._clock - self._last_run_clock <= idle_ns:
            return FlowTable.empty()
        combined, data = self._take_pending()
        self._last_run_clock = self._clock
        return self._process(combined, data, final=False)

    def finish(self) -> FlowTable:
        """Close every live flow (``end_reason`` ``eof`` unless TCP closed it) and return them."""
        combined, data = self._take_pending()
        if len(combined) == 0:
            return FlowTable.empty()
        return self._process(combined, data, final=True)

    def _take_pending(self) -> tuple[_Cols, npt.NDArray[np.uint8]]:
        """Live packets plus pending batches, as one column set over one byte buffer."""
        parts = [(self._carry, self._carry_data), *self._pending]
        self._carry, self._carry_data = _Cols.empty(), np.zeros(0, np.uint8)
        self._pending, self._pending_n = [], 0
        parts = [p for p in parts if len(p[0])]
        if not parts:
            return _Cols.empty(), np.zeros(0, np.uint8)
        if len(parts) == 1:
            return parts[0]
        base = 0
        for cols, data in parts:
            cols["payload_off"] = cols["payload_off"] + base
            base += data.shape[0]
        merged = _Cols({name: np.concatenate([c[name] for c, _ in parts]) for name in _COLUMNS})
        return merged, np.concatenate([d for _, d in parts])

    # -- internals ------------------------------------------------------------------

    def _learn_dns(self, pkts: _Cols, data: npt.NDArray[np.uint8]) -> None:
        proto = pkts["proto"]
        sport = pkts["sport"]
        cand = (
            ((proto == PROTO_UDP) | (proto == PROTO_TCP))
            & np.isin(sport, DNS_PORTS)
            & (pkts["payload_cap"] > 12)
        )
        for i in np.flatnonzero(cand):
            off = int(pkts["payload_off"][i])
            raw = data[off : off + int(pkts["payload_cap"][i])].tobytes()
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

    def _process(self, pkts: _Cols, data: npt.NDArray[np.uint8], final: bool) -> FlowTable:
        from_a, h = k.canonical_keys(
            pkts["src_hi"], pkts["src_lo"], pkts["sport"], pkts["dst_hi"], pkts["dst_lo"], pkts["dport"],
            pkts["vlan"], pkts["proto"],
        )  # fmt: skip
        order = np.lexsort((pkts["ts_ns"], h))
        s = pkts.take(order)
        h = h[order]
        from_a = from_a[order]
        ts = s["ts_ns"]
        idle_ns = int(self.idle_timeout * _NS)
        active_ns = int(self.active_timeout * _NS) if self.active_timeout else 0
        starts, reason, client_a, syn_seen, followed = k.segment_flows(
            h, s["src_hi"], s["src_lo"], s["sport"], s["dst_hi"], s["dst_lo"], s["dport"], s["vlan"],
            s["proto"], from_a, ts, s["tcp_flags"], idle_ns, active_ns,
        )  # fmt: skip
        nflows = starts.shape[0] - 1
        last_ts = ts[starts[1:] - 1]
        if final:
            done = np.ones(nflows, np.bool_)
        else:
            done = followed | (last_ts + idle_ns < self._clock)
        reason = reason.copy()
        open_done = done & (reason == k.REASON_OPEN)
        reason[open_done] = k.REASON_EOF if final else k.REASON_IDLE
        if final:
            pass
        elif not done.all():
            keep_rows = np.repeat(~done, np.diff(starts))
            keep_len = k.carry_lengths(
                starts,
                from_a,
                client_a,
                s["payload_len"],
                s["payload_cap"],
                s["payload_off"],
                data,
                self.prefix_bytes,
            )
            kept = s.take(keep_rows)
            keep_len = keep_len[keep_rows]
            buf, new_off = k.gather_bytes(kept["payload_off"], keep_len, data)
            kept["payload_off"] = new_off
            kept["payload_cap"] = keep_len.astype(np.uint32)
            self._carry, self._carry_data = kept, buf
        else:
            self._carry, self._carry_data = _Cols.empty(), np.zeros(0, np.uint8)
        if not done.any():
            return FlowTable.empty()
        return self._build(s, data, starts, done, reason, client_a, syn_seen, from_a)

    def _build(
        self,
        s: _Cols,
        data: npt.NDArray[np.uint8],
        starts: npt.NDArray[np.int64],
        done: npt.NDArray[np.bool_],
        reason: npt.NDArray[np.uint8],
        client_a: npt.NDArray[np.bool_],
        syn_seen: npt.NDArray[np.bool_],
        from_a: npt.NDArray[np.bool_],
    ) -> FlowTable:
        idx = np.flatnonzero(done)
        f_start = starts[idx]
        f_len = starts[idx + 1] - f_start
        first = s["ts_ns"][f_start]
        order = np.argsort(first, kind="stable")
        idx, f_start, f_len = idx[order], f_start[order], f_len[order]
        offsets = np.zeros(idx.shape[0] + 1, np.int64)
        np.cumsum(f_len, out=offsets[1:])
        total = int(offsets[-1])
        perm = np.repeat(f_start - offsets[:-1], f_len) + np.arange(total, dtype=np.int64)
        p = s.take(perm)
        flow_of = np.repeat(np.arange(idx.shape[0]), f_len)
        is_client = from_a[perm] == np.repeat(client_a[idx], f_len)
        pkt_dir = np.where(is_client, 0, 1).astype(np.uint8)
        ts_ns = p["ts_ns"]
        wire = p["wire_len"].astype(np.int64)
        plen = p["payload_len"].astype(np.int64)
        c2s = pkt_dir == 0
        heads = offsets[:-1]

        def per_flow(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return np.add.reduceat(values, heads).astype(np.int64)

        c2s_i = c2s.astype(np.int64)
        c2s_packets = per_flow(c2s_i)
        packets = f_len.astype(np.int64)
        c2s_bytes = per_flow(wire * c2s_i)
        all_bytes = per_flow(wire)
        c2s_pl = per_flow(plen * c2s_i)
        all_pl = per_flow(plen)
        frags = per_flow(p["frag"].astype(np.int64))
        first_ts = ts_ns[heads]
        last_ts = ts_ns[offsets[1:] - 1]

        # endpoints of the client (src) and server (dst)
        head_rows = p.take(heads)
        head_client = is_client[heads]
        src_hi = np.where(head_client, head_rows["src_hi"], head_rows["dst_hi"])
        src_lo = np.where(head_client, head_rows["src_lo"], head_rows["dst_lo"])
        dst_hi = np.where(head_client, head_rows["dst_hi"], head_rows["src_hi"])
        dst_lo = np.where(head_client, head_rows["dst_lo"], head_rows["src_lo"])
        sport = np.where(head_client, head_rows["sport"], head_rows["dport"])
        dport = np.where(head_client, head_rows["dport"], head_rows["sport"])
        proto = head_rows["proto"]
        src_txt, dst_txt = _format_addresses(src_hi, src_lo, dst_hi, dst_lo)

        is_tcp = proto == PROTO_TCP
        pbuf, poffs = k.collect_prefixes(
            offsets, is_tcp, pkt_dir, p["seq"], p["payload_len"], p["payload_cap"], p["payload_off"], data,
            self.prefix_bytes, self.prefix_packets,
        )  # fmt: skip
        nflows = idx.shape[0]
        raw = pbuf.tobytes()
        prefixes = [
            (raw[poffs[2 * i] : poffs[2 * i + 1]], raw[poffs[2 * i + 1] : poffs[2 * i + 2]])
            for i in range(nflows)
        ]
        meta_cols: dict[str, list[object]] = {
            name: []
            for name in ("is_tls", "tls_version", "sni", "alpn", "ja4", "ja3", "http_host", "ws_path")
        }
        blank = handshake_metadata(b"", b"", 0)
        tcp_flows = is_tcp.tolist()
        for i, (c, sv) in enumerate(prefixes):
            # cheap byte tests first: most flows carry neither TLS nor an HTTP request
            promising = (
                tcp_flows[i] and c and (20 <= c[0] <= 23 or b"\x16\x03" in c or c.startswith(_HTTP_PREFIXES))
            )
            meta = handshake_metadata(c, sv, int(proto[i])) if promising else blank
            for name, col in meta_cols.items():
                col.append(meta[name])
        is_tls = np.array(meta_cols["is_tls"], dtype=np.bool_)

        m_flow, m_ts, m_len, m_dir, m_type = k.walk_messages(
            offsets,
            is_tls,
            is_tcp,
            pkt_dir,
            ts_ns,
            p["seq"],
            p["payload_len"],
            p["payload_cap"],
            p["payload_off"],
            data,
        )
        msg_offsets = np.zeros(nflows + 1, np.int64)
        np.cumsum(np.bincount(m_flow, minlength=nflows), out=msg_offsets[1:])

        dns = [",".join(sorted(self._dns.get(d, ()))) for d in dst_txt]
        source = self.capture if self.capture is not None else self._source
        summary = pl.DataFrame(
            {
                "flow_id": np.arange(nflows, dtype=np.int64),
                "capture": [source] * nflows,
                "proto": proto,
                "ip_version": head_rows["ip_version"],
                "src": src_txt,
                "sport": sport.astype(np.uint16),
                "dst": dst_txt,
                "dport": dport.astype(np.uint16),
                "vlan": head_rows["vlan"],
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
                "end_reason": _REASONS[reason[idx]].tolist(),
                "syn_seen": syn_seen[idx],
                **meta_cols,
                "dns_names": dns,
                "stage0": [""] * nflows,
            },
            schema=FLOW_SUMMARY_SCHEMA,
        )
        del flow_of
        return FlowTable(
            summary=summary,
            pkt_offsets=offsets,
            pkt_ts=ts_ns / _NS,
            pkt_wire_len=p["wire_len"].astype(np.uint32),
            pkt_payload_len=p["payload_len"].astype(np.uint32),
            pkt_dir=pkt_dir,
            pkt_flags=p["tcp_flags"].astype(np.uint8),
            msg_offsets=msg_offsets,
            msg_ts=m_ts / _NS,
            msg_len=m_len,
            msg_dir=m_dir,
            msg_type=m_type,
            payload_prefixes=prefixes,
        )


def _ip_text(hi: int, lo: int) -> str:
    """:func:`format_ip` with a fast path for IPv4 (most addresses; ``ipaddress`` is slow)."""
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return f"{(lo >> 24) & 255}.{(lo >> 16) & 255}.{(lo >> 8) & 255}.{lo & 255}"
    return format_ip(hi, lo)


def _format_addresses(
    src_hi: npt.NDArray[np.uint64],
    src_lo: npt.NDArray[np.uint64],
    dst_hi: npt.NDArray[np.uint64],
    dst_lo: npt.NDArray[np.uint64],
) -> tuple[list[str], list[str]]:
    """Text of every address, formatting each distinct address once."""
    n = src_hi.shape[0]
    pairs = np.empty((2 * n, 2), np.uint64)
    pairs[:n, 0], pairs[:n, 1] = src_hi, src_lo
    pairs[n:, 0], pairs[n:, 1] = dst_hi, dst_lo
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    texts = [_ip_text(int(a), int(b)) for a, b in uniq]
    inv = inverse.reshape(-1)
    out = [texts[j] for j in inv]
    return out[:n], out[n:]


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
        pkt_wire_len=table.pkt_wire_len[pp],
        pkt_payload_len=table.pkt_payload_len[pp],
        pkt_dir=table.pkt_dir[pp],
        pkt_flags=table.pkt_flags[pp],
        msg_offsets=m_off,
        msg_ts=table.msg_ts[mp],
        msg_len=table.msg_len[mp],
        msg_dir=table.msg_dir[mp],
        msg_type=table.msg_type[mp],
        payload_prefixes=None if prefixes is None else [prefixes[int(i)] for i in order],
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
) -> tuple[FlowTable, ReadReport]:
    """Read a pcap/pcapng file and assemble all its flows (``capture`` column = the file name).

    Returns:
        The flow table and the reader's :class:`~minerscope.capture.packets.ReadReport`
        (``complete`` is False when the file was damaged; the flows cover what was read).

    Raises:
        NotACaptureError, UnsupportedLinkTypeError, CaptureError: from the reader.
    """
    from minerscope.capture.pcap import read_capture  # the reader pulls in its numba walker

    batches, report = read_capture(path)
    table = assemble(
        batches, idle_timeout=idle_timeout, active_timeout=active_timeout, capture=Path(path).name
    )
    return table, report


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
