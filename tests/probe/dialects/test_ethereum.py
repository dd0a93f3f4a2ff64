"""Ethereum pools: eth-proxy and NiceHash EthereumStratum; node errors and TRON are not pools."""

from __future__ import annotations

import random

import pytest

from minerscope.errors import RemoteProtocolError
from minerscope.probe.dialects import ethereum as eth
from minerscope.probe.dialects.base import ProbeContext, decode_messages
from minerscope.probe.framing import encode_json_line
from minerscope.probe.verdict import Outcome
from tests.probe.dialects.helpers import sent, wire

CTX = ProbeContext("127.0.0.1", 8008)
NOT_FOUND = wire(
    {"jsonrpc": "2.0", "id": 909, "error": {"code": -32601, "message": "the method does not exist"}}
)


def test_ethproxy_requests_carry_worker_and_parse() -> None:
    login, work = sent(eth.ETHPROXY.probe_requests(CTX))
    assert login["method"] == "eth_submitLogin" and login["worker"] == "eth1.0"
    assert login["params"][0] == eth.FAKE_WALLET and len(eth.FAKE_WALLET) == 42
    assert work["method"] == "eth_getWork" and work["params"] == []


def test_work_round_trip_sizes_and_boundary() -> None:
    rng = random.Random(2)
    work = eth.make_work(rng, difficulty=2**32)
    line = encode_json_line(eth.work_result(0, work))
    assert len(line) == 243  # byte for byte the size of the pushes in cj-sniffer's ethminer captures
    (msg,) = decode_messages([line])
    assert eth.parse_work(msg["result"]) == work
    assert work.boundary == "0x00000000ffffffff" + "f" * 48
    nonce = "0x" + rng.randbytes(8).hex()
    (sub,) = decode_messages(
        wire(eth.submit_work_request(4, nonce, work.header, "0x" + "ab" * 32, worker="rig"))
    )
    assert eth.parse_submit_work(sub["params"]) == (nonce, work.header, "0x" + "ab" * 32)
    hashrate = encode_json_line(eth.submit_hashrate_request(6, 30_444_129, "0x" + "00" * 31 + "2d"))
    assert 140 <= len(hashrate) <= 170


def test_ethproxy_pool_session_is_success() -> None:
    rng = random.Random(3)
    lines = wire(
        eth.bool_result(1), eth.work_result(2, eth.make_work(rng)), eth.work_result(0, eth.make_work(rng))
    )
    result = eth.ETHPROXY.classify(lines)
    assert result.outcome is Outcome.SUCCESS and result.is_pool and result.get("family") == "ethereum"
    assert result.get("difficulty") == "4000000000"


@pytest.mark.parametrize(
    "reply",
    [
        {"jsonrpc": "2.0", "id": 2, "result": [None, None, None]},  # TRON-like
        {"jsonrpc": "2.0", "id": 2, "result": ["0x" + "00" * 32, "0x" + "00" * 32, "0x" + "00" * 32]},
        {"jsonrpc": "2.0", "id": 2, "result": ["0x12", "0x34", "0x56"]},
        {"jsonrpc": "2.0", "id": 2, "error": {"code": -32000, "message": "no mining work available yet"}},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "error": {"code": -32601, "message": "the method eth_getWork does not exist/is not available"},
        },
    ],
)
def test_node_answers_are_not_pools(reply: dict[str, object]) -> None:
    assert eth.ETHPROXY.classify(wire(reply), NOT_FOUND).outcome is Outcome.NONE
    with pytest.raises(RemoteProtocolError):
        eth.parse_work(reply.get("result"))


def test_tron_null_array_is_called_a_node() -> None:
    result = eth.ETHPROXY.classify(wire({"jsonrpc": "2.0", "id": 2, "result": [None, None, None]}))
    assert result.outcome is Outcome.NONE and "null" in result.reason + (result.get("error") or "")


def test_login_true_alone_needs_the_control() -> None:
    only = wire(eth.bool_result(1))
    assert not eth.ETHPROXY.classify(only).is_pool
    assert eth.ETHPROXY.classify(only, NOT_FOUND).is_pool
    assert eth.ETHPROXY.classify(only, wire(eth.bool_result(909))).outcome is Outcome.NONE


def test_nicehash_session_round_trip_and_success() -> None:
    rng = random.Random(5)
    sub, auth = sent(eth.ETHSTRATUM.probe_requests(CTX))
    assert sub["params"] == [eth.NH_AGENT, "EthereumStratum/1.0.0"]
    assert auth["params"][0].startswith(eth.FAKE_WALLET + ".")
    job = eth.make_nh_job(rng)
    notify = encode_json_line(eth.nh_notify(job))
    assert 180 <= len(notify) <= 260  # ~240 bytes per the EthereumStratum/2.0.0 draft
    assert eth.parse_nh_notify(decode_messages([notify])[0]["params"]) == job
    lines = wire(
        eth.nh_subscribe_result(1, "ae6812eb4cd7735a302a8a9dd95cf71f", "080c"),
        {"id": 2, "result": True, "error": None},
    )
    lines += wire(eth.nh_set_difficulty(0.5), eth.nh_notify(job))
    result = eth.ETHSTRATUM.classify(lines)
    assert result.outcome is Outcome.SUCCESS and result.is_pool
    assert result.get("family") == "ethereum" and result.get("protocol") == "EthereumStratum/1.0.0"
    assert result.get("extranonce1") == "080c" and result.get("seedhash") == job.seedhash
    submit = decode_messages(wire(eth.nh_submit_request(4, "0xabc.rig", job.job_id, "a1b2c3d4e5f6")))[0]
    assert submit["params"] == ["0xabc.rig", job.job_id, "a1b2c3d4e5f6"]
