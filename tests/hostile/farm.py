"""Hostile servers and pool emulators in a child process: the prober's peers, kept apart.

A hostile peer is another machine. Run in the prober's own process and event loop, a
server that floods or mints thousands of TLS tickets would steal the prober's loop and
tracemalloc would count the server's buffers as the prober's memory, so the figures
would measure the test harness. Here every server runs in a child Python process (its
own loop, its own memory), bound to its own 127.0.0.0/8 address: the prober limits
connections per address, and a batch of peers sharing 127.0.0.1 would measure that
limit instead of the batch.

Child protocol: ``python -m tests.hostile.farm SPEC...`` where SPEC is
``hostile:NAME@ADDRESS`` or ``pool:DIALECT@ADDRESS`` (``pool+tls:...`` for TLS). It
prints one JSON line ``{"SPEC": port, ...}`` once every server listens, and exits when
its stdin closes. Only loopback addresses are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIP_INTERVAL = 0.05
"""Seconds between the time-based tricks' drips (the real ones use a second)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """One server of a farm: what it is and where it listens."""

    spec: str
    kind: str
    name: str
    host: str
    port: int

    @property
    def target(self) -> tuple[str, int]:
        return self.host, self.port


def spec(kind: str, name: str, index: int, net: int = 66) -> str:
    """A SPEC string with a distinct loopback address per index (``127.<net>.x.y``)."""
    return f"{kind}:{name}@127.{net}.{index // 250}.{index % 250 + 1}"


@contextlib.contextmanager
def farm(specs: list[str], *, timeout: float = 60.0) -> Iterator[dict[str, Peer]]:
    """Run ``specs`` in a child process; yields ``{spec: Peer}``; stops the child at exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile.farm", *specs],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            _, err = proc.communicate(timeout=timeout)
            raise RuntimeError(f"farm did not start: {err[-2000:]}")
        ports: dict[str, int] = json.loads(line)
        peers = {}
        for s, port in ports.items():
            kind, _, rest = s.partition(":")
            name, _, host = rest.partition("@")
            peers[s] = Peer(s, kind, name, host, int(port))
        yield peers
    finally:
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


async def _serve(specs: list[str]) -> None:
    from minerscope.emulate.hostile import start_hostile
    from minerscope.emulate.pool import start_pool
    from minerscope.emulate.server import ServerHandle

    handles: list[ServerHandle] = []
    ports: dict[str, int] = {}
    for s in specs:
        kind, _, rest = s.partition(":")
        name, _, host = rest.partition("@")
        if not ipaddress.ip_address(host).is_loopback:
            raise SystemExit(f"{s}: loopback addresses only")
        if kind == "hostile":
            handle = await start_hostile(name, host=host, interval=DRIP_INTERVAL)
        elif kind in ("pool", "pool+tls"):
            handle = await start_pool(name, host, tls=kind == "pool+tls", job_interval=0)
        else:
            raise SystemExit(f"{s}: unknown kind {kind!r}")
        handles.append(handle)
        ports[s] = handle.port
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    await asyncio.gather(*(h.close() for h in handles), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1:]))
