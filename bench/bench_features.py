"""Benchmark: stage-1 feature extraction, flow-windows per second on one core.

Run ``.venv/bin/python -m bench.bench_features [--flows N] [--mining M] [--repeat R] [--real]``.

First the cold start: a fresh interpreter imports the extractor and runs it once on a
tiny table with an empty numba cache (the JIT compile of every kernel), then again with
that cache filled (what every later process pays). Then the workloads, each timed after
one warm-up run (best of ``--repeat``), on one core:

* ``short``: N short flows of 2-60 messages (geometric), one window each, each message
  a packet plus the peer's bare ACK: the bulk of a real capture (DNS, short TLS).
* ``long``: M pool-like flows of 1-3 hours cut into 300 s windows (~40 packets per
  window): the long flows the detector exists for.
* ``real`` (``--real``): every flow of ``../shared/datasets/real`` + ``lab-real`` read and
  assembled first (untimed), then windows + whole flows extracted.

Prints flow-windows/s (samples/s) and packets/s, by wall clock and per CPU-second of
this process (the fairer figure on a shared, loaded machine). Polars, BLAS and numba
threads are pinned to one so the figure is per core. Target (issue #4): 50,000
flow-windows/s.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from minerscope.features.synthetic import HEADER_BYTES, synthetic_table  # noqa: E402
from minerscope.features.windows import extract_features  # noqa: E402
from minerscope.flows.records import FLOW_SUMMARY_SCHEMA, FlowTable  # noqa: E402


def short_flows(n: int, seed: int = 0) -> FlowTable:
    """``n`` short flows built with numpy only (no per-flow loop, so large n is quick)."""
    rng = np.random.default_rng(seed)
    k = np.clip(rng.geometric(0.08, n) + 1, 2, 60).astype(np.int64)
    total = int(k.sum())
    start = np.repeat(rng.uniform(1.7e9, 1.7e9 + 3600, n), k)
    gaps = rng.exponential(0.5, total)
    first = np.concatenate([[0], np.cumsum(k)[:-1]])
    gaps[first] = 0.0
    cum = np.cumsum(gaps)
    m_ts = start + cum - np.repeat(cum[first], k)
    m_len = rng.integers(40, 1500, total).astype(np.uint32)
    m_dir = (rng.random(total) < 0.45).astype(np.uint8)
    p_ts = np.stack([m_ts, m_ts + 0.0005], axis=1).ravel()
    p_pay = np.stack([m_len, np.zeros_like(m_len)], axis=1).ravel()
    p_dir = np.stack([m_dir, 1 - m_dir], axis=1).ravel()
    p_flags = np.tile(np.array([0x18, 0x10], np.uint8), total)
    offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int64)
    summary = (
        pl.DataFrame({"flow_id": np.arange(n, dtype=np.int64)}, schema={"flow_id": pl.Int64})
        .with_columns(
            *[
                pl.lit(None, dtype=dtype).alias(name)
                for name, dtype in FLOW_SUMMARY_SCHEMA.items()
                if name != "flow_id"
            ]
        )
        .select(list(FLOW_SUMMARY_SCHEMA))
    )
    return FlowTable(
        summary=summary,
        pkt_offsets=offsets * 2,
        pkt_ts=p_ts,
        pkt_size=(p_pay + HEADER_BYTES).astype(np.uint32),
        pkt_payload_len=p_pay.astype(np.uint32),
        pkt_dir=p_dir.astype(np.uint8),
        pkt_flags=p_flags,
        msg_offsets=offsets,
        msg_ts=m_ts,
        msg_len=m_len,
        msg_dir=m_dir,
        msg_type=np.zeros(total, np.uint8),
    )


def real_table() -> FlowTable | None:
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
    if not (shared / "real" / "MANIFEST.csv").is_file():
        print("real: ../shared/datasets absent, skipped")
        return None
    from minerscope.model.data import load_data

    sets, _ = load_data([shared / "real", shared / "lab-real"])
    return FlowTable.concat([s.table for s in sets])


_FIRST_CALL = """
import time
t0 = time.perf_counter()
from minerscope.features.synthetic import synthetic_table
from minerscope.features.windows import extract_features
t1 = time.perf_counter()
table, _ = synthetic_table(2, 2, seed=0)
t2 = time.perf_counter()
extract_features(table, window_s=60.0, whole_flow=True)
t3 = time.perf_counter()
extract_features(table, window_s=60.0, whole_flow=True)
t4 = time.perf_counter()
print(t1 - t0, t3 - t2, t4 - t3)
"""


def cold_start() -> None:
    """Import + first extraction in fresh interpreters: empty numba cache, then filled."""
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold (empty numba cache, JIT compile)", "warm (numba cache on disk)"):
            out = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL], env=env, check=True, capture_output=True, text=True
            ).stdout.split()
            imp, first, second = (float(v) for v in out[-3:])
            print(
                f"start   {label:38s} import {imp:5.2f} s  first extraction {first:6.2f} s  "
                f"(a second one: {second:5.3f} s)"
            )


def timed(name: str, table: FlowTable, repeat: int, **kwargs: object) -> None:
    extract_features(table, **kwargs)  # type: ignore[arg-type]  # warm-up (imports, caches)
    best = float("inf")
    best_cpu = float("inf")
    rows = 0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        frame = extract_features(table, **kwargs)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        rows = frame.height
    packets = int(table.pkt_ts.shape[0])
    passes = 2 if kwargs.get("whole_flow", True) and kwargs.get("window_s", 300.0) is not None else 1
    print(
        f"{name:7s} flows {len(table):7d}  flow-windows {rows:7d}  packets {packets:9d}  "
        f"wall {best:6.3f} s ({rows / best:7.0f}/s)  cpu {best_cpu:6.3f} s  ->  {rows / best_cpu:7.0f} "
        f"flow-windows per cpu-second, {packets * passes / best_cpu / 1e6:5.2f} M packet-passes/s  "
        f"({packets / max(1, rows):.1f} packets/window)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=50_000, help="short flows (default 50000)")
    parser.add_argument("--mining", type=int, default=200, help="long mining-like flows (default 200)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--real", action="store_true", help="also time the shared real captures")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start measurement")
    args = parser.parse_args()

    if not args.no_cold:
        cold_start()

    table = short_flows(args.flows)
    timed("short", table, args.repeat, window_s=300.0, whole_flow=False)
    mining, _ = synthetic_table(args.mining, 0, seed=1, mining_duration=(3600.0, 10_800.0))
    timed("long", mining, args.repeat, window_s=300.0, whole_flow=False)
    if args.real:
        real = real_table()
        if real is not None:
            timed("real", real, args.repeat, window_s=300.0, whole_flow=True)


if __name__ == "__main__":
    main()
