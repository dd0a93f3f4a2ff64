"""The prober end to end on real loopback servers: pools found, benign services never
called pools, hostile servers bounded in time and memory, limits and callbacks honoured."""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest

from minerscope.emulate import benign, hostile
from minerscope.emulate.pool import POOL_DIALECTS, start_pool, transports_for
from minerscope.errors import InputError, ScopeError
from minerscope.probe.runner import (
    CONTROL_SUFFIX,
    LIVENESS,
    TLS_SNIFF,
    ProbeOptions,
    Prober,
    TokenBucket,
    format_target,
    parse_target,
    probe_many,
    probe_many_list,
    probe_target,
)
from minerscope.probe.scope import Scope
from minerscope.probe.verdict import Outcome, ProbeAttempt, Transport
from tests.conftest import MS
from tests.probe.conftest import ATTEMPT_DEADLINE, StartServer, fast_options

SECURE = {"tcp": False, "tls": True, "ws": False, "wss": True, "http": False, "https": True}
EXPECTED_TRANSPORT = {
    "tcp": Transport.TCP,
    "tls": Transport.TLS,
    "ws": Transport.WS,
    "wss": Transport.WSS,
    "http": Transport.HTTP,
    "https": Transport.HTTPS,
}

POOL_CASES = [(d, t) for d in POOL_DIALECTS for t in transports_for(d)]


@pytest.mark.parametrize(("dialect", "transport"), POOL_CASES, ids=[f"{d}-{t}" for d, t in POOL_CASES])
async def test_every_emulated_pool_is_found_with_its_dialect(
    start_server: StartServer, dialect: str, transport: str
) -> None:
    pool = await start_server(start_pool(dialect, tls=SECURE[transport], job_interval=0))
    options = fast_options()
    if dialect == "bitcoind":  # the daemon needs credentials for a template
        options = fast_options(worker="minerscope", password="x")
    verdict = await probe_target(pool.host, pool.port, options=options)
    assert verdict.dialect == dialect, [a.to_json() for a in verdict.attempts]
    assert verdict.outcome is Outcome.SUCCESS
    if dialect == "sv2":
        # a high-entropy Act-2 is a hint, never proof: below the pool threshold by design
        assert verdict.transport is Transport.RAW and not verdict.is_pool
        return
    assert verdict.is_pool and verdict.confidence >= 0.9
    assert verdict.transport is EXPECTED_TRANSPORT[transport]
    # the control request ran on its own connection and was answered differently
    assert any(a.dialect == dialect + CONTROL_SUFFIX for a in verdict.attempts)
    if SECURE[transport]:
        assert verdict.tls is not None
        assert verdict.tls["certificate"]["subject"] == "CN=localhost"


async def test_bitcoind_without_credentials_is_a_daemon_fingerprint_not_a_pool(
    start_server: StartServer,
) -> None:
    daemon = await start_server(start_pool("bitcoind"))
    verdict = await probe_target(*daemon.target, options=fast_options(dialects=("bitcoind",)))
    assert verdict.dialect == "bitcoind" and verdict.outcome is Outcome.ERROR
    assert not verdict.is_pool
    assert any(e.value.startswith("WWW-Authenticate") for e in verdict.evidence)


@pytest.mark.parametrize("dialect", ["xmrig", "stratum1", "ethproxy", "coinhive"])
async def test_wallet_rejection_still_reveals_the_pool(start_server: StartServer, dialect: str) -> None:
    pool = await start_server(start_pool(dialect, wallet_policy="reject", job_interval=0))
    verdict = await probe_target(*pool.target, options=fast_options(dialects=(dialect,)))
    assert verdict.is_pool, [a.to_json() for a in verdict.attempts]
    assert verdict.dialect == dialect
    if dialect in ("xmrig", "ethproxy", "coinhive"):  # nothing else in the reply
        assert verdict.outcome is Outcome.ERROR
        assert any(e.key == "error" for e in verdict.evidence)


async def test_benign_services_are_never_pools(start_server: StartServer) -> None:
    handles = [await start_server(benign.start_benign(name)) for name in benign.BENIGN]
    verdicts = await probe_many_list([h.target for h in handles], fast_options())
    assert len(verdicts) == len(handles)
    for handle, verdict in zip(handles, verdicts, strict=True):
        assert verdict.target == format_target(*handle.target)
        assert not verdict.is_pool, (handle.name, verdict.to_json())
        assert verdict.outcome is not Outcome.SUCCESS or verdict.dialect == "sv2", handle.name


async def test_answer_everything_server_is_caught_by_the_control(start_server: StartServer) -> None:
    server = await start_server(benign.start_benign("jsonrpc-yes"))
    verdict = await probe_target(*server.target, options=fast_options(dialects=("stratum1",)))
    assert not verdict.is_pool
    stratum = [a for a in verdict.attempts if a.dialect == "stratum1"]
    assert stratum and stratum[0].result is not None
    # without the control the same replies would pass: the control is what saves us
    no_control = await probe_target(
        *server.target, options=fast_options(dialects=("stratum1",), control=False)
    )
    assert [a for a in no_control.attempts if a.dialect == "stratum1"][0].result is not None


async def test_dead_port_gives_a_quick_none(closed_port: int) -> None:
    start = time.monotonic()
    verdict = await probe_target("127.0.0.1", closed_port, options=fast_options())
    assert time.monotonic() - start < 0.5
    assert not verdict.is_pool and verdict.outcome is Outcome.NONE
    assert [a.dialect for a in verdict.attempts] == [LIVENESS]
    assert verdict.attempts[0].error is not None and "refused" in verdict.attempts[0].error
    assert verdict.unreachable == verdict.attempts[0].error  # not checked, which views must say


async def test_a_live_endpoint_that_is_no_pool_is_not_unreachable(start_server: StartServer) -> None:
    echo = await start_server(hostile.start_hostile("accept_silent"))
    verdict = await probe_target(*echo.target, options=fast_options(dialects=("stratum1",)))
    assert not verdict.is_pool and verdict.attempts[0].dialect == LIVENESS
    assert verdict.unreachable is None


async def test_on_attempt_reports_each_attempt_as_it_happens(start_server: StartServer) -> None:
    pool = await start_server(start_pool("xmrig", job_interval=0))
    seen: list[tuple[tuple[str, int], ProbeAttempt, float]] = []
    verdict = await probe_target(
        *pool.target,
        options=fast_options(per_host=1),
        on_attempt=lambda target, attempt: seen.append((target, attempt, time.monotonic())),
    )
    assert [a for _, a, _ in seen] == list(verdict.attempts)
    assert {t for t, _, _ in seen} == {pool.target}
    assert [a.dialect for _, a, _ in seen][:2] == [LIVENESS, TLS_SNIFF]
    stamps = [s for _, _, s in seen]
    assert stamps == sorted(stamps)


async def test_full_sweep_keeps_going_after_a_confident_pool(start_server: StartServer) -> None:
    pool = await start_server(start_pool("xmrig", job_interval=0))
    quick = await probe_target(*pool.target, options=fast_options(per_host=1))
    full = await probe_target(*pool.target, options=fast_options(per_host=4, full_sweep=True))
    assert quick.dialect == full.dialect == "xmrig"
    assert len(full.attempts) > len(quick.attempts)
    tried = {a.dialect for a in full.attempts}
    assert {"stratum1", "ethproxy", "coinhive", "bitcoind", "sv2"} <= tried


async def test_zcash_pool_is_named_by_its_own_dialect(start_server: StartServer) -> None:
    pool = await start_server(start_pool("stratum1-zcash", job_interval=0))
    verdict = await probe_target(*pool.target, options=fast_options(dialects=("stratum1", "stratum1-zcash")))
    first = [a for a in verdict.attempts if a.dialect == "stratum1"][0]
    assert first.result is not None and first.result.get("family") == "zcash"
    assert verdict.dialect == "stratum1-zcash" and verdict.is_pool


async def test_unknown_dialect_and_bad_targets_are_input_errors() -> None:
    with pytest.raises(InputError, match="--dialect 'nope'"):
        await probe_target("127.0.0.1", 1, options=fast_options(dialects=("nope",)))
    with pytest.raises(InputError, match="port"):
        parse_target("127.0.0.1")
    with pytest.raises(InputError, match="port"):
        parse_target("127.0.0.1:99999")
    assert parse_target("stratum+ssl://pool.example:443") == ("pool.example", 443)
    assert parse_target("[::1]:3333") == ("::1", 3333)
    assert format_target("::1", 3333) == "[::1]:3333"


async def test_localhost_name_must_resolve_entirely_into_scope(start_server: StartServer) -> None:
    pool = await start_server(start_pool("xmrig", job_interval=0))
    only_v6 = Scope.from_cli(["::1/128"], [])
    with pytest.raises(ScopeError, match=r"localhost \(127\.0\.0\.1\)"):
        await probe_target("localhost", pool.port, options=fast_options(scope=only_v6))
    assert pool.stats.connections == 0  # nothing reached the server
    verdict = await probe_target("localhost", pool.port, options=fast_options(dialects=("xmrig",)))
    assert verdict.is_pool


async def test_batch_reports_out_of_scope_names_through_on_error(
    start_server: StartServer, closed_port: int
) -> None:
    pool = await start_server(start_pool("xmrig", job_interval=0))
    errors: list[tuple[tuple[str, int], Exception]] = []
    options = fast_options(scope=Scope.from_cli(["::1/128"], []), dialects=("xmrig",))
    results = [
        v
        async for v in probe_many(
            [("::1", closed_port), ("localhost", pool.port)],
            options,
            on_error=lambda t, e: errors.append((t, e)),
        )
    ]
    assert [v.target for v in results] == [f"[::1]:{closed_port}"]
    assert not results[0].is_pool
    assert [(t, type(e)) for t, e in errors] == [(("localhost", pool.port), ScopeError)]
    assert pool.stats.connections == 0
    with pytest.raises(ScopeError):  # without on_error the refusal stops the run
        await probe_many_list([("localhost", pool.port)], options)


# --- hostile servers ---------------------------------------------------------------------

HOSTILE_OPTIONS = {
    "attempt_deadline": ATTEMPT_DEADLINE,
    "total_deadline": 8_000 * MS,
    "concurrency": 128,
    "max_bytes": 32 * 1024,
    "per_host": 8,
}


async def test_hostile_servers_are_bounded_in_time_and_memory(start_server: StartServer) -> None:
    """Every hostile server is left within its deadlines, and the replies are budgeted.

    The servers share the prober's event loop (and tracemalloc slows both), so on a busy
    machine the loop itself can run late; a deadline cannot fire before the loop gets to
    it. The slack allowed is a second plus the worst lateness a 20 ms heartbeat saw, so a
    starved loop is not mistaken for a deadline that was ignored (the servers never end a
    reply by themselves: without the deadlines these attempts would not end at all).
    """
    handles = [await start_server(hostile.start_hostile(name, interval=50 * MS)) for name in hostile.HOSTILE]
    options = fast_options(**HOSTILE_OPTIONS)
    names = {format_target(*h.target): h.name for h in handles}
    finished: dict[str, float] = {}
    verdicts = []
    loop = asyncio.get_running_loop()
    lateness = 0.0

    async def heartbeat() -> None:
        nonlocal lateness
        while True:
            before = loop.time()
            await asyncio.sleep(20 * MS)
            lateness = max(lateness, loop.time() - before - 20 * MS)

    beat = asyncio.create_task(heartbeat())
    start = time.monotonic()
    tracemalloc.start()
    try:
        async for verdict in probe_many([h.target for h in handles], options):
            finished[verdict.target] = time.monotonic() - start
            verdicts.append(verdict)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        beat.cancel()
    slack = 1.0 + lateness
    for verdict in verdicts:
        if names[verdict.target] == "hostile:ws_flood":
            # unsolicited hash_accepted frames to the control too: the coinhive
            # judge still rates that 0.7 ("control answered alike"); never more
            assert verdict.confidence <= 0.7
        else:
            assert not verdict.is_pool, (names[verdict.target], verdict.to_json())
        for attempt in verdict.attempts:
            if attempt.dialect == "sweep":  # the total-deadline marker, checked below
                continue
            assert attempt.elapsed_s < options.attempt_deadline + slack, (
                names[verdict.target],
                attempt.to_json(),
                f"loop lateness {lateness:.2f} s",
            )
            assert len(attempt.reply_excerpt) <= 512
    assert len(finished) == len(handles)
    slowest = max(finished.values())
    assert slowest < options.total_deadline + 0.5 + slack, (finished, lateness)
    # 16 hostile servers (one floods 8 MB, one never ends a line) cost the prober and
    # the servers together a few MB at most: every read is budgeted
    assert peak < 24 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


async def test_one_bad_target_does_not_slow_the_batch(start_server: StartServer) -> None:
    pools = [await start_server(start_pool(d, job_interval=0)) for d in ("xmrig", "stratum1", "ethproxy")]
    drip = await start_server(hostile.start_hostile("slow_drip", interval=200 * MS))
    options = fast_options(per_host=2)
    start = time.monotonic()
    baseline = await probe_many_list([p.target for p in pools], options)
    base_s = time.monotonic() - start
    assert all(v.is_pool for v in baseline)
    arrivals: dict[str, float] = {}
    start = time.monotonic()
    async for verdict in probe_many([drip.target, *(p.target for p in pools)], options):
        arrivals[verdict.target] = time.monotonic() - start
    pool_done = max(arrivals[format_target(*p.target)] for p in pools)
    assert pool_done <= base_s + options.attempt_deadline + 0.5, (pool_done, base_s, arrivals)
    assert arrivals[format_target(*drip.target)] >= pool_done


async def test_global_concurrency_limit_is_respected(start_server: StartServer) -> None:
    silent = [await start_server(benign.start_benign("silent")) for _ in range(3)]
    options = fast_options(concurrency=2, dialects=("xmrig",), attempt_deadline=200 * MS)
    prober = Prober(options)
    in_flight = 0
    peak = 0
    original = prober.limiter.slot

    def counting_slot(address: str):  # type: ignore[no-untyped-def]
        cm = original(address)

        class _Wrapped:
            async def __aenter__(self) -> None:
                nonlocal in_flight, peak
                await cm.__aenter__()
                in_flight += 1
                peak = max(peak, in_flight)

            async def __aexit__(self, *exc: object) -> None:
                nonlocal in_flight
                in_flight -= 1
                await cm.__aexit__(*exc)

        return _Wrapped()

    prober.limiter.slot = counting_slot  # type: ignore[method-assign]
    await asyncio.gather(*(prober.probe(*s.target) for s in silent))
    assert peak == 2


async def test_token_bucket_paces_connections() -> None:
    bucket = TokenBucket(rate=50.0, burst=1)
    start = time.monotonic()
    for _ in range(6):
        await bucket.take()
    elapsed = time.monotonic() - start
    assert elapsed >= 5 / 50 * 0.9  # one token free, five paid at 50/s
    unlimited = TokenBucket(rate=0, burst=1)
    start = time.monotonic()
    for _ in range(1000):
        await unlimited.take()
    assert time.monotonic() - start < 0.5


def test_default_options_are_safe() -> None:
    options = ProbeOptions()
    assert options.scope.permits("127.0.0.1") and not options.scope.permits("192.0.2.1")
    assert options.max_bytes <= 1 << 20 and options.attempt_deadline <= 10
    assert options.limits().deadline == options.attempt_deadline


async def test_a_port_that_resets_every_connection_could_not_be_checked(start_server: StartServer) -> None:
    """Accepted (liveness passed), then reset at once, every time: no dialect was heard, so
    the verdict says the target could not be checked rather than "no pool"."""
    server = await start_server(hostile.start_hostile("immediate_reset"))
    verdict = await probe_target(*server.target, options=fast_options())
    assert not verdict.is_pool and verdict.outcome is Outcome.NONE
    assert verdict.unreachable is not None and verdict.unreachable.startswith("reset")
    record = verdict.to_json()
    assert record["error"] == verdict.check_error and record["error"].startswith("unreachable: reset")


async def test_a_live_port_that_answers_is_never_called_unreachable(start_server: StartServer) -> None:
    """A reset *after* a reply (mid-answer) is the peer talking: checked, not unreachable."""
    server = await start_server(hostile.start_hostile("reset_mid_reply"))
    verdict = await probe_target(*server.target, options=fast_options(dialects=("stratum1", "xmrig")))
    assert verdict.unreachable is None and "error" not in verdict.to_json()


def _by_dialect(verdict_attempts: tuple[ProbeAttempt, ...], name: str) -> list[ProbeAttempt]:
    return [a for a in verdict_attempts if a.dialect == name]


async def test_attempt_messages_say_what_happened(start_server: StartServer) -> None:
    """Each failure in the words of what the peer did, with the limit that actually applied."""
    silent = await start_server(hostile.start_hostile("accept_silent"))
    options = fast_options(dialects=("coinhive",), connect_timeout=300 * MS, attempt_deadline=900 * MS)
    verdict = await probe_target(*silent.target, options=options)
    (sniff,) = _by_dialect(verdict.attempts, TLS_SNIFF)
    # the TCP connection was made: what got no answer was the TLS handshake
    assert sniff.error is not None and "no answer to the TLS handshake" in sniff.error
    assert "no connection" not in sniff.error
    ws = _by_dialect(verdict.attempts, "coinhive")
    assert ws and ws[0].error is not None and ws[0].elapsed_s < 0.9
    assert f"no WebSocket upgrade within {300 * MS:g}s" in ws[0].error  # not the 0.9 s deadline

    drip = await start_server(hostile.start_hostile("slow_drip", interval=100 * MS))
    verdict = await probe_target(*drip.target, options=fast_options(dialects=("stratum1",)))
    (stratum,) = _by_dialect(verdict.attempts, "stratum1")
    assert stratum.result is not None and "incomplete at the deadline" in stratum.result.reason
    assert "non-JSON" not in stratum.result.reason

    headers = await start_server(hostile.start_hostile("http_endless_headers", interval=0))
    verdict = await probe_target(*headers.target, options=fast_options(dialects=("bitcoind",)))
    (daemon,) = _by_dialect(verdict.attempts, "bitcoind")
    assert daemon.error is not None and "HTTP head never ended" in daemon.error


async def test_a_failed_websocket_upgrade_records_the_path_it_asked(start_server: StartServer) -> None:
    pool = await start_server(start_pool("coinhive", ws_path="/elsewhere", job_interval=0))
    verdict = await probe_target(*pool.target, options=fast_options(dialects=("coinhive",)))
    refused = [a for a in _by_dialect(verdict.attempts, "coinhive") if a.error and "HTTP 404" in a.error]
    assert len(refused) >= 2
    paths = [a.request_excerpt.split(b" ")[1] for a in refused]
    assert all(a.request_excerpt.startswith(b"GET /") for a in refused) and len(set(paths)) == len(paths)
