"""Stage 2 for triage results: probe what stage 1 flagged, record it, feed the blacklist.

The scan command and the live command both end here when ``--probe`` is given. Which
endpoints are probed is a policy worth stating in one place:

* distinct TCP server endpoints whose *stage-1* verdict is ``mining`` (the model above
  its threshold: stage-0 hits are already known-bad and confirmed pools need no second
  look). The endpoint is ``dst:dport``, or for a flow to an explicit proxy the tunnel's
  target (:func:`~minerscope.flows.records.server_endpoint`): the proxy mines nothing,
  and its verdict "no pool" would read as a clean bill for the miner behind it;
* addresses only: a target the capture names by host name (SOCKS 4a/5, HTTP) is
  reported, not resolved, because the lookup itself would go to whoever runs that
  name's DNS and tell them they are being looked at. ``minerscope probe NAME:PORT`` does
  it on an analyst's explicit say-so;
* not already confirmed and not dismissed by an analyst (the case file's allowlist);
* inside the probe scope. Endpoints come from a capture, i.e. from the people being
  hunted, so the default scope is loopback only: probing anything else needs an
  explicit ``--scope``. An out-of-scope endpoint is reported, never contacted.

Verdicts are written to the case file with ``Store.record_probe``, which confirms a pool
and adds it to the blacklist in the same transaction.

The pool's coin is the probe's when its evidence names one (an xmrig login: ``xmr``);
bitcoin- and ethereum-family Stratum do not say which chain they mine, so for those the
coin stage 1's coin model named for the endpoint's flows is recorded instead, marked
``coin_source=stage 1`` in the evidence. Never an algorithm (``rx/0``), which several
coins share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minerscope.errors import MinerscopeError, ScopeError
from minerscope.flows.records import server_endpoint
from minerscope.probe.runner import ProbeOptions, probe_many
from minerscope.probe.target import format_target
from minerscope.probe.verdict import COIN_LABELS, Verdict
from minerscope.untrusted import is_ip

Endpoint = tuple[str, int]


class FlaggedEndpoint(tuple[str, int]):
    """An endpoint stage 1 flagged, with the coin its coin model named for the flows ("":
    none). It is an :data:`Endpoint` everywhere (equal to, and hashing as, ``(host, port)``),
    so callers that only pass endpoints on need not know the coin travels with them."""

    coin: str

    def __new__(cls, host: str, port: int, coin: str = "") -> FlaggedEndpoint:
        self = super().__new__(cls, (host, port))
        self.coin = coin
        return self


@dataclass(frozen=True, slots=True)
class ProbeSummary:
    """What a flow record shows of its endpoint's probe (the JSONL ``probe`` field)."""

    is_pool: bool | None
    dialect: str
    transport: str
    confidence: float
    outcome: str
    error: str = ""
    label: str = ""
    """A mining service identified but not confirmed (:attr:`Verdict.label`), else ""."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "is_pool": self.is_pool,
            "dialect": self.dialect,
            "transport": self.transport,
            "confidence": round(self.confidence, 3),
            "outcome": self.outcome,
        }
        if self.label:
            out["label"] = self.label
        if self.error:
            out["error"] = self.error
        return out

    @classmethod
    def of(cls, verdict: Verdict) -> ProbeSummary:
        """The summary of a verdict; ``error`` says "unreachable: why" when the endpoint
        could not be checked (nothing accepted a connection, or what did reset every one),
        as opposed to checked and no pool; ``label`` names a mining service identified but
        not confirmed."""
        return cls(
            is_pool=verdict.is_pool,
            dialect=verdict.dialect or "",
            transport=str(verdict.transport or ""),
            confidence=float(verdict.confidence),
            outcome=str(verdict.outcome),
            error=verdict.check_error or "",
            label=verdict.label or "",
        )

    @classmethod
    def skipped(cls, why: str) -> ProbeSummary:
        return cls(is_pool=None, dialect="", transport="", confidence=0.0, outcome="none", error=why)


def suspicious_endpoints(records: Iterable[Mapping[str, Any]]) -> list[Endpoint]:
    """Distinct TCP server endpoints stage 1 flagged and no analyst has decided on, in
    first-seen order, each a :class:`FlaggedEndpoint` carrying the first coin stage 1
    named for its flows."""
    seen: dict[Endpoint, str] = {}
    for r in records:
        if r.get("stage1") != "mining" or r.get("proto") != 6:
            continue
        if r.get("analyst") in ("confirmed", "dismissed"):
            continue
        endpoint = server_endpoint(r)
        coin = str(r.get("coin") or "").lower()
        if not seen.get(endpoint):
            seen[endpoint] = coin if coin in COIN_LABELS else ""
    return [FlaggedEndpoint(host, port, coin) for (host, port), coin in seen.items()]


def with_stage1_coin(verdict: Verdict, coin: str) -> Verdict:
    """``verdict`` naming stage 1's ``coin`` when it is a pool whose probe could not tell
    the coin (bitcoin- or ethereum-family Stratum); else unchanged."""
    if not verdict.is_pool or verdict.coin or coin not in COIN_LABELS:
        return verdict
    return verdict.with_coin(coin, source="stage 1")


def record_verdicts(db_path: Path, verdicts: Iterable[Verdict], *, case_id: int | None = None) -> int:
    """Write ``verdicts`` to the case file at ``db_path``, in case ``case_id`` (default: the
    default case); pools are confirmed and join the blacklist in the same transaction as
    their probe. Returns how many pools."""
    from minerscope.store import open_store

    pools = 0
    with open_store(db_path) as store:
        for verdict in verdicts:
            store.record_probe(verdict, case_id=case_id)
            pools += verdict.is_pool
    return pools


def probe_endpoints(
    endpoints: list[Endpoint],
    options: ProbeOptions,
    *,
    db_path: Path | None = None,
    case_id: int | None = None,
    on_verdict: Callable[[Endpoint, ProbeSummary], None] | None = None,
) -> dict[Endpoint, ProbeSummary]:
    """Probe ``endpoints`` under ``options`` (its scope decides what may be contacted).

    Out-of-scope endpoints are skipped before any traffic, with the reason in their
    summary. Each verdict is recorded in the case file at ``db_path`` when given (in case
    ``case_id``, default: the default case); a
    :class:`FlaggedEndpoint` found to be a pool whose coin the probe could not tell is
    recorded with stage 1's coin (:func:`with_stage1_coin`).
    """
    results: dict[Endpoint, ProbeSummary] = {}
    in_scope: list[Endpoint] = []
    coins = {(e[0], e[1]): str(getattr(e, "coin", "")) for e in endpoints}
    for host, port in endpoints:
        if not is_ip(host):
            why = f"a name behind a proxy, not resolved from a capture; to probe it: minerscope probe {format_target(host, port)}"
            results[(host, port)] = ProbeSummary.skipped(why)
            continue
        try:
            options.scope.check(host, [host])
        except ScopeError as exc:
            results[(host, port)] = ProbeSummary.skipped(f"out of probe scope: {exc}")
            continue
        in_scope.append((host, port))
    if not in_scope:
        return results

    verdicts: list[Verdict] = []

    def _error(target: Endpoint, exc: MinerscopeError) -> None:
        results[target] = ProbeSummary.skipped(str(exc))

    async def _run() -> None:
        async for found in probe_many(in_scope, options, on_error=_error):
            verdict = with_stage1_coin(found, coins.get((found.host, found.port), ""))
            verdicts.append(verdict)
            summary = ProbeSummary.of(verdict)
            results[(verdict.host, verdict.port)] = summary
            if on_verdict is not None:
                on_verdict((verdict.host, verdict.port), summary)

    asyncio.run(_run())
    if db_path is not None and verdicts:
        record_verdicts(db_path, verdicts, case_id=case_id)
    return results
