"""The extraction's shortcuts give exactly what the general paths give."""

from __future__ import annotations

import numpy as np
import pytest

from minerscope.features import series
from minerscope.features.series import counts_starts
from minerscope.features.windows import _packet_windows


def _general_windows(ts: np.ndarray, flow: np.ndarray, base: np.ndarray, window_s: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.maximum(np.floor((ts - base[flow]) / window_s), 0).astype(np.int64)


@pytest.mark.parametrize("long_segment", [1, 40, 1 << 40])
def test_long_segments_sort_like_the_key_blocks(long_segment: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    counts = rng.choice([0, 1, 5, 39, 40, 300], 80).astype(np.int64)
    seg = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
    x = np.round(rng.lognormal(4.0, 2.0, seg.shape[0]), 1)
    x[::13] = np.nan
    x[::17] = 0.0
    x[::19] = np.inf
    monkeypatch.setattr(series, "SORT_BLOCK", 64)
    want = series.sort_segments(x, *counts_starts(seg, counts.shape[0]))  # key blocks only
    monkeypatch.setattr(series, "LONG_SEGMENT", long_segment)
    got = series.sort_segments(x, *counts_starts(seg, counts.shape[0]))
    assert got.tobytes() == want.tobytes()
    ref = np.concatenate([np.sort(x[seg == s].astype(np.float32)) for s in range(counts.shape[0])])
    assert np.array_equal(got, ref.astype(np.float64), equal_nan=True)


def test_short_flows_skip_the_packet_window_arithmetic() -> None:
    rng = np.random.default_rng(8)
    counts = np.array([3, 0, 5, 1, 4], np.int64)
    flow = np.repeat(np.arange(5, dtype=np.int64), counts)
    ts = 1.7e9 + 1000.0 * flow + rng.uniform(0.0, 250.0, flow.shape[0])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    has = counts > 0
    first, last = np.full(5, np.nan), np.full(5, np.nan)
    first[has] = np.minimum.reduceat(ts, offsets[:-1][has])
    last[has] = np.maximum.reduceat(ts, offsets[:-1][has])
    base = np.where(np.isfinite(first), first, 0.0)
    for window_s in (300.0, 60.0, 1.0):  # every flow in one window, then not
        got = _packet_windows(ts, flow, counts, base, last, window_s)
        assert np.array_equal(got, _general_windows(ts, flow, base, window_s))
    assert not _packet_windows(ts, flow, counts, base, last, 300.0).any()
    assert _packet_windows(ts, flow, counts, base, last, 60.0).any()
    # a non-finite time makes its flow's last packet time non-finite: the general path
    for bad in (np.inf, -np.inf):
        odd = ts.copy()
        odd[1] = bad
        odd_last = last.copy()
        odd_last[0] = np.max(odd[:3])
        odd_base = base.copy()
        odd_base[0] = np.min(odd[:3]) if np.isfinite(np.min(odd[:3])) else 0.0
        with np.errstate(invalid="ignore"):  # +inf cannot be cast to a window index
            got = _packet_windows(odd, flow, counts, odd_base, odd_last, 300.0)
        assert np.array_equal(got, _general_windows(odd, flow, odd_base, 300.0))
