"""The plumbing every emulator shares: a running-server handle, TLS, and a thread runner.

Pool emulators, benign services and hostile servers are all real asyncio servers bound
to a loopback address (port 0 by default, so parallel tests never collide). They are
returned as a :class:`ServerHandle` whose ``port`` is the one the kernel picked and
whose ``close()`` stops listening *and* drops live connections (a hostile server parked
in ``sleep`` must not keep a test's event loop alive). :func:`run_in_thread` runs any of
them on a private event loop for synchronous callers (the lab, a demo, a benchmark).

TLS certificates are minted at start with ``cryptography`` (a throwaway self-signed
ECDSA P-256 certificate for ``localhost``/``127.0.0.1``); no key is ever committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from minerscope.errors import InputError
from minerscope.untrusted import is_decimal

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

LOOPBACK_HOST = "127.0.0.1"


def require_loopback_or_explicit(host: str, *, allow_any: bool) -> None:
    """Refuse to bind a non-loopback address unless the caller asked for it explicitly.

    Raises:
        InputError: ``host`` is not a loopback address and ``allow_any`` is False.
    """
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host == "localhost" or allow_any:
            return
        raise InputError(f"--host {host!r}: not an IP address") from None
    if not addr.is_loopback and not allow_any:
        raise InputError(f"--host {host}: emulators bind loopback only (pass --public to override)")


@dataclass(frozen=True, slots=True)
class SelfSignedCert:
    """A throwaway certificate: PEM files on disk for ``ssl``, DER for assertions."""

    cert_pem: bytes
    key_pem: bytes
    der: bytes
    common_name: str


def make_self_signed(common_name: str = "localhost", *, days: int = 7) -> SelfSignedCert:
    """Mint an ECDSA P-256 self-signed certificate for ``common_name``, 127.0.0.1 and ::1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(common_name),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return SelfSignedCert(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        der=cert.public_bytes(serialization.Encoding.DER),
        common_name=common_name,
    )


_DEFAULT_CERT: SelfSignedCert | None = None
_CERT_LOCK = threading.Lock()


def default_cert() -> SelfSignedCert:
    """One self-signed certificate per process (minting costs a few milliseconds)."""
    global _DEFAULT_CERT
    with _CERT_LOCK:
        if _DEFAULT_CERT is None:
            _DEFAULT_CERT = make_self_signed()
        return _DEFAULT_CERT


def server_context(cert: SelfSignedCert | None = None) -> ssl.SSLContext:
    """A server TLS context for ``cert`` (default: :func:`default_cert`).

    ``ssl`` loads keys only from files, so the PEMs pass through a private temporary
    directory that is removed before this returns.
    """
    cert = cert or default_cert()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="minerscope-tls-") as tmp:
        cert_path = os.path.join(tmp, "cert.pem")
        key_path = os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as fh:
            fh.write(cert.cert_pem)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
            fh.write(cert.key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


@dataclass(slots=True)
class ServerStats:
    """What a server saw (for tests that assert on the server side, e.g. "nothing sent")."""

    connections: int = 0
    bytes_received: int = 0
    requests: list[str] = field(default_factory=list)

    def note_request(self, label: str) -> None:
        """Remember a request label (bounded: the last 256)."""
        self.requests.append(label)
        if len(self.requests) > 256:
            del self.requests[:-256]


@dataclass(slots=True)
class ServerHandle:
    """A running emulator: where it listens and how to stop it.

    Attributes:
        name: what it emulates (``stratum1``, ``benign:http``, ``hostile:slow_drip`` ...).
        host: the bound address.
        port: the bound port (the kernel's pick when 0 was asked for).
        transport: ``tcp``, ``tls``, ``ws``, ``wss``, ``http`` or ``https``.
        dialect: the dialect a prober should find, or None for a non-pool.
        path: URL path for ws/http services.
        stats: connection and byte counters.
    """

    name: str
    host: str
    port: int
    transport: str
    dialect: str | None
    stats: ServerStats
    _closer: Callable[[], Awaitable[None]]
    path: str = "/"
    extra: dict[str, Any] = field(default_factory=dict)
    closed: bool = False

    @property
    def target(self) -> tuple[str, int]:
        """``(host, port)`` as a prober takes it."""
        return self.host, self.port

    @property
    def url(self) -> str:
        """A URL-style address (``stratum+tcp://``, ``wss://`` ...)."""
        scheme = {"tcp": "stratum+tcp", "tls": "stratum+ssl"}.get(self.transport, self.transport)
        host = f"[{self.host}]" if ":" in self.host else self.host
        suffix = self.path if self.transport in ("ws", "wss", "http", "https") else ""
        return f"{scheme}://{host}:{self.port}{suffix}"

    async def close(self) -> None:
        """Stop listening and drop every live connection (idempotent)."""
        if not self.closed:
            self.closed = True
            await self._closer()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ConnectionTracker:
    """Remembers live connection tasks/writers so ``close()`` can drop them all."""

    def __init__(self) -> None:
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = False

    def wrap(self, handler: StreamHandler, stats: ServerStats) -> StreamHandler:
        """A handler that registers itself, counts the connection and never leaks errors."""

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self.tasks.add(task)
            self.writers.add(writer)
            stats.connections += 1
            try:
                await handler(reader, writer)
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, EOFError):
                pass  # the prober hung up or reset: normal for a server
            except asyncio.CancelledError:
                # close_all() cancels parked handlers; ending quietly keeps asyncio's
                # start_server callback from logging each one as an error.
                if not self.closing:
                    raise
            finally:
                self.writers.discard(writer)
                if task is not None:
                    self.tasks.discard(task)
                writer.transport.abort()

        return tracked

    async def close_all(self) -> None:
        """Abort every live connection and wait for the handlers to finish."""
        self.closing = True
        for writer in list(self.writers):
            writer.transport.abort()
        tasks = [t for t in self.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def start_stream_server(
    name: str,
    handler: StreamHandler,
    *,
    host: str = LOOPBACK_HOST,
    port: int = 0,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    dialect: str | None = None,
    transport: str | None = None,
    stats: ServerStats | None = None,
    on_close: Callable[[], Awaitable[None]] | None = None,
    limit: int = 64 * 1024,
) -> ServerHandle:
    """Serve ``handler`` on a TCP (or TLS) socket and return its handle."""
    stats = stats or ServerStats()
    tracker = ConnectionTracker()
    ctx = (ssl_context or server_context()) if tls else None
    server = await asyncio.start_server(
        tracker.wrap(handler, stats), host, port, ssl=ctx, limit=limit, reuse_address=True
    )
    bound = server.sockets[0].getsockname()

    async def closer() -> None:
        server.close()
        await tracker.close_all()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
        if on_close is not None:
            await on_close()

    return ServerHandle(
        name=name,
        host=str(bound[0]),
        port=int(bound[1]),
        transport=transport or ("tls" if tls else "tcp"),
        dialect=dialect,
        stats=stats,
        _closer=closer,
    )


class ThreadedServers:
    """Emulators running on a private event loop in a daemon thread (for sync callers).

    Example::

        with ThreadedServers() as lab:
            handle = lab.start(start_pool("stratum1"))
            ... probe handle.target from anywhere ...
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="minerscope-emulators", daemon=True
        )
        self._thread.start()
        self.handles: list[ServerHandle] = []

    def start(self, coro: Coroutine[Any, Any, ServerHandle], timeout: float = 10.0) -> ServerHandle:
        """Run a ``start_*`` coroutine on the emulator loop and return its handle."""
        handle = asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        """Close every server started here and stop the thread."""

        async def _close_all() -> None:
            await asyncio.gather(*(h.close() for h in self.handles), return_exceptions=True)

        if self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_close_all(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        if not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request read by :func:`read_http_request` (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


MAX_HTTP_HEAD = 16 * 1024
MAX_HTTP_BODY = 1024 * 1024


async def read_http_request(
    reader: asyncio.StreamReader, *, max_head: int = MAX_HTTP_HEAD, max_body: int = MAX_HTTP_BODY
) -> HttpRequest | None:
    """Read one HTTP/1.1 request (bounded head and body); None when the client went away
    or sent something that is not HTTP."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    if len(head) > max_head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    length_text = headers.get("content-length", "0")
    length = int(length_text) if is_decimal(length_text) else 0
    if length > max_body:
        return None
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(parts[0], parts[1], headers, body)


def http_response(
    status: int,
    reason: str,
    body: bytes = b"",
    *,
    content_type: str = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
    server: str = "",
    keep_alive: bool = False,
) -> bytes:
    """Serialise an HTTP/1.1 response."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    if server:
        lines.append(f"Server: {server}")
    lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


HttpHandler = Callable[[HttpRequest], Awaitable[bytes]]


def http_stream_handler(respond: HttpHandler, stats: ServerStats) -> StreamHandler:
    """Turn a request -> response-bytes function into a stream handler (keep-alive aware)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(32):  # a bounded number of keep-alive requests per connection
            request = await read_http_request(reader)
            if request is None:
                if not reader.at_eof():
                    writer.write(
                        http_response(400, "Bad Request", b"bad request\n", content_type="text/plain")
                    )
                    await writer.drain()
                return
            stats.bytes_received += len(request.body)
            stats.note_request(f"{request.method} {request.path}")
            writer.write(await respond(request))
            await writer.drain()
            if request.headers.get("connection", "").lower() != "keep-alive":
                return

    return handle


async def start_ws_server(
    name: str,
    handler: Callable[[Any], Awaitable[None]],
    *,
    host: str = LOOPBACK_HOST,
    port: int = 0,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    dialect: str | None = None,
    path: str = "/",
    stats: ServerStats | None = None,
    on_close: Callable[[], Awaitable[None]] | None = None,
    max_size: int = 64 * 1024,
    process_request: Any = None,
) -> ServerHandle:
    """Serve a ``websockets`` connection handler (``ws`` or ``wss``) and return its handle."""
    from websockets.asyncio.server import serve

    stats = stats or ServerStats()

    async def counted(ws: Any) -> None:
        stats.connections += 1
        stats.note_request(f"WS {ws.request.path if ws.request else '?'}")
        with contextlib.suppress(Exception):
            await handler(ws)

    server = await serve(
        counted,
        host,
        port,
        ssl=(ssl_context or server_context()) if tls else None,
        max_size=max_size,
        ping_interval=None,
        close_timeout=0.2,
        compression=None,
        process_request=process_request,
    )
    bound = next(iter(server.sockets)).getsockname()

    async def closer() -> None:
        server.close(close_connections=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)
        if on_close is not None:
            await on_close()

    return ServerHandle(
        name=name,
        host=str(bound[0]),
        port=int(bound[1]),
        transport="wss" if tls else "ws",
        dialect=dialect,
        stats=stats,
        _closer=closer,
        path=path,
    )
