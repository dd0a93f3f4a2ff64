"""Servers that attack the prober: each one tries to hang it, flood it or crash it.

A prober that talks to strangers will meet servers run by the people it hunts. Each
server here implements one trick, and the prober's acceptance tests assert that a probe
of it returns within its deadline, with bounded memory, and without slowing the probes
of other targets. The tricks:

* ``endless_line`` - bytes forever, never a newline;
* ``slow_drip`` - a plausible pool reply at one byte per ``interval``;
* ``huge_json`` - one valid JSON line of several megabytes;
* ``deep_json`` - a short line nesting arrays thousands deep (recursion bomb);
* ``invalid_utf8`` - JSON-looking lines with bytes that are not UTF-8, plus escape codes;
* ``flood_lines`` - endless valid ``mining.set_difficulty`` pushes, never our reply;
* ``tls_garbage`` - answers a ClientHello with a TLS record header claiming 64 KiB, then junk;
* ``tls_close_notify`` - a real TLS handshake, half a reply, ``close_notify``, then
  keeps the TCP connection open and silent (a graceful-close wait would hang);
* ``tls_stall`` - accepts TCP, never answers the ClientHello;
* ``tls_hello_request`` - a real TLS 1.2 handshake, then an unencrypted HelloRequest
  (a renegotiation demand; the stdlib cannot start a real one) and silence;
* ``tls_ticket_flood`` - a real TLS 1.3 handshake followed by thousands of
  NewSessionTicket messages: post-handshake traffic that carries no application byte,
  so only the deadline (not the byte budget) can end it;
* ``ws_huge_frame`` - a valid WebSocket upgrade, then a frame declaring 2**62 bytes;
* ``ws_flood`` - a valid upgrade, then small frames forever;
* ``http_endless`` - HTTP 200 with a chunked body that never ends;
* ``http_endless_headers`` - an HTTP status line followed by headers forever;
* ``immediate_reset`` - accepts and resets at once;
* ``accept_silent`` - accepts, never reads, never writes;
* ``reset_mid_reply`` - reads the request, sends half a Stratum reply, then resets.

:func:`start_injection_pool` is a working Stratum v1 pool (a prober rightly calls it a
pool) whose every free-text field carries attacker-chosen text: the
``client.show_message`` banner (also sent raw, not JSON-escaped), the subscription ids
and the authorize error. It feeds
the injection tests: whatever it says must reach a terminal, a table or a CSV inert.

All bind loopback port 0 by default. ``interval`` scales the time-based tricks so tests
can run them quickly.

:class:`Blackhole` is the odd one out: not a server but listening sockets whose accept
queue is full, so the kernel drops every further SYN and a connect hangs until the
prober's connect timeout, the cheapest way to make thousands of targets on
127.0.0.0/8 all time out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from minerscope.emulate.server import (
    LOOPBACK_HOST,
    ServerHandle,
    ServerStats,
    server_context,
    start_stream_server,
)

_HALF_SUBSCRIBE_REPLY = (
    b'{"id":1,"result":[[["mining.set_difficulty","b4b6693b72a50c7116db18d6497cac52"],'
    b'["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"08000002",4],"error":null}\n'
)
_FOREVER = 1 << 62


async def _forever() -> None:
    await asyncio.sleep(3600 * 24)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), like a crashed or hostile peer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_some(reader: asyncio.StreamReader, stats: ServerStats, within: float = 5.0) -> bytes:
    """Read the prober's first bytes (bounded wait) so replies come after its request."""
    try:
        async with asyncio.timeout(within):
            data = await reader.read(4096)
    except TimeoutError:
        return b""
    stats.bytes_received += len(data)
    return data


def _endless_line(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        block = b'{"id":1,"result":"' + b"A" * 8192
        writer.write(block)
        while True:
            writer.write(b"A" * 8192)
            await writer.drain()

    return handle


def _slow_drip(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        for i in range(_FOREVER):
            writer.write(
                _HALF_SUBSCRIBE_REPLY[i % len(_HALF_SUBSCRIBE_REPLY) : i % len(_HALF_SUBSCRIBE_REPLY) + 1]
            )
            await writer.drain()
            await asyncio.sleep(interval)

    return handle


def _huge_json(stats: ServerStats, interval: float, size: int = 8 * 1024 * 1024) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        writer.write(b'{"id":1,"error":null,"result":"')
        block = b"0123456789abcdef" * 4096
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
        writer.write(b'"}\n')
        await writer.drain()
        await _forever()

    return handle


def _deep_json(stats: ServerStats, interval: float, depth: int = 6000) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        writer.write(b'{"id":1,"error":null,"result":' + b"[" * depth + b"]" * depth + b"}\n")
        writer.write(b'{"id":null,"method":"mining.notify","params":' + b"[" * depth + b"]" * depth + b"}\n")
        await writer.drain()
        await _forever()

    return handle


def _invalid_utf8(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        writer.write(
            b'{"id":1,"result":[[["mining.notify","\xff\xfe\xc3\x28"]],"\x80\x81",4],"error":null}\n'
        )
        writer.write(b'\x1b[2J\x1b]0;pwned\x07{"id":1,"result":true}\xe2\x80\xae\n')
        writer.write(bytes(range(256)) + b"\n")
        await writer.drain()
        await _forever()

    return handle


def _flood_lines(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        line = json.dumps({"id": None, "method": "mining.set_difficulty", "params": [1024]}).encode() + b"\n"
        block = line * 256
        while True:
            writer.write(block)
            await writer.drain()

    return handle


def _tls_garbage(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        # A handshake record header announcing 65535 bytes, then random junk, slowly.
        writer.write(b"\x16\x03\x03\xff\xff" + os.urandom(512))
        await writer.drain()
        while True:
            await asyncio.sleep(interval)
            writer.write(os.urandom(16))
            await writer.drain()

    return handle


def _tls_stall(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        await _forever()

    return handle


async def _bio_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    stats: ServerStats,
    ctx: ssl.SSLContext | None = None,
) -> tuple[ssl.SSLObject, ssl.MemoryBIO]:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = (ctx or server_context()).wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if pending := outgoing.read():
                writer.write(pending)
                await writer.drain()
            chunk = await reader.read(16384)
            if not chunk:
                raise EOFError from None
            stats.bytes_received += len(chunk)
            incoming.write(chunk)
    if pending := outgoing.read():
        writer.write(pending)
        await writer.drain()
    return tls, outgoing


def _tls_close_notify(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tls, outgoing = await _bio_handshake(reader, writer, stats)
        tls.write(_HALF_SUBSCRIBE_REPLY[:60])
        with contextlib.suppress(ssl.SSLError):
            tls.unwrap()  # queues close_notify; would then wait for the peer's
        writer.write(outgoing.read())
        await writer.drain()
        await _forever()  # ...but the TCP connection stays open and silent

    return handle


def _tls_hello_request(stats: ServerStats, interval: float) -> Any:
    ctx = server_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # renegotiation exists only up to 1.2

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _bio_handshake(reader, writer, stats, ctx)
        # handshake record, TLS 1.2, 4 bytes: HelloRequest (type 0, empty body)
        writer.write(b"\x16\x03\x03\x00\x04\x00\x00\x00\x00")
        await writer.drain()
        await _forever()

    return handle


TICKET_FLOOD = 4_000
"""NewSessionTicket messages ``tls_ticket_flood`` sends (about 1 MB on the wire; the server spends ~0.1 s of CPU minting them)."""


def _tls_ticket_flood(stats: ServerStats, interval: float) -> Any:
    ctx = server_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.num_tickets = TICKET_FLOOD  # OpenSSL writes them all right after the handshake

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _tls, outgoing = await _bio_handshake(reader, writer, stats, ctx)
        while pending := outgoing.read(65536):
            writer.write(pending)
            await writer.drain()
        await _forever()

    return handle


def _ws_accept(key: str) -> str:
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


async def _ws_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    try:
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return False
    key = ""
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {_ws_accept(key)}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    return True


def _ws_huge_frame(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await _ws_upgrade(reader, writer):
            return
        writer.write(b"\x81\x7f" + struct.pack("!Q", 1 << 62) + b'{"type":"authed"')
        await writer.drain()
        while True:
            await asyncio.sleep(interval)
            writer.write(b"A" * 1024)
            await writer.drain()

    return handle


def _ws_flood(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await _ws_upgrade(reader, writer):
            return
        payload = b'{"type":"hash_accepted","params":{"hashes":1}}'
        frame = b"\x81" + bytes([len(payload)]) + payload
        block = frame * 512
        while True:
            writer.write(block)
            await writer.drain()

    return handle


def _http_endless(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b'{"result":"' + b"x" * 4000
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while True:
            writer.write(framed)
            await writer.drain()

    return handle


def _http_endless_headers(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        n = 0
        while True:
            n += 1
            writer.write(f"X-Header-{n}: {'v' * 200}\r\n".encode())
            await writer.drain()

    return handle


def _immediate_reset(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _reset(writer)

    return handle


def _accept_silent(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _forever()

    return handle


def _reset_mid_reply(stats: ServerStats, interval: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_some(reader, stats)
        writer.write(_HALF_SUBSCRIBE_REPLY[:70])
        await writer.drain()
        await asyncio.sleep(min(interval, 0.05))
        _reset(writer)

    return handle


HandlerFactory = Callable[[ServerStats, float], Any]

HOSTILE_FACTORIES: dict[str, HandlerFactory] = {
    "endless_line": _endless_line,
    "slow_drip": _slow_drip,
    "huge_json": _huge_json,
    "deep_json": _deep_json,
    "invalid_utf8": _invalid_utf8,
    "flood_lines": _flood_lines,
    "tls_garbage": _tls_garbage,
    "tls_close_notify": _tls_close_notify,
    "tls_stall": _tls_stall,
    "tls_hello_request": _tls_hello_request,
    "tls_ticket_flood": _tls_ticket_flood,
    "ws_huge_frame": _ws_huge_frame,
    "ws_flood": _ws_flood,
    "http_endless": _http_endless,
    "http_endless_headers": _http_endless_headers,
    "immediate_reset": _immediate_reset,
    "accept_silent": _accept_silent,
    "reset_mid_reply": _reset_mid_reply,
}

HOSTILE: tuple[str, ...] = tuple(HOSTILE_FACTORIES)
"""Every hostile trick by name."""


async def start_hostile(
    name: str, *, host: str = LOOPBACK_HOST, port: int = 0, interval: float = 1.0
) -> ServerHandle:
    """Start the hostile server ``name`` (one of :data:`HOSTILE`).

    Args:
        name: the trick.
        host: bind address (loopback by default).
        port: bind port (0: the kernel picks).
        interval: seconds between drips for the time-based tricks.

    Raises:
        KeyError: unknown name.
    """
    stats = ServerStats()
    handler = HOSTILE_FACTORIES[name](stats, interval)
    return await start_stream_server(f"hostile:{name}", handler, host=host, port=port, stats=stats)


Starter = Callable[..., Awaitable[ServerHandle]]


def _injection_handler(text: str, stats: ServerStats) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(16):  # a bounded number of requests per connection
            try:
                line = await reader.readuntil(b"\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            stats.bytes_received += len(line)
            try:
                request = json.loads(line)
            except ValueError:
                return
            if not isinstance(request, dict):
                return
            mid, method = request.get("id"), request.get("method")
            stats.note_request(str(method)[:80])
            if method == "mining.subscribe":
                reply: dict[str, Any] = {
                    "id": mid,
                    "result": [[["mining.set_difficulty", text], ["mining.notify", text]], "08000002", 4],
                    "error": None,
                }
                push = {"id": None, "method": "client.show_message", "params": [text]}
                writer.write(json.dumps(reply).encode() + b"\n" + json.dumps(push).encode() + b"\n")
                # and once more raw: JSON escapes controls, a hostile banner need not
                writer.write(text.encode("utf-8", "replace") + b"\n")
            elif method == "mining.authorize":
                writer.write(
                    json.dumps({"id": mid, "result": None, "error": [24, text, None]}).encode() + b"\n"
                )
            else:
                writer.write(
                    json.dumps(
                        {"id": mid, "result": None, "error": [20, "Unsupported method", None]}
                    ).encode()
                    + b"\n"
                )
            await writer.drain()

    return handle


async def start_injection_pool(text: str, *, host: str = LOOPBACK_HOST, port: int = 0) -> ServerHandle:
    """A Stratum v1 pool whose banner, subscription ids and errors are ``text``."""
    stats = ServerStats()
    return await start_stream_server(
        "hostile:injection_pool",
        _injection_handler(text, stats),
        host=host,
        port=port,
        stats=stats,
        dialect="stratum1",
        limit=1024 * 1024,
    )


class Blackhole:
    """Loopback listeners that never accept, each with its one-slot accept queue filled.

    ``listen(0)`` leaves room for one completed connection; this class makes it, so the
    kernel drops every later SYN to that address and port (a listen overflow, not a
    reset): a connect there hangs like one to a firewalled host. Each listener has its
    own address in ``127.<net>.0.0/16``, because a prober limits connections per address
    and thousands of targets on one address would measure that limit, not timeouts.

    Example::

        with Blackhole(1000) as hole:
            targets = hole.targets  # [(address, port), ...], every connect times out
    """

    def __init__(self, count: int, *, net: int = 77) -> None:
        if not 0 < count <= 65_000:
            raise ValueError("count must be 1..65000")
        self.listeners: list[socket.socket] = []
        self.fillers: list[socket.socket] = []
        self.targets: list[tuple[str, int]] = []
        try:
            for i in range(count):
                address = f"127.{net}.{i // 250}.{i % 250 + 1}"
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.listeners.append(listener)
                listener.bind((address, 0))
                listener.listen(0)
                port = int(listener.getsockname()[1])
                filler = socket.create_connection((address, port), timeout=2.0)
                self.fillers.append(filler)
                self.targets.append((address, port))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every socket (idempotent)."""
        for sock in (*self.fillers, *self.listeners):
            sock.close()
        self.fillers.clear()
        self.listeners.clear()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
