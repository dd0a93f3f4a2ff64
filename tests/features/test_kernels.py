"""The compiled kernels give exactly the numbers of the numpy formulations they replace.

Why: feature values must not move (the shipped model was trained on them), so each kernel
is checked bit-for-bit against the original numpy expression on awkward inputs: empty
segments, single values, constants, ties, NaN and -inf rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import fft as scipy_fft

from minerscope.features import series
from minerscope.features._kernels import (
    SERIES_FIXED,
    entropy_terms,
    first_strong_peak,
    lagged_products,
    merge_keys,
    message_runs,
    moments,
    nearly_sorted_order,
    packet_sums,
    power_of_two_edges,
    series_kernel,
    split_messages,
    split_packets,
)
from minerscope.features.series import counts_starts, wsum


def _numpy_peak(values: np.ndarray, share: float) -> np.ndarray:
    top = values.max(axis=1, keepdims=True)
    left = np.concatenate([np.full((values.shape[0], 1), -np.inf), values[:, :-1]], axis=1)
    right = np.concatenate([values[:, 1:], np.full((values.shape[0], 1), -np.inf)], axis=1)
    strong = (values >= left) & (values >= right) & (values >= share * top) & np.isfinite(values)
    first = strong.argmax(axis=1)
    none = ~strong.any(axis=1)
    first[none] = values.argmax(axis=1)[none]
    return first


def test_moments_match_bincount_formulation() -> None:
    rng = np.random.default_rng(5)
    seg = np.sort(rng.integers(0, 40, 2000)).astype(np.int64)
    seg = seg[(seg != 7) & (seg != 39)]  # empty segments, including the last
    x = rng.lognormal(3.0, 2.0, seg.shape[0])
    x[seg == 3] = 12.5  # a constant segment
    n = 41
    counts, starts = counts_starts(seg, n)
    total, mean, s2, s3, s4, lo, hi = moments(x, counts, starts)
    assert np.array_equal(total, wsum(seg, x, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_mean = total / counts
    assert np.array_equal(mean, ref_mean, equal_nan=True)
    d = x - ref_mean[seg]
    assert np.array_equal(s2, wsum(seg, d * d, n))
    assert np.array_equal(s3, wsum(seg, d * d * d, n))
    assert np.array_equal(s4, wsum(seg, (d * d) * (d * d), n))
    for i in range(n):
        part = x[seg == i]
        if part.shape[0] == 0:
            assert np.isnan(lo[i]) and np.isnan(hi[i]) and total[i] == 0.0
        else:
            assert lo[i] == part.min() and hi[i] == part.max()
    assert s2[3] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_strong_peak_matches_numpy(dtype: type) -> None:
    rng = np.random.default_rng(11)
    values = rng.random((300, 65)).astype(dtype)
    values[5] = -np.inf  # nothing finite: argmax (first element)
    values[6] = 1.0  # flat: first element is a plateau peak
    values[7, :] = -1.0
    values[7, 30] = np.nan  # NaN: argmax returns the first NaN
    values[8, :10] = -np.inf
    values[9] = np.arange(65, dtype=dtype)  # rising: the last element
    values[10, ::7] = 5.0  # a pulse train: the first of equal peaks
    got = first_strong_peak(values, 0.8)
    with np.errstate(invalid="ignore"):
        want = _numpy_peak(values, 0.8)
    assert np.array_equal(got, want)
    assert got[10] == 0 and got[9] == 64 and got[7] == 30


def test_first_strong_peak_empty() -> None:
    assert first_strong_peak(np.zeros((0, 65)), 0.8).shape == (0,)


@pytest.mark.parametrize("lag", [1, 2, 3])
def test_lagged_products_match_bincount_formulation(lag: int) -> None:
    rng = np.random.default_rng(lag)
    seg = np.sort(rng.integers(0, 60, 500)).astype(np.int64)
    seg = seg[seg != 0]  # an empty first segment
    x = rng.exponential(2.0, seg.shape[0])
    counts, starts = counts_starts(seg, 60)
    _, mean, *_ = moments(x, counts, starts)
    d = x - mean[seg]
    same = seg[lag:] == seg[:-lag]
    want = wsum(seg[lag:][same], (d[:-lag] * d[lag:])[same], 60)
    got = lagged_products(x, mean, counts, starts, lag)
    assert np.array_equal(got, want)
    assert got[0] == 0.0


# --- the numpy formulations the fused kernels replaced (the pre-kernel series.py) -------


def _np_sort_within(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    key = np.sort((seg.astype(np.uint64) << np.uint64(32)) | bits)
    return (key & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32).astype(np.float64)


def _np_quantile(sorted_x: np.ndarray, counts: np.ndarray, starts: np.ndarray, q: float) -> np.ndarray:
    mask = counts > 0
    s_ok, c_ok = starts[mask], counts[mask]
    out = np.full(counts.shape[0], np.nan)
    pos = s_ok + q * (c_ok - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, s_ok + c_ok - 1)
    frac = pos - lo
    out[mask] = sorted_x[lo] * (1.0 - frac) + sorted_x[hi] * frac
    return out


def _np_entropy(x: np.ndarray, seg: np.ndarray, n: int, edges: np.ndarray) -> np.ndarray:
    cf = np.bincount(seg, minlength=n).astype(np.float64)
    nb = edges.shape[0] + 1
    hist = np.bincount(seg * nb + np.searchsorted(edges, x, side="right"), minlength=n * nb)
    full = np.flatnonzero(hist)
    owner = full // nb
    p = hist[full] / cf[owner]
    ent = wsum(owner, -p * np.log2(p), n)
    ent[cf == 0] = np.nan
    return ent


def _np_trend(x: np.ndarray, seg: np.ndarray, n: int) -> np.ndarray:
    counts, starts = counts_starts(seg, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = wsum(seg, x, n) / counts
        pos = (np.arange(x.shape[0]) - starts[seg]).astype(np.float64)
        r = pos / np.maximum(counts[seg] - 1, 1)
        rbar = wsum(seg, r, n) / counts
        dr = r - rbar[seg]
        num = wsum(seg, dr * (x - mean[seg]), n)
        den = wsum(seg, dr * dr, n)
        out = np.where(den != 0, num / den, np.nan)
    out[counts < 3] = np.nan
    return out


def _ragged(seed: int, n: int = 50, hi: int = 90) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, hi, n)
    counts[[0, 7, n - 1]] = 0  # empty segments, including the first and last
    counts[3], counts[4], counts[5] = 1, 2, 3
    return np.repeat(np.arange(n), counts).astype(np.int64), counts


def test_series_kernel_matches_the_numpy_statistics() -> None:
    seg, _ = _ragged(3)
    n = 50
    rng = np.random.default_rng(4)
    x = np.round(rng.lognormal(5.0, 1.5, seg.shape[0]))  # integer sizes: many ties
    x[seg == 10] = 300.0  # a constant segment
    x[seg == 11] = rng.exponential(2.0, int((seg == 11).sum()))  # fractional values
    edges = series.SIZE_EDGES
    counts, starts = counts_starts(seg, n)
    qs = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
    table = series_kernel(
        x, counts, starts, qs, edges, True, True, 3,
        np.array([0, 2], np.int64), np.array([128.0, 1024.0]), series.sort_within(x, seg),
        entropy_terms(), 0,
    )  # fmt: skip
    by_exponent = series_kernel(
        x, counts, starts, qs, edges, True, True, 3,
        np.array([0, 2], np.int64), np.array([128.0, 1024.0]), series.sort_within(x, seg),
        entropy_terms(), power_of_two_edges(edges),
    )  # fmt: skip
    assert power_of_two_edges(edges) == 3
    assert np.array_equal(table, by_exponent, equal_nan=True)
    total, mean, s2, s3, s4, lo, hi = moments(x, counts, starts)
    for row, want in enumerate((total, mean, s2, s3, s4, lo, hi)):
        assert np.array_equal(table[row], want, equal_nan=True), row
    assert np.array_equal(table[7], _np_entropy(x, seg, n, edges), equal_nan=True)
    assert np.array_equal(table[8], _np_trend(x, seg, n), equal_nan=True)
    sorted_x = _np_sort_within(x, seg)
    assert np.array_equal(series.sort_within(x, seg), sorted_x)
    for k, q in enumerate(qs):
        assert np.array_equal(
            table[SERIES_FIXED + k], _np_quantile(sorted_x, counts, starts, q), equal_nan=True
        )
    for lag in (1, 2, 3):
        assert np.array_equal(table[SERIES_FIXED + 4 + lag], lagged_products(x, mean, counts, starts, lag))
    small = wsum(seg, (x <= 128.0).astype(np.float64), n)
    large = wsum(seg, (x >= 1024.0).astype(np.float64), n)
    assert np.array_equal(table[SERIES_FIXED + 8], small)
    assert np.array_equal(table[SERIES_FIXED + 9], large)
    assert table[SERIES_FIXED + 2, 4] == x[seg == 4].mean()  # median of two values


def test_inter_arrival_entropy_edges_and_nan_bin() -> None:
    seg, _ = _ragged(5, hi=30)
    x = np.random.default_rng(6).exponential(1.0, seg.shape[0]) ** 3
    x[::17] = series.IAT_EDGES[3]  # values exactly on an edge
    counts, starts = counts_starts(seg, 50)
    empty = np.zeros(0)
    table = series_kernel(x, counts, starts, empty, series.IAT_EDGES, True, False, 0,
                          np.zeros(0, np.int64), empty, empty, entropy_terms(), 0)  # fmt: skip
    assert power_of_two_edges(series.IAT_EDGES) == 0
    assert np.array_equal(table[7], _np_entropy(x, seg, 50, series.IAT_EDGES), equal_nan=True)


def _np_binned_stats(
    ts: np.ndarray, seg: np.ndarray, bins: series.Bins, weights: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The pre-kernel binned_stats (runs of equal bin index, numpy sums)."""
    n = bins.t0.shape[0]
    k = bins.used.astype(np.float64)
    idx = np.clip(np.floor((ts - bins.t0[seg]) / bins.width[seg]).astype(np.int64), 0, series.BINS - 1)
    flat = seg * series.BINS + idx
    start = np.ones(flat.shape[0], np.bool_)
    start[1:] = flat[1:] != flat[:-1]
    first = np.flatnonzero(start)
    values = np.add.reduceat(np.ones(flat.shape[0]) if weights is None else weights, first)
    b_flat = flat[first]
    b_seg = b_flat // series.BINS
    total = wsum(b_seg, values, n)
    sq = wsum(b_seg, values * values, n)
    nonempty = np.bincount(b_seg, minlength=n).astype(np.float64)
    mu = total / k
    ss = np.maximum(sq - k * mu * mu, 0.0)
    std = np.sqrt(ss / k)
    b_counts, b_starts = counts_starts(b_seg, n)
    vmax = series.seg_reduce(np.maximum, values, b_counts, b_starts, empty=0.0)
    adjacent = (b_flat[1:] == b_flat[:-1] + 1) & (b_seg[1:] == b_seg[:-1])
    prod = wsum(b_seg[1:][adjacent], (values[1:] * values[:-1])[adjacent], n)
    b_idx = b_flat - b_seg * series.BINS
    m_first = wsum(b_seg[b_idx == 0], values[b_idx == 0], n)
    at_last = b_idx == bins.used[b_seg] - 1
    m_last = wsum(b_seg[at_last], values[at_last], n)
    lagged = prod - mu * ((total - m_last) + (total - m_first)) + (k - 1) * mu * mu
    acf1 = np.full(n, np.nan)
    ok = (bins.used > 2) & (ss > 1e-12)
    acf1[ok] = lagged[ok] / ss[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.where(mu > 0, std / np.where(mu > 0, mu, 1.0), np.nan)
    return {"mean": mu, "std": std, "max": vmax, "cv": cv, "share_empty": (k - nonempty) / k, "acf1": acf1}


def _timed_segments(seed: int) -> tuple[np.ndarray, np.ndarray, series.Bins]:
    rng = np.random.default_rng(seed)
    n = 60
    counts = rng.integers(0, 200, n)
    counts[[0, 9]] = 0
    seg = np.repeat(np.arange(n), counts).astype(np.int64)
    first = rng.uniform(1.7e9, 1.7e9 + 100, n)
    span = rng.choice([0.0, 3.0, 5.0, 90.0, 300.0, 2000.0], n)
    period = rng.choice([0.0, 2.0, 7.3, 30.0], n)
    parts = []
    for f, s, c, p in zip(first, span, counts, period, strict=True):
        t = f + (np.arange(c) * p % max(s, 1e-9) if p else rng.uniform(0, s, c))
        parts.append(np.sort(t + rng.normal(0, 0.05, c) * (p > 0)))
    ts = np.concatenate(parts)
    pc, ps = counts_starts(seg, n)
    bins = series.make_bins(
        series.seg_reduce(np.minimum, ts, pc, ps), series.seg_reduce(np.maximum, ts, pc, ps)
    )
    return ts, seg, bins


def test_binned_pair_matches_the_numpy_runs() -> None:
    ts, seg, bins = _timed_segments(8)
    weights = np.random.default_rng(9).integers(40, 1500, ts.shape[0]).astype(np.float64)
    pkts, weighted = series.binned_pair(ts, seg, bins, weights)
    for got, want in (
        (pkts, _np_binned_stats(ts, seg, bins, None)),
        (weighted, _np_binned_stats(ts, seg, bins, weights)),
    ):
        for key, values in want.items():
            assert np.array_equal(got[key], values, equal_nan=True), key


def _np_periodicity(
    ts: np.ndarray, seg: np.ndarray, bins: series.Bins, events: np.ndarray
) -> dict[str, np.ndarray]:
    """The pre-kernel periodicity: dense bins, numpy masks, both FFTs on every row."""
    n = bins.t0.shape[0]
    out = {name: np.full(n, np.nan) for name in ("period", "period_strength", "acf_peak_lag", "acf_peak")}
    rows = np.flatnonzero(events >= 4)
    if rows.shape[0] == 0:
        return out
    m = series.binned(ts, seg, bins, rows=rows)
    used, width, r = bins.used[rows], bins.width[rows], rows.shape[0]
    used_mask = np.arange(series.BINS)[None, :] < used[:, None]
    mu = m.sum(axis=1) / used
    xc = np.where(used_mask, m - mu[:, None].astype(np.float32), np.float32(0.0))
    padded = scipy_fft.rfft(xc, n=2 * series.BINS, axis=1)
    power2 = (padded.real**2 + padded.imag**2).astype(np.float32)
    power = power2[:, ::2]
    freq_idx = np.arange(power.shape[1])[None, :]
    kmin = np.ceil(2.0 * series.BINS / used.astype(np.float64))[:, None]
    allowed = (freq_idx >= np.maximum(kmin, 1)) & (freq_idx >= 1)
    p_allowed = np.where(allowed, power, np.float32(-1.0))
    best = first_strong_peak(p_allowed, series.PEAK_SHARE)
    idx = np.arange(r)
    nondc = power[:, 1:].sum(axis=1)
    valid = (nondc > 1e-12) & (p_allowed[idx, best] > 0)
    harmonics = (freq_idx >= 1) & (freq_idx % np.maximum(best, 1)[:, None] == 0)
    harmonic_power = np.where(harmonics, power, np.float32(0.0)).sum(axis=1)
    period, strength = np.full(r, np.nan), np.full(r, np.nan)
    period[valid] = series.BINS * width[valid] / best[valid]
    strength[valid] = harmonic_power[valid] / nondc[valid]
    acov = scipy_fft.irfft(power2, n=2 * series.BINS, axis=1)[:, : series.BINS]
    raw = acov / np.where(acov[:, :1] > 1e-12, acov[:, :1], np.inf)
    smooth = raw.copy()
    smooth[:, 1:-1] = raw[:, :-2] + raw[:, 1:-1] + raw[:, 2:]
    lag_idx = np.arange(series.BINS)[None, :]
    lag_ok = (lag_idx >= 2) & (lag_idx <= (used // 2)[:, None])
    acf = np.where(lag_ok, np.clip(smooth, -1.0, 1.0), -np.inf)
    peak = first_strong_peak(acf, series.PEAK_SHARE)
    peak_val = acf[idx, peak]
    avalid = np.isfinite(peak_val) & (acov[:, 0] > 1e-12)
    lag_s, acf_peak = np.full(r, np.nan), np.full(r, np.nan)
    lag_s[avalid] = peak[avalid] * width[avalid]
    acf_peak[avalid] = peak_val[avalid]
    for name, values in (
        ("period", period),
        ("period_strength", strength),
        ("acf_peak_lag", lag_s),
        ("acf_peak", acf_peak),
    ):
        out[name][rows] = values
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_periodicity_matches_the_dense_numpy_formulation(seed: int) -> None:
    ts, seg, bins = _timed_segments(seed)
    events = np.bincount(seg, minlength=bins.t0.shape[0]).astype(np.float64)
    got = series.periodicity(ts, seg, bins, events)
    want = _np_periodicity(ts, seg, bins, events)
    assert np.isfinite(want["period"]).sum() > 5 and np.isfinite(want["acf_peak"]).sum() > 5
    for name in want:
        assert np.array_equal(got[name], want[name], equal_nan=True), name


def _np_run_max(values: np.ndarray, seg: np.ndarray, n: int, select: np.ndarray) -> np.ndarray:
    out = np.zeros(n)
    change = np.ones(values.shape[0], np.bool_)
    change[1:] = (values[1:] != values[:-1]) | (seg[1:] != seg[:-1])
    run_len = np.bincount(np.cumsum(change) - 1).astype(np.float64)
    keep = select[change]
    np.maximum.at(out, seg[change][keep], run_len[keep])
    return out


def test_message_runs_and_packet_sums_match_numpy() -> None:
    seg, _ = _ragged(12, hi=40)
    rng = np.random.default_rng(13)
    direction = (rng.random(seg.shape[0]) < 0.3).astype(np.uint8)
    length = rng.integers(40, 300, seg.shape[0]).astype(np.float64)
    counts, starts = counts_starts(seg, 50)
    runs = message_runs(direction, length <= 128, counts, starts)
    assert np.array_equal(runs[0], _np_run_max(direction, seg, 50, direction == 0))
    assert np.array_equal(runs[1], _np_run_max(direction, seg, 50, direction == 1))
    assert np.array_equal(runs[2], _np_run_max(length <= 128, seg, 50, length <= 128))
    flags = rng.choice(np.array([0x02, 0x10, 0x18, 0x11, 0x04], np.uint8), seg.shape[0])
    payload = np.where(rng.random(seg.shape[0]) < 0.5, 0.0, length)
    pkts, wire, pay, psh, ack = packet_sums(length, payload, flags, counts, starts)
    assert np.array_equal(pkts, counts.astype(np.float64))
    assert np.array_equal(wire, wsum(seg, length, 50))
    assert np.array_equal(pay, wsum(seg, payload, 50))
    assert np.array_equal(psh, wsum(seg, ((flags & 0x08) != 0).astype(np.float64), 50))
    assert np.array_equal(ack, wsum(seg, ((flags == 0x10) & (payload == 0)).astype(np.float64), 50))


def test_direction_split_keeps_order() -> None:
    rng = np.random.default_rng(14)
    m = 500
    direction = rng.integers(0, 2, m).astype(np.uint8)
    ts, seg = np.cumsum(rng.random(m)), np.sort(rng.integers(0, 20, m)).astype(np.int64)
    wire, pay = rng.random(m), rng.random(m)
    flags = rng.integers(0, 256, m).astype(np.uint8)
    direction[::50] = 2  # neither client nor server: in no split
    for want in (0, 1):
        mask = direction == want
        *got_p, p_counts = split_packets(direction, want, ts, seg, 21, wire, pay, flags)
        for got, ref in zip(got_p, (ts, wire, pay, flags), strict=True):
            assert np.array_equal(got, ref[mask])
        assert np.array_equal(p_counts, np.bincount(seg[mask], minlength=21))
        *got_m, m_counts = split_messages(direction, want, ts, seg, 21, wire)
        for got, ref in zip(got_m, (ts, wire), strict=True):
            assert np.array_equal(got, ref[mask])
        assert np.array_equal(m_counts, p_counts) and m_counts[20] == 0


def test_merge_keys_is_unique_and_searchsorted() -> None:
    rng = np.random.default_rng(15)
    a = np.sort(rng.integers(0, 300, 700))
    b = np.sort(rng.integers(100, 500, 200))
    ok, keys, ia, ib = merge_keys(a, b)
    want = np.unique(np.concatenate([a, b]))
    assert ok and np.array_equal(keys, want)
    assert np.array_equal(ia, np.searchsorted(want, a)) and np.array_equal(ib, np.searchsorted(want, b))
    assert not merge_keys(a[::-1].copy(), b)[0]  # unsorted input: the caller falls back
    ok, keys, ia, ib = merge_keys(np.zeros(0, np.int64), b)
    assert ok and np.array_equal(keys, np.unique(b)) and ia.shape == (0,)


def test_nearly_sorted_order_is_the_stable_lexsort() -> None:
    rng = np.random.default_rng(16)
    flow = np.sort(rng.integers(0, 30, 2000)).astype(np.int64)
    ts = np.round(rng.uniform(0, 100, 2000), 1)  # ties: stability matters
    ts = ts[np.lexsort((ts, flow))]
    swap = rng.choice(1999, 60, replace=False)
    ts[swap], ts[swap + 1] = ts[swap + 1], ts[swap].copy()
    done, order = nearly_sorted_order(flow, ts, 10 * ts.shape[0])
    assert done and np.array_equal(order, np.lexsort((ts, flow)))
    assert not nearly_sorted_order(flow, ts[::-1].copy(), 100)[0]  # over budget: fall back
    with_nan = ts.copy()
    with_nan[5] = np.nan
    assert not nearly_sorted_order(flow, with_nan, 10**6)[0]


def test_burst_stats_match_the_numpy_runs() -> None:
    ts, seg, _ = _timed_segments(21)
    n = int(seg.max()) + 3  # trailing empty segments
    wire = np.random.default_rng(22).integers(40, 1500, ts.shape[0]).astype(np.float64)
    new = np.ones(ts.shape[0], np.bool_)
    new[1:] = (seg[1:] != seg[:-1]) | ((ts[1:] - ts[:-1]) > series.BURST_GAP_S)
    burst_id = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    b_pkts = np.bincount(burst_id).astype(np.float64)
    b_bytes = np.bincount(burst_id, weights=wire)
    b_dur = np.maximum.reduceat(ts, starts) - ts[starts]
    b_counts, b_starts = counts_starts(seg[starts], n)
    counts, pstarts = counts_starts(seg, n)
    got = series._bursts(ts, wire, counts, pstarts, np.ones(n))
    assert np.array_equal(got["bidir_burst_count"], b_counts.astype(np.float64))
    for name, values in (("pkts", b_pkts), ("bytes", b_bytes), ("duration", b_dur)):
        _, mean, _, _, _, _, hi = moments(values, b_counts, b_starts)
        unit = {"pkts": "count", "bytes": "bytes", "duration": "s"}[name]
        assert np.array_equal(got[f"bidir_burst_{name}_mean_{unit}"], mean, equal_nan=True), name
        assert np.array_equal(got[f"bidir_burst_{name}_max_{unit}"], hi, equal_nan=True), name


def test_first_messages_pad_with_nan() -> None:
    flow = np.array([0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], np.int64)
    length = np.arange(12, dtype=np.float64) + 100
    direction = (np.arange(12) % 2).astype(np.uint8)
    sizes, dirs = series.first_messages(length, direction, flow, 4)
    assert sizes.shape == (4, 8)
    assert np.array_equal(sizes[0, :2], [100.0, 101.0]) and np.isnan(sizes[0, 2:]).all()
    assert np.isnan(sizes[1]).all() and np.isnan(sizes[3]).all()
    assert np.array_equal(sizes[2], length[2:10]) and np.array_equal(dirs[2], direction[2:10])
