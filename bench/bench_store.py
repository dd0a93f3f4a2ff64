"""Case-store figures (prints them; not a test).

Measures on a real SQLite file in a temporary directory:

1. ``record_flows``: flows + scores written per second (one transaction per capture).
2. ``list_flows``: the TUI's query (latest score, pool join, retroactive allowlist) over
   all flows, with and without dismissals in force.
3. single analyst actions (note, confirm pool + blacklist) in milliseconds each
   (each is one durable commit: WAL + ``synchronous=FULL``).
4. ``open_store`` on the filled file (includes ``PRAGMA quick_check``) and the full
   ``integrity_check`` a case import runs.
5. ``load_blacklist`` with N indicators.

Usage: ``.venv/bin/python bench/bench_store.py [--flows 100000] [--indicators 20000]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl  # noqa: E402

from minerscope.flows.records import FLOW_SUMMARY_SCHEMA  # noqa: E402
from minerscope.store import open_store  # noqa: E402
from minerscope.store.casefile import verify_case_file  # noqa: E402


def _frame(n: int) -> pl.DataFrame:
    rng = random.Random(7)
    cols: dict[str, list[object]] = {name: [None] * n for name in FLOW_SUMMARY_SCHEMA}
    cols["flow_id"] = list(range(n))
    cols["capture"] = ["bench.pcap"] * n
    cols["proto"] = [6] * n
    cols["ip_version"] = [4] * n
    cols["src"] = [f"10.0.{i // 250 % 250}.{i % 250}" for i in range(n)]
    cols["sport"] = [1024 + i % 60000 for i in range(n)]
    cols["dst"] = [f"203.0.113.{rng.randrange(250)}" for _ in range(n)]
    cols["dport"] = [rng.choice([443, 3333, 4444, 14444]) for _ in range(n)]
    cols["vlan"] = [0] * n
    cols["first_seen"] = [1.7e9 + i * 0.01 for i in range(n)]
    cols["last_seen"] = [1.7e9 + i * 0.01 + 30 for i in range(n)]
    cols["packets"] = [rng.randrange(10, 1000) for _ in range(n)]
    cols["stage0"] = [""] * n
    frame = pl.DataFrame(cols, schema=FLOW_SUMMARY_SCHEMA)
    return frame.with_columns(
        pl.Series("p_mining", [rng.random() for _ in range(n)]),
        pl.lit("monero").alias("coin"),
        pl.lit(json.dumps({"monero": 0.8, "bitcoin": 0.2})).alias("coin_probs"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--indicators", type=int, default=20_000)
    parser.add_argument("--actions", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        pcap = Path(tmp) / "bench.pcap"
        pcap.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 20)
        frame = _frame(args.flows)
        with open_store(path, actor="bench") as st:
            cap = st.add_capture(pcap)
            t0, c0 = time.perf_counter(), time.process_time()
            st.record_flows(cap, frame, model_version="bench")
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(
                f"record_flows: {args.flows} flows+scores in {dt:.2f} s wall, {cpu:.2f} s CPU"
                f" ({args.flows / dt:,.0f} flows/s wall)"
            )
            t0 = time.perf_counter()
            st.record_flows(cap, frame, model_version="bench")
            print(f"record_flows again (upsert, no duplicates): {time.perf_counter() - t0:.2f} s")

            t0, c0 = time.perf_counter(), time.process_time()
            rows = st.list_flows()
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"list_flows: {len(rows)} rows in {dt:.2f} s wall, {cpu:.2f} s CPU")
            for i in range(50):
                st.dismiss_endpoint(f"203.0.113.{i}", 0)
            t0 = time.perf_counter()
            rows = st.list_flows()
            print(f"list_flows with 50 dismissed hosts: {len(rows)} rows in {time.perf_counter() - t0:.2f} s")
            t0 = time.perf_counter()
            top = st.list_flows(limit=100)
            print(f"list_flows top 100: {len(top)} rows in {1000 * (time.perf_counter() - t0):.1f} ms")

            t0 = time.perf_counter()
            for i in range(args.actions):
                st.add_note("endpoint", f"203.0.113.{i % 250}:3333", f"note {i}")
            per = 1000 * (time.perf_counter() - t0) / args.actions
            print(f"add_note: {per:.2f} ms each (one durable commit)")
            t0 = time.perf_counter()
            for i in range(args.actions):
                st.confirm_pool(f"198.51.{i // 250}.{i % 250}", 3333, names=[f"p{i}.pool.example"])
            per = 1000 * (time.perf_counter() - t0) / args.actions
            print(f"confirm_pool (+ indicators, audit): {per:.2f} ms each")

            texts = [f"192.0.{i // 250 % 250}.{i % 250}:{3333 + i // 62500}" for i in range(args.indicators)]
            t0 = time.perf_counter()
            st.add_indicator_texts(texts, source="bench")
            print(f"add {args.indicators} indicators: {time.perf_counter() - t0:.2f} s")
            t0 = time.perf_counter()
            bl = st.load_blacklist()
            print(f"load_blacklist: {len(bl)} indicators in {1000 * (time.perf_counter() - t0):.0f} ms")
        wal = Path(str(path) + "-wal")
        size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        print(f"file size: {size / 1e6:.1f} MB")
        t0 = time.perf_counter()
        open_store(path).close()
        print(f"open_store (quick_check, migrations): {1000 * (time.perf_counter() - t0):.0f} ms")
        t0 = time.perf_counter()
        verify_case_file(path)
        print(f"full integrity_check: {1000 * (time.perf_counter() - t0):.0f} ms")


if __name__ == "__main__":
    main()
