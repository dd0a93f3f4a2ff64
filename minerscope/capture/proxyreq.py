"""Pure parsers of explicit-proxy requests: SOCKS 4, 4a and 5, HTTP CONNECT and absolute URLs.

A miner told to use a proxy (XMRig's per-pool ``socks5`` setting, Tor's SOCKS port, a
corporate HTTP proxy, ``ssh -D``) connects to the proxy, not to its pool: the flow's
server is the proxy, and the pool appears only in the request that opens the tunnel.
That request is cleartext even when the tunnel then carries TLS, so it names the pool
(an address, or a name the proxy resolves) where stage 0 can match it and stage 2 can
probe it. After the request (and the proxy's reply) the bytes are the tunnelled
protocol's: TLS metadata and plaintext Stratum are read from there. Plain HTTP through a
forward proxy has no tunnel: its request names the server in an absolute URL.

Sans-IO like :mod:`minerscope.capture.handshake`: bytes in, a frozen record or None
out. A flow's first bytes are anybody's, so a request is accepted only when every field
has its protocol's shape (SOCKS version, command CONNECT, address type, a printable host
name, a non-zero port), and, when the server's first bytes are in the capture, only
when they are that proxy's reply. A binary protocol that happens to start with 0x05 is
not a SOCKS request because of one byte.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from minerscope.capture import handshake
from minerscope.untrusted import is_decimal

MAX_CHAINED_PROXIES = 8
"""Security limit: proxy requests followed in one flow (a chain of proxies, or a hostile stream of them)."""
MAX_SOCKS_FIELD = 255
"""SOCKS length-prefixed and NUL-terminated fields (user, host name) are at most this long."""

_HOST_NAME = re.compile(rb"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}[A-Za-z0-9_])?\.?\Z")
_PRINTABLE = re.compile(rb"[\x20-\x7e]*\Z")
_HTTP_METHODS = tuple(m + b" " for m in handshake.HTTP_METHODS)
_SOCKS4_GRANTED = range(0x5A, 0x5E)  # granted, rejected, no identd, identd mismatch
_SOCKS5_AUTH_NONE, _SOCKS5_AUTH_PASSWORD, _SOCKS5_NO_METHOD = 0x00, 0x02, 0xFF


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """A client's request to an explicit proxy for a tunnel to ``host:port``.

    Attributes:
        kind: ``http-connect``, ``socks4``, ``socks4a``, ``socks5``, or ``http-forward`` (a
            plain HTTP request for an absolute URL: no tunnel, the request is relayed).
        host: the target: an IP address in its canonical text, or a host name (lower case)
            that the proxy resolves.
        port: the target port.
        client_skip: client bytes up to the tunnel's first byte (the whole data when the
            request is not complete in it; 0 for ``http-forward``).
    """

    kind: str
    host: str
    port: int
    client_skip: int


def parse_proxy_request(c2s: bytes, s2c: bytes = b"") -> ProxyRequest | None:
    """The proxy request at the start of a TCP client's bytes, or None.

    Args:
        c2s: the client's first bytes (in sequence order).
        s2c: the server's first bytes, when captured; if present they must start as the
            proxy's reply to this kind of request, else the client bytes are not taken
            for a request.
    """
    first = c2s[:1]
    if c2s.startswith(b"CONNECT "):
        request = _http_connect(c2s)
    elif c2s.startswith(_HTTP_METHODS) and c2s[c2s.find(b" ") + 1 :][:7].lower() == b"http://":
        request = _http_forward(c2s)
    elif first == b"\x04":
        request = _socks4(c2s)
    elif first == b"\x05":
        request = _socks5(c2s)
    else:
        return None
    if request is None or (s2c and reply_length(request, s2c) is None):
        return None
    return request


def reply_length(request: ProxyRequest, s2c: bytes) -> int | None:
    """Bytes of the proxy's reply(ies) at the start of ``s2c`` (all of ``s2c`` when they do
    not end in it); None when ``s2c`` does not start as that reply. A refusal counts: the
    request still says where the client wanted to go."""
    if request.kind in ("http-connect", "http-forward"):
        if not s2c.startswith(b"HTTP/1."):
            return None
        if request.kind == "http-forward":
            return 0  # the proxy relays the server's own reply: nothing of its own to skip
        end = s2c.find(b"\r\n\r\n")
        return len(s2c) if end < 0 else end + 4
    if request.kind in ("socks4", "socks4a"):
        if s2c.startswith(b"\x05\xff"):  # a SOCKS 5-only proxy refusing the version (microsocks)
            return 2
        if len(s2c) >= 2 and (s2c[0] != 0 or s2c[1] not in _SOCKS4_GRANTED):
            return None
        return min(8, len(s2c))
    return _socks5_reply_length(s2c)


def tunnelled(c2s: bytes, s2c: bytes) -> tuple[ProxyRequest, bytes, bytes] | None:
    """The proxy request naming the flow's real server and each direction's bytes inside
    its tunnel, or None when the flow opens with no proxy request.

    Through a chain of proxies (proxychains asks the first proxy for a tunnel to the
    second, and so on) the requests follow one another in the same stream and the last
    one names the server; at most :data:`MAX_CHAINED_PROXIES` are followed.
    """
    found: ProxyRequest | None = None
    for _ in range(MAX_CHAINED_PROXIES):
        request = parse_proxy_request(c2s, s2c)
        if request is None:
            break
        found = request
        if request.kind == "http-forward":
            break  # the request is itself the application's: no tunnel, nothing further
        c2s, s2c = c2s[request.client_skip :], s2c[(reply_length(request, s2c) or 0) if s2c else 0 :]
    return None if found is None else (found, c2s, s2c)


def socks5_connect(host: str, port: int) -> tuple[bytes, bytes]:
    """What a SOCKS 5 client without authentication sends, in two writes: the greeting
    (one method, "no authentication"), then CONNECT to an address or a name (the proxy
    resolves names, as XMRig's ``socks5`` pools and ``curl --socks5-hostname`` do)."""
    try:
        packed = ipaddress.ip_address(host.strip("[]")).packed
        address = (b"\x01" if len(packed) == 4 else b"\x04") + packed
    except ValueError:
        try:
            name = host.encode("idna")
        except UnicodeError as exc:
            raise ValueError(f"SOCKS 5 host name {host[:60]!r}: {exc}") from None
        if not 0 < len(name) <= MAX_SOCKS_FIELD:
            raise ValueError(f"SOCKS 5 host name of {len(name)} bytes: 1 to {MAX_SOCKS_FIELD}") from None
        address = b"\x03" + bytes([len(name)]) + name
    return b"\x05\x01\x00", b"\x05\x01\x00" + address + port.to_bytes(2, "big")


def http_connect(host: str, port: int) -> bytes:
    """What an HTTP proxy client sends to open a tunnel (RFC 9110 CONNECT): the target as
    ``host:port`` (an IPv6 address in brackets), in the request line and ``Host``."""
    try:
        authority = (
            f"[{host.strip('[]')}]:{port}"
            if ipaddress.ip_address(host.strip("[]")).version == 6
            else f"{host}:{port}"
        )
    except ValueError:
        authority = f"{host}:{port}"
    if not 0 < port < 65536 or any(c in authority for c in " \r\n"):
        raise ValueError(f"CONNECT target {authority[:80]!r}: a host and a port 1-65535")
    return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode("ascii", "strict")


SOCKS5_REPLY_ERRORS = {
    1: "general failure",
    2: "not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}
"""RFC 1928 reply codes, for a client's error message."""


def _port(value: int) -> int | None:
    return value if 0 < value < 65536 else None


def _name(raw: bytes) -> str | None:
    """A host name a client asked a proxy for: letters, digits, ``-_.``, at most 255."""
    if not raw or len(raw) > MAX_SOCKS_FIELD or _HOST_NAME.match(raw) is None:
        return None
    return raw.decode("ascii").lower().rstrip(".") or None


def _host(text: str) -> str | None:
    """An address (canonical text; brackets of IPv6 dropped) or a host name."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return _name(bare.encode("ascii", "replace"))


def _authority(text: str, default_port: int | None) -> tuple[str, int] | None:
    """``host:port`` / ``[v6]:port`` of an HTTP request target (``default_port`` when it
    has none; None: a port is required), or None when it is no such thing."""
    if text.startswith("["):
        host_text, _, rest = text.partition("]")
        host_text, port_text = host_text + "]", rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host_text, _, port_text = text.partition(":")
    else:  # no port (an unbracketed IPv6 literal is no authority either)
        host_text, port_text = text, ""
    if not port_text and default_port is not None:
        port_text = str(default_port)
    if not is_decimal(port_text, 5):
        return None
    host, port = _host(host_text), _port(int(port_text))
    return None if host is None or port is None else (host, port)


def _http_connect(c2s: bytes) -> ProxyRequest | None:
    try:
        target = _authority(handshake.parse_http_request(c2s).path, None)
    except handshake.HandshakeParseError:
        return None
    if target is None:
        return None
    end = c2s.find(b"\r\n\r\n", 0, handshake.MAX_HTTP_HEAD_BYTES)
    return ProxyRequest("http-connect", *target, len(c2s) if end < 0 else end + 4)


def _http_forward(c2s: bytes) -> ProxyRequest | None:
    """An HTTP request for an absolute URL (``POST http://10.1.2.3:8332/ HTTP/1.1``): RFC 9112
    has clients send that form to a forward proxy only (cpuminer's ``--proxy`` for a
    getblocktemplate URL). The request itself is the application's, so nothing is skipped."""
    try:
        path = handshake.parse_http_request(c2s).path
    except handshake.HandshakeParseError:
        return None
    if path[:7].lower() != "http://":
        return None
    target = _authority(path[7:].split("/", 1)[0].split("?", 1)[0].rpartition("@")[2], 80)
    return None if target is None else ProxyRequest("http-forward", *target, 0)


def _nul_terminated(data: bytes, at: int) -> int | None:
    """Index of the NUL ending a printable field that starts at ``at``, or None."""
    end = data.find(b"\0", at, at + MAX_SOCKS_FIELD + 1)
    if end < 0 or _PRINTABLE.match(data, at, end) is None:
        return None
    return end


def _socks4(c2s: bytes) -> ProxyRequest | None:
    """``04 01 port ip user\\0`` (SOCKS 4); ip ``0.0.0.x`` then ``name\\0`` (SOCKS 4a)."""
    if len(c2s) < 9 or c2s[1] != 0x01:  # CONNECT only: BIND is for the server's own connections
        return None
    port = _port(int.from_bytes(c2s[2:4], "big"))
    user_end = _nul_terminated(c2s, 8)
    if port is None or user_end is None:
        return None
    if c2s[4:7] == b"\0\0\0" and c2s[7] != 0:
        name_end = c2s.find(b"\0", user_end + 1, user_end + 2 + MAX_SOCKS_FIELD)
        host = _name(c2s[user_end + 1 : name_end]) if name_end > 0 else None
        return None if host is None else ProxyRequest("socks4a", host, port, name_end + 1)
    address = str(ipaddress.IPv4Address(c2s[4:8]))
    if address == "0.0.0.0":
        return None
    return ProxyRequest("socks4", address, port, user_end + 1)


def _socks5(c2s: bytes) -> ProxyRequest | None:
    """Greeting ``05 n methods``, user/password sub-negotiation when offered, then the
    request ``05 01 00 atyp address port``."""
    if len(c2s) < 3 or not 1 <= c2s[1] <= MAX_SOCKS_FIELD:
        return None
    methods = c2s[2 : 2 + c2s[1]]
    at = 2 + c2s[1]
    if len(methods) < c2s[1] or len(set(methods)) != len(methods):
        return None
    if c2s[at : at + 1] == b"\x01" and _SOCKS5_AUTH_PASSWORD in methods:  # RFC 1929
        user_len = c2s[at + 1] if len(c2s) > at + 1 else 0
        password_at = at + 2 + user_len
        if user_len == 0 or len(c2s) <= password_at:
            return None
        at = password_at + 1 + c2s[password_at]
    request = c2s[at : at + 4]
    if len(request) < 4 or request[:3] != b"\x05\x01\x00":
        return None
    atyp, at = request[3], at + 4
    if atyp == 0x01:
        host, at = str(ipaddress.IPv4Address(c2s[at : at + 4])) if len(c2s) >= at + 4 else None, at + 4
    elif atyp == 0x04:
        host, at = str(ipaddress.IPv6Address(c2s[at : at + 16])) if len(c2s) >= at + 16 else None, at + 16
    elif atyp == 0x03 and len(c2s) > at:
        size = c2s[at]
        host, at = _name(c2s[at + 1 : at + 1 + size]) if len(c2s) >= at + 1 + size else None, at + 1 + size
    else:
        return None
    port = _port(int.from_bytes(c2s[at : at + 2], "big")) if len(c2s) >= at + 2 else None
    if host is None or port is None:
        return None
    return ProxyRequest("socks5", host, port, at + 2)


def _socks5_reply_length(s2c: bytes) -> int | None:
    """Method choice ``05 m``, ``01 status`` after a password, reply ``05 rep 00 atyp addr port``."""
    if s2c[:1] != b"\x05":
        return None
    if len(s2c) < 2:
        return len(s2c)
    method, at = s2c[1], 2
    if method == _SOCKS5_NO_METHOD:
        return 2  # no acceptable method: the proxy closes, nothing was tunnelled
    if method not in (_SOCKS5_AUTH_NONE, _SOCKS5_AUTH_PASSWORD):
        return None
    if method == _SOCKS5_AUTH_PASSWORD:
        if s2c[at : at + 1] not in (b"", b"\x01"):
            return None
        at += 2
    reply = s2c[at : at + 4]
    if not reply:
        return min(at, len(s2c))
    if reply[:1] != b"\x05" or reply[2:3] not in (b"", b"\x00"):
        return None
    if len(reply) < 4:
        return len(s2c)
    address_len = {0x01: 4, 0x04: 16}.get(reply[3])
    if address_len is None:
        if reply[3] != 0x03:
            return None
        address_len = 1 + (s2c[at + 4] if len(s2c) > at + 4 else 0)
    return min(at + 4 + address_len + 2, len(s2c))
