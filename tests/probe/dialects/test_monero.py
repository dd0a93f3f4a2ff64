"""xmrig/CryptoNote dialect: both sides round-trip, real sizes, pool errors vs generic errors."""

from __future__ import annotations

import random

import pytest

from minerscope.errors import RemoteProtocolError
from minerscope.probe.dialects import monero as xmr
from minerscope.probe.dialects.base import ProbeContext, decode_messages
from minerscope.probe.framing import encode_json_line
from minerscope.probe.verdict import Outcome
from tests.probe.dialects.helpers import sent, wire

CTX = ProbeContext("127.0.0.1", 3333)
INVALID_METHOD = wire({"id": 909, "jsonrpc": "2.0", "error": {"code": -1, "message": "Invalid method"}})


def test_login_request_is_xmrig_shaped_and_parses_on_the_pool_side() -> None:
    (msg,) = sent(xmr.XMRIG.probe_requests(CTX))
    assert list(msg) == ["id", "jsonrpc", "method", "params"]
    login = xmr.parse_login_params(msg["params"])
    assert login.login == xmr.PROBE_WALLET and len(login.login) == 95 and login.login[0] == "4"
    assert login.agent.startswith("XMRig/") and "rx/0" in login.algos


def test_sizes_match_the_reference_examples() -> None:
    rng = random.Random(9)
    job = xmr.make_job(rng, session_id="479059546883218", tx_count=40)
    assert len(job.blob) == 152  # 76-byte hashing blob below 127 transactions
    assert len(xmr.make_blob(rng, tx_count=400)) == 154
    assert 250 <= len(encode_json_line(xmr.job_push(job))) <= 420
    assert 350 <= len(encode_json_line(xmr.login_result(1, "479059546883218", job))) <= 560
    share = xmr.make_submit(rng, job, "479059546883218")
    submit = encode_json_line(xmr.submit_request(2, share.id, share.job_id, share.nonce, share.result))
    assert 180 <= len(submit) <= 260
    assert 60 <= len(encode_json_line(xmr.keepalived_request(3, "479059546883218"))) <= 110
    assert len(encode_json_line(xmr.submit_result(2))) < 70


def test_pool_and_miner_messages_round_trip() -> None:
    rng = random.Random(4)
    job = xmr.make_job(rng, session_id="abc", algo="rx/0", height=3_000_000)
    (login,) = decode_messages(wire(xmr.login_result(1, "abc", job)))
    sid, parsed = xmr.parse_login_result(login["result"])
    assert sid == "abc" and parsed == job
    (push,) = decode_messages(wire(xmr.job_push(job)))
    assert "id" not in push and xmr.parse_job(push["params"]) == job
    share = xmr.make_submit(rng, job, sid)
    (sub,) = decode_messages(wire(xmr.submit_request(2, sid, job.job_id, share.nonce, share.result, "rx/0")))
    assert xmr.parse_submit_params(sub["params"]) == share
    assert xmr.target_for_difficulty(1) == "ffffffff"
    assert (
        int.from_bytes(bytes.fromhex(xmr.target_for_difficulty(120_000)), "little") == (2**32 - 1) // 120_000
    )


def test_login_with_job_is_a_confident_success_with_evidence() -> None:
    rng = random.Random(8)
    job = xmr.make_job(rng, session_id="22787", algo="cn/r", height=1974881)
    result = xmr.XMRIG.classify(wire(xmr.login_result(1, "22787", job)))
    assert result.outcome is Outcome.SUCCESS and result.confidence >= 0.9 and result.is_pool
    assert result.get("algo") == "cn/r" and result.get("height") == "1974881"
    assert result.get("blob_bytes") == str(len(job.blob) // 2) and result.get("target") == job.target


def test_fake_wallet_rejection_needs_a_different_control_answer() -> None:
    refused = wire(xmr.login_error(1))
    assert xmr.XMRIG.classify(refused).is_pool is False
    confirmed = xmr.XMRIG.classify(refused, INVALID_METHOD)
    assert confirmed.outcome is Outcome.ERROR and confirmed.is_pool
    assert confirmed.get("error") == "Invalid payment address provided"
    assert xmr.XMRIG.classify(refused, wire(xmr.login_error(909))).outcome is Outcome.NONE
    silent_control: list[bytes] = []  # the pool closed on the unknown method
    assert xmr.XMRIG.classify(refused, silent_control).is_pool


def test_non_pool_answers() -> None:
    generic = wire({"id": 1, "jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}})
    assert xmr.XMRIG.classify(generic).outcome is Outcome.NONE
    other = wire({"id": 1, "jsonrpc": "2.0", "error": {"code": -32000, "message": "Server busy"}})
    assert xmr.XMRIG.classify(other).outcome is Outcome.NONE
    no_blob = wire(
        {"id": 1, "jsonrpc": "2.0", "result": {"id": "x", "job": {"job_id": "1", "target": "ffff0000"}}}
    )
    assert xmr.XMRIG.classify(no_blob).outcome is Outcome.NONE


def test_parse_job_names_the_broken_field() -> None:
    job = xmr.make_job(random.Random(1)).to_json()
    for field, value, message in (
        ("blob", "zz", "blob"),
        ("job_id", 5, "job_id"),
        ("target", "abc", "target"),
    ):
        broken = dict(job, **{field: value})
        with pytest.raises(RemoteProtocolError, match=message):
            xmr.parse_job(broken)


def test_alphabetical_job_style_like_the_captured_pool() -> None:
    job = xmr.make_job(random.Random(6), next_seed_hash="")
    (push,) = decode_messages(wire(xmr.job_push(job, sort_job_keys=True)))
    assert (
        list(push["params"])
        == sorted(push["params"])
        == [
            "algo",
            "blob",
            "height",
            "job_id",
            "next_seed_hash",
            "seed_hash",
            "target",
        ]
    )
    assert xmr.parse_job(push["params"]) == job
    (login,) = decode_messages(wire(xmr.login_result(1, "s", job, sort_job_keys=True)))
    assert list(login["result"]["job"]) == sorted(login["result"]["job"])
