"""Synthetic flow tables shaped like pool connections and ordinary traffic.

Used by tests (training round trips on known data) and by ``bench/bench_features.py``
(throughput on a controllable number of flow-windows). Nothing here is used to train
the shipped model: those come from real captures. Mining flows follow PROTOCOLS.md
5.4 (server job pushes at a block/refresh cadence, client submits at a vardiff cadence
each answered by a small ack, bare TCP ACKs); benign flows are request/bulk-response
bursts at random intervals.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.flows.records import FLOW_SUMMARY_SCHEMA, FlowTable

PSH_ACK = 0x18
ACK = 0x10
HEADER_BYTES = 54  # Ethernet + IPv4 + TCP without options


def _mining_messages(
    rng: np.random.Generator, duration: float, job_period: float, share_mean: float
) -> tuple[list[float], list[int], list[int]]:
    ts: list[float] = [0.0, 0.05]
    lens: list[int] = [int(rng.integers(180, 260)), int(rng.integers(350, 450))]
    dirs: list[int] = [0, 1]
    t = 0.0
    while True:
        t += job_period * float(rng.uniform(0.9, 1.1))
        if t >= duration:
            break
        ts.append(t)
        lens.append(int(rng.integers(280, 330)))
        dirs.append(1)
    t = 0.0
    while True:
        t += float(rng.exponential(share_mean))
        if t >= duration:
            break
        ts.extend([t, t + float(rng.uniform(0.02, 0.2))])
        lens.extend([int(rng.integers(150, 190)), int(rng.integers(40, 60))])
        dirs.extend([0, 1])
    return ts, lens, dirs


def _benign_messages(rng: np.random.Generator, duration: float) -> tuple[list[float], list[int], list[int]]:
    ts: list[float] = []
    lens: list[int] = []
    dirs: list[int] = []
    t = 0.0
    while t < duration:
        ts.append(t)
        lens.append(int(rng.integers(300, 800)))
        dirs.append(0)
        n_resp = int(rng.integers(3, 40))
        resp_t = t + float(rng.uniform(0.02, 0.3)) + np.cumsum(rng.uniform(0.0005, 0.01, n_resp))
        ts.extend(resp_t.tolist())
        lens.extend(rng.integers(1000, 16_000, n_resp).tolist())
        dirs.extend([1] * n_resp)
        t = float(resp_t[-1]) + float(rng.exponential(8.0))
    return ts, lens, dirs


def synthetic_table(
    n_mining: int,
    n_benign: int,
    *,
    seed: int = 0,
    mining_duration: tuple[float, float] = (600.0, 1800.0),
    benign_duration: tuple[float, float] = (20.0, 600.0),
    capture: str = "synthetic",
) -> tuple[FlowTable, npt.NDArray[np.int8]]:
    """A table of ``n_mining`` mining-like flows then ``n_benign`` benign-like flows.

    Every message is one packet with PSH|ACK, answered by a bare ACK 1 ms later.

    Returns:
        The table and a label per flow (1 mining, 0 benign).
    """
    rng = np.random.default_rng(seed)
    kinds = np.array([1] * n_mining + [0] * n_benign, np.int8)
    pkt_parts: list[tuple[npt.NDArray[np.float64], ...]] = []
    msg_parts: list[tuple[npt.NDArray[np.float64], ...]] = []
    rows: list[dict[str, object]] = []
    for i, kind in enumerate(kinds):
        start = 1.6e9 + float(rng.uniform(0, 86_400))
        if kind:
            duration = float(rng.uniform(*mining_duration))
            ts_l, len_l, dir_l = _mining_messages(
                rng, duration, float(rng.uniform(30, 120)), float(rng.uniform(8, 40))
            )
        else:
            duration = float(rng.uniform(*benign_duration))
            ts_l, len_l, dir_l = _benign_messages(rng, duration)
        order = np.argsort(np.asarray(ts_l), kind="stable")
        m_ts = start + np.asarray(ts_l, np.float64)[order]
        m_len = np.asarray(len_l, np.float64)[order]
        m_dir = np.asarray(dir_l, np.float64)[order]
        # packets: the message, then the peer's bare ACK
        p_ts = np.stack([m_ts, m_ts + 0.001], axis=1).ravel()
        p_pay = np.stack([m_len, np.zeros_like(m_len)], axis=1).ravel()
        p_dir = np.stack([m_dir, 1 - m_dir], axis=1).ravel()
        p_flags = np.tile(np.array([PSH_ACK, ACK], np.float64), m_len.shape[0])
        order = np.argsort(p_ts, kind="stable")
        p_ts, p_pay, p_dir, p_flags = p_ts[order], p_pay[order], p_dir[order], p_flags[order]
        pkt_parts.append((p_ts, p_pay, p_dir, p_flags))
        msg_parts.append((m_ts, m_len, m_dir, np.zeros_like(m_ts)))
        rows.append(_summary_row(i, capture, p_ts, p_pay, p_dir, mining=bool(kind)))
    return _assemble(rows, pkt_parts, msg_parts), kinds


def table_from_messages(
    flows: list[tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]],
    *,
    msg_types: list[npt.ArrayLike] | None = None,
    capture: str = "hand-built",
) -> FlowTable:
    """A table whose flow ``i`` carries the messages ``flows[i] = (times, sizes, directions)``.

    Each message is one packet (PSH|ACK, payload = size) followed 1 ms later by the
    peer's bare ACK, as in :func:`synthetic_table`; ``msg_types`` (per flow) defaults to
    0 (non-TLS payload).
    """
    pkt_parts: list[tuple[npt.NDArray[np.float64], ...]] = []
    msg_parts: list[tuple[npt.NDArray[np.float64], ...]] = []
    rows: list[dict[str, object]] = []
    for i, (ts, sizes, dirs) in enumerate(flows):
        m_ts = np.asarray(ts, np.float64)
        m_len = np.asarray(sizes, np.float64)
        m_dir = np.asarray(dirs, np.float64)
        m_type = np.asarray(msg_types[i] if msg_types else np.zeros(m_ts.shape[0]), np.float64)
        p_ts = np.stack([m_ts, m_ts + 0.001], axis=1).ravel()
        p_pay = np.stack([m_len, np.zeros_like(m_len)], axis=1).ravel()
        p_dir = np.stack([m_dir, 1 - m_dir], axis=1).ravel()
        p_flags = np.tile(np.array([PSH_ACK, ACK], np.float64), m_len.shape[0])
        order = np.argsort(p_ts, kind="stable")
        p_ts, p_pay, p_dir, p_flags = p_ts[order], p_pay[order], p_dir[order], p_flags[order]
        pkt_parts.append((p_ts, p_pay, p_dir, p_flags))
        msg_parts.append((m_ts, m_len, m_dir, m_type))
        rows.append(_summary_row(i, capture, p_ts, p_pay, p_dir, mining=False))
    return _assemble(rows, pkt_parts, msg_parts)


def _summary_row(
    i: int,
    capture: str,
    p_ts: npt.NDArray[np.float64],
    p_pay: npt.NDArray[np.float64],
    p_dir: npt.NDArray[np.float64],
    *,
    mining: bool,
) -> dict[str, object]:
    c2s = p_dir == 0
    wire = p_pay + HEADER_BYTES
    first = float(p_ts[0]) if p_ts.shape[0] else 0.0
    last = float(p_ts[-1]) if p_ts.shape[0] else 0.0
    return {
        "flow_id": i,
        "capture": capture,
        "proto": 6,
        "ip_version": 4,
        "src": "10.0.0.2",
        "sport": 40_000 + i % 20_000,
        "dst": "10.0.1.1" if mining else "10.0.2.1",
        "dport": 3333 if mining else 443,
        "vlan": 0,
        "first_seen": first,
        "last_seen": last,
        "duration": last - first,
        "packets": int(p_ts.shape[0]),
        "bytes": int(wire.sum()),
        "c2s_packets": int(c2s.sum()),
        "s2c_packets": int((~c2s).sum()),
        "c2s_bytes": int(wire[c2s].sum()),
        "s2c_bytes": int(wire[~c2s].sum()),
        "c2s_payload_bytes": int(p_pay[c2s].sum()),
        "s2c_payload_bytes": int(p_pay[~c2s].sum()),
        "fragments": 0,
        "end_reason": "eof",
        "syn_seen": False,
        "is_tls": False,
        "tls_version": "",
        "sni": "",
        "alpn": "",
        "ja4": "",
        "ja3": "",
        "dns_names": "",
        "http_host": "",
        "ws_path": "",
        "proxy_host": "",
        "proxy_port": 0,
        "stage0": "",
    }


def _assemble(
    rows: list[dict[str, object]],
    pkt_parts: list[tuple[npt.NDArray[np.float64], ...]],
    msg_parts: list[tuple[npt.NDArray[np.float64], ...]],
) -> FlowTable:
    if not rows:
        return FlowTable.empty()

    def offsets(parts: list[tuple[npt.NDArray[np.float64], ...]]) -> npt.NDArray[np.int64]:
        return np.concatenate([[0], np.cumsum([p[0].shape[0] for p in parts])]).astype(np.int64)

    p = [np.concatenate([part[k] for part in pkt_parts]) for k in range(4)]
    m = [np.concatenate([part[k] for part in msg_parts]) for k in range(4)]
    return FlowTable(
        summary=pl.DataFrame(rows, schema=FLOW_SUMMARY_SCHEMA),
        pkt_offsets=offsets(pkt_parts),
        pkt_ts=p[0],
        pkt_size=(p[1] + HEADER_BYTES).astype(np.uint32),
        pkt_payload_len=p[1].astype(np.uint32),
        pkt_dir=p[2].astype(np.uint8),
        pkt_flags=p[3].astype(np.uint8),
        msg_offsets=offsets(msg_parts),
        msg_ts=m[0],
        msg_len=m[1].astype(np.uint32),
        msg_dir=m[2].astype(np.uint8),
        msg_type=m[3].astype(np.uint8),
    )
