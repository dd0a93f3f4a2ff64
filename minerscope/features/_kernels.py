"""Compiled per-segment kernels for :mod:`minerscope.features.series`.

Why: the numpy formulation makes one full pass (plus temporaries) over the concatenated
series for every moment; this kernel walks each segment once and yields the sum, the
central moments and the extremes together. It adds the values in the same order as
``np.bincount`` (element order, float64, no fast-math), so the results are the same
numbers the shipped model was trained on. ``cache=True`` keeps the compile a one-off.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@numba.njit(cache=True, nogil=True)
def _moments_kernel(x: F64, counts: I64, starts: I64) -> tuple[F64, F64, F64, F64, F64, F64, F64]:
    n = counts.shape[0]
    total = np.zeros(n)
    mean = np.full(n, np.nan)
    s2 = np.zeros(n)
    s3 = np.zeros(n)
    s4 = np.zeros(n)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    for i in range(n):
        c = counts[i]
        if c == 0:
            continue
        a = starts[i]
        t = 0.0
        mn = x[a]
        mx = x[a]
        for j in range(a, a + c):
            v = x[j]
            t += v
            mn = min(mn, v)
            mx = max(mx, v)
        total[i] = t
        mu = t / c
        mean[i] = mu
        lo[i] = mn
        hi[i] = mx
        q2 = 0.0
        q3 = 0.0
        q4 = 0.0
        for j in range(a, a + c):
            d = x[j] - mu
            d2 = d * d
            q2 += d2
            q3 += d2 * d
            q4 += d2 * d2
        s2[i] = q2
        s3[i] = q3
        s4[i] = q4
    return total, mean, s2, s3, s4, lo, hi


def moments(x: F64, counts: I64, starts: I64) -> tuple[F64, F64, F64, F64, F64, F64, F64]:
    """Per segment (``x`` grouped by segment): sum, mean, and the sums of 2nd/3rd/4th
    powers of deviations from the mean, min, max (mean/min/max NaN when empty, sums 0)."""
    return _moments_kernel(np.ascontiguousarray(x, dtype=np.float64), counts, starts)


@numba.njit(cache=True, nogil=True)
def _first_strong_peak_kernel(values: npt.NDArray[np.floating], thr: npt.NDArray[np.floating]) -> I64:
    r, k = values.shape
    out = np.zeros(r, np.int64)
    for i in range(r):
        found = -1
        for j in range(k):
            v = values[i, j]
            if not np.isfinite(v) or not v >= thr[i]:  # NaN threshold: nothing is strong
                continue
            if j > 0 and not v >= values[i, j - 1]:
                continue
            if j < k - 1 and not v >= values[i, j + 1]:
                continue
            found = j
            break
        if found < 0:  # np.argmax semantics: first maximum, or the first NaN
            found = 0
            best = values[i, 0]
            if best == best:
                for j in range(1, k):
                    v = values[i, j]
                    if v != v:
                        found = j
                        break
                    if v > best:
                        best = v
                        found = j
        out[i] = found
    return out


def first_strong_peak(values: npt.NDArray[np.floating], share: float) -> npt.NDArray[np.intp]:
    """Per row, the first finite local maximum ``>= share * row max`` (else ``argmax``).

    The threshold is computed by numpy (``share * max`` in the array's own dtype) so the
    comparisons are exactly those of the vectorised original.
    """
    if values.shape[1] == 0 or values.shape[0] == 0:
        return np.zeros(values.shape[0], np.intp)
    thr = share * values.max(axis=1)
    return np.asarray(_first_strong_peak_kernel(np.ascontiguousarray(values), thr), dtype=np.intp)


@numba.njit(cache=True, nogil=True)
def _lagged_kernel(x: F64, mean: F64, counts: I64, starts: I64, lag: int) -> F64:
    n = counts.shape[0]
    out = np.zeros(n)
    for i in range(n):
        a = starts[i]
        mu = mean[i]
        acc = 0.0
        for j in range(a + lag, a + counts[i]):
            acc += (x[j - lag] - mu) * (x[j] - mu)
        out[i] = acc
    return out


def lagged_products(x: F64, mean: F64, counts: I64, starts: I64, lag: int) -> F64:
    """Per segment, the sum of ``d[j - lag] * d[j]`` (``d = x - mean``) inside the segment,
    added in element order like ``np.bincount``."""
    return _lagged_kernel(np.ascontiguousarray(x, dtype=np.float64), mean, counts, starts, lag)
