"""Compiled per-segment kernels for :mod:`minerscope.features.series` and ``windows``.

Why: the numpy formulation makes one full pass (plus temporaries) over the concatenated
series for every statistic, mask and direction; these kernels walk each segment once and
yield everything that pass needs together. They add the values in the same order as the
numpy code they replaced (``np.bincount``: element order, float64; ``np.add.reduce`` of
float32 rows: numpy's pairwise order; no fast-math), so the results are the same numbers
the shipped model was trained on, bit for bit. ``cache=True`` keeps the compile a
one-off (see ``bench/bench_features.py`` for the cold-start figure).
"""

from __future__ import annotations

from typing import Any

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


# --- fused per-series statistics -------------------------------------------------------
#
# One walk over each segment replaces a dozen numpy passes (moments, a global sort for the
# quantiles, a histogram for the entropy, the trend and lag sums, the share counts). Every
# accumulation runs in element order from 0.0, exactly like the ``np.bincount`` it stands
# for, so the values do not move.

SERIES_FIXED = 9
"""Leading rows of :func:`series_kernel`'s output: sum, mean, s2, s3, s4, min, max,
entropy, trend; then one row per quantile, per lag, per share."""

SHARE_OPS = {"le": 0, "lt": 1, "ge": 2, "gt": 3}


@numba.njit(cache=True, nogil=True)
def _hit(v: float, op: int, thr: float) -> bool:
    if op == 0:
        return v <= thr
    if op == 1:
        return v < thr
    if op == 2:
        return v >= thr
    return v > thr


@numba.njit(cache=True, nogil=True)
def sort_keys(x: F64, seg: I64) -> npt.NDArray[np.uint64]:
    """``seg << 32 | float32 bits of x``: sorting these sorts ``x`` (as float32) inside
    each segment, for a non-negative ``x`` and ``seg < 2**31`` (the bit pattern of a
    non-negative float32 orders like the float)."""
    m = x.shape[0]
    x32 = np.empty(m, np.float32)
    for i in range(m):
        x32[i] = x[i]
    bits = x32.view(np.uint32)
    key = np.empty(m, np.uint64)
    for i in range(m):
        key[i] = (np.uint64(seg[i]) << np.uint64(32)) | np.uint64(bits[i])
    return key


@numba.njit(cache=True, nogil=True)
def key_values(key: npt.NDArray[np.uint64]) -> F64:
    """The float32 values held in the low half of :func:`sort_keys` keys, as float64."""
    m = key.shape[0]
    bits = np.empty(m, np.uint32)
    for i in range(m):
        bits[i] = np.uint32(key[i] & np.uint64(0xFFFFFFFF))
    x32 = bits.view(np.float32)
    out = np.empty(m)
    for i in range(m):
        out[i] = x32[i]
    return out


@numba.njit(cache=True, nogil=True)
def series_kernel(
    x: F64,
    counts: I64,
    starts: I64,
    qs: F64,
    edges: F64,
    want_entropy: bool,
    want_trend: bool,
    max_lag: int,
    share_ops: I64,
    share_thr: F64,
    xs: F64,
) -> F64:
    """Per segment (``x`` grouped by segment), every statistic of one series at once.

    Returns a ``(SERIES_FIXED + len(qs) + max_lag + len(share_ops), n)`` array: sum, mean,
    sums of 2nd/3rd/4th powers of deviations, min, max, histogram entropy (bits, over
    ``edges``), trend (least-squares slope against the position scaled to 0..1), the
    ``qs`` quantiles (linear interpolation on ``xs``, the values sorted inside each
    segment), the lag-1..``max_lag`` sums of ``d[j - lag] * d[j]``, the share counts.
    Undefined values are NaN; sums and counts of nothing are 0.
    """
    n = counts.shape[0]
    nq = qs.shape[0]
    ns = share_ops.shape[0]
    out = np.zeros((SERIES_FIXED + nq + max_lag + ns, n))
    nan = np.nan
    ne = edges.shape[0]
    hist = np.zeros(ne + 1, np.int64)
    for i in range(n):
        c = counts[i]
        if c == 0:
            out[1, i] = nan
            out[5, i] = nan
            out[6, i] = nan
            out[7, i] = nan
            out[8, i] = nan
            for k in range(nq):
                out[SERIES_FIXED + k, i] = nan
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
        mu = t / c
        out[0, i] = t
        out[1, i] = mu
        out[5, i] = mn
        out[6, i] = mx
        q2 = 0.0
        q3 = 0.0
        q4 = 0.0
        for j in range(a, a + c):
            d = x[j] - mu
            d2 = d * d
            q2 += d2
            q3 += d2 * d
            q4 += d2 * d2
        out[2, i] = q2
        out[3, i] = q3
        out[4, i] = q4
        if want_entropy:
            for j in range(a, a + c):
                v = x[j]
                if v != v:  # NaN sorts last, like np.searchsorted
                    b = ne
                else:
                    b = 0  # number of edges <= v (searchsorted side="right"), branch-free
                    for e in range(ne):
                        b += edges[e] <= v
                hist[b] += 1
            cf = float(c)
            ent = 0.0
            for b in range(ne + 1):
                h = hist[b]
                if h > 0:
                    p = h / cf
                    ent += -p * np.log2(p)
                    hist[b] = 0
            out[7, i] = ent
        else:
            out[7, i] = nan
        out[8, i] = nan
        if want_trend and c >= 3:
            den_r = max(c - 1, 1)
            rs = 0.0
            for j in range(c):
                rs += j / den_r
            rbar = rs / float(c)
            num = 0.0
            den = 0.0
            for j in range(c):
                dr = j / den_r - rbar
                num += dr * (x[a + j] - mu)
                den += dr * dr
            if den != 0:
                out[8, i] = num / den
        if nq:
            last = a + c - 1
            for k in range(nq):
                pos = a + qs[k] * (c - 1)
                lo = np.int64(np.floor(pos))
                hi = min(lo + 1, last)
                frac = pos - lo
                out[SERIES_FIXED + k, i] = xs[lo] * (1.0 - frac) + xs[hi] * frac
        for lag in range(1, max_lag + 1):
            acc = 0.0
            for j in range(a + lag, a + c):
                acc += (x[j - lag] - mu) * (x[j] - mu)
            out[SERIES_FIXED + nq + lag - 1, i] = acc
        for k in range(ns):
            hits = 0.0
            op = share_ops[k]
            thr = share_thr[k]
            for j in range(a, a + c):
                if _hit(x[j], op, thr):
                    hits += 1.0
            out[SERIES_FIXED + nq + max_lag + k, i] = hits
    return out


# --- binned series ---------------------------------------------------------------------

BINS = 128
"""Time bins per sample (:data:`minerscope.features.series.BINS` re-exports it)."""


@numba.njit(cache=True, nogil=True)
def _bin_of(t: float, t0: float, width: float) -> int:
    idx = int(np.floor((t - t0) / width))
    return min(max(idx, 0), BINS - 1)


@numba.njit(cache=True, nogil=True)
def _bin_add(o: F64, i: int, b: int, v: float, prev_b: int, prev_v: float, last_bin: int) -> None:
    o[0, i] += v
    o[1, i] += v * v
    o[2, i] += 1.0
    o[3, i] = max(o[3, i], v) if o[2, i] > 1.0 else v
    if b == prev_b + 1:
        o[4, i] += v * prev_v
    if b == 0:
        o[5, i] += v
    if b == last_bin:
        o[6, i] += v


@numba.njit(cache=True, nogil=True)
def binned_kernel(ts: F64, weights: F64, counts: I64, starts: I64, t0: F64, width: F64, used: I64) -> F64:
    """Sums over each segment's non-empty time bins, for event counts and for ``weights``.

    Returns ``(2, 7, n)``: [counts, weights] x [total, sum of squares, non-empty bins,
    max bin, sum of adjacent-bin products, first-bin value, last-used-bin value]. Events
    are time-ordered inside a segment, so a bin is one run of equal bin indices; the
    sums run over those runs in order, as the ``np.bincount`` formulation did.
    """
    n = counts.shape[0]
    out = np.zeros((2, 7, n))
    for i in range(n):
        c = counts[i]
        if c == 0:
            continue
        a = starts[i]
        last_bin = used[i] - 1
        prev_b = -2
        prev_v0 = 0.0
        prev_v1 = 0.0
        j = a
        while j < a + c:
            b = _bin_of(ts[j], t0[i], width[i])
            v0 = 0.0
            v1 = 0.0
            while j < a + c and _bin_of(ts[j], t0[i], width[i]) == b:
                v0 += 1.0
                v1 += weights[j]
                j += 1
            _bin_add(out[0], i, b, v0, prev_b, prev_v0, last_bin)
            _bin_add(out[1], i, b, v1, prev_b, prev_v1, last_bin)
            prev_b = b
            prev_v0 = v0
            prev_v1 = v1
    return out


# --- periodicity -------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def centred_bins(
    ts: F64, counts: I64, starts: I64, rows: I64, t0: F64, width: F64, used: I64
) -> npt.NDArray[np.float32]:
    """``(len(rows), 2 * BINS)`` float32: each row's binned event counts minus their mean
    over the used bins (float32, as numpy computed it), zero beyond the used bins (the
    zero padding that makes the FFT's inverse power a linear autocovariance)."""
    r = rows.shape[0]
    out = np.zeros((r, 2 * BINS), np.float32)
    for k in range(r):
        i = rows[k]
        a = starts[i]
        c = counts[i]
        row = out[k]
        for j in range(a, a + c):
            row[_bin_of(ts[j], t0[i], width[i])] += np.float32(1.0)
        mu = np.float32(np.float64(np.float32(c)) / used[i])
        u = used[i]
        for j in range(BINS):
            row[j] = row[j] - mu if j < u else np.float32(0.0)
    return out


@numba.njit(cache=True, nogil=True)
def _row_max(row: npt.NDArray[np.float32]) -> np.float32:
    """``np.max`` of a row: NaN if any, else the largest value."""
    m = row[0]
    for j in range(row.shape[0]):
        v = row[j]
        if v != v:
            return np.float32(v)
        if v > m:
            m = v
    return np.float32(m)


@numba.njit(cache=True, nogil=True)
def _peak_in_row(row: npt.NDArray[np.floating], thr: float | np.floating[Any]) -> int:
    k = row.shape[0]
    for j in range(k):
        v = row[j]
        if not np.isfinite(v) or not v >= thr:
            continue
        if j > 0 and not v >= row[j - 1]:
            continue
        if j < k - 1 and not v >= row[j + 1]:
            continue
        return j
    found = 0
    best = row[0]
    if best == best:
        for j in range(1, k):
            v = row[j]
            if v != v:
                return j
            if v > best:
                best = v
                found = j
    return found


@numba.njit(cache=True, nogil=True)
def _pairwise_f32(a: npt.NDArray[np.float32]) -> np.float32:
    """``np.add.reduce`` of a short (<= 128) float32 row in numpy's order: eight
    accumulators, combined pairwise, then the tail, starting from 0."""
    n = a.shape[0]
    zero = np.float32(0.0)
    if n < 8:
        acc = zero
        for i in range(n):
            acc += a[i]
        return np.float32(zero + acc)
    r0 = a[0]
    r1 = a[1]
    r2 = a[2]
    r3 = a[3]
    r4 = a[4]
    r5 = a[5]
    r6 = a[6]
    r7 = a[7]
    i = 8
    while i < n - (n % 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    acc = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        acc += a[i]
        i += 1
    return np.float32(zero + acc)


@numba.njit(cache=True, nogil=True)
def spectrum_peaks(
    spec: npt.NDArray[np.complex64], used: I64, share: float
) -> tuple[
    npt.NDArray[np.complex64], I64, npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_]
]:
    """From each row's ``2 * BINS``-point spectrum: its power (complex, for the inverse
    FFT), the first strong allowed line of the ``BINS``-point spectrum (its even
    coefficients; a period must fit twice in the used bins), the non-DC power and the
    power at that line's harmonics (float32 sums in numpy's order), and validity."""
    r, k2 = spec.shape
    k = k2 // 2 + 1  # BINS/2 + 1 lines
    power2 = np.empty((r, k2), np.complex64)
    best = np.zeros(r, np.int64)
    nondc = np.zeros(r, np.float32)
    harm = np.zeros(r, np.float32)
    valid = np.zeros(r, np.bool_)
    p_allowed = np.empty(k, np.float32)
    tmp = np.empty(k, np.float32)
    hrow = np.empty(k, np.float32)
    thr_share = np.float32(share)
    tiny = np.float32(1e-12)
    for i in range(r):
        for j in range(k2):
            z = spec[i, j]
            power2[i, j] = np.complex64(z.real * z.real + z.imag * z.imag)
        kmin = np.ceil(2.0 * BINS / np.float64(used[i]))
        for j in range(k):
            p = power2[i, 2 * j].real
            tmp[j] = p
            p_allowed[j] = p if (j >= max(kmin, 1.0) and j >= 1) else np.float32(-1.0)
        b = _peak_in_row(p_allowed, thr_share * _row_max(p_allowed))
        best[i] = b
        nondc[i] = _pairwise_f32(tmp[1:])
        hb = max(b, 1)
        for j in range(k):
            hrow[j] = np.float32(0.0)
        for j in range(hb, k, hb):  # the line and its harmonics
            hrow[j] = tmp[j]
        harm[i] = _pairwise_f32(hrow)
        valid[i] = (nondc[i] > tiny) and (p_allowed[b] > np.float32(0.0))
    return power2, best, nondc, harm, valid


@numba.njit(cache=True, nogil=True)
def acf_peaks(
    acov: npt.NDArray[np.float32], used: I64, share: float
) -> tuple[I64, npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Per row of the linear autocovariance: the first strong peak of the normalised
    autocorrelation summed over +-1 lag, clipped to [-1, 1], among lags 2..used/2; its
    value and whether it is defined (float32 throughout, as numpy computed it)."""
    r = acov.shape[0]
    nl = BINS
    peak = np.zeros(r, np.int64)
    val = np.zeros(r, np.float32)
    valid = np.zeros(r, np.bool_)
    raw = np.empty(nl, np.float32)
    acf = np.empty(nl, np.float32)
    tiny = np.float32(1e-12)
    ninf = np.float32(-np.inf)
    one = np.float32(1.0)
    thr_share = np.float32(share)
    for i in range(r):
        a0 = acov[i, 0]
        den = a0 if a0 > tiny else np.float32(np.inf)
        # lags past used/2 + 1 are -inf, never the answer: leave them out
        hi = used[i] // 2
        top = min(hi + 2, nl)
        for j in range(1, top):
            raw[j] = acov[i, j] / den
        for j in range(top):
            if j >= 2 and j <= hi:
                s = raw[j]
                if 0 < j < nl - 1:
                    s = (raw[j - 1] + raw[j]) + raw[j + 1]
                acf[j] = min(max(s, -one), one) if s == s else s
            else:
                acf[j] = ninf
        row = acf[:top]
        p = _peak_in_row(row, thr_share * _row_max(row))
        peak[i] = p
        val[i] = acf[p]
        valid[i] = np.isfinite(acf[p]) and a0 > tiny
    return peak, val, valid


# --- windowing ---------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def backwards_in_flow(flow: I64, ts: F64) -> bool:
    """Whether any value steps back in time inside its flow (``flow`` non-decreasing)."""
    for i in range(1, ts.shape[0]):
        if ts[i] < ts[i - 1] and flow[i] == flow[i - 1]:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def merge_keys(a: I64, b: I64) -> tuple[bool, I64, I64, I64]:
    """For two non-decreasing key arrays: their sorted union of distinct keys and each
    element's index in it (``np.unique`` + ``np.searchsorted`` in one merge). The flag is
    False, and the arrays empty, when an input is not sorted."""
    na = a.shape[0]
    nb = b.shape[0]
    for i in range(1, na):
        if a[i] < a[i - 1]:
            return False, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    for i in range(1, nb):
        if b[i] < b[i - 1]:
            return False, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = np.empty(na + nb, np.int64)
    ia = np.empty(na, np.int64)
    ib = np.empty(nb, np.int64)
    i = 0
    j = 0
    k = -1
    while i < na or j < nb:
        if j >= nb or (i < na and a[i] <= b[j]):
            v = a[i]
        else:
            v = b[j]
        if k < 0 or keys[k] != v:
            k += 1
            keys[k] = v
        while i < na and a[i] == v:
            ia[i] = k
            i += 1
        while j < nb and b[j] == v:
            ib[j] = k
            j += 1
    return True, keys[: k + 1].copy(), ia, ib


@numba.njit(cache=True, nogil=True)
def nearly_sorted_order(flow: I64, ts: F64, budget: int) -> tuple[bool, I64]:
    """The stable (flow, time) order of nearly time-ordered values, by insertion sort:
    linear plus the number of displacements. Gives up (False) on a NaN time or when the
    displacements exceed ``budget``, for the caller's ``np.lexsort``."""
    m = ts.shape[0]
    order = np.arange(m)
    moves = 0
    for i in range(m):
        if ts[i] != ts[i]:
            return False, order
    for i in range(1, m):
        o = order[i]
        t = ts[o]
        f = flow[o]
        j = i - 1
        while j >= 0 and flow[order[j]] == f and ts[order[j]] > t:
            order[j + 1] = order[j]
            j -= 1
            moves += 1
        order[j + 1] = o
        if moves > budget:
            return False, order
    return True, order


@numba.njit(cache=True, nogil=True)
def message_runs(
    direction: npt.NDArray[np.uint8], small: npt.NDArray[np.bool_], counts: I64, starts: I64
) -> F64:
    """Per segment, the longest run of consecutive client messages, of server messages,
    and of small messages: ``(3, n)``, 0 where there is none."""
    n = counts.shape[0]
    out = np.zeros((3, n))
    for i in range(n):
        a = starts[i]
        run_d = 0
        run_s = 0
        for j in range(a, a + counts[i]):
            d = direction[j]
            run_d = run_d + 1 if j > a and d == direction[j - 1] else 1
            k = 0 if d == 0 else 1
            if d <= 1 and run_d > out[k, i]:
                out[k, i] = run_d
            if small[j]:
                run_s = run_s + 1 if j > a and small[j - 1] else 1
                if run_s > out[2, i]:
                    out[2, i] = run_s
    return out


@numba.njit(cache=True, nogil=True)
def packet_sums(
    wire: F64, payload: F64, flags: npt.NDArray[np.uint8], counts: I64, starts: I64
) -> tuple[F64, F64, F64, F64, F64]:
    """Per segment: packets, wire bytes, payload bytes, PSH packets, bare ACKs (a packet
    with only the ACK flag and no payload), added in element order."""
    n = counts.shape[0]
    pkts = np.zeros(n)
    wsum = np.zeros(n)
    psum = np.zeros(n)
    psh = np.zeros(n)
    ack = np.zeros(n)
    for i in range(n):
        a = starts[i]
        w = 0.0
        p = 0.0
        h = 0.0
        k = 0.0
        for j in range(a, a + counts[i]):
            w += wire[j]
            p += payload[j]
            fl = flags[j]
            if fl & 0x08:
                h += 1.0
            if fl == 0x10 and payload[j] == 0:
                k += 1.0
        pkts[i] = counts[i]
        wsum[i] = w
        psum[i] = p
        psh[i] = h
        ack[i] = k
    return pkts, wsum, psum, psh, ack


@numba.njit(cache=True, nogil=True)
def split_packets(
    direction: npt.NDArray[np.uint8],
    want: int,
    ts: F64,
    seg: I64,
    wire: F64,
    payload: F64,
    flags: npt.NDArray[np.uint8],
) -> tuple[F64, I64, F64, F64, npt.NDArray[np.uint8]]:
    """The packets of one direction (``direction == want``), in order: one pass instead
    of a boolean index per array."""
    m = direction.shape[0]
    k = 0
    for i in range(m):
        k += direction[i] == want
    o_ts = np.empty(k)
    o_seg = np.empty(k, np.int64)
    o_wire = np.empty(k)
    o_pay = np.empty(k)
    o_flags = np.empty(k, np.uint8)
    j = 0
    for i in range(m):
        if direction[i] == want:
            o_ts[j] = ts[i]
            o_seg[j] = seg[i]
            o_wire[j] = wire[i]
            o_pay[j] = payload[i]
            o_flags[j] = flags[i]
            j += 1
    return o_ts, o_seg, o_wire, o_pay, o_flags


@numba.njit(cache=True, nogil=True)
def split_messages(
    direction: npt.NDArray[np.uint8], want: int, ts: F64, seg: I64, length: F64
) -> tuple[F64, I64, F64]:
    """The messages of one direction, in order (see :func:`split_packets`)."""
    m = direction.shape[0]
    k = 0
    for i in range(m):
        k += direction[i] == want
    o_ts = np.empty(k)
    o_seg = np.empty(k, np.int64)
    o_len = np.empty(k)
    j = 0
    for i in range(m):
        if direction[i] == want:
            o_ts[j] = ts[i]
            o_seg[j] = seg[i]
            o_len[j] = length[i]
            j += 1
    return o_ts, o_seg, o_len


@numba.njit(cache=True, nogil=True)
def diffs_within(ts: F64, seg: I64, counts: I64, starts: I64) -> tuple[F64, I64]:
    """Consecutive differences inside each segment and their segment ids (segment ``i``
    has ``counts[i] - 1`` of them)."""
    n = counts.shape[0]
    total = 0
    for i in range(n):
        total += max(counts[i] - 1, 0)
    out = np.empty(total)
    out_seg = np.empty(total, np.int64)
    k = 0
    for i in range(n):
        a = starts[i]
        for j in range(a + 1, a + counts[i]):
            out[k] = ts[j] - ts[j - 1]
            out_seg[k] = seg[j]
            k += 1
    return out, out_seg


@numba.njit(cache=True, nogil=True)
def burst_stats(ts: F64, wire: F64, counts: I64, starts: I64, gap: float) -> F64:
    """Per segment, bursts (runs of packets less than ``gap`` apart): ``(7, n)`` of count,
    mean and max packets per burst, mean and max bytes, mean and max duration (NaN when
    the segment has no packet; means are sums in burst order divided by the count)."""
    n = counts.shape[0]
    out = np.full((7, n), np.nan)
    for i in range(n):
        c = counts[i]
        out[0, i] = 0.0
        if c == 0:
            continue
        a = starts[i]
        nb = 0
        sp = 0.0
        sb = 0.0
        sd = 0.0
        mp = 0.0
        mb = 0.0
        md = 0.0
        j = a
        while j < a + c:
            t0 = ts[j]
            hi = t0
            pk = 1.0
            by = wire[j]
            j += 1
            while j < a + c and ts[j] - ts[j - 1] <= gap:
                pk += 1.0
                by += wire[j]
                hi = max(hi, ts[j])
                j += 1
            dur = hi - t0
            if nb == 0:
                mp, mb, md = pk, by, dur
            else:
                mp, mb, md = max(mp, pk), max(mb, by), max(md, dur)
            nb += 1
            sp += pk
            sb += by
            sd += dur
        out[0, i] = nb
        out[1, i] = sp / nb
        out[2, i] = mp
        out[3, i] = sb / nb
        out[4, i] = mb
        out[5, i] = sd / nb
        out[6, i] = md
    return out


@numba.njit(cache=True, nogil=True)
def first_values(
    length: F64, direction: npt.NDArray[np.uint8], counts: I64, starts: I64, k: int
) -> tuple[F64, F64]:
    """``(n, k)`` lengths and directions of each segment's first ``k`` values, NaN padded."""
    n = counts.shape[0]
    sizes = np.full((n, k), np.nan)
    dirs = np.full((n, k), np.nan)
    for i in range(n):
        a = starts[i]
        for j in range(min(counts[i], k)):
            sizes[i, j] = length[a + j]
            dirs[i, j] = direction[a + j]
    return sizes, dirs
