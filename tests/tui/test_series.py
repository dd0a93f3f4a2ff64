"""Sparkline series computed from a flow's slice of the packet and message arrays."""

from __future__ import annotations

import numpy as np
import pytest

from minerscope.flows.records import FlowTable
from minerscope.tui.series import MAX_POINTS, flow_series


def two_flow_table() -> FlowTable:
    table = FlowTable.empty()
    # flow 0: 4 packets/messages; flow 1: 3
    ts = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 10.5, 12.0])
    size = np.array([100, 200, 300, 400, 50, 60, 70], np.uint32)
    direction = np.array([0, 1, 0, 1, 0, 0, 1], np.uint8)
    offsets = np.array([0, 4, 7], np.int64)
    table.pkt_offsets, table.msg_offsets = offsets, offsets.copy()
    table.pkt_ts, table.msg_ts = ts, ts.copy()
    table.pkt_size, table.msg_len = size, size.copy()
    table.pkt_payload_len = size.copy()
    table.pkt_dir, table.msg_dir = direction, direction.copy()
    table.pkt_flags = np.zeros(7, np.uint8)
    table.msg_type = np.zeros(7, np.uint8)
    import polars as pl

    table.summary = pl.DataFrame({"flow_id": [0, 1]})
    return table


def test_series_split_by_direction() -> None:
    s = flow_series(two_flow_table(), 0, bins=3)
    assert s.c2s_msg_bytes == [100.0, 300.0]
    assert s.s2c_msg_bytes == [200.0, 400.0]
    assert s.c2s_iat_s == [3.0]
    assert s.s2c_iat_s == [5.0]
    assert s.bin_seconds == pytest.approx(2.0)
    assert s.c2s_bytes_per_bin == [100.0, 300.0, 0.0]
    assert s.s2c_bytes_per_bin == [200.0, 0.0, 400.0]
    assert (s.messages, s.packets) == (4, 4)


def test_second_flow_uses_its_own_slice() -> None:
    s = flow_series(two_flow_table(), 1, bins=2)
    assert s.c2s_msg_bytes == [50.0, 60.0]
    assert s.c2s_iat_s == [0.5]
    assert s.s2c_iat_s == []
    assert sum(s.c2s_bytes_per_bin) + sum(s.s2c_bytes_per_bin) == 180.0


def test_long_series_are_capped_keeping_peaks() -> None:
    table = two_flow_table()
    n = 10_000
    table.msg_offsets = np.array([0, n, n], np.int64)
    table.msg_ts = np.arange(n, dtype=np.float64)
    table.msg_len = np.ones(n, np.uint32)
    table.msg_len[5_000] = 9_999
    table.msg_dir = np.zeros(n, np.uint8)
    s = flow_series(table, 0)
    assert len(s.c2s_msg_bytes) == MAX_POINTS
    assert max(s.c2s_msg_bytes) == 9_999.0


def test_unknown_flow_index() -> None:
    with pytest.raises(IndexError, match="flow 2 not in a table of 2"):
        flow_series(two_flow_table(), 2)
