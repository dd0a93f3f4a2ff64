"""The compiled kernels give exactly the numbers of the numpy formulations they replace.

Why: feature values must not move (the shipped model was trained on them), so each kernel
is checked bit-for-bit against the original numpy expression on awkward inputs: empty
segments, single values, constants, ties, NaN and -inf rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from minerscope.features._kernels import first_strong_peak, lagged_products, moments
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
