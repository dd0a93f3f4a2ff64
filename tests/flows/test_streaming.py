"""Streaming equivalence: a capture cut into batches of any size gives the same flows as one batch.

The capture is written to a real pcap and read back with the reader at several batch
sizes, so flows span many batches: long TLS sessions whose records straddle packets and
batches, a long plaintext flow past the prefix limit, timeout splits whose next flow
starts with a server packet, a closed connection reopened on the same 5-tuple, DNS.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from minerscope.capture.pcap import read_capture
from minerscope.flows.assemble import DEFAULT_PREFIX_PACKETS, assemble
from minerscope.flows.records import FlowTable
from tests.flows.frames import Frame, tcp_session, udp, write_pcap
from tests.flows.tls_pair import records, tls_session

IDLE = 5.0
ARRAYS = (
    "pkt_offsets", "pkt_ts", "pkt_wire_len", "pkt_payload_len", "pkt_dir", "pkt_flags",
    "msg_offsets", "msg_ts", "msg_len", "msg_dir", "msg_type",
)  # fmt: skip


def capture_frames() -> list[Frame]:
    frames: list[Frame] = []
    for n in range(3):  # TLS sessions with records cut across small segments
        flights = tls_session(
            messages=[(0, b'{"id":1,"method":"login"}\n'), (1, b"job" * 900), (0, b"s" * 50)]
        )
        frames += tcp_session(1.0 + n * 0.37, (f"10.2.0.{n + 1}", 41000 + n), ("192.0.2.44", 443), flights,
                              mss=97 + 40 * n, gap=0.02)  # fmt: skip
    # a long plaintext flow: many more payload bytes than the prefix keeps
    lines = [(d, f'{{"id":{i},"result":"{"x" * (i % 50)}"}}\n'.encode()) for i in range(150) for d in (0, 1)]
    frames += tcp_session(0.5, ("10.2.1.9", 50000), ("198.51.100.3", 3333), lines, gap=0.03, close="none")
    # a UDP conversation with silences longer than the idle timeout; after each the server speaks first
    for burst in range(4):
        t = 2.0 + burst * (IDLE + 2.0)
        frames.append(udp(t, "10.2.2.2", 6000, "203.0.113.7", 7000, b"ping%d" % burst))
        frames.append(udp(t + 0.1, "203.0.113.7", 7000, "10.2.2.2", 6000, b"pong"))
        frames.append(udp(t + IDLE + 1.0, "203.0.113.7", 7000, "10.2.2.2", 6000, b"late"))
    # a closed connection reopened on the same 5-tuple
    frames += tcp_session(
        3.0, ("10.2.3.3", 45000), ("192.0.2.80", 80), [(0, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")]
    )
    frames += tcp_session(3.5, ("10.2.3.3", 45000), ("192.0.2.80", 80), [(0, b"again")], close="rst")
    answer = (
        struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0) + b"\x04pool\x04test\x00" + struct.pack("!HH", 1, 1)
        + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 44])
    )  # fmt: skip
    frames.append(udp(0.9, "10.0.0.53", 53, "10.2.0.1", 5353, answer))
    return sorted(frames, key=lambda f: f[0])


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pcap(capture_frames(), tmp_path_factory.mktemp("streaming") / "long.pcap")


def assemble_in_batches(path: Path, rows: int) -> FlowTable:
    batches, report = read_capture(path, batch_rows=rows)
    table = assemble(batches, idle_timeout=IDLE, capture="long.pcap")
    assert report.complete
    return table


def assert_same(a: FlowTable, b: FlowTable, label: str) -> None:
    assert a.summary.equals(b.summary), label
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), (label, name)
    assert a.payload_prefixes == b.payload_prefixes, label


def test_same_flows_whatever_the_batch_size(capture: Path) -> None:
    whole = assemble_in_batches(capture, 1 << 20)
    for rows in (1, 2, 7, 33, 256):
        assert_same(assemble_in_batches(capture, rows), whole, f"batches of {rows}")
    # the flows really are long and varied: the equality above covers all of this
    s = whole.summary
    assert s["packets"].to_numpy().max() > 256
    tls = s.filter(s["is_tls"])
    assert tls.height == 3 and set(tls["sni"]) == {"pool.example.test"}
    assert set(s["end_reason"]) >= {"fin", "rst", "idle", "eof"}
    assert s.filter(s["dport"] == 443)["dns_names"].to_list()[0] == "pool.test"
    plain = whole.payload_prefixes[int(np.flatnonzero(s["dport"].to_numpy() == 3333)[0])]  # type: ignore[index]
    client_lines = [f'{{"id":{i},"result":"{"x" * (i % 50)}"}}\n'.encode() for i in range(150)]
    assert plain[0] == b"".join(client_lines[:DEFAULT_PREFIX_PACKETS])  # the first 64 payload packets


def test_timeout_split_keeps_the_client_when_the_server_speaks_first(capture: Path) -> None:
    for rows in (1, 1 << 20):
        s = assemble_in_batches(capture, rows).summary
        udp_flows = s.filter(s["dport"] == 7000)
        # each silence ends a flow; every flow of the conversation keeps 10.2.2.2 as client,
        # even those whose first packet is the server's "late" reply
        assert udp_flows.height == 5 and set(udp_flows["src"]) == {"10.2.2.2"}
        assert udp_flows["end_reason"].to_list() == ["idle"] * 4 + ["eof"]
        assert udp_flows["c2s_packets"].to_list() == [1, 1, 1, 1, 0]  # the last holds only "late"


def test_tls_records_across_batches_are_the_records_on_the_wire(capture: Path) -> None:
    table = assemble_in_batches(capture, 3)
    s = table.summary
    flights = tls_session(messages=[(0, b'{"id":1,"method":"login"}\n'), (1, b"job" * 900), (0, b"s" * 50)])
    for i in np.flatnonzero(s["is_tls"].to_numpy()).tolist():
        sel = slice(int(table.msg_offsets[i]), int(table.msg_offsets[i + 1]))
        for direction in (0, 1):
            mine = table.msg_dir[sel] == direction
            got = list(
                zip(table.msg_type[sel][mine].tolist(), table.msg_len[sel][mine].tolist(), strict=True)
            )
            # record sizes depend on the session's keys, not on its bytes: compare the shape
            want = records(b"".join(d for dd, d in flights if dd == direction))
            assert [t for t, _ in got] == [t for t, _ in want]
            assert got[0] == want[0]
