"""Feature values must not drift: golden frames of the bundled sample and synthetic tables.

Why: the shipped model was trained on these values; a speed-up that shifts any column
(beyond float32 rounding) silently degrades detection. The golden frames were written by
the pre-optimisation implementation and are checked against every later one. When a
feature is changed *on purpose* (a new schema version, then a retrained model), regenerate
them with ``MINERSCOPE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/features/test_equivalence.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from minerscope.features.synthetic import synthetic_table
from minerscope.features.windows import extract_features
from minerscope.flows.assemble import assemble_capture
from minerscope.flows.records import FlowTable

SAMPLE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "campus-gateway.pcapng"
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("MINERSCOPE_UPDATE_GOLDEN") == "1"


def _check_golden(new: pl.DataFrame, name: str) -> None:
    path = GOLDEN / f"{name}.parquet"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        new.write_parquet(path, compression="zstd", compression_level=19)
    old = pl.read_parquet(path)
    assert new.columns == old.columns
    assert new.height == old.height
    assert new.schema == old.schema
    for column in old.columns:
        a = new[column].to_numpy().astype(np.float64)
        b = old[column].to_numpy().astype(np.float64)
        assert np.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True), column


def _tag(window_s: float | None, whole_flow: bool) -> str:
    size = "none" if window_s is None else f"{window_s:g}".replace(".", "_")
    return f"w{size}-{'whole' if whole_flow else 'windows'}"


@pytest.fixture(scope="module")
def capture_table() -> FlowTable:
    table, _ = assemble_capture(SAMPLE)
    assert len(table) > 0
    return table


# Every windowing path once: real sample flows with the default and a short window,
# synthetic mining/benign tables with tiny windows and whole flows only.
@pytest.mark.parametrize(("window_s", "whole_flow"), [(300.0, True), (60.0, False)])
def test_capture_matches_golden(capture_table: FlowTable, window_s: float | None, whole_flow: bool) -> None:
    new = extract_features(capture_table, window_s=window_s, whole_flow=whole_flow)
    _check_golden(new, f"sample-{_tag(window_s, whole_flow)}")


@pytest.mark.parametrize(("window_s", "whole_flow"), [(7.5, True), (None, True)])
def test_synthetic_matches_golden(window_s: float | None, whole_flow: bool) -> None:
    table, _ = synthetic_table(15, 15, seed=0)
    new = extract_features(table, window_s=window_s, whole_flow=whole_flow)
    _check_golden(new, f"synthetic0-{_tag(window_s, whole_flow)}")
