"""Coinhive-style WebSocket mining: frames both ways, echo and generic WS JSON refused."""

from __future__ import annotations

import random

from minerscope.probe.dialects import browser_ws as ws
from minerscope.probe.dialects import monero as xmr
from minerscope.probe.dialects.base import ProbeContext, decode_messages
from minerscope.probe.framing import OP_TEXT, decode_ws_frames, encode_ws_frame
from minerscope.probe.verdict import Outcome

CTX = ProbeContext("127.0.0.1", 8080, path="/proxy")


def _frames(*messages: dict[str, object], masked: bool) -> list[bytes]:
    """Messages through real RFC 6455 frames and back to the payloads classify() gets."""
    rng = random.Random(0)
    data = b"".join(
        encode_ws_frame(ws.encode_ws_json(m), mask=rng.randbytes(4) if masked else None) for m in messages
    )
    frames, used = decode_ws_frames(data)
    assert used == len(data) and all(f.opcode == OP_TEXT for f in frames)
    return [f.payload for f in frames]


def test_auth_frame_parses_on_the_server_side() -> None:
    (req,) = ws.COINHIVE.probe_requests(CTX)
    (msg,) = decode_messages(_frames(*decode_messages([req.data]), masked=True))
    kind, params = ws.parse_ws_message(msg)
    assert kind == "auth" and params["site_key"] == ws.FAKE_SITE_KEY and len(ws.FAKE_SITE_KEY) == 32
    assert ws.COINHIVE.ws_paths[:3] == ("/", "/proxy", "/ws")


def test_pool_frames_are_success() -> None:
    rng = random.Random(1)
    job = xmr.make_job(rng, algo="cn/r", height=None, seed_hash=False)
    replies = _frames(
        ws.authed_message("", 0), ws.job_message(job), ws.hash_accepted_message(256), masked=False
    )
    result = ws.COINHIVE.classify(replies)
    assert result.outcome is Outcome.SUCCESS and result.is_pool and result.get("family") == "browser"
    assert result.get("job_id") == job.job_id and result.get("algo") == "cn/r"
    (job_msg,) = decode_messages([replies[1]])
    assert list(job_msg["params"])[:3] == ["job_id", "blob", "target"]
    assert xmr.parse_job(job_msg["params"]) == job


def test_site_key_error_counts_only_with_a_different_control() -> None:
    refused = _frames(ws.error_message("invalid_site_key"), masked=False)
    assert not ws.COINHIVE.classify(refused).is_pool
    other = _frames(ws.error_message("invalid_message"), masked=False)
    confirmed = ws.COINHIVE.classify(refused, other)
    assert confirmed.outcome is Outcome.ERROR and confirmed.is_pool
    assert ws.COINHIVE.classify(refused, refused).outcome is Outcome.NONE


def test_echo_and_generic_ws_json_are_not_pools() -> None:
    (req,) = ws.COINHIVE.probe_requests(CTX)
    assert ws.COINHIVE.classify([req.data]).reason == "echo of our auth frame"
    chat = _frames(
        {"type": "message", "params": {"text": "hello"}},
        {"type": "error", "params": {"error": "rate limited"}},
        masked=False,
    )
    assert ws.COINHIVE.classify(chat).outcome is Outcome.NONE
    assert ws.COINHIVE.classify([b"<html>Upgrade Required</html>"]).outcome is Outcome.NONE
    assert ws.COINHIVE.classify([]).outcome is Outcome.NONE


def test_submit_round_trip() -> None:
    (msg,) = decode_messages(_frames(ws.submit_message("abc", "0a0b0c0d", "ff" * 32), masked=True))
    assert ws.parse_ws_message(msg) == ("submit", {"job_id": "abc", "nonce": "0a0b0c0d", "result": "ff" * 32})
