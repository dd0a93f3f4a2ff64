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
def put_key_values(key: npt.NDArray[np.uint64], out: F64) -> None:
    """The float32 values held in the low half of :func:`segment_keys` keys, written into
    ``out`` as float64."""
    for i in range(key.shape[0]):
        out[i] = np.uint32(key[i] & np.uint64(0xFFFFFFFF)).view(np.float32)


@numba.njit(cache=True, nogil=True)
def _exponent(v: float) -> int:
    """``floor(log2(v))`` of a positive float64, exactly, from its exponent bits
    (subnormals give -1023 or less, ``inf`` 1024)."""
    bits = np.float64(v).view(np.uint64)
    return int((bits >> np.uint64(52)) & np.uint64(0x7FF)) - 1023


def power_of_two_edges(edges: F64) -> int:
    """``k`` if ``edges`` are ``2**k, 2**(k+1), ...`` with ``0 < k`` and below ``2**1000``,
    else 0 (for :func:`series_kernel`'s ``pow2_from``)."""
    if edges.shape[0] == 0 or not edges[0] > 0:
        return 0
    k = int(np.floor(np.log2(edges[0])))
    want = 2.0 ** np.arange(k, k + edges.shape[0], dtype=np.float64)
    return k if 0 < k and k + edges.shape[0] < 1000 and np.array_equal(edges, want) else 0


TERMS_MAX = 128
"""Largest segment whose entropy terms :func:`series_kernel` memoises."""


def entropy_terms() -> F64:
    """An empty (NaN) memo of entropy terms for :func:`series_kernel`; filling it from
    several threads at once is harmless (every writer stores the same value)."""
    return np.full((TERMS_MAX + 1) * (TERMS_MAX + 1), np.nan)


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
    terms: F64,
    pow2_from: int,
) -> F64:
    """Per segment (``x`` grouped by segment), every statistic of one series at once.

    Returns a ``(SERIES_FIXED + len(qs) + max_lag + len(share_ops), n)`` array: sum, mean,
    sums of 2nd/3rd/4th powers of deviations, min, max, histogram entropy (bits, over
    ``edges``), trend (least-squares slope against the position scaled to 0..1), the
    ``qs`` quantiles (linear interpolation on ``xs``, the values sorted inside each
    segment), the lag-1..``max_lag`` sums of ``d[j - lag] * d[j]``, the share counts.
    Undefined values are NaN; sums and counts of nothing are 0.

    ``pow2_from > 0`` says ``edges`` are ``2**pow2_from, 2**(pow2_from + 1), ...``
    (:func:`power_of_two_edges`): a value's bin then comes from its binary exponent
    instead of one comparison per edge (the same bin, exactly).

    ``terms`` memoises the entropy terms ``-p * log2(p)``, ``p = h / c``, of segments of
    up to ``TERMS_MAX`` values (see :func:`entropy_terms`): the same expression, computed
    once per ``(c, h)`` instead of once per bin of every segment.
    """
    n = counts.shape[0]
    nq = qs.shape[0]
    ns = share_ops.shape[0]
    out = np.zeros((SERIES_FIXED + nq + max_lag + ns, n))
    nan = np.nan
    ne = edges.shape[0]
    hist = np.zeros(ne + 1, np.int64)
    lag_acc = np.zeros(max(max_lag, 3))
    hit_acc = np.zeros(ns)
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
        ua = np.uint64(a)  # unsigned indices: no negative-index fix-up at each access
        ue = ua + np.uint64(c)
        t = 0.0
        mn = x[ua]
        mx = x[ua]
        for j in range(ua, ue):
            v = x[j]
            t += v
            mn = min(mn, v)
            mx = max(mx, v)
        mu = t / c
        out[0, i] = t
        out[1, i] = mu
        out[5, i] = mn
        out[6, i] = mx
        trend = want_trend and c >= 3
        den_r = max(c - 1, 1)
        rbar = 0.0
        if trend:
            rs = 0.0
            for j in range(c):
                rs += j / den_r
            rbar = rs / float(c)
        # one walk for everything that needs the mean: each accumulator still adds in
        # element order (so its value is unchanged), and the independent chains overlap
        q2 = 0.0
        q3 = 0.0
        q4 = 0.0
        num = 0.0
        den = 0.0
        l1 = 0.0
        l2 = 0.0
        l3 = 0.0
        p1 = 0.0  # deviations of the previous three values
        p2 = 0.0
        p3 = 0.0
        for j in range(c):
            d = x[ua + np.uint64(j)] - mu
            d2 = d * d
            q2 += d2
            q3 += d2 * d
            q4 += d2 * d2
            if trend:
                dr = j / den_r - rbar
                num += dr * d
                den += dr * dr
            if j >= 1:
                l1 += p1 * d
            if j >= 2:
                l2 += p2 * d
            if j >= 3:
                l3 += p3 * d
            p3 = p2
            p2 = p1
            p1 = d
        lag_acc[0] = l1
        lag_acc[1] = l2
        lag_acc[2] = l3
        for lag in range(4, max_lag + 1):  # beyond lag 3 (no caller so far): own walks
            acc = 0.0
            for j in range(a + lag, a + c):
                acc += (x[j - lag] - mu) * (x[j] - mu)
            lag_acc[lag - 1] = acc
        for k in range(ns):
            hits = 0.0
            op = share_ops[k]
            thr = share_thr[k]
            for j in range(ua, ue):
                if _hit(x[j], op, thr):
                    hits += 1.0
            hit_acc[k] = hits
        if want_entropy:
            for j in range(ua, ue):
                v = x[j]
                if v != v:  # NaN sorts last, like np.searchsorted
                    b = ne
                elif pow2_from > 0:  # edges 2**pow2_from.. : the exponent of v counts them
                    b = 0
                    if v > 0.0:
                        b = min(max(_exponent(v) - pow2_from + 1, 0), ne)
                else:
                    b = 0  # number of edges <= v (searchsorted side="right"), branch-free
                    for e in range(ne):
                        b += edges[e] <= v
                hist[np.uint64(b)] += 1
        out[2, i] = q2
        out[3, i] = q3
        out[4, i] = q4
        if want_entropy:
            cf = float(c)
            ent = 0.0
            for b in range(ne + 1):
                h = hist[b]
                if h > 0:
                    if c <= TERMS_MAX:
                        slot = c * (TERMS_MAX + 1) + h
                        term = terms[slot]
                        if term != term:  # not yet computed
                            p = h / cf
                            term = -p * np.log2(p)
                            terms[slot] = term
                    else:
                        p = h / cf
                        term = -p * np.log2(p)
                    ent += term
                    hist[b] = 0
            out[7, i] = ent
        else:
            out[7, i] = nan
        out[8, i] = nan
        if trend and den != 0:
            out[8, i] = num / den
        for lag in range(1, max_lag + 1):
            out[SERIES_FIXED + nq + lag - 1, i] = lag_acc[lag - 1]
        for k in range(ns):
            out[SERIES_FIXED + nq + max_lag + k, i] = hit_acc[k]
        if nq:
            last = a + c - 1
            for k in range(nq):
                pos = a + qs[k] * (c - 1)
                lo = np.int64(np.floor(pos))
                hi = min(lo + 1, last)
                frac = pos - lo
                out[SERIES_FIXED + k, i] = xs[lo] * (1.0 - frac) + xs[hi] * frac
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
        bj = _bin_of(ts[j], t0[i], width[i])
        while j < a + c:
            b = bj
            v0 = 0.0
            v1 = 0.0
            while bj == b:  # each event's bin computed once
                v0 += 1.0
                v1 += weights[j]
                j += 1
                bj = _bin_of(ts[j], t0[i], width[i]) if j < a + c else -1
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


@numba.njit(cache=True, nogil=True, inline="always")
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
    n: int,
    wire: F64,
    payload: F64,
    flags: npt.NDArray[np.uint8],
) -> tuple[F64, F64, F64, npt.NDArray[np.uint8], I64]:
    """The packets of one direction (``direction == want``), in order, and how many of
    them each of the ``n`` segments holds: one pass instead of a boolean index per array
    (the counts stand for the segment ids, which the kernels never need)."""
    m = direction.shape[0]
    k = 0
    for i in range(m):
        k += direction[i] == want
    o_ts = np.empty(k)
    o_wire = np.empty(k)
    o_pay = np.empty(k)
    o_flags = np.empty(k, np.uint8)
    counts = np.zeros(n, np.int64)
    j = 0
    for i in range(m):
        if direction[i] == want:
            o_ts[j] = ts[i]
            o_wire[j] = wire[i]
            o_pay[j] = payload[i]
            o_flags[j] = flags[i]
            counts[seg[i]] += 1
            j += 1
    return o_ts, o_wire, o_pay, o_flags, counts


@numba.njit(cache=True, nogil=True)
def split_messages(
    direction: npt.NDArray[np.uint8], want: int, ts: F64, seg: I64, n: int, length: F64
) -> tuple[F64, F64, I64]:
    """The messages of one direction, in order, and their counts per segment (see
    :func:`split_packets`)."""
    m = direction.shape[0]
    k = 0
    for i in range(m):
        k += direction[i] == want
    o_ts = np.empty(k)
    o_len = np.empty(k)
    counts = np.zeros(n, np.int64)
    j = 0
    for i in range(m):
        if direction[i] == want:
            o_ts[j] = ts[i]
            o_len[j] = length[i]
            counts[seg[i]] += 1
            j += 1
    return o_ts, o_len, counts


@numba.njit(cache=True, nogil=True)
def segment_diffs(ts: F64, counts: I64, starts: I64) -> F64:
    """Consecutive differences inside each segment (segment ``i`` has ``counts[i] - 1``
    of them)."""
    n = counts.shape[0]
    total = 0
    for i in range(n):
        total += max(counts[i] - 1, 0)
    out = np.empty(total)
    k = 0
    for i in range(n):
        a = starts[i]
        for j in range(a + 1, a + counts[i]):
            out[k] = ts[j] - ts[j - 1]
            k += 1
    return out


@numba.njit(cache=True, nogil=True)
def segment_keys(x: F64, counts: I64, starts: I64, s0: int, s1: int, key: npt.NDArray[np.uint64]) -> int:
    """``seg << 32 | float32 bits of x`` for segments ``s0..s1-1`` (numbered from 0),
    written into ``key``; returns how many. Sorting them sorts ``x`` (as float32) inside
    each segment, for a non-negative ``x`` (the bit pattern of a non-negative float32
    orders like the float)."""
    k = 0
    for i in range(s0, s1):
        hi = np.uint64(i - s0) << np.uint64(32)
        a = starts[i]
        for j in range(a, a + counts[i]):
            key[k] = hi | np.uint64(np.float32(x[j]).view(np.uint32))
            k += 1
    return k


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


@numba.njit(cache=True, nogil=True)
def gap_flag_stats(ts: F64, flags: npt.NDArray[np.uint8], counts: I64, starts: I64, idle_gap: float) -> F64:
    """Per segment, from one walk: SYN, FIN and RST packets, then over the gaps between
    consecutive packets the longest (NaN without a gap; a NaN gap wins, as in
    ``np.maximum``), the gaps > 30 s, > 60 s, and the sum of gaps > ``idle_gap`` (in
    element order from 0.0, like ``np.bincount``): ``(7, n)``."""
    n = counts.shape[0]
    out = np.zeros((7, n))
    for i in range(n):
        a = starts[i]
        c = counts[i]
        syn = 0.0
        fin = 0.0
        rst = 0.0
        for j in range(a, a + c):
            fl = flags[j]
            if fl & 0x02:
                syn += 1.0
            if fl & 0x01:
                fin += 1.0
            if fl & 0x04:
                rst += 1.0
        out[0, i] = syn
        out[1, i] = fin
        out[2, i] = rst
        gmax = np.nan
        g30 = 0.0
        g60 = 0.0
        idle = 0.0
        for j in range(a + 1, a + c):
            g = ts[j] - ts[j - 1]
            if j == a + 1 or g != g or (gmax == gmax and g > gmax):
                gmax = g
            if g > 30.0:
                g30 += 1.0
            if g > 60.0:
                g60 += 1.0
            idle += g if g > idle_gap else 0.0
        out[3, i] = gmax
        out[4, i] = g30
        out[5, i] = g60
        out[6, i] = idle
    return out


@numba.njit(cache=True, nogil=True)
def segment_counts(seg: I64, n: int) -> tuple[bool, I64, I64]:
    """Elements per segment (``np.bincount(seg, minlength=n)``) and each segment's first
    index (their exclusive cumulative sum), in one compiled pass; False (and no counts)
    if an index is outside ``0..n-1``."""
    counts = np.zeros(n, np.int64)
    for j in range(seg.shape[0]):
        s = seg[j]
        if s < 0 or s >= n:
            return False, counts, counts
        counts[s] += 1
    starts = np.empty(n, np.int64)
    acc = 0
    for i in range(n):
        starts[i] = acc
        acc += counts[i]
    return True, counts, starts


@numba.njit(cache=True, nogil=True)
def message_pairs(
    ts: F64, length: F64, direction: npt.NDArray[np.uint8], counts: I64, starts: I64, window: float
) -> tuple[F64, I64, F64, I64, F64]:
    """Per segment of messages: ``(3, n)`` direction changes, request/response pairs (a
    client message answered by the next, a server one, within ``window`` s) and server
    messages after silence (first of the segment or more than ``window`` s after the
    previous one); then each pair's segment and delay, and for the pairs whose size
    ratio (response / request) is finite, its segment and value."""
    n = counts.shape[0]
    m = ts.shape[0]
    out = np.zeros((3, n))
    pair_seg = np.empty(m, np.int64)
    delay = np.empty(m)
    ratio_seg = np.empty(m, np.int64)
    ratio = np.empty(m)
    k = 0
    r = 0
    for i in range(n):
        a = starts[i]
        c = counts[i]
        if c == 0:
            continue
        if direction[a] == 1:
            out[2, i] += 1.0
        for j in range(a + 1, a + c):
            d0 = direction[j - 1]
            d1 = direction[j]
            gap = ts[j] - ts[j - 1]
            if d1 != d0:
                out[0, i] += 1.0
            if d0 == 0 and d1 == 1 and gap <= window:
                out[1, i] += 1.0
                pair_seg[k] = i
                delay[k] = gap
                k += 1
                q = length[j] / length[j - 1] if length[j - 1] != 0 else np.nan
                if np.isfinite(q):
                    ratio_seg[r] = i
                    ratio[r] = q
                    r += 1
            if d1 == 1 and gap > window:
                out[2, i] += 1.0
    return out, pair_seg[:k].copy(), delay[:k].copy(), ratio_seg[:r].copy(), ratio[:r].copy()


@numba.njit(cache=True, nogil=True)
def merge_sorted_segments(xa: F64, ca: I64, sa: I64, xb: F64, cb: I64, sb: I64) -> F64:
    """Two series sorted inside each segment by their float32 bit patterns (as
    :func:`segment_keys` sorts), merged segment by segment in that same order: what
    sorting the union would give (equal bit patterns are equal values)."""
    n = ca.shape[0]
    out = np.empty(xa.shape[0] + xb.shape[0])
    k = 0
    for i in range(n):
        p = sa[i]
        pe = p + ca[i]
        q = sb[i]
        qe = q + cb[i]
        while p < pe and q < qe:
            if np.float32(xa[p]).view(np.uint32) <= np.float32(xb[q]).view(np.uint32):
                out[k] = xa[p]
                p += 1
            else:
                out[k] = xb[q]
                q += 1
            k += 1
        while p < pe:
            out[k] = xa[p]
            p += 1
            k += 1
        while q < qe:
            out[k] = xb[q]
            q += 1
            k += 1
    return out
