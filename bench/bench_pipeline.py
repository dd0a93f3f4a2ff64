"""End-to-end benchmark: capture -> flows -> stage 0 -> features -> scored flows.

Usage: ``.venv/bin/python -m bench.bench_pipeline [--packets N] [--dir-copies K]``

Prints packets/s, flows/s and peak RSS for :func:`minerscope.triage.triage_capture` on
bench_reader's generated heavy-tailed capture, the same file through tshark's
conversation table (when tshark is installed), and the speed-up of ``minerscope scan``
over a directory of K copies of the bundled sample with one worker vs one per core.
Each measurement runs in its own process so peak RSS belongs to that stage alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_reader import capture_for

_CHILD = """
import json, sys, time, resource
from minerscope.triage import triage_capture
t0 = time.perf_counter(); c0 = time.process_time()
result = triage_capture(sys.argv[1])
wall = time.perf_counter() - t0; cpu = time.process_time() - c0
peak = 0.0
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        peak = int(line.split()[1]) / 1024
print(json.dumps({"packets": result.report.packets, "flows": result.rows.height, "wall": wall,
                  "cpu": cpu, "rss_mb": peak}))
"""


def triage_figures(path: Path) -> dict[str, float]:
    """Run the whole pipeline over ``path`` in a fresh process (after a warm-up for numba's cache)."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def tshark_seconds(path: Path) -> float | None:
    """Wall seconds for ``tshark -q -z conv,tcp -z conv,udp`` on ``path`` (None without tshark)."""
    if shutil.which("tshark") is None:
        return None
    t0 = time.perf_counter()
    subprocess.run(
        ["tshark", "-n", "-q", "-r", str(path), "-z", "conv,tcp", "-z", "conv,udp"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def scan_seconds(folder: Path, jobs: int) -> float:
    """Wall seconds for ``minerscope scan DIR -j JOBS --no-store`` (JSONL to /dev/null)."""
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "minerscope",
            "scan",
            str(folder),
            "-j",
            str(jobs),
            "--no-store",
            "-q",
            "--format",
            "jsonl",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=2_000_000, help="packets in the generated capture")
    parser.add_argument("--dir-copies", type=int, default=4, help="sample copies for the scaling run")
    args = parser.parse_args(argv)

    from minerscope import resources

    sample = resources.sample_capture()
    triage_figures(sample)  # warm numba's on-disk cache so compile time is not measured
    path = capture_for(args.packets)
    size_mb = path.stat().st_size / 1e6
    fig = triage_figures(path)
    print(f"capture: {path.name} ({size_mb:.0f} MB, {fig['packets']:.0f} packets, {fig['flows']:.0f} flows)")
    print(f"{'tool':<28}{'wall s':>9}{'cpu s':>9}{'packets/s':>14}{'flows/s':>11}{'peak RSS MB':>13}")
    print(
        f"{'minerscope triage':<28}{fig['wall']:>9.1f}{fig['cpu']:>9.1f}"
        f"{fig['packets'] / fig['cpu']:>14,.0f}{fig['flows'] / fig['cpu']:>11,.0f}{fig['rss_mb']:>13.0f}"
    )
    ts = tshark_seconds(path)
    if ts is None:
        print(f"{'tshark conv,tcp+udp':<28}  not installed")
    else:
        print(f"{'tshark conv,tcp+udp':<28}{ts:>9.1f}{'':>9}{fig['packets'] / ts:>14,.0f}")
    try:
        import nfstream  # noqa: F401
    except ImportError:
        print(f"{'nfstream':<28}  not installed (pip install '.[bench]')")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.dir_copies):
            shutil.copy(sample, folder / f"copy{i}.pcapng")
        cores = os.cpu_count() or 1
        one = scan_seconds(folder, 1)
        many = scan_seconds(folder, cores)
        print(
            f"scan of {args.dir_copies} sample copies: -j1 {one:.1f} s, -j{cores} {many:.1f} s, "
            f"speed-up {one / many:.2f}x"
        )


if __name__ == "__main__":
    main()
