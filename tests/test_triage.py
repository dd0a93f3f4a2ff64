"""The pipeline glue: block splitting for bounded memory, the per-process model cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from minerscope import _pipeline, resources
from minerscope.flows.assemble import assemble_capture
from minerscope.flows.records import FlowTable
from minerscope.triage import triage_capture, triage_rows

SAMPLE = resources.sample_capture()

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample capture not generated")


@pytest.fixture(scope="module")
def small_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = SAMPLE.read_bytes()
    path = tmp_path_factory.mktemp("cap") / "fifth.pcapng"
    path.write_bytes(data[: len(data) // 5])
    return path


def test_split_table_blocks_rejoin_to_the_table(small_capture: Path) -> None:
    table, _ = assemble_capture(small_capture)
    sizes = np.diff(table.pkt_offsets)
    biggest = int(sizes.max())
    limit = max(biggest // 3, 1)  # some flows are larger than a block: they go alone
    parts = list(_pipeline.split_table(table, max_packets=limit, max_flows=5))
    assert len(parts) > len(table) // 5
    for part in parts:
        assert part.summary["flow_id"].to_list() == list(range(len(part)))
        assert len(part) <= 5 and (len(part) == 1 or int(part.pkt_offsets[-1]) <= limit)
    joined = FlowTable.concat(parts)
    assert joined.summary.equals(table.summary)
    for name in ("pkt_offsets", "pkt_ts", "pkt_size", "msg_offsets", "msg_len", "msg_type"):
        assert np.array_equal(getattr(joined, name), getattr(table, name)), name
    assert joined.payload_prefixes == table.payload_prefixes
    assert list(_pipeline.split_table(table, max_packets=10**9, max_flows=10**9)) == [table]


def test_scoring_in_small_blocks_gives_the_same_rows(
    small_capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, report = triage_rows(small_capture)
    monkeypatch.setattr(_pipeline, "MAX_BLOCK_FLOWS", 7)
    monkeypatch.setattr(_pipeline, "MAX_BLOCK_PACKETS", 64)
    blocks, _ = triage_rows(small_capture)
    assert whole.height > 14 and blocks.equals(whole)
    result = triage_capture(small_capture)  # the UI's path: tables and rows stay aligned
    assert result.rows.equals(whole) and len(result.table) == whole.height
    assert result.table.summary["src"].to_list() == whole["src"].to_list()
    assert report.packets == result.report.packets


def test_model_is_loaded_once_per_version(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(resources.models_dir() / resources.DEFAULT_MODEL_NAME, folder)
    first = _pipeline.cached_model(folder)
    assert _pipeline.cached_model(str(folder)) is first
    meta = folder / "metadata.json"
    meta.write_text(meta.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # a new version
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 10**9))
    second = _pipeline.cached_model(folder)
    assert second is not first and second.binary_features == first.binary_features


def test_live_status_names_packets_the_flow_cache_and_drops_only_when_there_are_some() -> None:
    from minerscope.triage import live_status

    assert live_status(12345, 321, 0) == "12,345 pkts · 321 open flows"
    assert live_status(12345, 321, 7) == "12,345 pkts · 321 open flows · 7 dropped"
    assert live_status(5, None, 0) == "5 pkts"
    assert live_status(5, 1, 0) == "5 pkts · 1 open flow"
