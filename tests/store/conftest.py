"""Store fixtures: real case files in tmp_path, real pcap bytes, flow summaries of the real schema."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from minerscope.flows.records import FLOW_SUMMARY_SCHEMA
from minerscope.store import Store, open_store

SCORED_SCHEMA = {**FLOW_SUMMARY_SCHEMA, "p_mining": pl.Float64, "coin": pl.Utf8, "coin_probs": pl.Utf8}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "case.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """An open case file; closed after the test even when it fails."""
    st = open_store(db_path, actor="tester")
    try:
        yield st
    finally:
        st.close()


def write_pcap(path: Path, payload: bytes = b"stratum", packets: int = 1, ts: int = 1_700_000_000) -> Path:
    """A small classic pcap (Ethernet/IPv4/UDP) with ``packets`` records."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    eth = b"\x00" * 12 + b"\x08\x00"
    udp = struct.pack("!HHHH", 40000, 3333, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        bytes([10, 0, 0, 1]),
        bytes([203, 0, 113, 5]),
    )
    frame = eth + ip + udp
    records = b"".join(
        struct.pack("<IIII", ts + i, 0, len(frame), len(frame)) + frame for i in range(packets)
    )
    path.write_bytes(header + records)
    return path


def flow_row(flow_id: int, dst: str, dport: int, **extra: Any) -> dict[str, Any]:
    """One FLOW_SUMMARY_SCHEMA row (plus any scored columns given in ``extra``)."""
    first = 1_700_000_000.0 + flow_id
    row: dict[str, Any] = {name: None for name in FLOW_SUMMARY_SCHEMA}
    row.update(
        flow_id=flow_id,
        capture="cap.pcap",
        proto=6,
        ip_version=6 if ":" in dst else 4,
        src="10.0.0.2",
        sport=40000 + flow_id,
        dst=dst,
        dport=dport,
        vlan=0,
        first_seen=first,
        last_seen=first + 30.0,
        duration=30.0,
        packets=10,
        bytes=2000,
        c2s_packets=5,
        s2c_packets=5,
        c2s_bytes=1000,
        s2c_bytes=1000,
        c2s_payload_bytes=700,
        s2c_payload_bytes=700,
        fragments=0,
        end_reason="fin",
        syn_seen=True,
        is_tls=False,
        stage0="",
    )
    row.update(extra)
    return row


def summary(rows: list[dict[str, Any]], scored: bool = False) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCORED_SCHEMA if scored else FLOW_SUMMARY_SCHEMA)
