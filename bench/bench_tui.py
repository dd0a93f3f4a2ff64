"""Workstation responsiveness figures (prints them; not a test).

Two measurements, as the issue asks:

1. **First rows**: seconds from starting the app on a capture until the flow table shows
   its first row, through the real triage pipeline (``--capture PATH``; default: the
   bundled sample). ``--generate-mb 100`` writes (once, under ``bench/out/``) a capture
   of that size for the headline figure: the bundled sample repeated end to end, each
   copy shifted past the flow idle timeout, so flows start and end all through the
   file as on a real link (bench_reader's capture interleaves every flow over the whole
   file, so none ends before the last packet and no tool could show rows early).
   Measured three ways: in this process; ``minerscope open`` in a real 80x24
   pseudo-terminal, from the command starting until a flow row's score cell is drawn;
   and the triage child's CPU seconds until its first rows (the one figure other load
   on the machine cannot inflate: wall figures on a busy 2-core box vary 2x run to run).
2. **100,000 flows**: with that many scored rows loaded into the session (hand-built
   rows, so this part measures the UI alone), the time to re-sort, re-filter, toggle,
   scroll a page and move the cursor, and to type a filter, key by key through the
   Pilot (key press to repainted table). Each key gets two figures: wall time, which
   includes the Pilot's own idle detection (about 60 ms a key: the no-op key's
   figure), and the CPU seconds the app spent on it, the latency a user sees.

Usage: ``.venv/bin/python bench/bench_tui.py [--flows 100000] [--capture PATH | --generate-mb 100]``
(``--flows 0`` skips part 2). Run it twice: the first run after a kernel edit also pays
numba's compile, which is cached on disk after that.
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


OUT = Path(__file__).resolve().parent / "out"

COPY_GAP_S = 300.0
"""Silence between two copies of the sample (longer than the default 120 s idle timeout)."""


def tiled_capture(size_mb: float) -> Path:
    """The bundled sample repeated until the file is ``size_mb`` MB (cached under bench/out)."""
    import dpkt

    from minerscope.capture.writer import LINKTYPE_ETHERNET, PcapWriter
    from minerscope.resources import sample_capture

    path = OUT / f"tui_tiled_{size_mb:g}mb.pcap"
    if path.exists():
        return path
    with sample_capture().open("rb") as f:
        packets = [(round(ts * 1e9), bytes(buf)) for ts, buf in dpkt.pcapng.Reader(f)]
    span = packets[-1][0] - packets[0][0] + int(COPY_GAP_S * 1e9)
    per_copy = sum(16 + len(buf) for _, buf in packets)
    copies = max(1, round(size_mb * 1e6 / per_copy))
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with PcapWriter(tmp, LINKTYPE_ETHERNET, nanosecond=True) as out:
        for k in range(copies):
            for ts, buf in packets:
                out.write_packet(ts + k * span, buf)
    tmp.rename(path)
    return path


async def _per_key(pilot: Any, keys: list[str]) -> tuple[float, float]:
    """Median (wall, CPU) seconds per key, each key pressed alone and waited on.

    The wall figure includes the Pilot's own idle detection (two 20 ms idle checks per
    key: see the no-op key's figure); the CPU figure is what the app itself spent on the
    key (this process runs nothing else during the measurement), the latency a user sees.
    """
    wall, cpu = [], []
    for key in keys:
        t0, c0 = time.perf_counter(), time.process_time()
        await pilot.press(key)
        await pilot.pause()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


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
        samples = []
        for _ in range(5):
            t = time.perf_counter()
            screen.refresh_table()
            samples.append(time.perf_counter() - t)
        print(f"  re-cut view (rank {n:,} rows + rebuild table): {1000 * statistics.median(samples):.0f} ms")
        for keys, label in (
            ("s" * 5, "sort key 's' (sort all rows by next column)"),
            ("r" * 5, "reverse 'r'"),
        ):
            wall, cpu = await _per_key(pilot, list(keys))
            print(f"  {label}: {1000 * wall:.0f} ms wall, {1000 * cpu:.0f} ms CPU")
        wall, cpu = await _per_key(pilot, ["b"] * 6)
        print(f"  toggle hide benign 'b': {1000 * wall:.0f} ms wall, {1000 * cpu:.0f} ms CPU")
        wall, cpu = await _per_key(pilot, ["pagedown"] * 10)
        print(f"  page down: {1000 * wall:.0f} ms wall, {1000 * cpu:.1f} ms CPU")
        wall, cpu = await _per_key(pilot, ["down"] * 20)
        print(f"  cursor down: {1000 * wall:.0f} ms wall, {1000 * cpu:.1f} ms CPU")
        wall, cpu = await _per_key(pilot, ["f12"] * 10)
        print(f"  no-op key (Pilot floor): {1000 * wall:.0f} ms wall, {1000 * cpu:.1f} ms CPU")
        t = time.perf_counter()
        await pilot.press("slash")
        wall, cpu = await _per_key(pilot, list("p>0.9 coin=xmr"))
        print(
            f"  typing the filter 'p>0.9 coin=xmr', per key: {1000 * wall:.0f} ms wall, {1000 * cpu:.1f} ms CPU"
        )
        await pilot.press("enter")
        await pilot.pause()
        print(
            f"  type + apply filter 'p>0.9 coin=xmr' ({screen.matching:,} match): "
            f"{1000 * (time.perf_counter() - t):.0f} ms (includes typing 14 keys)"
        )
        t, c = time.perf_counter(), time.process_time()
        await pilot.press("enter")
        await pilot.pause()
        print(
            f"  open flow detail (sparklines): {1000 * (time.perf_counter() - t):.0f} ms wall, "
            f"{1000 * (time.process_time() - c):.0f} ms CPU"
        )


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


_CPU_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from minerscope.triage import iter_triage
for update in iter_triage(sys.argv[1]):
    if update.rows is not None and update.rows.height:
        break
print(json.dumps({"cpu": time.process_time(), "wall": time.perf_counter() - t0}))
"""


def first_rows_cpu(capture: Path) -> None:
    """CPU seconds the triage child spends until its first rows (a figure load cannot inflate)."""
    import json
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", _CPU_CHILD, str(capture)],
        check=True,
        capture_output=True,
        text=True,
        cwd=repo,
    )
    fig = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"  triage child until first rows: {fig['cpu']:.2f} s CPU ({fig['wall']:.2f} s wall after interpreter start)"
    )


def first_rows_in_terminal(capture: Path) -> None:
    """``minerscope open CAPTURE`` in a real 80x24 pseudo-terminal: seconds from the command
    starting (interpreter, imports and all) until the first flow row is drawn."""
    import fcntl
    import os
    import pty
    import re
    import select
    import struct
    import subprocess
    import tempfile
    import termios

    script = Path(sys.executable).with_name("minerscope")
    ansi = re.compile(
        rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>NOM78c])"
    )
    # A flow row's score cell ("0.97 "): the status line's "N of M flows" is no witness at
    # 80 columns, where the loading progress ahead of it pushes it off the line.
    shown = re.compile(rb"(?<![0-9.>])[01]\.[0-9][0-9] ")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MINERSCOPE_DB": f"{tmp}/case.sqlite", "HOME": tmp, "TERM": "xterm-256color"}
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(script), "open", str(capture.resolve())],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=tmp,
        )
        os.close(slave)
        screen = b""
        found = None
        painted = None
        try:
            while found is None and time.perf_counter() - t0 < 300 and proc.poll() is None:
                if select.select([master], [], [], 0.01)[0]:
                    try:
                        screen += os.read(master, 65536)
                    except OSError:
                        break
                    text = ansi.sub(b"", screen)
                    if painted is None and b" flows" in text:
                        painted = time.perf_counter() - t0
                    found = shown.search(text)
            first = time.perf_counter() - t0
        finally:
            proc.kill()
            proc.wait()
            os.close(master)
    if found is None:
        print(f"  terminal: no rows seen (exit {proc.returncode}): {ansi.sub(b'', screen)[-300:]!r}")
        return
    print(
        f"  terminal, 'minerscope open' at 80x24: screen drawn {painted or first:.2f}s, first rows "
        f"drawn {first:.2f}s after the command started"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--capture", type=Path, default=None)
    parser.add_argument("--generate-mb", type=float, default=None, help="tile the sample to this size")
    args = parser.parse_args()
    from minerscope.resources import sample_capture

    capture = args.capture or (tiled_capture(args.generate_mb) if args.generate_mb else sample_capture())
    if capture.is_file():
        asyncio.run(bench_first_rows(capture, capture.stat().st_size / 1e6))
        first_rows_in_terminal(capture)
        first_rows_cpu(capture)
    else:
        print(f"first rows: {capture} does not exist (skipped)")
    if args.flows:
        asyncio.run(bench_many_flows(args.flows))


if __name__ == "__main__":
    main()
