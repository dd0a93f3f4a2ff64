"""Ethereum-family pool dialects: NiceHash EthereumStratum/1.0.0 and eth-proxy.

Clients had to guess the flavour by trial (EthereumStratum/2.0.0 draft), and so must a
probe, hence two dialect objects:

* ``ethstratum`` (nicehash/Specifications EthereumStratum_NiceHash_v1.0.0): Stratum-V1
  method names with Ethereum contents: subscribe ``[agent, "EthereumStratum/1.0.0"]``,
  result ``[["mining.notify", id, "EthereumStratum/1.0.0"], extranonce]``, notify
  ``[job id, seedhash, headerhash, clean]``, submit ``[worker, job id, miner nonce]``.
  Its replies are judged by :func:`~.bitcoin.judge_stratum`, which knows this shape.
* ``ethproxy`` (Atrides/eth-proxy; seen in cj-sniffer's ethminer captures and nanopool in
  ndpi mining.pcapng): JSON-RPC ``eth_submitLogin``/``eth_getWork``/``eth_submitWork``/
  ``eth_submitHashrate`` with a top-level ``worker`` field; work is a 3-element array of
  32-byte ``0x`` hex, pushed unsolicited with ``id: 0``.

The judgement insists on that exact triple: node endpoints answer ``eth_getWork`` with
"no mining work available yet" and TRON returns arrays with nulls (PROTOCOLS.md §2.5).

Builders (miner): :func:`nh_subscribe_request`, :func:`nh_authorize_request`,
:func:`nh_submit_request`, :func:`submit_login_request`, :func:`get_work_request`,
:func:`submit_work_request`, :func:`submit_hashrate_request`, :func:`make_wallet`.
Builders (pool): :func:`nh_subscribe_result`, :func:`nh_set_difficulty`, :func:`nh_notify`,
:func:`nh_set_extranonce`, :func:`bool_result`, :func:`work_result`, :func:`make_work`,
:func:`boundary_for_difficulty`.
Parsers: :func:`parse_work`, :func:`parse_nh_notify`, :func:`parse_submit_work`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from minerscope.errors import RemoteProtocolError
from minerscope.probe.dialects import bitcoin
from minerscope.probe.dialects.base import (
    CONTROL_ID,
    CONTROL_METHOD,
    Dialect,
    Family,
    Framing,
    JsonObject,
    ProbeContext,
    Reply,
    Request,
    answered_alike,
    decode_messages,
    error_text,
    id_set,
    is_echo,
    is_hex,
    is_method_not_found,
    line_requests,
    no_json_result,
    reply_id,
    software_hints,
)
from minerscope.probe.framing import encode_json_line, rpc_notification, rpc_request, rpc_response
from minerscope.probe.verdict import DialectResult, Evidence, Outcome, Transport

PROTOCOL = "EthereumStratum/1.0.0"
DEFAULT_AGENT = "ethminer/0.19.0"
NH_AGENT = "NBMiner/42.3"
LOGIN_ID = 1
GETWORK_ID = 2
FAKE_WALLET = "0x" + random.Random(0xE7E).randbytes(20).hex()
"""A syntactically valid, deterministic, unowned-looking Ethereum address for probes."""

NODE_ERROR_RE = re.compile(
    r"no mining work available|mining (?:is )?not (?:ready|started|enabled)|not mining|"
    r"no work (?:available|ready)|syncing|unsupported on|execution reverted",
    re.IGNORECASE,
)
"""Errors from *nodes* (geth/Infura/post-Merge endpoints): never evidence of a pool."""


def make_wallet(rng: random.Random) -> str:
    """A random ``0x`` + 40 hex address."""
    return "0x" + rng.randbytes(20).hex()


# ---------------------------------------------------------------------------------------
# eth-proxy


@dataclass(frozen=True, slots=True)
class Work:
    """The eth_getWork triple: header pow-hash, seed hash, boundary (all ``0x`` + 64 hex)."""

    header: str
    seed: str
    boundary: str

    def to_json(self) -> list[str]:
        """The result array as sent."""
        return [self.header, self.seed, self.boundary]


def submit_login_request(
    id: int,
    wallet: str,
    password: str = "x",
    *,
    worker: str | None = None,
    email: str | None = None,
    jsonrpc: bool = False,
) -> dict[str, Any]:
    """``eth_submitLogin`` [wallet(/worker/email), password] (+ top-level ``worker``)."""
    login = wallet if email is None else f"{wallet}/{worker or 'rig'}/{email}"
    extra = {"worker": worker} if worker is not None else None
    return rpc_request(id, "eth_submitLogin", [login, password], jsonrpc=jsonrpc, extra=extra)


def get_work_request(id: int, *, worker: str | None = None, jsonrpc: bool = False) -> dict[str, Any]:
    """``eth_getWork`` [] (+ top-level ``worker``)."""
    extra = {"worker": worker} if worker is not None else None
    return rpc_request(id, "eth_getWork", [], jsonrpc=jsonrpc, extra=extra)


def submit_work_request(
    id: int, nonce: str, header: str, mix_digest: str, *, worker: str | None = None, jsonrpc: bool = False
) -> dict[str, Any]:
    """``eth_submitWork`` [nonce (0x + 16 hex), header hash, mix digest]."""
    extra = {"worker": worker} if worker is not None else None
    return rpc_request(id, "eth_submitWork", [nonce, header, mix_digest], jsonrpc=jsonrpc, extra=extra)


def submit_hashrate_request(
    id: int, hashrate: int, client_id: str, *, worker: str | None = None, jsonrpc: bool = True
) -> dict[str, Any]:
    """``eth_submitHashrate`` [hashrate as 0x hex, 32-byte client id] (ethminer sends id 6)."""
    extra = {"worker": worker} if worker is not None else None
    return rpc_request(id, "eth_submitHashrate", [hex(hashrate), client_id], jsonrpc=jsonrpc, extra=extra)


def bool_result(id: int, ok: bool = True, *, jsonrpc: bool = True) -> dict[str, Any]:
    """``{"jsonrpc": "2.0", "id": id, "result": true}`` (login and submit acknowledgements)."""
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "result": ok} if jsonrpc else {"id": id, "result": ok}
    return msg


def boundary_for_difficulty(difficulty: int) -> str:
    """The eth_getWork boundary ``2**256 // difficulty`` as ``0x`` + 64 hex."""
    value = (2**256 - 1) // max(1, difficulty)
    return "0x" + value.to_bytes(32, "big").hex()


def make_work(rng: random.Random, *, difficulty: int = 4_000_000_000, seed: str | None = None) -> Work:
    """A fresh work triple (random header hash; ``seed`` kept across jobs of an epoch)."""
    return Work(
        "0x" + rng.randbytes(32).hex(),
        seed if seed is not None else "0x" + rng.randbytes(32).hex(),
        boundary_for_difficulty(difficulty),
    )


def work_result(id: int, work: Work, *, jsonrpc: bool = True) -> dict[str, Any]:
    """A work reply (``id`` of the eth_getWork) or an unsolicited push (``id`` 0)."""
    return (
        {"jsonrpc": "2.0", "id": id, "result": work.to_json()}
        if jsonrpc
        else {"id": id, "result": work.to_json()}
    )


def parse_work(result: object) -> Work:
    """Parse an eth_getWork result: exactly 3 (or 4, with block number) ``0x`` 32-byte hex.

    Raises:
        RemoteProtocolError: wrong arity, nulls, or malformed hex (TRON, node placeholders).
    """
    if not isinstance(result, list) or len(result) not in (3, 4):
        raise RemoteProtocolError("eth_getWork: result is not a 3-element array")
    if not all(is_hex(v, 32, prefix=True) for v in result[:3]):
        raise RemoteProtocolError("eth_getWork: elements are not 0x-prefixed 32-byte hex")
    header, seed, boundary = (str(v) for v in result[:3])
    if int(boundary, 16) == 0 or int(header, 16) == 0:
        raise RemoteProtocolError("eth_getWork: zero header or boundary (placeholder work)")
    return Work(header, seed, boundary)


def parse_submit_work(params: object) -> tuple[str, str, str]:
    """(nonce, header, mix digest) of eth_submitWork params.

    Raises:
        RemoteProtocolError: not [8-byte hex, 32-byte hex, 32-byte hex].
    """
    if (
        isinstance(params, list)
        and len(params) >= 3
        and is_hex(params[0], 8, prefix=True)
        and is_hex(params[1], 32, prefix=True)
        and is_hex(params[2], 32, prefix=True)
    ):
        return str(params[0]), str(params[1]), str(params[2])
    raise RemoteProtocolError("eth_submitWork: params are not [nonce, header, mix digest]")


# ---------------------------------------------------------------------------------------
# NiceHash EthereumStratum/1.0.0


@dataclass(frozen=True, slots=True)
class NhJob:
    """A NiceHash EthereumStratum notify: job id, seedhash, headerhash (64 hex, no 0x), clean."""

    job_id: str
    seedhash: str
    headerhash: str
    clean_jobs: bool = True


def nh_subscribe_request(id: int, agent: str = NH_AGENT, *, jsonrpc: bool = False) -> dict[str, Any]:
    """``mining.subscribe`` [agent, "EthereumStratum/1.0.0"]."""
    return rpc_request(id, "mining.subscribe", [agent, PROTOCOL], jsonrpc=jsonrpc)


def nh_authorize_request(
    id: int, worker: str, password: str = "x", *, jsonrpc: bool = False
) -> dict[str, Any]:
    """``mining.authorize`` [wallet.worker, password]."""
    return rpc_request(id, "mining.authorize", [worker, password], jsonrpc=jsonrpc)


def nh_subscribe_result(id: int, subscription_id: str, extranonce: str) -> dict[str, Any]:
    """``[["mining.notify", subscription id, "EthereumStratum/1.0.0"], extranonce]``."""
    return rpc_response(id, [["mining.notify", subscription_id, PROTOCOL], extranonce])


def nh_set_difficulty(difficulty: float) -> dict[str, Any]:
    """``mining.set_difficulty`` [float] (difficulty 1 = target 0x00000000ffff...)."""
    return rpc_notification("mining.set_difficulty", [difficulty])


def nh_set_extranonce(extranonce: str) -> dict[str, Any]:
    """``mining.set_extranonce`` [extranonce]."""
    return rpc_notification("mining.set_extranonce", [extranonce])


def make_nh_job(rng: random.Random, *, seedhash: str | None = None, clean_jobs: bool = True) -> NhJob:
    """A NiceHash job with a short hex job id (~240-byte notify on the wire)."""
    return NhJob(
        f"{rng.getrandbits(32):08x}",
        seedhash if seedhash is not None else rng.randbytes(32).hex(),
        rng.randbytes(32).hex(),
        clean_jobs,
    )


def nh_notify(job: NhJob) -> dict[str, Any]:
    """``mining.notify`` [job id, seedhash, headerhash, clean]."""
    return rpc_notification("mining.notify", [job.job_id, job.seedhash, job.headerhash, job.clean_jobs])


def nh_submit_request(
    id: int, worker: str, job_id: str, miner_nonce: str, *, jsonrpc: bool = False
) -> dict[str, Any]:
    """``mining.submit`` [worker, job id, miner nonce (8 bytes minus extranonce, hex)]."""
    return rpc_request(id, "mining.submit", [worker, job_id, miner_nonce], jsonrpc=jsonrpc)


def parse_nh_notify(params: object) -> NhJob:
    """Parse a NiceHash notify.

    Raises:
        RemoteProtocolError: not [job id, 32-byte hex, 32-byte hex, bool].
    """
    if (
        isinstance(params, list)
        and len(params) >= 4
        and isinstance(params[0], str)
        and is_hex(params[1], 32)
        and is_hex(params[2], 32)
        and isinstance(params[3], bool)
    ):
        return NhJob(params[0], str(params[1]), str(params[2]), params[3])
    raise RemoteProtocolError("EthereumStratum mining.notify: params are not [job, seed, header, clean]")


# ---------------------------------------------------------------------------------------
# Judgement


def judge_ethproxy(
    dialect: str,
    msgs: Sequence[JsonObject],
    control: Sequence[JsonObject] | None,
    *,
    login_ids: Sequence[object] = (LOGIN_ID,),
) -> tuple[Outcome, float, list[Evidence], str]:
    """Judge echo-free replies to eth_submitLogin + eth_getWork (also used over HTTP)."""
    ev: list[Evidence] = []
    strong: list[str] = []
    login_ok = False
    rejections: list[str] = []
    node_errors: list[str] = []
    not_found = 0
    others: list[str] = []
    for msg in msgs:
        err = msg.get("error")
        if err not in (None, False):
            text = error_text(err)
            if NODE_ERROR_RE.search(text):
                node_errors.append(text)
            elif is_method_not_found(msg):
                not_found += 1
            elif bitcoin.POOL_REJECTION_RE.search(text):
                rejections.append(text)
            else:
                others.append(text)
            continue
        result = msg.get("result")
        if isinstance(result, list):
            try:
                work = parse_work(result)
            except RemoteProtocolError:
                if any(v is None for v in result):
                    node_errors.append("work array with nulls (TRON-style node)")
                continue
            strong.append("eth_getWork triple")
            ev.append(Evidence("header", work.header))
            ev.append(Evidence("seed_hash", work.seed))
            ev.append(Evidence("boundary", work.boundary))
            boundary = int(work.boundary, 16)
            if boundary:
                ev.append(Evidence("difficulty", str((2**256 - 1) // boundary)))
        elif result is True and reply_id(msg) in id_set(login_ids):
            login_ok = True
        elif result is False and reply_id(msg) in id_set(login_ids):
            rejections.append("eth_submitLogin returned false")
    alike = control is not None and answered_alike(msgs, control)
    if strong:
        reason = "eth_getWork triple" + (" (control answered alike)" if alike else "")
        return Outcome.SUCCESS, 0.7 if alike else 0.95, ev, reason
    if node_errors:
        return Outcome.NONE, 0.0, [Evidence("error", node_errors[0])], "node error (a node, not a pool)"
    if login_ok:
        if alike:
            return Outcome.NONE, 0.0, ev, "login true, but the control got the same answer"
        return (
            Outcome.SUCCESS,
            0.6 if control is not None else 0.4,
            [*ev, Evidence("login", "true")],
            "eth_submitLogin accepted",
        )
    if rejections:
        if alike:
            return Outcome.NONE, 0.0, ev, "rejection text is the server's answer to anything"
        conf = 0.75 if control is not None else 0.4
        return (
            Outcome.ERROR,
            conf,
            [*ev, *(Evidence("error", t) for t in rejections[:3])],
            "pool refused our fake wallet",
        )
    if not_found:
        return Outcome.NONE, 0.0, ev, "generic JSON-RPC: method not found"
    if others:
        return Outcome.NONE, 0.0, [Evidence("error", others[0])], "JSON-RPC error without pool semantics"
    return Outcome.NONE, 0.0, ev, "JSON without eth-proxy shape"


ETHPROXY_CLIENT_METHODS = frozenset(
    {"eth_submitLogin", "eth_getWork", "eth_submitWork", "eth_submitHashrate", "eth_login"}
)


def ethproxy_passive(
    client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
) -> list[str] | None:
    """Methods of the eth-proxy dialect in a flow (None: not present).

    ``eth_getWork``/``eth_submitHashrate`` alone are also wallet-less node calls, so a flow
    needs a pool-only method (``eth_submitLogin``), a ``worker`` field, a well-formed
    ``eth_submitWork``, or a work triple from the server.
    """
    methods: list[str] = []
    pool_only = False
    for msg in client_msgs:
        method = msg.get("method")
        if (
            isinstance(method, str)
            and method in ETHPROXY_CLIENT_METHODS
            and isinstance(msg.get("params"), list)
        ):
            methods.append(method)
            if method in ("eth_submitLogin", "eth_login") or "worker" in msg:
                pool_only = True
            if method == "eth_submitWork":
                try:
                    parse_submit_work(msg.get("params"))
                    pool_only = True
                except RemoteProtocolError:
                    pass
    for msg in server_msgs:
        if isinstance(msg.get("result"), list):
            try:
                parse_work(msg.get("result"))
            except RemoteProtocolError:
                continue
            methods.append("work")
            pool_only = True
    if not methods or not pool_only:
        return None
    return list(dict.fromkeys(methods))


class EthProxy(Dialect):
    """eth-proxy: ``eth_submitLogin`` then ``eth_getWork``, JSON-RPC 2.0 with ``worker``."""

    name = "ethproxy"
    family = Family.ETHEREUM
    framing = Framing.LINE
    transports = (Transport.TCP, Transport.TLS)
    default_ports = (8008, 8888, 9999, 4444, 6688, 14444, 5555)

    def _requests(self, ctx: ProbeContext) -> list[dict[str, Any]]:
        worker = ctx.worker or "eth1.0"
        return [
            submit_login_request(
                LOGIN_ID, ctx.wallet or FAKE_WALLET, ctx.password, worker=worker, jsonrpc=True
            ),
            get_work_request(GETWORK_ID, worker=worker, jsonrpc=True),
        ]

    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        return line_requests(self._requests(ctx))

    def control_request(self, ctx: ProbeContext) -> Request:
        msg = rpc_request(
            CONTROL_ID,
            CONTROL_METHOD,
            [ctx.wallet or FAKE_WALLET, ctx.password],
            jsonrpc=True,
            extra={"worker": ctx.worker or "eth1.0"},
        )
        return Request(CONTROL_METHOD, encode_json_line(msg), reply_id=CONTROL_ID)

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        msgs = decode_messages(replies)
        if not msgs:
            return no_json_result(self.name, replies)
        own = [m for m in msgs if not is_echo(m, self._requests(ProbeContext("", 0)))]
        if not own:
            return DialectResult.none(self.name, "echo of our request")
        control = decode_messages(control_replies) if control_replies is not None else None
        outcome, conf, ev, reason = judge_ethproxy(self.name, own, control)
        if outcome is Outcome.NONE:
            return DialectResult.none(self.name, reason, ev)
        hints = [Evidence("software", h) for h in software_hints(own)]
        evidence = (*self.identity(), *ev, *hints)
        return DialectResult(self.name, outcome, conf, evidence, reason)

    def passive_match(
        self, client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
    ) -> DialectResult | None:
        methods = ethproxy_passive(client_msgs, server_msgs)
        if methods is None:
            return None
        return self.passive_result(methods, "plaintext eth-proxy Stratum")


class EthereumStratum(Dialect):
    """NiceHash EthereumStratum/1.0.0: subscribe with the protocol string, then authorize."""

    name = "ethstratum"
    family = Family.ETHEREUM
    framing = Framing.LINE
    transports = (Transport.TCP, Transport.TLS)
    default_ports = (3353, 3354, 4444, 9999, 443)

    def _requests(self, ctx: ProbeContext) -> list[dict[str, Any]]:
        worker = f"{ctx.wallet or FAKE_WALLET}.{ctx.worker or 'probe'}"
        return [
            nh_subscribe_request(bitcoin.SUBSCRIBE_ID, ctx.agent or NH_AGENT),
            nh_authorize_request(bitcoin.AUTHORIZE_ID, worker, ctx.password),
        ]

    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        return line_requests(self._requests(ctx))

    def control_request(self, ctx: ProbeContext) -> Request:
        msg = rpc_request(CONTROL_ID, CONTROL_METHOD, [ctx.agent or NH_AGENT, PROTOCOL])
        return Request(CONTROL_METHOD, encode_json_line(msg), reply_id=CONTROL_ID)

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        return bitcoin.judge_stratum(
            self.name,
            replies,
            control_replies,
            self._requests(ProbeContext("", 0)),
            default_family=Family.ETHEREUM,
        )

    def passive_match(
        self, client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
    ) -> DialectResult | None:
        found = bitcoin.stratum_family(client_msgs, server_msgs)
        if found is None or found[0] is not Family.ETHEREUM:
            return None
        return self.passive_result(found[1], "plaintext EthereumStratum")


ETHPROXY = EthProxy()
ETHSTRATUM = EthereumStratum()
