"""Ordinary, non-mining services: what a prober must *never* call a pool.

False positives are the failure mode of earlier probers (sMaSheD counts any non-empty
JSON-RPC ``result``; CESNET any reply containing ``mining.notify``), so these servers
are built to tempt exactly those rules: a JSON-RPC server that answers every method with
a result, an echo server that repeats our Stratum request (``mining.notify`` included),
an Ethereum node that answers ``eth_getWork`` with an error, an SMTP-like banner, web
servers over HTTP/HTTPS and a WebSocket echo. All are real servers on loopback.

Use :data:`BENIGN` (name -> starter) to run them all, or the individual ``start_*``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from minerscope.emulate.server import (
    LOOPBACK_HOST,
    HttpRequest,
    ServerHandle,
    ServerStats,
    http_response,
    http_stream_handler,
    start_stream_server,
    start_ws_server,
)
from minerscope.probe.framing import LineBuffer, decode_json_object

_MAX_LINE = 64 * 1024

JsonAnswer = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Given a decoded request, the JSON reply to send (None: send nothing)."""


def answer_method_not_found(request: dict[str, Any]) -> dict[str, Any] | None:
    """A well-behaved JSON-RPC 2.0 server that implements nothing we ask for."""
    return {
        "jsonrpc": "2.0",
        "id": request.get("id"),
        "error": {"code": -32601, "message": "Method not found"},
    }


def answer_everything(request: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON-RPC server that says yes to anything (a naive prober's false positive)."""
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": True, "error": None}


def answer_everything_rich(request: dict[str, Any]) -> dict[str, Any] | None:
    """Answers every method with the same non-trivial object (a key/value store, say)."""
    return {
        "jsonrpc": "2.0",
        "id": request.get("id"),
        "result": {"status": "OK", "value": "0" * 64, "items": [1, 2, 3]},
        "error": None,
    }


def answer_eth_node(request: dict[str, Any]) -> dict[str, Any] | None:
    """A post-Merge Ethereum node: no mining work, methods otherwise unknown."""
    method = request.get("method")
    rid = request.get("id")
    if method == "eth_getWork":
        return {
            "jsonrpc": "2.0",
            "id": rid,
            "error": {"code": -32000, "message": "no mining work available yet"},
        }
    if method in ("eth_submitLogin", "eth_submitWork", "eth_submitHashrate"):
        return {
            "jsonrpc": "2.0",
            "id": rid,
            "error": {"code": -32601, "message": f"the method {method} does not exist/is not available"},
        }
    if method == "eth_blockNumber":
        return {"jsonrpc": "2.0", "id": rid, "result": "0x12a05f2"}
    if method == "web3_clientVersion":
        return {"jsonrpc": "2.0", "id": rid, "result": "Geth/v1.14.0-stable/linux-amd64/go1.22.2"}
    return {
        "jsonrpc": "2.0",
        "id": rid,
        "error": {"code": -32601, "message": f"the method {method} does not exist/is not available"},
    }


def _line_jsonrpc_handler(answer: JsonAnswer, stats: ServerStats, *, parse_error_reply: bool = True) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = LineBuffer(max_line_bytes=_MAX_LINE, max_total_bytes=1 << 20)
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                return
            stats.bytes_received += len(chunk)
            for line in buf.feed(chunk):
                request = decode_json_object(line)
                if request is None:
                    if parse_error_reply:
                        reply: dict[str, Any] | None = {
                            "jsonrpc": "2.0",
                            "id": None,
                            "error": {"code": -32700, "message": "Parse error"},
                        }
                    else:
                        continue
                else:
                    stats.note_request(str(request.get("method", "?")))
                    reply = answer(request)
                if reply is not None:
                    writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()

    return handle


def _http_jsonrpc_responder(
    answer: JsonAnswer, *, server: str = ""
) -> Callable[[HttpRequest], Awaitable[bytes]]:
    async def respond(request: HttpRequest) -> bytes:
        if request.method != "POST":
            return http_response(405, "Method Not Allowed", b'{"error":"use POST"}', server=server)
        decoded = decode_json_object(request.body) if request.body else None
        if decoded is None:
            body = json.dumps(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
            )
            return http_response(200, "OK", body.encode(), server=server)
        reply = answer(decoded) or {}
        return http_response(200, "OK", json.dumps(reply).encode(), server=server)

    return respond


async def start_jsonrpc_line(
    answer: JsonAnswer = answer_method_not_found,
    *,
    name: str = "benign:jsonrpc",
    host: str = LOOPBACK_HOST,
    port: int = 0,
    tls: bool = False,
) -> ServerHandle:
    """Newline-delimited JSON-RPC over TCP/TLS answering with ``answer``."""
    stats = ServerStats()
    return await start_stream_server(
        name, _line_jsonrpc_handler(answer, stats), host=host, port=port, tls=tls, stats=stats
    )


async def start_jsonrpc_http(
    answer: JsonAnswer = answer_method_not_found,
    *,
    name: str = "benign:jsonrpc-http",
    host: str = LOOPBACK_HOST,
    port: int = 0,
    tls: bool = False,
    server: str = "",
) -> ServerHandle:
    """JSON-RPC over HTTP(S) POST answering with ``answer`` (no authentication)."""
    stats = ServerStats()
    return await start_stream_server(
        name,
        http_stream_handler(_http_jsonrpc_responder(answer, server=server), stats),
        host=host,
        port=port,
        tls=tls,
        stats=stats,
        transport="https" if tls else "http",
    )


_PAGE = b"<!DOCTYPE html>\n<html><head><title>It works</title></head><body><p>It works!</p></body></html>\n"


async def start_http(*, host: str = LOOPBACK_HOST, port: int = 0, tls: bool = False) -> ServerHandle:
    """A plain web server: 200 with a small HTML page for GET, 405 JSON-less for POST."""
    stats = ServerStats()

    async def respond(request: HttpRequest) -> bytes:
        if request.method in ("GET", "HEAD"):
            return http_response(200, "OK", _PAGE, content_type="text/html", server="nginx/1.24.0")
        return http_response(
            405,
            "Not Allowed",
            b"<html><body>405 Not Allowed</body></html>\n",
            content_type="text/html",
            server="nginx/1.24.0",
        )

    return await start_stream_server(
        "benign:https" if tls else "benign:http",
        http_stream_handler(respond, stats),
        host=host,
        port=port,
        tls=tls,
        stats=stats,
        transport="https" if tls else "http",
    )


async def start_tcp_echo(*, host: str = LOOPBACK_HOST, port: int = 0, tls: bool = False) -> ServerHandle:
    """Echoes every byte back (a reflecting service repeats our ``mining.notify`` request)."""
    stats = ServerStats()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(4096):
            stats.bytes_received += len(chunk)
            writer.write(chunk)
            await writer.drain()

    return await start_stream_server("benign:echo", handle, host=host, port=port, tls=tls, stats=stats)


async def start_ws_echo(*, host: str = LOOPBACK_HOST, port: int = 0, tls: bool = False) -> ServerHandle:
    """A WebSocket echo server (any path)."""

    async def handler(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    return await start_ws_server("benign:ws-echo", handler, host=host, port=port, tls=tls)


async def start_ws_chat(*, host: str = LOOPBACK_HOST, port: int = 0, tls: bool = False) -> ServerHandle:
    """A WebSocket app with its own JSON ``type`` messages (a chat), unlike a mining shard."""

    async def handler(ws: Any) -> None:
        await ws.send(json.dumps({"type": "welcome", "params": {"room": "lobby", "users": 3}}))
        async for message in ws:
            await ws.send(json.dumps({"type": "error", "params": {"error": "unknown command"}}))
            del message

    return await start_ws_server("benign:ws-chat", handler, host=host, port=port, tls=tls)


async def start_smtp_like(*, host: str = LOOPBACK_HOST, port: int = 0, tls: bool = False) -> ServerHandle:
    """A line protocol with a banner: ``220`` greeting, ``500`` to anything it does not know."""
    stats = ServerStats()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.example.test ESMTP Postfix\r\n")
        await writer.drain()
        for _ in range(64):
            try:
                line = await reader.readuntil(b"\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            stats.bytes_received += len(line)
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb in (b"HELO", b"EHLO"):
                writer.write(b"250 mail.example.test\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"500 5.5.2 Error: command not recognized\r\n")
            await writer.drain()

    return await start_stream_server("benign:smtp", handle, host=host, port=port, tls=tls, stats=stats)


async def start_close_at_once(*, host: str = LOOPBACK_HOST, port: int = 0, tls: bool = False) -> ServerHandle:
    """Accepts and closes cleanly at once (a service that refuses strangers)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await start_stream_server("benign:close", handle, host=host, port=port, tls=tls)


async def start_silent(*, host: str = LOOPBACK_HOST, port: int = 0, tls: bool = False) -> ServerHandle:
    """Accepts, reads and never answers (a service waiting for its own protocol)."""
    stats = ServerStats()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(4096):
            stats.bytes_received += len(chunk)

    return await start_stream_server("benign:silent", handle, host=host, port=port, tls=tls, stats=stats)


Starter = Callable[..., Awaitable[ServerHandle]]


async def _jsonrpc_nf(**kw: Any) -> ServerHandle:
    return await start_jsonrpc_line(answer_method_not_found, name="benign:jsonrpc-not-found", **kw)


async def _jsonrpc_yes(**kw: Any) -> ServerHandle:
    return await start_jsonrpc_line(answer_everything, name="benign:jsonrpc-yes", **kw)


async def _jsonrpc_rich(**kw: Any) -> ServerHandle:
    return await start_jsonrpc_line(answer_everything_rich, name="benign:jsonrpc-rich", **kw)


async def _jsonrpc_http_yes(**kw: Any) -> ServerHandle:
    return await start_jsonrpc_http(answer_everything, name="benign:jsonrpc-http-yes", **kw)


async def _jsonrpc_http_nf(**kw: Any) -> ServerHandle:
    return await start_jsonrpc_http(answer_method_not_found, name="benign:jsonrpc-http-not-found", **kw)


async def _eth_node_http(**kw: Any) -> ServerHandle:
    return await start_jsonrpc_http(answer_eth_node, name="benign:eth-node", server="", **kw)


async def _eth_node_line(**kw: Any) -> ServerHandle:
    return await start_jsonrpc_line(answer_eth_node, name="benign:eth-node-line", **kw)


async def _https(**kw: Any) -> ServerHandle:
    return await start_http(tls=True, **kw)


async def _echo_tls(**kw: Any) -> ServerHandle:
    return await start_tcp_echo(tls=True, **kw)


async def _jsonrpc_yes_tls(**kw: Any) -> ServerHandle:
    return await start_jsonrpc_line(answer_everything, name="benign:jsonrpc-yes-tls", tls=True, **kw)


async def _wss_echo(**kw: Any) -> ServerHandle:
    return await start_ws_echo(tls=True, **kw)


BENIGN: dict[str, Starter] = {
    "http": start_http,
    "https": _https,
    "tcp-echo": start_tcp_echo,
    "tls-echo": _echo_tls,
    "ws-echo": start_ws_echo,
    "wss-echo": _wss_echo,
    "ws-chat": start_ws_chat,
    "jsonrpc-not-found": _jsonrpc_nf,
    "jsonrpc-yes": _jsonrpc_yes,
    "jsonrpc-yes-tls": _jsonrpc_yes_tls,
    "jsonrpc-rich": _jsonrpc_rich,
    "jsonrpc-http-yes": _jsonrpc_http_yes,
    "jsonrpc-http-not-found": _jsonrpc_http_nf,
    "eth-node-http": _eth_node_http,
    "eth-node-line": _eth_node_line,
    "smtp": start_smtp_like,
    "close-at-once": start_close_at_once,
    "silent": start_silent,
}
"""Every benign service by name; each starter takes ``host=`` and ``port=`` keywords."""


async def start_benign(name: str, *, host: str = LOOPBACK_HOST, port: int = 0) -> ServerHandle:
    """Start the benign service ``name`` (a key of :data:`BENIGN`).

    Raises:
        KeyError: unknown name.
    """
    handle = await BENIGN[name](host=host, port=port)
    handle.dialect = None
    return handle
