"""Prober throughput and sweep time on loopback emulators (127.0.0.0/8 only).

Run: ``.venv/bin/python -m bench.bench_probe [--targets 200] [--skip-sweep]``

Prints three figures:

1. probes/s over a few hundred targets (pool emulators of every line/WS/HTTP dialect,
   plain and TLS, plus benign services), spread over 127.0.0.x addresses, with the
   *default* :class:`ProbeOptions` (whose 100 connections/s rate limit is the cap);
2. the same batch with the rate limit lifted (the engine's own capacity on this box);
3. one target's full dialect sweep with default timeouts: a pool (``full_sweep``), a
   JSON-RPC server that answers "method not found", and a silent server (worst case).

The emulators run on their own event loop in a thread; the prober runs on the main
loop. Every address is loopback; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from minerscope.emulate import benign
from minerscope.emulate.pool import start_pool
from minerscope.emulate.server import ServerHandle, ThreadedServers
from minerscope.probe.runner import ProbeOptions, probe_many_list, probe_target
from minerscope.probe.verdict import Verdict

POOL_MIX = [
    ("stratum1", False),
    ("xmrig", False),
    ("ethproxy", False),
    ("stratum1", True),
    ("xmrig", True),
    ("ethstratum", False),
    ("stratum1-zcash", False),
    ("coinhive", False),
    ("monerod", False),
    ("geth", False),
]
BENIGN_MIX = [
    "http",
    "jsonrpc-not-found",
    "jsonrpc-yes",
    "tcp-echo",
    "smtp",
    "close-at-once",
    "eth-node-http",
]


def _address(i: int) -> str:
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def start_targets(lab: ThreadedServers, count: int) -> list[ServerHandle]:
    """Start ``count`` servers: 60 % pools, 40 % benign, each on its own 127.0.x.y."""
    handles: list[ServerHandle] = []
    for i in range(count):
        host = _address(i)
        coro: Coroutine[Any, Any, ServerHandle]
        if i % 5 < 3:
            dialect, tls = POOL_MIX[i % len(POOL_MIX)]
            coro = start_pool(dialect, host, 0, tls=tls, job_interval=0)
        else:
            coro = benign.start_benign(BENIGN_MIX[i % len(BENIGN_MIX)], host=host)
        handles.append(lab.start(coro))
    return handles


def summarise(label: str, verdicts: list[Verdict], handles: list[ServerHandle], seconds: float) -> None:
    expected = {f"{h.host}:{h.port}": h.dialect for h in handles}
    right = sum(1 for v in verdicts if (v.dialect if v.is_pool else None) == expected[v.target])
    attempts = sum(len(v.attempts) for v in verdicts)
    kinds = Counter("pool" if v.is_pool else "no pool" for v in verdicts)
    print(
        f"{label}: {len(verdicts)} targets in {seconds:.2f} s = {len(verdicts) / seconds:.1f} probes/s, "
        f"{attempts / seconds:.0f} attempts/s; {dict(kinds)}; verdict matches emulator: {right}/{len(verdicts)}"
    )


async def batch(handles: list[ServerHandle], options: ProbeOptions) -> tuple[list[Verdict], float]:
    start = time.perf_counter()
    verdicts = await probe_many_list([h.target for h in handles], options)
    return verdicts, time.perf_counter() - start


async def sweeps(lab: ThreadedServers) -> None:
    defaults = ProbeOptions()
    pool = lab.start(start_pool("xmrig", "127.0.9.1", 0, job_interval=0))
    nf = lab.start(benign.start_benign("jsonrpc-not-found", host="127.0.9.2"))
    silent = lab.start(benign.start_benign("silent", host="127.0.9.3"))
    for label, handle, options in (
        ("pool, stop at first confident dialect", pool, defaults),
        ("pool, full sweep", pool, replace(defaults, full_sweep=True)),
        ("method-not-found JSON-RPC, full sweep", nf, defaults),
        ("silent server, full sweep (worst case)", silent, defaults),
    ):
        start = time.perf_counter()
        verdict = await probe_target(*handle.target, options=options)
        print(
            f"sweep [{label}]: {time.perf_counter() - start:.2f} s, {len(verdict.attempts)} attempts, "
            f"pool={verdict.is_pool} dialect={verdict.dialect}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=200, help="loopback servers to probe (default 200)")
    parser.add_argument("--skip-sweep", action="store_true", help="skip the single-target sweep timings")
    args = parser.parse_args()
    with ThreadedServers() as lab:
        start = time.perf_counter()
        handles = start_targets(lab, args.targets)
        print(f"started {len(handles)} loopback servers in {time.perf_counter() - start:.2f} s")
        defaults = ProbeOptions()
        verdicts, seconds = asyncio.run(batch(handles, defaults))
        summarise(
            f"default limits (rate {defaults.rate:g}/s, concurrency {defaults.concurrency})",
            verdicts,
            handles,
            seconds,
        )
        unlimited = replace(defaults, rate=0.0, concurrency=256)
        verdicts, seconds = asyncio.run(batch(handles, unlimited))
        summarise("no rate limit, concurrency 256", verdicts, handles, seconds)
        if not args.skip_sweep:
            asyncio.run(sweeps(lab))


if __name__ == "__main__":
    main()
