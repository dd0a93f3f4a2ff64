"""The prober against real server software on 127.0.0.1 (Debian's own binaries).

Solo-mining daemons must be recognised as what they are, from their real replies:
monerod (regtest) builds a block template for the probe's wallet, so it is a mining
service; litecoind answers an anonymous call with its ``401 realm="jsonrpc"`` fingerprint
(a daemon, below the pool threshold) and, given its RPC cookie once it has a peer and
blocks, with a block template. Benign services that speak something else (nginx over HTTP and
HTTPS, redis, mosquitto over MQTT and MQTT/TLS, OpenSSH) must get no claim from any
dialect. The emulators of ``minerscope.emulate`` are our reading of these programs; this
module checks the reading against the programs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from minerscope.emulate.pool import start_pool
from minerscope.probe.dialects.http_jsonrpc import DAEMON_FINGERPRINT_CONFIDENCE, monerod_template_request
from minerscope.probe.dialects.monero import PROBE_WALLET
from minerscope.probe.runner import ProbeOptions, probe_many_list
from minerscope.probe.verdict import Outcome, Transport, Verdict
from tests.conftest import MS
from tests.probe.real_services import PACKAGES, Service, all_running, cookie_credentials, litecoin_rpc

OPTIONS = ProbeOptions(connect_timeout=3_000 * MS, attempt_deadline=4_000 * MS, total_deadline=60_000 * MS)
"""Loopback scope (the default); deadlines generous for a busy 2-core box."""

BENIGN = {
    "nginx": ("http", "https"),
    "redis": ("resp",),
    "mosquitto": ("mqtt", "mqtts"),
    "sshd": ("ssh",),
}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    with all_running(tmp_path_factory.mktemp("real-services")) as running:
        yield running


def _service(services: dict[str, Service], name: str) -> Service:
    if name not in services:
        pytest.skip(f"{name} is not installed (Debian package {PACKAGES[name]}; .ci/run installs it)")
    return services[name]


def _probe(*targets: str, **options: Any) -> list[Verdict]:
    return asyncio.run(probe_many_list(targets, dataclasses.replace(OPTIONS, **options)))


def _attempt(verdict: Verdict, dialect: str) -> list[tuple[Transport, Outcome | None, str]]:
    return [
        (a.transport, a.result.outcome if a.result else None, a.result.reason if a.result else a.error or "")
        for a in verdict.attempts
        if a.dialect == dialect
    ]


def test_monerod_builds_a_template_for_the_probe_so_it_is_a_mining_service(
    services: dict[str, Service],
) -> None:
    daemon = _service(services, "monerod")
    (verdict,) = _probe(f"127.0.0.1:{daemon.ports['rpc']}")
    assert verdict.is_pool and verdict.dialect == "monerod" and verdict.outcome is Outcome.SUCCESS
    evidence = dict((e.key, e.value) for e in verdict.evidence)
    assert evidence["coin"] == "xmr" and evidence["height"] == "1"
    # epee serves TLS and plain HTTP on one port; the sniff found TLS first
    assert verdict.transport is Transport.HTTPS and verdict.tls is not None
    # no Stratum dialect is fooled by the node
    for dialect in ("xmrig", "stratum1", "ethproxy"):
        assert all(outcome in (None, Outcome.NONE) for _, outcome, _ in _attempt(verdict, dialect))


def test_the_monerod_emulator_answers_like_the_real_daemon(services: dict[str, Service]) -> None:
    """Our emulator is our reading of monerod; here the reading meets the program: the same
    headers, layout and fields for the calls xmrig's daemon mode makes."""
    daemon = _service(services, "monerod")
    template = dict(monerod_template_request(PROBE_WALLET), method="getblocktemplate")

    async def both() -> list[tuple[httpx.Response, httpx.Response]]:
        emulator = await start_pool("monerod")
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
                out = []
                for base in (
                    f"http://127.0.0.1:{daemon.ports['rpc']}",
                    f"http://{emulator.host}:{emulator.port}",
                ):
                    out.append(
                        (
                            await client.post(base + "/json_rpc", json=template),
                            await client.get(base + "/getheight"),
                        )
                    )
                return out
        finally:
            await emulator.close()

    (real_tpl, real_height), (emu_tpl, emu_height) = asyncio.run(both())
    assert emu_tpl.headers["server"] == real_tpl.headers["server"] == "Epee-based"
    assert emu_tpl.content[:40] == real_tpl.content[:40] and not real_tpl.content.endswith(b"\n")
    assert not emu_tpl.content.endswith(b"\n")
    assert set(emu_tpl.json()["result"]) <= set(real_tpl.json()["result"])
    assert set(emu_height.json()) == set(real_height.json())


def test_litecoind_is_fingerprinted_without_credentials_and_serves_a_template_with_them(
    services: dict[str, Service],
) -> None:
    daemon = _service(services, "litecoind")
    target = f"127.0.0.1:{daemon.ports['rpc']}"
    (anonymous,) = _probe(target)
    assert not anonymous.is_pool and anonymous.dialect == "bitcoind"
    assert anonymous.outcome is Outcome.ERROR and anonymous.confidence == DAEMON_FINGERPRINT_CONFIDENCE
    evidence = dict((e.key, e.value) for e in anonymous.evidence)
    assert evidence["http_status"] == "401" and 'realm="jsonrpc"' in evidence["software"]

    # out of initial sync with its peer connected, it hands out templates to its owner;
    # it refuses a call without the mweb rule ("must be called with the segwit & mweb rule sets")
    deadline = time.monotonic() + 60
    while litecoin_rpc(daemon, "getconnectioncount") == 0:
        assert time.monotonic() < deadline, "the peer node never connected"
        time.sleep(0.2)
    litecoin_rpc(daemon, "generatetodescriptor", 101, "raw(51)")
    user, password = cookie_credentials(daemon)
    (authed,) = _probe(target, worker=user, password=password, dialects=("bitcoind",))
    assert authed.is_pool and authed.dialect == "bitcoind" and authed.outcome is Outcome.SUCCESS
    evidence = dict((e.key, e.value) for e in authed.evidence)
    assert evidence["height"] == "102" and evidence["chain"] == "bitcoin-family" and "coin" not in evidence


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_services_get_no_claim_from_any_dialect(services: dict[str, Service], name: str) -> None:
    service = _service(services, name)
    ports = [service.ports[port] for port in BENIGN[name]]
    verdicts = _probe(*(f"127.0.0.1:{port}" for port in ports))
    for verdict in verdicts:
        assert not verdict.is_pool and verdict.outcome is Outcome.NONE and verdict.dialect is None
        claims = [
            a for a in verdict.attempts if a.result is not None and a.result.outcome is not Outcome.NONE
        ]
        assert claims == [], verdict.target
        # the service was up (its liveness connect succeeded) and the sweep went through
        # the dialects, each meeting the service's own answer (a page, an error line, a
        # banner, a reset)
        (liveness,) = [a for a in verdict.attempts if a.dialect == "liveness"]
        assert liveness.error is None, verdict.target
        assert sum(1 for a in verdict.attempts if a.dialect != "liveness") >= 8, verdict.target
    if name in ("nginx", "mosquitto"):
        plain, tls = verdicts
        assert plain.tls is None and tls.tls is not None
