"""Stage-0 plaintext Stratum recognition on real captures and on lab-built sessions.

Real captures are read with scapy's raw record reader and a minimal TCP reassembly
(first bytes of each direction, in sequence order); the recogniser itself only ever
sees bytes, exactly as the pipeline will give them.
"""

from __future__ import annotations

import csv
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from minerscope.prefilter.stratum import StratumEvidence, detect_stratum
from minerscope.probe.dialects import bitcoin as v1
from minerscope.probe.dialects import browser_ws as ws
from minerscope.probe.dialects import ethereum as eth
from minerscope.probe.dialects import http_jsonrpc as h
from minerscope.probe.dialects import monero as xmr
from minerscope.probe.dialects import zcash as zec
from minerscope.probe.framing import encode_json_line, encode_ws_frame

SCAN = 4096
Endpoint = tuple[bytes, int]


def _ip_payload(linktype: int, frame: bytes) -> bytes | None:
    if linktype == 1:  # Ethernet (+ 802.1Q)
        off, ethertype = 14, struct.unpack_from("!H", frame, 12)[0]
        while ethertype == 0x8100 and len(frame) >= off + 4:
            ethertype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
        return frame[off:] if ethertype in (0x0800, 0x86DD) else None
    if linktype == 113:  # Linux cooked
        return frame[16:]
    if linktype in (101, 12, 228, 229):
        return frame
    if linktype == 0:  # BSD loopback
        return frame[4:]
    if linktype == 9:  # PPP (optionally HDLC address/control), IPv4/IPv6 only
        off = 2 if frame[:2] == b"\xff\x03" else 0
        proto = struct.unpack_from("!H", frame, off)[0]
        return frame[off + 2 :] if proto in (0x0021, 0x0057) else None
    raise AssertionError(f"unexpected link type {linktype}")


def _tcp(ip: bytes) -> tuple[Endpoint, Endpoint, int, int, bytes] | None:
    if not ip:
        return None
    version = ip[0] >> 4
    if version == 4:
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            return None
        total = struct.unpack_from("!H", ip, 2)[0]
        src, dst, seg = ip[12:16], ip[16:20], ip[ihl:total]
    elif version == 6:
        if ip[6] != 6:
            return None
        plen = struct.unpack_from("!H", ip, 4)[0]
        src, dst, seg = ip[8:24], ip[24:40], ip[40 : 40 + plen]
    else:
        return None
    if len(seg) < 20:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", seg, 0)
    flags = seg[13]
    return (src, sport), (dst, dport), seq, flags, seg[(seg[12] >> 4) * 4 :]


def tcp_flows(path: Path) -> Iterator[tuple[Endpoint, Endpoint, bytes, bytes]]:
    """(client, server, first bytes c2s, first bytes s2c) for every TCP flow with payload."""
    from scapy.utils import RawPcapReader  # deferred: scapy is slow to import

    reader = RawPcapReader(str(path))
    flows: dict[tuple[Endpoint, Endpoint], dict[str, object]] = {}
    try:
        for frame, meta in reader:
            linktype = getattr(meta, "linktype", None)
            ip = _ip_payload(linktype if linktype is not None else reader.linktype, frame)
            parsed = _tcp(ip) if ip is not None else None
            if parsed is None:
                continue
            src, dst, seq, flags, payload = parsed
            key = (min(src, dst), max(src, dst))
            flow = flows.setdefault(key, {"client": None, "segs": {}})
            if flow["client"] is None and flags & 0x12 == 0x02:
                flow["client"] = src
            segs = flow["segs"]
            assert isinstance(segs, dict)
            side = segs.setdefault(src, {})
            if payload and sum(len(p) for p in side.values()) < 2 * SCAN:
                side.setdefault(seq, payload)
    finally:
        reader.close()
    for (a, b), flow in flows.items():
        segs = flow["segs"]
        assert isinstance(segs, dict)
        client = flow["client"] or (a if a[1] > b[1] else b)  # no SYN seen: the higher port is the client
        server = b if client == a else a

        def stream(ep: Endpoint, segs: dict[Endpoint, dict[int, bytes]] = segs) -> bytes:
            parts = segs.get(ep, {})
            return b"".join(parts[k] for k in sorted(parts))

        c2s, s2c = stream(client), stream(server)
        if c2s or s2c:
            yield client, server, c2s, s2c


# ---------------------------------------------------------------------------------------
# Real captures


def _manifest_coins(real: Path) -> dict[str, str]:
    """``path -> coin`` from the curated MANIFEST.csv (CJ-Sniffer's own labels.csv has a
    row with a missing comma, so its columns cannot be trusted blindly)."""
    with (real / "MANIFEST.csv").open(newline="") as fh:
        return {row["path"]: row["coin"] for row in csv.DictReader(fh)}


COIN_FAMILY = {"xmr": "monero", "eth": "ethereum", "zec": "zcash"}


@pytest.mark.realdata
def test_every_cj_sniffer_flow_is_recognised_with_its_coin(real_datasets: Path) -> None:
    root = real_datasets / "real" / "cj-sniffer"
    coins = _manifest_coins(real_datasets / "real")
    files = sorted(root.glob("*.pcap"))
    assert len(files) >= 50
    seen_families: set[str] = set()
    checked = 0
    for path in files:
        family = COIN_FAMILY[coins[f"cj-sniffer/{path.name}"]]
        for client, server, c2s, s2c in tcp_flows(path):
            found = detect_stratum(c2s, s2c)
            assert found is not None, (path.name, client, server, c2s[:80], s2c[:80])
            assert found.family == family, (path.name, found)
            assert found.framing == "line"
            checked += 1
            seen_families.add(found.family)
    assert checked >= 100 and seen_families == {"monero", "ethereum"}


@pytest.mark.realdata
def test_ndpi_mining_capture_flows(real_datasets: Path) -> None:
    found: dict[int, StratumEvidence] = {}
    for _, server, c2s, s2c in tcp_flows(real_datasets / "real" / "ndpi" / "mining.pcapng"):
        result = detect_stratum(c2s, s2c)
        assert result is not None, server
        found[server[1]] = result
    assert {port: r.family for port, r in found.items()} == {3333: "zcash", 9999: "ethereum", 9050: "monero"}
    assert found[3333].dialect == "stratum1-zcash" and "mining.set_target" in found[3333].methods
    assert ("agent", "EWBF 0.3.4b") in [(e.key, e.value) for e in found[3333].evidence]
    assert found[9999].dialect == "ethproxy" and "eth_submitLogin" in found[9999].methods
    assert found[9050].dialect == "xmrig"
    assert ("agent", "xmr-stak-cpu/1.3.0-1.5.0") in [(e.key, e.value) for e in found[9050].evidence]


BENIGN = [
    "ndpi/jsonrpc.pcap",
    "ndpi/bitcoin.pcap",
    "ndpi/ethereum.pcap",
    "ndpi/monero.pcap",
    "ndpi/ssh.pcap",
    "ndpi/tls-appdata.pcap",
    "ndpi/443-curl.pcap",
    "ndpi/tls_heur__vmess-websocket.pcapng",
    "zeek-traces/websocket.pcap",
    "zeek-traces/jupyter-websocket.pcap",
    "zeek-traces/broker-websocket.pcap",
]


@pytest.mark.realdata
@pytest.mark.parametrize("name", BENIGN)
def test_hard_negatives_have_flows_and_do_not_fire(real_datasets: Path, name: str) -> None:
    flows = list(tcp_flows(real_datasets / "real" / name))
    assert flows, name
    for client, server, c2s, s2c in flows:
        assert detect_stratum(c2s, s2c) is None, (name, client, server, c2s[:120])


@pytest.mark.realdata
def test_no_benign_capture_fires(real_datasets: Path) -> None:
    real = real_datasets / "real"
    files = [
        p
        for folder in ("ndpi", "zeek-traces", "ja4")
        for p in sorted((real / folder).glob("*.pcap*"))
        if p.name != "mining.pcapng"
    ]
    assert len(files) >= 90
    flows = 0
    for path in files:
        for client, server, c2s, s2c in tcp_flows(path):
            flows += 1
            assert detect_stratum(c2s, s2c) is None, (path.name, client, server, c2s[:120])
    assert flows >= 500


# ---------------------------------------------------------------------------------------
# Sessions built with the dialect builders (both sides), framed for real


def test_bitcoin_v1_session_with_spaced_json() -> None:
    rng = random.Random(1)
    c2s = encode_json_line(v1.subscribe_request(1, "bmminer/2.0.0"), spaced=True)
    c2s += encode_json_line(v1.authorize_request(2, "bc1qexample.s19"), spaced=True)
    s2c = encode_json_line(v1.subscribe_result(1, v1.make_extranonce1(rng), 8))
    s2c += encode_json_line(v1.set_difficulty(65536)) + encode_json_line(v1.notify(v1.make_notify_job(rng)))
    found = detect_stratum(c2s, s2c)
    assert found is not None and found.dialect == "stratum1" and found.family == "bitcoin"
    assert found.methods[:2] == ("mining.subscribe", "mining.authorize")
    # one direction alone is enough, and directions guessed the wrong way round still work
    assert detect_stratum(c2s, b"") is not None and detect_stratum(b"", s2c) is not None
    swapped = detect_stratum(s2c, c2s)
    assert swapped is not None and swapped.family == "bitcoin"


def test_nicehash_ethereum_and_zcash_sessions() -> None:
    rng = random.Random(2)
    c2s = encode_json_line(eth.nh_subscribe_request(1)) + encode_json_line(
        eth.nh_authorize_request(2, "0xabc.rig")
    )
    s2c = encode_json_line(eth.nh_subscribe_result(1, "01", "ab12")) + encode_json_line(
        eth.nh_notify(eth.make_nh_job(rng))
    )
    found = detect_stratum(c2s, s2c)
    assert found is not None and (found.dialect, found.family) == ("ethstratum", "ethereum")
    zc = encode_json_line(zec.subscribe_request(1, "miniZ/2.0", "pool", 3333))
    zs = encode_json_line(zec.subscribe_result(1, "04d567b212")) + encode_json_line(
        zec.notify(zec.make_job(rng))
    )
    found = detect_stratum(zc, zs)
    assert found is not None and (found.dialect, found.family) == ("stratum1-zcash", "zcash")


def test_set_target_is_zcash_only_after_a_zcash_subscription() -> None:
    # ZIP 301's subscription result is [session, nonce1]; a pool answering with V1's
    # [subscriptions, extranonce1, extranonce2_size] and then pushing mining.set_target
    # (kawpow pools do) is a Bitcoin-family Stratum, not Zcash
    target = "00000000ffff" + "0" * 52
    c2s = encode_json_line(v1.subscribe_request(1, "kawpowminer/1.2.4"))
    s2c = encode_json_line(v1.subscribe_result(1, "a1b2c3d4", 4)) + encode_json_line(zec.set_target(target))
    found = detect_stratum(c2s, s2c)
    assert found is not None and (found.dialect, found.family) == ("stratum1", "bitcoin")
    zs = encode_json_line(zec.subscribe_result(1, "04d567b212")) + encode_json_line(zec.set_target(target))
    found = detect_stratum(c2s, zs)
    assert found is not None and (found.dialect, found.family) == ("stratum1-zcash", "zcash")


def _ws_session(
    client_msgs: list[dict[str, object]], server_msgs: list[dict[str, object]]
) -> tuple[bytes, bytes]:
    rng = random.Random(3)
    c2s = (
        b"GET /proxy HTTP/1.1\r\nHost: 127.0.0.1:8892\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    c2s += b"".join(encode_ws_frame(ws.encode_ws_json(m), mask=rng.randbytes(4)) for m in client_msgs)
    s2c = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    s2c += b"".join(encode_ws_frame(ws.encode_ws_json(m)) for m in server_msgs)
    return c2s, s2c


def test_browser_mining_inside_masked_and_unmasked_ws_frames() -> None:
    rng = random.Random(4)
    job = xmr.make_job(rng, algo="cn/r")
    c2s, s2c = _ws_session(
        [ws.auth_message(ws.make_site_key(rng))], [ws.authed_message("", 0), ws.job_message(job)]
    )
    assert b"site_key" not in c2s  # masked: invisible to a naive substring search
    found = detect_stratum(c2s, s2c)
    assert found is not None and (found.dialect, found.family, found.framing) == ("coinhive", "browser", "ws")
    assert found.methods == ("auth", "authed", "job")
    client_only = detect_stratum(c2s, b"")
    assert client_only is not None and client_only.methods == ("auth",)
    # a capture that starts after the upgrade: bare frames
    body_c = c2s[c2s.index(b"\r\n\r\n") + 4 :]
    body_s = s2c[s2c.index(b"\r\n\r\n") + 4 :]
    bare = detect_stratum(body_c, body_s)
    assert bare is not None and bare.dialect == "coinhive"


def test_ordinary_websocket_json_does_not_fire() -> None:
    c2s, s2c = _ws_session(
        [{"type": "subscribe", "params": {"channel": "ticker"}}],
        [
            {"type": "error", "params": {"error": "unknown channel"}},
            {"type": "job", "params": {"name": "build"}},
        ],
    )
    assert detect_stratum(c2s, s2c) is None


def test_solo_mining_over_http_is_recognised() -> None:
    rng = random.Random(5)
    spec = h.json_rpc_http_request("/", h.gbt_request(1), auth=("rpc", "pw"))
    c2s = h.http_request_bytes(spec, "127.0.0.1:8332")
    s2c = h.http_response_bytes(h.json_http_reply(h.gbt_result(1, h.make_block_template(rng, tx_count=2))))
    found = detect_stratum(c2s, s2c)
    assert found is not None and (found.dialect, found.family, found.framing) == (
        "bitcoind",
        "daemon",
        "http",
    )
    mon = h.http_request_bytes(
        h.json_rpc_http_request("/json_rpc", h.monerod_template_request(xmr.PROBE_WALLET)), "n"
    )
    found = detect_stratum(mon, b"")
    assert found is not None and found.dialect == "monerod"


def test_xmrig_solo_mining_to_monerod_is_named_monerod() -> None:
    """xmrig's daemon mode (DaemonClient) asks monerod for ``getblocktemplate`` (the
    bitcoind method's name, an alias in monerod) with a wallet address and reserve size 8,
    and submits with ``submitblock``: that is monerod, not the bitcoind family."""
    body = {
        "id": 1,
        "jsonrpc": "2.0",
        "method": "getblocktemplate",
        "params": {"wallet_address": xmr.PROBE_WALLET, "reserve_size": 8},
    }
    c2s = h.http_request_bytes(h.json_rpc_http_request("/json_rpc", body), "127.0.0.1:18081")
    found = detect_stratum(c2s, b"")
    assert found is not None and (found.dialect, found.family) == ("monerod", "daemon")
    assert dict((e.key, e.value) for e in found.evidence)["coin"] == "monero"
    gbt = h.http_request_bytes(h.json_rpc_http_request("/", h.gbt_request(1)), "127.0.0.1:8332")
    found = detect_stratum(gbt, b"")
    assert found is not None and found.dialect == "bitcoind"


def test_an_http_body_is_one_document_however_it_is_laid_out() -> None:
    """A daemon's reply indented over many lines (as monerod's epee server sends) gives
    the same evidence as the compact one: read line by line, the pretty getwork reply of
    a pool's HTTP endpoint was lost and only the request's method was left."""
    rng = random.Random(6)
    exchanges = [
        ("/", eth.get_work_request(1, jsonrpc=True), eth.work_result(1, eth.make_work(rng))),
        ("/json_rpc", h.monerod_template_request(xmr.PROBE_WALLET), h.monerod_template_result(rng)),
    ]
    for path, request, reply in exchanges:
        c2s = h.http_request_bytes(h.json_rpc_http_request(path, request), "127.0.0.1:8545")
        compact = detect_stratum(c2s, h.http_response_bytes(h.json_http_reply(reply)))
        pretty = detect_stratum(c2s, h.http_response_bytes(h.json_http_reply(reply, epee=True)))
        assert compact is not None and pretty == compact


def test_ordinary_json_rpc_http_and_tls_do_not_fire() -> None:
    cases = [
        (
            b'{"jsonrpc":"2.0","method":"getinfo","params":[],"id":1}\n',
            b'{"jsonrpc":"2.0","result":{"version":1},"id":1}\n',
        ),
        (b'{"method":"mining","params":{"a":1},"id":1}\n', b'{"result":null,"error":null,"id":1}\n'),
        (b'{"id":1,"method":"login","params":["user","pass"]}\n', b'{"id":1,"result":true}\n'),
        (
            b'{"id":1,"method":"login","params":{"login":"bob"}}\n',
            b'{"id":1,"result":{"id":"s1","status":"OK"}}\n',
        ),
        (b'{"id":1,"method":"submit","params":{"form":"x"}}\n', b'{"id":1,"result":{"status":"OK"}}\n'),
        (
            b'{"id":1,"method":"eth_getWork","params":[]}\n',
            b'{"id":1,"error":{"code":-32000,"message":"no mining work available yet"}}\n',
        ),
        (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
        (
            h.http_request_bytes(
                h.json_rpc_http_request(
                    "/", {"jsonrpc": "1.0", "id": 1, "method": "getblockchaininfo", "params": []}
                ),
                "n",
            ),
            b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="jsonrpc"\r\n\r\n',
        ),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), b"\x16\x03\x03\x00\x5a\x02"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", b"SSH-2.0-OpenSSH_9.3\r\n"),
        (b"", b""),
    ]
    for c2s, s2c in cases:
        assert detect_stratum(c2s, s2c) is None, c2s[:60]


def test_only_the_first_bytes_are_read() -> None:
    filler = b'{"id":1,"method":"status","params":[]}\n' * 200
    late = encode_json_line(v1.subscribe_request(1))
    assert detect_stratum(filler + late, b"") is None
    assert detect_stratum(filler + late, b"", max_bytes=len(filler) + len(late)) is not None


def test_hostile_bytes_never_raise() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    prefixes = st.sampled_from(
        [
            b"",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"POST / HTTP/1.1\r\n\r\n",
            b"\x81\x7f",
            b'{"id":1,',
        ]
    )

    @settings(max_examples=300, deadline=None)
    @given(prefixes, st.binary(max_size=600), prefixes, st.binary(max_size=600))
    def check(pc: bytes, c2s: bytes, ps: bytes, s2c: bytes) -> None:
        found = detect_stratum(pc + c2s, ps + s2c)
        assert found is None or found.dialect

    check()
