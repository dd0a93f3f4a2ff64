"""The benchmarks' in-process parts run against the current code (a rename once broke the
pipeline benchmark's CPU breakdown without any test noticing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_pipeline import breakdown
from minerscope.resources import sample_capture


def test_pipeline_breakdown_runs_on_the_sample_capture() -> None:
    data = breakdown(sample_capture())
    assert data["packets"] > 0 and data["flows"] > 0
    stages = data["stages"]
    for stage in (
        "triage (all)",
        "features",
        "scoring (all)",
        "output: JSONL",
        "store: record flows + scores",
    ):
        assert stages[stage] > 0, stage
    assert stages["features"] < stages["scoring (all)"] < stages["triage (all)"]


def test_side_by_side_scans_every_share_in_its_own_process(tmp_path: Path) -> None:
    from bench.bench_pipeline import side_by_side

    for i in range(3):  # three captures over two processes: shares of 2 and 1
        (tmp_path / f"capture{i}.pcap").write_bytes(sample_capture().read_bytes())
    fig = side_by_side(tmp_path, 2)
    assert fig["wall"] > 0 and fig["cpu"] > 0
    (tmp_path / "capture1.pcap").write_bytes(b"not a capture")
    with pytest.raises(RuntimeError, match="exited"):
        side_by_side(tmp_path, 2)


def test_directory_scan_with_and_without_a_case_file_prints_the_same(tmp_path: Path) -> None:
    from bench.bench_pipeline import scaling, scan_cmd

    db = tmp_path / "x.sqlite"
    assert "--no-store" not in scan_cmd(tmp_path, 1, db=db) and "--no-store" in scan_cmd(tmp_path, 1)

    (tmp_path / "capture0.pcapng").write_bytes(sample_capture().read_bytes())
    stored, stored_digest = scaling(tmp_path, 1, store=True)
    bare, bare_digest = scaling(tmp_path, 1)
    assert stored["cpu"] > 0 and bare["cpu"] > 0
    assert stored_digest == bare_digest  # a fresh case file marks no flow: same records
    assert not list(tmp_path.glob("*.sqlite*"))  # the case file lived in a temporary folder
