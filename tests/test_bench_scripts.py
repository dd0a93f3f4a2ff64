"""The benchmarks' in-process parts run against the current code (a rename once broke the
pipeline benchmark's CPU breakdown without any test noticing)."""

from __future__ import annotations

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
