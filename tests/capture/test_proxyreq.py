"""Explicit-proxy requests: what each proxy protocol's opening says, and what it does not."""

from __future__ import annotations

import os
import random
import struct

import pytest

from minerscope.capture.proxyreq import (
    ProxyRequest,
    http_connect,
    parse_proxy_request,
    reply_length,
    socks5_connect,
    tunnelled,
)

TLS_HELLO = b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c" + bytes(44)
PORT_3333 = struct.pack(">H", 3333)


def _socks5(host: str, port: int) -> bytes:
    greeting, request = socks5_connect(host, port)
    return greeting + request


@pytest.mark.parametrize(
    ("c2s", "expected"),
    [
        (_socks5("203.0.113.5", 3333), ProxyRequest("socks5", "203.0.113.5", 3333, 13)),
        (_socks5("2001:db8::5", 443), ProxyRequest("socks5", "2001:db8::5", 443, 25)),
        (_socks5("Pool.Example", 3333), ProxyRequest("socks5", "pool.example", 3333, 22)),
        # offered "no auth" and "password", then the RFC 1929 sub-negotiation
        (
            b"\x05\x02\x00\x02\x01\x03bob\x06secret\x05\x01\x00\x01\xcb\x00\x71\x05" + PORT_3333,
            ProxyRequest("socks5", "203.0.113.5", 3333, 26),
        ),
        (
            b"\x04\x01" + PORT_3333 + bytes([203, 0, 113, 5]) + b"\x00",
            ProxyRequest("socks4", "203.0.113.5", 3333, 9),
        ),
        (
            b"\x04\x01" + PORT_3333 + b"\x00\x00\x00\x07bob\x00xmr.pool.example\x00",
            ProxyRequest("socks4a", "xmr.pool.example", 3333, 29),
        ),
        (b"CONNECT pool.example:443 HTTP/1.1\r\n\r\n", ProxyRequest("http-connect", "pool.example", 443, 37)),
        # an absolute URL goes to a forward proxy only: no tunnel, the request is the application's
        (b"POST http://10.1.2.3:8332/ HTTP/1.1\r\n\r\n{}", ProxyRequest("http-forward", "10.1.2.3", 8332, 0)),
        (
            b"GET http://u:p@Pool.Example/x?y HTTP/1.1\r\n\r\n",
            ProxyRequest("http-forward", "pool.example", 80, 0),
        ),
        (b"GET HTTP://[2001:db8::5]/ HTTP/1.0\r\n\r\n", ProxyRequest("http-forward", "2001:db8::5", 80, 0)),
        (
            b"CONNECT [2001:db8::5]:5555 HTTP/1.0\r\nHost: x\r\n\r\n",
            ProxyRequest("http-connect", "2001:db8::5", 5555, 48),
        ),
    ],
)
def test_each_proxy_protocol_names_the_tunnels_target(c2s: bytes, expected: ProxyRequest) -> None:
    assert parse_proxy_request(c2s) == expected
    assert parse_proxy_request(c2s + TLS_HELLO) == expected
    found = tunnelled(c2s + TLS_HELLO, b"")
    assert found is not None and found[1] == (c2s + TLS_HELLO)[expected.client_skip :]


def test_a_head_still_open_in_the_captured_bytes_names_the_target_before_the_tunnel() -> None:
    head = b"CONNECT 10.1.2.3:3333 HTTP/1.1\r\nProxy-Authorization: Basic Ym9i"
    assert parse_proxy_request(head) == ProxyRequest("http-connect", "10.1.2.3", 3333, len(head))
    assert tunnelled(head, b"HTTP/1.1 407 Proxy Auth") == (parse_proxy_request(head), b"", b"")


@pytest.mark.parametrize(
    ("c2s", "s2c", "inside"),
    [
        (_socks5("203.0.113.5", 3333), b"\x05\x00\x05\x00\x00\x01" + bytes(6), b'{"id":1}\n'),
        # the proxy's bound address as a name, after a password exchange
        (
            b"\x05\x01\x02\x01\x01a\x01b" + socks5_connect("pool.example", 3333)[1],
            b"\x05\x02\x01\x00\x05\x00\x00\x03\x05proxy\x0d\x05",
            b'{"id":1}\n',
        ),
        (b"\x04\x01" + PORT_3333 + bytes([203, 0, 113, 5]) + b"\x00", b"\x00\x5a" + bytes(6), b'{"id":1}\n'),
        (
            b"CONNECT pool.example:443 HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            b"\x16\x03",
        ),
    ],
)
def test_the_tunnel_starts_after_the_request_and_the_proxys_reply(
    c2s: bytes, s2c: bytes, inside: bytes
) -> None:
    found = tunnelled(c2s + b'{"id":1}\n', s2c + inside)
    assert found is not None
    request, client, server = found
    assert client == b'{"id":1}\n' and server == inside
    assert reply_length(request, s2c) == len(s2c)


def test_a_refusal_still_says_where_the_client_wanted_to_go() -> None:
    c2s = _socks5("pool.example", 3333)
    refused = b"\x05\x00\x05\x05\x00\x01" + bytes(6)  # "connection refused"
    assert parse_proxy_request(c2s, refused) == ProxyRequest("socks5", "pool.example", 3333, 22)
    assert parse_proxy_request(c2s, b"\x05\xff") is not None  # no acceptable method
    socks4 = b"\x04\x01" + PORT_3333 + bytes([203, 0, 113, 5]) + b"\x00"
    assert parse_proxy_request(socks4, b"\x00\x5b" + bytes(6)) is not None
    # bytes microsocks (SOCKS 5 only) answered curl --socks4a with
    curl = bytes.fromhex("0401494d00000001006c6f63616c686f737400")
    assert parse_proxy_request(curl, b"\x05\xff") == ProxyRequest("socks4a", "localhost", 18765, len(curl))
    assert (
        parse_proxy_request(b"CONNECT a.example:1 HTTP/1.1\r\n\r\n", b"HTTP/1.1 403 Forbidden\r\n\r\n")
        is not None
    )


@pytest.mark.parametrize(
    ("c2s", "s2c"),
    [
        (_socks5("pool.example", 3333), b"SSH-2.0-OpenSSH_9.2\r\n"),  # the server is no SOCKS proxy
        (_socks5("pool.example", 3333), b"\x05\x07"),  # a method nobody offered
        (b"\x04\x01" + PORT_3333 + bytes([203, 0, 113, 5]) + b"\x00", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"CONNECT pool.example:443 HTTP/1.1\r\n\r\n", b"\x05\x00"),
        (b"\x05\x01\x00\x05\x02\x00\x01" + bytes(6), b""),  # BIND, not CONNECT
        (b"\x05\x01\x00\x05\x01\x00\x01\x01\x02\x03\x04\x00\x00", b""),  # port 0
        (b"\x05\x01\x00\x05\x01\x00\x03\x05a b c" + PORT_3333, b""),  # not a host name
        (b"\x05\x02\x00\x00\x05\x01\x00\x01" + bytes(6), b""),  # a method offered twice
        (b"\x04\x02" + PORT_3333 + bytes([1, 2, 3, 4]) + b"\x00", b""),  # SOCKS 4 BIND
        (b"\x04\x01" + PORT_3333 + bytes([1, 2, 3, 4]) + b"\x01\x02\x00", b""),  # user id not text
        (b"\x04\x01" + PORT_3333 + bytes(4) + b"\x00", b""),  # 0.0.0.0
        (b"CONNECT /index.html HTTP/1.1\r\n\r\n", b""),
        (b"CONNECT pool.example:99999 HTTP/1.1\r\n\r\n", b""),
        ("CONNECT pool.example:44² HTTP/1.1\r\n\r\n".encode("latin-1"), b""),  # int() refuses "²"
        (b"GET / HTTP/1.1\r\nHost: pool.example\r\n\r\n", b""),
        (b"GET http://:80/ HTTP/1.1\r\n\r\n", b""),
        (b"GET http://pool.example:0/ HTTP/1.1\r\n\r\n", b""),
        (b"GET http://10.1.2.3:8332/ HTTP/1.1\r\n\r\n", b"\x05\x00"),  # the server is no HTTP proxy
        (b"\x05", b""),
        (b"", b""),
    ],
)
def test_bytes_that_only_look_like_a_proxy_request_are_not_one(c2s: bytes, s2c: bytes) -> None:
    assert parse_proxy_request(c2s, s2c) is None


def test_any_cut_or_corruption_of_a_request_parses_or_is_refused_never_raises() -> None:
    """A capture cuts a flow's first bytes anywhere and a hostile client sends anything."""
    rng = random.Random(8)
    openings = [
        _socks5("203.0.113.5", 3333),
        _socks5("pool.example", 3333),
        b"\x05\x02\x00\x02\x01\x03bob\x06secret" + socks5_connect("2001:db8::5", 443)[1],
        b"\x04\x01" + PORT_3333 + b"\x00\x00\x00\x07bob\x00xmr.pool.example\x00",
        b"CONNECT pool.example:443 HTTP/1.1\r\n\r\n",
    ]
    replies = [
        b"\x05\x00\x05\x00\x00\x03\x05proxy\x0d\x05",
        b"\x00\x5a" + bytes(6),
        b"HTTP/1.1 200 OK\r\n\r\n",
    ]
    for opening in openings:
        for cut in range(len(opening) + 1):
            for reply in replies:
                for s2c in (reply[: cut % (len(reply) + 1)], b""):
                    found = tunnelled(opening[:cut], s2c)
                    if found is not None:
                        assert 0 <= found[0].client_skip <= cut
        for _ in range(300):
            data = bytearray(opening)
            data[rng.randrange(len(data))] = rng.randrange(256)
            tunnelled(bytes(data), rng.choice(replies))
    for _ in range(2000):
        tunnelled(
            rng.choice((b"\x04", b"\x05", b"C")) + os.urandom(rng.randrange(40)),
            os.urandom(rng.randrange(12)),
        )


def test_the_socks5_client_refuses_names_the_protocol_cannot_carry() -> None:
    with pytest.raises(ValueError, match="1 to 255"):
        socks5_connect("a." * 128, 3333)
    with pytest.raises(ValueError, match="label"):
        socks5_connect("a" * 64 + ".example", 3333)


@pytest.mark.parametrize(
    ("host", "port", "line"),
    [
        ("203.0.113.9", 443, b"CONNECT 203.0.113.9:443 HTTP/1.1"),
        ("2001:db8::9", 3333, b"CONNECT [2001:db8::9]:3333 HTTP/1.1"),
        ("pool.example", 5555, b"CONNECT pool.example:5555 HTTP/1.1"),
    ],
)
def test_the_http_connect_client_writes_what_the_parser_reads(host: str, port: int, line: bytes) -> None:
    request = http_connect(host, port)
    assert request.split(b"\r\n")[0] == line and request.endswith(b"\r\n\r\n")
    parsed = parse_proxy_request(
        request, b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n"
    )
    assert parsed is not None and (parsed.kind, parsed.host, parsed.port) == ("http-connect", host, port)
    for bad in ((host, 0), (host, 70000), ("evil.example\r\nX-Injected: 1", 443)):
        with pytest.raises(ValueError, match="CONNECT target"):
            http_connect(*bad)


@pytest.mark.parametrize(
    ("client", "proxy", "expected"),
    [
        # curl 7.88 --socks5-hostname through microsocks 1.0.3 (a name for the proxy to resolve)
        (
            ["05020001", "05010003096c6f63616c686f7374494d"],
            ["0500", "05000001000000000000"],
            ("localhost", 18765),
        ),
        # curl --socks5 --proxy-user: three methods offered, the proxy chose none
        (["0503000102", "050100017f000001494d"], ["0500", "05000001000000000000"], ("127.0.0.1", 18765)),
    ],
)
def test_real_clients_bytes_through_a_real_proxy(
    client: list[str], proxy: list[str], expected: tuple[str, int]
) -> None:
    http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    found = tunnelled(
        bytes.fromhex("".join(client)) + http, bytes.fromhex("".join(proxy)) + b"HTTP/1.0 200 OK\r\n"
    )
    assert found is not None
    request, inside_c2s, inside_s2c = found
    assert (request.kind, request.host, request.port) == ("socks5", *expected)
    assert inside_c2s == http and inside_s2c == b"HTTP/1.0 200 OK\r\n"


def test_through_a_chain_of_proxies_the_last_request_names_the_server() -> None:
    """proxychains: a tunnel to the second proxy through the first, then the pool through it."""
    first = _socks5("10.0.0.8", 1080)
    second = b"CONNECT pool.example:443 HTTP/1.1\r\n\r\n"
    replies = b"\x05\x00\x05\x00\x00\x01" + bytes(6) + b"HTTP/1.1 200 OK\r\n\r\n"
    found = tunnelled(first + second + TLS_HELLO, replies + b"\x16\x03\x03")
    assert found == (
        ProxyRequest("http-connect", "pool.example", 443, len(second)),
        TLS_HELLO,
        b"\x16\x03\x03",
    )
    # a hostile stream of requests costs a bounded number of steps and keeps the last one followed
    flood = _socks5("10.0.0.8", 1080) * 1000
    found = tunnelled(flood, b"")
    assert found is not None and found[0].host == "10.0.0.8" and len(found[1]) == len(flood) - 8 * 13


def test_curl_through_a_forward_proxy_names_the_daemon_in_its_request() -> None:
    """curl 7.88 (libcurl, which cpuminer's --proxy uses) posting getblocktemplate through
    an HTTP proxy: the absolute URL names the daemon; the request stays the application's."""
    sent = (
        b"POST http://10.1.2.3:8332/ HTTP/1.1\r\nHost: 10.1.2.3:8332\r\nAuthorization: Basic dTpw\r\n"
        b"User-Agent: curl/7.88.1\r\nAccept: */*\r\nProxy-Connection: Keep-Alive\r\n"
        b"content-type: application/json\r\nContent-Length: 68\r\n\r\n"
        b'{"id":0,"method":"getblocktemplate","params":[{"rules":["segwit"]}]}'
    )
    reply = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    assert tunnelled(sent, reply) == (ProxyRequest("http-forward", "10.1.2.3", 8332, 0), sent, reply)
