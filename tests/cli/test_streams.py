"""Captures that can be read only once: ``scan -`` (standard input), FIFOs, ``<(...)``.

A stored scan used to hash each capture on a second reader beside the triage; on a pipe
that reader took the bytes (or found none) and the scan failed with "empty file".
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import subprocess
import sys
import threading
import time
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


def test_live_reads_a_stream_as_it_arrives_on_the_stream_s_own_clock(tmp_path: Path) -> None:
    """``ssh sensor tcpdump -U -w - | minerscope live -i -``: verdicts come while the stream is
    open, and a pause in the stream (a slow link) is not silence on the capture's clock.

    The sample was captured in 2024: on this machine's clock every flow would look idle for
    years at the first quiet second and be cut (400 records instead of 351); on the
    stream's clock the records are exactly ``scan``'s.
    """
    data = SAMPLE.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "minerscope", "live", "-i", "-", "--no-store", "-q", "--window", "1e6"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    lines: list[bytes] = []
    first = threading.Event()

    def collect() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            first.set()

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    try:
        cut = len(data) * 6 // 10
        proc.stdin.write(data[:cut])
        proc.stdin.flush()
        assert first.wait(120), "no verdict while the stream was open"
        time.sleep(2.5)  # quiet: the live loop moves its clock on (every second)
        proc.stdin.write(data[cut:])
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    finally:
        proc.kill()
        collector.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    live = [json.loads(line) for line in lines]
    result = CliRunner().invoke(main, ["scan", str(SAMPLE), "--no-store", "--format", "jsonl", "-q"])
    scanned = [json.loads(line) for line in result.stdout.splitlines()]

    def key(r: dict[str, object]) -> tuple[object, ...]:
        return (
            r["src"],
            r["sport"],
            r["dst"],
            r["dport"],
            r["proto"],
            r["first_seen"],
            r["packets"],
            r["p_mining"],
        )

    assert {r["capture"] for r in live} == {"stdin"}
    assert len(live) == len(scanned) > 300
    assert sorted(map(key, live)) == sorted(map(key, scanned))


def test_live_from_a_cut_stream_exits_3_and_says_where(tmp_path: Path) -> None:
    fifo, feeder = _fifo_feeding(tmp_path, SAMPLE.read_bytes()[:1_000_000])
    db = tmp_path / "case.sqlite"
    result = CliRunner().invoke(main, ["--db", str(db), "live", "-i", str(fifo), "-q"])
    feeder.join(timeout=5)
    assert result.exit_code == 3, result.output
    assert "tap.fifo: damaged at byte" in result.stderr and "stream ends inside a record" in result.stderr
    assert len(result.stdout.splitlines()) > 50  # every flow it saw, scored
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT path FROM captures").fetchall() == [(f"live:{fifo}",)]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-i", "-", "--tui"], "the workstation reads its keys from standard input"),
        (["-i", "-", "--promisc"], "--promisc is for a network interface"),
        (["-i", str(SAMPLE)], "a file, not a stream: read it with minerscope scan"),
        (["-i", "/nonexistent/tap"], "no such interface, file or FIFO"),
    ],
)
def test_live_streams_refused_in_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "c.sqlite"), "live", *args], input=b"")
    assert result.exit_code == 4, result.output
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["scan", "-"], ["live", "-i", "-"]])
def test_standard_input_that_is_a_terminal_is_refused_not_waited_on(tmp_path: Path, args: list[str]) -> None:
    """Nothing piped in: a read would wait for typing; one line says what to do instead."""
    import pty

    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "minerscope", "--db", str(tmp_path / "c.sqlite"), *args],
            stdin=follower,
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 4
    line = result.stderr.decode().strip()
    assert line.startswith("minerscope: error: -: standard input is a terminal; pipe a capture into it")
    assert f"| minerscope {' '.join(args)}" in line and "\n" not in line


def _with_drops(dropped: int, received: int) -> bytes:
    """The sample as a sensor that fell behind would have written it: an Interface
    Statistics Block for its one interface at the end (little-endian, as the sample)."""
    options = struct.pack("<HHQHHQ", 4, 8, received, 5, 8, dropped) + bytes(4)
    body = struct.pack("<III", 0, 0, 0) + options
    return (
        SAMPLE.read_bytes() + struct.pack("<II", 5, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    )


def test_drops_the_sensor_reported_are_said_by_scan_and_live(tmp_path: Path) -> None:
    data = _with_drops(7, 13_430)
    expected = "the capturing system dropped 7 packets of 13,430 received (pcapng interface statistics)"
    db = tmp_path / "case.sqlite"
    live = subprocess.run(
        [sys.executable, "-m", "minerscope", "--db", str(db), "live", "-i", "-", "-q", "--window", "1e6"],
        input=data,
        capture_output=True,
        timeout=300,
        check=False,
    )
    path = tmp_path / "sensor.pcapng"
    path.write_bytes(data)
    scan = CliRunner().invoke(main, ["scan", str(path), "--no-store", "--format", "jsonl", "-q"])
    for code, stdout, stderr in (
        (live.returncode, live.stdout.decode(), live.stderr.decode()),
        (scan.exit_code, scan.stdout, scan.stderr),
    ):
        assert code == 0, stderr
        assert len(stdout.splitlines()) == 351  # every flow still scored: the file is whole
        (warning,) = [line for line in stderr.splitlines() if "warning" in line]
        assert expected in warning
    with sqlite3.connect(db) as conn:  # the session's case-file capture keeps it too
        kept = conn.execute("SELECT path, complete, damage, sensor_dropped FROM captures").fetchall()
    assert kept == [("live:stdin", 1, "", 7)]


def test_live_refuses_a_compressed_stream_naming_the_tool_to_decompress_it() -> None:
    """Read as it arrives, a stream must be plain pcap/pcapng; the fix is one pipe away."""
    import lzma

    live = subprocess.run(
        [sys.executable, "-m", "minerscope", "live", "-i", "-", "--no-store", "-q"],
        input=lzma.compress(SAMPLE.read_bytes()[:200_000]),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert live.returncode == 4 and not live.stdout
    assert "a stream compressed with xz: decompress it on the way in (| xz -dc |)" in live.stderr.decode()
    assert "Traceback" not in live.stderr.decode()


def test_one_ctrl_c_ends_live_while_a_fifo_waits_for_its_writer(tmp_path: Path) -> None:
    """``live -i FIFO`` opens the FIFO, which blocks until a writer connects; the graceful
    first Ctrl-C (score what is open, then stop) had nothing to score and was retried into
    the blocked open, so it took two and ended in click's "Aborted!" with exit 1."""
    import signal

    fifo = tmp_path / "tap.fifo"
    os.mkfifo(fifo)
    with subprocess.Popen(
        [sys.executable, "-m", "minerscope", "live", "-i", str(fifo), "--no-store"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        waiting = proc.stderr.readline()  # printed after 3 s still opening: the handler is in place
        assert "waiting for the stream's first bytes" in waiting, waiting
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("one Ctrl-C did not stop live while the FIFO waited for its writer")
    assert proc.returncode == 0, err
    assert out == "" and "stopped before" in err and "nothing to score" in err and "Aborted" not in err
