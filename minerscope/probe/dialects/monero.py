"""The xmrig/CryptoNote Stratum dialect (Monero and forks): both sides, and its judgement.

Unlike Stratum V1, ``params`` are *objects* (xmrig/xmrig-proxy doc/STRATUM.md): the miner
logs in with ``{login, pass, agent[, algo]}`` and the login result already carries the
first job ``{blob, job_id, target, id[, algo, height, seed_hash]}``, so one request is
enough to recognise a pool. The probe logs in with a valid address nobody holds
(:data:`PROBE_WALLET`), so a pool sends a job; one that refuses it (another coin's pool,
a banned address) with an error such as ``{"code": -1, "message": "Invalid payment
address provided"}`` still proves a pool is there (sMaSheD's rule), provided the control
request is not answered the same way.

Sizes follow the real captures (cj-sniffer, ndpi mining.pcapng): a hashing blob of 76-77
bytes (152-154 hex: major/minor version, varint timestamp, previous id, 4-byte nonce,
tree root, varint tx count), 4-byte little-endian targets (8 hex), job pushes ~300 B.

Builders (miner): :func:`login_request`, :func:`submit_request`, :func:`keepalived_request`,
:func:`make_wallet`, :func:`make_submit`. Builders (pool): :func:`make_blob`,
:func:`make_job`, :func:`login_result`, :func:`login_error`, :func:`job_push`,
:func:`submit_result`, :func:`keepalived_result`, :func:`target_for_difficulty`.
Parsers: :func:`parse_job`, :func:`parse_login_result`, :func:`parse_login_params`,
:func:`parse_submit_params`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from minerscope.errors import RemoteProtocolError
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
    no_json_result,
    reply_id,
    software_hints,
)
from minerscope.probe.dialects.bitcoin import POOL_REJECTION_RE
from minerscope.probe.framing import encode_json_line, rpc_notification, rpc_request, rpc_response
from minerscope.probe.verdict import DialectResult, Evidence, Outcome, Transport

LOGIN_ID = 1
DEFAULT_AGENT = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.4.0"
XMRIG_ALGOS = (
    "rx/0",
    "rx/wow",
    "rx/arq",
    "rx/graft",
    "rx/sfx",
    "rx/keva",
    "cn/r",
    "cn/half",
    "cn-pico",
    "argon2/chukwav2",
)
"""A typical xmrig ``algo`` list (the login advertises what the miner can hash)."""

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def make_wallet(rng: random.Random, *, integrated: bool = False) -> str:
    """A Monero-looking address: 95 base58 chars (106 integrated) starting ``4``.

    The checksum is random, so a real pool rejects it ("Invalid payment address provided").
    """
    length = 106 if integrated else 95
    return "4" + rng.choice("0123456789AB") + "".join(rng.choice(_BASE58) for _ in range(length - 2))


PROBE_WALLET = (
    "45CdSBtxjJ7D3X6PQdwE1QNH8gzE9c3BwDuKTQAhAFR3QEgdF1B8sVPctmE8zRcAbzYDqBuBEB2PB87sEua3EiBV69g7Kd5"
)
"""The wallet the probe presents: a valid mainnet address (checksum and keys) of a key
pair made once for this purpose (``monero-wallet-cli --offline``) whose keys were not
kept, so it is nobody's and nothing sent to it can be spent. It has to be valid: monerod
checks the address before it builds a block template (an invalid one only gets "Failed to
parse wallet address"), and real pools check it before they send a job."""

# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class Job:
    """A CryptoNote job as sent in a login result or a ``job`` push."""

    blob: str
    job_id: str
    target: str
    id: str = ""
    """The miner/session id the pool assigned (xmrig-proxy echoes it in jobs)."""
    algo: str | None = None
    height: int | None = None
    seed_hash: str | None = None
    next_seed_hash: str | None = None

    def to_json(self, *, sort_keys: bool = False) -> dict[str, Any]:
        """The job object, optional fields only when set.

        Field order is xmrig-proxy's (blob, job_id, target, id, algo, ...); ``sort_keys``
        gives the alphabetical order some pools use (algo, blob, height, job_id, ...,
        seen in cj-sniffer's captures).
        """
        out: dict[str, Any] = {"blob": self.blob, "job_id": self.job_id, "target": self.target}
        if self.id:
            out["id"] = self.id
        if self.algo is not None:
            out["algo"] = self.algo
        if self.height is not None:
            out["height"] = self.height
        if self.seed_hash is not None:
            out["seed_hash"] = self.seed_hash
        if self.next_seed_hash is not None:
            out["next_seed_hash"] = self.next_seed_hash
        return dict(sorted(out.items())) if sort_keys else out


@dataclass(frozen=True, slots=True)
class Login:
    """Parsed ``login`` params."""

    login: str
    password: str
    agent: str
    algos: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Submit:
    """Parsed ``submit`` params."""

    id: str
    job_id: str
    nonce: str
    result: str
    algo: str | None = None


# ---------------------------------------------------------------------------------------
# Miner side


def login_request(
    id: int,
    login: str,
    password: str = "x",
    agent: str = DEFAULT_AGENT,
    algos: Sequence[str] | None = XMRIG_ALGOS,
    *,
    rigid: str | None = None,
    jsonrpc: bool = True,
) -> dict[str, Any]:
    """``login`` with an object params ``{login, pass, agent[, rigid][, algo]}`` (xmrig order)."""
    params: dict[str, Any] = {"login": login, "pass": password, "agent": agent}
    if rigid is not None:
        params["rigid"] = rigid
    if algos:
        params["algo"] = list(algos)
    return rpc_request(id, "login", params, jsonrpc=jsonrpc)


def submit_request(
    id: int,
    session_id: str,
    job_id: str,
    nonce: str,
    result: str,
    algo: str | None = None,
    *,
    jsonrpc: bool = True,
) -> dict[str, Any]:
    """``submit`` {id, job_id, nonce (8 hex), result (64 hex)[, algo]}."""
    params: dict[str, Any] = {"id": session_id, "job_id": job_id, "nonce": nonce, "result": result}
    if algo is not None:
        params["algo"] = algo
    return rpc_request(id, "submit", params, jsonrpc=jsonrpc)


def make_submit(rng: random.Random, job: Job, session_id: str) -> Submit:
    """A random (unverified) share for ``job``: 4-byte nonce, 32-byte result hash."""
    result = rng.randbytes(30).hex() + "0000"  # a share hash ends in zero bytes (LE, below target)
    return Submit(session_id, job.job_id, rng.randbytes(4).hex(), result, job.algo)


def keepalived_request(id: int, session_id: str, *, jsonrpc: bool = True) -> dict[str, Any]:
    """``keepalived`` {id} (sent by xmrig when the pool is quiet)."""
    return rpc_request(id, "keepalived", {"id": session_id}, jsonrpc=jsonrpc)


# ---------------------------------------------------------------------------------------
# Pool side


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def make_blob(
    rng: random.Random,
    *,
    major: int = 16,
    minor: int = 16,
    timestamp: int = 1_732_000_000,
    tx_count: int = 40,
) -> str:
    """A CryptoNote hashing blob: versions, varint timestamp, prev id, zero nonce, tree root,
    varint tx count (+1 for the miner tx) -> 76 bytes for < 127 transactions, 77 above."""
    blob = (
        _varint(major)
        + _varint(minor)
        + _varint(timestamp)
        + rng.randbytes(32)
        + b"\x00\x00\x00\x00"
        + rng.randbytes(32)
        + _varint(tx_count + 1)
    )
    return blob.hex()


def target_for_difficulty(difficulty: int) -> str:
    """The compact 4-byte little-endian target xmrig-style pools send (8 hex chars)."""
    if difficulty <= 1:
        return "ffffffff"
    value = (2**32 - 1) // difficulty
    return value.to_bytes(4, "little").hex()


def make_job(
    rng: random.Random,
    *,
    session_id: str = "",
    algo: str | None = "rx/0",
    height: int | None = 3_280_000,
    difficulty: int = 120_000,
    seed_hash: bool = True,
    job_id: str | None = None,
    tx_count: int | None = None,
    timestamp: int = 1_732_000_000,
    next_seed_hash: str | None = None,
) -> Job:
    """A realistic job: blob from :func:`make_blob`, target from ``difficulty``
    (``next_seed_hash`` "" or 64 hex, as RandomX pools announce the next epoch's seed)."""
    n_tx = tx_count if tx_count is not None else rng.randrange(5, 200)
    return Job(
        blob=make_blob(rng, timestamp=timestamp, tx_count=n_tx),
        job_id=job_id if job_id is not None else f"{rng.getrandbits(48):x}",
        target=target_for_difficulty(difficulty),
        id=session_id,
        algo=algo,
        height=height,
        seed_hash=rng.randbytes(32).hex() if seed_hash else None,
        next_seed_hash=next_seed_hash,
    )


def login_result(
    id: int,
    session_id: str,
    job: Job,
    *,
    extensions: Sequence[str] | None = ("algo", "nicehash", "keepalive"),
    sort_job_keys: bool = False,
) -> dict[str, Any]:
    """The login result ``{id, job, [extensions], status: "OK"}`` (jsonrpc 2.0)."""
    result: dict[str, Any] = {"id": session_id, "job": job.to_json(sort_keys=sort_job_keys)}
    if extensions:
        result["extensions"] = list(extensions)
    result["status"] = "OK"
    return rpc_response(id, result, jsonrpc=True)


def login_error(id: int, message: str = "Invalid payment address provided", code: int = -1) -> dict[str, Any]:
    """A login refusal ``{"code": -1, "message": ...}`` (what a pool says to a wallet it will not pay)."""
    return rpc_response(id, None, {"code": code, "message": message}, jsonrpc=True)


def job_push(job: Job, *, sort_job_keys: bool = False) -> dict[str, Any]:
    """Server push ``{"jsonrpc": "2.0", "method": "job", "params": {...}}`` (no id)."""
    msg = rpc_notification("job", job.to_json(sort_keys=sort_job_keys), jsonrpc=True)
    del msg["id"]
    return msg


def submit_result(id: int, ok: bool = True, message: str = "Low difficulty share") -> dict[str, Any]:
    """``{"status": "OK"}`` or an error object (``Low difficulty share``, ``Block expired`` ...)."""
    if ok:
        return rpc_response(id, {"status": "OK"}, jsonrpc=True)
    return rpc_response(id, None, {"code": -1, "message": message}, jsonrpc=True)


def keepalived_result(id: int) -> dict[str, Any]:
    """``{"status": "KEEPALIVED"}``."""
    return rpc_response(id, {"status": "KEEPALIVED"}, jsonrpc=True)


# ---------------------------------------------------------------------------------------
# Parsers


def parse_job(obj: object) -> Job:
    """Parse a job object (login result ``job`` or ``job`` push params).

    Requires ``blob`` (hex, >= 39 bytes: the smallest CryptoNote header), ``job_id``
    (non-empty string) and ``target`` (4 or 8 bytes of hex).

    Raises:
        RemoteProtocolError: naming the missing or malformed field.
    """
    if not isinstance(obj, Mapping):
        raise RemoteProtocolError("job: not an object")
    blob, job_id, target = obj.get("blob"), obj.get("job_id"), obj.get("target")
    if not is_hex(blob) or len(str(blob)) < 78:
        raise RemoteProtocolError("job: blob is not hex of >= 39 bytes")
    if not isinstance(job_id, str) or not job_id:
        raise RemoteProtocolError("job: job_id is not a non-empty string")
    if not (is_hex(target, 4) or is_hex(target, 8)):
        raise RemoteProtocolError("job: target is not 4- or 8-byte hex")
    algo = obj.get("algo")
    height = obj.get("height")
    seed = obj.get("seed_hash")
    nseed = obj.get("next_seed_hash")
    sid = obj.get("id")
    assert isinstance(blob, str) and isinstance(target, str)
    return Job(
        blob,
        job_id,
        target,
        sid if isinstance(sid, str) else "",
        algo if isinstance(algo, str) else None,
        height if isinstance(height, int) and not isinstance(height, bool) else None,
        seed if isinstance(seed, str) else None,
        nseed if isinstance(nseed, str) else None,
    )


def parse_login_result(result: object) -> tuple[str, Job | None]:
    """(session id, first job or None) of a login result.

    Raises:
        RemoteProtocolError: not an object with a string ``id`` (and a valid ``job`` if any).
    """
    if not isinstance(result, Mapping):
        raise RemoteProtocolError("login result: not an object")
    sid = result.get("id")
    if not isinstance(sid, str) or not sid:
        raise RemoteProtocolError("login result: id is not a non-empty string")
    job = result.get("job")
    return sid, (parse_job(job) if job is not None else None)


def parse_login_params(params: object) -> Login:
    """Parse ``login`` params ``{login, pass, agent[, algo]}``.

    Raises:
        RemoteProtocolError: params is not an object with a string ``login``.
    """
    if not isinstance(params, Mapping) or not isinstance(params.get("login"), str):
        raise RemoteProtocolError("login: params is not an object with a string login")
    algos = params.get("algo")
    return Login(
        str(params["login"]),
        str(params.get("pass", "")),
        str(params.get("agent", "")),
        tuple(a for a in algos if isinstance(a, str)) if isinstance(algos, list) else (),
    )


def parse_submit_params(params: object) -> Submit:
    """Parse ``submit`` params.

    Raises:
        RemoteProtocolError: a field is missing, or nonce/result are not hex.
    """
    if not isinstance(params, Mapping):
        raise RemoteProtocolError("submit: params is not an object")
    fields = [params.get(k) for k in ("id", "job_id", "nonce", "result")]
    if not all(isinstance(v, str) for v in fields):
        raise RemoteProtocolError("submit: id/job_id/nonce/result are not all strings")
    sid, job_id, nonce, result = (str(v) for v in fields)
    if not is_hex(nonce) or not is_hex(result, 32):
        raise RemoteProtocolError("submit: nonce is not hex or result is not 32-byte hex")
    algo = params.get("algo")
    return Submit(sid, job_id, nonce, result, algo if isinstance(algo, str) else None)


# ---------------------------------------------------------------------------------------
# Judgement


def _job_evidence(job: Job) -> list[Evidence]:
    ev = [
        Evidence("job_id", job.job_id),
        Evidence("target", job.target),
        Evidence("blob_bytes", str(len(job.blob) // 2)),
    ]
    if job.algo:
        ev.append(Evidence("algo", job.algo))
    if job.height is not None:
        ev.append(Evidence("height", str(job.height)))
    if job.seed_hash:
        ev.append(Evidence("seed_hash", job.seed_hash))
    return ev


def judge_cryptonote(
    dialect: str,
    msgs: Sequence[JsonObject],
    control: Sequence[JsonObject] | None,
    *,
    login_ids: Sequence[object] = (LOGIN_ID,),
) -> tuple[Outcome, float, list[Evidence], str]:
    """Judge already-decoded, echo-free replies to an xmrig ``login``.

    Returns (outcome, confidence, evidence, reason); shared with the browser dialect's
    proxies, which forward the same job objects.
    """
    ev: list[Evidence] = []
    strong: list[str] = []
    rejections: list[str] = []
    not_found = 0
    others: list[str] = []
    for msg in msgs:
        err = msg.get("error")
        if err not in (None, False):
            if is_method_not_found(msg):
                not_found += 1
            elif POOL_REJECTION_RE.search(error_text(err)) or "login" in error_text(err).lower():
                rejections.append(error_text(err))
            else:
                others.append(error_text(err))
            continue
        if msg.get("method") == "job":
            try:
                pushed = parse_job(msg.get("params"))
            except RemoteProtocolError:
                continue
            strong.append("job push")
            ev.extend(_job_evidence(pushed))
        elif reply_id(msg) in id_set(login_ids) and "result" in msg:
            try:
                sid, job = parse_login_result(msg.get("result"))
            except RemoteProtocolError:
                continue
            result = msg.get("result")
            assert isinstance(result, dict)
            if job is not None:
                strong.append("login result with job")
                ev.extend(_job_evidence(job))
            elif result.get("status") == "OK":
                strong.append("login result status OK")
            ev.append(Evidence("session_id", sid))
            ext = result.get("extensions")
            if isinstance(ext, list):
                ev.append(Evidence("extensions", ",".join(str(x) for x in ext)))
    alike = control is not None and answered_alike(msgs, control)
    if strong:
        conf = 0.95 if any("job" in s for s in strong) else 0.6
        reason = "; ".join(dict.fromkeys(strong))
        if alike:
            conf, reason = min(conf, 0.7), reason + " (control answered alike)"
        return Outcome.SUCCESS, conf, ev, reason
    if rejections:
        if alike:
            return Outcome.NONE, 0.0, ev, "rejection text is the server's answer to anything"
        conf = 0.75 if control is not None else 0.4
        return (
            Outcome.ERROR,
            conf,
            [*ev, *(Evidence("error", t) for t in rejections[:3])],
            "pool refused our login",
        )
    if not_found:
        return Outcome.NONE, 0.0, ev, "generic JSON-RPC: method not found"
    if others:
        return Outcome.NONE, 0.0, [Evidence("error", others[0])], "JSON-RPC error without pool semantics"
    return Outcome.NONE, 0.0, ev, "JSON without CryptoNote shape"


CLIENT_METHODS = frozenset({"login", "submit", "keepalived", "getjob"})


def cryptonote_passive(
    client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
) -> tuple[list[str], list[Evidence]] | None:
    """Methods and evidence of the xmrig dialect in a flow's messages (None: not present)."""
    methods: list[str] = []
    ev: list[Evidence] = []
    for msg in client_msgs:
        method = msg.get("method")
        params = msg.get("params")
        try:
            if method == "login":
                login = parse_login_params(params)
                if not isinstance(params, Mapping) or not ("pass" in params or "agent" in params):
                    continue  # a web API's {"login": ...} is not enough; miners always send pass/agent
                if login.agent:
                    ev.append(Evidence("agent", login.agent))
            elif method == "submit":
                parse_submit_params(params)
            elif method == "keepalived" and isinstance(params, Mapping) and "id" in params:
                pass
            else:
                continue
        except RemoteProtocolError:
            continue
        methods.append(str(method))
    for msg in server_msgs:
        result = msg.get("result")
        job: Job | None = None
        try:
            if msg.get("method") == "job":
                job = parse_job(msg.get("params"))
                methods.append("job")
            elif isinstance(result, Mapping) and "job" in result:
                job = parse_login_result(result)[1]
                methods.append("login-result")
        except RemoteProtocolError:
            continue
        if job is None:
            continue
        if job.algo:
            ev.append(Evidence("algo", job.algo))
    if not methods:
        return None
    return list(dict.fromkeys(methods)), list(dict.fromkeys(ev))


class XmrigStratum(Dialect):
    """The xmrig/CryptoNote login dialect."""

    name = "xmrig"
    family = Family.MONERO
    framing = Framing.LINE
    transports = (Transport.TCP, Transport.TLS)
    default_ports = (3333, 4444, 5555, 7777, 9999, 10128, 10001, 14444, 443)

    def _login(self, ctx: ProbeContext) -> dict[str, Any]:
        return login_request(LOGIN_ID, ctx.wallet or PROBE_WALLET, ctx.password, ctx.agent or DEFAULT_AGENT)

    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        return [Request("login", encode_json_line(self._login(ctx)), reply_id=LOGIN_ID)]

    def control_request(self, ctx: ProbeContext) -> Request:
        params = {
            "login": ctx.wallet or PROBE_WALLET,
            "pass": ctx.password,
            "agent": ctx.agent or DEFAULT_AGENT,
        }
        msg = rpc_request(CONTROL_ID, CONTROL_METHOD, params, jsonrpc=True)
        return Request(CONTROL_METHOD, encode_json_line(msg), reply_id=CONTROL_ID)

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        msgs = decode_messages(replies)
        if not msgs:
            return no_json_result(self.name, replies)
        sent = [self._login(ProbeContext("", 0))]
        own = [m for m in msgs if not is_echo(m, sent)]
        if not own:
            return DialectResult.none(self.name, "echo of our request")
        control = decode_messages(control_replies) if control_replies is not None else None
        outcome, conf, ev, reason = judge_cryptonote(self.name, own, control)
        if outcome is Outcome.NONE:
            return DialectResult.none(self.name, reason, ev)
        hints = [Evidence("software", h) for h in software_hints(own)]
        evidence = (*self.identity(), *ev, *hints)
        return DialectResult(self.name, outcome, conf, evidence, reason)

    def passive_match(
        self, client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
    ) -> DialectResult | None:
        found = cryptonote_passive(client_msgs, server_msgs)
        if found is None:
            return None
        methods, ev = found
        return self.passive_result(methods, "plaintext xmrig Stratum", *ev)


XMRIG = XmrigStratum()
