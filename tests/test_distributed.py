"""The many-machines adapter gives exactly what a serial ``scan`` prints, capture by capture."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from minerscope import resources
from minerscope.cli import main
from minerscope.cli.output import SCAN_FIELDS
from minerscope.distributed import TriageOptions, capture_paths, json_line, scan_capture, scan_serially

SAMPLE = resources.sample_capture()

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")


@pytest.fixture(scope="module")
def two_captures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the sample and a different capture (its first 40 %, cut mid-packet)."""
    folder = tmp_path_factory.mktemp("captures")
    shutil.copy(SAMPLE, folder / "a.pcapng")
    data = SAMPLE.read_bytes()
    (folder / "b.pcapng").write_bytes(data[: len(data) * 2 // 5 + 3])
    (folder / "notes.txt").write_text("not a capture")
    return folder


def test_adapter_records_equal_serial_scan_output(
    two_captures: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--db",
            str(tmp_path / "unused"),
            "scan",
            str(two_captures),
            "-j",
            "1",
            "--no-store",
            "-q",
            "--format",
            "jsonl",
        ],
    )
    assert result.exit_code == 3  # b.pcapng is damaged: partial, every flow before the damage kept
    printed = result.stdout.splitlines()
    paths = capture_paths([two_captures])
    assert [Path(p).name for p in paths] == ["a.pcapng", "b.pcapng"]
    with caplog.at_level(logging.WARNING, logger="minerscope.distributed"):
        per_capture = [scan_capture(p, TriageOptions()) for p in paths]  # what each worker returns
    assert any("b.pcapng" in r.getMessage() for r in caplog.records)
    lines = [json_line(r) for records in per_capture for r in records]
    assert lines == printed  # byte for byte, in scan's order
    counts = [len(records) for records in per_capture]
    assert counts[0] > counts[1] > 0
    assert all(tuple(r) == SCAN_FIELDS for records in per_capture for r in records)
    assert {json.loads(line)["capture"] for line in lines} == {"a.pcapng", "b.pcapng"}
    assert [json_line(r) for r in scan_serially([paths[1]])] == printed[counts[0] :]


def test_adapter_is_picklable_for_engines() -> None:
    """Dask and Ray ship the function and its options to workers by pickling them."""
    options = TriageOptions(idle_timeout=60.0, blacklist_files=(resources.sample_blacklist(),))
    fn, opts = pickle.loads(pickle.dumps((scan_capture, options)))
    assert fn is scan_capture and opts == options


def test_importing_the_adapter_loads_no_engine_nor_pipeline() -> None:
    code = (
        "import sys, minerscope.distributed; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'ray', 'polars', 'xgboost', 'numba'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_object_store_urls_are_copied_locally_and_keep_their_name(
    two_captures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """fsspec's ``file://`` backend stands in for s3:// or gs:// (no network in tests)."""
    pytest.importorskip("fsspec")
    local = scan_capture(two_captures / "b.pcapng")
    url = (two_captures / "b.pcapng").as_uri()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="minerscope.distributed"):
        remote = scan_capture(url)
    assert remote == local and remote[0]["capture"] == "b.pcapng"
    (line,) = [r.getMessage() for r in caplog.records]  # b.pcapng is cut: said by its URL
    assert line.startswith(f"{url}: capture is damaged") and line.count(url) == 2, line


def test_packets_a_whole_capture_left_out_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.flows.frames import write_pcapng_with_usb

    path = write_pcapng_with_usb(tmp_path / "with-usb.pcapng")
    with caplog.at_level(logging.WARNING, logger="minerscope.distributed"):
        records = scan_capture(str(path), TriageOptions())
    assert [(r["dst"], r["dport"]) for r in records] == [("203.0.113.9", 443)]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "1 packet of link type 189 (USB_LINUX)" in line and "damaged" not in line
