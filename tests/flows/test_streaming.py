"""Streaming equivalence: a capture cut into batches of any size gives the same flows as one batch.

The capture is written to a real pcap and read back with the reader at several batch
sizes, so flows span many batches: long TLS sessions whose records straddle packets and
batches, a long plaintext flow past the prefix limit, timeout splits whose next flow
starts with a server packet, a closed connection reopened on the same 5-tuple, DNS.

:meth:`FlowAssembler.advance` (capture time moved on without a packet, as a quiet live
link needs) is held to the same standard: it must end exactly the flows, with exactly the
records, that a later packet would end, and leave the rest of the stream unchanged.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from minerscope.capture.packets import PacketBatch
from minerscope.capture.pcap import read_capture
from minerscope.flows.assemble import DEFAULT_PREFIX_PACKETS, FlowAssembler, assemble
from minerscope.flows.records import FlowTable
from tests.flows.frames import Frame, tcp, tcp_session, to_batch, udp, write_pcap
from tests.flows.tls_pair import records, tls_session

IDLE = 5.0
ARRAYS = (
    "pkt_offsets", "pkt_ts", "pkt_size", "pkt_payload_len", "pkt_dir", "pkt_flags",
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
            assert len(got) == len(want) and got[0] == want[0]
            # TLS 1.3: the records after the hellos are application data on the wire; the
            # handshake ones among them (the first server ones, the client's Finished) are
            # not. Left as application data: the client's 2 writes; the server's write and
            # OpenSSL's 2 NewSessionTickets.
            apps = 2 if direction == 0 else 3
            handshake = [22 if t == 23 else t for t, _ in want[: len(want) - apps]]
            assert [t for t, _ in got] == handshake + [t for t, _ in want[len(want) - apps :]]
            assert [t for t, _ in got].count(23) == apps


WINDOW = 10.0
LATER = 12.0  # seconds: past the window of the long flow, past the idle timeout of two others


def quiet_link_frames() -> list[Frame]:
    """Five flows seen up to t=8 s; at t=12 s each is in a different state."""
    # the long flow: 1.0 .. 8.0 s; at 12 s its window (10 s) is over but it is not idle
    frames = tcp_session(1.0, ("10.3.0.1", 40000), ("192.0.2.9", 3333),
                         [(i % 2, b"x" * 20) for i in range(14)], gap=0.5, close="none")  # fmt: skip
    # silent since 4.5 s: idle at 12 s
    frames += [udp(4.0, "10.3.0.2", 6000, "203.0.113.9", 7000, b"ping"),
               udp(4.5, "203.0.113.9", 7000, "10.3.0.2", 6000, b"pong")]  # fmt: skip
    # past its window at 12 s but idle too: idle comes first, as for a packet
    frames += [udp(1.0, "10.3.0.5", 6002, "203.0.113.11", 7002, b"hi"),
               udp(5.0, "203.0.113.11", 7002, "10.3.0.5", 6002, b"ho")]  # fmt: skip
    # closed by FIN at about 4 s: comes out when idle, still ``fin``
    frames += tcp_session(4.0, ("10.3.0.3", 45000), ("192.0.2.80", 80), [(0, b"GET / HTTP/1.1\r\n\r\n")])
    # neither idle nor past its window at 12 s: stays
    frames += [udp(6.0, "10.3.0.4", 6001, "203.0.113.10", 7001, b"a"),
               udp(7.5, "203.0.113.10", 7001, "10.3.0.4", 6001, b"b")]  # fmt: skip
    return sorted(frames, key=lambda f: f[0])


def quiet_link() -> FlowAssembler:
    asm = FlowAssembler(idle_timeout=IDLE, active_timeout=WINDOW, capture="lo")
    assert not len(asm.feed(to_batch(quiet_link_frames())))
    return asm


def server_speaks_at(t: float) -> Frame:
    """The long flow's next packet: the server's, so the next piece must inherit its client."""
    return tcp(t, "192.0.2.9", 3333, "10.3.0.1", 40000, "PA", 5141, 1141, b"job")


def test_advance_ends_what_a_later_packet_would_and_creates_no_flow() -> None:
    by_packet = quiet_link()
    ended_by_packet = by_packet.feed(to_batch([server_speaks_at(LATER)]))
    by_clock = quiet_link()
    seen, live = by_clock.packets_seen, by_clock.live_packets
    ended_by_clock = by_clock.advance(round(LATER * 1e9))

    assert_same(ended_by_clock, ended_by_packet, "advance vs a later packet")
    s = ended_by_clock.summary
    assert sorted(zip(s["dport"], s["end_reason"], s["packets"], strict=True)) == [
        (80, "fin", 7), (3333, "active", 17), (7000, "idle", 2), (7002, "idle", 2),
    ]  # fmt: skip
    assert by_clock.clock_ns == round(LATER * 1e9)
    # no flow of its own: nothing counted, and only the flow that did not end is still held
    assert by_clock.packets_seen == seen and by_clock.live_packets == 2 < live

    # the rest of the stream is what it would have been: the long flow's next piece keeps
    # 10.3.0.1 as its client although the server speaks first, even after a new flow
    # took a free slot in between (the cut flow's 5-tuple must still be remembered)
    newcomer = udp(LATER, "10.3.0.6", 6003, "203.0.113.12", 7003, b"new")
    after = by_clock.feed(to_batch([newcomer, server_speaks_at(LATER)]))
    rest_by_clock = FlowTable.concat([after, by_clock.finish()])
    rest_by_packet = FlowTable.concat([by_packet.feed(to_batch([newcomer])), by_packet.finish()])
    assert_same(rest_by_clock, rest_by_packet, "after advance vs after a later packet")
    s = rest_by_clock.summary
    assert sorted(zip(s["src"], s["dport"], s["packets"], strict=True)) == [
        ("10.3.0.1", 3333, 1), ("10.3.0.4", 7001, 2), ("10.3.0.6", 7003, 1),
    ]  # fmt: skip


def test_advance_never_moves_the_clock_back() -> None:
    asm = quiet_link()
    now = asm.clock_ns
    assert now == round(8.0 * 1e9)  # the long flow's last packet
    assert not len(asm.advance(now - round(3 * 1e9)))  # stale: nothing is due at 8 s either
    assert asm.clock_ns == now
    assert len(asm.advance(round(LATER * 1e9))) == 4
    assert not len(asm.advance(round(9.0 * 1e9)))  # 9 s is before the clock: still 12 s
    assert asm.clock_ns == round(LATER * 1e9)

    reference = quiet_link()
    reference.advance(round(LATER * 1e9))
    for a in (asm, reference):  # one second short of the last flow's idle timeout, at 12 s
        assert not len(a.feed(to_batch([udp(LATER, "10.3.0.4", 6001, "203.0.113.10", 7001, b"c")])))
    assert_same(asm.finish(), reference.finish(), "after stale advances")


def test_advance_without_a_window_only_expires_idle_flows() -> None:
    asm = FlowAssembler(idle_timeout=IDLE, capture="lo")
    asm.feed(to_batch(quiet_link_frames()))
    s = asm.advance(round(LATER * 1e9)).summary
    assert sorted(zip(s["dport"], s["end_reason"], strict=True)) == [
        (80, "fin"),
        (7000, "idle"),
        (7002, "idle"),
    ]
    assert FlowAssembler().advance(round(LATER * 1e9)).summary.height == 0  # no packet yet: nothing


def test_prefixes_survive_arena_compaction_while_still_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short flows that end leave garbage in the (64 KB) prefix arena while long flows' prefixes
    grow batch after batch, so the arena is compacted under regions that still take bytes:
    every byte must stay in place."""
    from minerscope.flows import _kernels as k
    from minerscope.flows import assemble as asm_mod

    compactions: list[int] = []
    original = asm_mod._Logs.compact_prefixes

    def counted(self: asm_mod._Logs) -> None:
        compactions.append(int(self.cnt[k.K_PBYTES]))
        original(self)

    monkeypatch.setattr(asm_mod._Logs, "compact_prefixes", counted)
    n_long, n_short, n_rounds = 20, 8, 30
    want: dict[int, tuple[bytes, bytes]] = {}
    frames: list[Frame] = []
    for r in range(n_rounds):
        for f in range(n_long + n_short):
            port = 20000 + f if f < n_long else 30000 + r * n_short + f
            t = 1.0 + r * 0.1 + f * 0.001
            # a long flow sends 40 bytes a round (1200 in all: its regions never stop growing);
            # a short one a single 1500-byte exchange, then silence
            size = 20 if f < n_long else 750
            c, sv = bytes([f, r]) * size, bytes([r, f]) * size
            frames.append(udp(t, "10.9.0.1", port, "10.9.0.2", 4444, c))
            frames.append(udp(t + 0.0005, "10.9.0.2", 4444, "10.9.0.1", port, sv))
            old = want.get(port, (b"", b""))
            want[port] = (old[0] + c, old[1] + sv)
    batch = to_batch(frames)
    asm = FlowAssembler(idle_timeout=0.5, capture="arena")
    step = 2 * (n_long + n_short) * 3  # three rounds per batch: long regions grow between batches
    tables = [asm.feed(PacketBatch(batch.packets[a : a + step], batch.data, batch.source))
              for a in range(0, len(frames), step)]  # fmt: skip
    table = FlowTable.concat([*tables, asm.finish()])
    assert compactions, "the arena was never compacted: the test does not exercise it"
    assert len(table) == len(want) and table.payload_prefixes is not None
    for port, prefixes in zip(table.summary["sport"].to_list(), table.payload_prefixes, strict=True):
        assert prefixes == tuple(p[:4096] for p in want[port]), port


def test_records_of_flows_handed_out_early_are_dropped_later_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Short TLS sessions end while a long one holds most of both logs' records: an emit
    then only marks the few records it hands out, and a later emit squeezes the logs.
    Whatever the batch size (how many emits, with how many marked records before them),
    every flow gets exactly its own packets and TLS records."""
    from minerscope.flows import _kernels as k
    from minerscope.flows import assemble as asm_mod

    long_flights = tls_session(messages=[(i % 2, b"share %d" % i * 40) for i in range(60)])
    frames = tcp_session(0.5, ("10.4.0.1", 40000), ("192.0.2.7", 443), long_flights, gap=0.4, close="none")
    for n, t in enumerate((1.0, 7.0, 13.0, 19.0)):
        short = tls_session(messages=[(0, b"hello"), (1, b"world" * 30)])
        frames += tcp_session(t, (f"10.4.1.{n + 1}", 41000), ("192.0.2.8", 443), short, gap=0.05)
    batch = to_batch(sorted(frames, key=lambda f: f[0]))
    marked: list[tuple[int, int]] = []
    build = asm_mod.FlowAssembler._build

    def spied(self: FlowAssembler, slots: np.ndarray) -> FlowTable:  # type: ignore[type-arg]
        table = build(self, slots)
        marked.append((int(self._logs.cnt[k.K_PDEAD]), int(self._logs.cnt[k.K_MDEAD])))
        return table

    monkeypatch.setattr(asm_mod.FlowAssembler, "_build", spied)
    results = {}
    for rows in (1, 5, len(frames)):
        asm = FlowAssembler(idle_timeout=IDLE, capture="logs")
        tables = [asm.feed(PacketBatch(batch.packets[a : a + rows], batch.data, batch.source))
                  for a in range(0, len(frames), rows)]  # fmt: skip
        results[rows] = FlowTable.concat([*tables, asm.finish()])
    assert any(p > 0 for p, _ in marked) and any(m > 0 for _, m in marked), marked
    whole = results[len(frames)]
    for rows in (1, 5):
        assert_same(results[rows], whole, f"batches of {rows}")
    s = whole.summary
    assert s.height == 5 and s["is_tls"].all() and s["packets"].sum() == len(frames)
    longest = int(np.argmax(s["packets"].to_numpy()))
    sel = slice(int(whole.msg_offsets[longest]), int(whole.msg_offsets[longest + 1]))
    client_records = records(b"".join(d for dd, d in long_flights if dd == 0))
    assert whole.msg_len[sel][whole.msg_dir[sel] == 0].tolist() == [n for _, n in client_records]
