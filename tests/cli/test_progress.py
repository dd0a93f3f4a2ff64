"""``scan`` and ``flows`` in a terminal: progress bars on stderr, results alone on stdout."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from minerscope import resources

SAMPLE = resources.sample_capture()
pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SCAN = ("scan", "--no-store", "--format", "jsonl")


def _run_on_a_terminal(args: Sequence[str], stdout: Any) -> tuple[int, bytes]:
    """Run ``minerscope ARGS`` with stderr (and ``stdout``, if it is the string "terminal")
    on a pseudo-terminal: (exit status, the raw bytes the terminal received)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "minerscope", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave if stdout == "terminal" else stdout,
        stderr=slave,
        env={**os.environ, "COLUMNS": "160"},
    )
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(master)
    return code, screen


def _in_a_terminal(*args: str, tmp_path: Path) -> tuple[int, str, str]:
    """``minerscope ARGS`` with stderr on a pseudo-terminal and stdout in a file:
    (exit status, stdout, what the terminal showed, escapes removed)."""
    out_path = tmp_path / "stdout.jsonl"
    with out_path.open("wb") as out:
        code, screen = _run_on_a_terminal(args, out)
    text = _ESCAPES.sub("", screen.decode(errors="replace")).replace("\r", "\n")
    return code, out_path.read_text(), text


def test_one_capture_shows_bytes_and_flows_while_stdout_holds_only_records(tmp_path: Path) -> None:
    code, stdout, screen = _in_a_terminal(*SCAN, str(SAMPLE), tmp_path=tmp_path)
    assert code == 0
    records = [json.loads(line) for line in stdout.splitlines()]  # every line a record: no bar in it
    assert len(records) > 300 and all("p_mining" in r for r in records)
    assert SAMPLE.name in screen and "flows scored" in screen and " MB" in screen
    assert "p_mining" not in screen  # the records did not go through the display


def test_several_captures_count_and_untrusted_names_are_shown_as_text(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    hostile = "[bold]x[red]y.pcapng"  # Rich markup in a file name must print as is
    for name in ("a.pcapng", hostile):
        shutil.copy(SAMPLE, folder / name)
    code, stdout, screen = _in_a_terminal(*SCAN, str(folder), "-j1", tmp_path=tmp_path)
    assert code == 0
    per_capture = [json.loads(line)["capture"] for line in stdout.splitlines()]
    assert per_capture.count("a.pcapng") == per_capture.count(hostile) > 300
    assert "captures" in screen and "2/2" in screen
    assert hostile in screen


def test_the_first_run_notice_knows_an_empty_kernel_cache(tmp_path: Path) -> None:
    """With an empty numba cache the kernels are not there (scan then says it compiles)."""
    code = "from minerscope.warmup import kernels_cached\nassert kernels_cached() is False\nprint('ok')\n"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty-cache")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_no_bars_while_records_stream_onto_the_same_terminal() -> None:
    """stdout and stderr on one terminal with JSONL streaming: a redrawn bar would erase
    records from the screen, so there is none; every record reaches the terminal whole."""
    code, screen = _run_on_a_terminal([*SCAN, str(SAMPLE)], "terminal")
    assert code == 0
    text = screen.decode(errors="replace")
    assert "\x1b[" not in text  # no cursor movement, no bar
    records = [json.loads(line) for line in text.replace("\r\n", "\n").splitlines() if line.startswith("{")]
    assert len(records) > 300


def test_flows_shows_bytes_read_and_prints_its_records_after(tmp_path: Path) -> None:
    code, stdout, screen = _in_a_terminal("flows", "--format", "jsonl", str(SAMPLE), tmp_path=tmp_path)
    assert code == 0
    records = [json.loads(line) for line in stdout.splitlines()]
    assert len(records) > 300 and all("src" in r for r in records)
    assert SAMPLE.name in screen and "MB" in screen
    assert "flows from 1 capture" in screen  # the summary line, after the bar
    quiet = _in_a_terminal("flows", "-q", "--format", "jsonl", str(SAMPLE), tmp_path=tmp_path)[2]
    assert "MB" not in quiet


def test_probe_counts_targets_on_stderr_and_prints_the_table_on_stdout(tmp_path: Path) -> None:
    """Two loopback ports nobody listens on: refused at once, both reported, a bar meanwhile."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    targets = [f"127.0.0.1:{p}" for p in ports]
    code, stdout, screen = _in_a_terminal("probe", "--timeout", "1", *targets, tmp_path=tmp_path)
    assert code == 0
    assert all(t in stdout for t in targets) and "targets probed" not in stdout
    assert "targets probed" in screen
    quiet = _in_a_terminal("probe", "-q", "--timeout", "1", *targets, tmp_path=tmp_path)[2]
    assert "targets probed" not in quiet
