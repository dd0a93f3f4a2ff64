"""Bounded framing: lines, JSON and WebSocket frames under named limits (sans-IO)."""

from __future__ import annotations

import json

import pytest

from minerscope.errors import LimitExceededError, RemoteProtocolError
from minerscope.probe.framing import (
    OP_BINARY,
    OP_TEXT,
    LineBuffer,
    decode_json,
    decode_json_object,
    decode_ws_frames,
    encode_json_line,
    encode_ws_frame,
    rpc_notification,
    rpc_request,
    rpc_response,
)


def test_lines_split_across_arbitrary_chunks() -> None:
    stream = b'{"id":1,"result":true}\r\n\n{"id":null,"method":"mining.notify","params":[]}\n{"id":2'
    for cut in range(1, len(stream)):
        buf = LineBuffer()
        lines = buf.feed(stream[:cut]) + buf.feed(stream[cut:])
        assert lines == [b'{"id":1,"result":true}', b'{"id":null,"method":"mining.notify","params":[]}']
        assert buf.flush() == b'{"id":2'
        assert buf.total_bytes == len(stream)


def test_endless_line_hits_max_line_bytes_and_names_it() -> None:
    buf = LineBuffer(max_line_bytes=1024, max_total_bytes=1 << 20)
    buf.feed(b"x" * 1000)
    with pytest.raises(LimitExceededError) as info:
        buf.feed(b"x" * 100)
    assert info.value.limit == "max_line_bytes"
    assert info.value.value == 1024
    assert "max_line_bytes=1024" in str(info.value)


def test_terminated_long_line_is_refused_too() -> None:
    buf = LineBuffer(max_line_bytes=10)
    with pytest.raises(LimitExceededError, match="max_line_bytes"):
        buf.feed(b"0123456789abc\n")


def test_lines_before_the_limit_are_kept_and_the_error_comes_next() -> None:
    buf = LineBuffer(max_line_bytes=16, max_total_bytes=1000)
    lines = buf.feed(b'{"id":1}\n' + b"y" * 50)
    assert lines == [b'{"id":1}']
    with pytest.raises(LimitExceededError, match="max_line_bytes"):
        buf.feed(b"\n")
    with pytest.raises(LimitExceededError):
        buf.flush()


def test_flood_hits_max_total_bytes() -> None:
    buf = LineBuffer(max_line_bytes=100, max_total_bytes=1000)
    got: list[bytes] = []
    with pytest.raises(LimitExceededError) as info:
        for _ in range(200):
            got += buf.feed(b'{"id":null}\n')
    assert info.value.limit == "max_total_bytes"
    assert 80 <= len(got) <= 91  # everything that fitted in 1000 bytes was delivered


def test_decode_json_limits_and_errors() -> None:
    assert decode_json(b'{"a":[1,{"b":"[[[[["}]}') == {"a": [1, {"b": "[[[[["}]}
    with pytest.raises(LimitExceededError) as info:
        decode_json(b"[" * 40 + b"]" * 40, max_depth=32)
    assert info.value.limit == "max_json_depth"
    with pytest.raises(LimitExceededError, match="max_json_bytes"):
        decode_json(json.dumps({"blob": "ab" * 50_000}).encode(), max_bytes=64 * 1024)
    with pytest.raises(RemoteProtocolError, match="invalid UTF-8 in JSON at byte 10"):
        decode_json(b'{"login":"\xff\xfe"}')
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        decode_json(b"HTTP/1.1 400 Bad Request")
    with pytest.raises(RemoteProtocolError):
        decode_json(b'{"difficulty": NaN}')


def test_very_deep_nesting_does_not_recurse() -> None:
    with pytest.raises(LimitExceededError, match="max_json_depth"):
        decode_json(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, max_bytes=1 << 20)


def test_decode_json_object_is_lenient_about_content_only() -> None:
    assert decode_json_object(b'{"id":1}') == {"id": 1}
    assert decode_json_object(b"[1,2]") is None
    assert decode_json_object(b"garbage") is None
    assert decode_json_object(b'{"x":"\xc3"}') is None
    with pytest.raises(LimitExceededError):
        decode_json_object(b"{" * 64, max_depth=8)


def test_json_rpc_encoding_styles_and_sizes() -> None:
    req = rpc_request(1, "mining.subscribe", ["cgminer/4.12.1"])
    assert encode_json_line(req) == b'{"id":1,"method":"mining.subscribe","params":["cgminer/4.12.1"]}\n'
    spaced = encode_json_line(req, spaced=True)
    assert spaced == b'{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.12.1"]}\n'
    assert list(rpc_request(2, "login", {}, jsonrpc=True)) == ["id", "jsonrpc", "method", "params"]
    assert rpc_response(3, True) == {"id": 3, "result": True, "error": None}
    assert rpc_notification("mining.set_difficulty", [8]) == {
        "id": None,
        "method": "mining.set_difficulty",
        "params": [8],
    }
    line = encode_json_line(rpc_request(1, "login", {"agent": "é"}))
    assert decode_json(line.rstrip(b"\n")) == {"id": 1, "method": "login", "params": {"agent": "é"}}


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 65535, 65536, 70000])
def test_ws_frames_round_trip_masked_and_unmasked(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    masked = encode_ws_frame(payload, mask=b"\x01\x02\x03\x04")
    plain = encode_ws_frame(payload, opcode=OP_BINARY)
    assert masked != plain
    for data, opcode in ((masked, OP_TEXT), (plain, OP_BINARY)):
        frames, used = decode_ws_frames(data + data)
        assert used == 2 * len(data)
        assert [f.payload for f in frames] == [payload, payload]
        assert all(f.complete and f.fin and f.opcode == opcode for f in frames)


def test_ws_truncated_frame_returns_partial_payload() -> None:
    data = encode_ws_frame(b'{"type":"auth","params":{}}', mask=b"abcd")
    frames, used = decode_ws_frames(data[:-5])
    assert used == 0
    assert len(frames) == 1 and not frames[0].complete
    assert frames[0].payload == b'{"type":"auth","params":'[: len(frames[0].payload)]


def test_ws_rejects_non_frames_and_huge_frames() -> None:
    with pytest.raises(RemoteProtocolError, match="byte 0"):
        decode_ws_frames(b'{"id":1}')
    huge = bytes([0x81, 127]) + (1 << 40).to_bytes(8, "big")
    with pytest.raises(LimitExceededError, match="max_payload_bytes"):
        decode_ws_frames(huge)


def test_line_buffer_and_json_under_random_input() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.binary(max_size=80), max_size=20))
    def check(chunks: list[bytes]) -> None:
        buf = LineBuffer(max_line_bytes=64, max_total_bytes=600)
        for chunk in chunks:
            try:
                lines = buf.feed(chunk)
            except LimitExceededError as exc:
                assert exc.limit in ("max_line_bytes", "max_total_bytes")
                return
            for line in lines:
                assert b"\n" not in line and 0 < len(line) <= 64
                try:
                    decode_json(line, max_depth=8)
                except (RemoteProtocolError, LimitExceededError):
                    pass

    check()


def test_one_chunk_over_the_total_still_delivers_what_fitted() -> None:
    buf = LineBuffer(max_line_bytes=100, max_total_bytes=50)
    lines = buf.feed(b'{"id":1}\n{"id":2}\n' + b"z" * 100)
    assert lines == [b'{"id":1}', b'{"id":2}']
    with pytest.raises(LimitExceededError, match="max_total_bytes"):
        buf.feed(b"")
