"""The transport against real loopback servers: normal exchanges, and every hostile trick.

Each hostile case asserts the two promises of the transport: it returns within its
deadline (plus scheduling slack), and it never holds more than its byte budget.
"""

from __future__ import annotations

import json
import time

import pytest

from minerscope.emulate import benign, hostile
from minerscope.probe import transport as io
from minerscope.probe.tlsinfo import parse_certificate
from tests.conftest import MS
from tests.probe.conftest import ATTEMPT_DEADLINE, StartServer, fast_limits

SLACK = 600 * MS
"""Scheduling slack on top of a deadline on a loaded 2-core machine."""


def _stop_after_line(data: bytes) -> io.Next:
    return io.STOP if b"\n" in data else io.AWAIT


async def test_tcp_alive_and_refused(start_server: StartServer, closed_port: int) -> None:
    echo = await start_server(benign.start_tcp_echo())
    alive = await io.tcp_alive(echo.host, echo.port, connect_timeout=1.0)
    assert alive.alive and alive.end is io.End.DONE
    dead = await io.tcp_alive("127.0.0.1", closed_port, connect_timeout=1.0)
    assert not dead.alive and dead.end is io.End.REFUSED
    assert dead.elapsed_s < 0.5


async def test_line_exchange_over_tcp(start_server: StartServer) -> None:
    server = await start_server(benign.start_jsonrpc_line(benign.answer_everything))
    request = json.dumps({"id": 7, "method": "mining.subscribe", "params": []}).encode() + b"\n"
    result = await io.stream_exchange(
        server.host, server.port, request, _stop_after_line, limits=fast_limits()
    )
    assert result.connected and result.tls is None
    assert result.end is io.End.DONE
    assert result.sent == request
    assert json.loads(result.received)["id"] == 7
    assert result.first_byte_s is not None and result.first_byte_s < ATTEMPT_DEADLINE


async def test_on_data_can_send_follow_up_requests(start_server: StartServer) -> None:
    server = await start_server(benign.start_tcp_echo())
    replies: list[bytes] = []

    def on_data(chunk: bytes) -> io.Next:
        if not chunk:
            return io.AWAIT
        replies.append(chunk)
        if len(b"".join(replies).splitlines()) == 1:
            return io.Next(send=b"second\n", awaiting=True)
        return io.STOP if b"second" in b"".join(replies) else io.AWAIT

    result = await io.stream_exchange(server.host, server.port, b"first\n", on_data, limits=fast_limits())
    assert result.end is io.End.DONE
    assert result.sent == b"first\nsecond\n"
    assert result.received == b"first\nsecond\n"


async def test_tls_exchange_captures_the_certificate(start_server: StartServer) -> None:
    server = await start_server(benign.start_tcp_echo(tls=True))
    result = await io.stream_exchange(
        server.host,
        server.port,
        b"hello\n",
        _stop_after_line,
        tls=True,
        server_name="localhost",
        limits=fast_limits(),
    )
    assert result.end is io.End.DONE and result.received == b"hello\n"
    assert result.tls is not None and result.tls.version.startswith("TLS")
    assert result.tls.cert_der
    cert = parse_certificate(result.tls.cert_der)
    assert cert.subject == "CN=localhost" and cert.self_signed
    assert "127.0.0.1" in cert.san


async def test_tls_handshake_against_plain_tcp_fails_cleanly(start_server: StartServer) -> None:
    server = await start_server(benign.start_jsonrpc_line())
    result = await io.tls_handshake(server.host, server.port, limits=fast_limits())
    assert not result.connected
    assert result.end in (io.End.TLS_ERROR, io.End.RESET, io.End.EOF)
    assert result.tls is None


async def test_quiet_peer_ends_a_non_awaiting_read(start_server: StartServer) -> None:
    server = await start_server(benign.start_smtp_like())
    start = time.monotonic()
    result = await io.stream_exchange(
        server.host, server.port, b"", lambda _d: io.CONTINUE, limits=fast_limits(), quiet_s=100 * MS
    )
    assert result.end is io.End.QUIET
    assert result.received.startswith(b"220 ")
    assert time.monotonic() - start < ATTEMPT_DEADLINE


async def test_silent_peer_costs_at_most_the_deadline(start_server: StartServer) -> None:
    server = await start_server(benign.start_silent())
    limits = fast_limits(deadline=300 * MS)
    result = await io.stream_exchange(server.host, server.port, b"ping\n", _stop_after_line, limits=limits)
    assert result.end is io.End.TIMEOUT
    assert 250 * MS <= result.elapsed_s < 300 * MS + SLACK


# --- hostile servers -------------------------------------------------------------------

STREAM_TRICKS = {
    "endless_line": {io.End.LIMIT},
    "slow_drip": {io.End.TIMEOUT},
    "huge_json": {io.End.LIMIT},
    "flood_lines": {io.End.LIMIT},
    "deep_json": {io.End.TIMEOUT},  # a complete but absurd reply; we never got a "done"
    "invalid_utf8": {io.End.TIMEOUT},
    "accept_silent": {io.End.TIMEOUT},
    "immediate_reset": {io.End.RESET, io.End.EOF},
    "reset_mid_reply": {io.End.RESET, io.End.EOF},
    "http_endless": {io.End.LIMIT},
    "http_endless_headers": {io.End.LIMIT},
}


@pytest.mark.parametrize("trick", sorted(STREAM_TRICKS))
async def test_hostile_stream_is_bounded_in_time_and_bytes(start_server: StartServer, trick: str) -> None:
    server = await start_server(hostile.start_hostile(trick, interval=50 * MS))
    limits = fast_limits(max_bytes=32 * 1024)
    start = time.monotonic()
    result = await io.stream_exchange(
        server.host,
        server.port,
        b'{"id":1,"method":"mining.subscribe","params":[]}\n',
        lambda _d: io.AWAIT,
        limits=limits,
    )
    elapsed = time.monotonic() - start
    assert elapsed < limits.deadline + SLACK, f"{trick}: took {elapsed:.2f}s"
    assert len(result.received) <= limits.max_bytes
    assert result.end in STREAM_TRICKS[trick], (trick, result.end, result.error)


@pytest.mark.parametrize(
    "trick", ["tls_garbage", "tls_stall", "tls_close_notify", "immediate_reset", "accept_silent"]
)
async def test_hostile_tls_is_bounded(start_server: StartServer, trick: str) -> None:
    server = await start_server(hostile.start_hostile(trick, interval=50 * MS))
    limits = fast_limits()
    start = time.monotonic()
    result = await io.stream_exchange(
        server.host, server.port, b"hello\n", lambda _d: io.AWAIT, tls=True, limits=limits
    )
    elapsed = time.monotonic() - start
    assert elapsed < limits.deadline + SLACK, f"{trick}: took {elapsed:.2f}s"
    if trick == "tls_close_notify":
        # the handshake is real; then half a reply and close_notify on an open socket
        assert result.connected and result.tls is not None
        assert result.received.startswith(b'{"id":1')
        assert result.end in (io.End.EOF, io.End.TLS_ERROR)
    else:
        assert not result.connected
        assert result.end in (io.End.TLS_ERROR, io.End.CONNECT_TIMEOUT, io.End.RESET, io.End.EOF)


async def test_ws_echo_roundtrip(start_server: StartServer) -> None:
    server = await start_server(benign.start_ws_echo())
    result = await io.ws_exchange(
        server.host, server.port, ['{"type":"auth"}'], lambda _m: io.STOP, limits=fast_limits()
    )
    assert result.upgraded and result.end is io.End.DONE
    assert result.received == ('{"type":"auth"}',)


async def test_wss_roundtrip_with_certificate(start_server: StartServer) -> None:
    server = await start_server(benign.start_ws_echo(tls=True))
    result = await io.ws_exchange(
        server.host,
        server.port,
        ["x"],
        lambda _m: io.STOP,
        tls=True,
        server_name="localhost",
        limits=fast_limits(),
    )
    assert result.upgraded and result.received == ("x",)
    assert result.tls is not None and result.tls.cert_der


async def test_ws_against_plain_http_reports_no_upgrade(start_server: StartServer) -> None:
    server = await start_server(benign.start_http())
    result = await io.ws_exchange(server.host, server.port, ["x"], lambda _m: io.STOP, limits=fast_limits())
    assert not result.upgraded
    assert result.end is io.End.PROTOCOL_ERROR
    assert result.status == 200  # a web page, not a WebSocket upgrade


@pytest.mark.parametrize(
    "trick", ["ws_huge_frame", "ws_flood", "accept_silent", "immediate_reset", "endless_line"]
)
async def test_hostile_ws_is_bounded(start_server: StartServer, trick: str) -> None:
    server = await start_server(hostile.start_hostile(trick, interval=50 * MS))
    limits = fast_limits(max_bytes=16 * 1024)
    start = time.monotonic()
    result = await io.ws_exchange(server.host, server.port, ["hi"], lambda _m: io.AWAIT, limits=limits)
    elapsed = time.monotonic() - start
    assert elapsed < limits.deadline + SLACK, f"{trick}: took {elapsed:.2f}s"
    assert result.received_bytes <= limits.max_bytes
    if trick == "ws_huge_frame":
        assert result.upgraded and result.end is io.End.LIMIT and not result.received
    elif trick == "ws_flood":
        assert result.end is io.End.LIMIT
    else:
        assert not result.upgraded


async def test_http_request_reads_status_headers_and_body(start_server: StartServer) -> None:
    server = await start_server(benign.start_http())
    result = await io.http_request(server.host, server.port, method="GET", limits=fast_limits())
    assert result.status == 200 and result.end is io.End.DONE
    assert result.header("server") == "nginx/1.24.0"
    assert b"It works" in result.body


async def test_https_request_with_sni_and_basic_auth(start_server: StartServer) -> None:
    server = await start_server(benign.start_jsonrpc_http(benign.answer_everything, tls=True))
    result = await io.http_request(
        server.host,
        server.port,
        body=b'{"id":1,"method":"getblocktemplate","params":[]}',
        auth=("user", "pass"),
        tls=True,
        server_name="localhost",
        limits=fast_limits(),
    )
    assert result.status == 200
    assert json.loads(result.body)["result"] is True
    assert result.tls is not None and result.tls.cert_der
    assert server.stats.requests == ["POST /"]


async def test_http_refused(closed_port: int) -> None:
    result = await io.http_request("127.0.0.1", closed_port, limits=fast_limits())
    assert not result.connected and result.status is None
    # httpx (anyio) folds the errno into "All connection attempts failed" on some builds
    assert result.end in (io.End.REFUSED, io.End.ERROR)


@pytest.mark.parametrize(
    ("trick", "ends"),
    [
        ("http_endless", {io.End.LIMIT}),
        ("http_endless_headers", {io.End.PROTOCOL_ERROR, io.End.EOF, io.End.ERROR}),
        ("slow_drip", {io.End.TIMEOUT, io.End.EOF, io.End.PROTOCOL_ERROR}),
        ("accept_silent", {io.End.TIMEOUT}),
        ("immediate_reset", {io.End.RESET, io.End.EOF}),
        ("huge_json", {io.End.EOF, io.End.PROTOCOL_ERROR, io.End.ERROR}),
    ],
)
async def test_hostile_http_is_bounded(start_server: StartServer, trick: str, ends: set[io.End]) -> None:
    server = await start_server(hostile.start_hostile(trick, interval=50 * MS))
    limits = fast_limits(max_bytes=16 * 1024)
    start = time.monotonic()
    result = await io.http_request(server.host, server.port, body=b"{}", limits=limits)
    elapsed = time.monotonic() - start
    assert elapsed < limits.deadline + SLACK, f"{trick}: took {elapsed:.2f}s"
    assert len(result.body) <= limits.max_bytes
    assert result.end in ends, (trick, result.end, result.error)


async def test_resolve_literal_and_localhost() -> None:
    assert await io.resolve("127.0.0.5", 80, within=1.0) == ("127.0.0.5",)
    assert await io.resolve("[::1]", 80, within=1.0) == ("::1",)
    names = await io.resolve("localhost", 80, within=2.0)
    assert names and all(a in ("127.0.0.1", "::1") for a in names)
