"""Stratum V1: builders of both sides parse back, sizes are real, judgement is strict."""

from __future__ import annotations

import math
import random

import pytest

from minerscope.errors import RemoteProtocolError
from minerscope.probe.dialects import bitcoin as v1
from minerscope.probe.dialects.base import ProbeContext, decode_messages, split_rpc
from minerscope.probe.framing import encode_json_line
from minerscope.probe.verdict import Outcome
from tests.probe.dialects.helpers import sent, wire

CTX = ProbeContext("127.0.0.1", 3333)
CONTROL_NOT_FOUND = [b'{"id":909,"result":null,"error":[20,"Method not found",null]}']


def _pool_session(rng: random.Random, tx_count: int = 2500) -> tuple[list[bytes], v1.NotifyJob, str]:
    en1 = v1.make_extranonce1(rng)
    job = v1.make_notify_job(rng, tx_count=tx_count)
    lines = wire(
        v1.subscribe_result(1, en1, 4, "ae6812eb4cd7735a302a8a9dd95cf71f"),
        v1.authorize_result(2),
        v1.set_difficulty(16384),
        v1.notify(job),
    )
    return lines, job, en1


def test_probe_requests_parse_on_the_pool_side() -> None:
    msgs = sent(v1.STRATUM1.probe_requests(CTX))
    sub, auth = (split_rpc(m) for m in msgs)
    assert sub.kind == "request" and sub.method == "mining.subscribe" and sub.params == [v1.DEFAULT_AGENT]
    assert auth.method == "mining.authorize" and auth.params == [v1.DEFAULT_WORKER, "x"]
    sizes = [len(r.data) for r in v1.STRATUM1.probe_requests(CTX)]
    assert 50 <= sizes[0] <= 80 and 60 <= sizes[1] <= 120  # PROTOCOLS.md §5.1


@pytest.mark.parametrize("tx_count", [0, 1, 7, 300, 2500, 4000])
def test_notify_has_real_structure_and_size(tx_count: int) -> None:
    rng = random.Random(tx_count)
    job = v1.make_notify_job(rng, tx_count=tx_count, extranonce1_size=4, extranonce2_size=8)
    expected_branches = math.ceil(math.log2(tx_count + 1)) if tx_count else 0
    assert len(job.merkle_branch) == expected_branches
    line = encode_json_line(v1.notify(job))
    assert 300 <= len(line) <= 1600
    parsed = v1.parse_notify(decode_messages([line])[0]["params"])
    assert parsed == job
    # the coinbase assembled by a miner is a parseable transaction whose script length
    # accounts for the extranonces placed between the halves
    coinbase = bytes.fromhex(job.coinb1 + "00" * 4 + "11" * 8 + job.coinb2)
    script_len = coinbase[41]
    script_end = 42 + script_len
    assert coinbase[script_end : script_end + 4] == b"\xff\xff\xff\xff"
    assert coinbase[script_end - len(b"/minerscope/") : script_end] == b"/minerscope/"


def test_same_seed_same_bytes_and_different_seed_differs() -> None:
    a = encode_json_line(v1.notify(v1.make_notify_job(random.Random(5))))
    b = encode_json_line(v1.notify(v1.make_notify_job(random.Random(5))))
    c = encode_json_line(v1.notify(v1.make_notify_job(random.Random(6))))
    assert a == b != c


def test_submit_round_trip_and_sizes() -> None:
    rng = random.Random(3)
    job = v1.make_notify_job(rng)
    share = v1.make_submit_params(rng, job, "bc1q" + "x" * 38 + ".rig01", 4, version_rolling=True)
    line = encode_json_line(v1.submit_request(7, *_share_fields(share)))
    assert 120 <= len(line) <= 200
    assert v1.parse_submit(decode_messages([line])[0]["params"]) == share
    ack = encode_json_line(v1.submit_result(7))
    assert len(ack) <= 45
    refused = decode_messages([encode_json_line(v1.submit_result(8, False, v1.ERR_LOW_DIFFICULTY))])[0]
    assert refused["error"] == [23, "Low difficulty share", None]
    with pytest.raises(RemoteProtocolError, match="nonce"):
        v1.parse_submit(["w", "j", "00000000", "5f5e1000", "zz"])


def _share_fields(share: v1.Share) -> tuple[str, str, str, str, str, str | None]:
    return share.worker, share.job_id, share.extranonce2, share.ntime, share.nonce, share.version_bits


def test_configure_and_extensions_round_trip() -> None:
    req = decode_messages([encode_json_line(v1.configure_request(1))])[0]
    assert req["params"][1]["version-rolling.mask"] == "1fffe000"
    res = decode_messages([encode_json_line(v1.configure_result(1))])[0]
    assert res["result"]["version-rolling"] is True
    push = decode_messages([encode_json_line(v1.set_extranonce("0a0b0c0d", 4))])[0]
    assert push["method"] == "mining.set_extranonce" and push["params"] == ["0a0b0c0d", 4]
    assert decode_messages([encode_json_line(v1.reconnect("127.0.0.2", 3334, 5))])[0]["params"] == [
        "127.0.0.2",
        3334,
        5,
    ]


def test_subscribe_result_shapes() -> None:
    both = v1.parse_subscribe_result(v1.subscribe_result(1, "08000002", 4)["result"])
    assert both.extranonce1 == "08000002" and both.extranonce2_size == 4
    assert [n for n, _ in both.subscriptions] == ["mining.set_difficulty", "mining.notify"]
    ck = v1.parse_subscribe_result([["mining.notify", "d11a2f8f"], "75fdb4f1", 8])
    assert ck.extranonce2_size == 8
    for bad in (
        [["mining.notify", "1"], "xyz", 4],
        [["mining.notify", "1"], "ab", 0],
        [["x", "1"], "ab", 4],
        [1, 2],
    ):
        with pytest.raises(RemoteProtocolError, match="subscribe result"):
            v1.parse_subscribe_result(bad)


def test_full_pool_session_is_a_confident_success() -> None:
    lines, job, en1 = _pool_session(random.Random(11))
    result = v1.STRATUM1.classify(lines)
    assert result.outcome is Outcome.SUCCESS and result.confidence >= 0.9 and result.is_pool
    assert result.get("family") == "bitcoin"
    assert result.get("extranonce1") == en1 and result.get("extranonce2_size") == "4"
    assert result.get("difficulty") == "16384" and result.get("job_id") == job.job_id
    assert result.get("merkle_branches") == str(len(job.merkle_branch))
    again = v1.STRATUM1.classify(lines, CONTROL_NOT_FOUND)
    assert again.confidence >= 0.9


def test_pool_that_only_pushes_a_notify_counts() -> None:
    job = v1.make_notify_job(random.Random(1))
    result = v1.STRATUM1.classify(wire(v1.notify(job)))
    assert result.outcome is Outcome.SUCCESS and result.is_pool


def test_rejected_worker_is_a_pool_only_when_the_control_differs() -> None:
    refused = wire(
        {"id": 1, "result": None, "error": [24, "Unauthorized worker", None]},
        {"id": 2, "result": False, "error": [24, "Unauthorized worker", None]},
    )
    without = v1.STRATUM1.classify(refused)
    assert without.outcome is Outcome.ERROR and not without.is_pool
    confirmed = v1.STRATUM1.classify(refused, CONTROL_NOT_FOUND)
    assert confirmed.outcome is Outcome.ERROR and confirmed.is_pool
    assert confirmed.get("error") == "Unauthorized worker"
    control_alike = wire({"id": 909, "result": None, "error": [24, "Unauthorized worker", None]})
    assert v1.STRATUM1.classify(refused, control_alike).outcome is Outcome.NONE


def test_yes_to_everything_server_is_not_a_pool() -> None:
    yes = wire({"id": 1, "result": True, "error": None}, {"id": 2, "result": True, "error": None})
    control = wire({"id": 909, "result": True, "error": None})
    assert v1.STRATUM1.classify(yes, control).outcome is Outcome.NONE
    weak = v1.STRATUM1.classify(yes)
    assert weak.outcome is Outcome.SUCCESS and not weak.is_pool  # needs the control to count


def test_malformed_notify_is_not_evidence() -> None:
    job = v1.make_notify_job(random.Random(2))
    params = job.params()
    params[1] = params[1][:-2]  # a 31-byte prevhash
    with pytest.raises(RemoteProtocolError, match="prevhash"):
        v1.parse_notify(params)
    result = v1.STRATUM1.classify(wire({"id": None, "method": "mining.notify", "params": params}))
    assert result.outcome is Outcome.NONE


def test_zcash_pool_answering_a_bitcoin_probe_is_recognised_as_zcash() -> None:
    lines = wire(
        {"id": 1, "result": ["04d567b212", "04d567b212"], "error": None},
        {"id": 2, "result": True, "error": None},
        {
            "id": None,
            "method": "mining.set_target",
            "params": ["0004189374bc6a7ef9db22d0e5604189374bc6a7ef9db22d0e5604189374bc6a"],
        },
    )
    result = v1.STRATUM1.classify(lines)
    assert result.outcome is Outcome.SUCCESS and result.get("family") == "zcash" and result.is_pool
