"""Per-sample time series -> the stage-1 feature columns, for every sample at once.

A *sample* is a whole flow or one time window of a flow (see
:mod:`minerscope.features.windows`). Every packet and every application message carries
the index of its sample in a non-decreasing ``seg`` array, so a statistic over "each
sample's series" is one ``np.bincount``/``reduceat`` pass over the concatenated arrays,
whatever the number of flows. There is no Python loop over flows or packets: the only
loops run over the ~280 feature definitions. The per-segment work (every statistic of a
series in one walk, the binned series, the direction split, the spectral and
autocorrelation peak search) runs in compiled kernels in :mod:`._kernels`; numpy keeps
what it does best (one SIMD sort of packed keys for the quantiles, the batched FFTs).
The kernels add in the same order as the numpy formulations they replaced, so every
value is bit-for-bit unchanged (``tests/features/test_kernels.py`` holds those
formulations as references).

Why these series (PROTOCOLS.md 5.4): a pool connection is one long TCP/TLS flow of small
messages; the server pushes jobs at block/refresh cadence without being asked, the client
submits shares at vardiff cadence and gets a small acknowledgement. Sizes, inter-arrival
times, periodicity of the binned message counts, request/response structure and
unsolicited pushes describe that shape; TLS keeps all of them (it adds a near-constant
overhead per record).

Conventions: a statistic that is undefined for a sample (mean of nothing, skew of a
constant) is NaN, which XGBoost treats as missing; counts and sums of nothing are 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minerscope.features import _kernels
from minerscope.features._kernels import (
    SERIES_FIXED,
    SHARE_OPS,
    acf_peaks,
    binned_kernel,
    burst_stats,
    centred_bins,
    first_values,
    gap_flag_stats,
    merge_sorted_segments,
    message_pairs,
    message_runs,
    packet_sums,
    put_key_values,
    segment_counts,
    segment_diffs,
    segment_keys,
    series_kernel,
    spectrum_peaks,
    split_messages,
    split_packets,
)
from minerscope.features.fft import irfft_rows, rfft_rows
from minerscope.features.schema import (
    DIRECTIONS,
    FEATURE_NAMES,
    FIRST_N_MESSAGES,
    LARGE_MSG_BYTES,
    SMALL_MSG_BYTES,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

BINS = _kernels.BINS
"""Time bins per sample for the binned series and the periodicity search."""

MIN_BIN_S = 1.0
"""Bins are never narrower than this (a short sample uses fewer than :data:`BINS`)."""
BURST_GAP_S = 0.5
"""Packets closer than this belong to one burst."""
RESPONSE_WINDOW_S = 2.0
"""A server message this soon after a client message answers it (request/response pair);
a server message after a longer silence is unsolicited (a push)."""
IDLE_GAP_S = 5.0
"""Packet gaps longer than this count as idle time."""

SIZE_EDGES: F64 = np.asarray(2.0 ** np.arange(3, 16), dtype=np.float64)
"""Histogram edges (log2 steps, 8 B .. 32 KiB) for size entropy."""
IAT_EDGES: F64 = np.asarray(10.0 ** np.arange(-4.0, 3.01, 0.5), dtype=np.float64)
"""Histogram edges (half-decades, 0.1 ms .. 1000 s) for inter-arrival entropy."""

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

_QUANTILES = {"p10": 0.10, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p90": 0.90}


@dataclass(frozen=True, slots=True)
class Segments:
    """Which sample every packet and application message belongs to.

    Attributes:
        n: number of samples.
        pkt_seg: int64 sample index per packet, non-decreasing.
        msg_seg: int64 sample index per application message, non-decreasing.
        flow: int64 flow index (into the arrays' flows) of each sample.
    """

    n: int
    pkt_seg: I64
    msg_seg: I64
    flow: I64


def wsum(seg: I64, weights: npt.NDArray[np.floating], n: int) -> F64:
    """Per-segment sums of ``weights`` as float64 (``np.bincount`` gives int64 when empty)."""
    return np.bincount(seg, weights=weights, minlength=n).astype(np.float64, copy=False)


def counts_starts(seg: I64, n: int) -> tuple[I64, I64]:
    """Per-segment element counts and the index of each segment's first element."""
    ok, counts, starts = segment_counts(np.ascontiguousarray(seg, dtype=np.int64), n)
    if not ok:
        raise ValueError(f"a segment index is outside 0..{n - 1}")
    return counts, starts


def _grouping(seg: I64 | None, n: int, cs: tuple[I64, I64] | None) -> tuple[I64, I64]:
    """``cs`` if given, else :func:`counts_starts` of ``seg``."""
    if cs is not None:
        return cs
    if seg is None:
        raise ValueError("segment ids or (counts, starts) are needed")
    return counts_starts(seg, n)


def _starts(counts: I64) -> I64:
    """Index of each segment's first element, from the counts."""
    starts = np.zeros(counts.shape[0], np.int64)
    if counts.shape[0] > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _minus_one(counts: I64) -> tuple[I64, I64]:
    """Counts and starts of the consecutive differences inside each segment."""
    c = np.maximum(counts - 1, 0)
    return c, _starts(c)


def _div(a: F64, b: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> F64:
    """``a / b`` (float64 arrays of one shape) with NaN where ``b`` is 0.

    One plain (SIMD) division, then NaN written over the zero divisors: a third faster
    than a masked ``np.divide(..., where=b != 0)`` into a NaN-filled array, with the
    same bits (``a / b`` where ``b != 0``, the canonical NaN elsewhere), and it runs
    ~1,500 times an extraction.
    """
    zero = b == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F64 = np.divide(a, b, dtype=np.float64)
    out[zero] = np.nan
    return out


def seg_reduce(ufunc: np.ufunc, x: F64, counts: I64, starts: I64, empty: float = np.nan) -> F64:
    """``ufunc.reduceat`` per non-empty segment (x grouped by segment), ``empty`` elsewhere."""
    out = np.full(counts.shape[0], empty)
    nonempty = counts > 0
    if nonempty.any():
        out[nonempty] = ufunc.reduceat(x, starts[nonempty])
    return out


def seg_diff(ts: F64, seg: I64) -> tuple[F64, I64]:
    """Differences of consecutive values inside each segment, and their segment ids."""
    if ts.shape[0] < 2:
        return np.zeros(0), np.zeros(0, np.int64)
    same = seg[1:] == seg[:-1]
    return (ts[1:] - ts[:-1])[same], seg[1:][same]


def series_stats(
    x: F64,
    seg: I64 | None,
    n: int,
    stats: Iterable[str],
    *,
    edges: F64 | None = None,
    shares: dict[str, tuple[str, float]] | None = None,
    cs: tuple[I64, I64] | None = None,
    xs: F64 | None = None,
) -> dict[str, F64]:
    """Statistics of each segment's series.

    Args:
        x: values, grouped by segment (``seg`` non-decreasing), in time order within one.
        seg: segment index of each value (may be None when ``cs`` is given).
        n: number of segments.
        stats: names among sum, mean, std, min, max, p10/p25/p50/p75/p90 (linear
            interpolation, as ``np.quantile``), skew, kurt (excess), entropy (bits, of the
            histogram over ``edges``), cv (std/mean), trend (least-squares slope against
            the position in the series scaled to 0..1, so in the series' unit), acf1-3
            (autocorrelation at lags 1-3), and the names in ``shares``.
        edges: histogram edges for ``entropy``.
        shares: name -> (op, threshold): the share of values ``op`` threshold, op one of
            ``le``, ``lt``, ``ge``, ``gt``.
        cs: ``counts_starts(seg, n)`` when the caller has it already.
        xs: ``sort_segments(x, *cs)`` when the caller has it already.

    Returns:
        name -> float64 array of length ``n``.
    """
    wanted = list(stats)
    shares = shares or {}
    counts, starts = _grouping(seg, n, cs)
    cf = counts.astype(np.float64)
    qnames = [s for s in wanted if s in _QUANTILES]
    lags = [int(s[3:]) for s in wanted if s.startswith("acf") and s[3:].isdigit()]
    max_lag = max([lag for lag in lags if lag >= 1], default=0)
    share_names = [s for s in wanted if s in shares]
    if "entropy" in wanted:
        assert edges is not None, "entropy needs histogram edges"
    x = np.ascontiguousarray(x, dtype=np.float64)
    table = series_kernel(
        x,
        counts,
        starts,
        np.array([_QUANTILES[q] for q in qnames], np.float64),
        edges if edges is not None and "entropy" in wanted else _NO_EDGES,
        "entropy" in wanted,
        "trend" in wanted,
        max_lag,
        np.array([SHARE_OPS[shares[name][0]] for name in share_names], np.int64),
        np.array([shares[name][1] for name in share_names], np.float64),
        _NO_EDGES if not qnames else sort_segments(x, counts, starts) if xs is None else xs,
        _ENTROPY_TERMS,
        _kernels.power_of_two_edges(edges) if edges is not None and "entropy" in wanted else 0,
    )
    total, mean, s2, s3, s4, xmin, xmax, entropy, trend = table[:SERIES_FIXED]
    row = {name: SERIES_FIXED + k for k, name in enumerate(qnames)}
    lag_row = SERIES_FIXED + len(qnames) - 1
    share_row = {name: SERIES_FIXED + len(qnames) + max_lag + k for k, name in enumerate(share_names)}
    m2 = _div(s2, cf)
    std = np.sqrt(m2)
    out: dict[str, F64] = {}
    for stat in wanted:
        if stat == "sum":
            out[stat] = total
        elif stat == "mean":
            out[stat] = mean
        elif stat == "std":
            out[stat] = std
        elif stat == "min":
            out[stat] = xmin
        elif stat == "max":
            out[stat] = xmax
        elif stat in _QUANTILES:
            out[stat] = table[row[stat]]
        elif stat == "skew":
            m3 = _div(s3, cf)
            out[stat] = _div(m3, np.where(m2 > 1e-18, m2**1.5, 0.0))
        elif stat == "kurt":
            m4 = _div(s4, cf)
            out[stat] = _div(m4, np.where(m2 > 1e-18, m2 * m2, 0.0)) - 3.0
        elif stat == "cv":
            out[stat] = _div(std, np.where(mean > 0, mean, 0.0))
        elif stat == "entropy":
            out[stat] = entropy
        elif stat == "trend":
            out[stat] = trend
        elif stat.startswith("acf") and stat[3:].isdigit():
            lag = int(stat[3:])
            acf = np.full(n, np.nan)
            if lag >= 1:
                ss = m2 * cf
                ok_acf = (counts > lag + 1) & (ss > 1e-18)
                num = table[lag_row + lag]
                acf[ok_acf] = num[ok_acf] / ss[ok_acf]
            out[stat] = acf
        elif stat in shares:
            out[stat] = _div(table[share_row[stat]], cf)
        else:
            raise ValueError(f"unknown statistic {stat!r}")
    return out


_NO_EDGES: F64 = np.zeros(0, np.float64)
_ENTROPY_TERMS: F64 = _kernels.entropy_terms()


def sort_within(x: F64, seg: I64) -> F64:
    """``x`` sorted inside each segment (segments stay in order); see :func:`sort_segments`."""
    n = int(seg.max()) + 1 if seg.shape[0] else 0
    return sort_segments(x, *counts_starts(seg, n))


def sort_segments(x: F64, counts: I64, starts: I64) -> F64:
    """``x`` (grouped by segment: ``counts``, ``starts``) sorted inside each segment.

    Quantile series are non-negative (sizes, times), and the bit pattern of a
    non-negative float32 orders like the float, so a (SIMD) ``np.sort`` of
    ``seg << 32 | float32 bits`` replaces a 10x slower ``lexsort`` and per-segment
    sorts; float32 precision is what the feature columns keep anyway. (A negative value
    falls back to the ``lexsort`` of the float64 values.)

    A segment of :data:`LONG_SEGMENT` values or more (most of the values of a capture
    sit in a few long flows) needs no segment half: its 32-bit float32 patterns alone
    sort twice as fast as 64-bit keys, into the same order (the same low halves).
    """
    n = counts.shape[0]
    m = x.shape[0]
    if not _key_sortable(x, n):
        seg = np.repeat(np.arange(n, dtype=np.int64), counts)
        return x[np.lexsort((x, seg))]
    # in blocks of whole segments: one block's keys stay in cache in a recycled buffer,
    # instead of two fresh arrays the size of the series (page faults, memory traffic)
    out = np.empty(m)
    key = np.empty(min(m, SORT_BLOCK), np.uint64)
    long_segs = np.flatnonzero(counts >= LONG_SEGMENT)
    s0 = 0
    while s0 < n:
        if counts[s0] >= LONG_SEGMENT:
            lo = int(starts[s0])
            hi = lo + int(counts[s0])
            bits = x[lo:hi].astype(np.float32).view(np.uint32)
            bits.sort()
            out[lo:hi] = bits.view(np.float32)
            s0 += 1
            continue
        s1 = int(np.searchsorted(starts, starts[s0] + SORT_BLOCK, side="right"))
        s1 = min(max(s1 - 1, s0 + 1), n)  # the segments that start inside the block
        nxt = int(np.searchsorted(long_segs, s0))
        if nxt < long_segs.shape[0]:  # stop short of the next long segment
            s1 = min(s1, int(long_segs[nxt]))
        lo = int(starts[s0])
        hi = int(starts[s1 - 1] + counts[s1 - 1])
        if hi - lo > key.shape[0]:  # one segment longer than a block
            key = np.empty(hi - lo, np.uint64)
        k = segment_keys(x, counts, starts, s0, s1, key)
        block = key[:k]
        block.sort()
        put_key_values(block, out[lo:hi])
        s0 = s1
    return out


def _key_sortable(x: F64, n: int) -> bool:
    """Whether :func:`sort_segments` sorts ``x`` by float32 keys (else by float64 lexsort):
    no negative value (a NaN makes ``x.min()`` NaN: keys), at least one value."""
    return x.shape[0] > 0 and not float(x.min()) < 0 and n <= 2**31


def _sorted_union(x: F64, cs: tuple[I64, I64], parts: list[tuple[F64, F64, tuple[I64, I64]]]) -> F64:
    """:func:`sort_segments` of the bidirectional ``x``, by merging its two sorted
    direction parts (``(values, sorted, (counts, starts))``) when that is exactly the
    same: every value in one of them, and all three sorted by float32 keys."""
    n = cs[0].shape[0]
    if (
        len(parts) == 2
        and parts[0][0].shape[0] + parts[1][0].shape[0] == x.shape[0]
        and _key_sortable(x, n)
        and all(_key_sortable(values, n) for values, _, _ in parts)
    ):
        (_, xa, (ca, sa)), (_, xb, (cb, sb)) = parts
        return merge_sorted_segments(xa, ca, sa, xb, cb, sb)
    return sort_segments(x, *cs)


SORT_BLOCK = 1 << 14
"""Values per sort in :func:`sort_segments` (128 KB of keys)."""
LONG_SEGMENT = 4096
"""Segments this long are sorted alone by :func:`sort_segments` (the saving per value
outweighs the fixed cost of one more ``np.sort`` call)."""


@dataclass(frozen=True, slots=True)
class Bins:
    """Each sample's time axis cut into :data:`BINS` bins starting at its first packet."""

    t0: F64
    width: F64
    used: I64  # bins that cover the sample's span (the rest is padding)


def make_bins(first: F64, last: F64) -> Bins:
    """Bins for samples spanning ``first``..``last`` (NaN spans give one 1-second bin)."""
    span = np.nan_to_num(last - first, nan=0.0)
    width = np.maximum(span / BINS, MIN_BIN_S)
    used = np.clip(np.floor(span / width).astype(np.int64) + 1, 1, BINS)
    return Bins(t0=np.nan_to_num(first, nan=0.0), width=width, used=used)


def _bin_index(ts: F64, seg: I64, bins: Bins) -> I64:
    idx = np.floor((ts - bins.t0[seg]) / bins.width[seg]).astype(np.int64)
    np.clip(idx, 0, BINS - 1, out=idx)
    return idx


def binned(ts: F64, seg: I64, bins: Bins, weights: F64 | None = None, rows: I64 | None = None) -> F64:
    """Dense ``(len(rows), BINS)`` float32 matrix of per-bin sums (or counts) for ``rows``.

    ``rows`` (sorted sample indices; default all) limits the matrix to the samples that
    need it, so short samples never pay for ``BINS`` columns.
    """
    n = bins.t0.shape[0]
    if rows is None:
        rows = np.arange(n, dtype=np.int64)
    out_n = rows.shape[0]
    if ts.shape[0] == 0 or out_n == 0:
        return np.zeros((out_n, BINS), np.float32)
    local = np.full(n, -1, np.int64)
    local[rows] = np.arange(out_n)
    where = local[seg]
    keep = where >= 0
    idx = _bin_index(ts[keep], seg[keep], bins)
    w = None if weights is None else weights[keep]
    flat = np.bincount(where[keep] * BINS + idx, weights=w, minlength=out_n * BINS)
    return flat.reshape(out_n, BINS).astype(np.float32)


def binned_stats(ts: F64, seg: I64, bins: Bins, weights: F64 | None = None) -> dict[str, F64]:
    """mean, std, max, cv, share_empty, acf1 of each sample's per-bin sums over its used bins
    (per-bin event counts when ``weights`` is None)."""
    pkts, weighted = binned_pair(ts, seg, bins, np.ones(ts.shape[0]) if weights is None else weights)
    return pkts if weights is None else weighted


def binned_pair(
    ts: F64, seg: I64 | None, bins: Bins, weights: F64, cs: tuple[I64, I64] | None = None
) -> tuple[dict[str, F64], dict[str, F64]]:
    """:func:`binned_stats` of the event counts and of ``weights``, from one pass.

    Computed from the non-empty bins only (the events are time-ordered inside each
    sample, so a bin is a run of equal bin indices): the cost follows the number of
    events, not ``samples x BINS``.
    """
    n = bins.t0.shape[0]
    counts, starts = _grouping(seg, n, cs)
    sums = binned_kernel(
        np.ascontiguousarray(ts, dtype=np.float64),
        np.ascontiguousarray(weights, dtype=np.float64),
        counts,
        starts,
        bins.t0,
        bins.width,
        bins.used,
    )
    k = bins.used.astype(np.float64)
    out = []
    for total, sq, nonempty, vmax, prod, m_first, m_last in sums:
        mu = total / k
        ss = np.maximum(sq - k * mu * mu, 0.0)  # sum over used bins of (m - mu)^2
        std = np.sqrt(ss / k)
        # lag-1: sum_t (m_t - mu)(m_t+1 - mu) over used bins t, t+1
        lagged = prod - mu * ((total - m_last) + (total - m_first)) + (k - 1) * mu * mu
        acf1 = np.full(n, np.nan)
        ok = (bins.used > 2) & (ss > 1e-12)
        acf1[ok] = lagged[ok] / ss[ok]
        out.append(
            {
                "mean": mu,
                "std": std,
                "max": vmax,
                "cv": _div(std, np.where(mu > 0, mu, 0.0)),
                "share_empty": (k - nonempty) / k,
                "acf1": acf1,
            }
        )
    return out[0], out[1]


def periodicity(
    ts: F64, seg: I64 | None, bins: Bins, events: F64, cs: tuple[I64, I64] | None = None
) -> dict[str, F64]:
    """Dominant period of each sample's binned event counts, by FFT and by autocorrelation.

    ``period``: the period (s) of the first strong spectral line among periods the
    sample spans at least twice; ``period_strength``: the share of the non-DC power at
    that line and its harmonics (near 1 for a pulse train, low for noise).
    ``acf_peak_lag``: the lag (s, >= 2 bins, <= half the span) where the autocorrelation
    of the binned series (summed over +-1 bin of lag) first reaches a strong peak;
    ``acf_peak``: that value, clipped to [-1, 1]. NaN for samples with fewer than 4
    events (they are not binned at all) or a constant series.

    One zero-padded FFT serves both: its even coefficients are the ``BINS``-point
    spectrum, and the inverse of its power is the linear autocovariance.
    """
    n = bins.t0.shape[0]
    out = {name: np.full(n, np.nan) for name in ("period", "period_strength", "acf_peak_lag", "acf_peak")}
    # fewer than 4 used bins leave no allowed spectral line (a period must fit twice) and
    # no lag in 2..used/2: every output stays NaN, so those rows skip the FFTs
    rows = np.flatnonzero((events >= 4) & (bins.used >= 4))
    if rows.shape[0] == 0:
        return out
    counts, starts = _grouping(seg, n, cs)
    ts = np.ascontiguousarray(ts, dtype=np.float64)
    # rows in blocks: four (rows x 2*BINS) temporaries of a few hundred KB stay in cache
    # and are recycled by the allocator, instead of fresh megabytes (page faults) per call
    for lo in range(0, rows.shape[0], PERIOD_BLOCK_ROWS):
        block = rows[lo : lo + PERIOD_BLOCK_ROWS]
        used = bins.used[block]
        width = bins.width[block]
        xc = centred_bins(ts, counts, starts, block, bins.t0, bins.width, bins.used)
        spectrum = rfft_rows(xc)
        power2, best, nondc, harmonic_power, valid = spectrum_peaks(spectrum, used, PEAK_SHARE)
        period = np.full(block.shape[0], np.nan)
        strength = np.full(block.shape[0], np.nan)
        period[valid] = BINS * width[valid] / best[valid]
        strength[valid] = harmonic_power[valid] / nondc[valid]

        acov = irfft_rows(power2, 2 * BINS)
        peak, peak_val, avalid = acf_peaks(acov, used, PEAK_SHARE)
        lag_s = np.full(block.shape[0], np.nan)
        acf_peak = np.full(block.shape[0], np.nan)
        lag_s[avalid] = peak[avalid] * width[avalid]
        acf_peak[avalid] = peak_val[avalid]
        out["period"][block] = period
        out["period_strength"][block] = strength
        out["acf_peak_lag"][block] = lag_s
        out["acf_peak"][block] = acf_peak
    return out


PEAK_SHARE = 0.8
"""A local maximum within this share of the highest one counts as the dominant peak."""
PERIOD_BLOCK_ROWS = 512
"""Samples per FFT batch in :func:`periodicity` (each row's result is independent of it)."""


def first_messages(
    msg_len: F64, msg_dir: npt.NDArray[np.uint8], msg_flow: I64, n_flows: int
) -> tuple[F64, F64]:
    """``(n_flows, FIRST_N_MESSAGES)`` sizes and directions of each flow's first messages (NaN pad)."""
    counts, starts = counts_starts(msg_flow, n_flows)
    return first_values(msg_len, msg_dir, counts, starts, FIRST_N_MESSAGES)


_SERIES_STATS = {
    "msg_size": [
        "sum", "mean", "std", "min", "max", "p10", "p25", "p50", "p75", "p90",
        "skew", "kurt", "entropy", "cv", "trend", "share_small", "share_large",
    ],
    "msg_iat": [
        "mean", "std", "min", "max", "p10", "p25", "p50", "p75", "p90",
        "skew", "kurt", "entropy", "cv", "trend", "acf1", "acf2", "acf3", "share_lt1s", "share_gt30s",
    ],
    "pkt_size": ["sum", "mean", "std", "min", "max", "p10", "p50", "p90", "entropy", "cv"],
    "pkt_iat": ["mean", "std", "max", "p10", "p50", "p90", "cv", "skew", "acf1"],
}  # fmt: skip

_SHARES = {
    "share_small": ("le", float(SMALL_MSG_BYTES)),
    "share_large": ("ge", float(LARGE_MSG_BYTES)),
    "share_lt1s": ("lt", 1.0),
    "share_gt30s": ("gt", 30.0),
}


def compute(
    segs: Segments,
    pkt_ts: F64,
    pkt_size: F64,
    pkt_payload: F64,
    pkt_dir: npt.NDArray[np.uint8],
    pkt_flags: npt.NDArray[np.uint8],
    msg_ts: F64,
    msg_len: F64,
    msg_dir: npt.NDArray[np.uint8],
    first_sizes: F64,
    first_dirs: F64,
) -> dict[str, F64]:
    """Every feature of :data:`~minerscope.features.schema.FEATURE_NAMES` for every sample.

    Packet arrays cover every packet of the samples' flows; message arrays only the
    application messages (TLS application-data records, or payload packets of non-TLS
    flows), both grouped by sample in time order. ``first_sizes``/``first_dirs`` are the
    per-flow :func:`first_messages` matrices, indexed through ``segs.flow``.

    Returns:
        feature name -> float64 array (one value per sample), in schema order.
    """
    n = segs.n
    f: dict[str, F64] = {}
    pseg, mseg = segs.pkt_seg, segs.msg_seg
    pcounts, pstarts = counts_starts(pseg, n)
    first_ts = seg_reduce(np.minimum, pkt_ts, pcounts, pstarts)
    last_ts = seg_reduce(np.maximum, pkt_ts, pcounts, pstarts)
    duration = np.nan_to_num(last_ts - first_ts, nan=0.0)
    bins = make_bins(first_ts, last_ts)
    minutes = np.where(duration > 0, duration / 60.0, 0.0)

    per_dir: dict[str, dict[str, F64]] = {}
    # the size series of both directions, sorted: the bidirectional ones merge them
    split_sorted: dict[str, list[tuple[F64, F64, tuple[I64, I64]]]] = {"msg_size": [], "pkt_size": []}
    for direction in DIRECTIONS:  # c2s, s2c, then bidir
        # every series is grouped by sample through (counts, starts); the direction
        # splits carry no per-element sample ids (memory traffic nothing reads)
        if direction == "bidir":
            p_ts, p_size, p_pay, p_flags = pkt_ts, pkt_size, pkt_payload, pkt_flags
            m_ts, m_len = msg_ts, msg_len
            p_cs, m_cs = (pcounts, pstarts), counts_starts(mseg, n)
        else:
            want = 0 if direction == "c2s" else 1
            p_ts, p_size, p_pay, p_flags, p_counts = split_packets(
                pkt_dir, want, pkt_ts, pseg, n, pkt_size, pkt_payload, pkt_flags
            )
            m_ts, m_len, m_counts = split_messages(msg_dir, want, msg_ts, mseg, n, msg_len)
            p_cs, m_cs = (p_counts, _starts(p_counts)), (m_counts, _starts(m_counts))
        # the inter-arrival series have one value less per sample
        p_iat_cs, m_iat_cs = _minus_one(p_cs[0]), _minus_one(m_cs[0])
        m_iat = segment_diffs(m_ts, *m_cs)
        p_iat = segment_diffs(p_ts, *p_cs)
        size_xs: dict[str, F64] = {}
        for name, values, cs in (("msg_size", m_len, m_cs), ("pkt_size", p_size, p_cs)):
            if direction == "bidir":
                size_xs[name] = _sorted_union(values, cs, split_sorted[name])
            else:
                size_xs[name] = sort_segments(values, *cs)
                split_sorted[name].append((values, size_xs[name], cs))
        groups = {
            "msg_size": series_stats(
                m_len,
                None,
                n,
                _SERIES_STATS["msg_size"],
                edges=SIZE_EDGES,
                shares=_SHARES,
                cs=m_cs,
                xs=size_xs["msg_size"],
            ),
            "msg_iat": series_stats(
                m_iat, None, n, _SERIES_STATS["msg_iat"], edges=IAT_EDGES, shares=_SHARES, cs=m_iat_cs
            ),
            "pkt_size": series_stats(
                p_size, None, n, _SERIES_STATS["pkt_size"], edges=SIZE_EDGES, cs=p_cs, xs=size_xs["pkt_size"]
            ),
            "pkt_iat": series_stats(p_iat, None, n, _SERIES_STATS["pkt_iat"], edges=IAT_EDGES, cs=p_iat_cs),
        }
        pkts_stats, groups["bin_bytes"] = binned_pair(p_ts, None, bins, p_size, cs=p_cs)
        groups["bin_pkts"] = {k: pkts_stats[k] for k in ("mean", "std", "max", "cv")}
        msg_count = m_cs[0].astype(np.float64)
        groups["iat"] = periodicity(m_ts, None, bins, msg_count, cs=m_cs)
        for series, unit in (
            ("msg_size", "bytes"),
            ("msg_iat", "s"),
            ("pkt_size", "bytes"),
            ("pkt_iat", "s"),
            ("bin_bytes", "bytes"),
            ("bin_pkts", "count"),
            ("iat", "s"),
        ):
            for stat, values in groups[series].items():
                f[f"{direction}_{series}_{stat}_{_unit(stat, unit)}"] = values

        pkt_count, wire_bytes, payload, psh, ackonly = packet_sums(p_size, p_pay, p_flags, *p_cs)
        f[f"{direction}_msg_count"] = msg_count
        f[f"{direction}_pkt_count"] = pkt_count
        f[f"{direction}_msg_rate_per_min"] = _div(msg_count, minutes)
        f[f"{direction}_pkt_rate_per_min"] = _div(pkt_count, minutes)
        f[f"{direction}_byte_rate_bytes_per_s"] = _div(wire_bytes, duration)
        f[f"{direction}_psh_share_ratio"] = _div(psh, pkt_count)
        f[f"{direction}_ackonly_share_ratio"] = _div(ackonly, pkt_count)
        per_dir[direction] = {
            "pkts": pkt_count,
            "bytes": wire_bytes,
            "payload": payload,
            "msgs": msg_count,
            "msg_bytes": groups["msg_size"]["sum"],  # element-order sums, as a bincount
        }

    gf = gap_flag_stats(pkt_ts, pkt_flags, pcounts, pstarts, IDLE_GAP_S)
    f["bidir_syn_count"], f["bidir_fin_count"], f["bidir_rst_count"] = gf[0], gf[1], gf[2]

    f.update(_message_structure(msg_ts, msg_len, msg_dir, mseg, n, per_dir))
    f.update(_bursts(pkt_ts, pkt_size, pcounts, pstarts, minutes))
    both, c2s = per_dir["bidir"], per_dir["c2s"]
    f["bidir_byte_symmetry_ratio"] = _div(c2s["bytes"], both["bytes"])
    f["bidir_pkt_symmetry_ratio"] = _div(c2s["pkts"], both["pkts"])
    f["bidir_msg_byte_symmetry_ratio"] = _div(c2s["msg_bytes"], both["msg_bytes"])
    f["bidir_msg_count_symmetry_ratio"] = _div(c2s["msgs"], both["msgs"])
    f["bidir_payload_share_ratio"] = _div(both["payload"], both["bytes"])
    f["bidir_duration_s"] = np.where(pcounts > 0, duration, np.nan)
    f["bidir_idle_max_s"] = gf[3]
    f["bidir_idle_gt30s_count"] = gf[4]
    f["bidir_idle_gt60s_count"] = gf[5]
    f["bidir_idle_share_ratio"] = _div(gf[6], duration)
    for i in range(FIRST_N_MESSAGES):
        f[f"bidir_msg{i + 1}_size_bytes"] = first_sizes[segs.flow, i]
        f[f"bidir_msg{i + 1}_dir_flag"] = first_dirs[segs.flow, i]

    missing = set(FEATURE_NAMES) - f.keys()
    extra = f.keys() - set(FEATURE_NAMES)
    if missing or extra:  # a schema/extractor drift is our bug, caught on first use
        from minerscope.errors import InternalError

        raise InternalError(
            f"feature extractor drifted from schema: missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
        )
    return {name: f[name] for name in FEATURE_NAMES}


def _unit(stat: str, unit: str) -> str:
    """The unit token of ``stat`` computed over a series measured in ``unit``."""
    if stat == "entropy":
        return "bits"
    if stat in ("skew", "kurt", "cv", "period_strength", "acf_peak") or stat.startswith("share"):
        return "ratio"
    if stat.startswith("acf") and stat[3:].isdigit():
        return "ratio"
    return unit


def _message_structure(
    ts: F64,
    length: F64,
    direction: npt.NDArray[np.uint8],
    seg: I64,
    n: int,
    per_dir: dict[str, dict[str, F64]],
) -> dict[str, F64]:
    """Direction changes, same-direction runs, request/response pairs, unsolicited pushes."""
    f: dict[str, F64] = {}
    counts, starts = counts_starts(seg, n)
    # a server message after silence (first of its sample, or > RESPONSE_WINDOW_S after
    # the previous message either way) was not asked for: a job push, not a response
    (changes, pairs, unsolicited), pair_seg, delays, ratio_seg, size_ratio = message_pairs(
        ts, length, direction, counts, starts, RESPONSE_WINDOW_S
    )
    msgs = per_dir["bidir"]["msgs"]
    f["bidir_dir_changes_count"] = changes
    f["bidir_dir_change_rate_ratio"] = _div(changes, np.maximum(msgs - 1, 0))
    runs = message_runs(direction, length <= SMALL_MSG_BYTES, counts, starts)
    f["c2s_run_max_count"] = runs[0]
    f["s2c_run_max_count"] = runs[1]
    f["bidir_msg_small_run_max_count"] = runs[2]
    d = series_stats(delays, pair_seg, n, ["mean", "p50", "max"])
    c2s_msgs, s2c_msgs = per_dir["c2s"]["msgs"], per_dir["s2c"]["msgs"]
    f["bidir_reqresp_count"] = pairs
    f["bidir_reqresp_share_ratio"] = _div(pairs, c2s_msgs)
    f["bidir_reqresp_delay_mean_s"] = d["mean"]
    f["bidir_reqresp_delay_p50_s"] = d["p50"]
    f["bidir_reqresp_delay_max_s"] = d["max"]
    f["bidir_reqresp_size_ratio_mean_ratio"] = series_stats(size_ratio, ratio_seg, n, ["mean"])["mean"]
    f["s2c_unsolicited_count"] = unsolicited
    f["s2c_unsolicited_share_ratio"] = _div(unsolicited, s2c_msgs)
    f["c2s_unanswered_share_ratio"] = _div(c2s_msgs - pairs, c2s_msgs)
    return f


def _bursts(ts: F64, wire: F64, counts: I64, starts: I64, minutes: F64) -> dict[str, F64]:
    """Bursts: runs of packets (both directions) separated by less than :data:`BURST_GAP_S`."""
    b = burst_stats(ts, wire, counts, starts, BURST_GAP_S)
    return {
        "bidir_burst_count": b[0],
        "bidir_burst_pkts_mean_count": b[1],
        "bidir_burst_pkts_max_count": b[2],
        "bidir_burst_bytes_mean_bytes": b[3],
        "bidir_burst_bytes_max_bytes": b[4],
        "bidir_burst_duration_mean_s": b[5],
        "bidir_burst_duration_max_s": b[6],
        "bidir_burst_rate_per_min": _div(b[0], minutes),
    }
