"""Stage 0 on assembled flows: blacklist hits by address/SNI/DNS/HTTP host, plaintext Stratum."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from minerscope.flows.assemble import assemble, assemble_capture
from minerscope.flows.records import FlowTable
from minerscope.prefilter.blacklist import Blacklist, parse_indicator
from minerscope.prefilter.stage0 import apply_stage0
from tests.flows.frames import Frame, tcp_session, to_batch, udp
from tests.flows.tls_pair import tls_session


def flows() -> FlowTable:
    tls = tls_session(sni="eu1.minexmr.example")
    frames = tcp_session(10.0, ("10.0.0.2", 50000), ("203.0.113.9", 443), tls)
    login = b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4A","pass":"x","agent":"XMRig/6.21.0"}}\n'
    reply = b'{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"a1","job":{"blob":"0707","job_id":"1","target":"b88d0600"},"status":"OK"}}\n'
    frames += tcp_session(11.0, ("10.0.0.2", 50001), ("198.51.100.7", 4444), [(0, login), (1, reply)])
    req = b"GET /ws HTTP/1.1\r\nHost: webminer.example:8080\r\n\r\n"
    frames += tcp_session(12.0, ("10.0.0.2", 50002), ("192.0.2.80", 8080), [(0, req)])
    answer = (
        struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
        + b"\x04eth1\x04pool\x07example\x00"
        + struct.pack("!HH", 1, 1)
        + b"\xc0\x0c"
        + struct.pack("!HHIH", 1, 1, 60, 4)
        + bytes([192, 0, 2, 99])
    )
    frames.append(udp(13.0, "10.0.0.53", 53, "10.0.0.2", 40000, answer))
    frames += tcp_session(13.1, ("10.0.0.2", 50003), ("192.0.2.99", 9999), [(0, b"\x00\x01binary")])
    return assemble([to_batch(sorted(frames, key=lambda f: f[0]))])


def evidence(table: FlowTable, dport: int) -> list[dict[str, object]]:
    text = table.summary.filter(table.summary["dport"] == dport)["stage0"][0]
    return json.loads(text) if text else []


def test_blacklist_hits_on_every_field() -> None:
    bl = Blacklist(
        parse_indicator(t, "test")
        for t in ("*.minexmr.example", "198.51.100.7:4444", "webminer.example", "pool.example")
    )
    table = apply_stage0(flows(), bl)
    assert {
        "kind": "blacklist",
        "indicator": "*.minexmr.example",
        "field": "sni",
        "value": "eu1.minexmr.example",
        "source": "test",
    } in evidence(table, 443)
    assert any(e.get("field") == "dst_port" for e in evidence(table, 4444))
    assert [e["field"] for e in evidence(table, 8080)] == ["http_host"]
    assert evidence(table, 9999) == []  # eth1.pool.example is not exactly pool.example
    bl.add(parse_indicator(".pool.example"))
    table = apply_stage0(flows(), bl)
    assert [(e["field"], e["value"]) for e in evidence(table, 9999)] == [("dns", "eth1.pool.example")]


LOGIN = (
    b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4A","pass":"x","agent":"XMRig/6.21.0"}}\n'
)
LOGIN_REPLY = b'{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"a1","job":{"blob":"0707","job_id":"1","target":"b88d0600"},"status":"OK"}}\n'


def proxied_flows() -> tuple[FlowTable, list[Frame]]:
    """Miners behind explicit proxies: HTTP CONNECT (name, IPv4, IPv6), SOCKS 5 (name, with
    a password), SOCKS 4 and 4a; TLS inside without SNI, or plaintext Stratum; and solo
    mining through a forward proxy (an absolute URL, no tunnel)."""
    proxy = ("10.0.0.1", 3128)

    def tunnel(
        t: float, sport: int, opening: list[tuple[int, bytes]], inside: list[tuple[int, bytes]]
    ) -> list[Frame]:
        # the client's last opening bytes and its first bytes inside go in one segment, as
        # clients that do not wait for the proxy's reply send them
        (*head, (d, last)), ((d0, first), *rest) = opening, inside
        assert d == d0 == 0
        return tcp_session(t, ("10.0.0.2", sport), proxy, [*head, (0, last + first), *rest])

    def connect(target: bytes) -> list[tuple[int, bytes]]:
        return [(0, b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")]

    established = (1, b"HTTP/1.1 200 Connection established\r\n\r\n")
    stratum = [(0, LOGIN), (1, LOGIN_REPLY)]
    socks5_name = [
        (0, b"\x05\x02\x00\x02"),
        (1, b"\x05\x02"),
        (0, b"\x01\x03bob\x06secret"),
        (1, b"\x01\x00"),
        (0, b"\x05\x01\x00\x03\x0cpool.example" + struct.pack(">H", 3333)),
    ]
    socks5_reply = (1, b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")
    socks4 = [(0, b"\x04\x01" + struct.pack(">H", 3333) + bytes([203, 0, 113, 5]) + b"bob\x00")]
    socks4a = [(0, b"\x04\x01" + struct.pack(">H", 443) + b"\x00\x00\x00\x01bob\x00xmr.pool.example\x00")]
    socks4_granted = (1, b"\x00\x5a" + bytes(6))
    frames = tunnel(10.0, 50010, connect(b"pool.example:443"), [(0, tls_session(sni="")[0][1])])
    frames += tunnel(11.0, 50011, connect(b"203.0.113.5:3333"), [stratum[0], established, stratum[1]])
    frames += tunnel(12.0, 50012, connect(b"[2001:db8::5]:5555"), [(0, tls_session(sni="")[0][1])])
    frames += tunnel(13.0, 50013, socks5_name, [stratum[0], socks5_reply, stratum[1]])
    frames += tunnel(14.0, 50014, socks4, [(0, tls_session(sni="")[0][1]), socks4_granted])
    frames += tunnel(15.0, 50015, socks4a, [(0, tls_session()[0][1]), socks4_granted])
    # solo mining through a forward proxy: plain HTTP, the daemon named by an absolute URL
    gbt = b'{"id":0,"method":"getblocktemplate","params":[{"rules":["segwit"]}]}'
    post = (
        b"POST http://203.0.113.5:8332/ HTTP/1.1\r\nHost: 203.0.113.5:8332\r\nContent-Length: %d\r\n\r\n"
        % len(gbt)
    )
    frames += tcp_session(
        16.0, ("10.0.0.2", 50016), proxy, [(0, post + gbt), (1, b"HTTP/1.1 401 Unauthorized\r\n\r\n")]
    )
    return assemble([to_batch(sorted(frames, key=lambda f: f[0]))]), frames


def test_a_miner_behind_an_explicit_proxy_is_matched_by_the_tunnels_target() -> None:
    """Through a proxy the flow's server is the proxy; the pool is the tunnel's target (a
    name or an address), and with TLS inside the ClientHello may carry no SNI at all."""
    table, frames = proxied_flows()
    summary = table.summary.sort("sport")
    assert summary.select("proxy_host", "proxy_port").rows() == [
        ("pool.example", 443),
        ("203.0.113.5", 3333),
        ("2001:db8::5", 5555),
        ("pool.example", 3333),
        ("203.0.113.5", 3333),
        ("xmr.pool.example", 443),
        ("203.0.113.5", 8332),
    ]
    # what the tunnel carries is read past the request: TLS (the SNI when there is one)
    assert summary["is_tls"].to_list() == [True, False, True, False, True, True, False]
    assert summary["sni"].to_list() == ["", "", "", "", "", "pool.example.test", ""]
    assert summary["http_host"].to_list() == [""] * 6 + ["203.0.113.5:8332"]
    bl = Blacklist(parse_indicator(t, "test") for t in ("pool.example", "203.0.113.5:3333", "2001:db8::5"))
    table = apply_stage0(table, bl)
    found = {
        sport: [
            (e["field"], e["value"]) if e["kind"] == "blacklist" else e["kind"]
            for e in json.loads(text or "[]")
        ]
        for sport, text in zip(table.summary["sport"], table.summary["stage0"], strict=True)
    }
    assert found == {
        50010: [("proxy", "pool.example")],
        50011: [("proxy", "203.0.113.5:3333"), "stratum"],  # the login inside the tunnel too
        50012: [("proxy", "[2001:db8::5]:5555")],
        50013: [("proxy", "pool.example"), "stratum"],
        50014: [("proxy", "203.0.113.5:3333")],
        50015: [],  # (the blacklist names pool.example exactly, not its subdomains)
        50016: ["stratum"],  # (the port is not the listed one)
    }
    # an address-only blacklist still looks at the targets; without one, the Stratum remains
    table = apply_stage0(
        assemble([to_batch(sorted(frames, key=lambda f: f[0]))]), Blacklist([parse_indicator("203.0.113.5")])
    )
    found = [[e.get("field") for e in json.loads(t or "[]")] for t in table.summary.sort("sport")["stage0"]]
    assert found == [[], ["proxy", None], [], [None], ["proxy"], [], ["proxy", None]]  # (None: Stratum)
    table = apply_stage0(assemble([to_batch(sorted(frames, key=lambda f: f[0]))]), None)
    kinds = [[e["kind"] for e in json.loads(t)] if t else [] for t in table.summary.sort("sport")["stage0"]]
    assert kinds == [[], ["stratum"], [], ["stratum"], [], [], ["stratum"]]
    assert json.loads(table.summary.sort("sport")["stage0"][6])[0]["dialect"] == "bitcoind"


def test_plaintext_stratum_is_evidence_even_without_blacklist() -> None:
    table = apply_stage0(flows(), None)
    items = evidence(table, 4444)
    assert len(items) == 1 and items[0]["kind"] == "stratum"
    assert items[0]["method"] == "login" and items[0]["dialect"]
    assert evidence(table, 443) == [] and evidence(table, 9999) == []


def test_prefix_count_must_match() -> None:
    table = flows()
    with pytest.raises(ValueError, match="payload_prefixes"):
        apply_stage0(table, None, payload_prefixes=[(b"", b"")])
    assert apply_stage0(FlowTable.empty(), None) is not None


@pytest.mark.realdata
def test_real_mining_capture_is_flagged(real_datasets: Path) -> None:
    table, _ = assemble_capture(real_datasets / "real" / "ndpi" / "mining.pcapng")
    table = apply_stage0(table, None)
    flagged = table.summary.filter(table.summary["stage0"] != "")
    assert {int(p) for p in flagged["dport"]} >= {3333, 9999}
    benign, _ = assemble_capture(real_datasets / "real" / "zeek-traces" / "tls13-ech.pcap")
    assert set(apply_stage0(benign, None).summary["stage0"]) == {""}


def test_only_flows_that_can_hit_are_examined_and_none_is_missed() -> None:
    """The column-wise candidate filter agrees with examining every flow one by one."""
    from minerscope.prefilter.stage0 import flow_evidence, stratum_detector

    bl = Blacklist(
        parse_indicator(t, "test")
        for t in ("198.51.100.7", "192.0.2.99:9999", "*.minexmr.example", "webminer.example", "pool.example")
    )
    cases = [(bl, 4), (None, 1), (Blacklist([parse_indicator("192.0.2.80")]), 2)]
    for blacklist, flagged in cases:
        table = flows()
        prefixes = table.payload_prefixes
        assert prefixes is not None
        one_by_one = []
        for i, row in enumerate(table.summary.iter_rows(named=True)):
            items = flow_evidence(row, blacklist, prefixes[i], stratum_detector())
            one_by_one.append(json.dumps(items, separators=(",", ":")) if items else "")
        assert apply_stage0(table, blacklist).summary["stage0"].to_list() == one_by_one
        assert sum(1 for v in one_by_one if v) == flagged


def test_address_indicators_match_whatever_their_spelling() -> None:
    """An indicator written non-canonically still matches the assembler's address text."""
    frames = tcp_session(1.0, ("2001:db8::2", 50000), ("2001:db8::7", 3333), [(0, b"\x00bin")])
    table = assemble([to_batch(frames)])
    bl = Blacklist([parse_indicator("2001:DB8:0:0::7", "caps")])
    assert bl.listed_addresses(["2001:db8::7", "2001:db8::8", "not-an-address", ""]) == {"2001:db8::7"}
    hits = json.loads(apply_stage0(table, bl).summary["stage0"][0])
    assert [(h["field"], h["value"], h["source"]) for h in hits] == [("dst", "2001:db8::7", "caps")]
    assert apply_stage0(assemble([to_batch(frames)]), Blacklist([parse_indicator("2001:db8::8")])).summary[
        "stage0"
    ].to_list() == [""]
