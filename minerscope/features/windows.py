"""Cut flows into samples (time windows and the whole flow) and extract their features.

A pool connection lasts hours; waiting for it to end before judging it is useless to an
analyst watching a live link, and one long flow would otherwise be one training sample.
So every flow yields one sample per non-empty window of ``window_s`` seconds (counted
from its first packet), plus, optionally, one sample for the whole flow
(``window == -1``). A verdict exists after the first window, and long flows contribute
many samples (which is why training must split by capture/session, never by window).

Extraction runs over all flows of a :class:`~minerscope.flows.records.FlowTable` at once
(in chunks of flows to bound the memory of the binned matrices); see
:mod:`minerscope.features.series` for the vectorised statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.errors import InputError
from minerscope.features import series
from minerscope.features._kernels import backwards_in_flow, merge_keys, nearly_sorted_order
from minerscope.features.schema import FEATURE_NAMES
from minerscope.flows.records import MSG_PLAIN, TLS_APPLICATION_DATA, FlowTable

DEFAULT_WINDOW_S = 300.0
WHOLE_FLOW = -1
"""``window`` value of a whole-flow sample."""

APP_MSG_TYPES = (MSG_PLAIN, TLS_APPLICATION_DATA)
"""Message types that are application data: non-TLS payload packets and TLS application_data."""

CHUNK_SAMPLES = 16_384
"""Samples per extraction chunk (bounds the ``samples x BINS`` matrices to a few MB each)."""

KEY_COLUMNS = ("flow_id", "window", "window_start", "window_end")
"""The columns that name a sample (flow and window), ahead of the feature columns."""


def extract_features(
    table: FlowTable,
    *,
    window_s: float | None = DEFAULT_WINDOW_S,
    whole_flow: bool = True,
    min_messages: int = 0,
) -> pl.DataFrame:
    """Feature rows for every window of every flow (and every whole flow).

    Args:
        table: the flows.
        window_s: window length in seconds; None for whole-flow samples only.
        whole_flow: also emit one ``window == -1`` row per flow.
        min_messages: leave out samples with fewer application messages (their
            ``bidir_msg_count``): the same rows as filtering the result, without computing
            the features of rows a model was not trained on (on a busy link, most of them).

    Returns:
        polars DataFrame: ``flow_id`` (Int64, the table's), ``window`` (Int32, -1 for the
        whole flow), ``window_start``/``window_end`` (Float64 epoch seconds; a window ends
        at its nominal end or the flow's last packet, whichever is earlier), then every
        column of :data:`~minerscope.features.schema.FEATURE_NAMES` as Float32 (NaN when
        undefined). Rows are ordered by flow, whole-flow row first, then windows.

    Raises:
        InputError: ``window_s`` is not positive, or neither windows nor whole flows asked for.
    """
    if window_s is not None and not window_s > 0:
        raise InputError(f"window length must be positive, got {window_s!r} s")
    if window_s is None and not whole_flow:
        raise InputError("nothing to extract: no window length and whole_flow=False")
    n_flows = len(table)
    if n_flows == 0:
        return _frame([], [], [], [], [])

    first, last = _flow_span(table)
    est = np.ones(n_flows, np.int64) if whole_flow else np.zeros(n_flows, np.int64)
    if window_s is not None:
        est += np.floor(np.nan_to_num(last - first, nan=0.0) / window_s).astype(np.int64) + 1
    bounds = _chunk_bounds(est)

    flow_ids = table.summary["flow_id"].to_numpy().astype(np.int64)
    keys: list[list[npt.NDArray[np.generic]]] = [[], [], [], []]
    mats: list[npt.NDArray[np.float32]] = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        for chunk_keys, feats in _extract_chunk(
            table, int(a), int(b), first, last, window_s, whole_flow, min_messages
        ):
            chunk_keys[0] = flow_ids[chunk_keys[0]]
            for i, k in enumerate(chunk_keys):
                keys[i].append(k)
            # one (features x samples) float32 block per chunk: every column a contiguous
            # row that polars takes as it is
            mat = np.empty((len(FEATURE_NAMES), chunk_keys[0].shape[0]), np.float32)
            for i, name in enumerate(FEATURE_NAMES):
                mat[i] = feats[name]
            mats.append(mat)
    return _frame(keys[0], keys[1], keys[2], keys[3], mats)


def _frame(
    flow: list[npt.NDArray[np.generic]],
    window: list[npt.NDArray[np.generic]],
    start: list[npt.NDArray[np.generic]],
    end: list[npt.NDArray[np.generic]],
    mats: list[npt.NDArray[np.float32]],
) -> pl.DataFrame:
    def cat(parts: list[npt.NDArray[np.generic]], dtype: type[np.generic]) -> npt.NDArray[np.generic]:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    flow_id = cat(flow, np.int64)
    window_idx = cat(window, np.int32)
    # rows by flow, whole-flow row first, then windows: a stable sort, skipped (with
    # its gather of every column) when the chunks already came out in that order
    order: npt.NDArray[np.intp] | None = None
    if flow_id.shape[0] > 1:
        step_f = np.diff(flow_id)
        if (step_f < 0).any() or ((step_f == 0) & (np.diff(window_idx) < 0)).any():
            order = np.lexsort((window_idx, flow_id))

    def put(values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return values if order is None else values[order]

    keys = [
        pl.Series("flow_id", put(flow_id), pl.Int64),
        pl.Series("window", put(window_idx), pl.Int32),
        pl.Series("window_start", put(cat(start, np.float64)), pl.Float64),
        pl.Series("window_end", put(cat(end, np.float64)), pl.Float64),
    ]
    if flow_id.shape[0] == 0:
        return pl.DataFrame(keys).hstack(pl.DataFrame(schema=dict.fromkeys(FEATURE_NAMES, pl.Float32)))
    mat = mats[0] if len(mats) == 1 else np.concatenate(mats, axis=1)
    if order is not None:
        mat = mat[:, order]
    return pl.DataFrame(keys + _feature_columns(mat))


def _feature_columns(mat: npt.NDArray[np.float32]) -> list[pl.Series]:
    """The (features x samples) matrix as the Float32 feature columns, in schema order.

    One polars Series takes the whole matrix (without a copy) and every column is a
    zero-copy slice of it: ``pl.from_numpy(..., orient="col")`` builds ~280 Series
    through the Python constructor, ~3x the cost (a few % of an extraction), for the
    same values.
    """
    n = mat.shape[1]
    flat = pl.Series("", np.ascontiguousarray(mat).reshape(-1), pl.Float32)
    return [flat.slice(i * n, n).alias(name) for i, name in enumerate(FEATURE_NAMES)]


def _flow_span(table: FlowTable) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """First and last packet time of every flow (NaN for a flow without packets)."""
    offsets = table.pkt_offsets
    n = len(table)
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    nonempty = offsets[1:] > offsets[:-1]
    if nonempty.any():
        first[nonempty] = np.minimum.reduceat(table.pkt_ts, offsets[:-1][nonempty])
        last[nonempty] = np.maximum.reduceat(table.pkt_ts, offsets[:-1][nonempty])
    return first, last


def _chunk_bounds(est: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Flow indices cutting the table into chunks of about :data:`CHUNK_SAMPLES` samples."""
    cum = np.cumsum(est)
    total = int(cum[-1]) if cum.shape[0] else 0
    marks = np.arange(CHUNK_SAMPLES, total, CHUNK_SAMPLES)
    cuts = np.searchsorted(cum, marks, side="left") + 1
    return np.unique(np.concatenate([[0], cuts, [est.shape[0]]])).astype(np.int64)


def _extract_chunk(
    table: FlowTable,
    a: int,
    b: int,
    first: npt.NDArray[np.float64],
    last: npt.NDArray[np.float64],
    window_s: float | None,
    whole_flow: bool,
    min_messages: int,
) -> list[tuple[list[npt.NDArray[np.generic]], dict[str, npt.NDArray[np.float64]]]]:
    """Features of flows ``a..b`` (local flow index 0 is flow ``a``), of the samples with at
    least ``min_messages`` application messages."""
    n = b - a
    p0, p1 = int(table.pkt_offsets[a]), int(table.pkt_offsets[b])
    m0, m1 = int(table.msg_offsets[a]), int(table.msg_offsets[b])
    pkt_counts = np.diff(table.pkt_offsets[a : b + 1])
    pkt_flow = np.repeat(np.arange(n, dtype=np.int64), pkt_counts)
    msg_flow_all = np.repeat(np.arange(n, dtype=np.int64), np.diff(table.msg_offsets[a : b + 1]))
    # float64 already: a view, not a copy (nothing below writes into the table's arrays)
    pkt_ts = np.asarray(table.pkt_ts[p0:p1], dtype=np.float64)
    pkt_size = table.pkt_size[p0:p1].astype(np.float64)
    pkt_payload = table.pkt_payload_len[p0:p1].astype(np.float64)
    pkt_dir = table.pkt_dir[p0:p1]
    pkt_flags = table.pkt_flags[p0:p1]
    app = np.isin(table.msg_type[m0:m1], APP_MSG_TYPES)
    msg_flow = msg_flow_all[app]
    msg_ts = table.msg_ts[m0:m1][app].astype(np.float64, copy=False)
    msg_len = table.msg_len[m0:m1][app].astype(np.float64)
    msg_dir = table.msg_dir[m0:m1][app]

    # per-flow time order is the contract; restore it if a producer broke it
    p_order = _time_order(pkt_flow, pkt_ts)
    if p_order is not None:
        pkt_ts, pkt_size, pkt_payload = pkt_ts[p_order], pkt_size[p_order], pkt_payload[p_order]
        pkt_dir, pkt_flags = pkt_dir[p_order], pkt_flags[p_order]
    m_order = _time_order(msg_flow, msg_ts)
    if m_order is not None:
        msg_ts, msg_len, msg_dir = msg_ts[m_order], msg_len[m_order], msg_dir[m_order]

    first_sizes, first_dirs = series.first_messages(msg_len, msg_dir, msg_flow, n)
    f_first, f_last = first[a:b], last[a:b]
    results = []

    def run(
        segs: series.Segments, keys: list[npt.NDArray[np.generic]]
    ) -> tuple[list[npt.NDArray[np.generic]], dict[str, npt.NDArray[np.float64]]]:
        packets: tuple[npt.NDArray[Any], ...] = (pkt_ts, pkt_size, pkt_payload, pkt_dir, pkt_flags)
        messages: tuple[npt.NDArray[Any], ...] = (msg_ts, msg_len, msg_dir)
        if min_messages > 0:
            kept = np.bincount(segs.msg_seg, minlength=segs.n) >= min_messages
            if not kept.all():
                segs, keys, packets, messages = _kept_samples(segs, kept, keys, packets, messages)
        p_ts, p_size, p_payload, p_dir, p_flags = packets
        m_ts, m_len, m_dir = messages
        return keys, series.compute(
            segs, p_ts, p_size, p_payload, p_dir, p_flags, m_ts, m_len, m_dir, first_sizes, first_dirs
        )

    if whole_flow:
        segs = series.Segments(n=n, pkt_seg=pkt_flow, msg_seg=msg_flow, flow=np.arange(n, dtype=np.int64))
        keys: list[npt.NDArray[np.generic]] = [
            np.arange(a, b, dtype=np.int64),
            np.full(n, WHOLE_FLOW, np.int32),
            f_first,
            f_last,
        ]
        results.append(run(segs, keys))

    if window_s is not None:
        base = np.where(np.isfinite(f_first), f_first, 0.0)
        if msg_ts.shape[0]:  # a flow with messages but no packets still gets a time origin
            no_pkts = ~np.isfinite(f_first)
            if no_pkts.any():
                mfirst = np.full(n, np.inf)
                np.minimum.at(mfirst, msg_flow, msg_ts)
                base = np.where(no_pkts & np.isfinite(mfirst), mfirst, base)
        pw = _packet_windows(pkt_ts, pkt_flow, pkt_counts, base, f_last, window_s)
        mw = np.maximum(np.floor((msg_ts - base[msg_flow]) / window_s), 0).astype(np.int64)
        width = int(max(pw.max(initial=0), mw.max(initial=0))) + 1
        pkey = pkt_flow * width + pw
        mkey = msg_flow * width + mw
        merged, wkeys, pseg, mseg = merge_keys(pkey, mkey)  # both sorted: one merge
        if not merged:
            wkeys = np.unique(np.concatenate([pkey, mkey]))
            pseg = np.searchsorted(wkeys, pkey).astype(np.int64)
            mseg = np.searchsorted(wkeys, mkey).astype(np.int64)
        segs = series.Segments(
            n=int(wkeys.shape[0]),
            pkt_seg=pseg,
            msg_seg=mseg,
            flow=(wkeys // width).astype(np.int64),
        )
        widx = (wkeys % width).astype(np.int64)
        w_flow = segs.flow
        start = base[w_flow] + widx * window_s
        end = start + window_s
        flow_last = f_last[w_flow]
        end = np.where(np.isfinite(flow_last), np.minimum(end, np.maximum(flow_last, start)), end)
        keys = [w_flow + a, widx.astype(np.int32), start, end]
        results.append(run(segs, keys))
    return results


def _kept_samples(
    segs: series.Segments,
    kept: npt.NDArray[np.bool_],
    keys: list[npt.NDArray[np.generic]],
    packets: tuple[npt.NDArray[Any], ...],
    messages: tuple[npt.NDArray[Any], ...],
) -> tuple[
    series.Segments, list[npt.NDArray[np.generic]], tuple[npt.NDArray[Any], ...], tuple[npt.NDArray[Any], ...]
]:
    """Only the samples ``kept``: their keys, their packets and messages, renumbered in order
    (samples stay grouped and in time order, as :func:`series.compute` wants them)."""
    new_index = np.cumsum(kept) - 1
    in_pkt = kept[segs.pkt_seg]
    in_msg = kept[segs.msg_seg]
    segs = series.Segments(
        n=int(np.count_nonzero(kept)),
        pkt_seg=new_index[segs.pkt_seg[in_pkt]],
        msg_seg=new_index[segs.msg_seg[in_msg]],
        flow=segs.flow[kept],
    )
    return (
        segs,
        [k[kept] for k in keys],
        tuple(a[in_pkt] for a in packets),
        tuple(a[in_msg] for a in messages),
    )


def _packet_windows(
    ts: npt.NDArray[np.float64],
    flow: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    base: npt.NDArray[np.float64],
    last: npt.NDArray[np.float64],
    window_s: float,
) -> npt.NDArray[np.int64]:
    """Window index of every packet: ``floor((ts - base) / window_s)``, at least 0.

    Most flows are shorter than a window. When every flow with packets (``counts``)
    has a finite last packet time ``last`` with ``(last - base) / window_s < 1``
    (``base``, its time origin, is always finite), every packet is in window 0:
    subtraction, division and floor are monotonic, so no packet's index exceeds its
    flow's last packet's 0, and the five passes over the packets are skipped, for the
    same indices. (A NaN packet time makes its flow's ``last`` NaN: the general path.)
    """
    has = counts > 0
    if bool(np.isfinite(last[has]).all()) and bool(((last[has] - base[has]) / window_s < 1.0).all()):
        return np.zeros(ts.shape[0], np.int64)
    return np.maximum(np.floor((ts - base[flow]) / window_s), 0).astype(np.int64)


def _time_order(flow: npt.NDArray[np.int64], ts: npt.NDArray[np.float64]) -> npt.NDArray[np.intp] | None:
    """A stable (flow, time) ordering if the arrays are not already in it, else None."""
    if ts.shape[0] < 2 or not backwards_in_flow(flow, ts):
        return None
    # usually a few packets swapped by the capture: an insertion sort fixes them in
    # linear time; a badly shuffled input falls back to the general sort
    done, order = nearly_sorted_order(flow, ts, 4 * ts.shape[0])
    return order if done else np.lexsort((ts, flow))
