"""Fixtures for the prober's I/O tests: real loopback servers, short deadlines, a socket guard.

Every server is a real asyncio server on 127.0.0.1 port 0 and is closed at teardown.
Deadlines are multiples of :data:`tests.conftest.MS` so a slow CI box scales them all.
The ``no_network`` guard makes any connection attempt fail the test: it proves that a
refusal (scope) happened *before* I/O; it is a tripwire, not a stand-in for the product.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest

from minerscope.emulate.server import ServerHandle
from minerscope.probe.runner import ProbeOptions
from minerscope.probe.transport import Limits
from tests.conftest import MS

StartServer = Callable[[Coroutine[Any, Any, ServerHandle]], Awaitable[ServerHandle]]

ATTEMPT_DEADLINE = 700 * MS
CONNECT_TIMEOUT = 600 * MS


def fast_limits(**overrides: Any) -> Limits:
    """Transport limits short enough for tests (scaled by MS)."""
    values: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "deadline": ATTEMPT_DEADLINE,
        "max_bytes": 64 * 1024,
    }
    values.update(overrides)
    return Limits(**values)


def fast_options(**overrides: Any) -> ProbeOptions:
    """Probe options with test-sized deadlines (scaled by MS); loopback scope."""
    values: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "attempt_deadline": ATTEMPT_DEADLINE,
        "total_deadline": 15_000 * MS,
        "quiet_s": 150 * MS,
        "rate": 0.0,
        "per_host": 8,
    }
    values.update(overrides)
    return ProbeOptions(**values)


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``await start_server(start_x(...))`` -> handle; every handle is closed at teardown."""
    handles: list[ServerHandle] = []

    async def start(coro: Coroutine[Any, Any, ServerHandle]) -> ServerHandle:
        handle = await coro
        assert handle.host.startswith("127."), "tests may only bind loopback"
        handles.append(handle)
        return handle

    yield start
    await asyncio.gather(*(h.close() for h in handles), return_exceptions=True)


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NetworkTouched(AssertionError):
    """Raised by the guard when code under test tried to open a connection or resolve."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail loudly on any connect or DNS lookup; returns the list of attempted calls."""
    calls: list[str] = []

    def tripwire(name: str) -> Callable[..., Any]:
        def _fail(*args: Any, **kwargs: Any) -> Any:
            calls.append(f"{name}{args[:3]!r}")
            raise NetworkTouched(f"{name} called with {args[:3]!r}")

        return _fail

    async def _async_fail(*args: Any, **kwargs: Any) -> Any:
        calls.append(f"async{args[:3]!r}")
        raise NetworkTouched(f"connection attempted: {args[:3]!r}")

    monkeypatch.setattr(asyncio, "open_connection", _async_fail)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", _async_fail)
    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", _async_fail)
    monkeypatch.setattr(socket.socket, "connect", tripwire("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", tripwire("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", tripwire("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", tripwire("socket.getaddrinfo"))
    return calls
