"""The active prober: is this host:port a mining pool? Ask it in every dialect, safely.

For one target the engine does, in order:

1. **Scope** (:mod:`minerscope.probe.scope`): a literal address is checked before
   anything else; a host name is resolved and *every* address must be in scope. Out of
   scope raises :class:`~minerscope.errors.ScopeError` and nothing is sent. Connections
   then go to the checked address, never to the name again.
2. **Liveness**: one bare TCP connect. Refused, unreachable or silent -> verdict ``none``
   at once, without trying a dozen dialects against a dead port.
3. **TLS sniff**: one handshake-only connection. If it completes, line dialects run over
   TLS, WebSocket over ``wss`` and HTTP over ``https``; the certificate is kept as
   evidence (:mod:`minerscope.probe.tlsinfo`).
4. **Dialects**: each dialect's requests on a *fresh* connection (pools often hang up on
   an unknown method), read until the reply with the awaited JSON-RPC id arrives (pushes
   such as ``mining.set_difficulty`` before it are kept), the byte budget is spent, the
   peer goes quiet or the deadline passes. A dialect that sees anything pool-like is asked
   the **control** request (an unknown method on the same terms) on another fresh
   connection, so echo servers and answer-everything JSON-RPC servers are not pools.
5. **Stop early** once a dialect is confident (``stop_confidence``), unless a full sweep
   was asked for; the verdict is built by :meth:`Verdict.from_attempts`.

All of it is bounded: per-attempt deadline and byte budget (in the transport), a total
deadline per target, a global connection limit, a per-host limit and a token-bucket rate
limit, shared by every target of a :func:`probe_many` run. Each finished attempt is
reported through ``on_attempt`` as it happens, so a UI can show progress.

The judgement is entirely the dialects' (sans-IO); this module only schedules I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from minerscope.errors import InputError, LimitExceededError, MinerscopeError
from minerscope.probe import transport as io
from minerscope.probe.dialects.base import (
    Dialect,
    Framing,
    HttpReply,
    ProbeContext,
    Reply,
    Request,
)
from minerscope.probe.framing import LineBuffer, decode_json_object
from minerscope.probe.scope import LOOPBACK, Scope, parse_address
from minerscope.probe.target import Target, format_target, parse_target
from minerscope.probe.tlsinfo import parse_certificate
from minerscope.probe.verdict import (
    LIVENESS,
    DialectResult,
    Outcome,
    ProbeAttempt,
    Transport,
    Verdict,
    coin_of,
    excerpt,
)

__all__ = [
    "AttemptCallback",
    "ErrorCallback",
    "ProbeOptions",
    "Prober",
    "Target",
    "available_dialects",
    "format_target",
    "parse_target",
    "probe_many",
    "probe_many_list",
    "probe_target",
]

AttemptCallback = Callable[[Target, ProbeAttempt], None]
ErrorCallback = Callable[[Target, MinerscopeError], None]

TLS_SNIFF = "tls"
"""The ``dialect`` name of the handshake-only TLS attempt."""
CONTROL_SUFFIX = ":control"
"""Appended to a dialect's name for its control attempt (result None: it is evidence)."""


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """Every knob of the prober, with defaults safe for probing strangers.

    Attributes:
        connect_timeout: seconds for TCP connect (and the TLS handshake).
        attempt_deadline: seconds for one whole attempt (connect + exchange).
        total_deadline: seconds for one target's whole sweep.
        quiet_s: after some reply bytes, this much silence ends a read that waits for
            no particular reply id (pushes, WebSocket, raw binary).
        max_bytes: bytes read per attempt (a security limit).
        max_line_bytes: longest line accepted in line framing (a security limit).
        concurrency: connections in flight across all targets.
        per_host: connections in flight to one address.
        rate: new connections per second (token bucket; 0 disables).
        burst: token-bucket size.
        dialects: dialect names to try (None: all registered, most likely first).
        full_sweep: keep trying after a confident result.
        stop_confidence: a pool result at least this confident ends the sweep.
        control: run the control request after a pool-like reply (turning it off
            makes echo/generic JSON-RPC servers look like pools; for experiments only).
        scope: where probes may go; the library default is loopback only, callers
            probing real hosts pass :meth:`Scope.explicit_targets` or a CIDR scope.
        agent/wallet/worker/password: the identity presented ("" = each dialect's
            default; a ``worker`` also becomes HTTP basic-auth user for daemons).
    """

    connect_timeout: float = 3.0
    attempt_deadline: float = 5.0
    total_deadline: float = 45.0
    quiet_s: float = 0.6
    max_bytes: int = 64 * 1024
    max_line_bytes: int = 16 * 1024
    concurrency: int = 64
    per_host: int = 4
    rate: float = 100.0
    burst: int = 32
    dialects: tuple[str, ...] | None = None
    full_sweep: bool = False
    stop_confidence: float = 0.9
    control: bool = True
    scope: Scope = LOOPBACK
    agent: str = ""
    wallet: str = ""
    worker: str = ""
    password: str = "x"

    def limits(self) -> io.Limits:
        """The transport limits of one attempt."""
        return io.Limits(
            connect_timeout=min(self.connect_timeout, self.attempt_deadline),
            deadline=self.attempt_deadline,
            max_bytes=self.max_bytes,
        )


def available_dialects() -> dict[str, Dialect]:
    """The registered dialects by name (imported lazily: the registry is another module's)."""
    module = importlib.import_module("minerscope.probe.dialects")
    registry: Any = getattr(module, "DIALECTS", None)
    if registry is None:
        return {}
    if isinstance(registry, dict):
        return {str(k): v for k, v in registry.items()}
    return {d.name: d for d in registry}


class TokenBucket:
    """Connections per second with a burst allowance (``rate`` <= 0: unlimited)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = max(1.0, float(burst))
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        """Wait for one token."""
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self.tokens) / self.rate)


class Limiter:
    """Global, per-host and rate limits shared by every probe of one run."""

    def __init__(self, options: ProbeOptions) -> None:
        self.global_sem = asyncio.Semaphore(max(1, options.concurrency))
        self.per_host = max(1, options.per_host)
        self.hosts: dict[str, asyncio.Semaphore] = {}
        self.bucket = TokenBucket(options.rate, options.burst)

    @contextlib.asynccontextmanager
    async def slot(self, address: str) -> AsyncIterator[None]:
        """Hold one connection slot to ``address`` (global + per-host + a rate token)."""
        host_sem = self.hosts.get(address)
        if host_sem is None:
            host_sem = self.hosts[address] = asyncio.Semaphore(self.per_host)
        async with host_sem, self.global_sem:
            await self.bucket.take()
            yield


# --------------------------------------------------------------------------------------
# Conversations: drive a dialect's requests over one connection (sans-IO bookkeeping)


class _Conversation:
    """Send a dialect's requests in order; collect replies; say when we have enough."""

    def __init__(
        self,
        dialect: Dialect,
        requests: Sequence[Request],
        *,
        max_line_bytes: int,
        max_bytes: int,
        early_stop: bool,
    ) -> None:
        self.dialect = dialect
        self.requests = list(requests)
        self.index = 0
        self.replies: list[bytes] = []
        self.lines = LineBuffer(max_line_bytes=max_line_bytes, max_total_bytes=max(max_bytes, 1))
        self.early_stop = early_stop
        self.framing = dialect.framing

    @property
    def awaited_id(self) -> int | str | None:
        return self.requests[self.index].reply_id if self.index < len(self.requests) else None

    def first(self) -> bytes:
        return self.requests[0].data if self.requests else b""

    def _matches(self, message: bytes) -> bool:
        awaited = self.awaited_id
        if awaited is None:
            return False
        try:
            obj = decode_json_object(message)
        except LimitExceededError:
            return False
        return obj is not None and obj.get("id") == awaited

    def _enough(self) -> bool:
        """A reply-id-less request: stop once the dialect already sees something."""
        if not self.early_stop or not self.replies:
            return False
        try:
            result = self.dialect.classify(self.replies)
        except MinerscopeError:
            return False
        return result.outcome is not Outcome.NONE

    def on_message(self, message: bytes) -> io.Next:
        """One complete reply unit (a line, a WS message, a raw chunk)."""
        self.replies.append(message)
        if self.awaited_id is not None:
            if not self._matches(message):
                return io.AWAIT
            self.index += 1
            if self.index < len(self.requests):
                return io.Next(send=self.requests[self.index].data, awaiting=self.awaited_id is not None)
            return io.STOP
        return io.STOP if self._enough() else io.CONTINUE

    def on_data(self, chunk: bytes) -> io.Next:
        """A chunk from a byte stream (line or raw framing)."""
        if not chunk:
            return io.CONTINUE
        if self.framing is Framing.RAW:
            return self.on_message(chunk)
        send = bytearray()
        for line in self.lines.feed(chunk):
            step = self.on_message(line)
            send += step.send
            if step.done:
                return io.Next(send=bytes(send), done=True)
        return io.Next(send=bytes(send), awaiting=self.awaited_id is not None)

    def finish(self) -> int:
        """The stream ended: keep an unterminated tail as a last reply; returns its length."""
        if self.framing is Framing.LINE:
            with contextlib.suppress(LimitExceededError):
                tail = self.lines.flush()
                if tail.strip():
                    self.replies.append(tail)
                    return len(tail)
        return 0


@dataclass(slots=True)
class _Exchange:
    """What one connection produced, whatever its framing."""

    transport: Transport
    sent: bytes
    received: bytes
    replies: list[Reply]
    elapsed_s: float
    connected: bool
    error: str | None
    tls: io.TlsDetails | None = None
    http_status: int | None = None
    reset_unanswered: bool = False
    """The peer reset the connection before sending a byte (accept-then-RST)."""
    incomplete: int = 0
    """Bytes of a reply line still unterminated when the deadline ended the exchange."""


@dataclass(frozen=True, slots=True)
class _Planned:
    """One dialect to try, on the transport the TLS sniff chose (WS: paths in order)."""

    dialect: Dialect
    transport: Transport
    paths: tuple[str, ...] = ("/",)


def _main_result(attempts: Sequence[ProbeAttempt]) -> DialectResult | None:
    """The classified result among one dialect's attempts (controls carry none)."""
    for attempt in attempts:
        if attempt.result is not None:
            return attempt.result
    return None


_FAILED_ENDS = {
    io.End.TIMEOUT,
    io.End.CONNECT_TIMEOUT,
    io.End.REFUSED,
    io.End.UNREACHABLE,
    io.End.RESET,
    io.End.LIMIT,
    io.End.TLS_ERROR,
    io.End.PROTOCOL_ERROR,
    io.End.ERROR,
}


def _error_of(end: io.End, error: str | None) -> str | None:
    if end in _FAILED_ENDS:
        return f"{end}: {error}" if error else str(end)
    return None


# --------------------------------------------------------------------------------------
# The engine


@dataclass(slots=True)
class _TargetState:
    host: str
    port: int
    address: str
    server_name: str | None
    attempts: list[ProbeAttempt] = field(default_factory=list)
    tls_ok: bool = False
    tls_meta: dict[str, Any] | None = None
    connections: int = 0
    """Connections made after liveness whose end tells about the peer (WebSocket ones aside:
    the library reports a reset during the upgrade as a malformed HTTP response)."""
    resets: int = 0
    """Of those, the ones the peer reset before sending a byte."""

    def connected(self, reset_unanswered: bool) -> None:
        """Count one connection made after liveness, and whether the peer reset it unanswered."""
        self.connections += 1
        self.resets += reset_unanswered

    def reset_everything(self) -> str | None:
        """Why the target could not be checked although it accepted: it reset every
        connection before a byte (a firewall's or a dead service's accept-then-RST)."""
        if not self.connections or self.resets < self.connections:
            return None
        if any(a.result is not None and a.result.outcome is not Outcome.NONE for a in self.attempts):
            return None
        return f"reset: accepted, then reset all {self.connections} connections before a byte"


def _reset_unanswered(result: io.StreamResult) -> bool:
    """Whether a stream exchange ended in the peer's reset before it sent a byte."""
    return result.end is io.End.RESET and not result.received


class Prober:
    """A probing run: options plus the limits shared by all its targets.

    Most callers use :func:`probe_target` or :func:`probe_many`; a long-lived caller
    (the workstation) can keep one ``Prober`` so that its limits span every probe.
    """

    def __init__(
        self,
        options: ProbeOptions | None = None,
        *,
        on_attempt: AttemptCallback | None = None,
    ) -> None:
        self.options = options or ProbeOptions()
        self.on_attempt = on_attempt
        self.limiter = Limiter(self.options)
        self._dialects = self._select_dialects()

    def _select_dialects(self) -> list[Dialect]:
        registry = available_dialects()
        names = self.options.dialects
        if names is None:
            return list(registry.values())
        unknown = [n for n in names if n not in registry]
        if unknown:
            known = ", ".join(sorted(registry)) or "none registered"
            raise InputError(f"--dialect {unknown[0]!r}: unknown dialect (known: {known})")
        return [registry[n] for n in names]

    # ---- scope -----------------------------------------------------------------------

    async def check_scope(self, host: str, port: int) -> tuple[str, ...]:
        """The in-scope addresses of ``host`` (literal: checked without any I/O).

        Raises:
            ScopeError: an address is out of scope (nothing has been sent).
            OSError/TimeoutError: the name does not resolve.
        """
        scope = self.options.scope
        literal = parse_address(host)
        if literal is not None:
            return scope.check(host, [literal])
        addresses = await io.resolve(host, port, within=self.options.connect_timeout)
        return scope.check(host, addresses)

    # ---- one target ------------------------------------------------------------------

    async def probe(self, host: str, port: int) -> Verdict:
        """Probe one target. See the module docstring for the steps.

        Raises:
            ScopeError: the target (or an address its name resolves to) is out of scope.
        """
        if not 0 < port < 65536:
            raise InputError(f"target {format_target(host, port)}: port outside 1-65535")
        target = format_target(host, port)
        start = time.monotonic()
        try:
            addresses = await self.check_scope(host, port)
        except (OSError, TimeoutError) as exc:
            attempt = ProbeAttempt(
                LIVENESS,
                Transport.TCP,
                b"",
                b"",
                time.monotonic() - start,
                None,
                f"unreachable: name did not resolve ({type(exc).__name__})",
            )
            self._report((host, port), attempt)
            return Verdict.from_attempts(target, host, port, [attempt])
        state = _TargetState(
            host=host,
            port=port,
            address=addresses[0],
            server_name=None if parse_address(host) is not None else host,
        )
        try:
            async with asyncio.timeout(self.options.total_deadline):
                await self._sweep(state)
        except TimeoutError:
            state.attempts.append(
                ProbeAttempt(
                    "sweep",
                    Transport.TCP,
                    b"",
                    b"",
                    time.monotonic() - start,
                    None,
                    f"timeout: total deadline of {self.options.total_deadline:g}s passed",
                )
            )
        verdict = Verdict.from_attempts(
            target, host, port, state.attempts, tls=state.tls_meta, error=state.reset_everything()
        )
        return _prefer_own_family(verdict, {d.name: d for d in self._dialects})

    def _report(self, target: Target, attempt: ProbeAttempt) -> None:
        if self.on_attempt is not None:
            self.on_attempt(target, attempt)

    def _record(self, state: _TargetState, attempt: ProbeAttempt) -> None:
        state.attempts.append(attempt)
        self._report((state.host, state.port), attempt)

    async def _sweep(self, state: _TargetState) -> None:
        opts = self.options
        async with self.limiter.slot(state.address):
            alive = await io.tcp_alive(state.address, state.port, connect_timeout=opts.connect_timeout)
        self._record(
            state,
            ProbeAttempt(
                LIVENESS,
                Transport.TCP,
                b"",
                b"",
                alive.elapsed_s,
                None,
                None if alive.alive else _error_of(alive.end, alive.error) or str(alive.end),
            ),
        )
        if not alive.alive:
            return
        await self._sniff_tls(state)
        plan = self._plan(state)
        await self._run_plan(state, plan)

    async def _sniff_tls(self, state: _TargetState) -> None:
        opts = self.options
        limits = replace(opts.limits(), deadline=min(opts.attempt_deadline, opts.connect_timeout + 0.5))
        async with self.limiter.slot(state.address):
            result = await io.tls_handshake(
                state.address, state.port, server_name=state.server_name, limits=limits
            )
        ok = result.connected and result.tls is not None
        state.tls_ok = ok
        state.connected(_reset_unanswered(result))
        if ok and result.tls is not None:
            meta: dict[str, Any] = {
                "version": result.tls.version,
                "cipher": result.tls.cipher,
                "alpn": result.tls.alpn,
            }
            if result.tls.cert_der:
                try:
                    meta["certificate"] = parse_certificate(result.tls.cert_der).as_dict()
                except MinerscopeError as exc:
                    meta["certificate_error"] = str(exc)
            state.tls_meta = meta
        self._record(
            state,
            ProbeAttempt(
                TLS_SNIFF,
                Transport.TLS,
                b"",
                excerpt(result.received),
                result.elapsed_s,
                None,
                None if ok else f"no TLS: {_error_of(result.end, result.error) or result.end}",
            ),
        )

    def _plan(self, state: _TargetState) -> list[_Planned]:
        """One item per dialect (on the transport the TLS sniff chose), dialects serving
        this port first, then registry order."""
        dialects = sorted(self._dialects, key=lambda d: 0 if state.port in d.default_ports else 1)
        plan: list[_Planned] = []
        for dialect in dialects:
            offered = tuple(dialect.transports)
            if dialect.framing is Framing.WS:
                choice = Transport.WSS if state.tls_ok else Transport.WS
            elif dialect.framing is Framing.HTTP:
                choice = Transport.HTTPS if state.tls_ok else Transport.HTTP
            elif dialect.framing is Framing.RAW and not state.tls_ok and Transport.RAW in offered:
                choice = Transport.RAW
            else:
                choice = Transport.TLS if state.tls_ok else Transport.TCP
            if choice in offered:
                plan.append(_Planned(dialect, choice, tuple(dialect.ws_paths or ("/",))))
        return plan

    async def _run_plan(self, state: _TargetState, plan: list[_Planned]) -> None:
        """Run the plan with at most ``per_host`` attempts in flight.

        A confident pool result ends the sweep (unless ``full_sweep``). When the winning
        reply names another family than its dialect (a Zcash pool answering the Bitcoin
        subscribe), the sweep narrows to that family's dialects so the verdict can name
        the dialect the pool really speaks.
        """
        opts = self.options
        results: dict[int, list[ProbeAttempt]] = {}
        stop = asyncio.Event()
        focus: list[str] = []  # at most one family name

        def wanted(item: _Planned) -> bool:
            return not focus or str(item.dialect.family) == focus[0]

        async def run_one(index: int, item: _Planned) -> None:
            produced = await self._attempt_dialect(state, item)
            results[index] = produced
            for attempt in produced:
                self._report((state.host, state.port), attempt)
            best = _main_result(produced)
            if best is None or not best.is_pool or best.confidence < opts.stop_confidence or opts.full_sweep:
                return
            family = best.get("family")
            if family and family != str(item.dialect.family):
                if focus:
                    return  # the focused family's own dialect decides
                if any(str(p.dialect.family) == family and i not in results for i, p in enumerate(plan)):
                    focus.append(family)
                    return
            stop.set()

        pending = list(enumerate(plan))
        running: set[asyncio.Task[None]] = set()
        try:
            while (pending or running) and not stop.is_set():
                while pending and len(running) < max(1, opts.per_host) and not stop.is_set():
                    index, item = pending.pop(0)
                    if wanted(item):
                        running.add(asyncio.create_task(run_one(index, item)))
                if not running:
                    break
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            for index in sorted(results):
                state.attempts.extend(results[index])

    # ---- one dialect -----------------------------------------------------------------

    def _context(self, state: _TargetState, transport: Transport, path: str) -> ProbeContext:
        opts = self.options
        return ProbeContext(
            host=state.server_name or state.address,
            port=state.port,
            transport=transport,
            agent=opts.agent,
            wallet=opts.wallet,
            worker=opts.worker,
            password=opts.password,
            path=path,
        )

    async def _attempt_dialect(self, state: _TargetState, item: _Planned) -> list[ProbeAttempt]:
        """The dialect's probe on a fresh connection, then (if pool-like) its control.

        WebSocket dialects try their paths in order, moving on only while the server
        answers the upgrade with an HTTP status (a 404 on one path says nothing about the
        next); a server that is not HTTP at all ends the dialect at once.
        """
        attempts: list[ProbeAttempt] = []
        dialect = item.dialect
        for path in item.paths if dialect.framing is Framing.WS else ("/",):
            ctx = self._context(state, item.transport, path)
            probe = await self._exchange(state, dialect, item.transport, path, dialect.probe_requests(ctx))
            if not probe.connected:
                attempts.append(self._attempt(dialect.name, probe, None))
                if probe.http_status is not None:
                    continue
                break
            result = _incomplete(_over_budget(_classify(dialect, probe.replies, None), probe), probe)
            control_attempt: ProbeAttempt | None = None
            if result.outcome is not Outcome.NONE and self.options.control:
                control = await self._exchange(
                    state, dialect, item.transport, path, [dialect.control_request(ctx)]
                )
                result = _incomplete(
                    _over_budget(
                        _classify(dialect, probe.replies, control.replies if control.connected else None),
                        probe,
                    ),
                    probe,
                )
                control_attempt = self._attempt(dialect.name + CONTROL_SUFFIX, control, None)
            attempts.append(self._attempt(dialect.name, probe, result))
            if control_attempt is not None:
                attempts.append(control_attempt)
            break
        return attempts

    def _attempt(self, name: str, ex: _Exchange, result: DialectResult | None) -> ProbeAttempt:
        return ProbeAttempt(
            dialect=name,
            transport=ex.transport,
            request_excerpt=excerpt(ex.sent),
            reply_excerpt=excerpt(ex.received),
            elapsed_s=ex.elapsed_s,
            result=result,
            error=ex.error,
        )

    async def _exchange(
        self,
        state: _TargetState,
        dialect: Dialect,
        transport: Transport,
        path: str,
        requests: Sequence[Request],
    ) -> _Exchange:
        opts = self.options
        limits = opts.limits()
        async with self.limiter.slot(state.address):
            if dialect.framing is Framing.WS:
                return await self._ws(state, dialect, transport, path, requests, limits)
            if dialect.framing is Framing.HTTP:
                ex = await self._http(state, transport, requests, limits)
            else:
                ex = await self._stream(state, dialect, transport, requests, limits)
        state.connected(ex.reset_unanswered)
        return ex

    async def _stream(
        self,
        state: _TargetState,
        dialect: Dialect,
        transport: Transport,
        requests: Sequence[Request],
        limits: io.Limits,
    ) -> _Exchange:
        opts = self.options
        conv = _Conversation(
            dialect, requests, max_line_bytes=opts.max_line_bytes, max_bytes=opts.max_bytes, early_stop=True
        )
        result = await io.stream_exchange(
            state.address,
            state.port,
            conv.first(),
            conv.on_data,
            tls=transport is Transport.TLS,
            server_name=state.server_name,
            limits=limits,
            quiet_s=opts.quiet_s,
        )
        tail = conv.finish()
        return _Exchange(
            transport=transport,
            sent=result.sent,
            received=result.received,
            replies=list(conv.replies),
            elapsed_s=result.elapsed_s,
            connected=result.connected,
            error=_error_of(result.end, result.error),
            tls=result.tls,
            reset_unanswered=_reset_unanswered(result),
            incomplete=tail if result.end is io.End.TIMEOUT else 0,
        )

    async def _ws(
        self,
        state: _TargetState,
        dialect: Dialect,
        transport: Transport,
        path: str,
        requests: Sequence[Request],
        limits: io.Limits,
    ) -> _Exchange:
        opts = self.options
        conv = _Conversation(
            dialect, requests, max_line_bytes=opts.max_line_bytes, max_bytes=opts.max_bytes, early_stop=True
        )

        def on_message(message: str | bytes) -> io.Next:
            data = message.encode("utf-8", errors="surrogateescape") if isinstance(message, str) else message
            return conv.on_message(data)

        first = [conv.first().decode("utf-8", errors="replace")] if requests else []
        result = await io.ws_exchange(
            state.address,
            state.port,
            first,
            on_message,
            tls=transport is Transport.WSS,
            server_name=state.server_name,
            path=path,
            limits=limits,
            quiet_s=opts.quiet_s,
        )
        sent = "\n".join(m if isinstance(m, str) else m.decode("utf-8", "replace") for m in result.sent)
        if not result.upgraded:  # nothing past the upgrade was sent: say which path was asked
            sent = f"GET {path} HTTP/1.1 (WebSocket upgrade)"
        received = b"\n".join(
            m.encode("utf-8", "replace") if isinstance(m, str) else m for m in result.received
        )
        return _Exchange(
            transport=transport,
            sent=sent.encode("utf-8", "replace"),
            received=received,
            replies=list(conv.replies),
            elapsed_s=result.elapsed_s,
            connected=result.upgraded,
            error=_error_of(result.end, result.error),
            tls=result.tls,
            http_status=result.status if not result.upgraded else None,
        )

    async def _http(
        self,
        state: _TargetState,
        transport: Transport,
        requests: Sequence[Request],
        limits: io.Limits,
    ) -> _Exchange:
        start = time.monotonic()
        replies: list[Reply] = []
        sent = bytearray()
        received = bytearray()
        connected = reset = False
        error: str | None = None
        for request in requests:
            spec = request.http
            if spec is None:
                continue
            head = f"{spec.method} {spec.path} HTTP/1.1\r\n".encode()
            head += b"".join(f"{k}: {v}\r\n".encode("latin-1", "replace") for k, v in spec.headers)
            sent += head + b"\r\n" + spec.body + b"\n"
            result = await io.http_request(
                state.address,
                state.port,
                method=spec.method,
                path=spec.path,
                body=spec.body,
                headers=spec.headers,
                tls=transport is Transport.HTTPS,
                server_name=state.server_name,
                limits=limits,
            )
            connected = connected or result.connected
            error = _error_of(result.end, result.error) or error
            reset = result.end is io.End.RESET and result.status is None
            if result.status is not None:
                reply = HttpReply(result.status, result.reason, result.headers, result.body)
                replies.append(reply)
                received += f"HTTP {result.status} {result.reason}\r\n".encode("latin-1", "replace")
                received += b"".join(f"{k}: {v}\r\n".encode("latin-1", "replace") for k, v in result.headers)
                received += b"\r\n" + result.body + b"\n"
            elif not result.connected:
                break
        return _Exchange(
            transport=transport,
            sent=bytes(sent),
            received=bytes(received),
            replies=replies,
            elapsed_s=time.monotonic() - start,
            connected=connected,
            error=error,
            reset_unanswered=reset and not received,
        )


def _prefer_own_family(verdict: Verdict, dialects: Mapping[str, Dialect]) -> Verdict:
    """Name the dialect of the family the pool showed, when that dialect also succeeded.

    ``stratum1`` recognises a Zcash or NiceHash-Ethereum pool from its subscribe reply
    (the ``family`` evidence says so); if the family's own dialect confirmed it as a pool
    too, the verdict names that dialect instead of the first one that happened to ask.
    """
    if not verdict.is_pool or verdict.dialect is None:
        return verdict
    family = next((e.value for e in verdict.evidence if e.key == "family"), None)
    own = dialects.get(verdict.dialect)
    if family is None or own is None or str(own.family) == family:
        return verdict
    best: ProbeAttempt | None = None
    for attempt in verdict.attempts:
        result, dialect = attempt.result, dialects.get(attempt.dialect)
        if result is None or dialect is None or not result.is_pool or str(dialect.family) != family:
            continue
        if best is None or best.result is None or result.confidence > best.result.confidence:
            best = attempt
    if best is None or best.result is None:
        return verdict
    won = best.result
    return replace(
        verdict,
        confidence=won.confidence,
        dialect=won.dialect,
        transport=best.transport,
        outcome=won.outcome,
        evidence=won.evidence,
        coin="",
    ).with_coin(coin_of(won.evidence))


def _over_budget(result: DialectResult, probe: _Exchange) -> DialectResult:
    """A peer that blew through the byte/frame budget is flooding, not answering a miner.

    Real pools answer a handshake with a few KB at most; a reply that hits
    ``max_bytes`` (an endless stream of pushes, say) keeps its evidence but is not
    allowed to make the target a pool.
    """
    if result.outcome is Outcome.NONE or probe.error is None or not probe.error.startswith(str(io.End.LIMIT)):
        return result
    return DialectResult.none(
        result.dialect, f"peer exceeded the read budget ({result.reason})", result.evidence
    )


def _incomplete(result: DialectResult, probe: _Exchange) -> DialectResult:
    """A reply still arriving when the deadline passed is incomplete, not malformed.

    A line cut short by the deadline (a peer trickling bytes) reads as non-JSON to the
    dialect; the attempt says what happened instead, keeping the dialect's evidence.
    """
    if result.outcome is not Outcome.NONE or not probe.incomplete:
        return result
    return DialectResult.none(
        result.dialect,
        f"reply incomplete at the deadline: {probe.incomplete} bytes of a line, no end of line yet",
        result.evidence,
    )


def _classify(dialect: Dialect, replies: Sequence[Reply], control: Sequence[Reply] | None) -> DialectResult:
    """The dialect's judgement; a bug or limit inside a classifier becomes a ``none``."""
    try:
        return dialect.classify(replies, control)
    except MinerscopeError as exc:
        return DialectResult.none(dialect.name, f"classifier refused the replies: {exc}")


# --------------------------------------------------------------------------------------
# Public entry points


async def probe_target(
    host: str,
    port: int,
    *,
    options: ProbeOptions | None = None,
    on_attempt: AttemptCallback | None = None,
) -> Verdict:
    """Is ``host:port`` a mining pool? Probe it in every selected dialect.

    Args:
        host: an address or a host name (a name must resolve entirely into scope).
        port: TCP port.
        options: limits, dialects and scope (defaults: :class:`ProbeOptions`, loopback scope).
        on_attempt: called with ``((host, port), attempt)`` as each attempt finishes.

    Returns:
        The :class:`~minerscope.probe.verdict.Verdict`; a dead or silent port is ``none``.

    Raises:
        ScopeError: the target is out of scope; nothing was sent.
        InputError: bad port or unknown dialect name.
    """
    return await Prober(options, on_attempt=on_attempt).probe(host, port)


async def probe_many(
    targets: Iterable[Target | str],
    options: ProbeOptions | None = None,
    *,
    on_attempt: AttemptCallback | None = None,
    on_error: ErrorCallback | None = None,
) -> AsyncIterator[Verdict]:
    """Probe many targets concurrently under shared limits; yield verdicts as they finish.

    Every literal-address target is checked against the scope *before* any traffic, so a
    typo in a target list fails the run with nothing sent. A host name whose resolution
    falls out of scope (known only later) is reported to ``on_error`` and skipped; without
    ``on_error`` its :class:`ScopeError` propagates and the run stops.

    Raises:
        ScopeError: a literal target is out of scope (nothing was sent to any target).
        InputError: a target string does not parse, or an unknown dialect name.
    """
    prober = Prober(options, on_attempt=on_attempt)
    parsed = [parse_target(t) if isinstance(t, str) else (t[0], int(t[1])) for t in targets]
    for host, _port in parsed:
        literal = parse_address(host)
        if literal is not None:
            prober.options.scope.check(host, [literal])
    queue: asyncio.Queue[Verdict | BaseException | None] = asyncio.Queue()
    # Each target holds at most per_host connections, so this many workers keep the
    # global limit busy without creating one task per target of a huge list up front.
    workers = max(1, min(len(parsed), prober.options.concurrency))
    feed = iter(parsed)

    async def worker() -> None:
        try:
            for host, port in feed:
                try:
                    verdict = await prober.probe(host, port)
                except MinerscopeError as exc:
                    if on_error is None:
                        raise
                    on_error((host, port), exc)
                    continue
                queue.put_nowait(verdict)
        except Exception as exc:  # handed to the consumer, which re-raises it
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(None)

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    finished = 0
    try:
        while finished < len(tasks):
            item = await queue.get()
            if item is None:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def probe_many_list(
    targets: Iterable[Target | str],
    options: ProbeOptions | None = None,
    *,
    on_attempt: AttemptCallback | None = None,
    on_error: ErrorCallback | None = None,
) -> list[Verdict]:
    """:func:`probe_many` collected into a list, in the order of ``targets``."""
    parsed = [parse_target(t) if isinstance(t, str) else (t[0], int(t[1])) for t in targets]
    order = {format_target(h, p): i for i, (h, p) in enumerate(parsed)}
    out = [v async for v in probe_many(parsed, options, on_attempt=on_attempt, on_error=on_error)]
    return sorted(out, key=lambda v: order.get(v.target, len(order)))
