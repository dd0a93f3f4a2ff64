"""The hostile-input campaign: hostile servers, thousands of dead targets, SIGKILL loops.

Run: ``.venv/bin/python -m bench.bench_hostile [--timeouts 5000] [--silent 1000]
[--floods 200] [--kills-store 100] [--kills-model 30] [--kills-scan 10] [--skip-kills]``

Prints, with everything on 127.0.0.0/8 (servers in child processes, each on its own
loopback address, so the prober's time and memory are its own):

1. every hostile trick of :mod:`minerscope.emulate.hostile`: one full probe's duration
   and heap peak, and the bytes one exchange in the trick's own framing read;
2. a batch of pools plus every trick: total time against the sum of the probes alone;
3. ``--timeouts`` targets whose connect never completes (:class:`Blackhole`) and
   ``--silent`` servers that accept and never answer: time, heap peak, peak RSS;
4. ``--floods`` servers each sending an 8 MB JSON line at once: heap peak and peak RSS;
5. SIGKILL loops (:mod:`tests.hostile.crash_writers`): store writes, model saves and
   ``scan`` recording into a case file; kills done, integrity failures, lost writes,
   and model folders that did not load as the old or new model.

Probe options are the defaults with shorter deadlines (see ``OPTIONS``), so a run takes
minutes, not hours; the figures scale with the deadlines.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from minerscope.emulate.hostile import HOSTILE, Blackhole
from minerscope.probe import transport as io
from minerscope.probe.runner import ProbeOptions, probe_many, probe_target
from minerscope.probe.verdict import Verdict
from tests.hostile.crash_writers import run_and_kill, scan_command, writer_command
from tests.hostile.farm import Peer, farm, spec

OPTIONS = ProbeOptions(
    connect_timeout=1.0,
    attempt_deadline=2.0,
    total_deadline=12.0,
    quiet_s=0.6,
    rate=0.0,
    concurrency=512,
    per_host=4,
)
POOLS = ("xmrig", "stratum1", "ethproxy", "ethstratum", "coinhive", "monerod")
TLS_TRICKS = {"tls_garbage", "tls_stall", "tls_close_notify", "tls_hello_request", "tls_ticket_flood"}
WS_TRICKS = {"ws_huge_frame", "ws_flood"}
HTTP_TRICKS = {"http_endless", "http_endless_headers"}

T = TypeVar("T")


def _rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(found.group(1)) / 1024 if found else 0.0


async def measured(work: Callable[[], Awaitable[T]]) -> tuple[T, float, float, float]:
    """Run ``work``: (result, seconds, heap peak MB (tracemalloc), peak RSS MB sampled)."""
    peak_rss = _rss_mb()
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak_rss
        while not done.is_set():
            peak_rss = max(peak_rss, _rss_mb())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    tracemalloc.start()
    start = time.monotonic()
    try:
        result = await work()
        seconds = time.monotonic() - start
        _, heap = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        done.set()
        await sampler
    return result, seconds, heap / 1e6, max(peak_rss, _rss_mb())


async def own_exchange(peer: Peer) -> tuple[int, io.End]:
    """One exchange in the trick's natural framing: (bytes read, how it ended)."""
    limits = OPTIONS.limits()
    if peer.name in WS_TRICKS:
        ws = await io.ws_exchange(
            peer.host, peer.port, ['{"type":"auth"}'], lambda _m: io.AWAIT, limits=limits
        )
        return ws.received_bytes, ws.end
    if peer.name in HTTP_TRICKS:
        http = await io.http_request(peer.host, peer.port, body=b"{}", limits=limits)
        return len(http.body), http.end
    stream = await io.stream_exchange(
        peer.host,
        peer.port,
        b'{"id":1,"method":"mining.subscribe","params":[]}\n',
        lambda _d: io.AWAIT,
        tls=peer.name in TLS_TRICKS,
        limits=limits,
    )
    return len(stream.received), stream.end


async def section_tricks() -> None:
    print(
        f"\n1-2. hostile tricks (attempt deadline {OPTIONS.attempt_deadline:g} s, total "
        f"{OPTIONS.total_deadline:g} s, max_bytes {OPTIONS.max_bytes})",
        flush=True,
    )
    with (
        farm([spec("hostile", n, i) for i, n in enumerate(HOSTILE)]) as bad,
        farm([spec("pool", n, 100 + i) for i, n in enumerate(POOLS)]) as good,
    ):
        pools = list(good.values())
        await probe_target(*pools[0].target, options=OPTIONS)  # warm imports
        print(
            f"{'trick':<22} {'probe s':>8} {'heap MB':>8} {'verdict':>12} {'attempts':>8}"
            f" {'own-framing read':>17} {'end':>14}"
        )
        alone: dict[str, float] = {}
        for peer in bad.values():
            verdict, seconds, heap, _ = await measured(
                lambda p=peer: probe_target(*p.target, options=OPTIONS)
            )
            read, end = await own_exchange(peer)
            alone[peer.name] = seconds
            label = "POOL" if verdict.is_pool else str(verdict.outcome)
            print(
                f"{peer.name:<22} {seconds:8.2f} {heap:8.2f} {label:>12} {len(verdict.attempts):>8}"
                f" {read:>15} B {str(end):>14}",
                flush=True,
            )
        for pool in pools:
            _, seconds, _, _ = await measured(lambda p=pool: probe_target(*p.target, options=OPTIONS))
            alone[pool.name] = seconds
        targets = [p.target for p in (*bad.values(), *pools)]

        async def batch() -> list[Verdict]:
            return [v async for v in probe_many(targets, OPTIONS)]

        verdicts, total, heap, rss = await measured(batch)
        found = sum(v.is_pool for v in verdicts)
        print(
            f"batch of {len(targets)} ({len(pools)} pools + {len(bad)} tricks): {total:.2f} s "
            f"(slowest alone {max(alone.values()):.2f} s, sum alone {sum(alone.values()):.2f} s), "
            f"pools found {found}, heap peak {heap:.1f} MB, peak RSS {rss:.0f} MB",
            flush=True,
        )


async def section_timeouts(count: int, silent: int) -> None:
    print("\n3. targets that all time out", flush=True)
    options = ProbeOptions(
        connect_timeout=OPTIONS.connect_timeout,
        attempt_deadline=OPTIONS.attempt_deadline,
        total_deadline=OPTIONS.total_deadline,
        rate=0.0,
        concurrency=512,
        per_host=4,
    )
    with Blackhole(count) as hole:
        await probe_target(*hole.targets[0], options=options)

        async def run() -> list[Verdict]:
            return [v async for v in probe_many(hole.targets, options)]

        verdicts, seconds, heap, rss = await measured(run)
    rounds = -(-count // options.concurrency)
    timed_out = sum(1 for v in verdicts if (v.attempts[0].error or "").startswith("connect_timeout"))
    print(
        f"{count} blackholed targets (connect {options.connect_timeout:g} s, concurrency "
        f"{options.concurrency}): {seconds:.2f} s (ideal {rounds * options.connect_timeout:.1f} s), "
        f"{timed_out} connect timeouts, heap peak {heap:.1f} MB, peak RSS {rss:.0f} MB",
        flush=True,
    )
    if silent:
        with farm([spec("hostile", "accept_silent", i, net=67) for i in range(silent)], timeout=300) as peers:
            targets = [p.target for p in peers.values()]

            async def run_silent() -> list[Verdict]:
                return [v async for v in probe_many(targets, options)]

            verdicts, seconds, heap, rss = await measured(run_silent)
        attempts = sum(len(v.attempts) for v in verdicts)
        print(
            f"{silent} accept-then-silent servers: {seconds:.2f} s for {attempts} attempts "
            f"(concurrency {options.concurrency}), no pool: {not any(v.is_pool for v in verdicts)}, "
            f"heap peak {heap:.1f} MB, peak RSS {rss:.0f} MB",
            flush=True,
        )


async def section_floods(count: int) -> None:
    print("\n4. multi-megabyte replies", flush=True)
    with farm([spec("hostile", "huge_json", i, net=68) for i in range(count)], timeout=300) as peers:
        targets = [p.target for p in peers.values()]
        options = ProbeOptions(
            connect_timeout=OPTIONS.connect_timeout,
            attempt_deadline=OPTIONS.attempt_deadline,
            total_deadline=OPTIONS.total_deadline,
            rate=0.0,
            concurrency=512,
            per_host=4,
            dialects=("stratum1", "xmrig"),
        )

        async def run() -> list[Verdict]:
            return [v async for v in probe_many(targets, options)]

        before = _rss_mb()
        verdicts, seconds, heap, rss = await measured(run)
    print(
        f"{count} servers x 8 MB JSON line, {options.concurrency} connections in flight: {seconds:.2f} s, "
        f"heap peak {heap:.1f} MB, peak RSS {rss:.0f} MB (+{rss - before:.0f} MB; "
        f"{count * 8} MB offered), pools {sum(v.is_pool for v in verdicts)}",
        flush=True,
    )


# --- SIGKILL loops -------------------------------------------------------------------------


def _integrity(path: Path) -> bool:
    try:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def kill_store(kills: int, rng: random.Random, tmp: Path) -> None:
    path = tmp / "store.sqlite"
    notes: set[int] = set()
    pools: set[str] = set()
    captures: dict[int, int] = {}
    failures = lost = partial = 0
    start = 0
    t = time.monotonic()
    for _ in range(kills):
        run = run_and_kill(writer_command("store", path, start), rng.uniform(0.0, 0.3), ready="READY")
        for line in run.lines:
            kind, *rest = line.split()
            if kind == "note":
                notes.add(int(rest[0]))
            elif kind == "pool":
                pools.add(rest[0])
            elif kind == "capture":
                captures[int(rest[0])] = int(rest[1])
            if kind != "READY":
                start = int(rest[-1]) + 1
        start += 1
        if not _integrity(path):
            failures += 1
            continue
        conn = sqlite3.connect(path)
        try:
            have_notes = {r[0] for r in conn.execute("SELECT id FROM notes")}
            have_pools = {r[0] for r in conn.execute("SELECT host FROM pools")}
            counts = dict(
                conn.execute("SELECT capture_id, count(*) FROM flows GROUP BY capture_id").fetchall()
            )
        finally:
            conn.close()
        lost += len(notes - have_notes) + len(pools - have_pools)
        lost += sum(1 for c, n in captures.items() if counts.get(c) != n)
        partial += sum(1 for n in counts.values() if n != 40)
    acked = len(notes) + len(pools) + len(captures)
    print(
        f"store writes: {kills} kills in {time.monotonic() - t:.0f} s, {acked} acknowledged writes, "
        f"integrity failures {failures}, lost writes {lost}, partial captures {partial}",
        flush=True,
    )


def kill_model(kills: int, rng: random.Random, tmp: Path) -> None:
    from minerscope.errors import ModelError
    from minerscope.model.artifact import load_model

    folder = tmp / "models" / "m"
    last = -1
    start = 0
    bad = mid_save = 0
    t = time.monotonic()
    for _ in range(kills):
        run = run_and_kill(writer_command("model", folder, start), rng.uniform(0.0, 0.2), ready="READY")
        acked = [int(line.split()[1]) for line in run.lines if line.startswith("saved ")]
        last = max(acked, default=last)
        if last < 0:
            continue
        try:
            seq = int(load_model(folder).metadata["seq"])
        except ModelError:
            bad += 1
            start = last + 2
            continue
        if seq not in (last, last + 1):
            bad += 1
        mid_save += seq == last + 1
        start = seq + 1
    print(
        f"model saves: {kills} kills in {time.monotonic() - t:.0f} s, last acknowledged save {last}, "
        f"folders not loading as old-or-new {bad}, kills that landed after the swap but before the "
        f"acknowledgement {mid_save}",
        flush=True,
    )


def kill_scan(kills: int, rng: random.Random, tmp: Path) -> None:
    from tests.hostile.test_durability import _capture

    db = tmp / "scan.sqlite"

    def scan(capture: Path, delay: float) -> bool:
        cmd = scan_command(db, capture)
        return not run_and_kill(cmd, delay).killed

    first = _capture(tmp / "cap-5.pcap", 5)
    t0 = time.monotonic()
    assert scan(first, 600.0)
    full = time.monotonic() - t0
    committed = {str(first.resolve()): 5}
    failures = lost = partial = completed = 0
    for k in range(kills):
        n = 6 + k
        capture = _capture(tmp / f"cap-{n}.pcap", n)
        if scan(capture, rng.uniform(0.4, 1.1) * full):
            committed[str(capture.resolve())] = n
            completed += 1
        if not _integrity(db):
            failures += 1
            continue
        conn = sqlite3.connect(db)
        try:
            stored = dict(
                conn.execute(
                    "SELECT c.path, (SELECT count(*) FROM flows f WHERE f.capture_id = c.id) FROM captures c"
                ).fetchall()
            )
        finally:
            conn.close()
        lost += sum(1 for p, n in committed.items() if stored.get(p) != n)
        partial += sum(1 for p, n in stored.items() if n not in (0, int(Path(p).stem.split("-")[1])))
    print(
        f"scan --store: {kills} kills (+{completed} runs the kill missed) in {time.monotonic() - t0:.0f} s "
        f"(one scan {full:.1f} s), integrity failures {failures}, lost captures {lost}, "
        f"partial flow sets {partial}",
        flush=True,
    )


async def main_async(args: Any) -> None:
    await section_tricks()
    await section_timeouts(args.timeouts, args.silent)
    await section_floods(args.floods)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeouts", type=int, default=5000)
    parser.add_argument("--silent", type=int, default=1000)
    parser.add_argument("--floods", type=int, default=200)
    parser.add_argument("--kills-store", type=int, default=100)
    parser.add_argument("--kills-model", type=int, default=30)
    parser.add_argument("--kills-scan", type=int, default=10)
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--skip-probes", action="store_true")
    args = parser.parse_args()
    if not args.skip_probes:
        asyncio.run(main_async(args))
    if not args.skip_kills:
        print("\n5. SIGKILL loops", flush=True)
        rng = random.Random(9)
        with tempfile.TemporaryDirectory(prefix="minerscope-kills-") as tmp:
            kill_store(args.kills_store, rng, Path(tmp))
            kill_model(args.kills_model, rng, Path(tmp))
            kill_scan(args.kills_scan, rng, Path(tmp))


if __name__ == "__main__":
    main()
