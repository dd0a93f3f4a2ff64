"""The fused kernels and blocked passes give exactly the numbers of what they replaced.

Why: each of these was a speed-up of feature extraction (issue #4); the shipped model was
trained on the values, so every one is checked bit-for-bit against the numpy
formulation it replaced, on awkward inputs (empty segments, NaN, values on histogram
edges, block boundaries inside and around long segments).
"""

from __future__ import annotations

import numpy as np
import pytest

from minerscope.features import series
from minerscope.features._kernels import (
    SERIES_FIXED,
    TERMS_MAX,
    entropy_terms,
    gap_flag_stats,
    message_pairs,
    power_of_two_edges,
    segment_counts,
    segment_diffs,
    series_kernel,
)
from minerscope.features.series import counts_starts, seg_diff, seg_reduce, wsum


def _ragged(seed: int, n: int = 60, hi: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, hi, n)
    counts[[0, 9, n - 1]] = 0
    counts[3], counts[4], counts[5] = 1, 2, 3
    return np.repeat(np.arange(n), counts).astype(np.int64), counts


def _np_sorted(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """The original sort: one global sort of ``seg << 32 | float32 bits``."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    key = np.sort((seg.astype(np.uint64) << np.uint64(32)) | bits)
    return (key & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32).astype(np.float64)


def test_segment_counts_are_bincount_and_reject_bad_ids() -> None:
    seg, counts = _ragged(1)
    got_counts, got_starts = counts_starts(seg, 60)
    assert np.array_equal(got_counts, counts)
    assert np.array_equal(got_starts, np.concatenate([[0], np.cumsum(counts)[:-1]]))
    assert not segment_counts(np.array([0, 5], np.int64), 5)[0]
    with pytest.raises(ValueError):
        counts_starts(np.array([0, -1], np.int64), 3)
    empty_counts, empty_starts = counts_starts(np.zeros(0, np.int64), 4)
    assert np.array_equal(empty_counts, np.zeros(4)) and np.array_equal(empty_starts, np.zeros(4))


@pytest.mark.parametrize("block", [7, 64, 1 << 14])
def test_blocked_sort_is_the_global_key_sort(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    seg, _ = _ragged(2, hi=90)
    seg = np.concatenate([seg, np.full(300, 60, np.int64)])  # a segment longer than a block
    rng = np.random.default_rng(3)
    x = np.round(rng.lognormal(4.0, 2.0, seg.shape[0]), 1)
    x[::13] = np.nan  # NaN sorts last (float32 bits), as before
    x[::17] = 0.0
    monkeypatch.setattr(series, "SORT_BLOCK", block)
    got = series.sort_segments(x, *counts_starts(seg, 61))
    assert np.array_equal(got, _np_sorted(x, seg), equal_nan=True)
    assert np.array_equal(series.sort_within(x, seg), got, equal_nan=True)
    x = np.nan_to_num(x)  # (a NaN makes x.min() NaN: the key sort, as before)
    x[5] = -1.0  # a negative value: the float64 lexsort, unchanged
    assert np.array_equal(series.sort_segments(x, *counts_starts(seg, 61)), x[np.lexsort((x, seg))])


def test_segment_diffs_are_the_numpy_diffs() -> None:
    seg, _ = _ragged(4)
    ts = np.cumsum(np.random.default_rng(5).exponential(1.0, seg.shape[0]))
    want, _ = seg_diff(ts, seg)
    assert np.array_equal(segment_diffs(ts, *counts_starts(seg, 60)), want)


def test_power_of_two_bins_are_the_edge_count() -> None:
    edges = series.SIZE_EDGES
    assert power_of_two_edges(edges) == 3 and power_of_two_edges(series.IAT_EDGES) == 0
    assert power_of_two_edges(np.array([0.5, 1.0])) == 0 and power_of_two_edges(np.zeros(0)) == 0
    specials = [0.0, -0.0, -1.0, -8.0, np.inf, -np.inf, np.nan, 5e-324, 1e-310, 7.999999, 1e308]
    values = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf), specials])
    values = np.concatenate([values, np.random.default_rng(6).lognormal(5.0, 3.0, 3000)])
    # every value paired with every probe: entropy 0 exactly when both share a bin
    empty = np.zeros(0)
    for probe in [*edges, 1.0, np.inf, np.nan]:
        x = np.stack([values, np.full_like(values, probe)], axis=1).ravel()
        counts = np.full(values.shape[0], 2, np.int64)
        starts = np.arange(0, x.shape[0], 2, dtype=np.int64)

        def entropy(
            pow2_from: int, x: np.ndarray = x, c: np.ndarray = counts, s: np.ndarray = starts
        ) -> np.ndarray:
            args = (np.zeros(0, np.int64), empty, empty, entropy_terms(), pow2_from)
            return series_kernel(x, c, s, empty, edges, True, False, 0, *args)[7]

        assert np.array_equal(entropy(3), entropy(0))


def test_entropy_memo_matches_direct_terms_beyond_its_size() -> None:
    counts = np.array([TERMS_MAX - 1, TERMS_MAX, TERMS_MAX + 1, 3 * TERMS_MAX, 5], np.int64)
    seg = np.repeat(np.arange(counts.shape[0]), counts).astype(np.int64)
    x = np.random.default_rng(7).lognormal(5.0, 2.0, seg.shape[0])
    c, s = counts_starts(seg, counts.shape[0])
    empty = np.zeros(0)
    terms = entropy_terms()
    args = (np.zeros(0, np.int64), empty, empty)
    first = series_kernel(x, c, s, empty, series.SIZE_EDGES, True, False, 0, *args, terms, 0)[7]
    again = series_kernel(x, c, s, empty, series.SIZE_EDGES, True, False, 0, *args, terms, 0)[7]
    nb = series.SIZE_EDGES.shape[0] + 1
    hist = np.bincount(
        seg * nb + np.searchsorted(series.SIZE_EDGES, x, side="right"), minlength=seg.max() * nb + nb
    )
    full = np.flatnonzero(hist)
    p = hist[full] / c[full // nb].astype(np.float64)
    want = wsum(full // nb, -p * np.log2(p), counts.shape[0])
    assert np.array_equal(first, want) and np.array_equal(again, want)
    assert np.isfinite(terms).sum() > 0


def test_lags_beyond_three_keep_their_own_walk() -> None:
    seg, _ = _ragged(8)
    x = np.random.default_rng(9).exponential(1.0, seg.shape[0])
    c, s = counts_starts(seg, 60)
    empty = np.zeros(0)
    table = series_kernel(
        x, c, s, empty, empty, False, False, 5, np.zeros(0, np.int64), empty, empty, entropy_terms(), 0
    )
    mean = table[1]
    for lag in range(1, 6):
        d = x - mean[seg]
        same = seg[lag:] == seg[:-lag]
        want = wsum(seg[lag:][same], (d[:-lag] * d[lag:])[same], 60)
        assert np.array_equal(table[SERIES_FIXED + lag - 1], want), lag


def test_gap_and_flag_stats_match_numpy() -> None:
    seg, _ = _ragged(10)
    rng = np.random.default_rng(11)
    ts = np.cumsum(rng.exponential(20.0, seg.shape[0]))
    ts[40] = np.nan  # a NaN gap wins the maximum, as np.maximum.reduceat
    flags = rng.choice(np.array([0x02, 0x10, 0x18, 0x11, 0x04, 0x12], np.uint8), seg.shape[0])
    c, s = counts_starts(seg, 60)
    got = gap_flag_stats(ts, flags, c, s, series.IDLE_GAP_S)
    for row, bit in enumerate((0x02, 0x01, 0x04)):
        assert np.array_equal(got[row], wsum(seg, ((flags & bit) != 0).astype(np.float64), 60))
    with np.errstate(invalid="ignore"):
        gaps, gap_seg = seg_diff(ts, seg)
        assert np.array_equal(
            got[3], seg_reduce(np.maximum, gaps, *counts_starts(gap_seg, 60)), equal_nan=True
        )
        assert np.array_equal(got[4], wsum(gap_seg, (gaps > 30.0).astype(np.float64), 60))
        assert np.array_equal(got[5], wsum(gap_seg, (gaps > 60.0).astype(np.float64), 60))
        assert np.array_equal(got[6], wsum(gap_seg, np.where(gaps > series.IDLE_GAP_S, gaps, 0.0), 60))
    assert np.isnan(got[3][seg[40]])


def test_message_pairs_match_numpy() -> None:
    seg, _ = _ragged(12)
    rng = np.random.default_rng(13)
    m = seg.shape[0]
    ts = np.cumsum(rng.exponential(1.5, m))
    direction = rng.integers(0, 2, m).astype(np.uint8)
    direction[::23] = 2  # neither side
    length = rng.integers(0, 400, m).astype(np.float64)  # zeros: an undefined size ratio
    c, s = counts_starts(seg, 60)
    (changes, pairs, unsolicited), pair_seg, delays, ratio_seg, ratio = message_pairs(
        ts, length, direction, c, s, series.RESPONSE_WINDOW_S
    )
    same = seg[1:] == seg[:-1]
    changed = same & (direction[1:] != direction[:-1])
    assert np.array_equal(changes, np.bincount(seg[1:][changed], minlength=60).astype(np.float64))
    gap = ts[1:] - ts[:-1]
    pair = same & (direction[:-1] == 0) & (direction[1:] == 1) & (gap <= series.RESPONSE_WINDOW_S)
    assert np.array_equal(pair_seg, seg[1:][pair]) and np.array_equal(delays, gap[pair])
    assert np.array_equal(pairs, np.bincount(seg[1:][pair], minlength=60).astype(np.float64))
    want_ratio = series._div(length[1:][pair], length[:-1][pair])
    finite = np.isfinite(want_ratio)
    assert not finite.all()
    assert np.array_equal(ratio, want_ratio[finite]) and np.array_equal(ratio_seg, seg[1:][pair][finite])
    after_silence = np.ones(m, np.bool_)
    after_silence[1:] = ~same | (gap > series.RESPONSE_WINDOW_S)
    pushed = after_silence & (direction == 1)
    assert np.array_equal(unsolicited, np.bincount(seg[pushed], minlength=60).astype(np.float64))


def test_periodicity_blocks_do_not_change_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(14)
    counts = rng.integers(0, 80, 300)
    seg = np.repeat(np.arange(300), counts).astype(np.int64)
    period = rng.uniform(5.0, 60.0, 300)[seg]
    ts = np.arange(seg.shape[0]) * 0.0 + np.concatenate([np.arange(k) for k in counts]) * period
    ts = ts + rng.normal(0.0, 0.3, seg.shape[0]) + seg * 1e5
    ts = np.sort(ts)  # sorted overall, so also inside each segment
    c, s = counts_starts(seg, 300)
    first = seg_reduce(np.minimum, ts, c, s)
    last = seg_reduce(np.maximum, ts, c, s)
    bins = series.make_bins(first, last)
    events = c.astype(np.float64)
    whole = series.periodicity(ts, seg, bins, events)
    monkeypatch.setattr(series, "PERIOD_BLOCK_ROWS", 7)
    blocked = series.periodicity(ts, seg, bins, events)
    assert np.isfinite(whole["period"]).sum() > 100
    for name in whole:
        assert np.array_equal(whole[name], blocked[name], equal_nan=True), name


def test_bidirectional_sizes_merge_to_the_sort_of_the_union() -> None:
    seg, _ = _ragged(15, hi=60)
    rng = np.random.default_rng(16)
    x = np.round(rng.lognormal(5.0, 1.0, seg.shape[0]))  # ties across directions
    x[::11] = 0.0
    x[::29] = np.nan
    direction = rng.integers(0, 2, seg.shape[0])
    cs = counts_starts(seg, 60)
    parts = []
    for want in (0, 1):
        mine = direction == want
        part_cs = counts_starts(seg[mine], 60)
        parts.append((x[mine], series.sort_segments(x[mine], *part_cs), part_cs))
    union = series._sorted_union(x, cs, parts)
    assert np.array_equal(union, _np_sorted(x, seg), equal_nan=True)
    assert np.array_equal(union, series.sort_segments(x, *cs), equal_nan=True)
    # a value in neither direction, or a negative one (float64 lexsort): sorted afresh
    assert np.array_equal(
        series._sorted_union(x[:-1], counts_starts(seg[:-1], 60), parts),
        _np_sorted(x[:-1], seg[:-1]),
        equal_nan=True,
    )
    x_neg = np.nan_to_num(x)
    x_neg[direction == 0] *= -1.0
    neg_parts = []
    for want in (0, 1):
        mine = direction == want
        part_cs = counts_starts(seg[mine], 60)
        neg_parts.append((x_neg[mine], series.sort_segments(x_neg[mine], *part_cs), part_cs))
    got = series._sorted_union(x_neg, cs, neg_parts)
    assert np.array_equal(got, x_neg[np.lexsort((x_neg, seg))])
