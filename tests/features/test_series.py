"""Feature values on hand-built flow tables, checked against plain numpy/scipy computations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from minerscope.features import series
from minerscope.features.schema import FEATURE_NAMES
from minerscope.features.synthetic import synthetic_table, table_from_messages
from minerscope.features.windows import WHOLE_FLOW, extract_features

RNG = np.random.default_rng(7)
T0 = 1_700_000_000.0


def _irregular_flow(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.exponential(3.0, n))
    sizes = rng.integers(40, 1500, n).astype(np.float64)
    dirs = rng.integers(0, 2, n).astype(np.float64)
    return ts, sizes, dirs


def _whole(table_flows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> pl.DataFrame:
    return extract_features(table_from_messages(table_flows), window_s=None, whole_flow=True)


def test_columns_are_the_schema_in_order_as_float32() -> None:
    frame = _whole([_irregular_flow(30, 1)])
    assert frame.columns == ["flow_id", "window", "window_start", "window_end", *FEATURE_NAMES]
    assert all(frame.schema[name] == pl.Float32 for name in FEATURE_NAMES)


def test_size_statistics_match_numpy_and_scipy() -> None:
    flows = [_irregular_flow(n, seed) for seed, n in enumerate((25, 60, 7))]
    frame = _whole(flows)
    for i, (_, sizes, dirs) in enumerate(flows):
        row = frame.row(i, named=True)
        for direction, mask in (("bidir", np.ones_like(dirs, bool)), ("c2s", dirs == 0), ("s2c", dirs == 1)):
            x = sizes[mask]
            got = {
                k: row[f"{direction}_msg_size_{k}_bytes"]
                for k in ("mean", "std", "min", "max", "sum", "p10", "p50", "p90")
            }
            assert got["mean"] == pytest.approx(x.mean(), rel=1e-5)
            assert got["std"] == pytest.approx(x.std(), rel=1e-5)
            assert got["min"] == x.min() and got["max"] == x.max()
            assert got["sum"] == pytest.approx(x.sum(), rel=1e-6)
            for q in (10, 50, 90):
                assert got[f"p{q}"] == pytest.approx(np.quantile(x, q / 100), rel=1e-5), (direction, q)
            if x.shape[0] > 3:
                assert row[f"{direction}_msg_size_skew_ratio"] == pytest.approx(
                    stats.skew(x), rel=1e-4, abs=1e-5
                )
                assert row[f"{direction}_msg_size_kurt_ratio"] == pytest.approx(
                    stats.kurtosis(x), rel=1e-4, abs=1e-5
                )
            assert row[f"{direction}_msg_count"] == x.shape[0]
            assert row[f"{direction}_msg_size_share_small_ratio"] == pytest.approx(
                (x <= 128).mean(), rel=1e-6
            )


def test_inter_arrival_statistics_and_autocorrelation() -> None:
    ts, sizes, dirs = _irregular_flow(80, 3)
    row = _whole([(ts, sizes, dirs)]).row(0, named=True)
    iat = np.diff(ts)
    assert row["bidir_msg_iat_mean_s"] == pytest.approx(iat.mean(), rel=1e-5)
    assert row["bidir_msg_iat_p75_s"] == pytest.approx(np.quantile(iat, 0.75), rel=1e-5)
    d = iat - iat.mean()
    for lag in (1, 2, 3):
        expected = (d[:-lag] * d[lag:]).sum() / (d * d).sum()
        assert row[f"bidir_msg_iat_acf{lag}_ratio"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # trend: least-squares slope against the position scaled to 0..1
    pos = np.arange(iat.shape[0]) / (iat.shape[0] - 1)
    assert row["bidir_msg_iat_trend_s"] == pytest.approx(np.polyfit(pos, iat, 1)[0], rel=1e-4, abs=1e-6)
    c2s_ts = ts[dirs == 0]
    assert row["c2s_msg_iat_max_s"] == pytest.approx(np.diff(c2s_ts).max(), rel=1e-5)


def test_entropy_of_size_histogram() -> None:
    sizes = np.array([100.0] * 10 + [1000.0] * 10)  # two log2 bins, equally full -> 1 bit
    ts = T0 + np.arange(20.0)
    row = _whole([(ts, sizes, np.zeros(20))]).row(0, named=True)
    assert row["c2s_msg_size_entropy_bits"] == pytest.approx(1.0)
    constant = _whole([(ts, np.full(20, 300.0), np.zeros(20))]).row(0, named=True)
    assert constant["c2s_msg_size_entropy_bits"] == pytest.approx(0.0)
    assert np.isnan(constant["c2s_msg_size_skew_ratio"])  # undefined, not zero


@pytest.mark.parametrize("period", [10.0, 30.0, 60.0])
def test_period_of_a_perfectly_periodic_series(period: float) -> None:
    n = int(300 / period) + 1  # one 300 s window: bins of 300/BINS s
    ts = T0 + np.arange(n) * period
    row = _whole([(ts, np.full(n, 300.0), np.ones(n))]).row(0, named=True)
    width = max(300 / series.BINS, series.MIN_BIN_S)
    assert row["s2c_iat_period_s"] == pytest.approx(period, abs=width)
    assert row["s2c_iat_period_strength_ratio"] > 0.5
    assert row["s2c_iat_acf_peak_lag_s"] == pytest.approx(period, abs=width)
    assert row["s2c_iat_acf_peak_ratio"] > 0.3
    assert row["s2c_msg_iat_std_s"] == pytest.approx(0.0, abs=1e-4)


def test_random_series_has_weak_periodicity() -> None:
    rng = np.random.default_rng(11)
    ts = T0 + np.sort(rng.uniform(0, 300, 30))
    row = _whole([(ts, np.full(30, 300.0), np.ones(30))]).row(0, named=True)
    periodic = _whole([(T0 + np.arange(30) * 10.0, np.full(30, 300.0), np.ones(30))]).row(0, named=True)
    assert row["s2c_iat_period_strength_ratio"] < periodic["s2c_iat_period_strength_ratio"] / 2
    assert row["s2c_iat_acf_peak_ratio"] < periodic["s2c_iat_acf_peak_ratio"]


def test_request_response_and_unsolicited_pushes() -> None:
    # three submits answered after 0.1 s, two unsolicited server pushes
    ts = T0 + np.array([0.0, 0.1, 10.0, 10.1, 20.0, 30.0, 30.1, 40.0])
    dirs = np.array([0, 1, 0, 1, 1, 0, 1, 1.0])
    sizes = np.array([180, 50, 170, 50, 300, 175, 50, 300.0])
    row = _whole([(ts, sizes, dirs)]).row(0, named=True)
    assert row["bidir_reqresp_count"] == 3
    assert row["bidir_reqresp_delay_mean_s"] == pytest.approx(0.1, rel=1e-3)
    assert row["s2c_unsolicited_count"] == 2
    assert row["s2c_unsolicited_share_ratio"] == pytest.approx(2 / 5)
    assert row["bidir_dir_changes_count"] == 5
    assert row["s2c_run_max_count"] == 2
    assert row["bidir_msg1_size_bytes"] == 180 and row["bidir_msg2_dir_flag"] == 1
    assert row["bidir_msg8_size_bytes"] == 300
    assert row["bidir_burst_count"] == 5  # messages (and ACKs) closer than 0.5 s share a burst


def test_packet_flags_and_symmetry() -> None:
    ts = T0 + np.arange(10.0)
    dirs = np.array([0, 1] * 5, np.float64)
    row = _whole([(ts, np.full(10, 100.0), dirs)]).row(0, named=True)
    # every message packet has PSH|ACK, every answer is a bare ACK: half of each direction
    assert row["bidir_psh_share_ratio"] == pytest.approx(0.5)
    assert row["c2s_ackonly_share_ratio"] == pytest.approx(0.5)
    assert row["bidir_byte_symmetry_ratio"] == pytest.approx(0.5)
    assert row["bidir_pkt_count"] == 20
    assert row["bidir_duration_s"] == pytest.approx(9.001, abs=1e-3)


def test_tls_handshake_records_are_not_application_messages() -> None:
    ts = T0 + np.arange(6.0)
    sizes = np.array([512, 4000, 64, 200, 210, 220.0])
    dirs = np.array([0, 1, 0, 0, 1, 0.0])
    types = [np.array([22, 22, 20, 23, 23, 23])]
    table = table_from_messages([(ts, sizes, dirs)], msg_types=types)
    row = extract_features(table, window_s=None).row(0, named=True)
    assert row["bidir_msg_count"] == 3
    assert row["bidir_msg_size_max_bytes"] == 220
    assert row["bidir_msg1_size_bytes"] == 200


def test_vectorised_equals_one_flow_at_a_time() -> None:
    table, _ = synthetic_table(6, 6, seed=5)
    together = extract_features(table, window_s=300.0)
    for i in range(len(table)):
        p0, p1 = table.pkt_offsets[i], table.pkt_offsets[i + 1]
        m0, m1 = table.msg_offsets[i], table.msg_offsets[i + 1]
        single = type(table)(
            summary=table.summary[i : i + 1].with_columns(pl.lit(i, pl.Int64).alias("flow_id")),
            pkt_offsets=np.array([0, p1 - p0], np.int64),
            pkt_ts=table.pkt_ts[p0:p1],
            pkt_size=table.pkt_size[p0:p1],
            pkt_payload_len=table.pkt_payload_len[p0:p1],
            pkt_dir=table.pkt_dir[p0:p1],
            pkt_flags=table.pkt_flags[p0:p1],
            msg_offsets=np.array([0, m1 - m0], np.int64),
            msg_ts=table.msg_ts[m0:m1],
            msg_len=table.msg_len[m0:m1],
            msg_dir=table.msg_dir[m0:m1],
            msg_type=table.msg_type[m0:m1],
        )
        alone = extract_features(single, window_s=300.0)
        mine = together.filter(pl.col("flow_id") == i)
        assert alone.height == mine.height
        a = alone.select(FEATURE_NAMES).to_numpy()
        b = mine.select(FEATURE_NAMES).to_numpy()
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6, equal_nan=True)


def test_mining_and_benign_shapes_differ_where_expected() -> None:
    table, labels = synthetic_table(20, 20, seed=3)
    whole = extract_features(table, window_s=None)
    mining = whole.filter(pl.Series(labels == 1))
    benign = whole.filter(pl.Series(labels == 0))
    assert mining["bidir_msg_size_p90_bytes"].max() < benign["bidir_msg_size_p90_bytes"].min()
    assert mining["s2c_unsolicited_share_ratio"].median() > benign["s2c_unsolicited_share_ratio"].median()


def test_whole_flow_row_is_marked() -> None:
    frame = _whole([_irregular_flow(10, 2)])
    assert frame["window"].to_list() == [WHOLE_FLOW]


def test_binned_statistics_match_a_dense_computation() -> None:
    rng = np.random.default_rng(21)
    n = 30
    counts = rng.integers(0, 40, n)
    seg = np.repeat(np.arange(n), counts).astype(np.int64)
    first = rng.uniform(0, 100, n)
    span = rng.choice([0.0, 5.0, 90.0, 300.0, 2000.0], n)
    ts = np.concatenate(
        [np.sort(f + rng.uniform(0, s, c)) for f, s, c in zip(first, span, counts, strict=True)]
    )
    pcounts, pstarts = series.counts_starts(seg, n)
    bins = series.make_bins(
        series.seg_reduce(np.minimum, ts, pcounts, pstarts),
        series.seg_reduce(np.maximum, ts, pcounts, pstarts),
    )
    weights = rng.integers(40, 1500, ts.shape[0]).astype(np.float64)
    got = series.binned_stats(ts, seg, bins, weights)
    dense = series.binned(ts, seg, bins, weights).astype(np.float64)
    for i in range(n):
        row = dense[i, : bins.used[i]]
        if counts[i] == 0:
            continue
        assert got["mean"][i] == pytest.approx(row.mean())
        assert got["std"][i] == pytest.approx(row.std(), abs=1e-6)
        assert got["max"][i] == pytest.approx(row.max())
        assert got["share_empty"][i] == pytest.approx((row == 0).mean())
        d = row - row.mean()
        if row.shape[0] > 2 and (d * d).sum() > 1e-9:
            assert got["acf1"][i] == pytest.approx((d[:-1] * d[1:]).sum() / (d * d).sum(), abs=1e-6)


def test_one_sided_and_single_message_flows_are_defined() -> None:
    one_way = (T0 + np.arange(5.0), np.full(5, 100.0), np.zeros(5))
    single = (np.array([T0]), np.array([64.0]), np.array([1.0]))
    frame = _whole([one_way, single])
    a, b = frame.row(0, named=True), frame.row(1, named=True)
    assert a["s2c_msg_count"] == 0 and np.isnan(a["s2c_msg_size_mean_bytes"])
    assert a["c2s_msg_size_mean_bytes"] == 100
    assert b["bidir_msg_count"] == 1 and np.isnan(b["bidir_msg_iat_mean_s"])
    assert b["s2c_unsolicited_count"] == 1
