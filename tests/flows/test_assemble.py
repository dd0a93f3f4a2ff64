"""Flow assembly on real frames: grouping, direction, timeouts, TCP close, TLS records, metadata."""

from __future__ import annotations

import ssl
import struct

import numpy as np
import pytest

from minerscope.capture.packets import PacketBatch
from minerscope.flows.assemble import FlowAssembler, assemble
from minerscope.flows.records import DIR_C2S, DIR_S2C, FlowTable
from tests.flows.frames import Frame, tcp, tcp_session, to_batch, udp
from tests.flows.tls_pair import records, tls_session

C, S = ("10.1.0.5", 40001), ("192.0.2.10", 3333)


def one_table(frames: list[Frame], **kw: float | None) -> FlowTable:
    frames = sorted(frames, key=lambda f: f[0])
    return assemble([to_batch(frames)], **kw)  # type: ignore[arg-type]


def split_batches(batch: PacketBatch, cuts: list[int]) -> list[PacketBatch]:
    bounds = [0, *cuts, batch.packets.shape[0]]
    return [
        PacketBatch(batch.packets[a:b], batch.data, batch.source)
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]


def test_session_counts_direction_and_fin() -> None:
    frames = tcp_session(10.0, C, S, [(0, b'{"method":"login"}\n'), (1, b"y" * 3000)])
    t = one_table(frames)
    assert len(t) == 1
    row = t.summary.row(0, named=True)
    assert (row["src"], row["sport"], row["dst"], row["dport"]) == ("10.1.0.5", 40001, "192.0.2.10", 3333)
    assert row["packets"] == len(frames) == t.pkt_offsets[1]
    assert row["c2s_payload_bytes"] == 19 and row["s2c_payload_bytes"] == 3000
    assert row["c2s_packets"] + row["s2c_packets"] == row["packets"]
    assert row["bytes"] == sum(len(bytes(f)) for _, f in frames)
    assert row["end_reason"] == "fin" and row["syn_seen"] is True
    assert row["first_seen"] == pytest.approx(10.0) and row["duration"] > 0
    assert list(t.pkt_dir[:3]) == [DIR_C2S, DIR_S2C, DIR_C2S]
    assert np.all(np.diff(t.pkt_ts) >= 0)
    # non-TLS: one message per payload packet
    assert list(t.msg_len) == [19, 1400, 1400, 200]
    assert list(t.msg_dir) == [0, 1, 1, 1] and set(t.msg_type) == {0}
    assert t.payload_prefixes is not None and t.payload_prefixes[0][0] == b'{"method":"login"}\n'


def test_client_is_syn_sender_even_when_server_packet_comes_first() -> None:
    frames = tcp_session(10.0, C, S, [(0, b"hello")], close="rst")
    # the capture starts with a stray server packet, then the real SYN
    frames.insert(0, tcp(9.99, S[0], S[1], C[0], C[1], "A", 1, 1))
    t = one_table(frames)
    row = t.summary.row(0, named=True)
    assert row["src"] == C[0] and row["dport"] == S[1] and row["end_reason"] == "rst"


def test_mid_stream_flow_uses_syn_ack_or_first_sender() -> None:
    frames = [tcp(1.0, S[0], S[1], C[0], C[1], "SA", 5, 1), tcp(1.1, C[0], C[1], S[0], S[1], "A", 1, 6)]
    row = one_table(frames).summary.row(0, named=True)
    assert row["src"] == C[0] and row["syn_seen"] is False
    frames = [
        udp(1.0, "10.0.0.9", 5000, "10.0.0.1", 53, b"q"),
        udp(1.1, "10.0.0.1", 53, "10.0.0.9", 5000, b"a"),
    ]
    row = one_table(frames).summary.row(0, named=True)
    assert (row["src"], row["dport"], row["proto"]) == ("10.0.0.9", 53, 17)


@pytest.mark.parametrize(
    ("first", "second", "client"),
    [
        (("192.0.2.10", 443), ("10.1.0.5", 40001), ("10.1.0.5", 40001)),  # the server's push first
        (("10.1.0.5", 40001), ("192.0.2.10", 3333), ("10.1.0.5", 40001)),
        (("192.0.2.10", 3333), ("10.1.0.5", 5000), ("10.1.0.5", 5000)),  # no ephemeral port: lower serves
        (("192.0.2.10", 50000), ("10.1.0.5", 40001), ("192.0.2.10", 50000)),  # two ephemeral: first sender
        (("192.0.2.10", 7000), ("10.1.0.5", 7000), ("192.0.2.10", 7000)),
    ],
)
def test_a_tcp_flow_first_seen_past_its_handshake_takes_its_client_from_the_ports(
    first: tuple[str, int], second: tuple[str, int], client: tuple[str, int]
) -> None:
    """A capture that starts while a miner is connected often opens with the pool's push."""
    frames = [
        tcp(1.0, first[0], first[1], second[0], second[1], "PA", 100, 200, b"push"),
        tcp(1.1, second[0], second[1], first[0], first[1], "A", 200, 104),
    ]
    row = one_table(frames).summary.row(0, named=True)
    assert (row["src"], row["sport"]) == client and row["syn_seen"] is False
    assert row["c2s_payload_bytes"] == (4 if client == first else 0)  # whose was the push


def test_idle_and_active_timeouts() -> None:
    frames = [udp(100.0 + i * 50, "10.0.0.1", 1234, "10.0.0.2", 9999, b"x") for i in range(4)]
    t = one_table(frames, idle_timeout=60.0)
    assert len(t) == 1 and t.summary["end_reason"][0] == "eof"
    t = one_table(frames, idle_timeout=40.0)
    assert len(t) == 4 and list(t.summary["end_reason"]) == ["idle", "idle", "idle", "eof"]
    t = one_table(frames, idle_timeout=60.0, active_timeout=120.0)
    assert list(t.summary["packets"]) == [3, 1] and t.summary["end_reason"][0] == "active"


def test_new_syn_after_close_starts_new_flow_and_late_acks_stay() -> None:
    first = tcp_session(10.0, C, S, [(0, b"a")])
    second = tcp_session(11.0, C, S, [(0, b"bb")], close="rst")
    late_ack = tcp(10.5, C[0], C[1], S[0], S[1], "A", 9999, 9999)
    t = one_table([*first, late_ack, *second])
    assert len(t) == 2
    assert list(t.summary["packets"]) == [len(first) + 1, len(second)]
    assert list(t.summary["end_reason"]) == ["fin", "rst"]
    assert list(t.summary["c2s_payload_bytes"]) == [1, 2]


def test_vlan_and_ipv6_are_part_of_the_key() -> None:
    frames = tcp_session(1.0, ("2001:db8::1", 5555), ("2001:db8::2", 443), [(0, b"v6")])
    frames += [udp(2.0, "10.0.0.1", 7, "10.0.0.2", 7, b"a")]
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Ether

    frames.append(
        (
            2.5,
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / Dot1Q(vlan=42)
            / IP(src="10.0.0.1", dst="10.0.0.2")
            / UDP(sport=7, dport=7)
            / b"b",
        )
    )
    t = one_table(frames)
    assert len(t) == 3
    assert t.summary["src"][0] == "2001:db8::1" and t.summary["ip_version"][0] == 6
    assert sorted(t.summary["vlan"].to_list()) == [0, 0, 42]


def test_streaming_in_any_split_equals_one_shot() -> None:
    frames = tcp_session(10.0, C, S, [(0, b"a" * 100), (1, b"b" * 2000)])
    frames += tcp_session(10.005, ("10.1.0.6", 40002), S, [(0, b"c" * 50)], close="rst")
    frames += [udp(10.0 + i * 0.01, "10.0.0.3", 999, "10.0.0.4", 53, b"q") for i in range(5)]
    frames.sort(key=lambda f: f[0])
    batch = to_batch(frames)
    whole = assemble([batch])
    n = batch.packets.shape[0]
    for cut in range(1, n):
        parts = assemble(split_batches(batch, [cut, min(n, cut + 3)]))
        assert parts.summary.drop("flow_id").equals(whole.summary.drop("flow_id")), cut
        assert np.array_equal(parts.pkt_offsets, whole.pkt_offsets)
        assert np.array_equal(parts.msg_len, whole.msg_len)


def test_streaming_keeps_only_live_flows() -> None:
    asm = FlowAssembler(idle_timeout=5.0)
    early = tcp_session(0.0, C, S, [(0, b"x")])
    # a FIN-closed flow stays live for late ACKs/RSTs until the idle timeout passes
    assert len(asm.feed(to_batch(early))) == 0 and asm.live_packets == len(early)
    lingering = [udp(1.0, "10.0.0.1", 1, "10.0.0.2", 2, b"x")]
    assert len(asm.feed(to_batch(lingering))) == 0 and asm.live_packets == len(early) + 1
    later = [udp(100.0, "10.0.0.3", 1, "10.0.0.4", 2, b"y")]
    out = asm.feed(to_batch(later))
    assert sorted(out.summary["end_reason"]) == ["fin", "idle"] and asm.live_packets == 1
    final = asm.finish()
    assert len(final) == 1 and final.summary["end_reason"][0] == "eof"


def app_writes(flights: list[tuple[int, bytes]], messages: list[tuple[int, bytes]], direction: int) -> int:
    """Application writes of one direction (each a single TLS record: all are small)."""
    return sum(1 for d, _ in messages if d == direction)


@pytest.mark.parametrize("mss", [1400, 97, 31])
def test_tls_records_found_across_segmentation(mss: int) -> None:
    messages = [(0, b'{"id":1}\n' * 3), (1, b"job" * 700), (0, b"x")]
    flights = tls_session(alpn=["h2"], messages=messages, tickets=0)
    frames = tcp_session(1.0, C, ("192.0.2.10", 443), flights, mss=mss, gap=0.001)
    t = one_table(frames)
    row = t.summary.row(0, named=True)
    assert row["is_tls"] and row["sni"] == "pool.example.test" and row["alpn"] == "h2"
    assert row["tls_version"] == "1.3" and row["ja4"].startswith("t13d") and len(row["ja3"]) == 32
    for direction in (0, 1):
        stream = b"".join(d for dd, d in flights if dd == direction)
        sel = t.msg_dir == direction
        wire = records(stream)
        # every record on the wire, same lengths; TLS 1.3's encrypted handshake records
        # (type 23 on the wire) are typed as the handshake they carry
        assert t.msg_len[sel].tolist() == [n for _, n in wire]
        got_types = t.msg_type[sel].tolist()
        assert [g for g, (w, _) in zip(got_types, wire, strict=True) if g != w] == [22] * (
            sum(w == 23 for w, _ in wire) - app_writes(flights, messages, direction)
        )
        assert got_types.count(23) == app_writes(flights, messages, direction)
    assert np.all(np.diff(t.msg_ts) >= 0)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_application_messages_are_the_same_under_tls_1_2_and_1_3(version: ssl.TLSVersion) -> None:
    """A Stratum-like exchange has one application message per write whatever the TLS
    version: TLS 1.3's encrypted handshake (server EncryptedExtensions..Finished, client
    Finished) must not count, TLS 1.2's records are left as they are on the wire. The
    client offers 1.3 both times (the server decides)."""
    messages = [(0, b'{"id":1,"method":"login"}\n'), (1, b'{"id":1,"result":{}}\n'), (1, b"j" * 300)]
    messages += [(0, b'{"id":%d,"method":"submit"}\n' % i) for i in range(2, 6)]
    flights = tls_session(messages=messages, server_max_version=version, tickets=0)
    t = one_table(tcp_session(1.0, C, ("192.0.2.10", 443), flights, gap=0.001))
    assert t.summary["tls_version"][0] == ("1.3" if version == ssl.TLSVersion.TLSv1_3 else "1.2")
    for direction in (0, 1):
        sel = t.msg_dir == direction
        app = t.msg_type[sel] == 23
        assert int(app.sum()) == app_writes(flights, messages, direction)
        wire = records(b"".join(d for dd, d in flights if dd == direction))
        if version == ssl.TLSVersion.TLSv1_2:
            assert list(zip(t.msg_type[sel].tolist(), t.msg_len[sel].tolist(), strict=True)) == wire
    # the server's NewSessionTickets (OpenSSL sends 2) stay messages: nothing tells them apart
    flights = tls_session(messages=messages, server_max_version=version)
    t = one_table(tcp_session(1.0, C, ("192.0.2.10", 443), flights, gap=0.001))
    extra = 2 if version == ssl.TLSVersion.TLSv1_3 else 0
    assert int((t.msg_type[t.msg_dir == 1] == 23).sum()) == app_writes(flights, messages, 1) + extra


def test_tls_walk_skips_retransmissions_and_resyncs_after_a_gap() -> None:
    flights = tls_session(messages=[(1, b"a" * 100), (1, b"b" * 100), (1, b"c" * 100)])
    frames = tcp_session(1.0, C, ("192.0.2.10", 443), flights, gap=0.001)
    server_data = [i for i, (_, f) in enumerate(frames) if f.sport == 443 and len(bytes(f["TCP"].payload))]
    # retransmit the first server data segment later
    t0, dup = frames[server_data[0]]
    frames.append((t0 + 0.0005, dup.copy()))
    t = one_table(frames)
    s2c = b"".join(d for dd, d in flights if dd == 1)
    sel = t.msg_dir == 1
    assert t.msg_len[sel].tolist() == [n for _, n in records(s2c)]
    # drop the segment holding the first application-data record: the walk resyncs
    gapped = [f for i, f in enumerate(frames) if i != server_data[-2]]
    t = one_table(gapped)
    got = list(zip(t.msg_type[t.msg_dir == 1].tolist(), t.msg_len[t.msg_dir == 1].tolist(), strict=True))
    assert got[-1] == records(s2c)[-1] and len(got) == len(records(s2c)) - 1
    assert got[-1][0] == 23  # application data after the resync stays application data


def test_http_websocket_and_dns_metadata() -> None:
    req = b"GET /ws/miner HTTP/1.1\r\nHost: webminer.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    frames = tcp_session(5.0, C, ("198.51.100.7", 80), [(0, req), (1, b"HTTP/1.1 101 Switching\r\n\r\n")])
    q = b"\x03www\x04pool\x07example\x00"
    answer = (
        struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
        + q
        + struct.pack("!HH", 1, 1)
        + b"\xc0\x0c"
        + struct.pack("!HHIH", 1, 1, 60, 4)
        + bytes([198, 51, 100, 7])
    )
    # the DNS answer arrives after the flow started: assemble() still names the server
    frames.append(udp(5.5, "10.0.0.53", 53, C[0], 5353, answer))
    t = one_table(frames)
    web = t.summary.filter(t.summary["dport"] == 80).row(0, named=True)
    assert web["http_host"] == "webminer.example" and web["ws_path"] == "/ws/miner"
    assert web["dns_names"] == "www.pool.example" and web["is_tls"] is False


def test_non_ip_packets_are_counted_not_flowed() -> None:
    from scapy.layers.l2 import ARP, Ether

    frames = [
        (1.0, Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP()),
        *tcp_session(2.0, C, S, [(0, b"z")]),
    ]
    asm = FlowAssembler()
    table = FlowTable.concat([asm.feed(to_batch(frames)), asm.finish()])
    assert asm.non_ip_packets == 1 and len(table) == 1 and asm.packets_seen == len(frames)


def test_bad_timeouts_are_refused() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        FlowAssembler(idle_timeout=0)


def _first_app_record(stream: bytes) -> int:
    """Offset of the first application-data record (type 23) in a TLS byte stream."""
    pos = 0
    for ctype, length in records(stream):
        if ctype == 23:
            return pos
        pos += 5 + length
    raise AssertionError("no application data")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_tls_side_keeps_its_prefix_up_to_its_first_application_data(version: ssl.TLSVersion) -> None:
    """Past a handshake a side's bytes are ciphertext: its prefix ends with the packet that
    starts application data (the arena holds ~40 % less on real captures), and the
    handshake metadata read from it is whole."""
    mss = 200
    messages = [(0, b'{"id":1,"method":"login"}\n'), (1, b"j" * 300)] * 20
    flights = tls_session(messages=messages, server_max_version=version, tickets=0)
    t = one_table(tcp_session(1.0, C, ("192.0.2.10", 443), flights, mss=mss, gap=0.001))
    row = t.summary.row(0, named=True)
    assert row["sni"] == "pool.example.test" and len(row["ja3"]) == 32
    assert row["tls_version"] == ("1.3" if version == ssl.TLSVersion.TLSv1_3 else "1.2")
    assert t.payload_prefixes is not None
    streams = [b"".join(d for dd, d in flights if dd == direction) for direction in (0, 1)]
    for stream, prefix in zip(streams, t.payload_prefixes[0], strict=True):
        app = _first_app_record(stream)
        assert stream.startswith(prefix)
        assert app + 5 <= len(prefix) < app + 5 + mss < len(stream), (len(prefix), app, len(stream))

    # records framing two packets from the start of a side say "ciphertext" as well
    mid = [(direction, stream[_first_app_record(stream) :]) for direction, stream in enumerate(streams)]
    t = one_table(tcp_session(1.0, C, ("192.0.2.10", 443), mid, mss=mss, gap=0.001))
    assert t.payload_prefixes is not None
    for (_, stream), prefix in zip(mid, t.payload_prefixes[0], strict=True):
        lengths = np.array([n for _, n in records(stream)])
        header_ends = np.cumsum(5 + lengths) - lengths
        second = int(header_ends[header_ends > mss][0])  # completed in the second packet or later
        assert prefix == stream[: -(-second // mss) * mss] and len(prefix) < len(stream)
    # plaintext is kept to the limit, whatever it looks like
    plain = [(0, b"\x17\x03" + bytes(range(256)) * 20)]
    t = one_table(tcp_session(1.0, C, ("192.0.2.10", 443), plain, mss=mss, gap=0.001))
    assert t.payload_prefixes is not None and t.payload_prefixes[0][0] == plain[0][1][:4096]


def test_open_flows_counts_the_flow_cache_as_it_grows_and_drains() -> None:
    """What a live run shows as "open flows": every flow held, until it ends and is handed out."""
    asm = FlowAssembler(idle_timeout=10.0)
    assert asm.open_flows == 0
    first = [udp(100.0, "10.0.0.1", 1000 + i, "10.0.0.2", 53, b"q") for i in range(5)]
    assert not len(asm.feed(to_batch(first)))
    assert asm.open_flows == 5
    # 20 s later, a sixth flow: the five went quiet past the idle timeout and are handed out
    ended = asm.feed(to_batch([udp(120.0, "10.0.0.1", 2000, "10.0.0.2", 53, b"q")]))
    assert len(ended) == 5 and asm.open_flows == 1
    assert len(asm.finish()) == 1 and asm.open_flows == 0


SOCKS5_OK = b"\x05\x00\x00\x01" + bytes(6)


@pytest.mark.parametrize(
    "talk",
    [
        [(0, b"\x05\x01\x00"), (1, b"\x05\x00"), (0, b"\x05\x01\x00\x03\x0cpool.example\x01\xbb"), (1, SOCKS5_OK)],
        [
            (0, b"\x05\x01\x02"), (1, b"\x05\x02"), (0, b"\x01\x03bob\x06secret"), (1, b"\x01\x00"),
            (0, b"\x05\x01\x00\x01\xcb\x00\x71\x05\x01\xbb"), (1, SOCKS5_OK),
        ],
        [(0, b"CONNECT pool.example:443 HTTP/1.1\r\n\r\n"), (1, b"HTTP/1.1 200 Connection established\r\n\r\n")],
        [(1, b"220 mx ESMTP\r\n"), (0, b"EHLO client.example\r\n"), (1, b"250 mx\r\n"), (0, b"STARTTLS\r\n"), (1, b"220 go\r\n")],
    ],
    ids=["socks5", "socks5-password", "http-connect", "starttls"],
)  # fmt: skip
def test_records_are_framed_after_a_proxy_request_or_starttls(talk: list[tuple[int, bytes]]) -> None:
    """The plaintext exchange before TLS (a proxy's request and reply, STARTTLS) is no
    record: the messages of the flow are those of the same TLS session without it."""
    flights = tls_session(messages=[(0, b'{"method":"login"}\n'), (1, b"job" * 40), (0, b"share" * 9)])
    direct = assemble([to_batch(tcp_session(1.0, ("10.0.0.2", 40000), ("192.0.2.1", 443), flights))])
    proxied = assemble([to_batch(tcp_session(1.0, ("10.0.0.2", 40001), ("192.0.2.2", 1080), talk + flights))])
    assert proxied.summary["is_tls"].to_list() == [True] and proxied.summary["sni"].to_list() == [
        "pool.example.test"
    ]
    for series in ("msg_len", "msg_dir", "msg_type"):
        assert getattr(proxied, series).tolist() == getattr(direct, series).tolist(), series
