"""Zcash-style Stratum: ZIP 301 shapes, Equihash-sized shares, judged as Stratum."""

from __future__ import annotations

import random

import pytest

from minerscope.errors import RemoteProtocolError
from minerscope.probe.dialects import bitcoin as v1
from minerscope.probe.dialects import zcash as zec
from minerscope.probe.dialects.base import ProbeContext, decode_messages
from minerscope.probe.framing import encode_json_line
from minerscope.probe.verdict import Outcome
from tests.probe.dialects.helpers import sent, wire

CTX = ProbeContext("127.0.0.1", 3333)


def test_subscribe_carries_host_and_port_like_ewbf() -> None:
    sub, auth = sent(zec.ZCASH.probe_requests(CTX))
    assert sub["params"] == [zec.DEFAULT_AGENT, None, "127.0.0.1", "3333"]
    assert auth["method"] == "mining.authorize" and auth["params"][0].startswith("t1")


def test_job_and_share_round_trip_with_real_sizes() -> None:
    rng = random.Random(1)
    job = zec.make_job(rng)
    notify = encode_json_line(zec.notify(job))
    assert 300 <= len(notify) <= 340  # flypool's notify lines are ~315 bytes
    assert zec.parse_notify(decode_messages([notify])[0]["params"]) == job
    solution = zec.make_solution(rng)
    assert len(solution) == 2 * (3 + zec.SOLUTION_BYTES)
    submit = encode_json_line(
        zec.submit_request(
            100, "t1fAhZF5aUJdY7CikGULHmeYk7id8qmvbAd.rig4", job.job_id, job.time, "00" * 27, solution
        )
    )
    assert 2750 <= len(submit) <= 2900
    assert zec.parse_submit(decode_messages([submit])[0]["params"])[4] == solution
    with pytest.raises(RemoteProtocolError, match="prevhash"):
        zec.parse_notify(
            [job.job_id, job.version, "00", job.merkleroot, job.reserved, job.time, job.bits, True]
        )


def test_target_for_difficulty() -> None:
    assert zec.target_for_difficulty(1).startswith("0007ffff")
    assert int(zec.target_for_difficulty(2), 16) < int(zec.target_for_difficulty(1), 16)


def test_flypool_like_session_is_zcash_success() -> None:
    rng = random.Random(2)
    lines = wire(
        zec.subscribe_result(1, "04d567b212"),
        v1.authorize_result(2),
        zec.set_target(zec.target_for_difficulty(8)),
        zec.notify(zec.make_job(rng)),
    )
    result = zec.ZCASH.classify(lines)
    assert result.outcome is Outcome.SUCCESS and result.is_pool
    assert result.get("family") == "zcash" and result.get("extranonce1") == "04d567b212"
    assert result.get("target") == zec.target_for_difficulty(8)
