"""Window splitting: which samples a flow yields, their bounds, and what goes in each."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from minerscope.errors import InputError
from minerscope.features.schema import FEATURE_NAMES
from minerscope.features.synthetic import synthetic_table, table_from_messages
from minerscope.features.windows import WHOLE_FLOW, extract_features
from minerscope.flows.records import FlowTable

T0 = 1_700_000_000.0


def _flow(times: list[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = T0 + np.asarray(times, np.float64)
    n = ts.shape[0]
    return ts, np.full(n, 200.0), (np.arange(n) % 2).astype(np.float64)


def test_windows_cover_the_flow_and_count_its_messages() -> None:
    times = np.arange(0.0, 1000.0, 10.0)  # 100 messages over 990 s
    frame = extract_features(table_from_messages([_flow(times)]), window_s=300.0)
    assert frame["window"].to_list() == [WHOLE_FLOW, 0, 1, 2, 3]
    windows = frame.filter(pl.col("window") >= 0)
    assert windows["bidir_msg_count"].to_list() == [30, 30, 30, 10]
    assert windows["window_start"].to_list() == pytest.approx([T0, T0 + 300, T0 + 600, T0 + 900])
    assert windows["window_end"].to_list()[:3] == pytest.approx([T0 + 300, T0 + 600, T0 + 900])
    assert windows["window_end"][3] == pytest.approx(T0 + 990.001)  # the flow's last packet
    whole = frame.filter(pl.col("window") == WHOLE_FLOW).row(0, named=True)
    assert whole["bidir_msg_count"] == 100
    assert whole["window_start"] == pytest.approx(T0) and whole["window_end"] == pytest.approx(T0 + 990.001)


def test_window_statistics_use_only_that_window() -> None:
    times = np.concatenate([np.arange(0.0, 300.0, 5.0), np.arange(300.0, 600.0, 50.0)])
    frame = extract_features(table_from_messages([_flow(times)]), window_s=300.0, whole_flow=False)
    first, second = frame.row(0, named=True), frame.row(1, named=True)
    assert first["bidir_msg_iat_mean_s"] == pytest.approx(5.0, rel=1e-5)
    assert second["bidir_msg_iat_mean_s"] == pytest.approx(50.0, rel=1e-5)


def test_silent_windows_yield_no_sample() -> None:
    times = [0.0, 10.0, 20.0, 700.0, 710.0]  # nothing in 300..600
    frame = extract_features(table_from_messages([_flow(times)]), window_s=300.0, whole_flow=False)
    assert frame["window"].to_list() == [0, 2]


def test_configurable_window_length() -> None:
    times = np.arange(0.0, 600.0, 10.0)
    frame = extract_features(table_from_messages([_flow(times)]), window_s=60.0, whole_flow=False)
    assert frame.height == 10
    assert set(frame["bidir_msg_count"].to_list()) == {6.0}


def test_flow_ids_come_from_the_table_and_rows_are_grouped_by_flow() -> None:
    table, _ = synthetic_table(3, 3, seed=1)
    table.summary = table.summary.with_columns((pl.col("flow_id") + 100).alias("flow_id"))
    frame = extract_features(table, window_s=300.0)
    ids = frame["flow_id"].to_list()
    assert set(ids) == set(range(100, 106))
    assert ids == sorted(ids)
    for flow_id in range(100, 106):
        assert frame.filter(pl.col("flow_id") == flow_id)["window"][0] == WHOLE_FLOW


def _with_packets(table: FlowTable, pick: np.ndarray, offsets: np.ndarray) -> FlowTable:
    """``table`` with its packet arrays indexed by ``pick`` (a permutation or a mask) and
    per-flow packet ``offsets`` to match; messages unchanged."""
    return dataclasses.replace(
        table,
        pkt_offsets=offsets,
        pkt_ts=table.pkt_ts[pick],
        pkt_size=table.pkt_size[pick],
        pkt_payload_len=table.pkt_payload_len[pick],
        pkt_dir=table.pkt_dir[pick],
        pkt_flags=table.pkt_flags[pick],
    )


def test_out_of_order_packets_are_put_in_time_order() -> None:
    table = table_from_messages([_flow(np.arange(0.0, 100.0, 5.0))])
    reference = extract_features(table, window_s=60.0)
    order = np.random.default_rng(3).permutation(table.pkt_ts.shape[0])
    shuffled = _with_packets(table, order, table.pkt_offsets)
    again = extract_features(shuffled, window_s=60.0)
    np.testing.assert_allclose(
        reference.select(FEATURE_NAMES).to_numpy(), again.select(FEATURE_NAMES).to_numpy(), equal_nan=True
    )


def test_a_few_swapped_packets_give_exactly_the_ordered_features() -> None:
    # the common capture case (neighbours swapped) takes the linear repair path; the
    # result must be the very same numbers as the ordered table's
    table, _ = synthetic_table(4, 4, seed=5)
    reference = extract_features(table, window_s=60.0)
    order = np.arange(table.pkt_ts.shape[0])
    rng = np.random.default_rng(8)
    inside = np.flatnonzero(np.isin(np.arange(order.shape[0] - 1) + 1, table.pkt_offsets, invert=True))
    swap = rng.choice(inside, 25, replace=False)
    order[swap], order[swap + 1] = order[swap + 1], order[swap].copy()
    shuffled = _with_packets(table, order, table.pkt_offsets)
    assert (np.diff(shuffled.pkt_ts) < 0).sum() >= 20
    again = extract_features(shuffled, window_s=60.0)
    assert again.equals(reference)


def test_windows_only_rows_follow_descending_flow_ids() -> None:
    table, _ = synthetic_table(3, 3, seed=4)
    table.summary = table.summary.with_columns((1000 - pl.col("flow_id")).alias("flow_id"))
    frame = extract_features(table, window_s=120.0, whole_flow=False)
    keys = list(zip(frame["flow_id"].to_list(), frame["window"].to_list(), strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert frame["window"].min() == 0


def test_many_flows_span_several_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    from minerscope.features import windows

    table, _ = synthetic_table(8, 8, seed=2)
    reference = extract_features(table, window_s=300.0)
    monkeypatch.setattr(windows, "CHUNK_SAMPLES", 5)  # force many small chunks
    chunked = extract_features(table, window_s=300.0)
    assert chunked.select("flow_id", "window").equals(reference.select("flow_id", "window"))
    np.testing.assert_allclose(
        reference.select(FEATURE_NAMES).to_numpy(),
        chunked.select(FEATURE_NAMES).to_numpy(),
        rtol=1e-5,
        equal_nan=True,
    )


def test_empty_table_and_bad_arguments() -> None:
    frame = extract_features(FlowTable.empty())
    assert frame.height == 0 and frame.columns[4:] == list(FEATURE_NAMES)
    with pytest.raises(InputError, match="positive"):
        extract_features(FlowTable.empty(), window_s=0)
    with pytest.raises(InputError, match="nothing to extract"):
        extract_features(FlowTable.empty(), window_s=None, whole_flow=False)


def test_messages_beyond_the_packets_get_their_windows() -> None:
    # the feature matrix is sized from the packet span; messages after a flow's last
    # packet open more windows than that, and must still get their own rows
    full = table_from_messages([_flow(np.arange(0.0, 900.0, 30.0)), _flow(np.arange(0.0, 50.0, 5.0))])
    keep = np.ones(full.pkt_ts.shape[0], bool)
    keep[: int(full.pkt_offsets[1])] = full.pkt_ts[: int(full.pkt_offsets[1])] < T0 + 10.0
    offsets = np.concatenate([[0], np.cumsum(np.add.reduceat(keep, full.pkt_offsets[:-1]))])
    table = _with_packets(full, keep, offsets.astype(np.int64))
    frame = extract_features(table, window_s=300.0, whole_flow=False)
    first = frame.filter(pl.col("flow_id") == int(full.summary["flow_id"][0]))
    assert first["window"].to_list() == [0, 1, 2]
    assert first["bidir_msg_count"].to_list() == [10.0, 10.0, 10.0]
    assert first["bidir_pkt_count"].to_list() == [float(keep[: int(full.pkt_offsets[1])].sum()), 0.0, 0.0]
    assert frame.height == 4


@pytest.mark.parametrize("whole_flow", [False, True])
def test_min_messages_leaves_out_exactly_the_quiet_samples(whole_flow: bool) -> None:
    """The rows a model trains on and scores (>= min_messages application messages), without
    computing the others: the same keys as filtering every row, the same values (to a float32
    rounding: a few quantiles sit on a rounding midpoint that the chunk's other samples move,
    as they do across chunks), on a real capture whose long flows span several windows."""
    from minerscope import resources
    from minerscope.flows.assemble import assemble_capture

    table = assemble_capture(str(resources.sample_capture()))[0]
    every = extract_features(table, window_s=300.0, whole_flow=whole_flow)
    for least in (1, 4, 40):
        expected = every.filter(pl.col("bidir_msg_count") >= least)
        got = extract_features(table, window_s=300.0, whole_flow=whole_flow, min_messages=least)
        assert 0 < got.height < every.height
        assert got.select("flow_id", "window", "window_start", "window_end").equals(
            expected.select("flow_id", "window", "window_start", "window_end")
        )
        assert got["bidir_msg_count"].min() >= least  # type: ignore[operator]
        np.testing.assert_allclose(
            got.select(FEATURE_NAMES).to_numpy(),
            expected.select(FEATURE_NAMES).to_numpy(),
            rtol=2e-7,
            equal_nan=True,
        )
    assert extract_features(table, window_s=300.0, whole_flow=whole_flow, min_messages=0).equals(every)
    assert extract_features(table, window_s=300.0, whole_flow=whole_flow, min_messages=10**6).height == 0
