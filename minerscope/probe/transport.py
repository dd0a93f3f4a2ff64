"""The prober's only I/O: sockets, TLS, WebSocket and HTTP, each bounded in time and bytes.

Everything protocol-shaped (what to send, whether a reply is a pool) lives in the sans-IO
dialects; this module only moves bytes, and it assumes the far end is hostile. So every
operation here:

* runs under one **deadline** (``asyncio.timeout`` over connect, handshake and exchange),
  with a shorter connect timeout inside it, so a silent or one-byte-per-second peer costs
  at most the deadline;
* reads under a **byte budget** (``max_bytes``), in chunks no larger than what is left of
  it, so a flood or a never-ending line costs at most the budget; WebSocket frames are
  capped by ``max_size`` before their payload is read and HTTP bodies are streamed and cut;
* **never raises** for what the peer does: refusals, resets, TLS garbage, close-notify
  tricks, oversize frames all end up in the returned record's ``end`` and ``error``
  fields, because a misbehaving peer is a finding, not a crash;
* closes by **aborting** the connection: a graceful TLS shutdown waits for the peer's
  close_notify, which a hostile peer never sends.

The caller decides when it has heard enough: :func:`stream_exchange` hands every chunk to
an ``on_data`` callback that answers with a :class:`Next` (keep reading, send more, or
stop), so a dialect can stop as soon as a Stratum reply arrives even if the pool first
pushed ``mining.set_difficulty``. Addresses passed in are already resolved *and checked
against the scope* by the runner; this module connects to exactly those addresses and
uses host names only for SNI and Host headers, so DNS cannot move a probe elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpcore  # noqa: F401  (imported now: its lazy first import would block the event loop ~0.1 s)
import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from minerscope.errors import LimitExceededError, MinerscopeError
from minerscope.untrusted import clean

__all__ = [
    "End",
    "HttpResult",
    "Limits",
    "Liveness",
    "Next",
    "StreamResult",
    "TlsDetails",
    "WsResult",
    "http_request",
    "no_verify_context",
    "resolve",
    "stream_exchange",
    "tcp_alive",
    "tls_handshake",
    "ws_exchange",
]

_ERROR_CHARS = 200


class End(enum.StrEnum):
    """Why an attempt's I/O stopped."""

    DONE = "done"  # the caller had what it needed
    EOF = "eof"  # the peer closed cleanly
    QUIET = "quiet"  # the peer went quiet after replying (and no reply was awaited)
    TIMEOUT = "timeout"  # the attempt's deadline passed
    CONNECT_TIMEOUT = "connect_timeout"  # no TCP connection within the connect timeout
    REFUSED = "refused"  # connection refused (port closed)
    UNREACHABLE = "unreachable"  # no route, host down, name not found
    RESET = "reset"  # the peer reset the connection
    LIMIT = "limit"  # a byte/line/frame limit was hit; reading stopped
    TLS_ERROR = "tls_error"  # the TLS handshake or a record failed
    PROTOCOL_ERROR = "protocol_error"  # the peer broke HTTP/WebSocket framing
    ERROR = "error"  # any other OS-level failure


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one attempt (seconds and bytes).

    Attributes:
        connect_timeout: TCP connect (and TLS handshake) must finish within this.
        deadline: the whole attempt, connect included, must finish within this.
        max_bytes: at most this many bytes are read from the peer (a security limit).
        chunk: the largest single read.
    """

    connect_timeout: float = 3.0
    deadline: float = 6.0
    max_bytes: int = 64 * 1024
    chunk: int = 4096


@dataclass(frozen=True, slots=True)
class Next:
    """The ``on_data`` callback's answer.

    Attributes:
        send: bytes to send now.
        done: stop reading (the caller has what it needs).
        awaiting: a specific reply is still expected, so the ``quiet_s`` rule (stop when
            the peer has gone quiet) does not apply; only the deadline does.
    """

    send: bytes = b""
    done: bool = False
    awaiting: bool = False


CONTINUE = Next()
AWAIT = Next(awaiting=True)
STOP = Next(done=True)


@dataclass(frozen=True, slots=True)
class TlsDetails:
    """What a completed TLS handshake told us (the certificate is unverified)."""

    version: str
    cipher: str
    alpn: str | None
    cert_der: bytes | None


@dataclass(frozen=True, slots=True)
class Liveness:
    """A bare TCP connect: did anything accept, and how fast."""

    alive: bool
    end: End
    elapsed_s: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StreamResult:
    """One request/reply exchange over TCP or TLS.

    Attributes:
        connected: a TCP connection (and the TLS handshake, when asked) completed.
        tls: handshake details when TLS was used and completed.
        sent: every byte we sent, in order.
        received: every byte read (at most ``Limits.max_bytes``).
        end: why reading stopped.
        error: a one-line, inert description when ``end`` is a failure.
        elapsed_s: wall time from connect start to the end.
        first_byte_s: time from the first send to the first received byte, if any.
    """

    connected: bool
    tls: TlsDetails | None
    sent: bytes
    received: bytes
    end: End
    error: str | None
    elapsed_s: float
    first_byte_s: float | None = None


@dataclass(frozen=True, slots=True)
class WsResult:
    """One WebSocket exchange: the upgrade, and the messages the server sent back."""

    connected: bool
    upgraded: bool
    tls: TlsDetails | None
    sent: tuple[str | bytes, ...]
    received: tuple[str | bytes, ...]
    received_bytes: int
    end: End
    error: str | None
    elapsed_s: float
    status: int | None = None


@dataclass(frozen=True, slots=True)
class HttpResult:
    """One HTTP request: status, a few headers, and a body cut at the byte budget."""

    connected: bool
    status: int | None
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool
    end: End
    error: str | None
    elapsed_s: float
    tls: TlsDetails | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


_MAX_HEADERS = 64
_MAX_HEADER_CHARS = 512


def no_verify_context() -> ssl.SSLContext:
    """A client TLS context that verifies nothing: probing must reach self-signed pools.

    TLS 1.0-1.3 are allowed (old pool software exists), and OpenSSL's security level is
    lowered so small keys do not abort the handshake before we can see the certificate.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:  # pragma: no cover - depends on the OpenSSL build
        pass
    return ctx


_CTX: ssl.SSLContext | None = None


def _context() -> ssl.SSLContext:
    """One shared no-verify context (creating one per attempt costs milliseconds)."""
    global _CTX
    if _CTX is None:
        _CTX = no_verify_context()
    return _CTX


def _sni(server_name: str | None) -> str | None:
    """SNI for a host name; None for addresses (RFC 6066 forbids literal IPs in SNI)."""
    if not server_name:
        return None
    try:
        ipaddress.ip_address(server_name.strip("[]"))
    except ValueError:
        return server_name
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return clean(f"{type(exc).__name__}: {text}", _ERROR_CHARS)


def _classify(exc: BaseException) -> End:
    """Map an I/O exception to an :class:`End` (order matters: subclasses first)."""
    if isinstance(exc, TimeoutError):
        return End.TIMEOUT
    if isinstance(exc, LimitExceededError):
        return End.LIMIT
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return End.TLS_ERROR
    if isinstance(exc, ConnectionRefusedError):
        return End.REFUSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return End.RESET
    if isinstance(exc, asyncio.IncompleteReadError):
        return End.EOF
    if isinstance(exc, socket.gaierror):
        return End.UNREACHABLE
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return End.UNREACHABLE
    return End.ERROR


_UNREACHABLE_ERRNOS = {101, 113, 112, 65, 64, 51}  # ENETUNREACH, EHOSTUNREACH, EHOSTDOWN (Linux, BSD)


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost cause of a wrapped exception (httpx wraps httpcore wraps OSError)."""
    seen = 0
    while seen < 8:
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
        seen += 1
    return exc


def _tls_details(writer_or_transport: Any) -> TlsDetails | None:
    ssl_object = writer_or_transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    try:
        der = ssl_object.getpeercert(binary_form=True)
    except (ValueError, ssl.SSLError):
        der = None
    cipher = ssl_object.cipher()
    return TlsDetails(
        version=str(ssl_object.version() or ""),
        cipher=str(cipher[0]) if cipher else "",
        alpn=ssl_object.selected_alpn_protocol(),
        cert_der=bytes(der) if der else None,
    )


def _abort(writer: asyncio.StreamWriter | None) -> None:
    """Drop the connection now: no graceful TLS shutdown a hostile peer could stall."""
    if writer is not None:
        writer.transport.abort()


async def resolve(host: str, port: int, *, within: float) -> tuple[str, ...]:
    """Every address ``host`` resolves to for TCP (a literal address is returned as is).

    Raises:
        OSError: the name does not resolve (``socket.gaierror``).
        TimeoutError: the resolver did not answer within ``within`` seconds.
    """
    literal = host.strip("[]").split("%", 1)[0]
    try:
        return (str(ipaddress.ip_address(literal)),)
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(within):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return tuple(seen)


async def tcp_alive(address: str, port: int, *, connect_timeout: float) -> Liveness:
    """Connect and immediately drop: is anything listening at ``address:port``?"""
    start = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(connect_timeout):
            _reader, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return Liveness(False, End.CONNECT_TIMEOUT, time.monotonic() - start, "no answer to connect")
    except OSError as exc:
        return Liveness(False, _classify(exc), time.monotonic() - start, _describe(exc))
    finally:
        _abort(writer)
    return Liveness(True, End.DONE, time.monotonic() - start)


async def tls_handshake(
    address: str, port: int, *, server_name: str | None = None, limits: Limits = Limits()
) -> StreamResult:
    """Open a connection and complete a TLS handshake only (cheap "does this port speak TLS?")."""
    return await stream_exchange(
        address, port, b"", lambda _data: STOP, tls=True, server_name=server_name, limits=limits
    )


async def stream_exchange(
    address: str,
    port: int,
    request: bytes,
    on_data: Callable[[bytes], Next],
    *,
    tls: bool = False,
    server_name: str | None = None,
    limits: Limits = Limits(),
    quiet_s: float | None = None,
) -> StreamResult:
    """Send ``request`` over a fresh TCP (or TLS) connection and read until told to stop.

    Args:
        address: the resolved, scope-checked address to connect to.
        port: TCP port.
        request: bytes to send first (may be empty to read a banner, or to handshake only:
            with ``on_data`` returning ``STOP`` for ``b""`` nothing is read).
        on_data: called with ``b""`` once after connecting, then with every chunk read;
            answers what to send next and whether to stop. Exceptions it raises that are
            :class:`~minerscope.errors.MinerscopeError` (a framing limit) end the
            exchange with ``End.LIMIT``/``End.PROTOCOL_ERROR``; others propagate.
        tls: wrap the connection in TLS (no verification; the certificate is kept).
        server_name: host name for SNI (ignored for literal addresses).
        limits: deadline, connect timeout and byte budget.
        quiet_s: once some bytes arrived and ``on_data`` is not awaiting a reply, this
            much silence ends the exchange (``End.QUIET``); None waits for the deadline.

    Returns:
        A :class:`StreamResult`; peer misbehaviour never raises.
    """
    start = time.monotonic()
    sent = bytearray()
    received = bytearray()
    details: TlsDetails | None = None
    connected = False
    first_byte: float | None = None
    sent_at: float | None = None
    writer: asyncio.StreamWriter | None = None
    end = End.EOF
    error: str | None = None
    try:
        async with asyncio.timeout(limits.deadline):
            try:
                async with asyncio.timeout(limits.connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        address, port, limit=max(limits.chunk, 1024)
                    )
                    if tls:
                        # (past this point a timeout is the handshake's, not the connect's)
                        # Upgrade in place rather than open_connection(ssl=...): a handshake
                        # cut short there closes the TLS transport *gracefully*, leaving the
                        # socket open until a peer that never answers close_notify times out
                        # (30 s), after our loop may be gone. Here the plain transport is ours
                        # to abort in ``finally``.
                        await writer.start_tls(
                            _context(),
                            server_hostname=_sni(server_name) or "",
                            ssl_handshake_timeout=limits.connect_timeout,
                        )
            except TimeoutError:
                if writer is None:
                    end, error = End.CONNECT_TIMEOUT, f"no connection within {limits.connect_timeout:g}s"
                else:  # TCP was accepted; the peer never finished the TLS handshake
                    end = End.TLS_ERROR
                    error = (
                        f"connected, but no answer to the TLS handshake within {limits.connect_timeout:g}s"
                    )
                raise _Stop from None
            connected = True
            details = _tls_details(writer) if tls else None
            step = on_data(b"")
            outgoing = request + step.send
            if outgoing:
                writer.write(outgoing)
                sent += outgoing
                sent_at = time.monotonic()
                await writer.drain()
            if step.done:
                end = End.DONE
                raise _Stop
            awaiting = True
            while True:
                room = limits.max_bytes - len(received)
                if room <= 0:
                    end = End.LIMIT
                    error = f"peer exceeded max_bytes={limits.max_bytes}"
                    break
                if quiet_s is not None and received and not awaiting:
                    try:
                        async with asyncio.timeout(quiet_s):
                            chunk = await reader.read(min(limits.chunk, room))
                    except TimeoutError:
                        end = End.QUIET
                        break
                else:
                    chunk = await reader.read(min(limits.chunk, room))
                if not chunk:
                    end = End.EOF
                    break
                if first_byte is None:
                    first_byte = time.monotonic() - (sent_at if sent_at is not None else start)
                received += chunk
                step = on_data(chunk)
                awaiting = step.awaiting
                if step.send:
                    writer.write(step.send)
                    sent += step.send
                    await writer.drain()
                if step.done:
                    end = End.DONE
                    break
    except _Stop:
        pass
    except TimeoutError:
        end, error = End.TIMEOUT, f"deadline of {limits.deadline:g}s passed"
    except LimitExceededError as exc:
        end, error = End.LIMIT, _describe(exc)
    except MinerscopeError as exc:
        end, error = End.PROTOCOL_ERROR, _describe(exc)
    except (OSError, ssl.SSLError, EOFError) as exc:
        end, error = _classify(exc), _describe(exc)
    finally:
        _abort(writer)
    if tls and not connected and end in (End.EOF, End.RESET, End.ERROR):
        end = End.TLS_ERROR if end is not End.RESET else end
    return StreamResult(
        connected=connected,
        tls=details,
        sent=bytes(sent),
        received=bytes(received),
        end=end,
        error=error,
        elapsed_s=time.monotonic() - start,
        first_byte_s=first_byte,
    )


class _Stop(Exception):
    """Internal: leave the exchange early with ``end``/``error`` already set."""


def _host_for_url(address: str) -> str:
    return f"[{address}]" if ":" in address else address


async def ws_exchange(
    address: str,
    port: int,
    messages: Sequence[str | bytes],
    on_message: Callable[[str | bytes], Next],
    *,
    tls: bool = False,
    server_name: str | None = None,
    path: str = "/",
    limits: Limits = Limits(),
    max_messages: int = 16,
    subprotocols: Sequence[str] = (),
    origin: str | None = None,
    quiet_s: float | None = None,
) -> WsResult:
    """Upgrade to WebSocket, send ``messages``, and read messages until told to stop.

    Each incoming message is capped at ``limits.max_bytes`` by the WebSocket layer before
    its payload is read (a frame declaring a huge length is refused, not buffered), and
    at most ``max_messages`` are read. ``on_message`` returns :class:`Next` with
    ``send`` as UTF-8 text to send as a text frame; ``quiet_s`` works as in
    :func:`stream_exchange`.

    Returns:
        A :class:`WsResult`; peer misbehaviour never raises.
    """
    from websockets.exceptions import (
        ConnectionClosed,
        InvalidHandshake,
        InvalidStatus,
        PayloadTooBig,
        ProtocolError,
    )

    start = time.monotonic()
    scheme = "wss" if tls else "ws"
    host_header = server_name or address
    uri = f"{scheme}://{_host_for_url(host_header)}:{port}{path if path.startswith('/') else '/' + path}"
    sent: list[str | bytes] = []
    received: list[str | bytes] = []
    received_bytes = 0
    connected = upgraded = False
    details: TlsDetails | None = None
    status: int | None = None
    end = End.EOF
    error: str | None = None
    extra: dict[str, Any] = {}
    if tls:
        extra["ssl"] = _context()
        extra["server_hostname"] = _sni(server_name) or ""
        extra["ssl_handshake_timeout"] = limits.connect_timeout
    opened: list[asyncio.Transport] = []
    opening = True  # until the upgrade completes, websockets' open_timeout applies
    try:
        async with asyncio.timeout(limits.deadline):
            ws = await ws_connect(
                uri,
                host=address,
                port=port,
                proxy=None,
                open_timeout=limits.connect_timeout,
                close_timeout=0.05,
                ping_interval=None,
                max_size=limits.max_bytes,
                max_queue=4,
                compression=None,
                subprotocols=[websockets.Subprotocol(s) for s in subprotocols] or None,
                origin=websockets.Origin(origin) if origin else None,
                create_connection=_tracked_connection(opened),
                **extra,
            )
            connected = upgraded = True
            opening = False
            status = 101
            details = _tls_details(ws.transport) if tls else None
            try:
                for message in messages:
                    await ws.send(message)
                    sent.append(message)
                awaiting = True
                while len(received) < max_messages:
                    if received_bytes >= limits.max_bytes:
                        end, error = End.LIMIT, f"peer exceeded max_bytes={limits.max_bytes}"
                        break
                    if quiet_s is not None and received and not awaiting:
                        try:
                            async with asyncio.timeout(quiet_s):
                                incoming = await ws.recv()
                        except TimeoutError:
                            end = End.QUIET
                            break
                    else:
                        incoming = await ws.recv()
                    received.append(incoming)
                    received_bytes += len(incoming)
                    step = on_message(incoming)
                    awaiting = step.awaiting
                    if step.send:
                        text = step.send.decode("utf-8", errors="replace")
                        await ws.send(text)
                        sent.append(text)
                    if step.done:
                        end = End.DONE
                        break
                else:
                    end, error = End.LIMIT, f"peer exceeded max_messages={max_messages}"
            finally:
                ws.transport.abort()
    except TimeoutError:
        applied = min(limits.connect_timeout, limits.deadline) if opening else limits.deadline
        what = "no WebSocket upgrade within" if opening else "deadline of"
        end, error = End.TIMEOUT, f"{what} {applied:g}s" + ("" if opening else " passed")
    except InvalidStatus as exc:
        connected = True
        status = exc.response.status_code
        end, error = End.PROTOCOL_ERROR, f"no WebSocket upgrade: HTTP {status}"
    except PayloadTooBig as exc:
        end, error = End.LIMIT, _describe(exc)
    except ConnectionClosed as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, PayloadTooBig) or (exc.sent is not None and exc.sent.code == 1009):
            end, error = End.LIMIT, _describe(cause or exc)
        elif isinstance(cause, ProtocolError):
            end, error = End.PROTOCOL_ERROR, _describe(cause)
        elif exc.rcvd is not None:
            end, error = End.EOF, None
        else:
            end, error = End.RESET if cause is not None else End.EOF, _describe(exc)
    except (InvalidHandshake, ProtocolError) as exc:
        connected = True
        end, error = End.PROTOCOL_ERROR, _describe(exc)
    except LimitExceededError as exc:
        end, error = End.LIMIT, _describe(exc)
    except MinerscopeError as exc:
        end, error = End.PROTOCOL_ERROR, _describe(exc)
    except (OSError, ssl.SSLError, EOFError) as exc:
        end, error = _classify(exc), _describe(exc)
    finally:
        for transport in opened:  # whatever ended the exchange, the socket closes now
            transport.abort()
    return WsResult(
        connected=connected,
        upgraded=upgraded,
        tls=details,
        sent=tuple(sent),
        received=tuple(received),
        received_bytes=received_bytes,
        end=end,
        error=error,
        elapsed_s=time.monotonic() - start,
        status=status,
    )


def _tracked_connection(opened: list[asyncio.Transport]) -> type[ClientConnection]:
    """websockets' client connection, appending its transport to ``opened`` once made.

    Cancelled after a TLS handshake completed but before ``connect`` returned (our
    deadline, or the runner cancelling an attempt once another dialect found the pool),
    asyncio *closes* the TLS transport: a graceful shutdown that keeps the socket open
    until the peer answers close_notify or 30 s pass, after the loop may be gone (a peer
    flooding session tickets never answers; CI saw the socket reported unclosed). The
    transport reaches the connection before ``connect`` can be cancelled in that state
    (asyncio calls ``connection_made`` before it wakes the waiter; a cancel during the
    handshake itself is aborted by asyncio), so aborting what was recorded here closes
    the socket whatever happened.
    """

    class TrackedConnection(ClientConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            opened.append(cast(asyncio.Transport, transport))
            super().connection_made(transport)

    return TrackedConnection


class _TrackingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's AnyIO backend, remembering every TCP stream it opens.

    httpcore loses the raw stream when a task is cancelled during the TLS handshake (it
    closes it only on ``Exception``), leaking a socket each time the runner cancels an
    HTTPS attempt after another dialect already found the pool. Closing every stream we
    opened when the request ends, however it ends, makes the leak impossible.
    """

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self.streams: list[httpcore.AsyncNetworkStream] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        self.streams.append(stream)
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OSError("the prober does not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def close_all(self) -> None:
        """Close every stream this backend opened (closing twice is harmless)."""
        streams, self.streams = self.streams, []
        for stream in streams:
            with contextlib.suppress(Exception):
                await stream.aclose()


class _ProbeTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a :class:`_TrackingBackend`: one connection, no retries."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        super().__init__(verify=ctx, trust_env=False, retries=0)
        self.backend = _TrackingBackend()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ctx,
            max_connections=1,
            max_keepalive_connections=0,
            retries=0,
            network_backend=self.backend,
        )


async def http_request(
    address: str,
    port: int,
    *,
    method: str = "POST",
    path: str = "/",
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    auth: tuple[str, str] | None = None,
    tls: bool = False,
    server_name: str | None = None,
    limits: Limits = Limits(),
) -> HttpResult:
    """One HTTP(S) request to ``address:port``; the body is read up to ``limits.max_bytes``.

    Redirects are not followed, proxies and ``.netrc`` are ignored (``trust_env=False``),
    certificates are not verified, SNI and ``Host`` carry ``server_name`` when given.

    Returns:
        An :class:`HttpResult`; peer misbehaviour never raises.
    """
    start = time.monotonic()
    scheme = "https" if tls else "http"
    url = f"{scheme}://{_host_for_url(address)}:{port}{path if path.startswith('/') else '/' + path}"
    request_headers = list(headers)
    if server_name:
        request_headers.append(("Host", f"{_host_for_url(server_name)}:{port}"))
    extensions: dict[str, Any] = {}
    sni = _sni(server_name)
    if tls and sni:
        extensions["sni_hostname"] = sni
    timeout = httpx.Timeout(limits.deadline, connect=limits.connect_timeout)
    status: int | None = None
    reason = ""
    response_headers: tuple[tuple[str, str], ...] = ()
    body_out = bytearray()
    truncated = False
    connected = False
    details: TlsDetails | None = None
    end = End.EOF
    error: str | None = None
    http_transport = _ProbeTransport(_context())
    try:
        async with (
            asyncio.timeout(limits.deadline),
            httpx.AsyncClient(
                transport=http_transport,
                trust_env=False,
                follow_redirects=False,
                timeout=timeout,
                auth=httpx.BasicAuth(*auth) if auth else None,
            ) as client,
        ):
            request = client.build_request(
                method,
                url,
                content=body or None,
                headers=request_headers,
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            try:
                connected = True
                status = response.status_code
                reason = clean(response.reason_phrase, 80)
                response_headers = tuple(
                    (clean(k, 64), clean(v, _MAX_HEADER_CHARS))
                    for k, v in list(response.headers.multi_items())[:_MAX_HEADERS]
                )
                stream = response.extensions.get("network_stream")
                if tls and stream is not None:
                    details = _tls_details(stream)
                async for chunk in response.aiter_raw(limits.chunk):
                    room = limits.max_bytes - len(body_out)
                    body_out += chunk[:room]
                    if len(chunk) > room:
                        truncated = True
                        break
                end = End.LIMIT if truncated else End.DONE
                if truncated:
                    error = f"body exceeded max_bytes={limits.max_bytes}"
            finally:
                await response.aclose()
    except TimeoutError:
        end, error = End.TIMEOUT, f"deadline of {limits.deadline:g}s passed"
    except httpx.ConnectTimeout:
        end, error = End.CONNECT_TIMEOUT, f"no connection within {limits.connect_timeout:g}s"
    except httpx.TimeoutException:
        end, error = End.TIMEOUT, f"deadline of {limits.deadline:g}s passed"
    except httpx.ConnectError as exc:
        end = _classify(_root_cause(exc))
        if end is End.ERROR and "ssl" in str(exc).lower():
            end = End.TLS_ERROR
        error = _describe(exc)
    except httpx.RemoteProtocolError as exc:
        connected = True
        end, error = (End.EOF if status is None else End.PROTOCOL_ERROR), _describe(exc)
        if status is None and "buffer too long" in str(exc):  # h11's limit on an unfinished head
            end = End.PROTOCOL_ERROR
            error = "the reply's HTTP head never ended: bytes kept coming, no blank line after the headers"
    except (httpx.ReadError, httpx.WriteError) as exc:
        end = _classify(_root_cause(exc))
        end, error = (End.RESET if end is End.ERROR else end), _describe(_root_cause(exc))
    except httpx.HTTPError as exc:
        end, error = End.PROTOCOL_ERROR, _describe(exc)
    except (OSError, ssl.SSLError) as exc:
        end, error = _classify(exc), _describe(exc)
    finally:
        await http_transport.backend.close_all()
    return HttpResult(
        connected=connected,
        status=status,
        reason=reason,
        headers=response_headers,
        body=bytes(body_out),
        truncated=truncated,
        end=end,
        error=error,
        elapsed_s=time.monotonic() - start,
        tls=details,
    )
