"""A local miner emulator: an xmrig-like client that logs in to a pool and submits shares.

The pool emulators answer probes; live capture needs the other half of a mining
session on the wire: a client that keeps a connection open, logs in, receives jobs and
submits shares at a steady pace, over TCP or TLS (with an SNI, as xmrig sends one for a
pool *name*). Every message is built and parsed by the probe's Monero dialect module,
so the miner, the pool emulator, the prober and stage 0 agree on the dialect. Shares are
random (no hashing): only the traffic's shape and content matter here.

Loopback only, as every emulator: :func:`run_xmrig_miner` refuses other addresses.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import time
from dataclasses import dataclass

from minerscope.capture.proxyreq import SOCKS5_REPLY_ERRORS, http_connect, socks5_connect
from minerscope.emulate.server import require_loopback_or_explicit
from minerscope.errors import RemoteProtocolError
from minerscope.probe.dialects import monero
from minerscope.probe.framing import LineBuffer, decode_json_object, encode_json_line

READ_BYTES = 65536
"""Bytes asked of the socket per read (the line buffer bounds what is kept)."""


PROXY_TIMEOUT_S = 10.0
"""Seconds a SOCKS or HTTP proxy has to open the tunnel."""


async def _socks5_tunnel(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    """Ask the SOCKS 5 proxy at the other end of ``writer`` for a tunnel to ``host:port``."""
    greeting, request = socks5_connect(host, port)
    writer.write(greeting)
    await writer.drain()
    if await reader.readexactly(2) != b"\x05\x00":
        raise RemoteProtocolError("the SOCKS 5 proxy did not accept 'no authentication'")
    writer.write(request)
    await writer.drain()
    version, status, _reserved, address_type = await reader.readexactly(4)
    if version != 5 or status != 0:
        why = SOCKS5_REPLY_ERRORS.get(status, f"reply {status}") if version == 5 else "not a SOCKS 5 reply"
        raise RemoteProtocolError(f"the SOCKS 5 proxy did not open the tunnel: {why}")
    size = {1: 4, 4: 16}.get(address_type)
    if size is None:
        size = (await reader.readexactly(1))[0]
    await reader.readexactly(size + 2)  # the proxy's own end of the tunnel


async def _http_tunnel(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    """Ask the HTTP proxy at the other end of ``writer`` for a tunnel (CONNECT) to ``host:port``."""
    writer.write(http_connect(host, port))
    await writer.drain()
    try:  # (bounded by the stream's limit, 64 KiB)
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise RemoteProtocolError("the HTTP proxy's reply head does not end") from None
    except asyncio.IncompleteReadError:
        raise RemoteProtocolError("the HTTP proxy closed the connection instead of replying") from None
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or not status[1].startswith(b"2"):
        line = head.split(b"\r\n", 1)[0].decode("latin-1")[:80]
        raise RemoteProtocolError(f"the HTTP proxy did not open the tunnel: {line!r}")


@dataclass(slots=True)
class MinerStats:
    """What one miner session did (for tests to check the session really ran)."""

    local_port: int = 0
    logged_in: bool = False
    jobs: int = 0
    submits: int = 0
    accepted: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


async def run_xmrig_miner(
    host: str,
    port: int,
    *,
    tls: bool = False,
    server_name: str | None = None,
    duration_s: float = 5.0,
    share_interval_s: float = 0.5,
    seed: int = 0,
    stop: threading.Event | None = None,
    stats: MinerStats | None = None,
    socks5: tuple[str, int] | None = None,
    http_proxy: tuple[str, int] | None = None,
) -> MinerStats:
    """Mine against an xmrig-dialect pool at ``host:port`` for ``duration_s`` seconds.

    Args:
        host, port: the pool (a loopback address).
        tls: wrap the connection in TLS (the emulator's certificate is not verified).
        server_name: SNI to send with TLS (an IP address sends none, as in real clients).
        duration_s: how long the session lasts before the miner closes it.
        share_interval_s: seconds between submitted shares.
        seed: seeds the wallet and the shares.
        stop: ends the session early when set (checked at least every ``share_interval_s``).
        stats: filled in as the session runs (lets another thread watch it); default a new one.
        socks5: reach the pool through this SOCKS 5 proxy (a loopback address), as XMRig's
            per-pool ``socks5`` setting does: ``host`` is sent to the proxy as it is, an
            address or a name (``localhost`` only) for the proxy to resolve. TLS, when
            asked for, runs inside the tunnel.
        http_proxy: reach the pool through this HTTP proxy (a loopback address) with
            CONNECT, as a miner behind a corporate proxy does (not with ``socks5``).

    Returns:
        The session's :class:`MinerStats`.
    """
    require_loopback_or_explicit(host, allow_any=False)
    rng = random.Random(seed)
    context: ssl.SSLContext | None = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the emulator's certificate is self-signed
    sni = (server_name or None) if tls else None
    if socks5 is not None and http_proxy is not None:
        raise ValueError("one proxy: socks5 or http_proxy")
    proxy = socks5 or http_proxy
    if proxy is None:
        reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=sni)
    else:
        require_loopback_or_explicit(proxy[0], allow_any=False)
        reader, writer = await asyncio.open_connection(*proxy)
        tunnel = _socks5_tunnel if socks5 is not None else _http_tunnel
        await asyncio.wait_for(tunnel(reader, writer, host, port), PROXY_TIMEOUT_S)
        if context is not None:
            await writer.start_tls(context, server_hostname=sni)
    stats = stats if stats is not None else MinerStats()
    stats.local_port = int(writer.get_extra_info("sockname")[1])
    lines = LineBuffer()
    session_id = ""
    job: monero.Job | None = None
    next_id = 1

    def send(message: dict[str, object]) -> None:
        data = encode_json_line(message)
        stats.bytes_sent += len(data)
        writer.write(data)

    send(
        monero.login_request(
            next_id, monero.make_wallet(rng), agent="XMRig/6.21.0 (Linux x86_64) libuv/1.44.2"
        )
    )
    next_id += 1
    deadline = time.monotonic() + duration_s
    next_share = time.monotonic() + share_interval_s
    try:
        while (now := time.monotonic()) < deadline and not (stop is not None and stop.is_set()):
            try:
                data = await asyncio.wait_for(
                    reader.read(READ_BYTES), timeout=max(0.0, min(next_share, deadline) - now)
                )
            except TimeoutError:
                data = None
            if data == b"":
                break  # the pool closed the connection
            if data:
                stats.bytes_received += len(data)
                for line in lines.feed(data):
                    msg = decode_json_object(line)
                    if msg is None:
                        continue
                    result = msg.get("result")
                    if msg.get("method") == "job":
                        job = monero.parse_job(msg.get("params"))
                        stats.jobs += 1
                    elif isinstance(result, dict) and "id" in result and not stats.logged_in:
                        session_id, job = monero.parse_login_result(result)
                        stats.logged_in = True
                        stats.jobs += job is not None
                    elif isinstance(result, dict) and result.get("status") == "OK":
                        stats.accepted += 1
            if job is not None and session_id and time.monotonic() >= next_share:
                share = monero.make_submit(rng, job, session_id)
                send(
                    monero.submit_request(
                        next_id, session_id, share.job_id, share.nonce, share.result, share.algo
                    )
                )
                next_id += 1
                stats.submits += 1
                next_share = time.monotonic() + share_interval_s
            await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
    return stats
