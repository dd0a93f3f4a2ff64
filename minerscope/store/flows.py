"""Flows with their scores, and the allowlist of endpoints dismissed as false positives.

Flows are kept per capture, keyed by their natural identity (protocol, both endpoints,
VLAN, first packet time) rather than by the in-memory ``flow_id``, so re-recording a
capture after a restart updates rows instead of duplicating them, whatever order the
flow table came in. Scores live in their own table keyed by (flow, model version): a new
model adds a column of opinion, it does not overwrite the old one.

A dismissal is stored as an *endpoint* (``host`` = server address or name, ``port``, 0 for
any) in ``allowlist``, and applied when flows are queried, not when they are imported: a
dismissal hides the matching flows already in the file and every flow recorded later, and
lifting it brings them all back. :meth:`FlowOps.mark_dismissed` applies the same rule to an
in-memory polars frame for the scan pipeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from minerscope.errors import StoreError
from minerscope.store.blacklist import POOL_DISMISSED_SQL, release_dismissal, switch_off_for_dismissal
from minerscope.store.db import StoreBase

if TYPE_CHECKING:  # polars is only needed by callers that already hold a frame
    import polars as pl

FLOW_COLUMNS = (
    "proto",
    "ip_version",
    "src",
    "sport",
    "dst",
    "dport",
    "vlan",
    "first_seen",
    "last_seen",
    "duration",
    "packets",
    "bytes",
    "c2s_packets",
    "s2c_packets",
    "c2s_bytes",
    "s2c_bytes",
    "c2s_payload_bytes",
    "s2c_payload_bytes",
    "end_reason",
    "is_tls",
    "tls_version",
    "sni",
    "alpn",
    "ja4",
    "ja3",
    "dns_names",
    "http_host",
    "ws_path",
    "proxy_host",
    "proxy_port",
    "stage0",
)
"""FLOW_SUMMARY_SCHEMA columns kept in the ``flows`` table (besides ``flow_id`` -> ``flow_key``)."""

_KEY = ("proto", "src", "sport", "dst", "dport", "vlan", "first_seen")
_REQUIRED = ("flow_id", "proto", "src", "sport", "dst", "dport", "first_seen")

# Constant SQL assembled from the column tuples above (identifiers of ours, never input).
_INSERT_FLOW = (
    "INSERT INTO flows (capture_id, flow_key, "
    + ", ".join(FLOW_COLUMNS)
    + ") VALUES (?, ?, "
    + ", ".join("?" for _ in FLOW_COLUMNS)
    + ") ON CONFLICT (capture_id, "
    + ", ".join(_KEY)
    + ") DO UPDATE SET flow_key = excluded.flow_key, "
    + ", ".join(f"{c} = excluded.{c}" for c in FLOW_COLUMNS if c not in _KEY)
)
_SELECT_BATCH_IDS = (
    "SELECT id, " + ", ".join(_KEY) + " FROM flows WHERE capture_id = ? AND flow_key BETWEEN ? AND ?"
)

_PROXIED = "coalesce(f.proxy_host, '') != ''"
_SERVER_HOST_SQL = f"CASE WHEN {_PROXIED} THEN f.proxy_host ELSE f.dst END"
_SERVER_PORT_SQL = f"CASE WHEN {_PROXIED} THEN f.proxy_port ELSE f.dport END"
"""SQL over ``flows f``: the server a flow reaches (:func:`~minerscope.flows.records.server_endpoint`)."""

_SELECT_FLOW_SERVER = (
    f"SELECT {_SERVER_HOST_SQL} AS dst, {_SERVER_PORT_SQL} AS dport, c.case_id"
    " FROM flows f JOIN captures c ON c.id = f.capture_id WHERE f.id = ?"
)

DISMISSED_SQL = (
    "EXISTS (SELECT 1 FROM allowlist a WHERE a.enabled = 1"
    f" AND a.host IN ({_SERVER_HOST_SQL}, coalesce(f.sni, ''), coalesce(f.http_host, ''))"
    f" AND a.port IN (0, {_SERVER_PORT_SQL}))"
)
"""SQL predicate over ``flows f``: the flow's server endpoint is dismissed."""


_CONFIRMED_POOLS_AT = (
    f"SELECT id FROM pools p WHERE host = ? AND (? = 0 OR port = ?) AND NOT {POOL_DISMISSED_SQL} ORDER BY id"
)
"""Ids of the pools at a host (one port, or any with port 0) that stand confirmed."""


class FlowOps(StoreBase):
    """Flows, scores and the false-positive allowlist."""

    def record_flows(
        self,
        capture_id: int,
        summary: pl.DataFrame,
        scores: pl.DataFrame | Sequence[Mapping[str, Any]] | None = None,
        model_version: str | None = None,
    ) -> dict[int, int]:
        """Store a capture's flows and their scores in one transaction.

        A reading :meth:`~minerscope.store.cases.CaseOps.add_capture` held back for these
        flows (``flows_follow``) is written in the same transaction.

        Args:
            capture_id: from :meth:`~minerscope.store.cases.CaseOps.add_capture`.
            summary: a FlowTable summary (FLOW_SUMMARY_SCHEMA columns) or scored triage rows.
            scores: per-flow scores keyed by the summary's ``flow_id``: ``p_mining``, ``coin``,
                ``coin_probs`` (dict or JSON text) and optionally ``model``. None: taken from
                ``summary`` itself when it has a ``p_mining`` column.
            model_version: the model name/version the scores came from (overrides a
                ``model`` column; ``"unknown"`` when neither is given).

        Returns:
            ``flow_id`` of the summary -> row id in the ``flows`` table.
        """
        missing = [c for c in _REQUIRED if c not in summary.columns]
        if missing:
            raise StoreError(f"flow summary lacks column(s): {', '.join(missing)}")
        if self.scalar("SELECT id FROM captures WHERE id = ?", (capture_id,)) is None:
            raise StoreError(f"{self.path}: no capture with id {capture_id}")
        import polars as pl  # deferred with the TYPE_CHECKING import above

        def _col(name: str) -> pl.Expr:
            if name not in summary.columns:
                return pl.lit(0 if name == "vlan" else "" if name == "stage0" else None).alias(name)
            if name == "vlan":
                return pl.col(name).fill_null(0)
            if name == "stage0":
                return pl.col(name).fill_null("")
            if name == "is_tls":
                return pl.col(name).cast(pl.Int8)
            return pl.col(name)

        # Columnar preparation: polars builds the parameter tuples, no per-cell Python.
        values = summary.select(
            pl.lit(capture_id, dtype=pl.Int64).alias("capture_id"),
            pl.col("flow_id").cast(pl.Int64).alias("flow_key"),
            *[_col(c) for c in FLOW_COLUMNS],
        )
        if scores is None and "p_mining" in summary.columns:
            score_rows: Sequence[Mapping[str, Any]] | pl.DataFrame = summary.select(
                [c for c in ("flow_id", "p_mining", "coin", "coin_probs", "model") if c in summary.columns]
            )
        elif scores is None:
            score_rows = []
        else:
            score_rows = scores
        now = time.time()
        with self.transaction():
            before = int(self.conn.execute("SELECT coalesce(max(id), 0) FROM flows").fetchone()[0])
            self.conn.executemany(_INSERT_FLOW, values.iter_rows())
            mapping = self._batch_ids(capture_id, values, before)
            self.conn.executemany(
                "INSERT INTO flow_scores (flow_id, model, p_mining, coin, coin_probs, scored_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (flow_id, model) DO UPDATE SET"
                " p_mining = excluded.p_mining, coin = excluded.coin, coin_probs = excluded.coin_probs,"
                " scored_at = excluded.scored_at",
                _score_values(score_rows, mapping, model_version, now),
            )
            reading = self._pending_readings.get(capture_id)
            if reading is not None:  # the capture's reading becomes visible with its flows
                self.conn.execute(
                    "UPDATE captures SET complete = ?, damage = ?, sensor_dropped = coalesce(?, sensor_dropped)"
                    " WHERE id = ? AND complete IS NULL",
                    (*reading, capture_id),
                )
        self._pending_readings.pop(capture_id, None)
        return mapping

    def _batch_ids(self, capture_id: int, values: pl.DataFrame, before: int) -> dict[int, int]:
        """``flow_key`` -> row id of the batch just upserted (call in its transaction).

        When the batch added exactly one new row per input row (no conflict, the usual scan of a
        new capture), the ids are known without reading them back: a table without
        AUTOINCREMENT gives each new row max(id) + 1, so the batch holds ``before + 1`` ..
        ``before + n`` in input order, and the write lock keeps other writers out meanwhile.
        Any conflict (a re-recorded capture, a duplicate key) adds fewer rows, and once
        max(id) is the largest integer SQLite picks ids at random without raising it; both
        fail the count test and fall back to reading the batch back by its natural key.
        """
        keys = values.get_column("flow_key").to_list()
        after = int(self.conn.execute("SELECT coalesce(max(id), 0) FROM flows").fetchone()[0])
        if after - before == len(keys):
            return dict(zip(keys, range(before + 1, after + 1), strict=True))
        ids: dict[tuple[Any, ...], int] = {}
        # every row just written carries a flow_key of this batch (a conflict updates it), so
        # only that key range is read back: a live session's batches do not re-read the session
        for rec in self.conn.execute(_SELECT_BATCH_IDS, (capture_id, min(keys), max(keys))):
            ids[tuple(rec[1:])] = int(rec[0])
        return {int(row[0]): ids[tuple(row[1:])] for row in values.select(["flow_key", *_KEY]).iter_rows()}

    def list_flows(
        self,
        *,
        capture_id: int | None = None,
        case_id: int | None = None,
        model: str | None = None,
        include_dismissed: bool = False,
        min_p_mining: float | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stored flows with their score, pool and dismissal status, most suspicious first.

        Each row has the ``flows`` columns plus ``p_mining``, ``coin``, ``coin_probs`` (dict),
        ``model`` (of ``model`` if given, else the latest score), ``pool_id`` (the confirmed
        pool at the flow's endpoint, or None) and ``dismissed`` (bool). Dismissed flows are
        left out unless ``include_dismissed``.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if model is None:
            score_join = (
                "LEFT JOIN flow_scores s ON s.rowid = (SELECT rowid FROM flow_scores"
                " WHERE flow_id = f.id ORDER BY scored_at DESC, rowid DESC LIMIT 1)"
            )
        else:
            score_join = "LEFT JOIN flow_scores s ON s.flow_id = f.id AND s.model = ?"
            params.append(model)
        if capture_id is not None:
            clauses.append("f.capture_id = ?")
            params.append(capture_id)
        if case_id is not None:
            clauses.append("c.case_id = ?")
            params.append(case_id)
        if not include_dismissed:
            clauses.append("NOT " + DISMISSED_SQL)
        if min_p_mining is not None:
            clauses.append("s.p_mining >= ?")
            params.append(min_p_mining)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = (
            "SELECT f.*, s.p_mining, s.coin, s.coin_probs, s.model, p.id AS pool_id, "
            + (DISMISSED_SQL if include_dismissed else "0")  # filtered rows are never dismissed
            + " AS dismissed FROM flows f JOIN captures c ON c.id = f.capture_id "
            + score_join
            + f" LEFT JOIN pools p ON p.host = {_SERVER_HOST_SQL} AND p.port = {_SERVER_PORT_SQL}"
            + f" AND NOT {POOL_DISMISSED_SQL}"  # a dismissed pool is no confirmed pool
            + where
            + " ORDER BY s.p_mining IS NULL, s.p_mining DESC, f.id"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        out = self.rows(sql, tuple(params))
        for row in out:
            row["dismissed"] = bool(row["dismissed"])
            row["coin_probs"] = json.loads(row["coin_probs"]) if row["coin_probs"] else {}
        return out

    # ---- allowlist -------------------------------------------------------------------------
    def dismiss_endpoint(
        self,
        host: str,
        port: int = 0,
        *,
        reason: str = "",
        flow_id: int | None = None,
        case_id: int | None = None,
    ) -> int:
        """Dismiss ``host:port`` (port 0: every port) as a false positive; returns the allowlist id.

        Applies retroactively and to future flows (see the module docstring). A confirmed
        pool at the endpoint has its confirmation retracted (the rule is in
        :mod:`minerscope.store.pools`): it is no longer listed or exported as confirmed and its
        enabled blacklist indicators are switched off, marked as this dismissal's, so that
        stage 0 and the analyst do not contradict each other and :meth:`undismiss_endpoint`
        can switch back on exactly those. The audit record names the pools retracted.
        """
        host = host.strip().strip("[]")
        if not host or not 0 <= int(port) < 65536:
            raise StoreError(f"not an endpoint: {host[:80]!r}:{port}")
        port = int(port)
        with self.transaction():
            retracted = [  # confirmed until now: not covered by another dismissal already
                int(r[0])
                for r in self.conn.execute(
                    _CONFIRMED_POOLS_AT,
                    (host, port, port),
                )
            ]
            self.conn.execute(
                "INSERT INTO allowlist (host, port, reason, source_flow_id, case_id, added_at, enabled)"
                " VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (host, port) DO UPDATE SET enabled = 1,"
                " reason = excluded.reason, added_at = excluded.added_at",
                (host, port, reason, flow_id, case_id, time.time()),
            )
            entry = int(self.scalar("SELECT id FROM allowlist WHERE host = ? AND port = ?", (host, port)))
            disabled = switch_off_for_dismissal(self.conn, entry, host, port)
            self._audit(
                "dismiss",
                "endpoint",
                _endpoint_ref(host, port),
                {
                    "allowlist_id": entry,
                    "reason": reason,
                    "flow_id": flow_id,
                    "indicators_disabled": disabled,
                    "pools_retracted": retracted,
                },
                case_id=case_id,
            )
        return entry

    def dismiss_flow(self, flow_row_id: int, *, reason: str = "", any_port: bool = False) -> int:
        """Dismiss a stored flow as a false positive: its server endpoint joins the allowlist."""
        found = self.rows(
            _SELECT_FLOW_SERVER,
            (flow_row_id,),
        )
        if not found:
            raise StoreError(f"{self.path}: no flow with id {flow_row_id}")
        row = found[0]
        return self.dismiss_endpoint(
            row["dst"],
            0 if any_port else int(row["dport"]),
            reason=reason,
            flow_id=flow_row_id,
            case_id=row["case_id"],
        )

    def undismiss_endpoint(self, host: str, port: int = 0) -> bool:
        """Lift a dismissal (audited); True when there was one to lift.

        Undoes what :meth:`dismiss_endpoint` changed: the blacklist indicators it switched
        off are switched back on (unless another active dismissal still covers their pool),
        and the pools it retracted count as confirmed again.
        """
        host = host.strip().strip("[]")
        port = int(port)
        with self.transaction():
            entry = self.scalar(
                "SELECT id FROM allowlist WHERE host = ? AND port = ? AND enabled = 1", (host, port)
            )
            if entry is None:
                return False
            self.conn.execute("UPDATE allowlist SET enabled = 0 WHERE id = ?", (entry,))
            enabled = release_dismissal(self.conn, int(entry))
            restored = [
                int(r[0])
                for r in self.conn.execute(
                    _CONFIRMED_POOLS_AT,
                    (host, port, port),
                )
            ]
            self._audit(
                "undismiss",
                "endpoint",
                _endpoint_ref(host, port),
                {"allowlist_id": int(entry), "indicators_enabled": enabled, "pools_restored": restored},
            )
        return True

    def list_allowlist(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        """Allowlist entries (dismissed endpoints), oldest first."""
        if active_only:
            return self.rows("SELECT * FROM allowlist WHERE enabled = 1 ORDER BY id")
        return self.rows("SELECT * FROM allowlist ORDER BY id")

    def is_dismissed(self, host: str, port: int, names: Iterable[str] = ()) -> bool:
        """True when ``host:port`` (or one of ``names`` on that port) is on the allowlist."""
        candidates = [host.strip("[]"), *[n for n in names if n]]
        marks = ", ".join("?" for _ in candidates)
        found = self.scalar(
            f"SELECT 1 FROM allowlist WHERE enabled = 1 AND port IN (0, ?) AND host IN ({marks}) LIMIT 1",
            (int(port), *candidates),
        )
        return found is not None

    def mark_dismissed(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Add a boolean ``dismissed`` column to in-memory flow rows (needs ``dst``, ``dport``).

        Same rule as :meth:`list_flows`: the server (a proxy's tunnel target, else the
        address), SNI or HTTP Host matches an allowlist entry on the server's port or on port 0. Evaluated as polars expressions, one
        per name column, since a scan marks every flow and a per-row loop cost ~1 us a flow.
        """
        import polars as pl  # deferred: callers that never hold a frame need not load polars

        from minerscope.flows.records import server_endpoint_exprs

        entries = self.list_allowlist()
        if not entries:
            return rows.with_columns(pl.lit(False).alias("dismissed"))
        any_port = list({e["host"] for e in entries if e["port"] == 0})
        by_port: dict[int, set[str]] = {}
        for e in entries:
            if e["port"] != 0:
                by_port.setdefault(int(e["port"]), set()).add(e["host"])
        # one vectorised test per name column (a scan marks every flow: no per-row Python)
        server_host, server_port = server_endpoint_exprs(rows.columns)
        hits: list[pl.Expr] = []
        for c in ("dst", "sni", "http_host"):
            if c not in rows.columns:
                continue
            name = server_host if c == "dst" else pl.col(c).cast(pl.String)
            hit = name.is_in(any_port)
            for port, hosts in by_port.items():
                hit = hit | ((server_port == port) & name.is_in(list(hosts)))
            hits.append((name.is_not_null() & (name != "") & hit).fill_null(False))
        flag = pl.any_horizontal(hits) if hits else pl.lit(False)
        return rows.with_columns(flag.alias("dismissed"))


def _endpoint_ref(host: str, port: int) -> str:
    """``host:port`` as the audit trail names an endpoint (IPv6 bracketed)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _score_values(
    rows: Sequence[Mapping[str, Any]] | pl.DataFrame,
    mapping: Mapping[int, int],
    model_version: str | None,
    now: float,
) -> Iterable[tuple[Any, ...]]:
    if not isinstance(rows, Sequence):  # a frame: column lists, JSON checked in one parse
        yield from _frame_score_values(rows, mapping, model_version, now)
        return
    for r in rows:
        p = r.get("p_mining")
        key = r.get("flow_id")
        if p is None or p != p or key is None or int(key) not in mapping:  # p != p: NaN, no score
            continue
        probs = r.get("coin_probs")
        if isinstance(probs, str):
            probs_text = probs or "{}"
            _check_json([probs_text], [key])
        else:
            probs_text = json.dumps(dict(probs or {}), sort_keys=True)
        model = model_version or r.get("model") or "unknown"
        yield (mapping[int(key)], str(model), float(p), r.get("coin"), probs_text, now)


def _check_json(texts: Sequence[str], keys: Sequence[Any]) -> None:
    """Refuse malformed JSON rather than store it; one parse for all texts when they are fine."""
    try:
        parsed = json.loads("[" + ",".join(texts) + "]")
        if isinstance(parsed, list) and len(parsed) == len(texts):
            return
    except ValueError:
        pass
    for key, text in zip(keys, texts, strict=True):  # find the culprit to name it
        try:
            json.loads(text)
        except ValueError:
            raise StoreError(f"flow {key}: coin_probs is not JSON: {text[:60]!r}") from None
    raise StoreError("coin_probs holds more than one JSON value in a cell")


def _frame_score_values(
    frame: pl.DataFrame, mapping: Mapping[int, int], model_version: str | None, now: float
) -> Iterable[tuple[Any, ...]]:
    """Score rows of a frame, column at a time: a scan scores every flow, so no per-cell branching.

    Same rules as the per-row path of :func:`_score_values`: no score (null or NaN) or a flow
    not in ``mapping`` is skipped, an empty or missing ``coin_probs`` becomes ``"{}"``.
    """
    import polars as pl  # deferred with the TYPE_CHECKING import at the top

    if frame.height == 0 or "p_mining" not in frame.columns or "flow_id" not in frame.columns:
        return
    p = pl.col("p_mining").cast(pl.Float64)
    frame = frame.with_columns(p).filter(p.is_not_null() & ~p.is_nan() & pl.col("flow_id").is_not_null())
    n = frame.height
    keys = frame.get_column("flow_id").to_list()
    if frame.schema["flow_id"].is_integer():
        ids = [mapping.get(k) for k in keys]
    else:  # e.g. float or text keys: as int() reads them
        ids = [mapping.get(int(k)) for k in keys]
    none: list[Any] = [None] * n
    ps = frame.get_column("p_mining").to_list()
    coins = frame.get_column("coin").to_list() if "coin" in frame.columns else none
    if model_version:
        models: list[str] = [str(model_version)] * n
    else:
        found = frame.get_column("model").to_list() if "model" in frame.columns else none
        models = [str(m or "unknown") for m in found]
    if "coin_probs" not in frame.columns:
        texts = ["{}"] * n
    elif frame.schema["coin_probs"] == pl.String:
        probs = pl.col("coin_probs")
        empty = probs.is_null() | (probs == "")
        texts = frame.select(pl.when(empty).then(pl.lit("{}")).otherwise(probs)).to_series().to_list()
    else:  # dicts/structs: serialised as the per-row path does
        texts = [
            (v or "{}") if isinstance(v, str) else json.dumps(dict(v or {}), sort_keys=True)
            for v in frame.get_column("coin_probs").to_list()
        ]
    rows = zip(ids, models, ps, coins, texts, [now] * n, strict=True)
    if None in ids:  # flows of another batch: not stored here, so not scored here either
        kept = [r for r in rows if r[0] is not None]
        keys = [k for k, i in zip(keys, ids, strict=True) if i is not None]
    else:
        kept = list(rows)
    _check_json([r[4] for r in kept], keys)
    yield from kept
