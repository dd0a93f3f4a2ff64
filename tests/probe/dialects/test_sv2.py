"""Stratum V2 Noise guess: a random 234-byte Act-2 is a hint; anything else is not."""

from __future__ import annotations

import random

from minerscope.probe.dialects import sv2
from minerscope.probe.dialects.base import ProbeContext
from minerscope.probe.verdict import Outcome

CTX = ProbeContext("127.0.0.1", 34254)


def test_act1_is_64_random_looking_bytes_deterministic_per_target() -> None:
    (act1,) = sv2.SV2.probe_requests(CTX)
    assert len(act1.data) == sv2.ACT1_SIZE
    assert act1 == sv2.SV2.probe_requests(CTX)[0]
    assert act1.data != sv2.SV2.probe_requests(ProbeContext("127.0.0.1", 34255))[0].data
    assert len(sv2.SV2.control_request(CTX).data) < sv2.ACT1_SIZE


def test_act2_sized_random_reply_is_a_low_confidence_hint() -> None:
    rng = random.Random(1)
    act2 = sv2.make_act2(rng)
    result = sv2.SV2.classify([act2[:100], act2[100:]], [])
    assert result.outcome is Outcome.SUCCESS and not result.is_pool
    assert result.confidence == sv2.SV2_CONFIDENCE and result.get("reply_bytes") == "234"
    legacy = sv2.SV2.classify([sv2.make_act2(rng, sv2.LEGACY_ACT2_SIZE)])
    assert legacy.confidence == sv2.LEGACY_CONFIDENCE


def test_other_replies_are_not_sv2() -> None:
    rng = random.Random(2)
    text = (b"HTTP/1.1 400 Bad Request\r\n" + b"x" * 300)[:234]
    cases = {
        "wrong size": [rng.randbytes(233)],
        "text": [text],
        "low entropy": [bytes(234)],
        "tls alert": [b"\x15\x03\x03" + rng.randbytes(231)],
        "silence": [],
    }
    for name, replies in cases.items():
        assert sv2.SV2.classify(replies).outcome is Outcome.NONE, name
    junk_to_anything = rng.randbytes(234)
    assert sv2.SV2.classify([junk_to_anything], [rng.randbytes(234)]).outcome is Outcome.NONE
    assert sv2.byte_entropy(b"") == 0.0 and sv2.byte_entropy(bytes(range(256))) == 8.0
