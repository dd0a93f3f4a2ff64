"""A flow's time series as the detail screen draws them: sizes, gaps and volume per direction.

Pure numpy over one flow's slice of a :class:`~minerscope.flows.records.FlowTable`, so
the numbers under each sparkline are testable without a terminal. Series are capped at
:data:`MAX_POINTS` by taking the maximum of equal buckets (a sparkline is a few dozen
cells wide; a mining flow can carry a million messages, and the peaks are what an
analyst looks for: the periodic job pushes and share submits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minerscope.flows.records import DIR_C2S, DIR_S2C, FlowTable

MAX_POINTS = 512
"""Longest series handed to a Sparkline widget."""

TIME_BINS = 60
"""Bins of the bytes-per-time-bin series over the flow's life."""


@dataclass(frozen=True, slots=True)
class FlowSeries:
    """Sparkline data of one flow; ``c2s``/``s2c`` is client->server / server->client."""

    c2s_msg_bytes: list[float]
    s2c_msg_bytes: list[float]
    c2s_iat_s: list[float]
    s2c_iat_s: list[float]
    c2s_bytes_per_bin: list[float]
    s2c_bytes_per_bin: list[float]
    bin_seconds: float
    messages: int
    packets: int


def _cap(values: npt.NDArray[np.float64], limit: int = MAX_POINTS) -> list[float]:
    if values.size <= limit:
        return [float(v) for v in values]
    edges = np.linspace(0, values.size, limit + 1).astype(np.int64)
    return [float(v) for v in np.maximum.reduceat(values, edges[:-1])]


def flow_series(table: FlowTable, index: int, bins: int = TIME_BINS) -> FlowSeries:
    """Compute the detail-screen series of flow ``index`` of ``table``.

    Message sizes and inter-arrival times come from the message arrays (TLS records, or
    payload-carrying packets for cleartext flows); bytes per bin from every packet's size
    (as the features read it: Ethernet-equivalent, whatever framed the capture), in ``bins``
    equal bins between the flow's first and last packet.

    Raises:
        IndexError: ``index`` is not a flow of ``table``.
    """
    if not 0 <= index < len(table):
        raise IndexError(f"flow {index} not in a table of {len(table)} flows")
    m0, m1 = int(table.msg_offsets[index]), int(table.msg_offsets[index + 1])
    p0, p1 = int(table.pkt_offsets[index]), int(table.pkt_offsets[index + 1])
    msg_dir = table.msg_dir[m0:m1]
    msg_len = table.msg_len[m0:m1].astype(np.float64)
    msg_ts = table.msg_ts[m0:m1]
    pkt_ts = table.pkt_ts[p0:p1]
    pkt_len = table.pkt_size[p0:p1].astype(np.float64)
    pkt_dir = table.pkt_dir[p0:p1]

    def iat(direction: int) -> npt.NDArray[np.float64]:
        ts = msg_ts[msg_dir == direction]
        return np.diff(ts) if ts.size > 1 else np.zeros(0)

    if pkt_ts.size:
        start, end = float(pkt_ts[0]), float(pkt_ts[-1])
        span = max(end - start, 1e-9)
        edges = np.linspace(start, start + span, bins + 1)
        c2s_hist = np.histogram(pkt_ts[pkt_dir == DIR_C2S], bins=edges, weights=pkt_len[pkt_dir == DIR_C2S])[
            0
        ]
        s2c_hist = np.histogram(pkt_ts[pkt_dir == DIR_S2C], bins=edges, weights=pkt_len[pkt_dir == DIR_S2C])[
            0
        ]
        bin_s = span / bins
    else:
        c2s_hist = s2c_hist = np.zeros(0)
        bin_s = 0.0
    return FlowSeries(
        c2s_msg_bytes=_cap(msg_len[msg_dir == DIR_C2S]),
        s2c_msg_bytes=_cap(msg_len[msg_dir == DIR_S2C]),
        c2s_iat_s=_cap(iat(DIR_C2S)),
        s2c_iat_s=_cap(iat(DIR_S2C)),
        c2s_bytes_per_bin=[float(v) for v in c2s_hist],
        s2c_bytes_per_bin=[float(v) for v in s2c_hist],
        bin_seconds=bin_s,
        messages=m1 - m0,
        packets=p1 - p0,
    )
