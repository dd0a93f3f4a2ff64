"""The registry and the false-positive traps every dialect must refuse."""

from __future__ import annotations

import pytest

from minerscope.probe.dialects import DIALECTS, dialects_for, get_dialect
from minerscope.probe.dialects.base import (
    CONTROL_METHOD,
    FRAME_SILENCE,
    LINE_SILENCE,
    Framing,
    HttpReply,
    ProbeContext,
    answered_alike,
    decode_messages,
    is_hex,
    is_method_not_found,
    software_hints,
    split_rpc,
)
from minerscope.probe.framing import decode_json_object
from minerscope.probe.verdict import Outcome
from tests.probe.dialects.helpers import HTTP_404, METHOD_NOT_FOUND

CTX = ProbeContext("127.0.0.1", 3333)
LINE_DIALECTS = [d.name for d in dialects_for(Framing.LINE)]


def test_registry_names_and_lookup() -> None:
    assert set(DIALECTS) == {
        "xmrig",
        "stratum1",
        "ethproxy",
        "ethstratum",
        "stratum1-zcash",
        "coinhive",
        "bitcoind",
        "monerod",
        "geth",
        "sv2",
    }
    assert list(DIALECTS)[-1] == "sv2"
    with pytest.raises(KeyError, match="known: xmrig, stratum1"):
        get_dialect("nope")
    assert {d.name for d in dialects_for(Framing.HTTP)} == {"bitcoind", "monerod", "geth"}


@pytest.mark.parametrize("name", LINE_DIALECTS)
def test_line_requests_are_json_lines_with_reply_ids(name: str) -> None:
    dialect = get_dialect(name)
    requests = dialect.probe_requests(CTX)
    assert requests
    for req in requests:
        assert req.data.endswith(b"\n") and req.data.count(b"\n") == 1
        obj = decode_json_object(req.data)
        assert obj is not None and obj["id"] == req.reply_id and obj["method"] == req.label
        assert 40 <= len(req.data) <= 600
    control = dialect.control_request(CTX)
    obj = decode_json_object(control.data)
    assert obj is not None and obj["method"] == CONTROL_METHOD and obj["id"] == control.reply_id
    assert dialect.probe_requests(CTX) == requests  # deterministic


@pytest.mark.parametrize("name", LINE_DIALECTS)
def test_line_dialects_refuse_generic_json_rpc_echo_http_and_noise(name: str) -> None:
    dialect = get_dialect(name)
    requests = dialect.probe_requests(CTX)
    not_found = [METHOD_NOT_FOUND % int(str(r.reply_id)) for r in requests]
    traps = {
        "method not found": not_found,
        "echo": [r.data.rstrip(b"\n") for r in requests],
        "http 404": [HTTP_404],
        "ssh banner": [b"SSH-2.0-OpenSSH_9.6"],
        "binary": [bytes(range(256))],
        "silence": [],
        "plain json": [b'{"status":"ok","version":"1.2.3"}'],
    }
    for trap, replies in traps.items():
        result = dialect.classify(replies, not_found)
        assert result.outcome is Outcome.NONE, (trap, result)
        assert not result.is_pool


@pytest.mark.parametrize("name", [*LINE_DIALECTS, "coinhive"])
def test_replies_without_json_say_what_the_peer_did_instead(name: str) -> None:
    """An analyst told "not a pool" needs to know whether a web server, some other
    service or nothing answered: each dialect names the three cases apart."""
    dialect = get_dialect(name)
    http, other, nothing = FRAME_SILENCE if name == "coinhive" else LINE_SILENCE
    assert len({http, other, nothing}) == 3
    cases = {http: [HTTP_404], other: [b"SSH-2.0-OpenSSH_9.6\r\n"], nothing: [b"", b" \r\n"]}
    for reason, replies in cases.items():
        result = dialect.classify(replies)
        assert (result.outcome, result.reason) == (Outcome.NONE, reason), name


def test_helpers() -> None:
    assert is_hex("00ff") and is_hex("00ff", 2) and not is_hex("0ff") and not is_hex("zz") and not is_hex(5)
    assert is_hex("0x" + "ab" * 32, 32, prefix=True) and not is_hex("ab" * 32, 32, prefix=True)
    assert is_method_not_found({"error": {"code": -32601, "message": "x"}})
    assert is_method_not_found({"error": [20, "Unknown method 'foo'", None]})
    assert not is_method_not_found({"error": {"code": -1, "message": "Invalid payment address provided"}})
    msgs = decode_messages([b'{"id":1}\n{"id":2}\nnot json', HttpReply(200, "OK", (), b'{"id":3}')])
    assert [m["id"] for m in msgs] == [1, 2, 3]
    a = decode_messages([b'{"id":1,"error":{"code":-1,"message":"Login failed for 42"}}'])
    b = decode_messages([b'{"id":909,"error":{"code":-1,"message":"Login failed for 17"}}'])
    assert answered_alike(a, b)
    assert not answered_alike(
        a, decode_messages([b'{"id":909,"error":{"code":-1,"message":"Invalid method"}}'])
    )
    assert split_rpc({"id": None, "method": "job", "params": {}}).kind == "notification"
    assert split_rpc({"id": 4, "method": "submit", "params": {}}).kind == "request"
    assert split_rpc({"id": 4, "result": True}).kind == "response"
    hints = software_hints(
        decode_messages([b'{"id":1,"result":{"version":"nodejs-pool/2.0","x":"see miningcore/73.1"}}'])
    )
    assert "version=nodejs-pool/2.0" in hints and "miningcore/73.1" in hints


def test_every_dialect_survives_arbitrary_json() -> None:
    """Hostile but well-formed JSON (ids that are arrays, params of any type...) never
    crashes a classifier or a passive recogniser."""
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False)
        | st.text(max_size=12)
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    )
    keys = st.sampled_from(["id", "method", "params", "result", "error", "type", "jsonrpc", "job", "worker"])
    methods = st.sampled_from(
        ["mining.notify", "mining.subscribe", "login", "job", "submit", "eth_submitLogin", "auth", "authed"]
    )
    messages = st.dictionaries(keys, values | methods, max_size=6)

    @settings(max_examples=120, deadline=None)
    @given(st.lists(messages, max_size=4), st.lists(messages, max_size=2))
    def check(replies: list[dict[str, object]], control: list[dict[str, object]]) -> None:
        raw = [json.dumps(m).encode() for m in replies]
        ctrl = [json.dumps(m).encode() for m in control]
        for dialect in DIALECTS.values():
            result = dialect.classify(raw, ctrl)
            assert 0.0 <= result.confidence <= 1.0
            dialect.passive_match(replies, control)

    check()
