"""Every input a fuzz campaign found to break a parser, pinned with the behaviour it must keep.

Each case is the crashing input as the campaign saved it (``bench/out/fuzz/<target>/crashes``),
replayed through its target (which checks all of that target's invariants), plus a direct
assertion on the parser function that was fixed, so the test names the bug it guards.
"""

from __future__ import annotations

import pytest

from fuzz.targets import TARGETS
from minerscope.errors import RemoteProtocolError
from minerscope.probe.dialects import DIALECTS
from minerscope.probe.dialects.bitcoin import parse_difficulty
from minerscope.probe.dialects.http_jsonrpc import parse_http_response
from minerscope.probe.framing import decode_json, decode_json_object
from minerscope.probe.verdict import Outcome

CRASHES: list[tuple[str, bytes]] = [
    # framing: decode_json turned 1e400 into float("inf"), which the strict-JSON export refuses
    ("framing", b"\x01\x01" + b'{"x":1e400}\n{"y":"\\ud800"}\n' + b"\xff\xfe\n"),
    # dialects (bitcoind): status code "1\xb99": str.isdigit() accepts "\u00b9", int() raised ValueError
    (
        "dialects",
        b"\x08\x00\x01;HTTP/1.1 1\xb99 OK\r\nContent-Typ\x00\x00\x00\x00\x00\x00\x02\x00cation/\x98\x8c\xf5"
        b'\xbc\x95\x00\x00\x00\x00tent-Length: 485\r\n\r\n{"10f4c8362\xd1\xd17593e70e52ba&]}\n',
    ),
]


@pytest.mark.parametrize(("target", "data"), CRASHES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(CRASHES)])
def test_crash_input_now_passes_its_target(target: str, data: bytes) -> None:
    TARGETS[target].run(data)


def test_json_number_beyond_float_range_is_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="out of the float range"):
        decode_json(b'{"difficulty":1e400}')
    assert decode_json_object(b'{"difficulty":-1E309}') is None
    assert decode_json(b'{"difficulty":1e308,"n":12345678901234567890}') == {
        "difficulty": 1e308,
        "n": 12345678901234567890,
    }


@pytest.mark.parametrize("status", [b"1\xb99", b"\xb200", b"2\xb30", b"9" * 5000])
def test_http_status_must_be_ascii_digits(status: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="malformed status line"):
        parse_http_response(b"HTTP/1.1 " + status + b" OK\r\n\r\n")


@pytest.mark.parametrize(
    ("length", "body"),
    [(b"2", b"ab"), (b"\xb9", b"abc"), (b"9" * 5000, b"abc"), (b"1" * 19, b"abc"), (b"-1", b"abc")],
)
def test_content_length_is_ascii_digits_and_may_exceed_the_body(length: bytes, body: bytes) -> None:
    reply = parse_http_response(b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nabc")
    assert reply.status == 200 and reply.body == body


_SUBSCRIBED = b'{"id":1,"result":[[["mining.notify","ae68"]],"08000002",4],"error":null}'


def test_difficulty_beyond_float_range_is_not_a_crash() -> None:
    """Found by review next to the fuzz findings: float(10**400) raised OverflowError out of
    every Stratum classifier when a hostile pool pushed ``mining.set_difficulty`` with it."""
    huge = b"1" + b"0" * 400
    push = b'{"id":null,"method":"mining.set_difficulty","params":[' + huge + b"]}"
    for name in ("stratum1", "stratum1-zcash", "ethstratum"):
        result = DIALECTS[name].classify([_SUBSCRIBED, push])
        assert result.outcome in tuple(Outcome)
    with pytest.raises(RemoteProtocolError):
        parse_difficulty([int(huge)])
    assert parse_difficulty([2**64]) == float(2**64)
    TARGETS["dialects"].run(
        bytes([list(DIALECTS).index("stratum1"), 0]) + b"\x00\x00" + _SUBSCRIBED + b"\x1e" + push
    )
