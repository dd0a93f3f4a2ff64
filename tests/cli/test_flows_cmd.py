"""``minerscope flows`` through click's runner and as a real subprocess (exit codes, stream separation)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from minerscope import resources
from minerscope.capture.writer import PcapWriter
from minerscope.cli import main
from tests.capture.test_handshake import _sni_ext, build_client_hello
from tests.conftest import REPO, needs_libpcap
from tests.flows.frames import tcp_session, udp

HOSTILE_SNI = "=HYPERLINK(1)[bold]x\x1b.example"


def write_capture(path: Path, *, cut: int = 0) -> Path:
    hello = build_client_hello([0x1301, 0x002F], [_sni_ext(HOSTILE_SNI)])
    frames = tcp_session(
        50.0, ("10.3.0.2", 41000), ("203.0.113.7", 443), [(0, hello), (1, b"\x16\x03\x03\x00\x01\x02")]
    )
    frames += tcp_session(
        51.0,
        ("10.3.0.2", 41001),
        ("198.51.100.3", 3333),
        [(0, b'{"id":1,"method":"mining.subscribe","params":[]}\n')],
    )
    frames.append(udp(52.0, "10.3.0.2", 5000, "10.3.0.9", 6000, b"ping"))
    frames.sort(key=lambda f: f[0])
    with PcapWriter(path) as w:
        for t, frame in frames:
            w.write_packet(round(t * 1e9), bytes(frame))
    if cut:
        data = path.read_bytes()
        path.write_bytes(data[:-cut])
    return path


def test_jsonl_has_one_object_per_flow_and_diagnostics_on_stderr(tmp_path: Path) -> None:
    cap = write_capture(tmp_path / "a.pcap")
    result = CliRunner().invoke(main, ["flows", "--format", "jsonl", str(cap)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["dport"] for r in rows] == [443, 3333, 6000]
    assert rows[0]["is_tls"] and rows[0]["sni"] == HOSTILE_SNI.replace("\x1b", "\\x1b")
    assert rows[0]["capture"] == "a.pcap" and rows[0]["end_reason"] == "fin"
    assert "3 flows" in result.stderr and "3 flows" not in result.stdout


def test_csv_cells_are_formula_safe_and_blacklist_applies(tmp_path: Path) -> None:
    cap = write_capture(tmp_path / "a.pcap")
    bl = tmp_path / "bl.txt"
    bl.write_text("198.51.100.3:3333\n")
    result = CliRunner().invoke(main, ["flows", "--format", "csv", "--blacklist", str(bl), str(cap)])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert table[0]["sni"].startswith("'=HYPERLINK")
    stage0 = json.loads(table[1]["stage0"])
    assert stage0[0]["kind"] == "blacklist" and stage0[0]["field"] == "dst_port"


def test_table_renders_hostile_text_literally(tmp_path: Path) -> None:
    cap = write_capture(tmp_path / "a.pcap")
    result = CliRunner().invoke(main, ["flows", "--idle-timeout", "30", str(cap)])
    assert result.exit_code == 0, result.output
    assert "[bold]x\\x1b.example" in result.stdout  # markup stays text, escape is visible
    assert "\x1b" not in result.stdout.replace("\x1b[", "")


def test_bad_blacklist_is_exit_4(tmp_path: Path) -> None:
    cap = write_capture(tmp_path / "a.pcap")
    bl = tmp_path / "bl.txt"
    bl.write_text("not an indicator at all\n")
    result = CliRunner().invoke(main, ["flows", "--blacklist", str(bl), str(cap)])
    assert result.exit_code == 4 and "bl.txt:1" in result.stderr and result.stdout == ""


def test_sample_capture_with_its_blacklist() -> None:
    if not resources.sample_capture().is_file():
        pytest.skip("the bundled sample capture has not been generated in this checkout")
    result = CliRunner().invoke(main, ["flows", "--format", "jsonl", "sample"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["capture"] == resources.SAMPLE_CAPTURE_NAME for r in rows)
    if resources.sample_blacklist().is_file():
        assert any(r["stage0"] for r in rows)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minerscope", "flows", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_subprocess_exit_codes_and_stream_separation(tmp_path: Path) -> None:
    good = write_capture(tmp_path / "good.pcap")
    damaged = write_capture(tmp_path / "damaged.pcap", cut=20)
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a capture\n")

    ok = _run("--format", "jsonl", str(good))
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 3
    assert all(line.startswith("{") for line in ok.stdout.splitlines())

    partial = _run("--format", "jsonl", str(damaged))
    assert partial.returncode == 3
    assert len(partial.stdout.splitlines()) == 2  # the flows before the damage (the UDP packet was cut)
    assert "warning" in partial.stderr and "damaged.pcap" in partial.stderr

    bad = _run(str(junk))
    assert bad.returncode == 4 and bad.stdout == ""
    errors = [line for line in bad.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "notes.txt" in errors[0] and "Traceback" not in bad.stderr

    mixed = _run("--format", "jsonl", str(good), str(junk))
    assert mixed.returncode == 4 and len(mixed.stdout.splitlines()) == 3


@needs_libpcap
def test_capture_filter_applies_to_flows() -> None:
    if not resources.sample_capture().is_file():
        pytest.skip("the bundled sample capture has not been generated in this checkout")
    result = CliRunner().invoke(main, ["flows", "--format", "jsonl", "sample", "--bpf", "udp"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and {r["proto"] for r in rows} == {17}
    kept = sum(r["packets"] for r in rows)
    assert (
        result.stderr
        == f"minerscope: {len(rows)} flows from 1 capture(s); --bpf left out {13423 - kept:,} packets\n"
    )
