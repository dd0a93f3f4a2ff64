"""Confirmed pools, and the rule that confirming one feeds the blacklist in the same transaction.

A pool is an endpoint (``host``, ``port``) that a probe, an analyst or an imported list
confirmed. :meth:`PoolOps.confirm_pool` writes the pool row, its blacklist indicators
(``ip_port`` for an IP host, ``domain`` for a named host and for every plain name the flows
used to reach it), lifts any false-positive dismissal of the same endpoint and appends the
audit record, all in one transaction: the stage-0 pre-filter can never see a confirmed pool
that is missing from the blacklist, nor a blacklist entry without its pool.

A dismissal retracts a confirmation, and lifting it restores it. While an active
dismissal (:meth:`~minerscope.store.flows.FlowOps.dismiss_endpoint`: same host, the pool's
port or port 0) covers a pool, the pool is not confirmed: :meth:`PoolOps.list_pools` (so
``case pools`` and ``export pools``) leaves it out, ``endpoint_status`` calls it dismissed,
its flows carry no ``pool_id``, and the indicators the dismissal switched off carry its
allowlist id (``indicators.dismissed_by``). The pool row, its notes and probes stay: the
decision is the analyst's to revisit. ``undismiss`` switches back on exactly those
indicators (not one the analyst switched off by hand), and so does confirming the pool
again, which lifts the dismissal. Both directions are in the audit trail
(``pools_retracted``, ``pools_restored``). A query-time rule, like the dismissal of flows,
so a merged colleague's file follows it too.

Names, coin and dialect may come from a hostile server or capture; they are stored as
given (so nothing is lost) and made inert by the exporters and front ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from minerscope.errors import StoreError
from minerscope.probe.target import format_target
from minerscope.store.blacklist import POOL_DISMISSED_SQL, BlacklistOps, release_dismissal
from minerscope.untrusted import is_decimal, is_ip

CONFIRMATIONS = ("probe", "analyst", "import")


def split_endpoint(text: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` -> (host, port); StoreError when there is no valid port."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not is_decimal(port_text) or not host:
        raise StoreError(f"expected HOST:PORT, got {text[:80]!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise StoreError(f"port out of range in {text[:80]!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise StoreError(f"write an IPv6 endpoint as [address]:port, got {text[:80]!r}")
    return host, port


endpoint_text = format_target
"""The inverse of :func:`split_endpoint` (``host:port``, IPv6 bracketed), as probe targets are written."""


_REACHED = (  # flows that reached host:port (bound twice): directly, or through a proxy's tunnel
    "((dst = ? AND dport = ? AND coalesce(proxy_host, '') = '')"
    " OR (proxy_host = ? AND proxy_port = ? AND proxy_host != ''))"  # (the partial index's own term)
)
_NAMES_SEEN = (  # (through a proxy, DNS answers name the proxy, not the target)
    "SELECT DISTINCT sni, CASE WHEN coalesce(proxy_host, '') = '' THEN dns_names END, http_host, proxy_host"
    " FROM flows WHERE " + _REACHED
)
_SEEN_INTERVAL = "SELECT min(first_seen), max(last_seen) FROM flows WHERE " + _REACHED


_SELECT_POOLS = (
    f"SELECT p.*, {POOL_DISMISSED_SQL} AS dismissed, (SELECT group_concat(text, ' | ') FROM notes n"
    " WHERE n.target_kind = 'pool' AND n.target_ref = CAST(p.id AS TEXT)) AS note FROM pools p"
)
"""Pools with whether a dismissal covers them and their notes (a WHERE clause follows)."""


class PoolOps(BlacklistOps):
    """Confirmed pools."""

    def _names_seen(self, host: str, port: int) -> list[str]:
        """Names the stored flows used for an endpoint (SNI, DNS answers, HTTP Host; through
        a proxy, the tunnel's target and the SNI inside: DNS answers there name the proxy)."""
        names: set[str] = set()
        for row in self.conn.execute(_NAMES_SEEN, (host, port, host, port)):
            for cell in row:
                for name in str(cell or "").split(","):
                    if name.strip() and name.strip() != host:
                        names.add(name.strip())
        return sorted(names)

    def confirm_pool(
        self,
        host: str,
        port: int,
        *,
        how: str = "analyst",
        names: Iterable[str] = (),
        coin: str | None = None,
        dialect: str | None = None,
        transport: str | None = None,
        tls: bool = False,
        probe_id: int | None = None,
        evidence: str = "",
        note: str | None = None,
        first_seen: float | None = None,
        last_seen: float | None = None,
        case_id: int | None = None,
    ) -> int:
        """Record ``host:port`` as a confirmed pool and blacklist it, in one transaction.

        Confirming again merges: names are united, known fields keep their value unless a
        new one is given, the seen-interval widens. Flow names for the endpoint already in
        the file are added to ``names``. A dismissal of the endpoint is lifted.

        Args:
            how: ``probe``, ``analyst`` or ``import``.
            names: domain names the pool is known by (each plain one becomes an indicator).
            probe_id: the probe that confirmed it (``how == "probe"``).
            evidence: a one-line evidence summary (exported).
            note: an optional analyst note attached to the pool.

        Returns:
            The pool id.
        """
        if how not in CONFIRMATIONS:
            raise StoreError(f"confirmation must be one of {', '.join(CONFIRMATIONS)}, not {how!r}")
        host = host.strip().strip("[]")
        if not host or not 0 < int(port) < 65536:
            raise StoreError(f"not a pool endpoint: {host[:80]!r}:{port}")
        if not is_ip(host):
            host = host.lower().rstrip(".")
        port = int(port)
        ref = endpoint_text(host, port)
        with self.transaction():
            case_id = self._case_or_default(case_id)
            now = time.time()
            all_names = sorted(
                {n.strip() for n in names if n and n.strip()} | set(self._names_seen(host, port))
            )
            seen = self.conn.execute(_SEEN_INTERVAL, (host, port, host, port)).fetchone()
            first = first_seen if first_seen is not None else (seen[0] if seen[0] is not None else now)
            last = last_seen if last_seen is not None else (seen[1] if seen[1] is not None else now)
            old = self.rows("SELECT * FROM pools WHERE host = ? AND port = ?", (host, port))
            if old:
                prev = old[0]
                merged = sorted(set(json.loads(prev["names"])) | set(all_names))
                pool_id = int(prev["id"])
                self.conn.execute(
                    "UPDATE pools SET names = ?, coin = coalesce(?, coin), dialect = coalesce(?, dialect),"
                    " transport = coalesce(?, transport), tls = max(tls, ?),"
                    " first_seen = min(coalesce(first_seen, ?), ?), last_seen = max(coalesce(last_seen, ?), ?),"
                    " confirmed_by = ?, confirmed_at = ?, probe_id = coalesce(?, probe_id),"
                    " evidence = CASE WHEN ? = '' THEN evidence ELSE ? END WHERE id = ?",
                    (
                        json.dumps(merged),
                        coin,
                        dialect,
                        transport,
                        1 if tls else 0,
                        first,
                        first,
                        last,
                        last,
                        how,
                        now,
                        probe_id,
                        evidence,
                        evidence,
                        pool_id,
                    ),
                )
                all_names = merged
            else:
                cur = self.conn.execute(
                    "INSERT INTO pools (host, port, names, coin, dialect, transport, tls, first_seen,"
                    " last_seen, confirmed_by, confirmed_at, probe_id, case_id, evidence)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        host,
                        port,
                        json.dumps(all_names),
                        coin,
                        dialect,
                        transport,
                        1 if tls else 0,
                        first,
                        last,
                        how,
                        now,
                        probe_id,
                        case_id,
                        evidence,
                    ),
                )
                pool_id = int(cur.lastrowid or 0)
            source = f"pool:{how}"
            indicator_ids: list[int] = []
            if is_ip(host):
                indicator_ids.append(
                    self._upsert_indicator("ip_port", host, port, source=source, pool_id=pool_id)[0]
                )
            skipped: list[str] = []
            for name in ([host] if not is_ip(host) else []) + all_names:
                if is_ip(name):
                    continue
                try:
                    indicator_ids.append(
                        self._upsert_indicator("domain", name, None, source=source, pool_id=pool_id)[0]
                    )
                except StoreError:
                    skipped.append(name[:80])
            lifted = [
                int(r[0])
                for r in self.conn.execute(
                    "SELECT id FROM allowlist WHERE host = ? AND port IN (0, ?) AND enabled = 1", (host, port)
                )
            ]
            self.conn.execute(
                "UPDATE allowlist SET enabled = 0 WHERE host = ? AND port IN (0, ?)", (host, port)
            )
            for entry in lifted:  # what those dismissals switched off comes back with the confirmation
                release_dismissal(self.conn, entry)
            if note:
                self.conn.execute(
                    "INSERT INTO notes (case_id, target_kind, target_ref, text, created_at, updated_at)"
                    " VALUES (?, 'pool', ?, ?, ?, ?)",
                    (case_id, str(pool_id), note, now, now),
                )
            self._audit(
                "confirm",
                "endpoint",
                ref,
                {
                    "pool_id": pool_id,
                    "how": how,
                    "probe_id": probe_id,
                    "indicators": sorted(set(indicator_ids)),
                    "names_not_indicators": skipped,
                    "dismissals_lifted": lifted,
                },
                case_id=case_id,
                actor="probe" if how == "probe" else None,
            )
        return pool_id

    def list_pools(
        self, *, case_id: int | None = None, include_dismissed: bool = False
    ) -> list[dict[str, Any]]:
        """Confirmed pools, oldest confirmation first.

        ``names`` is decoded to a list; ``note`` holds the pool's notes joined by `` | ``;
        ``dismissed`` says whether a dismissal retracts the confirmation (see the module
        docstring): such pools are left out unless ``include_dismissed``.

        Raises:
            StoreError: there is no case ``case_id`` (an export of a mistyped case would
                otherwise look like an empty one).
        """
        where = "" if include_dismissed else f" WHERE NOT {POOL_DISMISSED_SQL}"
        if case_id is None:
            return self._pools(where, ())
        where = (where + " AND" if where else " WHERE") + " p.case_id = ?"
        return self._pools(where, (self._case_or_default(case_id),))

    def get_pool(self, host: str, port: int) -> dict[str, Any] | None:
        """The pool at ``host:port`` (as in :meth:`list_pools`, dismissed or not), or None."""
        found = self._pools(" WHERE p.host = ? AND p.port = ?", (host.strip("[]"), int(port)))
        return found[0] if found else None

    def _pools(self, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self.rows(
            _SELECT_POOLS + where + " ORDER BY p.id",  # where: one of the constant clauses above
            params,
        )
        for row in rows:
            row["names"] = json.loads(row["names"])
            row["tls"] = bool(row["tls"])
            row["dismissed"] = bool(row["dismissed"])
            row["note"] = row["note"] or ""
        return rows
