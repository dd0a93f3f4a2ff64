"""What the workstation knows about the open captures, kept apart from any widget.

The triage pipeline streams scored rows in chunks, each with the :class:`FlowTable`
holding those flows' packet and message arrays. This module joins the chunks into one
polars frame the table view is cut from (filtering and sorting the *whole* frame in
polars takes milliseconds at 100,000 flows, and the table widget draws only the rows
on screen), and remembers where each flow's arrays live so the detail screen can draw them.

It also holds the analyst's annotations that come from the case file and the probes run
this session, as two extra columns (``analyst_status``, ``probe_status``) the filter
language can test. No Textual import here: the state is unit-tested without a terminal.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from minerscope.flows.records import FlowTable, server_endpoint, server_endpoint_exprs
from minerscope.probe.target import format_target
from minerscope.rowfilter import SUSPICION_ORDER, RowFilter, filter_expression, sort_columns, view_rows

UID = "uid"
"""Session-wide row id column (flow ids restart in every chunk)."""

CAPTURE_ID = "capture_id"
"""Which opened capture a row came from (0, 1, ... in the order given).

A flow is known by (capture_id, flow_id): two captures can hold the same 5-tuple (a
capture opened twice, or two files from the same link), and their flows must stay
separate rows with their own packets, never be joined on the 5-tuple or the file name.
"""

COIN_PREFIX = "pc_"
"""Prefix of the per-coin probability columns unpacked from ``coin_probs``."""


def server_name(row: dict[str, Any]) -> str:
    """The best name for a flow's server: SNI, then a DNS name, then the HTTP host, else '';
    through a proxy, the tunnel's target instead of DNS names (which name the proxy)."""
    keys = ("sni", "http_host", "proxy_host") if row.get("proxy_host") else ("sni", "dns_names", "http_host")
    for key in keys:
        value = row.get(key) or ""
        if value:
            return str(value).split(",")[0]
    return ""


def proxy_target(row: dict[str, Any]) -> str:
    """``host:port`` a flow to an explicit proxy asked it for ("" for other flows)."""
    return format_target(*server_endpoint(row)) if row.get("proxy_host") else ""


def badges(stage0: str | None) -> list[str]:
    """Short labels for the stage-0 evidence JSON (``BL`` blacklist hit, ``STRATUM`` plaintext)."""
    if not stage0:
        return []
    try:
        items = json.loads(stage0)
    except ValueError:
        return ["?"]
    if isinstance(items, dict):
        items = [items]
    out: list[str] = []
    for item in items if isinstance(items, list) else []:
        kind = (
            item.get("kind") or item.get("type") or item.get("source") or ""
            if isinstance(item, dict)
            else item
        )
        text = str(kind).lower()
        label = (
            "BL"
            if "black" in text or "indicator" in text
            else "STRATUM"
            if "stratum" in text
            else text.upper()[:8]
        )
        if label and label not in out:
            out.append(label)
    return out


def parse_json_list(value: str | None) -> list[dict[str, Any]]:
    """Decode a JSON list of objects (``top_features``, ``stage0``); [] when absent or malformed."""
    if not value:
        return []
    try:
        data = json.loads(value)
    except ValueError:
        return []
    if isinstance(data, dict):
        data = [data]
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def coin_probs(value: str | None) -> dict[str, float]:
    """Decode ``coin_probs`` (JSON coin -> probability)."""
    if not value:
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, float] = {}
    for key, prob in data.items():
        try:
            out[str(key)] = float(prob)
        except (TypeError, ValueError):
            continue
    return out


COLUMN_ALIASES = ("server", "client")
"""Frame columns named after the flow table's columns, so the filter bar takes what the
table shows: ``server`` is the server cell's text (its name when one was seen, else its
address; :func:`server_name`), ``client`` the client address."""


def _column_aliases(columns: list[str]) -> list[pl.Expr]:
    """The :data:`COLUMN_ALIASES` columns as expressions over a frame with ``columns``."""
    if "dst" not in columns or "src" not in columns:
        return []

    def first(col: str) -> pl.Expr:
        return pl.col(col).cast(pl.Utf8).fill_null("").str.split(",").list.first().fill_null("")

    def pick(keys: tuple[str, ...]) -> pl.Expr:
        expr: pl.Expr = pl.lit("")
        for key in reversed([k for k in keys if k in columns]):
            expr = pl.when(first(key) != "").then(first(key)).otherwise(expr)
        return expr

    name = pick(("sni", "dns_names", "http_host"))
    if "proxy_host" in columns:  # as server_name: through a proxy, its target, not DNS names
        proxied = pl.col("proxy_host").cast(pl.Utf8).fill_null("") != ""
        name = pl.when(proxied).then(pick(("sni", "http_host", "proxy_host"))).otherwise(name)
    dst = pl.col("dst").cast(pl.Utf8).fill_null("")
    return [
        pl.when(name != "").then(name).otherwise(dst).alias("server"),
        pl.col("src").cast(pl.Utf8).alias("client"),
    ]


@dataclass(slots=True)
class Chunk:
    """One triage update's flows: rows ``first_uid .. first_uid+len(table)-1`` live here."""

    first_uid: int
    table: FlowTable


@dataclass(slots=True)
class Session:
    """All flows loaded so far, plus analyst annotations keyed by endpoint."""

    frames: list[pl.DataFrame] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    coins: list[str] = field(default_factory=list)
    analyst: dict[tuple[str, int], str] = field(default_factory=dict)
    probes: dict[tuple[str, int], str] = field(default_factory=dict)
    _rows: pl.DataFrame | None = None
    _next_uid: int = 0

    @property
    def count(self) -> int:
        return self._next_uid

    def add_chunk(self, rows: pl.DataFrame, table: FlowTable | None, capture_id: int = 0) -> None:
        """Append one triage update's rows (and their arrays) from capture ``capture_id``."""
        if rows.height == 0:
            return
        start = self._next_uid
        rows = rows.with_columns(
            pl.int_range(start, start + rows.height, dtype=pl.Int64).alias(UID),
            pl.lit(capture_id, dtype=pl.Int32).alias(CAPTURE_ID),
        )
        rows = self._unpack_coins(rows)
        if table is not None and len(table) == rows.height:
            self.chunks.append(Chunk(start, table))
        self.frames.append(rows)
        self._next_uid += rows.height
        self._rows = None

    def _unpack_coins(self, rows: pl.DataFrame) -> pl.DataFrame:
        if "coin_probs" not in rows.columns:
            return rows
        seen = set(self.coins)
        decoded = [coin_probs(v) for v in rows["coin_probs"].to_list()]
        for probs in decoded:
            for coin in probs:
                if coin not in seen:
                    seen.add(coin)
                    self.coins.append(coin)
        self.coins.sort()
        return rows.with_columns(
            pl.Series(COIN_PREFIX + coin, [p.get(coin) for p in decoded], dtype=pl.Float64)
            for coin in self.coins
        )

    @property
    def rows(self) -> pl.DataFrame:
        """Every loaded row with the annotation columns, one frame (cached until changed)."""
        if self._rows is None:
            if not self.frames:
                base = pl.DataFrame({UID: pl.Series([], dtype=pl.Int64)})
            else:
                base = pl.concat(self.frames, how="diagonal_relaxed")
                # Collapse to one frame so later chunks concat onto one block, not many.
                self.frames = [base]
            self._rows = self._annotate(base)
        return self._rows

    def _annotate(self, base: pl.DataFrame) -> pl.DataFrame:
        """Analyst and probe status by each row's server endpoint (a proxy's target for a
        proxied flow, as probes and dismissals see it)."""
        ends: pl.DataFrame | None = None
        if "dst" in base.columns:
            host, port = server_endpoint_exprs(base.columns)
            dport_type = base.schema.get("dport", pl.Int64)
            ends = base.select(host.alias("dst"), port.cast(dport_type).alias("dport"))

        def lookup(mapping: dict[tuple[str, int], str], name: str) -> pl.Series:
            if not mapping or ends is None:
                return pl.Series(name, [""] * base.height, dtype=pl.Utf8)
            exact = {k: v for k, v in mapping.items() if k[1] != 0}
            keys = pl.DataFrame(
                {
                    "dst": [h for h, _ in exact],
                    "dport": pl.Series([p for _, p in exact], dtype=base.schema.get("dport", pl.Int64)),
                    name: list(exact.values()),
                },
                schema={"dst": pl.Utf8, "dport": base.schema.get("dport", pl.Int64), name: pl.Utf8},
            )
            joined = ends.join(keys, on=["dst", "dport"], how="left", maintain_order="left")
            result = joined[name]
            any_port = {h: v for (h, p), v in mapping.items() if p == 0}
            if any_port:  # a host-wide entry (port 0) applies where no exact one does
                hosts = ends["dst"].replace_strict(any_port, default=None, return_dtype=pl.Utf8)
                result = result.fill_null(hosts)
            return result.fill_null("").alias(name)

        return base.with_columns(
            lookup(self.analyst, "analyst_status"),
            lookup(self.probes, "probe_status"),
            *_column_aliases(base.columns),
        )

    def set_analyst(self, host: str, port: int, status: str) -> None:
        """Record the analyst's word on an endpoint (``confirmed``/``dismissed``)."""
        self.analyst[(host, port)] = status
        self._rows = None

    def replace_analyst(self, entries: list[tuple[str, int, str]]) -> None:
        """Replace every analyst annotation (port 0 means every port of the host)."""
        self.analyst = {(host, port): status for host, port, status in entries}
        self._rows = None

    def set_probe(self, host: str, port: int, status: str) -> None:
        """Record the latest probe outcome for an endpoint (``probing``, ``pool``, ``no pool``,
        ``down`` (nothing accepted a connection), ``error``)."""
        self.probes[(host, port)] = status
        self._rows = None

    def view(
        self,
        flt: RowFilter | None = None,
        *,
        sort_by: str | None = None,
        descending: bool = True,
        hide_benign: bool = False,
        hide_confirmed: bool = False,
    ) -> pl.DataFrame:
        """The filtered, sorted frame the table shows (every column; see :meth:`view_order`)."""
        order = self.view_order(
            flt,
            sort_by=sort_by,
            descending=descending,
            hide_benign=hide_benign,
            hide_confirmed=hide_confirmed,
        )
        return self.rows[order]

    def view_order(
        self,
        flt: RowFilter | None = None,
        *,
        sort_by: str | None = None,
        descending: bool = True,
        hide_benign: bool = False,
        hide_confirmed: bool = False,
    ) -> pl.Series:
        """Uids of the rows the table shows, in display order.

        Same rows and order as :func:`~minerscope.rowfilter.view_rows` on every column,
        computed on the few columns the filter, toggles and sort read: sorting moves
        only those, not the fifty columns of 100,000 rows (several times faster), and
        the table reads a row's other cells by uid only when it draws it.

        Raises:
            FilterError: as :func:`~minerscope.rowfilter.view_rows`.
        """
        rows = self.rows
        if self.count == 0:
            return rows[UID]
        needed = {UID, "verdict", "analyst_status", *(c for c, _ in SUSPICION_ORDER)}
        if sort_by is not None:
            needed.update(sort_columns(sort_by, rows.columns))
        if flt is not None and not flt.is_empty:
            needed.update(filter_expression(flt, rows.schema).meta.root_names())
        narrow = rows.select([c for c in rows.columns if c in needed])
        return view_rows(
            narrow,
            flt,
            sort_by=sort_by,
            descending=descending,
            hide_benign=hide_benign,
            hide_confirmed=hide_confirmed,
        )[UID]

    def row(self, uid: int) -> dict[str, Any]:
        """One flow's row as a dict (KeyError when unknown).

        A uid is its row's position in :attr:`rows` (chunks are appended in uid order), so
        this is a direct index, not a search.
        """
        if not 0 <= uid < self.count:
            raise KeyError(uid)
        return self.rows.row(uid, named=True)

    def flow_key(self, uid: int) -> tuple[int, int]:
        """(capture_id, flow_id) of a row: the flow's identity across every opened capture."""
        row = self.row(uid)
        return int(row.get(CAPTURE_ID) or 0), int(row.get("flow_id") or 0)

    def table_for(self, uid: int) -> tuple[FlowTable, int] | None:
        """The chunk table holding flow ``uid`` and its index there (None if not kept)."""
        starts = [c.first_uid for c in self.chunks]
        pos = bisect.bisect_right(starts, uid) - 1
        if pos < 0:
            return None
        chunk = self.chunks[pos]
        local = uid - chunk.first_uid
        if local >= len(chunk.table):
            return None
        return chunk.table, local
