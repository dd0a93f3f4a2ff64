"""``minerscope scan --probe`` on the bundled sample, against real pool emulators on loopback.

The sample capture's pools live at 127.20.0.x, so the test starts a real emulator of
the right dialect on each miner endpoint and checks that stage 2 confirms exactly
those, records them in the case file, and puts them on its blacklist.
"""

from __future__ import annotations

import asyncio
import csv
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from minerscope import resources
from minerscope.cli import main
from minerscope.emulate.pool import start_pool
from minerscope.store import open_store

SAMPLE = resources.sample_capture()
LABELS = SAMPLE.with_name("campus-gateway.labels.csv")
# the lab's dialect names -> the emulator's
POOL_DIALECT = {
    "monero": "xmrig",
    "stratum1": "stratum1",
    "stratum1-kawpow": "stratum1",
    "stratum1-zcash": "stratum1-zcash",
    "ethstratum1": "ethstratum",
    "browser-ws": "coinhive",
}

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")


def _miners() -> dict[tuple[str, int], tuple[str, bool]]:
    out = {}
    with LABELS.open() as fh:
        for row in csv.DictReader(fh):
            if row["label"] == "miner" and row["dialect"] in POOL_DIALECT:
                tls = row["transport"] != "tcp"
                out[(row["server_ip"], int(row["server_port"]))] = (POOL_DIALECT[row["dialect"]], tls)
    return out


@pytest.fixture
def emulated_pools() -> Iterator[dict[tuple[str, int], tuple[str, bool]]]:
    """Real pool emulators on every sample miner endpoint, served from a background loop."""
    miners = _miners()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    handles: list[object] = []

    async def _start() -> None:
        for (host, port), (dialect, tls) in miners.items():
            handles.append(await start_pool(dialect, host, port, tls=tls))
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(_start(), loop).result(timeout=30)
    try:
        yield miners
    finally:

        async def _stop() -> None:
            for handle in handles:
                await handle.close()  # type: ignore[attr-defined]

        asyncio.run_coroutine_threadsafe(_stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_scan_probe_confirms_the_emulated_pools(tmp_path: Path, emulated_pools: dict) -> None:
    db = tmp_path / "case.sqlite"
    result = CliRunner().invoke(
        main, ["--db", str(db), "scan", "-q", "--format", "jsonl", "--probe", "--probe-timeout", "20"]
    )
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    probed = {(r["dst"], r["dport"]): r["probe"] for r in records if r["probe"]}
    assert probed, "stage 1 flagged nothing to probe"
    confirmed = {ep for ep, p in probed.items() if p.get("is_pool")}
    # every confirmed endpoint is a real emulator, and most flagged miners are confirmed
    assert confirmed <= set(emulated_pools)
    flagged_miners = set(probed) & set(emulated_pools)
    assert len(confirmed) >= max(1, len(flagged_miners) - 1), (probed, emulated_pools)
    for ep in confirmed:
        dialect, _tls = emulated_pools[ep]
        assert probed[ep]["dialect"] == dialect
    # nothing but loopback was contacted: every probed endpoint is in 127.0.0.0/8
    assert all(host.startswith("127.") for host, _ in probed)
    with open_store(db) as store:
        pools = {(p["host"], p["port"]) for p in store.list_pools()}
        assert confirmed <= pools
        blacklist = store.load_blacklist()
        for host, port in confirmed:
            assert blacklist.match_ip(host, port) is not None


def test_without_probe_nothing_is_probed(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "c.sqlite"), "scan", "-q", "--format", "jsonl"])
    assert result.exit_code == 0
    assert all(json.loads(line)["probe"] is None for line in result.stdout.splitlines())


def test_probe_scope_excludes_out_of_scope_endpoints(tmp_path: Path) -> None:
    # a scope that contains none of the sample's servers: flagged endpoints are skipped, not contacted
    result = CliRunner().invoke(
        main,
        [
            "--db",
            str(tmp_path / "c.sqlite"),
            "scan",
            "-q",
            "--format",
            "jsonl",
            "--probe",
            "--scope",
            "127.99.0.0/16",
        ],
    )
    assert result.exit_code == 0
    probes = [json.loads(line)["probe"] for line in result.stdout.splitlines()]
    assert any(probes)
    for p in probes:
        if p:
            assert p["is_pool"] is None and "scope" in p["error"]


def test_deny_applies_without_scope(tmp_path: Path) -> None:
    """The default scope is loopback, and ``--deny`` still carves out of it: the sample's
    servers (127.20.0.x) are refused, not contacted (they would be unreachable)."""
    result = CliRunner().invoke(
        main,
        ["--db", str(tmp_path / "c.sqlite"), "scan", "-q", "--format", "jsonl", "--probe"]
        + ["--deny", "127.20.0.0/16"],
    )
    assert result.exit_code == 0, result.stderr
    probes = [p for line in result.stdout.splitlines() if (p := json.loads(line)["probe"])]
    assert probes
    for p in probes:
        assert p["is_pool"] is None and "denied network 127.20.0.0/16" in p["error"], p


@pytest.mark.parametrize("option", ["--scope", "--deny"])
def test_a_mistyped_network_stops_scan_before_any_work(tmp_path: Path, option: str) -> None:
    db = tmp_path / "c.sqlite"
    result = CliRunner().invoke(main, ["--db", str(db), "scan", "-q", "--probe", option, "127.0.0/8"])
    assert result.exit_code == 4
    assert f"{option} '127.0.0/8': not an IP address or CIDR network" in result.stderr
    assert not db.exists()  # nothing triaged, nothing recorded
