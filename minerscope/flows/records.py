"""The flow table: what the flow stage hands to features, stage 0, the store and the UIs.

Many flows, columnar. One polars row per flow in :attr:`FlowTable.summary` (names follow
the grammar *direction + statistic + unit*: ``c2s_bytes``, ``s2c_packets``), and the
per-packet and per-message time series of *all* flows concatenated into numpy arrays
with CSR-style offsets, so the feature stage works on every flow at once with
``np.add.reduceat`` and friends instead of a Python loop per flow.

Direction: the *client* is the side that sent the first SYN, else the first sender.
``dir == 0`` is client->server (``c2s``), ``dir == 1`` is server->client (``s2c``).

Messages: for TLS flows, the TLS records (type, length) seen in each direction, timed
by the packet that completed them; for other flows, each packet that carries payload.
Stage 1 uses message sizes because they survive TCP segmentation and encryption.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.flows.prefixes import PayloadPrefixes

DIR_C2S = 0
DIR_S2C = 1

# ``msg_type`` values: TLS content types of records, 0 for a non-TLS message
MSG_PLAIN = 0
TLS_CHANGE_CIPHER_SPEC = 20
TLS_ALERT = 21
TLS_HANDSHAKE = 22
TLS_APPLICATION_DATA = 23

FLOW_SUMMARY_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "flow_id": pl.Int64,  # index into the offsets arrays of this table
    "capture": pl.Utf8,  # source file (or interface) name
    "proto": pl.UInt8,  # 6 TCP, 17 UDP, other IP protocol numbers
    "ip_version": pl.UInt8,
    "src": pl.Utf8,  # client address (text)
    "sport": pl.UInt16,
    "dst": pl.Utf8,  # server address (text)
    "dport": pl.UInt16,
    "vlan": pl.UInt16,
    "first_seen": pl.Float64,  # seconds since the epoch
    "last_seen": pl.Float64,
    "duration": pl.Float64,  # seconds
    "packets": pl.Int64,
    "bytes": pl.Int64,  # wire bytes, both directions
    "c2s_packets": pl.Int64,
    "s2c_packets": pl.Int64,
    "c2s_bytes": pl.Int64,
    "s2c_bytes": pl.Int64,
    "c2s_payload_bytes": pl.Int64,
    "s2c_payload_bytes": pl.Int64,
    "fragments": pl.Int64,  # IP fragments seen in this flow (not reassembled)
    "end_reason": pl.Utf8,  # fin | rst | idle | active | eof
    "syn_seen": pl.Boolean,  # the handshake was in the capture (client known for sure)
    "is_tls": pl.Boolean,
    "tls_version": pl.Utf8,  # highest version offered in the ClientHello, e.g. "1.3"
    "sni": pl.Utf8,
    "alpn": pl.Utf8,  # comma-separated ALPN protocols offered
    "ja4": pl.Utf8,
    "ja3": pl.Utf8,  # JA3 MD5 hex, for compatibility with older tools
    "dns_names": pl.Utf8,  # names that resolved to dst inside the capture, comma-separated
    "http_host": pl.Utf8,
    "ws_path": pl.Utf8,  # WebSocket upgrade path, when the flow upgraded in plaintext
    "proxy_host": pl.Utf8,  # what a flow to an explicit proxy asked it for (SOCKS, CONNECT, absolute URL)
    "proxy_port": pl.UInt16,  # its port; 0 when the flow is not to a proxy
    "stage0": pl.Utf8,  # stage-0 evidence (JSON list), "" when none; filled by prefilter
}
"""Columns of :attr:`FlowTable.summary`, in order."""


def server_endpoint(row: Mapping[str, Any]) -> tuple[str, int]:
    """The server a flow reaches: the tunnel's target for a flow to an explicit proxy
    (``proxy_host:proxy_port``), else ``dst:dport``. This is the endpoint that is probed,
    confirmed as a pool or dismissed: the proxy itself mines nothing."""
    if row.get("proxy_host"):
        return str(row["proxy_host"]), int(row.get("proxy_port") or 0)
    return str(row["dst"]), int(row["dport"])


def server_endpoint_exprs(columns: Sequence[str]) -> tuple[pl.Expr, pl.Expr]:
    """:func:`server_endpoint` as two polars expressions (host as text, port as the
    frame's ``dport``), for a frame with ``columns`` (rows without the proxy columns,
    e.g. from an older case file, are not proxied)."""
    host, port = pl.col("dst").cast(pl.Utf8), pl.col("dport")
    if "proxy_host" not in columns:
        return host, port
    proxied = pl.col("proxy_host").fill_null("") != ""
    return (
        pl.when(proxied).then(pl.col("proxy_host")).otherwise(host),
        pl.when(proxied).then(pl.col("proxy_port").cast(pl.Int64)).otherwise(port.cast(pl.Int64)),
    )


_EMPTY_SUMMARY = pl.DataFrame(schema=FLOW_SUMMARY_SCHEMA)


@dataclass(slots=True)
class FlowTable:
    """Flows and their concatenated time series.

    For flow ``i``: its packets are ``pkt_*[pkt_offsets[i]:pkt_offsets[i+1]]`` in time
    order, its messages ``msg_*[msg_offsets[i]:msg_offsets[i+1]]``.

    Attributes:
        summary: one row per flow, columns :data:`FLOW_SUMMARY_SCHEMA`.
        pkt_offsets: int64, ``len(summary) + 1`` entries.
        pkt_ts: float64 seconds since the epoch.
        pkt_size: uint32 frame size as on Ethernet: the IP packet's length plus a 14-byte
            Ethernet header, whatever link layer carried it, so the same traffic has the same sizes captured raw, cooked,
            VLAN-tagged or mirrored in a tunnel (the model learnt Ethernet frames).
            The summary's byte counts stay bytes on the wire.
        pkt_payload_len: uint32 L4 payload bytes.
        pkt_dir: uint8, 0 client->server, 1 server->client.
        pkt_flags: uint8 TCP flags (0 for UDP).
        msg_offsets: int64, ``len(summary) + 1`` entries.
        msg_ts: float64 seconds, time of the packet that completed the message.
        msg_len: uint32 message length (TLS record length, or packet payload length).
        msg_dir: uint8 direction of the message.
        msg_type: uint8 TLS content type (20-23), 0 for non-TLS messages.
        payload_prefixes: per flow, the first payload bytes (client->server, server->client)
            the assembler kept for handshake parsing and stage 0 (from the assembler a
            :class:`~minerscope.flows.prefixes.PayloadPrefixes`: one buffer, not a list of
            ``bytes``); None when not kept.
    """

    summary: pl.DataFrame
    pkt_offsets: npt.NDArray[np.int64]
    pkt_ts: npt.NDArray[np.float64]
    pkt_size: npt.NDArray[np.uint32]
    pkt_payload_len: npt.NDArray[np.uint32]
    pkt_dir: npt.NDArray[np.uint8]
    pkt_flags: npt.NDArray[np.uint8]
    msg_offsets: npt.NDArray[np.int64]
    msg_ts: npt.NDArray[np.float64]
    msg_len: npt.NDArray[np.uint32]
    msg_dir: npt.NDArray[np.uint8]
    msg_type: npt.NDArray[np.uint8]
    payload_prefixes: Sequence[tuple[bytes, bytes]] | None = None

    def __len__(self) -> int:
        return self.summary.height

    @classmethod
    def empty(cls) -> FlowTable:
        """A table with no flows (valid offsets of length 1)."""
        zero = np.zeros(1, dtype=np.int64)
        return cls(
            summary=_EMPTY_SUMMARY,  # polars frames are immutable: one shared empty frame
            pkt_offsets=zero.copy(),
            pkt_ts=np.zeros(0, np.float64),
            pkt_size=np.zeros(0, np.uint32),
            pkt_payload_len=np.zeros(0, np.uint32),
            pkt_dir=np.zeros(0, np.uint8),
            pkt_flags=np.zeros(0, np.uint8),
            msg_offsets=zero.copy(),
            msg_ts=np.zeros(0, np.float64),
            msg_len=np.zeros(0, np.uint32),
            msg_dir=np.zeros(0, np.uint8),
            msg_type=np.zeros(0, np.uint8),
        )

    @staticmethod
    def concat(tables: list[FlowTable]) -> FlowTable:
        """Join tables (e.g. from streaming chunks or several captures), renumbering flow_id."""
        tables = [t for t in tables if len(t)]
        if not tables:
            return FlowTable.empty()
        if len(tables) == 1:
            return tables[0]

        def _offsets(parts: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
            out = [np.zeros(1, np.int64)]
            base = 0
            for p in parts:
                out.append(p[1:] + base)
                base += int(p[-1])
            return np.concatenate(out)

        prefixes: Sequence[tuple[bytes, bytes]] | None = None
        parts = [t.payload_prefixes for t in tables]
        compact = [p for p in parts if isinstance(p, PayloadPrefixes)]
        if len(compact) == len(parts):
            prefixes = PayloadPrefixes.concat(compact)
        elif all(p is not None for p in parts):
            prefixes = [pair for p in parts for pair in (p or [])]
        summary = pl.concat([t.summary for t in tables], how="vertical")
        summary = summary.with_columns(pl.int_range(0, summary.height, dtype=pl.Int64).alias("flow_id"))
        return FlowTable(
            summary=summary,
            pkt_offsets=_offsets([t.pkt_offsets for t in tables]),
            pkt_ts=np.concatenate([t.pkt_ts for t in tables]),
            pkt_size=np.concatenate([t.pkt_size for t in tables]),
            pkt_payload_len=np.concatenate([t.pkt_payload_len for t in tables]),
            pkt_dir=np.concatenate([t.pkt_dir for t in tables]),
            pkt_flags=np.concatenate([t.pkt_flags for t in tables]),
            msg_offsets=_offsets([t.msg_offsets for t in tables]),
            msg_ts=np.concatenate([t.msg_ts for t in tables]),
            msg_len=np.concatenate([t.msg_len for t in tables]),
            msg_dir=np.concatenate([t.msg_dir for t in tables]),
            msg_type=np.concatenate([t.msg_type for t in tables]),
            payload_prefixes=prefixes,
        )
