"""Stage 2's per-flow probe summary says what happened to the endpoint: a pool, checked and
no pool, never answered, or not probed. Real sockets on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

from minerscope.cli.output import _probe_cell
from minerscope.emulate.hostile import start_hostile
from minerscope.emulate.pool import start_pool
from minerscope.emulate.server import ThreadedServers
from minerscope.probe.runner import ProbeOptions
from minerscope.probe.scope import Scope
from minerscope.probe.verdict import LIVENESS, ProbeAttempt, Transport, Verdict
from minerscope.stage2 import ProbeSummary, probe_endpoints, suspicious_endpoints


def _closed_port() -> int:
    with socket.socket() as s:  # free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_each_kind_of_probe_outcome_is_told_apart() -> None:
    options = ProbeOptions(
        scope=Scope.loopback(), connect_timeout=0.5, attempt_deadline=0.7, total_deadline=8.0, rate=0.0
    )
    with ThreadedServers() as lab:
        pool = lab.start(start_pool("stratum1", job_interval=0))
        silent = lab.start(start_hostile("accept_silent"))
        dead = ("127.0.0.1", _closed_port())
        outside = ("192.0.2.7", 3333)  # TEST-NET-1: out of the loopback scope, never contacted
        summaries = probe_endpoints([pool.target, silent.target, dead, outside], options)
    assert (
        summaries[pool.target].is_pool and _probe_cell(summaries[pool.target].to_json()) == "pool (stratum1)"
    )
    live = summaries[silent.target]
    assert live.is_pool is False and live.error == ""
    assert _probe_cell(live.to_json()) == "not a pool"
    gone = summaries[dead]
    assert gone.is_pool is False and gone.error.startswith("unreachable: refused")
    assert gone.to_json()["error"] == gone.error and _probe_cell(gone.to_json()) == "unreachable"
    skipped = summaries[outside]
    assert skipped.is_pool is None and "out of probe scope" in skipped.error
    assert _probe_cell(skipped.to_json()) == "not probed"


def test_a_name_that_did_not_resolve_reads_unreachable_once() -> None:
    """The runner's own liveness record for a failed lookup already says "unreachable"."""
    attempt = ProbeAttempt(
        LIVENESS, Transport.TCP, b"", b"", 0.01, None, "unreachable: name did not resolve (gaierror)"
    )
    summary = ProbeSummary.of(Verdict.from_attempts("pool.invalid:3333", "pool.invalid", 3333, [attempt]))
    assert summary.error == "unreachable: name did not resolve (gaierror)"
    assert _probe_cell(summary.to_json()) == "unreachable"


def test_a_flow_to_a_proxy_probes_the_tunnels_target_and_never_resolves_a_name() -> None:
    """The proxy mines nothing: its "no pool" would clear the miner behind it. A target the
    capture names by host name is reported, not looked up (the lookup would tell its owner)."""
    from minerscope.stage2 import suspicious_endpoints

    options = ProbeOptions(
        scope=Scope.loopback(), connect_timeout=0.5, attempt_deadline=0.7, total_deadline=8.0, rate=0.0
    )
    with ThreadedServers() as lab:
        pool = lab.start(start_pool("xmrig", job_interval=0))
        proxy = ("127.0.0.1", _closed_port())  # probing it would come back "unreachable"
        flagged = {"stage1": "mining", "proto": 6, "dst": proxy[0], "dport": proxy[1], "analyst": ""}
        records = [
            {**flagged, "proxy_host": pool.target[0], "proxy_port": pool.target[1]},
            {**flagged, "proxy_host": "pool.example", "proxy_port": 3333},
            {**flagged, "proxy_host": "", "proxy_port": 0, "stage1": "benign"},
        ]
        endpoints = suspicious_endpoints(records)
        assert endpoints == [pool.target, ("pool.example", 3333)]
        summaries = probe_endpoints(endpoints, options)
    assert summaries.keys() == {pool.target, ("pool.example", 3333)}
    assert summaries[pool.target].is_pool and summaries[pool.target].dialect == "xmrig"
    named = summaries[("pool.example", 3333)]
    assert named.is_pool is None and "not resolved" in named.error
    assert "minerscope probe pool.example:3333" in named.error


def _options() -> ProbeOptions:
    return ProbeOptions(
        scope=Scope.loopback(), connect_timeout=0.5, attempt_deadline=0.7, total_deadline=8.0, rate=0.0
    )


def test_an_endpoint_that_resets_every_connection_is_unreachable_not_cleared() -> None:
    """Accept-then-RST (a firewall, a dead service): nothing was checked, so no "not a pool"."""
    with ThreadedServers() as lab:
        reset = lab.start(start_hostile("immediate_reset"))
        summary = probe_endpoints([reset.target], _options())[reset.target]
    assert summary.is_pool is False and summary.error.startswith("unreachable: reset")
    assert _probe_cell(summary.to_json()) == "unreachable"


def test_a_mining_service_not_confirmed_is_told_apart_from_no_pool() -> None:
    with ThreadedServers() as lab:
        daemon = lab.start(start_pool("bitcoind"))  # no credentials given: 401 realm="jsonrpc"
        sv2 = lab.start(start_pool("sv2"))
        summaries = probe_endpoints([daemon.target, sv2.target], _options())
    locked, noise = summaries[daemon.target], summaries[sv2.target]
    assert locked.is_pool is False and locked.dialect == "bitcoind"  # is_pool stays strict
    assert _probe_cell(locked.to_json()) == "daemon? (auth required)"
    assert noise.is_pool is False and _probe_cell(noise.to_json()) == "possible pool (sv2)"
    # a summary stored before labels existed still reads as a mining service
    assert _probe_cell({"is_pool": False, "dialect": "sv2", "outcome": "success"}) == "possible pool (sv2)"


def test_a_confirmed_pool_is_stored_with_a_coin_never_an_algorithm(tmp_path: Path) -> None:
    """xmrig's evidence names rx/0 (an algorithm) and family=monero: the coin is xmr. A
    bitcoin-family Stratum pool does not say its chain: stage 1's coin is recorded, marked."""
    from minerscope.store import open_store

    db = tmp_path / "case.db"
    records = [
        {"stage1": "mining", "proto": 6, "dst": "", "dport": 0, "analyst": "", "coin": coin}
        for coin in ("ltc", "", "btc")
    ]
    with ThreadedServers() as lab:
        xmr = lab.start(start_pool("xmrig", job_interval=0))
        ltc = lab.start(start_pool("stratum1", coin="ltc", job_interval=0))
        unknown = lab.start(start_pool("stratum1", job_interval=0))
        flagged = [
            {**records[0], "dst": ltc.host, "dport": ltc.port},
            {**records[1], "dst": xmr.host, "dport": xmr.port},
            {**records[1], "dst": unknown.host, "dport": unknown.port},
        ]
        endpoints = suspicious_endpoints(flagged)
        summaries = probe_endpoints(endpoints, _options(), db_path=db)
    assert all(s.is_pool for s in summaries.values())
    with open_store(db) as store:
        coins = {(p["host"], p["port"]): p["coin"] for p in store.list_pools()}
        probes = {(p["host"], p["port"]): p["record"] for p in store.list_probes()}
    assert coins[xmr.target] == "xmr" and probes[xmr.target]["coin"] == "xmr"
    assert any(e == {"key": "algo", "value": "rx/0"} for e in probes[xmr.target]["evidence"])
    assert coins[ltc.target] == "ltc"
    assert {"key": "coin_source", "value": "stage 1"} in probes[ltc.target]["evidence"]
    assert not coins[unknown.target] and "coin" not in probes[unknown.target]
