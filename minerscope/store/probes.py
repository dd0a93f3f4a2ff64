"""Probe verdicts, kept whole, and the rule that a pool-grade verdict confirms the pool.

The prober hands over a :class:`minerscope.probe.verdict.Verdict` (or its ``to_json()``
dict, so the store does not depend on how the prober builds it). The store keeps the whole
JSON record (every attempt, evidence, TLS metadata: already made inert by ``to_json``) and
lifts the fields analysts query into columns: target, dialect, transport, outcome,
confidence, and the request and raw reply excerpt of the winning attempt.

When the verdict says ``is_pool``, the probe row, the pool row and its blacklist indicators
are written in one transaction (:meth:`ProbeOps.record_probe` nests
:meth:`~minerscope.store.pools.PoolOps.confirm_pool` inside its own), so a crash between
"the probe said pool" and "the blacklist knows" cannot happen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from minerscope.errors import StoreError
from minerscope.store.pools import PoolOps, endpoint_text, split_endpoint

TLS_TRANSPORTS = frozenset({"tls", "wss", "https"})
EVIDENCE_SUMMARY_CHARS = 300


def _as_json(verdict: Any) -> dict[str, Any]:
    if isinstance(verdict, Mapping):
        return dict(verdict)
    to_json = getattr(verdict, "to_json", None)
    if callable(to_json):
        out = to_json()
        if isinstance(out, Mapping):
            return dict(out)
    raise StoreError(f"not a probe verdict: {type(verdict).__name__}")


def evidence_summary(evidence: Any, limit: int = EVIDENCE_SUMMARY_CHARS) -> str:
    """``key=value; key=value`` from a verdict's evidence list, cut to ``limit`` characters."""
    parts: list[str] = []
    for item in evidence or ():
        if isinstance(item, Mapping):
            parts.append(f"{item.get('key', '')}={item.get('value', '')}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _winning_attempt(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    attempts = [a for a in record.get("attempts") or () if isinstance(a, Mapping)]
    for attempt in attempts:
        if attempt.get("dialect") == record.get("dialect") and attempt.get("transport") == record.get(
            "transport"
        ):
            return attempt
    with_reply = [a for a in attempts if a.get("reply")]
    candidates = with_reply or attempts
    return candidates[0] if candidates else None


class ProbeOps(PoolOps):
    """Probe verdicts."""

    def record_probe(
        self,
        verdict: Any,
        *,
        host: str | None = None,
        port: int | None = None,
        case_id: int | None = None,
        probed_at: float | None = None,
    ) -> int:
        """Store one probe verdict; if it says ``is_pool``, confirm the pool in the same transaction.

        Args:
            verdict: a ``Verdict`` (anything with ``to_json()``) or its JSON dict.
            host, port: the target; default: the verdict's ``host``/``port`` attributes,
                else parsed from its ``target`` (``host:port`` / ``[v6]:port``).
            case_id: the case the probe belongs to (None: not tied to a case).

        Returns:
            The probe id.
        """
        record = _as_json(verdict)
        if host is None or port is None:
            v_host, v_port = getattr(verdict, "host", None), getattr(verdict, "port", None)
            if isinstance(v_host, str) and isinstance(v_port, int):
                host, port = v_host, v_port
            else:
                host, port = split_endpoint(str(record.get("target") or ""))
        host = host.strip("[]")
        is_pool = bool(record.get("is_pool"))
        try:
            confidence = float(record.get("confidence") or 0.0)
        except (TypeError, ValueError):
            raise StoreError("probe verdict has a non-numeric confidence") from None
        attempt = _winning_attempt(record) or {}
        dialect = record.get("dialect")
        transport = record.get("transport")
        evidence = record.get("evidence") or []
        with self.transaction():
            case_id = self._case_or_default(case_id)
            cur = self.conn.execute(
                "INSERT INTO probes (case_id, target, host, port, dialect, transport, outcome, is_pool,"
                " confidence, request, reply, evidence, record, probed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    case_id,
                    str(record.get("target") or endpoint_text(host, port)),
                    host,
                    int(port),
                    dialect,
                    transport,
                    str(record.get("outcome") or "none"),
                    1 if is_pool else 0,
                    confidence,
                    str(attempt.get("request") or ""),
                    str(attempt.get("reply") or ""),
                    json.dumps(evidence, ensure_ascii=False),
                    json.dumps(record, ensure_ascii=False, default=str),
                    time.time() if probed_at is None else probed_at,
                ),
            )
            probe_id = int(cur.lastrowid or 0)
            if is_pool:
                # the verdict's coin label ("xmr"); never an algorithm ("rx/0" is how a pool
                # hashes, which several coins share), which an evidence fallback once took
                coin = str(record.get("coin") or "") or next(
                    (
                        str(e.get("value"))
                        for e in evidence
                        if isinstance(e, Mapping) and e.get("key") == "coin"
                    ),
                    None,
                )
                self.confirm_pool(
                    host,
                    int(port),
                    how="probe",
                    coin=coin,
                    dialect=str(dialect) if dialect else None,
                    transport=str(transport) if transport else None,
                    tls=str(transport or "") in TLS_TRANSPORTS,
                    probe_id=probe_id,
                    evidence=evidence_summary(evidence),
                    case_id=case_id,
                )
        return probe_id

    def list_probes(self, host: str | None = None, port: int | None = None) -> list[dict[str, Any]]:
        """Probes (of one endpoint, or all), newest first; ``record`` and ``evidence`` decoded."""
        if host is None:
            rows = self.rows("SELECT * FROM probes ORDER BY id DESC")
        else:
            rows = self.rows(
                "SELECT * FROM probes WHERE host = ? AND (? IS NULL OR port = ?) ORDER BY id DESC",
                (host, port, port),
            )
        for row in rows:
            row["is_pool"] = bool(row["is_pool"])
            row["evidence"] = json.loads(row["evidence"])
            row["record"] = json.loads(row["record"])
        return rows
