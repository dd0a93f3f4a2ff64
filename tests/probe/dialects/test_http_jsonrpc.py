"""Solo daemons over HTTP: fingerprints, templates, and HTTP pages that are not pools."""

from __future__ import annotations

import json
import random

import pytest

from minerscope.errors import LimitExceededError, RemoteProtocolError
from minerscope.probe.dialects import ethereum as eth
from minerscope.probe.dialects import http_jsonrpc as h
from minerscope.probe.dialects.base import HttpReply, ProbeContext
from minerscope.probe.verdict import Outcome
from tests.probe.dialects.helpers import HTTP_404

CTX = ProbeContext("127.0.0.1", 8332, agent="cgminer/4.12.1")
NOT_FOUND_BODY = {"jsonrpc": "2.0", "id": 909, "error": {"code": -32601, "message": "Method not found"}}
NOT_FOUND = h.json_http_reply(NOT_FOUND_BODY)


def test_requests_are_http_specs_that_survive_the_wire() -> None:
    (gbt,) = h.BITCOIND.probe_requests(CTX)
    assert gbt.http is not None and gbt.http.method == "POST" and gbt.http.path == "/"
    body = json.loads(gbt.http.body)
    assert body["method"] == "getblocktemplate" and body["params"][0]["rules"] == ["mweb", "segwit"]
    raw = h.http_request_bytes(gbt.http, "127.0.0.1:8332")
    back = h.parse_http_request(raw)
    assert back.body == gbt.http.body and ("Content-Type", "application/json") in back.headers
    assert ("Host", "127.0.0.1:8332") in back.headers
    (mon,) = h.MONEROD.probe_requests(CTX)
    assert mon.http is not None and mon.http.path == "/json_rpc"
    assert json.loads(mon.http.body)["params"]["wallet_address"][0] == "4"
    authed = h.BITCOIND.probe_requests(ProbeContext("127.0.0.1", 8332, worker="user", password="pass"))[0]
    assert authed.http is not None and ("Authorization", "Basic dXNlcjpwYXNz") in authed.http.headers


def test_401_realm_jsonrpc_is_a_daemon_fingerprint_below_pool_threshold() -> None:
    raw = h.http_response_bytes(h.unauthorized_reply())
    for reply in (h.unauthorized_reply(), raw):
        result = h.BITCOIND.classify([reply])
        assert result.outcome is Outcome.ERROR and not result.is_pool
        assert result.confidence == h.DAEMON_FINGERPRINT_CONFIDENCE
        assert "realm" in (result.get("software") or "")
    other_realm = HttpReply(401, "Unauthorized", (("WWW-Authenticate", 'Basic realm="Router"'),), b"")
    assert h.BITCOIND.classify([other_realm]).outcome is Outcome.NONE


def test_block_template_is_success_with_evidence() -> None:
    rng = random.Random(1)
    tpl = h.make_block_template(rng, tx_count=30, height=870_123)
    reply = h.json_http_reply(h.gbt_result(1, tpl))
    result = h.BITCOIND.classify([reply])
    assert result.outcome is Outcome.SUCCESS and result.is_pool
    assert result.get("height") == "870123" and result.get("transactions") == "30"
    assert 20_000 <= len(reply.body) <= 60_000
    broken = dict(tpl, bits="zz")
    with pytest.raises(RemoteProtocolError, match="bits"):
        h.parse_block_template(broken)


def test_bitcoind_errors_and_generic_pages() -> None:
    ibd = h.json_http_reply(
        {
            "result": None,
            "error": {"code": -10, "message": "Bitcoin Core is in initial sync and waiting for blocks..."},
            "id": 1,
        },
        500,
        "Internal Server Error",
    )
    result = h.BITCOIND.classify([ibd], [NOT_FOUND])
    assert result.outcome is Outcome.ERROR and result.get("error_code") == "-10"
    assert h.BITCOIND.classify([NOT_FOUND]).outcome is Outcome.NONE
    assert h.BITCOIND.classify([HTTP_404]).outcome is Outcome.NONE
    assert h.BITCOIND.classify([b"SSH-2.0-OpenSSH_9.6\r\n"]).reason == "reply is not HTTP"


def test_monerod_template_and_wallet_error() -> None:
    rng = random.Random(2)
    ok = h.json_http_reply(h.monerod_template_result(rng, height=3_100_000))
    result = h.MONEROD.classify([ok])
    assert result.outcome is Outcome.SUCCESS and result.get("height") == "3100000" and result.is_pool
    bad_wallet = h.json_http_reply(h.monerod_error())
    err = h.MONEROD.classify([bad_wallet], [NOT_FOUND])
    assert err.outcome is Outcome.ERROR and err.get("coin") == "xmr"
    alike = h.json_http_reply(h.monerod_error("909"))
    assert h.MONEROD.classify([bad_wallet], [alike]).outcome is Outcome.NONE
    assert h.MONEROD.classify([NOT_FOUND]).outcome is Outcome.NONE


def test_monerod_replies_laid_out_over_many_lines_are_one_document() -> None:
    """Real monerod (0.18, epee) indents its replies over CRLF lines; read line by line
    they held no JSON at all and a live daemon was "HTTP 200 page without JSON-RPC"."""
    rng = random.Random(2)
    ok = h.json_http_reply(h.monerod_template_result(rng, height=7), epee=True)
    assert ok.body.count(b"\r\n") > 5
    assert h.MONEROD.classify([ok]).outcome is Outcome.SUCCESS
    bad_wallet = h.json_http_reply(h.monerod_error(), epee=True)
    err = h.MONEROD.classify([bad_wallet], [h.json_http_reply(NOT_FOUND_BODY, epee=True)])
    assert err.outcome is Outcome.ERROR and err.get("error") == "Failed to parse wallet address"


def test_geth_work_and_node_errors() -> None:
    rng = random.Random(3)
    work = h.json_http_reply(eth.work_result(1, eth.make_work(rng)))
    assert h.GETH.classify([work]).outcome is Outcome.SUCCESS
    for body in (
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "no mining work available yet"}},
        {"jsonrpc": "2.0", "id": 1, "result": [None, None, None]},
        {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32601, "message": "the method eth_getWork does not exist/is not available"},
        },
    ):
        assert h.GETH.classify([h.json_http_reply(body)]).outcome is Outcome.NONE


def test_http_parsers_are_bounded() -> None:
    with pytest.raises(LimitExceededError, match="max_http_head_bytes"):
        h.parse_http_response(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 4000)
    with pytest.raises(RemoteProtocolError, match="status line"):
        h.parse_http_response(b"HTTZ/1.1 200 OK\r\n\r\n")
    reply = h.parse_http_response(
        h.http_response_bytes(HttpReply(200, "OK", (("A", "b"),), b"body")) + b"extra"
    )
    assert reply.body == b"body" and reply.header("a") == "b"
