"""Captures that can be read only once: ``scan -`` (standard input), FIFOs, ``<(...)``.

A stored scan used to hash each capture on a second reader beside the triage; on a pipe
that reader took the bytes (or found none) and the scan failed with "empty file".
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from minerscope import resources
from minerscope.cli import main

SAMPLE = resources.sample_capture()

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")


def _captures(db: Path) -> list[tuple[str, int, str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT path, size, sha256, packets FROM captures ORDER BY id").fetchall()


def _without_capture(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "capture"} for r in records]


def _fifo_feeding(tmp_path: Path, data: bytes) -> tuple[Path, threading.Thread]:
    fifo = tmp_path / "tap.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return fifo, thread


def test_scan_reads_standard_input_and_stores_it_under_its_content_hash(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    data = SAMPLE.read_bytes()
    piped = subprocess.run(
        [sys.executable, "-m", "minerscope", "--db", str(db), "scan", "-", "--format", "jsonl", "-q"],
        input=data,  # a real pipe
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr.decode()
    from_pipe = [json.loads(line) for line in piped.stdout.splitlines()]
    assert {r["capture"] for r in from_pipe} == {"stdin"}
    assert _captures(db) == [("/dev/stdin", len(data), hashlib.sha256(data).hexdigest(), 13423)]

    # the same bytes from the file: the same verdicts, and the case file knows it already
    result = CliRunner().invoke(main, ["--db", str(db), "scan", str(SAMPLE), "--format", "jsonl", "-q"])
    assert result.exit_code == 0, result.output
    from_file = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(from_pipe) > 300
    assert _without_capture(from_pipe) == _without_capture(from_file)
    assert len(_captures(db)) == 1


def test_a_damaged_fifo_beside_a_file_in_a_stored_parallel_scan(tmp_path: Path) -> None:
    """The FIFO's packets before the damage, exit 3, and its identity is every byte it carried."""
    db = tmp_path / "case.sqlite"
    data = SAMPLE.read_bytes()[:1_000_000]  # ends inside a record
    fifo, feeder = _fifo_feeding(tmp_path, data)
    result = CliRunner().invoke(
        main, ["--db", str(db), "scan", str(fifo), str(SAMPLE), "-j2", "--format", "jsonl", "-q"]
    )
    feeder.join(timeout=5)
    assert result.exit_code == 3, result.output
    assert "tap.fifo: damaged at byte" in result.stderr and "truncated" in result.stderr
    captures = {json.loads(line)["capture"] for line in result.stdout.splitlines()}
    assert captures == {"tap.fifo", SAMPLE.name}
    stored = _captures(db)
    assert stored[0][:3] == (str(fifo), len(data), hashlib.sha256(data).hexdigest())
    assert 0 < stored[0][3] < 13423
    assert stored[1][2] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()


def test_standard_input_twice_and_in_the_workstation_are_one_line_errors(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "case.sqlite")]
    twice = CliRunner().invoke(main, [*db, "scan", "-", "-"], input=b"")
    assert twice.exit_code == 4
    assert twice.stderr.strip() == "minerscope: error: -: standard input can be read only once"
    # the workstation's keys come from stdin: it refuses before Textual starts
    tui = CliRunner().invoke(main, [*db, "open", "-"], input=SAMPLE.read_bytes()[:4096])
    assert tui.exit_code == 4
    assert "/dev/stdin: not a regular file" in tui.stderr and "scan -" in tui.stderr
