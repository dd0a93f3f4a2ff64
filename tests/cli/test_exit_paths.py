"""How a command ends when its output or its user stops it: a full disk, a reader that
went away, Ctrl-C. Each runs the real ``minerscope`` in a child process."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minerscope import resources

SAMPLE = resources.sample_capture()
CLI = [sys.executable, "-m", "minerscope"]


def _file_size_limit(limit: int) -> None:
    """In the child: files may not grow past ``limit`` bytes (writes past it fail with
    EFBIG, as on a full disk: the kernel takes what fits, then refuses; Python ignores the
    SIGXFSZ that comes with it)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize(
    "command", [["scan", "--no-store", "--format", "jsonl"], ["flows", "--format", "csv"]]
)
def test_results_that_do_not_fit_fail_loudly(tmp_path: Path, command: list[str]) -> None:
    """``scan > out.jsonl`` on a full disk exited 0 with the file cut inside a record and
    nothing on stderr (CPython's buffered writer returns a short count instead of raising,
    and the text layer ignores it); ``flows`` ended in a traceback."""
    out = tmp_path / "out"
    with out.open("wb") as sink:
        done = subprocess.run(
            [*CLI, "--db", str(tmp_path / "case.sqlite"), *command, "-q", str(SAMPLE)],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            preexec_fn=lambda: _file_size_limit(64 * 1024),
            check=False,
        )
    assert done.returncode == 4, done.stderr
    assert done.stderr == "minerscope: error: standard output: cannot write results: File too large\n"
    assert out.stat().st_size == 64 * 1024


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path: Path) -> None:
    """``scan | head``: no traceback and no error line, and 141 (128 + SIGPIPE, what a
    shell reports for a tool the signal ended), not 1 ("a bug" in the README's table)."""
    with subprocess.Popen(
        [
            *CLI,
            "--db",
            str(tmp_path / "case.sqlite"),
            "scan",
            "--no-store",
            "--format",
            "jsonl",
            "-q",
            str(SAMPLE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # the reader has what it wanted
        err = proc.stderr.read()
        proc.wait(timeout=300)
    assert first.startswith(b"{")
    assert proc.returncode == 141, err
    assert err == b""


def _parallel_scan_under_way(
    tmp_path: Path, copies: int, *, ignore_ctrl_c: bool = False
) -> subprocess.Popen[str]:
    """``scan -j2`` of ``copies`` copies of the sample, in its own process group (as a
    terminal's job), once its first capture's records are out: the others are being
    worked on. Its stdout is ``tmp_path/out.jsonl``."""
    captures = tmp_path / "captures"
    captures.mkdir()
    for i in range(copies):
        shutil.copy(SAMPLE, captures / f"part{i}.pcapng")
    out = tmp_path / "out.jsonl"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [
                *CLI,
                "--db",
                str(tmp_path / "case.sqlite"),
                "scan",
                "-j2",
                "--format",
                "jsonl",
                "-q",
                str(captures),
            ],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_ctrl_c else None,
        )
    deadline = time.monotonic() + 240
    while out.stat().st_size == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def test_ctrl_c_ends_a_parallel_scan_in_one_line(tmp_path: Path) -> None:
    """Ctrl-C during ``scan -j2``: the parent says so in one line and exits 130. It printed
    click's "Aborted!" (exit 1), a traceback per worker, or numba's ``SystemError`` around
    the interrupt; and a worker interrupted while handing its result back left half a
    message in the pool's pipe, so the parent then waited forever."""
    proc = _parallel_scan_under_way(tmp_path, 8)
    try:
        assert proc.poll() is None, "the scan ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("scan -j2 did not end after Ctrl-C")
    assert proc.returncode == 130, err
    assert err == "minerscope: interrupted\n"


def test_a_scan_started_with_ctrl_c_ignored_finishes(tmp_path: Path) -> None:
    """A shell's background job (``minerscope scan -j2 ... &``) starts with SIGINT ignored.
    Its workers installed their own handler anyway (and polars installs one on import): a
    Ctrl-C meant for the foreground aborted a worker's capture, and the parent then
    printed the worker's traceback (numba's SystemError, its interrupt lost on the way
    back) and exited 1."""
    proc = _parallel_scan_under_way(tmp_path, 6, ignore_ctrl_c=True)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:  # Ctrl-C, again and again
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert err == ""
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 6 * 351
