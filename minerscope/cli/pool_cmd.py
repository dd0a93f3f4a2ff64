"""``minerscope pool``: run a local mining-pool emulator until interrupted.

A thin shell over :func:`minerscope.emulate.pool.start_pool`. The first stdout line is
``listening <url>`` (with the real port when ``--port 0``), flushed at once, so a script
or test can start the emulator and read where it is. Emulators bind loopback unless
``--public`` is given: they exist for tests, demos and the traffic lab, not to be found.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import click

from minerscope import errors
from minerscope.cli.common import FiniteFloatRange, fail
from minerscope.emulate.pool import POOL_DIALECTS, WALLET_POLICIES, WS_DIALECTS, start_pool
from minerscope.emulate.server import require_loopback_or_explicit


@click.command(name="pool")
@click.option(
    "--dialect", "dialect", type=click.Choice(POOL_DIALECTS), required=True, help="Dialect to serve."
)
@click.option(
    "--tls", is_flag=True, help="TLS (wss for coinhive, HTTPS for daemons) with a throwaway certificate."
)
@click.option(
    "--ws", is_flag=True, help="WebSocket transport (browser-mining dialects only; implied for coinhive)."
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Bind address (loopback unless --public)."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: any free port)."
)
@click.option("--coin", default="", help="Coin label (btc, ltc, xmr, zec, etc ...). Default: per dialect.")
@click.option(
    "--wallets", type=click.Choice(WALLET_POLICIES), default="accept", show_default=True, help="Login policy."
)
@click.option(
    "--job-interval",
    type=FiniteFloatRange(0),
    default=30.0,
    show_default=True,
    help="Seconds between pushed jobs (0: never push).",
)
@click.option(
    "--vardiff-interval",
    type=FiniteFloatRange(0),
    default=90.0,
    show_default=True,
    help="Seconds between retargets (0: never).",
)
@click.option("--ws-path", default="/proxy", show_default=True, help="Path of the coinhive shard.")
@click.option("--rpc-user", default="minerscope", show_default=True, help="bitcoind basic-auth user.")
@click.option("--rpc-password", default="x", show_default=True, help="bitcoind basic-auth password.")
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for job contents."
)
@click.option(
    "--duration",
    type=FiniteFloatRange(0),
    default=0.0,
    help="Stop after this many seconds (0: run until Ctrl-C).",
)
@click.option("--public", is_flag=True, help="Allow binding a non-loopback address.")
def pool(
    dialect: str,
    tls: bool,
    ws: bool,
    host: str,
    port: int,
    coin: str,
    wallets: str,
    job_interval: float,
    vardiff_interval: float,
    ws_path: str,
    rpc_user: str,
    rpc_password: str,
    seed: int,
    duration: float,
    public: bool,
) -> None:
    """Run a pool emulator speaking --dialect on HOST:PORT (loopback by default)."""
    if ws and dialect not in WS_DIALECTS:
        raise click.UsageError(
            f"--ws: dialect {dialect} is not served over WebSocket (try --dialect coinhive)"
        )
    try:
        require_loopback_or_explicit(host, allow_any=public)
        asyncio.run(
            _serve(
                dialect,
                host,
                port,
                tls=tls,
                duration=duration,
                overrides={
                    "coin": coin,
                    "wallet_policy": wallets,
                    "job_interval": job_interval,
                    "vardiff_interval": vardiff_interval,
                    "ws_path": ws_path,
                    "rpc_user": rpc_user,
                    "rpc_password": rpc_password,
                    "seed": seed,
                },
            )
        )
    except errors.MinerscopeError as exc:
        fail(exc)
    except OSError as exc:
        fail(errors.InputError(f"--host {host} --port {port}: cannot listen: {exc.strerror or exc}"))
    except KeyboardInterrupt:
        pass


async def _serve(
    dialect: str, host: str, port: int, *, tls: bool, duration: float, overrides: dict[str, Any]
) -> None:
    handle = await start_pool(dialect, host, port, tls=tls, **overrides)
    click.echo(f"listening {handle.url}")  # the one line saying where (stdout: scripts read it)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if duration > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        else:
            await stop.wait()
    finally:
        await handle.close()
        click.echo(f"stopped after {handle.stats.connections} connections", err=True)
