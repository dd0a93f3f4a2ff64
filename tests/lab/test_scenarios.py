"""Solo mining over HTTP JSON-RPC and browser mining over WebSocket, played on the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from minerscope.lab import ws
from minerscope.lab.generate import LabConfig, SessionSpec, World, render_session
from minerscope.lab.netsim import TcpFlow
from minerscope.probe.dialects import browser_ws, http_jsonrpc


@pytest.fixture
def world() -> Iterator[World]:
    with World(LabConfig(seed=11, hours=0.2, sessions=1, loopback_only=True)) as w:
        yield w


def _client_stream(flow: TcpFlow, direction: int) -> bytes:
    out: list[bytes] = []
    port = flow.client[1] if direction == 0 else flow.server[1]
    for _, frame in flow.packets:
        ihl = (frame[14] & 0x0F) * 4
        tcp = 14 + ihl
        if int.from_bytes(frame[tcp : tcp + 2], "big") != port:
            continue
        out.append(frame[tcp + (frame[tcp + 12] >> 4) * 4 :])
    return b"".join(out)


@pytest.mark.parametrize(
    ("coin", "method"),
    [("btc", b"getblocktemplate"), ("xmr", b"get_block_template"), ("etc", b"eth_getWork")],
)
def test_solo_mining_is_http_json_rpc_to_the_node(world: World, coin: str, method: bytes) -> None:
    flows = render_session(world, SessionSpec("mining", 0.0, 300.0, coin=coin, scenario="solo"), 0)
    (r,) = flows
    assert r.meta.dialect == "http-jsonrpc" and r.meta.transport == "tcp"
    assert isinstance(r.flow, TcpFlow)
    requests = _client_stream(r.flow, 0).split(b"POST ")[1:]
    assert len(requests) >= 5 and all(
        method in q or b"get_height" in q or b"eth_submitHashrate" in q for q in requests
    )
    spec = http_jsonrpc.parse_http_request(b"POST " + requests[0])
    assert spec.method == "POST"
    first_reply = _client_stream(r.flow, 1).split(b"HTTP/1.1 ")[1]
    assert http_jsonrpc.parse_http_response(b"HTTP/1.1 " + first_reply).status == 200


def test_browser_miner_speaks_coinhive_over_real_websocket_frames(world: World) -> None:
    spec = SessionSpec("mining", 0.0, 900.0, coin="xmr", scenario="browser", transport="ws")
    flows = render_session(world, spec, 0)
    r = [f for f in flows if f.meta.label == "miner"][0]
    assert r.meta.dialect == "browser-ws"
    assert isinstance(r.flow, TcpFlow)
    client = _client_stream(r.flow, 0)
    assert client.startswith(b"GET ") and b"Upgrade: websocket" in client
    frames = client[client.index(b"\r\n\r\n") + 4 :]
    op, payload, n = ws.unmask(frames)
    assert frames[1] & 0x80  # client frames are masked
    assert op == ws.OP_TEXT and browser_ws.parse_ws_message(json.loads(payload))[0] == "auth"
    server = _client_stream(r.flow, 1)
    body = server[server.index(b"\r\n\r\n") + 4 :]
    kinds = []
    while body:
        op, payload, n = ws.unmask(body)
        kinds.append(browser_ws.parse_ws_message(json.loads(payload))[0])
        body = body[n:]
    assert kinds[0] == "authed" and "job" in kinds
