"""Resource limits: huge generated captures through ``minerscope flows`` and ``scan``.

Run: ``.venv/bin/python -m bench.bench_limits [--flows 2000000] [--scan-flows 100000]
[--packets 3000000] [--sparse-gb 10] [--skip-scan]``

Generates (vectorised with numpy, into ``bench/out/limits/``, git-ignored):

* ``tiny_flows.pcap``: ``--flows`` one-packet UDP flows (distinct 5-tuples), and a
  ``--scan-flows`` one for ``scan`` (which costs far more per flow: see the figures);
* ``long_flow.pcap``: one TCP flow of ``--packets`` packets, both directions;
* ``sparse.pcap``: a pcap header, one real packet, then a ``--sparse-gb`` hole
  (a sparse file: no disk used; the reader sees 16-byte all-zero records, i.e.
  hundreds of millions of zero-length packets).

For each input it runs the real CLI in a child process and prints wall time, exit
status and the child's peak RSS (``wait4`` ``ru_maxrss``), so the memory bound can be
read off per flow and per packet (the tiny-flows input is also run at a quarter size).
``flows`` reads the sparse file to its end once; then both commands get SIGINT (Ctrl-C)
``--interrupt-after`` seconds into it, and the bench prints how long the child took to
exit, its status and whether a traceback leaked. Progress is checked by giving the child a pseudo-terminal
as stderr (progress bars draw only on a terminal) and counting what it drew.

Everything is local files; nothing touches the network.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "limits"
REPO = Path(__file__).resolve().parent.parent

_PCAP_HEADER = (
    np.array([0xA1B2C3D4], "<u4").tobytes()
    + np.array([2, 4], "<u2").tobytes()
    + np.array([0, 0, 65535, 1], "<u4").tobytes()
)


def _udp_frames(n: int, first: int = 0) -> np.ndarray:
    """``n`` pcap records (16-byte header + 46-byte Ethernet/IPv4/UDP frame), distinct flows."""
    rec = np.zeros((n, 16 + 46), np.uint8)
    idx = np.arange(first, first + n, dtype=np.int64)
    ts = 1_700_000_000 + idx // 1000
    rec[:, 0:4] = ts.astype("<u4").view(np.uint8).reshape(n, 4)
    rec[:, 4:8] = ((idx % 1000) * 1000).astype("<u4").view(np.uint8).reshape(n, 4)
    rec[:, 8:12] = np.frombuffer(np.array([46], "<u4").tobytes(), np.uint8)
    rec[:, 12:16] = rec[:, 8:12]
    f = rec[:, 16:]
    f[:, 0:6] = [2, 0, 0, 0, 0, 2]
    f[:, 6:12] = [2, 0, 0, 0, 0, 1]
    f[:, 12:14] = [0x08, 0x00]
    f[:, 14] = 0x45
    f[:, 16:18] = [0, 32]  # total length 32
    f[:, 22] = 64
    f[:, 23] = 17  # UDP
    src = (10 << 24) + (idx // 50_000) * 65536 + idx % 50_000 // 250 * 256 + idx % 250 + 1
    f[:, 26:30] = src.astype(">u4").view(np.uint8).reshape(n, 4)
    f[:, 30:34] = [198, 51, 100, 7]
    sport = 1024 + idx % 60_000
    f[:, 34:36] = sport.astype(">u2").view(np.uint8).reshape(n, 2)
    f[:, 36:38] = [0x13, 0x88]  # 5000
    f[:, 38:40] = [0, 12]
    f[:, 42:46] = [0x70, 0x69, 0x6E, 0x67]
    return rec


def write_tiny_flows(path: Path, flows: int) -> Path:
    """A capture of ``flows`` one-packet UDP flows."""
    with path.open("wb") as fh:
        fh.write(_PCAP_HEADER)
        for start in range(0, flows, 1_000_000):
            fh.write(_udp_frames(min(1_000_000, flows - start), start).tobytes())
    return path


def _tcp_frames(n: int, first: int) -> np.ndarray:
    """``n`` records of one TCP flow (alternating direction, 8-byte payloads, 1 ms apart)."""
    rec = np.zeros((n, 16 + 62), np.uint8)
    idx = np.arange(first, first + n, dtype=np.int64)
    us = idx * 1000
    rec[:, 0:4] = (1_700_000_000 + us // 1_000_000).astype("<u4").view(np.uint8).reshape(n, 4)
    rec[:, 4:8] = (us % 1_000_000).astype("<u4").view(np.uint8).reshape(n, 4)
    rec[:, 8:12] = np.frombuffer(np.array([62], "<u4").tobytes(), np.uint8)
    rec[:, 12:16] = rec[:, 8:12]
    f = rec[:, 16:]
    f[:, 12:14] = [0x08, 0x00]
    f[:, 14] = 0x45
    f[:, 16:18] = [0, 48]
    f[:, 22] = 64
    f[:, 23] = 6
    up = idx % 2 == 0
    client, server = np.array([10, 1, 1, 1], np.uint8), np.array([203, 0, 113, 77], np.uint8)
    f[:, 26:30] = np.where(up[:, None], client, server)
    f[:, 30:34] = np.where(up[:, None], server, client)
    cport, sport = np.array([0x9C, 0x40], np.uint8), np.array([0x0D, 0x05], np.uint8)  # 40000, 3333
    f[:, 34:36] = np.where(up[:, None], cport, sport)
    f[:, 36:38] = np.where(up[:, None], sport, cport)
    seq = (1000 + (idx // 2) * 8).astype(">u4").view(np.uint8).reshape(n, 4)
    f[:, 38:42] = seq
    f[:, 42:46] = seq
    f[:, 46] = 0x50
    f[:, 47] = 0x18  # PSH ACK
    f[:, 48:50] = [0xFF, 0xFF]
    f[:, 54:62] = np.frombuffer(b"{'id':1}", np.uint8)
    return rec


def write_long_flow(path: Path, packets: int) -> Path:
    """One TCP flow (no handshake seen) of ``packets`` packets."""
    with path.open("wb") as fh:
        fh.write(_PCAP_HEADER)
        for start in range(0, packets, 1_000_000):
            fh.write(_tcp_frames(min(1_000_000, packets - start), start).tobytes())
    return path


def write_sparse(path: Path, gigabytes: float) -> Path:
    """A pcap header, one packet, then a hole: ``gigabytes`` GB that use no disk."""
    with path.open("wb") as fh:
        fh.write(_PCAP_HEADER + _udp_frames(1).tobytes())
        fh.truncate(int(gigabytes * 1e9))
    return path


@dataclass(slots=True)
class Run:
    """One child run: what it cost and how it ended."""

    seconds: float
    status: int
    peak_rss_mb: float
    stdout_lines: int
    stderr: str
    progress_draws: int = 0
    sigint_to_exit_s: float | None = None


def run_cli(args: list[str], *, interrupt_after: float | None = None, tty_stderr: bool = False) -> Run:
    """Run ``python -m minerscope ARGS``; peak RSS from ``wait4``; optional SIGINT."""
    cmd = [sys.executable, "-m", "minerscope", *args]
    master = slave = -1
    if tty_stderr:
        master, slave = pty.openpty()
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=slave if tty_stderr else subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "120"},
    )
    if tty_stderr:
        os.close(slave)
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    err_fd = master if tty_stderr else (proc.stderr.fileno() if proc.stderr else -1)
    os.set_blocking(err_fd, False)
    out_lines = 0
    err = bytearray()
    draws = 0
    interrupted_at: float | None = None
    status: int | None = None
    rusage = None
    while status is None:
        ready, _, _ = select.select([proc.stdout.fileno(), err_fd], [], [], 0.1)
        for fd in ready:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            if fd == err_fd:
                draws += chunk.count(b"\r") + chunk.count(b"\x1b[2K")
                err += chunk[-8192:]
            else:
                out_lines += chunk.count(b"\n")
        if (
            interrupt_after is not None
            and interrupted_at is None
            and time.monotonic() - start >= interrupt_after
        ):
            proc.send_signal(signal.SIGINT)
            interrupted_at = time.monotonic()
        pid, raw_status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = os.waitstatus_to_exitcode(raw_status)
    proc.returncode = status
    end = time.monotonic()
    if tty_stderr:
        os.close(master)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    assert rusage is not None
    return Run(
        seconds=end - start,
        status=status,
        peak_rss_mb=rusage.ru_maxrss / 1024,
        stdout_lines=out_lines,
        stderr=err.decode("utf-8", "replace")[-2000:],
        progress_draws=draws,
        sigint_to_exit_s=None if interrupted_at is None else end - interrupted_at,
    )


def _report(label: str, run: Run, extra: str = "") -> None:
    line = (
        f"{label:<34} {run.seconds:8.1f} s  exit {run.status:>4}  peak RSS {run.peak_rss_mb:8.1f} MB"
        f"  rows {run.stdout_lines:>9}"
    )
    if run.sigint_to_exit_s is not None:
        leaked = "traceback!" if "Traceback" in run.stderr else "no traceback"
        line += f"  SIGINT->exit {run.sigint_to_exit_s:.2f} s ({leaked})"
    if run.progress_draws:
        line += f"  progress redraws {run.progress_draws}"
    print(line + extra, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=2_000_000)
    parser.add_argument("--scan-flows", type=int, default=100_000)
    parser.add_argument("--packets", type=int, default=3_000_000)
    parser.add_argument("--sparse-gb", type=float, default=10.0)
    parser.add_argument("--interrupt-after", type=float, default=8.0)
    parser.add_argument("--skip-scan", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    t = time.monotonic()
    quarter = write_tiny_flows(OUT / "tiny_flows_quarter.pcap", args.flows // 4)
    tiny = write_tiny_flows(OUT / "tiny_flows.pcap", args.flows)
    long_flow = write_long_flow(OUT / "long_flow.pcap", args.packets)
    sparse = write_sparse(OUT / "sparse.pcap", args.sparse_gb)
    print(
        f"generated inputs in {time.monotonic() - t:.1f} s: "
        f"{tiny.stat().st_size / 1e6:.0f} MB ({args.flows} flows), "
        f"{long_flow.stat().st_size / 1e6:.0f} MB ({args.packets} packets in one flow), "
        f"{sparse.stat().st_size / 1e9:.1f} GB sparse ({os.stat(sparse).st_blocks * 512 / 1e6:.1f} MB on disk)",
        flush=True,
    )

    small = run_cli(["flows", "--format", "jsonl", str(quarter)])
    _report(f"flows: {args.flows // 4} tiny flows", small)
    big = run_cli(["flows", "--format", "jsonl", str(tiny)])
    _report(f"flows: {args.flows} tiny flows", big)
    per_flow = (big.peak_rss_mb - small.peak_rss_mb) * 1e6 / max(1, args.flows - args.flows // 4)
    print(f"  -> {per_flow:.0f} bytes of peak RSS per additional flow", flush=True)
    one = run_cli(["flows", "--format", "jsonl", str(long_flow)])
    _report(f"flows: 1 flow x {args.packets} packets", one)
    whole = run_cli(["flows", "--format", "jsonl", str(sparse)])
    _report(f"flows: {args.sparse_gb:g} GB sparse, to the end", whole)
    cut = run_cli(["flows", "--format", "jsonl", str(sparse)], interrupt_after=args.interrupt_after)
    _report(f"flows: {args.sparse_gb:g} GB sparse (Ctrl-C)", cut)

    if not args.skip_scan:
        scan_small = write_tiny_flows(OUT / "scan_flows_quarter.pcap", args.scan_flows // 4)
        scan_big = write_tiny_flows(OUT / "scan_flows.pcap", args.scan_flows)
        runs = {}
        for label, path in (
            (f"scan: {args.scan_flows // 4} tiny flows", scan_small),
            (f"scan: {args.scan_flows} tiny flows", scan_big),
            (f"scan: 1 flow x {args.packets} packets", long_flow),
        ):
            runs[path] = run_cli(
                ["scan", "--no-store", "-j1", "--format", "jsonl", str(path)], tty_stderr=True
            )
            _report(label, runs[path])
        grow = runs[scan_big].peak_rss_mb - runs[scan_small].peak_rss_mb
        print(
            f"  -> {grow * 1e6 / max(1, args.scan_flows - args.scan_flows // 4):.0f} bytes of peak RSS per"
            " additional flow",
            flush=True,
        )
        _report(
            f"scan: {args.sparse_gb:g} GB sparse (Ctrl-C)",
            run_cli(
                ["scan", "--no-store", "-j1", "--format", "jsonl", str(sparse)],
                interrupt_after=args.interrupt_after,
                tty_stderr=True,
            ),
        )


if __name__ == "__main__":
    main()
