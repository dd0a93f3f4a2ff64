"""``minerscope scan`` on real captures: record fields, stage-0 evidence, exit codes, the store."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from minerscope import resources
from minerscope.cli import main
from minerscope.cli.output import RECORD_FIELDS
from tests.conftest import needs_libpcap, runs_ok_in_a_fresh_interpreter

SAMPLE = resources.sample_capture()
LABELS = SAMPLE.with_name("campus-gateway.labels.csv")

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")


def _scan(*args: str, db: Path) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(main, ["--db", str(db), "scan", "--format", "jsonl", "-q", *args])
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, records, result.stderr


def _miner_endpoints() -> dict[tuple[str, int], dict[str, str]]:
    with LABELS.open() as fh:
        return {
            (row["server_ip"], int(row["server_port"])): row
            for row in csv.DictReader(fh)
            if row["label"] == "miner"
        }


def test_sample_records_carry_every_field_and_stage0(tmp_path: Path) -> None:
    code, records, _ = _scan(db=tmp_path / "case.sqlite")
    assert code == 0
    assert len(records) > 100
    for record in records[:5]:
        assert set(RECORD_FIELDS) <= set(record)
        assert 0.0 <= float(record["p_mining"]) <= 1.0  # type: ignore[arg-type]
        assert record["stage1"] in ("mining", "benign", "unscored")
    kinds = {e["kind"] for r in records for e in r["stage0"]}  # type: ignore[attr-defined]
    assert {"blacklist", "stratum"} <= kinds
    for record in records:
        if record["stage0"]:
            assert record["verdict"] == "mining"
    blacklisted = [r for r in records if any(e["kind"] == "blacklist" for e in r["stage0"])]  # type: ignore[attr-defined]
    assert blacklisted and all(r["sni"] or r["dns_names"] for r in blacklisted)


def test_most_lab_miners_are_flagged_by_stage1(tmp_path: Path) -> None:
    code, records, _ = _scan("--no-store", db=tmp_path / "unused.sqlite")
    assert code == 0
    miners = _miner_endpoints()
    flagged = {(r["dst"], r["dport"]) for r in records if r["stage1"] == "mining"}
    hit = [ep for ep in miners if ep in flagged]
    assert len(hit) >= len(miners) // 2, (sorted(miners), sorted(flagged))
    assert not (tmp_path / "unused.sqlite").exists()


def _erspan(frame: bytes, seq: int) -> bytes:
    """``frame`` as a sensor fed by remote SPAN receives it: Ethernet, IPv4 (GRE), GRE with
    a sequence number, an ERSPAN type II header (session 7), then the mirrored frame."""
    gre = struct.pack("!HHI", 0x1000, 0x88BE, seq) + struct.pack("!II", 0x10010007, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(gre) + len(frame), seq & 0xFFFF, 0, 64, 47, 0,
                     bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))  # fmt: skip
    return bytes.fromhex("0200000000aa0200000000bb0800") + ip + gre + frame


def _rewritten_sample(path: Path, *, skip_s: float = 0.0, snaplen: int = 0, erspan: bool = False) -> Path:
    """The bundled sample as another capture would have it: starting ``skip_s`` seconds
    in, and/or cut to ``snaplen`` bytes a frame (the original lengths kept), and/or
    delivered by remote SPAN (:func:`_erspan`)."""
    from scapy.utils import RawPcapNgReader

    from minerscope.capture.writer import PcapWriter

    with (
        PcapWriter(path, nanosecond=True, snaplen=snaplen or 262144) as out,
        RawPcapNgReader(str(SAMPLE)) as reader,
    ):
        start = None
        for frame, meta in reader:
            assert meta.tsresol == 1_000_000_000
            ts_ns = (meta.tshigh << 32) | meta.tslow
            start = ts_ns if start is None else start
            if ts_ns - start >= skip_s * 1e9:
                if erspan:
                    frame = _erspan(frame, seq=len(frame) + ts_ns % 65536)
                out.write_packet(
                    ts_ns, frame[:snaplen] if snaplen else frame, len(frame) if erspan else meta.wirelen
                )
    return path


def _scan_rewritten_sample(
    tmp_path: Path, name: str, by: str = "stage1", **how: Any
) -> tuple[list[dict[str, object]], set[tuple[object, object]]]:
    """Scan the sample rewritten as :func:`_rewritten_sample` does (``how``), without a case
    file: its records (the scan must exit 0) and the endpoints of the flows whose ``by``
    field (``stage1`` or ``verdict``) says ``mining``."""
    rewritten = _rewritten_sample(tmp_path / name, **how)
    code, records, err = _scan(str(rewritten), "--no-store", db=tmp_path / "unused.sqlite")
    assert code == 0, err
    return records, {(r["dst"], r["dport"]) for r in records if r[by] == "mining"}


def test_a_capture_that_starts_while_the_miners_are_connected_finds_them_all(tmp_path: Path) -> None:
    """The sample as if the capture had started 90 s in: every miner is connected, and
    several of their flows open with the pool's packet. Taking that sender for the client
    mirrored the flow: 6 of the 8 miners were found (one only by stage 0, its stage-1
    score 0.002), and those records named the pool as the source."""
    records, flagged = _scan_rewritten_sample(tmp_path, "late-start.pcap", "verdict", skip_s=90)
    miners = _miner_endpoints()
    assert set(miners) <= flagged, sorted(set(miners) - flagged)
    for record in records:
        if (record["dst"], record["dport"]) in miners:
            assert record["stage1"] == "mining", record
        assert (record["src"], record["sport"]) not in miners, "a pool taken for the client"


def test_a_headers_only_capture_still_finds_the_miners_by_their_timing(tmp_path: Path) -> None:
    """Captures kept to 96 bytes a frame (headers only, a common privacy setting): no
    payload for stage 0 or TLS records, but sizes come from the IP headers and timing
    survives, so stage 1 still flags every miner (measured: 8 of 8, p 0.5 to 1.0)."""
    records, flagged = _scan_rewritten_sample(tmp_path, "headers-only.pcap", snaplen=96)
    miners = _miner_endpoints()
    assert set(miners) <= flagged, sorted(set(miners) - flagged)
    assert not any(e["kind"] == "stratum" for r in records for e in r["stage0"])  # type: ignore[attr-defined]


def test_a_capture_of_a_remote_span_session_finds_the_miners_inside_it(tmp_path: Path) -> None:
    """The sample as an ERSPAN sensor captures it: every frame inside GRE between two
    routers. Unopened, that was one GRE conversation and no miner; opened, every flow of
    the sample is there with its own addresses."""
    records, flagged = _scan_rewritten_sample(tmp_path, "erspan.pcap", "verdict", erspan=True)
    _, plain, _ = _scan("--no-store", db=tmp_path / "unused.sqlite")
    assert len(records) == len(plain) > 300
    assert set(_miner_endpoints()) <= flagged
    assert not any(r["dst"] in ("192.0.2.1", "192.0.2.2") for r in records)


def test_scan_records_capture_and_flows_once(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    _, first, _ = _scan(db=db)
    _, _, _ = _scan(db=db)  # the same capture again: no duplicate capture or flows
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM captures").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM flows").fetchone()[0] == len(first)


def test_damaged_capture_is_partial_with_one_warning(tmp_path: Path) -> None:
    damaged = tmp_path / "cut.pcapng"
    data = SAMPLE.read_bytes()
    damaged.write_bytes(data[: len(data) // 2 + 7])
    code, records, stderr = _scan(str(damaged), db=tmp_path / "c.sqlite")
    assert code == 3
    assert records, "every flow before the damage must still be reported"
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(damaged) in warnings[0] and "byte" in warnings[0]


def test_not_a_capture_is_exit_4_without_traceback(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pcap"
    bogus.write_text("this is not a capture\n")
    code, records, stderr = _scan(str(bogus), db=tmp_path / "c.sqlite")
    assert code == 4 and not records
    assert "Traceback" not in stderr and str(bogus) in stderr


def test_directory_in_parallel_equals_serial(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a.pcapng")
    (folder / "b.bin").write_bytes(SAMPLE.read_bytes())  # named anything: found by magic
    (folder / "README.txt").write_text("not a capture")
    _, serial, _ = _scan(str(folder), "-j", "1", "--no-store", db=tmp_path / "x")
    _, parallel, _ = _scan(str(folder), "-j", "2", "--no-store", db=tmp_path / "x")
    assert serial == parallel
    assert {r["capture"] for r in serial} == {"a.pcapng", "b.bin"}


def test_stdout_is_data_and_stderr_is_diagnostics(tmp_path: Path) -> None:
    damaged = tmp_path / "cut.pcapng"
    damaged.write_bytes(SAMPLE.read_bytes()[:200_000])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "minerscope",
            "--db",
            str(tmp_path / "c.sqlite"),
            "scan",
            "--format",
            "jsonl",
            str(damaged),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 3
    for line in proc.stdout.splitlines():
        json.loads(line)
    assert "warning" in proc.stderr and "{" not in proc.stderr


def test_streamed_csv_and_jsonl_agree_over_captures_with_one_header(tmp_path: Path) -> None:
    """Capture-by-capture streaming: one CSV header, the same flows as JSONL, strict JSON lines."""
    from minerscope.cli.output import SCAN_FIELDS

    folder = tmp_path / "captures"
    folder.mkdir()
    data = SAMPLE.read_bytes()
    (folder / "a.pcapng").write_bytes(data[: len(data) // 5])
    (folder / "b.pcapng").write_bytes(data[: len(data) // 4])
    runner = CliRunner()
    base = ["--db", str(tmp_path / "case.sqlite"), "scan", str(folder), "-j", "1", "-q"]
    as_csv = runner.invoke(main, [*base, "--format", "csv"])
    as_jsonl = runner.invoke(main, [*base, "--format", "jsonl"])
    assert as_csv.exit_code == as_jsonl.exit_code == 3  # both cut mid-record
    table = list(csv.reader(as_csv.stdout.splitlines()))
    assert table[0] == list(SCAN_FIELDS) and [list(SCAN_FIELDS)] == [r for r in table if r[0] == "capture"]

    def strict(text: str) -> object:
        raise ValueError(f"not JSON: {text}")

    records = [json.loads(line, parse_constant=strict) for line in as_jsonl.stdout.splitlines()]
    assert len(records) == len(table) - 1 > 0
    assert [r["capture"] for r in records] == [row[0] for row in table[1:]]
    assert {r["capture"] for r in records} == {"a.pcapng", "b.pcapng"}
    assert all(r["analyst"] == "" for r in records)  # recorded in the store, nothing decided yet


def test_analyst_field_reports_dismissed_endpoints(tmp_path: Path) -> None:
    from minerscope.store import open_store

    db = tmp_path / "case.sqlite"
    cut = tmp_path / "cut.pcapng"
    data = SAMPLE.read_bytes()
    cut.write_bytes(data[: len(data) // 5])
    _, first, _ = _scan(str(cut), db=db)
    target = first[0]
    with open_store(db) as store:
        store.dismiss_endpoint(str(target["dst"]), int(target["dport"]))  # type: ignore[call-overload]
    _, second, _ = _scan(str(cut), db=db)
    same = [r for r in second if (r["dst"], r["dport"]) == (target["dst"], target["dport"])]
    assert same and all(r["analyst"] == "dismissed" for r in same)
    assert all(
        r["analyst"] == "" for r in second if (r["dst"], r["dport"]) != (target["dst"], target["dport"])
    )


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_a_capture_without_flows_is_recorded_beside_analyst_decisions(tmp_path: Path, fmt: str) -> None:
    """A capture with no packets, scanned into a case file that holds a confirmed pool and
    a dismissal: its frame has no columns, which marking the analyst column once read."""
    from minerscope.store import open_store

    db = tmp_path / "case.sqlite"
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    with open_store(db) as store:
        store.dismiss_endpoint("192.0.2.7", 443)
        store.confirm_pool("192.0.2.8", 3333, dialect="stratum1", transport="tcp")
    result = CliRunner().invoke(main, ["--db", str(db), "scan", "-q", "--format", fmt, str(empty)])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    if fmt == "jsonl":
        assert result.stdout == ""
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT packets FROM captures").fetchall() == [(0,)]


def test_triage_stack_is_frozen_once_after_its_imports() -> None:
    """Import-time objects leave the collector's reach; objects made later stay collectable."""
    code = (
        "import gc, sys\n"
        "from minerscope.triage import load_triage_stack\n"
        "assert gc.get_freeze_count() == 0\n"
        "load_triage_stack()\n"
        "frozen = gc.get_freeze_count()\n"
        "assert {'numba', 'polars', 'minerscope._pipeline', 'minerscope.model.classify'} <= set(sys.modules)\n"
        "assert frozen > 60_000, frozen\n"
        "later = [[i] for i in range(1000)]\n"
        "load_triage_stack()  # a second capture in the same worker\n"
        "assert gc.get_freeze_count() == frozen, (gc.get_freeze_count(), frozen)\n"
        "print('ok')\n"
    )
    runs_ok_in_a_fresh_interpreter(code)


@pytest.mark.parametrize(
    ("command", "preset", "expected"),
    [("scan", None, "1"), ("open", None, "1"), ("scan", "3", "3"), ("export", None, None)],
)
def test_pipeline_commands_run_one_blas_thread(
    monkeypatch: pytest.MonkeyPatch, command: str, preset: str | None, expected: str | None
) -> None:
    """Set before numpy loads, for the pipeline commands only; an explicit setting wins."""
    if preset is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", preset)
    assert main.get_command(click.Context(main), command) is not None
    assert os.environ.get("OPENBLAS_NUM_THREADS") == expected


@pytest.mark.parametrize("probe", [[], ["--probe"]])
def test_scan_refuses_a_file_that_is_no_case_file_before_any_work(tmp_path: Path, probe: list[str]) -> None:
    """A mistyped --db (a capture, some notes) is one line and exit 4, not a traceback."""
    junk = tmp_path / "notes.sqlite"
    junk.write_bytes(b"just some notes, not SQLite\n")
    result = CliRunner().invoke(main, ["--db", str(junk), "scan", "-q", *probe])
    assert result.exit_code == 4, result.output
    assert "not a minerscope case file (not an SQLite database)" in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert junk.read_bytes() == b"just some notes, not SQLite\n"


def test_the_word_sample_names_the_bundled_capture_among_others(tmp_path: Path) -> None:
    """``sample`` means the bundled capture wherever it stands (``flows`` and ``open``
    read it the same way), and brings the sample blacklist along, next to --blacklist."""
    other = tmp_path / "other.pcapng"
    shutil.copy(SAMPLE, other)
    own = tmp_path / "own.txt"
    own.write_text("127.20.0.7\n")
    code, records, err = _scan("--no-store", "--blacklist", str(own), "sample", str(other), db=tmp_path / "c")
    assert code == 0, err
    by_capture: dict[object, list[dict[str, object]]] = {}
    for record in records:
        by_capture.setdefault(record["capture"], []).append(record)
    assert set(by_capture) == {SAMPLE.name, other.name}
    assert len(by_capture[SAMPLE.name]) == len(by_capture[other.name])

    def blacklisted(rows: list[dict[str, object]]) -> set[object]:
        return {r["dst"] for r in rows if any(e["kind"] == "blacklist" for e in r["stage0"])}  # type: ignore[attr-defined]

    # the sample's own list (pool names) applies to every capture of the run, as does ours
    assert blacklisted(by_capture[SAMPLE.name]) == blacklisted(by_capture[other.name])
    assert "127.20.0.7" in blacklisted(by_capture[SAMPLE.name])
    assert len(blacklisted(by_capture[SAMPLE.name])) >= 2


def test_hostile_file_names_reach_stderr_inert(tmp_path: Path) -> None:
    """A capture handed over from a compromised host may be named to drive the analyst's
    terminal (clear the screen, reverse the text); every diagnostic line shows it escaped.
    (click strips colour codes only when stderr is not a terminal: not enough.)"""
    name = "evil\x1b[2J\u202ecod.exe\x07.pcap"
    junk = tmp_path / name
    junk.write_bytes(b"not a capture at all\n")
    missing = tmp_path / ("gone\x1b]0;pwned\x07" + ".pcap")
    for target, what in ((junk, "not a pcap or pcapng file"), (missing, "cannot open")):
        result = CliRunner().invoke(main, ["scan", "--no-store", "-q", str(target)])
        assert result.exit_code == 4, result.output
        assert what in result.stderr
        assert not any(ch in result.stderr for ch in "\x1b\x07\u202e"), repr(result.stderr)
        assert "\\x1b" in result.stderr and "\\x07" in result.stderr
    result = CliRunner().invoke(main, ["scan", "--no-store", "-q", str(junk)])
    assert "\\u202e" in result.stderr
    # and through the one-line error of a command that stops (here: a junk case file)
    result = CliRunner().invoke(main, ["--db", str(junk), "scan", "-q"])
    assert result.exit_code == 4 and "not a minerscope case file" in result.stderr
    assert not any(ch in result.stderr for ch in "\x1b\x07\u202e") and "\\x1b[2J" in result.stderr


@needs_libpcap
def test_capture_filter_leaves_packets_out_before_any_flow(tmp_path: Path) -> None:
    """``--bpf`` drops DNS before assembly: no port-53 flow is left, every other flow is
    built from the same packets, parallel workers apply it too, and the case file still
    records the capture's full packet count."""
    key = ("src", "sport", "dst", "dport", "proto", "packets", "bytes", "first_seen")
    _, everything, _ = _scan("--no-store", "-j", "1", db=tmp_path / "x")
    db = tmp_path / "case.sqlite"
    code, kept, _ = _scan("--bpf", "not port 53", "-j", "1", db=db)
    assert code == 0
    assert kept and not [r for r in kept if 53 in (r["sport"], r["dport"])]
    expected = sorted(tuple(r[k] for k in key) for r in everything if 53 not in (r["sport"], r["dport"]))
    assert sorted(tuple(r[k] for k in key) for r in kept) == expected
    assert len(kept) < len(everything)
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute("SELECT packets FROM captures").fetchone()[0] == 13423
        )  # the file's, not the filter's
        assert conn.execute("SELECT COUNT(*) FROM flows").fetchone()[0] == len(kept)

    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a.pcapng")
    shutil.copy(SAMPLE, folder / "b.pcapng")
    _, serial, _ = _scan(str(folder), "--bpf", "tcp port 3333", "-j", "1", "--no-store", db=tmp_path / "x")
    _, parallel, _ = _scan(str(folder), "--bpf", "tcp port 3333", "-j", "2", "--no-store", db=tmp_path / "x")
    assert serial == parallel
    assert serial and all(r["proto"] == 6 and 3333 in (r["sport"], r["dport"]) for r in serial)


@needs_libpcap
@pytest.mark.parametrize("command", [["scan", "--no-store"], ["flows", "sample"], ["open"]])
def test_a_filter_libpcap_cannot_parse_is_one_line_before_any_work(
    command: list[str], tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "c.sqlite"), *command, "--bpf", "tcp prot 443"])
    assert result.exit_code == 4, result.output
    assert result.stdout == ""
    assert (
        result.stderr
        == "minerscope: error: --bpf 'tcp prot 443': can't parse filter expression: syntax error\n"
    )
    assert not (tmp_path / "c.sqlite").exists()


def test_packets_a_whole_capture_left_out_are_said_and_the_exit_stays_0(tmp_path: Path) -> None:
    """An interface the reader cannot decode (USB beside Ethernet) is named on stderr by
    scan and flows alike; the capture was read to its end, so the exit status stays 0."""
    from tests.flows.frames import write_pcapng_with_usb

    path = write_pcapng_with_usb(tmp_path / "with-usb.pcapng")
    code, records, stderr = _scan(str(path), "--no-store", db=tmp_path / "unused.sqlite")
    flows = CliRunner().invoke(main, ["flows", "--format", "jsonl", str(path)])
    for exit_code, err in ((code, stderr), (flows.exit_code, flows.stderr)):
        warnings = [line for line in err.splitlines() if "warning" in line]
        assert exit_code == 0 and len(warnings) == 1, err
        assert str(path) in warnings[0] and "1 packet of link type 189 (USB_LINUX);" in warnings[0]
    assert [(r["dst"], r["dport"]) for r in records] == [("203.0.113.9", 443)]
    assert len(flows.stdout.splitlines()) == 1


def test_a_directory_of_compressed_archives_scans_as_the_captures_inside(tmp_path: Path) -> None:
    """Archived captures are found by magic bytes and read as they are (no unpacking to disk)."""
    import lzma

    from minerscope.capture.compressed import zstd

    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "gateway-0800").write_bytes(zstd.compress(SAMPLE.read_bytes()))  # no telling name
    (folder / "notes.txt.xz").write_bytes(lzma.compress(b"shift notes, not packets"))
    code, archived, stderr = _scan(str(folder), "--no-store", db=tmp_path / "unused.sqlite")
    _, plain, _ = _scan(str(SAMPLE), "--no-store", db=tmp_path / "unused.sqlite")
    assert code == 0 and "warning" not in stderr, stderr
    assert {r["capture"] for r in archived} == {"gateway-0800"}
    assert [{**r, "capture": ""} for r in archived] == [{**r, "capture": ""} for r in plain]


def test_the_case_file_keeps_what_reading_each_capture_found(tmp_path: Path) -> None:
    """Handed over, a case file must tell how far its evidence goes: a capture cut short
    (where, why) or one whose sensor dropped packets, beside a whole one."""
    from tests.cli.test_streams import _with_drops

    db = tmp_path / "case.sqlite"
    data = SAMPLE.read_bytes()
    damaged = tmp_path / "cut.pcapng"
    damaged.write_bytes(data[: len(data) // 2 + 7])
    dropped = tmp_path / "sensor.pcapng"
    dropped.write_bytes(_with_drops(7, 13_430))
    code, _, _ = _scan(str(damaged), str(dropped), str(SAMPLE), db=db)
    assert code == 3
    with sqlite3.connect(db) as conn:
        kept = conn.execute("SELECT complete, damage, sensor_dropped FROM captures ORDER BY id").fetchall()
    assert kept[1:] == [(1, "", 7), (1, "", None)]
    assert kept[0][0] == 0 and kept[0][1].startswith("damaged at byte ") and kept[0][2] is None
    shown = CliRunner().invoke(main, ["--db", str(db), "case", "show"])
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert any("cut.pcapng" in line and kept[0][1] in line for line in lines)
    assert any("sensor.pcapng" in line and "whole; its sensor dropped 7 packets" in line for line in lines)


def test_no_store_still_applies_the_case_files_blacklist_and_allowlist(tmp_path: Path) -> None:
    """``--no-store`` writes nothing; it used to read nothing either, so a batch job run
    with it (as the README suggests for big jobs) missed the case file's known pools and
    showed dismissed flows as undecided."""
    from minerscope.store import open_store

    db = tmp_path / "case.sqlite"
    cut = tmp_path / "cut.pcapng"
    data = SAMPLE.read_bytes()
    cut.write_bytes(data[: len(data) // 5])
    _, plain, _ = _scan("--no-store", str(cut), db=tmp_path / "none.sqlite")
    assert not (tmp_path / "none.sqlite").exists()  # no case file: none created
    first, second = plain[0], plain[1]
    assert not [s for s in json.loads(str(first["stage0"]) or "[]") if s.get("kind") == "blacklist"]
    with open_store(db) as store:
        store.add_indicator("ip_port", str(first["dst"]), port=int(first["dport"]))  # type: ignore[call-overload]
        store.dismiss_endpoint(str(second["dst"]), int(second["dport"]))  # type: ignore[call-overload]
        before = store.scalar("SELECT count(*) FROM captures")
    code, records, err = _scan("--no-store", str(cut), db=db)
    assert code == 3, err  # (the cut capture)
    hit = [r for r in records if (r["dst"], r["dport"]) == (first["dst"], first["dport"])]
    assert hit and all("blacklist" in str(r["stage0"]) for r in hit)
    assert all(r["verdict"] == "mining" for r in hit)
    dismissed = [r for r in records if (r["dst"], r["dport"]) == (second["dst"], second["dport"])]
    assert dismissed and all(r["analyst"] == "dismissed" for r in dismissed)
    with open_store(db) as store:
        assert store.scalar("SELECT count(*) FROM captures") == before  # still nothing recorded


def test_a_capture_name_that_is_not_utf8_is_escaped_not_fatal(tmp_path: Path) -> None:
    """A file name with bytes that are not UTF-8 (``os.fsdecode`` keeps them as lone
    surrogates) ended the whole directory's scan in a UnicodeEncodeError traceback, with
    nothing printed for the good captures beside it."""
    folder = tmp_path / "captures"
    folder.mkdir()
    odd = os.fsdecode(b"bad\xff\xfe.pcapng")
    shutil.copy(SAMPLE, folder / odd)
    shutil.copy(SAMPLE, folder / "ok.pcapng")
    db = tmp_path / "case.sqlite"
    code, records, err = _scan(str(folder), db=db)
    assert code == 0, err
    assert {r["capture"] for r in records} == {"bad\\xff\\xfe.pcapng", "ok.pcapng"}
    shown = CliRunner().invoke(main, ["--db", str(db), "case", "show"])
    assert shown.exit_code == 0 and "bad\\xff\\xfe.pcapng" in shown.stdout


def test_a_bad_blacklist_file_is_one_line_and_exit_4(tmp_path: Path) -> None:
    """A bad line in a ``--blacklist`` file was found by each capture's triage: its error
    was printed once per capture and the scan ended with exit 1 ("a bug")."""
    bad = tmp_path / "bad.txt"
    bad.write_text("pool.example\nthis is not valid!!\n")
    result = subprocess.run(
        [sys.executable, "-m", "minerscope", "--db", str(tmp_path / "case.sqlite"), "scan", "-q"]
        + ["--blacklist", str(bad), str(SAMPLE), str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "bad.txt:2:" in result.stderr
    assert not (tmp_path / "case.sqlite").exists()  # refused before any work


def test_scan_records_into_the_case_it_is_given(tmp_path: Path) -> None:
    """``case new incident-42`` made a case no scan could record into: every capture went
    to the default case."""
    db = tmp_path / "case.sqlite"
    made = CliRunner().invoke(main, ["--db", str(db), "case", "new", "incident-42"])
    assert made.exit_code == 0, made.stderr
    case_id = int(made.stdout.strip())
    data = SAMPLE.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) // 5])
    code, records, err = _scan("--case", str(case_id), str(cut), db=db)
    assert code == 3 and records, err
    from minerscope.store import open_store

    with open_store(db) as store:
        assert [c["case_id"] for c in store.list_captures()] == [case_id]
        assert store.scalar("SELECT count(*) FROM captures WHERE case_id = ?", (case_id,)) == 1
    missing = CliRunner().invoke(main, ["--db", str(db), "scan", "-q", "--case", "99", str(cut)])
    assert missing.exit_code == 4 and "no case with id 99" in missing.stderr and not missing.stdout
