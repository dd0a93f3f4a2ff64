"""Miner <-> pool in memory: each probe's bytes are parsed by the pool-side parsers, a
scripted pool answers with the pool-side builders, and the probe's judge must agree.

This is the contract the emulators and the traffic lab rely on: one implementation of
each dialect, both sides, no drift (the h11 ``ConnectionPair`` idea, without sockets).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from minerscope.probe.dialects import bitcoin as v1
from minerscope.probe.dialects import browser_ws as ws
from minerscope.probe.dialects import ethereum as eth
from minerscope.probe.dialects import get_dialect
from minerscope.probe.dialects import monero as xmr
from minerscope.probe.dialects import zcash as zec
from minerscope.probe.dialects.base import ProbeContext, split_rpc
from minerscope.probe.framing import LineBuffer, decode_json_object, encode_json_line
from minerscope.probe.verdict import Outcome

CTX = ProbeContext("127.0.0.1", 3333)


def _pool(name: str, request: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """A scripted pool of dialect ``name``: parse the miner's request, answer it."""
    rpc = split_rpc(request)
    assert rpc.kind == "request", request
    rid = int(str(rpc.id))
    if name == "stratum1" and rpc.method == "mining.subscribe":
        return [
            v1.subscribe_result(rid, v1.make_extranonce1(rng), 4),
            v1.set_difficulty(8192),
            v1.notify(v1.make_notify_job(rng)),
        ]
    if name in ("stratum1", "ethstratum", "stratum1-zcash") and rpc.method == "mining.authorize":
        assert isinstance(rpc.params, list) and isinstance(rpc.params[0], str)
        return [v1.authorize_result(rid)]
    if name == "xmrig" and rpc.method == "login":
        login = xmr.parse_login_params(rpc.params)
        assert login.login and login.agent
        return [xmr.login_result(rid, "s1", xmr.make_job(rng, session_id="s1"))]
    if name == "ethproxy" and rpc.method == "eth_submitLogin":
        assert "worker" in request
        return [eth.bool_result(rid)]
    if name == "ethproxy" and rpc.method == "eth_getWork":
        return [eth.work_result(rid, eth.make_work(rng))]
    if name == "ethstratum" and rpc.method == "mining.subscribe":
        assert isinstance(rpc.params, list) and rpc.params[1] == eth.PROTOCOL
        return [
            eth.nh_subscribe_result(rid, "sub", "ab01"),
            eth.nh_set_difficulty(1.0),
            eth.nh_notify(eth.make_nh_job(rng)),
        ]
    if name == "stratum1-zcash" and rpc.method == "mining.subscribe":
        assert isinstance(rpc.params, list) and rpc.params[1] is None
        return [
            zec.subscribe_result(rid, "04d567b212"),
            zec.set_target(zec.target_for_difficulty(4)),
            zec.notify(zec.make_job(rng)),
        ]
    raise AssertionError(f"{name}: unexpected {rpc.method}")


@pytest.mark.parametrize("name", ["stratum1", "xmrig", "ethproxy", "ethstratum", "stratum1-zcash"])
def test_probe_against_a_pool_built_from_the_same_module(name: str) -> None:
    rng = random.Random(name)
    dialect = get_dialect(name)
    server_bytes = b""
    for request in dialect.probe_requests(CTX):
        obj = decode_json_object(request.data.rstrip(b"\n"))
        assert obj is not None
        server_bytes += b"".join(encode_json_line(m) for m in _pool(name, obj, rng))
    buf = LineBuffer()
    replies = []
    for i in range(0, len(server_bytes), 37):  # TCP may cut anywhere
        replies += buf.feed(server_bytes[i : i + 37])
    result = dialect.classify(replies, [b'{"id":909,"error":{"code":-32601,"message":"Method not found"}}'])
    assert result.outcome is Outcome.SUCCESS and result.is_pool and result.confidence >= 0.9, result
    assert result.get("family") == str(dialect.family)


def test_coinhive_probe_against_a_scripted_proxy() -> None:
    rng = random.Random(7)
    (auth,) = ws.COINHIVE.probe_requests(CTX)
    kind, params = ws.parse_ws_message(decode_json_object(auth.data))
    assert kind == "auth" and isinstance(params["site_key"], str)
    frames = [
        ws.encode_ws_json(ws.authed_message("", 0)),
        ws.encode_ws_json(ws.job_message(xmr.make_job(rng))),
    ]
    result = ws.COINHIVE.classify(frames)
    assert result.outcome is Outcome.SUCCESS and result.is_pool
