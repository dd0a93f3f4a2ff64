"""Local mining-pool emulators that behave like real pool software, for tests, demos and the lab.

Each emulator is a real asyncio server on loopback speaking one dialect through the
dialect modules' *pool-side builders* (:mod:`minerscope.probe.dialects`), so the probe,
the emulator and the traffic lab cannot drift apart. Behaviour follows the pool software
described in PROTOCOLS.md:

* line dialects (``stratum1``, ``stratum1-zcash``, ``ethstratum``, ``ethproxy``,
  ``xmrig``) over TCP or TLS: subscribe/login success with a first job, wallet/worker
  rejection errors by policy, ``mining.set_difficulty``/``set_target`` before the first
  job, new jobs pushed every ``job_interval`` seconds, vardiff retargets every
  ``vardiff_interval`` seconds, ``keepalived`` replies, and an error for unknown methods;
* ``coinhive`` over WebSocket (``ws``/``wss``) on one path (others get 404);
* HTTP daemons: ``bitcoind`` (basic auth required: 401 ``realm="jsonrpc"`` without it,
  ``getblocktemplate`` with it), ``monerod`` (``/json_rpc`` ``get_block_template``) and
  ``geth`` (``eth_getWork``), over HTTP or HTTPS;
* ``sv2``: answers a 64-byte Noise Act-1 with a 234-byte high-entropy Act-2 and waits
  (the shape a probe can see without the pool's authority key).

TLS uses a throwaway self-signed certificate minted at start. The importable API is
:func:`start_pool` (an async function returning a :class:`~.server.ServerHandle` with
``.port`` and ``.close()``); :class:`~.server.ThreadedServers` runs it for sync callers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from minerscope.emulate.server import (
    LOOPBACK_HOST,
    HttpRequest,
    ServerHandle,
    ServerStats,
    http_stream_handler,
    start_stream_server,
    start_ws_server,
)
from minerscope.errors import InputError
from minerscope.probe.dialects import bitcoin, browser_ws, ethereum, http_jsonrpc, monero, sv2, zcash
from minerscope.probe.dialects.base import HttpReply
from minerscope.probe.framing import LineBuffer, decode_json_object, encode_json_line, rpc_response

WALLET_POLICIES = ("accept", "reject", "validate")

LINE_DIALECTS = ("stratum1", "stratum1-zcash", "ethstratum", "ethproxy", "xmrig")
HTTP_DIALECTS = ("bitcoind", "monerod", "geth")
WS_DIALECTS = ("coinhive",)
RAW_DIALECTS = ("sv2",)
POOL_DIALECTS: tuple[str, ...] = LINE_DIALECTS + WS_DIALECTS + HTTP_DIALECTS + RAW_DIALECTS
"""Every dialect an emulator can serve."""

DEFAULT_COIN = {
    "stratum1": "btc",
    "stratum1-zcash": "zec",
    "ethstratum": "etc",
    "ethproxy": "etc",
    "xmrig": "xmr",
    "coinhive": "xmr",
    "bitcoind": "btc",
    "monerod": "xmr",
    "geth": "etc",
    "sv2": "btc",
}

_WALLET_RE: dict[str, re.Pattern[str]] = {
    "stratum1": re.compile(r"^(bc1[02-9ac-hj-np-z]{11,71}|[13][1-9A-HJ-NP-Za-km-z]{25,34})([.+_].*)?$"),
    "stratum1-zcash": re.compile(r"^t1[1-9A-HJ-NP-Za-km-z]{33}([.+_].*)?$"),
    "ethstratum": re.compile(r"^0x[0-9a-fA-F]{40}([./+_].*)?$"),
    "ethproxy": re.compile(r"^0x[0-9a-fA-F]{40}([./+_].*)?$"),
    "xmrig": re.compile(r"^[48][1-9A-HJ-NP-Za-km-z]{94}([1-9A-HJ-NP-Za-km-z]{11})?([.+].*)?$"),
    "coinhive": re.compile(r"^[A-Za-z0-9]{32}$"),
    "monerod": re.compile(r"^[48][1-9A-HJ-NP-Za-km-z]{94}([1-9A-HJ-NP-Za-km-z]{11})?$"),
}


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How an emulated pool behaves.

    Attributes:
        dialect: one of :data:`POOL_DIALECTS`.
        coin: a label (``btc``, ``xmr`` ...) shown in logs; default per dialect.
        wallet_policy: ``accept`` any login, ``reject`` every login with the software's
            real error text, or ``validate`` the wallet's syntax (plus ``valid_wallets``).
        valid_wallets: with ``validate``, logins listed here are always accepted.
        job_interval: seconds between pushed jobs (0: never push).
        vardiff_interval: seconds between difficulty retargets (0: never).
        difficulty: starting share difficulty.
        seed: seeds the job generator (deterministic content for a given seed).
        rpc_user/rpc_password: bitcoind basic-auth credentials.
        ws_path: the path a ``coinhive`` shard serves.
        software: the ``Server:`` header / agent string the emulator shows, if any.
    """

    dialect: str
    coin: str = ""
    wallet_policy: str = "accept"
    valid_wallets: tuple[str, ...] = ()
    job_interval: float = 30.0
    vardiff_interval: float = 90.0
    difficulty: float = 0.0
    seed: int = 0
    rpc_user: str = "minerscope"
    rpc_password: str = "x"
    ws_path: str = "/proxy"
    software: str = ""

    def __post_init__(self) -> None:
        if self.dialect not in POOL_DIALECTS:
            raise InputError(f"--dialect {self.dialect!r}: no emulator (known: {', '.join(POOL_DIALECTS)})")
        if self.wallet_policy not in WALLET_POLICIES:
            raise InputError(
                f"--wallets {self.wallet_policy!r}: expected one of {', '.join(WALLET_POLICIES)}"
            )

    def wallet_ok(self, wallet: str) -> bool:
        """Whether the pool accepts ``wallet`` (worker/login) under its policy."""
        if self.wallet_policy == "accept":
            return True
        if self.wallet_policy == "reject":
            return False
        if wallet in self.valid_wallets:
            return True
        pattern = _WALLET_RE.get(self.dialect)
        return bool(pattern and pattern.match(wallet))


def transports_for(dialect: str) -> tuple[str, ...]:
    """The transports an emulator of ``dialect`` can serve (what the tests sweep)."""
    if dialect in LINE_DIALECTS:
        return ("tcp", "tls")
    if dialect in WS_DIALECTS:
        return ("ws", "wss")
    if dialect in HTTP_DIALECTS:
        return ("http", "https")
    return ("tcp",)


# --------------------------------------------------------------------------------------
# Line dialects: one session object per connection


Msg = dict[str, Any]


class _LineSession:
    """A miner connection to a line-dialect pool: replies, pushed jobs, vardiff."""

    def __init__(self, config: PoolConfig, stats: ServerStats, rng: random.Random) -> None:
        self.config = config
        self.stats = stats
        self.rng = rng
        self.difficulty = config.difficulty or _default_difficulty(config.dialect)
        self.subscribed = False
        self.session_id = rng.randbytes(16).hex()
        self.extranonce1 = bitcoin.make_extranonce1(rng)
        self.jobs = 0

    # -- replies ---------------------------------------------------------------------

    def respond(self, msg: Msg) -> list[Msg]:
        method = msg.get("method")
        self.stats.note_request(str(method))
        handler = _LINE_HANDLERS[self.config.dialect].get(str(method))
        if handler is None:
            return [self.unknown(msg)]
        return handler(self, msg)

    def unknown(self, msg: Msg) -> Msg:
        mid = msg.get("id")
        if self.config.dialect in ("xmrig", "ethproxy"):
            return {"id": mid, "jsonrpc": "2.0", "error": {"code": -1, "message": "Unknown method"}}
        return rpc_response(mid, None, bitcoin.stratum_error(bitcoin.ERR_OTHER, "Method not found"))

    # -- pushes ----------------------------------------------------------------------

    def job_push(self) -> list[Msg]:
        """A new job for this miner (empty before subscribe/login)."""
        if not self.subscribed:
            return []
        self.jobs += 1
        d = self.config.dialect
        if d == "stratum1":
            return [bitcoin.notify(self._btc_job())]
        if d == "stratum1-zcash":
            return [zcash.notify(zcash.make_job(self.rng, ntime=int(time.time())))]
        if d == "ethstratum":
            return [ethereum.nh_notify(ethereum.make_nh_job(self.rng))]
        if d == "ethproxy":
            return [ethereum.work_result(0, ethereum.make_work(self.rng, difficulty=int(self.difficulty)))]
        return [monero.job_push(self._xmr_job())]

    def retarget(self) -> list[Msg]:
        """Vardiff: move the difficulty and tell the miner (the next job uses it)."""
        if not self.subscribed:
            return []
        self.difficulty = max(1.0, self.difficulty * self.rng.choice((0.5, 2.0)))
        d = self.config.dialect
        if d == "stratum1":
            return [bitcoin.set_difficulty(self.difficulty)]
        if d == "stratum1-zcash":
            return [zcash.set_target(zcash.target_for_difficulty(self.difficulty))]
        if d == "ethstratum":
            return [ethereum.nh_set_difficulty(self.difficulty)]
        return self.job_push()  # xmrig/eth-proxy carry the target in the job itself

    # -- builders --------------------------------------------------------------------

    def _btc_job(self) -> bitcoin.NotifyJob:
        return bitcoin.make_notify_job(
            self.rng, tx_count=self.rng.randrange(500, 3000), ntime=int(time.time())
        )

    def _xmr_job(self) -> monero.Job:
        return monero.make_job(self.rng, session_id=self.session_id, difficulty=int(self.difficulty))


def _default_difficulty(dialect: str) -> float:
    return {
        "stratum1": 65536.0,
        "stratum1-zcash": 2048.0,
        "ethstratum": 4.0,
        "ethproxy": 4_000_000_000.0,
        "xmrig": 120_000.0,
    }.get(dialect, 1.0)


def _ok(msg: Msg, result: Any = True) -> list[Msg]:
    return [rpc_response(msg.get("id"), result)]


def _params(msg: Msg) -> list[Any]:
    params = msg.get("params")
    return params if isinstance(params, list) else []


def _first_str(msg: Msg) -> str:
    params = _params(msg)
    return params[0] if params and isinstance(params[0], str) else ""


# stratum1 (Bitcoin family)


def _s1_subscribe(s: _LineSession, msg: Msg) -> list[Msg]:
    s.subscribed = True
    sub_id = s.rng.randbytes(8).hex()
    return [
        bitcoin.subscribe_result(int(msg.get("id") or 0), s.extranonce1, 4, sub_id),
        bitcoin.set_difficulty(s.difficulty),
        bitcoin.notify(s._btc_job()),
    ]


def _s1_authorize(s: _LineSession, msg: Msg) -> list[Msg]:
    mid = int(msg.get("id") or 0)
    if s.config.wallet_ok(_first_str(msg)):
        return [bitcoin.authorize_result(mid, True)]
    return [bitcoin.authorize_result(mid, False, bitcoin.stratum_error(bitcoin.ERR_UNAUTHORIZED))]


def _s1_configure(s: _LineSession, msg: Msg) -> list[Msg]:
    return [bitcoin.configure_result(int(msg.get("id") or 0))]


def _s1_submit(s: _LineSession, msg: Msg) -> list[Msg]:
    mid = int(msg.get("id") or 0)
    if not s.subscribed:
        return [bitcoin.submit_result(mid, False, bitcoin.ERR_NOT_SUBSCRIBED)]
    return [bitcoin.submit_result(mid, True)]


def _s1_suggest(s: _LineSession, msg: Msg) -> list[Msg]:
    return _ok(msg)


# Zcash-style


def _zec_subscribe(s: _LineSession, msg: Msg) -> list[Msg]:
    s.subscribed = True
    return [
        zcash.subscribe_result(int(msg.get("id") or 0), s.extranonce1, s.session_id[:10]),
        zcash.set_target(zcash.target_for_difficulty(s.difficulty)),
        zcash.notify(zcash.make_job(s.rng, ntime=int(time.time()))),
    ]


# NiceHash EthereumStratum/1.0.0


def _nh_subscribe(s: _LineSession, msg: Msg) -> list[Msg]:
    s.subscribed = True
    return [
        ethereum.nh_subscribe_result(int(msg.get("id") or 0), s.session_id[:16], s.extranonce1[:6]),
        ethereum.nh_set_difficulty(s.difficulty),
        ethereum.nh_notify(ethereum.make_nh_job(s.rng)),
    ]


def _nh_authorize(s: _LineSession, msg: Msg) -> list[Msg]:
    mid = int(msg.get("id") or 0)
    if s.config.wallet_ok(_first_str(msg)):
        return [bitcoin.authorize_result(mid, True)]
    return [bitcoin.authorize_result(mid, False, [24, "Invalid wallet address", None])]


# eth-proxy


def _ep_login(s: _LineSession, msg: Msg) -> list[Msg]:
    mid = int(msg.get("id") or 0)
    if s.config.wallet_ok(_first_str(msg)):
        s.subscribed = True
        return [ethereum.bool_result(mid, True)]
    return [
        {
            "id": mid,
            "jsonrpc": "2.0",
            "result": None,
            "error": {"code": -1, "message": "Invalid login: bad wallet address"},
        }
    ]


def _ep_getwork(s: _LineSession, msg: Msg) -> list[Msg]:
    mid = int(msg.get("id") or 0)
    if not s.subscribed and s.config.wallet_policy != "accept":
        return [
            {"id": mid, "jsonrpc": "2.0", "result": None, "error": {"code": -1, "message": "Not logged in"}}
        ]
    s.subscribed = True
    return [ethereum.work_result(mid, ethereum.make_work(s.rng, difficulty=int(s.difficulty)))]


def _ep_true(s: _LineSession, msg: Msg) -> list[Msg]:
    return [ethereum.bool_result(int(msg.get("id") or 0), True)]


# xmrig / CryptoNote


def _xmr_login(s: _LineSession, msg: Msg) -> list[Msg]:
    mid = int(msg.get("id") or 0)
    params = msg.get("params")
    wallet = str(params.get("login", "")) if isinstance(params, dict) else ""
    if not s.config.wallet_ok(wallet):
        return [monero.login_error(mid)]
    s.subscribed = True
    return [monero.login_result(mid, s.session_id, s._xmr_job())]


def _xmr_submit(s: _LineSession, msg: Msg) -> list[Msg]:
    return [monero.submit_result(int(msg.get("id") or 0), s.subscribed)]


def _xmr_keepalived(s: _LineSession, msg: Msg) -> list[Msg]:
    return [monero.keepalived_result(int(msg.get("id") or 0))]


def _xmr_getjob(s: _LineSession, msg: Msg) -> list[Msg]:
    push = monero.job_push(s._xmr_job())
    return [{"id": msg.get("id"), "jsonrpc": "2.0", "error": None, "result": push["params"]}]


_LINE_HANDLERS: dict[str, dict[str, Callable[[_LineSession, Msg], list[Msg]]]] = {
    "stratum1": {
        "mining.subscribe": _s1_subscribe,
        "mining.authorize": _s1_authorize,
        "mining.configure": _s1_configure,
        "mining.submit": _s1_submit,
        "mining.suggest_difficulty": _s1_suggest,
        "mining.extranonce.subscribe": _s1_suggest,
    },
    "stratum1-zcash": {
        "mining.subscribe": _zec_subscribe,
        "mining.authorize": _s1_authorize,
        "mining.submit": _s1_submit,
        "mining.extranonce.subscribe": _s1_suggest,
    },
    "ethstratum": {
        "mining.subscribe": _nh_subscribe,
        "mining.authorize": _nh_authorize,
        "mining.submit": _s1_submit,
        "mining.extranonce.subscribe": _s1_suggest,
    },
    "ethproxy": {
        "eth_submitLogin": _ep_login,
        "eth_getWork": _ep_getwork,
        "eth_submitWork": _ep_true,
        "eth_submitHashrate": _ep_true,
    },
    "xmrig": {
        "login": _xmr_login,
        "submit": _xmr_submit,
        "keepalived": _xmr_keepalived,
        "getjob": _xmr_getjob,
    },
}

_MAX_LINE = 16 * 1024
_MAX_CONNECTION_BYTES = 4 * 1024 * 1024


def _line_handler(config: PoolConfig, stats: ServerStats, rng: random.Random) -> Any:
    spaced = config.dialect in ("stratum1", "stratum1-zcash")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _LineSession(config, stats, random.Random(rng.random()))
        lock = asyncio.Lock()

        async def send(messages: list[Msg]) -> None:
            if not messages:
                return
            async with lock:
                writer.write(b"".join(encode_json_line(m, spaced=spaced) for m in messages))
                await writer.drain()

        async def timers() -> None:
            next_job = _next(config.job_interval)
            next_diff = _next(config.vardiff_interval)
            while True:
                now = time.monotonic()
                wake = min(next_job, next_diff)
                await asyncio.sleep(max(0.0, wake - now) if wake != float("inf") else 3600)
                now = time.monotonic()
                if now >= next_diff:
                    await send(session.retarget())
                    next_diff = _next(config.vardiff_interval)
                if now >= next_job:
                    await send(session.job_push())
                    next_job = _next(config.job_interval)

        ticker = asyncio.create_task(timers())
        buf = LineBuffer(max_line_bytes=_MAX_LINE, max_total_bytes=_MAX_CONNECTION_BYTES)
        try:
            while chunk := await reader.read(4096):
                stats.bytes_received += len(chunk)
                try:
                    lines = buf.feed(chunk)
                except Exception:  # a miner over a limit is dropped, as pools do
                    return
                for line in lines:
                    try:
                        msg = decode_json_object(line)
                    except Exception:
                        msg = None
                    if msg is None:
                        # real pools log and drop malformed miners
                        await send(
                            [
                                rpc_response(
                                    None, None, bitcoin.stratum_error(bitcoin.ERR_OTHER, "Parse error")
                                )
                            ]
                        )
                        return
                    await send(session.respond(msg))
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    return handle


def _next(interval: float) -> float:
    return time.monotonic() + interval if interval > 0 else float("inf")


# --------------------------------------------------------------------------------------
# Coinhive-style WebSocket shard


def _coinhive_handler(config: PoolConfig, stats: ServerStats, rng: random.Random) -> Any:
    async def handler(ws: Any) -> None:
        session = _LineSession(replace(config, dialect="xmrig"), stats, random.Random(rng.random()))
        hashes = 0
        authed = asyncio.Event()

        async def pusher() -> None:
            await authed.wait()
            if config.job_interval <= 0:
                return
            while True:
                await asyncio.sleep(config.job_interval)
                await ws.send(browser_ws.encode_ws_json(browser_ws.job_message(session._xmr_job())).decode())

        task = asyncio.create_task(pusher())
        try:
            async for raw in ws:
                stats.bytes_received += len(raw)
                msg = decode_json_object(raw if isinstance(raw, bytes) else raw.encode())
                kind = msg.get("type") if msg else None
                params = msg.get("params") if msg else None
                stats.note_request(str(kind))
                if kind == "auth":
                    key = str(params.get("site_key", "")) if isinstance(params, dict) else ""
                    if not config.wallet_ok(key):
                        await ws.send(
                            browser_ws.encode_ws_json(browser_ws.error_message("invalid_site_key")).decode()
                        )
                        continue
                    replies = [
                        browser_ws.authed_message(session.session_id[:32], hashes),
                        browser_ws.job_message(session._xmr_job()),
                    ]
                    session.subscribed = True
                    authed.set()
                elif kind == "submit" and session.subscribed:
                    hashes += 256
                    replies = [browser_ws.hash_accepted_message(hashes)]
                else:
                    replies = [browser_ws.error_message("unknown message type")]
                for reply in replies:
                    await ws.send(browser_ws.encode_ws_json(reply).decode())
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return handler


# --------------------------------------------------------------------------------------
# HTTP daemons


def _reply_bytes(reply: HttpReply, server: str) -> bytes:
    headers = (*reply.headers, ("Connection", "close"))
    if server:
        headers = (("Server", server), *headers)
    return http_jsonrpc.http_response_bytes(replace(reply, headers=headers))


def _basic_auth_ok(request: HttpRequest, user: str, password: str) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return decoded == f"{user}:{password}"


def _json_reply(body: Mapping[str, Any], status: int = 200, reason: str = "OK") -> HttpReply:
    return http_jsonrpc.json_http_reply(body, status, reason)


def _bitcoind_responder(config: PoolConfig, rng: random.Random) -> Any:
    async def respond(request: HttpRequest) -> bytes:
        if not _basic_auth_ok(request, config.rpc_user, config.rpc_password):
            return _reply_bytes(http_jsonrpc.unauthorized_reply(), config.software)
        if request.method != "POST":
            return _reply_bytes(
                HttpReply(
                    405,
                    "Method Not Allowed",
                    (("Content-Type", "text/html"),),
                    b"JSONRPC server handles only POST requests",
                ),
                config.software,
            )
        msg = decode_json_object(request.body) if request.body else None
        if msg is None:
            body = {"result": None, "error": {"code": -32700, "message": "Parse error"}, "id": None}
            return _reply_bytes(_json_reply(body, 500, "Internal Server Error"), config.software)
        mid = msg.get("id")
        method = msg.get("method")
        if method == "getblocktemplate":
            params = msg.get("params")
            rules = (
                params[0].get("rules", [])
                if isinstance(params, list) and params and isinstance(params[0], dict)
                else []
            )
            if "segwit" not in rules:
                err = {
                    "code": -8,
                    "message": 'getblocktemplate must be called with the segwit rule set (call with {"rules": ["segwit"]})',
                }
                return _reply_bytes(
                    _json_reply({"result": None, "error": err, "id": mid}, 500, "Internal Server Error"),
                    config.software,
                )
            template = http_jsonrpc.make_block_template(rng, curtime=int(time.time()))
            return _reply_bytes(
                _json_reply(http_jsonrpc.gbt_result(mid if isinstance(mid, int | str) else 0, template)),
                config.software,
            )
        if method == "getblockcount":
            return _reply_bytes(_json_reply({"result": 870_000, "error": None, "id": mid}), config.software)
        err = {"code": -32601, "message": "Method not found"}
        return _reply_bytes(
            _json_reply({"result": None, "error": err, "id": mid}, 404, "Not Found"), config.software
        )

    return respond


_EPEE = "Epee-based"
"""monerod's ``Server:`` header."""
_MONEROD_HEIGHT = 3_280_000
"""The chain height the emulated daemon reports."""


def _monerod_responder(config: PoolConfig, rng: random.Random) -> Any:
    """monerod's RPC as 0.18 answers it: JSON-RPC on ``/json_rpc`` and the ``/getheight``
    endpoint xmrig's daemon mode polls, replies laid out by epee (indented, CRLF)."""
    server = config.software or _EPEE

    def reply(body: Mapping[str, Any]) -> bytes:
        return _reply_bytes(http_jsonrpc.json_http_reply(body, 200, "Ok", epee=True), server)

    async def respond(request: HttpRequest) -> bytes:
        path = request.path.split("?")[0]
        if path in ("/getheight", "/get_height"):
            top = {
                "hash": rng.randbytes(32).hex(),
                "height": _MONEROD_HEIGHT,
                "status": "OK",
                "untrusted": False,
            }
            return reply(top)
        if path != "/json_rpc":
            return _reply_bytes(HttpReply(404, "Not found", (("Content-Type", "text/plain"),), b""), server)
        msg = decode_json_object(request.body) if request.body else None
        if msg is None:
            return reply({"jsonrpc": "2.0", "id": 0, "error": {"code": -32700, "message": "Parse error"}})
        mid = str(msg.get("id", "0"))
        if msg.get("method") in ("get_block_template", "getblocktemplate"):
            params = msg.get("params")
            wallet = str(params.get("wallet_address", "")) if isinstance(params, dict) else ""
            if not config.wallet_ok(wallet):
                return reply(http_jsonrpc.monerod_error(mid))
            return reply(http_jsonrpc.monerod_template_result(rng, mid))
        if msg.get("method") in ("get_info", "get_block_count"):
            result = {"count": _MONEROD_HEIGHT, "status": "OK", "untrusted": False}
            return reply({"id": mid, "jsonrpc": "2.0", "result": result})
        return reply({"id": mid, "jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}})

    return respond


def _geth_responder(config: PoolConfig, rng: random.Random) -> Any:
    async def respond(request: HttpRequest) -> bytes:
        msg = decode_json_object(request.body) if request.body else None
        if request.method != "POST" or msg is None:  # geth answers non-JSON with -32700
            body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            return _reply_bytes(_json_reply(body, 400, "Bad Request"), config.software)
        raw_id = msg.get("id")
        mid = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else 0
        method = msg.get("method")
        if method == "eth_getWork":
            work = ethereum.make_work(rng, difficulty=int(config.difficulty or 4_000_000_000))
            return _reply_bytes(_json_reply(ethereum.work_result(mid, work)), config.software)
        if method in ("eth_submitWork", "eth_submitHashrate"):
            return _reply_bytes(_json_reply(ethereum.bool_result(mid, True)), config.software)
        if method == "web3_clientVersion":
            version = "CoreGeth/v1.12.20-stable/linux-amd64/go1.21.10"
            return _reply_bytes(
                _json_reply({"jsonrpc": "2.0", "id": mid, "result": version}), config.software
            )
        err = {"code": -32601, "message": f"the method {method} does not exist/is not available"}
        return _reply_bytes(_json_reply({"jsonrpc": "2.0", "id": mid, "error": err}), config.software)

    return respond


# --------------------------------------------------------------------------------------
# Stratum V2 (handshake shape only)


def _sv2_handler(config: PoolConfig, stats: ServerStats, rng: random.Random) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        act1 = await reader.readexactly(sv2.ACT1_SIZE)
        stats.bytes_received += len(act1)
        stats.note_request("noise-act1")
        writer.write(sv2.make_act2(random.Random(rng.random())))
        await writer.drain()
        while chunk := await reader.read(4096):  # waits for the (never coming) Act-3
            stats.bytes_received += len(chunk)

    return handle


# --------------------------------------------------------------------------------------
# Public API


async def start_pool(
    dialect: str,
    host: str = LOOPBACK_HOST,
    port: int = 0,
    *,
    tls: bool = False,
    config: PoolConfig | None = None,
    **overrides: Any,
) -> ServerHandle:
    """Start a pool emulator for ``dialect`` and return its running handle.

    Args:
        dialect: one of :data:`POOL_DIALECTS`.
        host: bind address (loopback by default).
        port: bind port (0: the kernel picks; read it from ``handle.port``).
        tls: TLS for line dialects, ``wss`` for ``coinhive``, HTTPS for daemons.
        config: a full :class:`PoolConfig` (its ``dialect`` is replaced by ``dialect``).
        overrides: :class:`PoolConfig` fields, e.g. ``wallet_policy="reject"``,
            ``job_interval=1.0``.

    Returns:
        A :class:`~.server.ServerHandle`; ``await handle.close()`` stops it.

    Raises:
        InputError: unknown dialect, bad policy, or a transport the dialect lacks.
    """
    base = config or PoolConfig(dialect)
    cfg = replace(base, dialect=dialect, **overrides)
    if not cfg.coin:
        cfg = replace(cfg, coin=DEFAULT_COIN[dialect])
    if tls and dialect in RAW_DIALECTS:
        raise InputError(f"--dialect {dialect}: Noise is its own encryption; --tls is not served")
    rng = random.Random(cfg.seed)
    stats = ServerStats()
    name = f"pool:{dialect}"
    if dialect in LINE_DIALECTS:
        handle = await start_stream_server(
            name, _line_handler(cfg, stats, rng), host=host, port=port, tls=tls, dialect=dialect, stats=stats
        )
    elif dialect in WS_DIALECTS:
        handle = await _start_coinhive(cfg, stats, rng, host=host, port=port, tls=tls, name=name)
    elif dialect in HTTP_DIALECTS:
        responder = {
            "bitcoind": _bitcoind_responder,
            "monerod": _monerod_responder,
            "geth": _geth_responder,
        }[dialect](cfg, rng)
        handle = await start_stream_server(
            name,
            http_stream_handler(responder, stats),
            host=host,
            port=port,
            tls=tls,
            dialect=dialect,
            stats=stats,
            transport="https" if tls else "http",
        )
        handle.path = "/json_rpc" if dialect == "monerod" else "/"
    else:
        handle = await start_stream_server(
            name, _sv2_handler(cfg, stats, rng), host=host, port=port, dialect=dialect, stats=stats
        )
    handle.extra["config"] = cfg
    return handle


async def _start_coinhive(
    cfg: PoolConfig, stats: ServerStats, rng: random.Random, *, host: str, port: int, tls: bool, name: str
) -> ServerHandle:
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

    path = cfg.ws_path if cfg.ws_path.startswith("/") else "/" + cfg.ws_path

    def only_our_path(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?")[0] != path:
            return connection.respond(404, "Not Found\n")
        return None

    handle = await start_ws_server(
        name,
        _coinhive_handler(cfg, stats, rng),
        host=host,
        port=port,
        tls=tls,
        dialect=cfg.dialect,
        path=path,
        stats=stats,
        process_request=only_our_path,
    )
    return handle


def dump_config(cfg: PoolConfig) -> str:
    """The config as JSON (for ``minerscope pool --print-config``-style output and logs)."""
    return json.dumps({k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, default=list)
