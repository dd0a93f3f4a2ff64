"""Fixtures for the workstation: the real sample's triage results, and hand-built inputs.

``sample_updates`` runs the real triage pipeline over the bundled sample capture once
per session; ``replay_loader`` feeds those real updates to an app (so snapshot tests do
not pay the pipeline each time; the journey tests run the pipeline inside the app).
``build_table`` makes scored rows with shapes the sample lacks (100,000 flows, hostile
SNI values, a load that never ends) for the tests and bench that need them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from minerscope.flows.records import FLOW_SUMMARY_SCHEMA, FlowTable
from minerscope.triage import TriageOptions, TriageUpdate
from minerscope.tui.app import Loader

COINS = ("btc", "etc", "eth", "ltc", "xmr")


def build_table(n: int, seed: int = 7) -> tuple[pl.DataFrame, FlowTable]:
    """``n`` flows with per-packet/message arrays and scored rows (flow i <-> row i)."""
    rng = np.random.default_rng(seed)
    pkts = rng.integers(4, 40, n)
    pkt_offsets = np.concatenate([[0], np.cumsum(pkts)]).astype(np.int64)
    total = int(pkt_offsets[-1])
    starts = 1_700_000_000.0 + np.arange(n, dtype=np.float64) * 3.0
    pkt_ts = np.repeat(starts, pkts) + np.concatenate([np.sort(rng.random(k)) * 60 for k in pkts])
    pkt_dir = rng.integers(0, 2, total).astype(np.uint8)
    pkt_len = rng.integers(60, 1500, total).astype(np.uint32)
    mining = np.arange(n) % 5 == 0
    p = np.where(mining, 0.9 + rng.random(n) * 0.099, rng.random(n) * 0.4)
    coin = [COINS[(i // 5) % len(COINS)] if m else "" for i, m in enumerate(mining)]
    summary = {name: [None] * n for name in FLOW_SUMMARY_SCHEMA}
    summary.update(
        flow_id=list(range(n)),
        capture=["layout.pcapng"] * n,
        proto=[6] * n,
        ip_version=[4] * n,
        src=[f"10.0.{i // 250}.{i % 250 + 1}" for i in range(n)],
        sport=[40000 + i % 20000 for i in range(n)],
        dst=[f"127.0.{i % 7}.{i % 200 + 1}" for i in range(n)],
        dport=[3333 if m else 443 for m in mining],
        vlan=[0] * n,
        first_seen=starts.tolist(),
        last_seen=(starts + 60).tolist(),
        duration=[60.0] * n,
        packets=pkts.tolist(),
        bytes=np.add.reduceat(pkt_len.astype(np.int64), pkt_offsets[:-1]).tolist(),
        is_tls=[not m for m in mining],
        sni=["" if m else f"svc{i}.example.net" for i, m in enumerate(mining)],
        alpn=["" if m else "h2,http/1.1" for m in mining],
        dns_names=[f"pool{i}.mine.test" if m else "" for i, m in enumerate(mining)],
        stage0=[json.dumps([{"kind": "stratum", "detail": "mining.subscribe"}]) if m else "" for m in mining],
        end_reason=["fin"] * n,
        syn_seen=[True] * n,
    )
    for key in (
        "c2s_packets",
        "s2c_packets",
        "c2s_bytes",
        "s2c_bytes",
        "c2s_payload_bytes",
        "s2c_payload_bytes",
        "fragments",
    ):
        summary[key] = [0] * n
    for key in ("tls_version", "ja4", "ja3", "http_host", "ws_path"):
        summary[key] = [""] * n
    frame = pl.DataFrame(summary, schema=FLOW_SUMMARY_SCHEMA)
    table = FlowTable(
        summary=frame,
        pkt_offsets=pkt_offsets,
        pkt_ts=pkt_ts,
        pkt_size=pkt_len,
        pkt_payload_len=np.maximum(pkt_len.astype(np.int64) - 54, 0).astype(np.uint32),
        pkt_dir=pkt_dir,
        pkt_flags=np.zeros(total, np.uint8),
        msg_offsets=pkt_offsets.copy(),
        msg_ts=pkt_ts.copy(),
        msg_len=pkt_len.copy(),
        msg_dir=pkt_dir.copy(),
        msg_type=np.zeros(total, np.uint8),
    )
    probs = [
        json.dumps({c: (0.8 if c == coin[i] else 0.05) for c in COINS})
        if coin[i]
        else json.dumps({c: 0.2 for c in COINS})
        for i in range(n)
    ]
    feats = json.dumps(
        [
            {"name": "c2s_msg_bytes_median", "value": 212.0, "contribution": 1.7},
            {"name": "bidirectional_iat_periodicity", "value": 0.93, "contribution": 0.9},
            {"name": "s2c_msg_bytes_std", "value": 31.5, "contribution": -0.4},
        ]
    )
    rows = frame.with_columns(
        pl.Series("p_mining", p),
        pl.Series("stage1", ["mining" if x >= 0.5 else "benign" for x in p]),
        pl.Series("verdict", ["mining" if m else "benign" for m in mining]),
        pl.Series("coin", coin),
        pl.Series("coin_probs", probs),
        pl.Series("top_features", [feats] * n),
        pl.Series("window", [-1] * n, dtype=pl.Int64),
        pl.Series("model", ["layout-fixture"] * n),
    )
    return rows, table


def layout_loader(n: int, chunks: int = 2) -> Loader:
    """An ``iter_triage``-shaped generator over ``n`` hand-built flows in ``chunks`` parts."""

    def run(
        path: Path, options: TriageOptions | None, *, cancel: threading.Event | None = None
    ) -> Iterator[TriageUpdate]:
        rows, table = build_table(n)
        step = max(1, -(-n // chunks))
        for start in range(0, n, step):
            stop = min(n, start + step)
            part = _slice(table, start, stop)
            yield TriageUpdate(
                path=str(path),
                bytes_read=stop,
                bytes_total=n,
                packets=int(table.pkt_offsets[stop]),
                flows_scored=stop,
                rows=rows.slice(start, stop - start),
                table=part,
                done=stop == n,
            )

    return run


def _slice(table: FlowTable, start: int, stop: int) -> FlowTable:
    p0, p1 = int(table.pkt_offsets[start]), int(table.pkt_offsets[stop])
    m0, m1 = int(table.msg_offsets[start]), int(table.msg_offsets[stop])
    return FlowTable(
        summary=table.summary.slice(start, stop - start),
        pkt_offsets=table.pkt_offsets[start : stop + 1] - p0,
        pkt_ts=table.pkt_ts[p0:p1],
        pkt_size=table.pkt_size[p0:p1],
        pkt_payload_len=table.pkt_payload_len[p0:p1],
        pkt_dir=table.pkt_dir[p0:p1],
        pkt_flags=table.pkt_flags[p0:p1],
        msg_offsets=table.msg_offsets[start : stop + 1] - m0,
        msg_ts=table.msg_ts[m0:m1],
        msg_len=table.msg_len[m0:m1],
        msg_dir=table.msg_dir[m0:m1],
        msg_type=table.msg_type[m0:m1],
    )


@pytest.fixture(scope="session")
def sample_updates() -> list[TriageUpdate]:
    """Every update of the real pipeline over the bundled sample (skips if not generated)."""
    from minerscope.resources import sample_capture
    from minerscope.triage import iter_triage

    if not sample_capture().is_file():
        pytest.skip("bundled sample capture not generated")
    return list(iter_triage(sample_capture()))


def replay_loader(updates: list[TriageUpdate]) -> Loader:
    """An ``iter_triage``-shaped loader replaying recorded real updates."""

    def run(
        path: Path, options: TriageOptions | None, *, cancel: threading.Event | None = None
    ) -> Iterator[TriageUpdate]:
        yield from updates

    return run


@pytest.fixture
def layout_rows() -> tuple[pl.DataFrame, FlowTable]:
    return build_table(40)
