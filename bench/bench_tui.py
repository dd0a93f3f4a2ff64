"""Workstation responsiveness figures (prints them; not a test).

Two measurements, as the issue asks:

1. **First rows**: seconds from starting the app on a capture until the flow table shows
   its first row, through the real triage pipeline (``--capture PATH``; default: the
   bundled sample). Run it on a ~100 MB capture for the headline figure.
2. **100,000 flows**: with that many scored rows loaded into the session (hand-built
   rows, so this part measures the UI alone), the time to re-sort, re-filter, toggle,
   scroll a page and move the cursor, each end to end through the Pilot (key press to
   repainted table).

Usage: ``.venv/bin/python bench/bench_tui.py [--flows 100000] [--capture PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minerscope.triage import TriageOptions, TriageUpdate  # noqa: E402
from minerscope.tui.app import MinerscopeApp  # noqa: E402


def _synthetic_loader(n: int) -> Any:
    from tests.tui.conftest import build_table  # the same hand-built rows the layout tests use

    rows, table = build_table(n)

    def run(path: Path, options: TriageOptions | None, *, cancel: threading.Event) -> Iterator[TriageUpdate]:
        yield TriageUpdate(str(path), n, n, int(table.pkt_offsets[-1]), n, rows=rows, table=table, done=True)

    return run


async def _timed(pilot: Any, app: MinerscopeApp, keys: list[str], repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await pilot.press(*keys)
        await pilot.pause()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


async def bench_many_flows(n: int) -> None:
    t_build = time.perf_counter()
    loader = _synthetic_loader(n)
    print(f"built {n:,} synthetic scored flows in {time.perf_counter() - t_build:.2f}s")
    app = MinerscopeApp([Path("synthetic.pcapng")], loader=loader)
    async with app.run_test(size=(160, 48)) as pilot:
        t0 = time.perf_counter()
        await app.workers.wait_for_complete()
        while app.flows_screen.table.row_count == 0:
            await pilot.pause(0.01)
        print(
            f"{n:,} flows: table filled (top {app.flows_screen.table.row_count:,} rows) "
            f"{time.perf_counter() - t0:.2f}s after the rows arrived"
        )
        screen = app.flows_screen
        t = time.perf_counter()
        screen.refresh_table()
        print(f"  re-cut view (rank {n:,} rows + rebuild table): {1000 * (time.perf_counter() - t):.0f} ms")
        print(
            f"  sort key 's' (sort all rows by next column): {1000 * await _timed(pilot, app, ['s']):.0f} ms"
        )
        print(f"  reverse 'r': {1000 * await _timed(pilot, app, ['r']):.0f} ms")
        print(f"  toggle hide benign 'b': {1000 * await _timed(pilot, app, ['b']):.0f} ms")
        print(f"  page down: {1000 * await _timed(pilot, app, ['pagedown'], 10):.1f} ms")
        print(f"  cursor down: {1000 * await _timed(pilot, app, ['down'], 20):.1f} ms")
        t = time.perf_counter()
        await pilot.press("slash", *"p>0.9 coin=xmr", "enter")
        await pilot.pause()
        print(
            f"  type + apply filter 'p>0.9 coin=xmr' ({screen.matching:,} match): "
            f"{1000 * (time.perf_counter() - t):.0f} ms (includes typing 14 keys)"
        )
        t = time.perf_counter()
        await pilot.press("enter")
        await pilot.pause()
        print(f"  open flow detail (sparklines): {1000 * (time.perf_counter() - t):.0f} ms")


async def bench_first_rows(capture: Path, size_mb: float) -> None:
    app = MinerscopeApp([capture])
    t0 = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        while app.flows_screen.table.row_count == 0:
            if app.last_error:
                print(f"first rows: load failed: {app.last_error}")
                return
            if not app.workers and app.loads_done:
                print("first rows: capture had no flows")
                return
            await pilot.pause(0.01)
        first = time.perf_counter() - t0
        await app.workers.wait_for_complete()
        await pilot.pause()
        total = time.perf_counter() - t0
        print(
            f"{capture.name} ({size_mb:.1f} MB): first rows after {first:.2f}s; all "
            f"{app.session.count:,} flows scored after {total:.2f}s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--capture", type=Path, default=None)
    args = parser.parse_args()
    from minerscope.resources import sample_capture

    capture = args.capture or sample_capture()
    if capture.is_file():
        asyncio.run(bench_first_rows(capture, capture.stat().st_size / 1e6))
    else:
        print(f"first rows: {capture} does not exist (skipped)")
    asyncio.run(bench_many_flows(args.flows))


if __name__ == "__main__":
    main()
