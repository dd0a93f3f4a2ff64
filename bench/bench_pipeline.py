"""End-to-end benchmark: capture -> flows -> stage 0 -> features -> scored flows -> JSONL.

Usage: ``.venv/bin/python -m bench.bench_pipeline [--packets N] [--scale-captures K]
[--scale-packets M] [--repeat R] [--skip-others] [--scale-only] [--scale-store]``

On bench_reader's generated heavy-tailed capture (N packets, default 2,000,000) it prints:

* ``minerscope scan FILE -j1 --no-store --format jsonl`` (the whole command, output
  included, one worker): wall and CPU seconds, packets/s and flows/s by CPU time, peak
  RSS, and the same rates with the fixed start-up cost (imports, model load, measured by
  scanning an empty capture) taken out;
* where that CPU time goes, stage by stage (reader, assembler, stage 0, features,
  scoring and its SHAP explanations, rows glue, JSONL output, store writes);
* nfstream (flow statistics, one meter) and tshark (``-q -z conv,tcp``, the conversation
  table, with TCP sequence analysis and reassembly off as the table needs neither) on the
  same file, when installed (``not installed`` otherwise);
* ``scan -j1`` vs ``scan -j2`` (or ``-jCORES``) over a directory of K distinct generated
  captures: the speed-up and whether both outputs are byte-identical, next to the same
  captures scanned by N independent ``scan -j1`` processes side by side (no ``-j``
  machinery: the scaling this machine itself gives N copies of the pipeline); with
  ``--scale-store`` also ``-j1`` vs ``-jN`` writing a case file, as ``scan`` does by
  default (the parent is the one writer, so its speed-up is lower).

Every measurement runs in its own process; CPU time and peak RSS come from ``wait4`` on
that process (children included), so a busy machine changes wall times but hardly the
CPU figures, which are the ones to compare. minerscope's own runs are repeated (``--repeat``,
default 3) and the median run is reported, with the range: on a small VM two identical
runs differ by 10 % (page-fault and huge-page timing), more than many changes measured here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_reader import OUT, capture_for, generate
from minerscope.resources import sample_capture


def run_measured(cmd: list[str], stdout: Any = subprocess.DEVNULL) -> dict[str, float]:
    """Run ``cmd``; wall seconds, CPU seconds (user+sys, reaped children included), peak RSS MB."""
    # stderr to a file, not a pipe: nobody reads a pipe while wait4 waits, so a chatty
    # command would block on a full one
    with tempfile.TemporaryFile() as err_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=err_file)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read().decode(errors="replace")
    if proc.returncode not in (0, 3):  # 3: a damaged capture, still measured
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def scan_cmd(target: Path, jobs: int, *more: Path, db: Path | None = None) -> list[str]:
    """``scan`` of the targets as JSONL; ``db``: into that case file (else ``--no-store``,
    naming a case file that does not exist: ``--no-store`` still reads an existing one's
    blacklist, and the figure is the pipeline's, whatever case file this user has)."""
    targets = [str(t) for t in (target, *more)]
    case_file = ["--db", str(db if db is not None else OUT / "no-case-file.sqlite")]
    no_store = [] if db is not None else ["--no-store"]
    scan = ["scan", *targets, "-j", str(jobs), "-q", "--format", "jsonl", *no_store]
    return [sys.executable, "-m", "minerscope", *case_file, *scan]


def median_of(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    """The run with the median ``key``, plus ``{key}_min`` and ``{key}_max`` over all runs."""
    ranked = sorted(runs, key=lambda fig: fig[key])
    return dict(
        ranked[(len(ranked) - 1) // 2], **{f"{key}_min": ranked[0][key], f"{key}_max": ranked[-1][key]}
    )


def scan_figures(path: Path, repeat: int = 1) -> dict[str, float]:
    """``scan FILE -j1`` measured (median CPU of ``repeat`` runs), plus the flow count (JSONL lines)."""
    runs: list[dict[str, float]] = []
    for _ in range(repeat):
        with tempfile.TemporaryFile("w+b") as out:
            fig = run_measured(scan_cmd(path, 1), stdout=out)
            out.seek(0)
            fig["flows"] = sum(1 for _ in out)
        runs.append(fig)
    return median_of(runs, "cpu")


_BREAKDOWN = r"""
import io, json, sys, tempfile, time, os
from collections import defaultdict
T = defaultdict(float)
clock = time.process_time
start = clock()

def wrap(owner, name, key):
    f = getattr(owner, name)
    def timed(*a, **k):
        t = clock()
        try:
            return f(*a, **k)
        finally:
            T[key] += clock() - t
    setattr(owner, name, timed)

import minerscope._pipeline as P
import minerscope.model.classify as C
import minerscope.flows.assemble as A
import minerscope.capture.pcap as R
T["imports (polars, numba, pipeline)"] = clock() - start
from minerscope.triage import load_triage_stack
t = clock()
load_triage_stack()  # what a scan process sets up before its first kernel runs
T["numba set-up"] = clock() - t
wrap(P, "cached_model", "model load")
wrap(P, "build_blacklist", "stage 0: blacklist load")
wrap(P, "apply_stage0", "stage 0: evidence")
wrap(C, "extract_features", "features")
wrap(C, "_top_features", "scoring: SHAP top features")
wrap(C, "_coin_columns", "scoring: coin model")
wrap(P, "score", "scoring (all)")
wrap(P, "score_rows", "rows (all)")
wrap(A.FlowAssembler, "feed", "flows: assembler")
wrap(A.FlowAssembler, "finish", "flows: assembler")
from minerscope.triage import triage_rows
t = clock()
rows, report = triage_rows(sys.argv[1])
T["triage (all)"] = clock() - t
from minerscope.cli.output import SCAN_FIELDS, write_jsonl_frame
from minerscope.cli.scan_cmd import _streamed_rows
t = clock()
write_jsonl_frame(_streamed_rows(rows, False), SCAN_FIELDS, io.StringIO())  # as scan --format jsonl
T["output: JSONL"] = clock() - t
from minerscope.store import open_store
from minerscope.store.cases import file_sha256
from pathlib import Path
digest, _ = file_sha256(Path(sys.argv[1]))  # scan hashes the file on a thread beside triage: not a store cost
with tempfile.TemporaryDirectory() as tmp:
    t = clock()
    with open_store(os.path.join(tmp, "case.sqlite")) as store:
        cid = store.add_capture(sys.argv[1], packets=report.packets, sha256=digest)
        store.record_flows(cid, rows)
        store.mark_dismissed(rows)
    T["store: record flows + scores"] = clock() - t
print(json.dumps({"packets": report.packets, "flows": rows.height, "stages": T}))
"""


def breakdown(path: Path) -> dict[str, Any]:
    """CPU seconds per stage of one in-process triage (+ output and store) of ``path``."""
    out = subprocess.run(
        [sys.executable, "-c", _BREAKDOWN, str(path)], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def print_breakdown(data: dict[str, Any]) -> None:
    s: dict[str, float] = data["stages"]
    score_all = s.get("scoring (all)", 0.0)
    rows_all = s.get("rows (all)", 0.0)
    feats = s.get("features", 0.0)
    shap = s.get("scoring: SHAP top features", 0.0)
    coin = s.get("scoring: coin model", 0.0)
    stage0 = s.get("stage 0: evidence", 0.0)
    assembler = s.get("flows: assembler", 0.0)
    model = s.get("model load", 0.0)
    blacklist = s.get("stage 0: blacklist load", 0.0)
    reader = s["triage (all)"] - model - blacklist - assembler - rows_all
    lines = [
        ("imports (polars, numba, pipeline)", s.get("imports (polars, numba, pipeline)", 0.0)),
        ("numba set-up, gc freeze", s.get("numba set-up", 0.0)),
        ("model load (trees read, no xgboost)", model),
        ("capture reader (+ loop)", reader),
        ("flow assembler", assembler),
        ("stage 0 (blacklist + Stratum)", stage0 + blacklist),
        ("features", feats),
        ("scoring: one tree walk (p + Saabas) + glue", score_all - feats - shap - coin),
        ("scoring: coin model", coin),
        ("scoring: exact SHAP (p >= 0.01), JSON text", shap),
        ("rows glue (JSON columns, join)", rows_all - score_all - stage0),
        ("output: JSONL (column-wise, as scan)", s.get("output: JSONL", 0.0)),
        ("store: flows + scores (not in --no-store)", s.get("store: record flows + scores", 0.0)),
    ]
    total = sum(v for _, v in lines)
    print(
        f"\nwhere the CPU time goes ({data['packets']:,} packets, {data['flows']:,} flows; in-process, CPU s):"
    )
    for name, value in lines:
        print(f"  {name:<44}{value:>8.2f}{100 * value / total:>7.1f} %")
    print(f"  {'total':<44}{total:>8.2f}")


_NFSTREAM = r"""
import sys
from nfstream import NFStreamer
n = 0
for _ in NFStreamer(source=sys.argv[1], statistical_analysis=True, n_meters=1, n_dissections=0):
    n += 1
print(n)
"""


def nfstream_figures(path: Path) -> dict[str, float] | None:
    """nfstream with its statistical features, one meter; None when it is not installed."""
    try:
        import nfstream  # noqa: F401
    except ImportError:
        return None
    with tempfile.TemporaryFile("w+b") as out:
        fig = run_measured([sys.executable, "-c", _NFSTREAM, str(path)], stdout=out)
        out.seek(0)
        fig["flows"] = float(out.read().decode().strip().splitlines()[-1])
    return fig


TSHARK_CONV = ["-o", "tcp.analyze_sequence_numbers:FALSE", "-o", "tcp.desegment_tcp_streams:FALSE"]
"""A conversation table needs neither: with them on (the default) tshark is ~7x slower here."""


def tshark_figures(path: Path) -> dict[str, float] | None:
    """``tshark -n -q -r FILE -z conv,tcp`` (+ TSHARK_CONV); None when tshark is not installed."""
    if shutil.which("tshark") is None:
        return None
    with tempfile.TemporaryFile("w+b") as out:
        cmd = ["tshark", "-n", "-q", "-r", str(path), "-z", "conv,tcp", *TSHARK_CONV]
        fig = run_measured(cmd, stdout=out)
        out.seek(0)
        fig["flows"] = float(sum(1 for line in out if b"<->" in line))
    return fig


def scale_dir(k: int, packets: int) -> Path:
    """K distinct generated captures of ``packets`` each (cached under bench/out)."""
    folder = OUT / f"scale_{k}x{packets}_v1"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(k):
        path = folder / f"capture{i}.pcap"
        if not path.is_file():
            tmp = path.with_suffix(".part")
            generate(tmp, packets, seed=100 + i)
            tmp.rename(path)
    return folder


def scaling(folder: Path, jobs: int, store: bool = False) -> tuple[dict[str, float], str]:
    """``scan DIR -jJOBS`` measured, and the SHA-256 of its JSONL output; ``store``: into a
    new case file (the default of ``scan``), else ``--no-store``."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+b") as out:
        db = Path(tmp) / "cases.sqlite" if store else None
        fig = run_measured(scan_cmd(folder, jobs, db=db), stdout=out)
        out.seek(0)
        digest = hashlib.sha256(out.read()).hexdigest()
    return fig, digest


def side_by_side(folder: Path, n: int) -> dict[str, float]:
    """``n`` independent ``scan -j1`` processes started together, each on its share of the captures.

    Why: it is what this machine gives ``n`` copies of the pipeline with no ``-j`` machinery
    at all (shared caches, memory bandwidth, a VM's sibling threads): the ceiling ``-jN``
    is measured against, besides the start-up bound.
    """
    captures = sorted(folder.glob("capture*.pcap"))
    shares = [captures[i::n] for i in range(n)]
    t0 = time.perf_counter()
    procs = []
    for share in shares:
        cmd = scan_cmd(share[0], 1, *share[1:])
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    cpu = 0.0
    for proc in procs:  # every one reaped before any failure is raised
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
    wall = time.perf_counter() - t0
    failed = [p.returncode for p in procs if p.returncode != 0]
    if failed:
        raise RuntimeError(f"side-by-side scan exited {failed[0]}")
    return {"wall": wall, "cpu": cpu}


def row(name: str, fig: dict[str, float] | None, packets: float, note: str = "") -> None:
    if fig is None:
        print(f"{name:<34}  not installed")
        return
    print(
        f"{name:<34}{fig['wall']:>8.1f}{fig['cpu']:>8.1f}{packets / fig['cpu']:>13,.0f}"
        f"{fig['flows'] / fig['cpu']:>10,.0f}{fig['rss_mb']:>10.0f}  {note}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=2_000_000, help="packets in the generated capture")
    parser.add_argument(
        "--scale-captures", type=int, default=4, help="captures in the scaling directory (0: no scaling run)"
    )
    parser.add_argument("--scale-packets", type=int, default=250_000, help="packets per scaling capture")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each minerscope measurement (median)")
    parser.add_argument("--skip-others", action="store_true", help="skip nfstream and tshark")
    parser.add_argument("--scale-only", action="store_true", help="only the -j1 vs -jN directory scan")
    parser.add_argument(
        "--scale-store",
        action="store_true",
        help="the directory scan also with a case file (scan's default), -j1 vs -jN",
    )
    args = parser.parse_args(argv)
    if args.scale_captures < 0 or args.scale_packets < 1 or args.packets < 1 or args.repeat < 1:
        parser.error("--scale-captures must be 0 or more; --packets, --scale-packets and --repeat 1 or more")
    # Bytecode as a steady state has it (CPython writes it on first import, pip when it
    # installs a wheel); PYTHONDONTWRITEBYTECODE (set on some CI machines and sandboxes)
    # would otherwise add ~0.06 s of compiling minerscope's modules to every start-up here.
    import compileall

    import minerscope

    compileall.compile_dir(str(Path(minerscope.__file__).parent), quiet=1)
    if not args.scale_only:
        single(args)
    if args.scale_captures:
        scale(args)


def empty_capture() -> Path:
    """A header-only capture: scanning it costs the start-up alone."""
    empty = OUT / "empty.pcap"
    if not empty.is_file():
        from minerscope.capture.writer import PcapWriter

        with PcapWriter(empty):
            pass
    return empty


def single(args: argparse.Namespace) -> None:
    """``scan FILE -j1`` figures, the other tools, and where the CPU time goes."""
    path = capture_for(args.packets)
    empty = empty_capture()
    # warm numba's on-disk cache so compile time is not measured: an empty capture reaches
    # too few kernels (a fresh clone's first real run compiled for ~30 s inside the median)
    run_measured(scan_cmd(sample_capture(), 1))
    startup = median_of([run_measured(scan_cmd(empty, 1)) for _ in range(args.repeat)], "cpu")
    fig = scan_figures(path, args.repeat)
    packets = float(args.packets)
    print(f"capture: {path.name} ({path.stat().st_size / 1e6:.0f} MB, {packets:,.0f} packets)")
    print(
        f"{'tool':<34}{'wall s':>8}{'cpu s':>8}{'packets/s':>13}{'flows/s':>10}{'RSS MB':>10}  (rates per CPU s)"
    )
    row(
        "minerscope scan -j1 (JSONL)",
        fig,
        packets,
        f"{fig['flows']:,.0f} flows; median of {args.repeat}, CPU {fig['cpu_min']:.2f}-{fig['cpu_max']:.2f} s",
    )
    steady = dict(fig, cpu=max(fig["cpu"] - startup["cpu"], 1e-9))
    row(
        "  without start-up",
        steady,
        packets,
        f"start-up {startup['cpu']:.1f} CPU s ({startup['rss_mb']:.0f} MB)",
    )
    if not args.skip_others:
        nf = nfstream_figures(path)
        row("nfstream (statistics, 1 meter)", nf, packets, f"{nf['flows']:,.0f} flows" if nf else "")
        ts = tshark_figures(path)
        row(
            "tshark -q -z conv,tcp (no seq anal.)",
            ts,
            packets,
            f"{ts['flows']:,.0f} TCP conversations" if ts else "",
        )
        if nf is not None:
            print(f"minerscope / nfstream packets per CPU s: {nf['cpu'] / fig['cpu']:.2f}x")
    print_breakdown(breakdown(path))


def scale(args: argparse.Namespace) -> None:
    """``scan DIR -j1`` vs ``-jCORES`` over the scaling directory."""
    folder = scale_dir(args.scale_captures, args.scale_packets)
    cores = os.cpu_count() or 1
    many = max(2, cores)
    run_measured(scan_cmd(folder / "capture0.pcap", 1))  # numba's on-disk cache warm, as in single()
    ones: list[dict[str, float]] = []
    manys: list[dict[str, float]] = []
    sides: list[dict[str, float]] = []
    stored: dict[int, list[dict[str, float]]] = {1: [], many: []}
    digests: set[str] = set()
    stored_digests: set[str] = set()
    for _ in range(args.repeat):  # interleaved, so a noisy stretch hits every variant
        for jobs, runs in ((1, ones), (many, manys)):
            fig, digest = scaling(folder, jobs)
            runs.append(fig)
            digests.add(digest)
        sides.append(side_by_side(folder, many))
        if args.scale_store:
            for jobs in (1, many):
                fig, digest = scaling(folder, jobs, store=True)
                stored[jobs].append(fig)
                stored_digests.add(digest)
    one_fig, many_fig = median_of(ones, "wall"), median_of(manys, "wall")
    side_fig = median_of(sides, "wall")
    startup = median_of([run_measured(scan_cmd(empty_capture(), 1)) for _ in range(args.repeat)], "wall")
    # Amdahl: every process pays the start-up S once, side by side; the rest divides by N
    ideal = startup["wall"] + (one_fig["wall"] - startup["wall"]) / many
    total = args.scale_captures * args.scale_packets
    print(
        f"\nscan of {args.scale_captures} captures x {args.scale_packets:,} packets ({cores} cores, "
        f"median wall of {args.repeat}): "
        f"-j1 {one_fig['wall']:.1f} s wall ({total / one_fig['wall']:,.0f} packets/s), "
        f"-j{many} {many_fig['wall']:.1f} s wall ({total / many_fig['wall']:,.0f} packets/s), "
        f"speed-up {one_fig['wall'] / many_fig['wall']:.2f}x "
        f"(range {one_fig['wall_min'] / many_fig['wall_max']:.2f}-{one_fig['wall_max'] / many_fig['wall_min']:.2f}x); "
        f"CPU {one_fig['cpu']:.1f} s vs {many_fig['cpu']:.1f} s; "
        f"outputs {'identical' if len(digests) == 1 else 'DIFFERENT'}"
    )
    print(
        f"  start-up {startup['wall']:.2f} s per process stays on the critical path: "
        f"{startup['wall']:.2f} + ({one_fig['wall']:.1f} - {startup['wall']:.2f}) / {many} = {ideal:.1f} s "
        f"would be {one_fig['wall'] / ideal:.2f}x"
    )
    ceiling = one_fig["wall"] / side_fig["wall"]
    print(
        f"  {many} independent scan -j1 processes side by side, each on its share: {side_fig['wall']:.1f} s wall, "
        f"CPU {side_fig['cpu']:.1f} s: {ceiling:.2f}x is what this machine gives {many} copies of the pipeline; "
        f"-j{many} reaches {one_fig['wall'] / many_fig['wall'] / ceiling:.0%} of it"
    )
    if args.scale_store:
        one_db, many_db = median_of(stored[1], "wall"), median_of(stored[many], "wall")
        print(
            f"  writing a case file, as scan does by default: -j1 {one_db['wall']:.1f} s wall, "
            f"-j{many} {many_db['wall']:.1f} s wall: {one_db['wall'] / many_db['wall']:.2f}x "
            f"(range {one_db['wall_min'] / many_db['wall_max']:.2f}-{one_db['wall_max'] / many_db['wall_min']:.2f}x); "
            f"CPU {one_db['cpu']:.1f} s vs {many_db['cpu']:.1f} s; the case file's "
            f"{one_db['cpu'] - one_fig['cpu']:.1f} CPU s (hashing, writes) run in the parent, the one writer; "
            f"outputs {'identical' if len(stored_digests) == 1 else 'DIFFERENT'}"
        )
    load = os.getloadavg()[0]
    if load > cores:
        print(f"note: load average {load:.1f} on {cores} cores while measuring: wall times are inflated")


if __name__ == "__main__":
    main()
