"""Stratum V1 (Bitcoin family): both sides' messages, and the judgement of Stratum replies.

The builders produce the real wire shapes and sizes (PROTOCOLS.md §5.1): a subscription
result ``[[[name, id], ...], extranonce1, extranonce2_size]``; ``mining.notify`` with a
coinbase split around the extranonces, a merkle branch per level of the block's
transaction tree (``ceil(log2(tx_count + 1))`` hashes of 64 hex chars) and 8-hex-char
version/nbits/ntime; V1 errors as ``[code, message, null]``. Randomised parts take a
``random.Random`` so the traffic lab is reproducible; nothing here touches global
randomness.

:func:`judge_stratum` is shared with the Zcash and NiceHash-Ethereum variants, because a
pool answers whichever ``mining.subscribe`` it receives in *its* coin's shape: the judge
recognises all three shapes and reports the coin family it saw, whichever probe asked.

Builders (miner side): :func:`configure_request`, :func:`subscribe_request`,
:func:`authorize_request`, :func:`extranonce_subscribe_request`,
:func:`suggest_difficulty_request`, :func:`submit_request`.
Builders (pool side): :func:`configure_result`, :func:`subscribe_result`,
:func:`authorize_result`, :func:`set_difficulty`, :func:`notify`, :func:`submit_result`,
:func:`set_extranonce`, :func:`reconnect`, :func:`stratum_error`, :func:`make_notify_job`,
:func:`make_extranonce1`, :func:`make_submit_params`.
Parsers: :func:`parse_subscribe_result`, :func:`parse_notify`, :func:`parse_difficulty`,
:func:`parse_submit`. All builders return JSON-ready dicts; send them with
:func:`minerscope.probe.framing.encode_json_line`.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
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
    error_code,
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

SUBSCRIBE_ID = 1
AUTHORIZE_ID = 2
DEFAULT_AGENT = "cgminer/4.12.1"
DEFAULT_WORKER = "minerscope.probe"

ERR_OTHER = 20
ERR_JOB_NOT_FOUND = 21
ERR_DUPLICATE = 22
ERR_LOW_DIFFICULTY = 23
ERR_UNAUTHORIZED = 24
ERR_NOT_SUBSCRIBED = 25
STRATUM_ERRORS = {
    ERR_OTHER: "Other/Unknown",
    ERR_JOB_NOT_FOUND: "Job not found",
    ERR_DUPLICATE: "Duplicate share",
    ERR_LOW_DIFFICULTY: "Low difficulty share",
    ERR_UNAUTHORIZED: "Unauthorized worker",
    ERR_NOT_SUBSCRIBED: "Not subscribed",
}
"""The V1 error codes every pool implementation shares (slush's original list)."""

POOL_REJECTION_RE = re.compile(
    r"invalid (?:payment |wallet |mining |miner )?address|(?:address|wallet|login|username|worker)"
    r"[^.]{0,40}(?:invalid|not valid|incorrect|malformed|is not)|"
    r"invalid (?:user|username|login|worker|wallet|miner|account|credentials|password)|"
    r"unauthori[sz]ed|not authori[sz]ed|authori[sz]ation (?:failed|required)|"
    r"(?:worker|user|account|miner)[^.]{0,30}not (?:found|registered|allowed|exist)|"
    r"unknown (?:worker|user|account|miner)|bad (?:user|worker|wallet|address|login)|"
    r"login (?:failed|error|rejected|required)|wrong (?:wallet|address|user)|banned|"
    r"not subscribed|not logged in",
    re.IGNORECASE,
)
"""Error texts by which a real pool refuses our fake credentials (the pool exists)."""

# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class Subscription:
    """A parsed ``mining.subscribe`` result."""

    extranonce1: str
    extranonce2_size: int | None
    subscriptions: tuple[tuple[str, str], ...]
    protocol: str = ""
    """``EthereumStratum/1.0.0`` for NiceHash-Ethereum subscriptions, else empty."""


@dataclass(frozen=True, slots=True)
class NotifyJob:
    """The nine positional parameters of a Bitcoin-family ``mining.notify``."""

    job_id: str
    prevhash: str
    coinb1: str
    coinb2: str
    merkle_branch: tuple[str, ...]
    version: str
    nbits: str
    ntime: str
    clean_jobs: bool

    def params(self) -> list[Any]:
        """The ``params`` array as sent on the wire."""
        return [
            self.job_id,
            self.prevhash,
            self.coinb1,
            self.coinb2,
            list(self.merkle_branch),
            self.version,
            self.nbits,
            self.ntime,
            self.clean_jobs,
        ]


@dataclass(frozen=True, slots=True)
class Share:
    """A parsed ``mining.submit``."""

    worker: str
    job_id: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None = None


# ---------------------------------------------------------------------------------------
# Miner-side builders


def configure_request(
    id: int, *, version_mask: str = "1fffe000", min_bit_count: int = 2, jsonrpc: bool = False
) -> dict[str, Any]:
    """BIP 310 ``mining.configure`` asking for version rolling (ASIC-boost)."""
    params = [
        ["version-rolling"],
        {"version-rolling.mask": version_mask, "version-rolling.min-bit-count": min_bit_count},
    ]
    return rpc_request(id, "mining.configure", params, jsonrpc=jsonrpc)


def subscribe_request(
    id: int, agent: str = DEFAULT_AGENT, session_id: str | None = None, *, jsonrpc: bool = False
) -> dict[str, Any]:
    """``mining.subscribe`` [agent] or [agent, session id] (to resume a session)."""
    params: list[Any] = [agent] if session_id is None else [agent, session_id]
    return rpc_request(id, "mining.subscribe", params, jsonrpc=jsonrpc)


def authorize_request(id: int, worker: str, password: str = "x", *, jsonrpc: bool = False) -> dict[str, Any]:
    """``mining.authorize`` [worker, password]."""
    return rpc_request(id, "mining.authorize", [worker, password], jsonrpc=jsonrpc)


def extranonce_subscribe_request(id: int, *, jsonrpc: bool = False) -> dict[str, Any]:
    """``mining.extranonce.subscribe`` [] (NiceHash extension)."""
    return rpc_request(id, "mining.extranonce.subscribe", [], jsonrpc=jsonrpc)


def suggest_difficulty_request(id: int, difficulty: float, *, jsonrpc: bool = False) -> dict[str, Any]:
    """``mining.suggest_difficulty`` [difficulty]."""
    return rpc_request(id, "mining.suggest_difficulty", [difficulty], jsonrpc=jsonrpc)


def submit_request(
    id: int,
    worker: str,
    job_id: str,
    extranonce2: str,
    ntime: str,
    nonce: str,
    version_bits: str | None = None,
    *,
    jsonrpc: bool = False,
) -> dict[str, Any]:
    """``mining.submit`` [worker, job id, extranonce2, ntime, nonce (, version bits)]."""
    params = [worker, job_id, extranonce2, ntime, nonce]
    if version_bits is not None:
        params.append(version_bits)
    return rpc_request(id, "mining.submit", params, jsonrpc=jsonrpc)


def make_submit_params(
    rng: random.Random,
    job: NotifyJob,
    worker: str,
    extranonce2_size: int = 4,
    *,
    version_rolling: bool = False,
) -> Share:
    """A random (unverified) share for ``job``: extranonce2 of the agreed size, 4-byte nonce."""
    version_bits = f"{rng.getrandbits(16) << 13 & 0x1FFFE000:08x}" if version_rolling else None
    return Share(
        worker,
        job.job_id,
        rng.randbytes(extranonce2_size).hex(),
        job.ntime,
        rng.randbytes(4).hex(),
        version_bits,
    )


# ---------------------------------------------------------------------------------------
# Pool-side builders


def stratum_error(code: int, message: str | None = None) -> list[Any]:
    """A V1 error array ``[code, message, null]`` (message defaults to the standard text)."""
    return [code, message if message is not None else STRATUM_ERRORS.get(code, "Other/Unknown"), None]


def configure_result(id: int, version_mask: str = "1fffe000") -> dict[str, Any]:
    """The reply to ``mining.configure`` granting version rolling with ``version_mask``."""
    return rpc_response(id, {"version-rolling": True, "version-rolling.mask": version_mask})


def make_extranonce1(rng: random.Random, size: int = 4) -> str:
    """A pool-assigned extranonce1 of ``size`` bytes (hex)."""
    return rng.randbytes(size).hex()


def subscribe_result(
    id: int,
    extranonce1: str,
    extranonce2_size: int = 4,
    subscription_id: str = "",
    *,
    both_subscriptions: bool = True,
) -> dict[str, Any]:
    """The subscription reply: ``[[["mining.set_difficulty", id], ["mining.notify", id]], en1, size]``.

    ``both_subscriptions=False`` gives the ckpool-style single ``mining.notify`` tuple.
    """
    sub = subscription_id or extranonce1
    subs: list[list[str]] = [["mining.notify", sub]]
    if both_subscriptions:
        subs.insert(0, ["mining.set_difficulty", sub])
    return rpc_response(id, [subs, extranonce1, extranonce2_size])


def authorize_result(id: int, ok: bool = True, error: Any = None) -> dict[str, Any]:
    """``true``/``false`` (with an optional error array) for ``mining.authorize``."""
    return rpc_response(id, ok, error)


def set_difficulty(difficulty: float) -> dict[str, Any]:
    """Server push ``mining.set_difficulty`` [difficulty]."""
    return rpc_notification("mining.set_difficulty", [difficulty])


def notify(job: NotifyJob) -> dict[str, Any]:
    """Server push ``mining.notify`` with the job's nine parameters."""
    return rpc_notification("mining.notify", job.params())


def submit_result(id: int, accepted: bool = True, code: int | None = None) -> dict[str, Any]:
    """``true``, or ``null`` with a V1 error (e.g. :data:`ERR_LOW_DIFFICULTY`) when refused."""
    if accepted:
        return rpc_response(id, True)
    return rpc_response(id, None, stratum_error(code or ERR_OTHER))


def set_extranonce(extranonce1: str, extranonce2_size: int = 4) -> dict[str, Any]:
    """Server push ``mining.set_extranonce`` [extranonce1, extranonce2_size]."""
    return rpc_notification("mining.set_extranonce", [extranonce1, extranonce2_size])


def reconnect(host: str, port: int, wait_s: int = 0) -> dict[str, Any]:
    """Server push ``client.reconnect`` [host, port, wait seconds]."""
    return rpc_notification("client.reconnect", [host, port, wait_s])


def merkle_branch_count(tx_count: int) -> int:
    """Branches in a notify for a block of ``tx_count`` transactions plus the coinbase."""
    return math.ceil(math.log2(tx_count + 1)) if tx_count > 0 else 0


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def make_notify_job(
    rng: random.Random,
    *,
    tx_count: int = 2500,
    job_id: str | None = None,
    height: int = 870_000,
    ntime: int = 1_732_000_000,
    nbits: str = "17030ecd",
    version: str = "20000000",
    extranonce1_size: int = 4,
    extranonce2_size: int = 4,
    pool_tag: bytes = b"/minerscope/",
    outputs: int = 2,
    witness_commitment: bool = True,
    clean_jobs: bool = True,
    prevhash: str | None = None,
) -> NotifyJob:
    """A structurally real ``mining.notify`` job.

    coinb1 = tx version, one input spending the null outpoint, the script length (which
    counts the extranonces that go between the halves) and the BIP 34 height push;
    coinb2 = the pool tag, sequence, ``outputs`` P2PKH outputs, the optional segwit
    commitment output and locktime. The merkle branch has
    :func:`merkle_branch_count` (``tx_count``) random 32-byte hashes.
    """
    height_bytes = height.to_bytes(max(1, (height.bit_length() + 8) // 8), "little")
    height_push = bytes([len(height_bytes)]) + height_bytes
    script_len = len(height_push) + extranonce1_size + extranonce2_size + len(pool_tag)
    coinb1 = (
        (1).to_bytes(4, "little")
        + b"\x01"
        + b"\x00" * 32
        + b"\xff\xff\xff\xff"
        + _varint(script_len)
        + height_push
    )
    outs = bytearray()
    for _ in range(outputs):
        value = rng.randrange(1, 50 * 10**8)
        outs += value.to_bytes(8, "little") + b"\x19\x76\xa9\x14" + rng.randbytes(20) + b"\x88\xac"
    n_out = outputs
    if witness_commitment:
        outs += b"\x00" * 8 + b"\x26\x6a\x24\xaa\x21\xa9\xed" + rng.randbytes(32)
        n_out += 1
    coinb2 = pool_tag + b"\xff\xff\xff\xff" + _varint(n_out) + bytes(outs) + b"\x00\x00\x00\x00"
    branch = tuple(rng.randbytes(32).hex() for _ in range(merkle_branch_count(tx_count)))
    return NotifyJob(
        job_id=job_id if job_id is not None else f"{rng.getrandbits(32):x}",
        prevhash=prevhash if prevhash is not None else (rng.randbytes(24) + b"\x00" * 8).hex(),
        coinb1=coinb1.hex(),
        coinb2=coinb2.hex(),
        merkle_branch=branch,
        version=version,
        nbits=nbits,
        ntime=f"{ntime:08x}",
        clean_jobs=clean_jobs,
    )


# ---------------------------------------------------------------------------------------
# Parsers (either side); raise RemoteProtocolError naming the field


def parse_subscribe_result(result: object) -> Subscription:
    """Parse a Bitcoin-style or NiceHash-Ethereum subscription result.

    Accepts ``[[[name, id], ...], en1, size]``, ``[[name, id], en1, size]`` and NiceHash's
    ``[[name, id, "EthereumStratum/1.0.0"], en1]`` (no size: the miner nonce fills the rest).

    Raises:
        RemoteProtocolError: the result does not have this shape (field named).
    """
    if not isinstance(result, list) or len(result) < 2:
        raise RemoteProtocolError("subscribe result: not an array of >= 2 elements")
    subs_raw, en1 = result[0], result[1]
    if not is_hex(en1) and en1 != "":
        raise RemoteProtocolError("subscribe result: extranonce1 is not hex")
    assert isinstance(en1, str)
    if not isinstance(subs_raw, list) or not subs_raw:
        raise RemoteProtocolError("subscribe result: subscriptions is not a non-empty array")
    tuples = subs_raw if isinstance(subs_raw[0], list) else [subs_raw]
    subs: list[tuple[str, str]] = []
    protocol = ""
    for item in tuples:
        if not isinstance(item, list) or len(item) < 2 or not isinstance(item[0], str):
            raise RemoteProtocolError("subscribe result: subscription tuple is not [name, id]")
        if not item[0].startswith("mining."):
            raise RemoteProtocolError("subscribe result: subscription name is not mining.*")
        subs.append((item[0], str(item[1])))
        if len(item) >= 3 and isinstance(item[2], str):
            protocol = item[2]
    size: int | None = None
    if len(result) >= 3:
        raw = result[2]
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 < raw <= 32:
            raise RemoteProtocolError("subscribe result: extranonce2_size is not an int in 1..32")
        size = raw
    elif not protocol.lower().startswith("ethereumstratum"):
        raise RemoteProtocolError("subscribe result: extranonce2_size missing")
    if size is None and not en1:
        raise RemoteProtocolError("subscribe result: empty extranonce")
    return Subscription(en1, size, tuple(subs), protocol)


def parse_notify(params: object) -> NotifyJob:
    """Parse Bitcoin-family ``mining.notify`` params (nine positional fields).

    Raises:
        RemoteProtocolError: wrong arity or a malformed field (named).
    """
    if not isinstance(params, list) or len(params) < 9:
        raise RemoteProtocolError("mining.notify: params is not an array of 9")
    job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime, clean = params[:9]
    if not isinstance(job_id, str) or not job_id:
        raise RemoteProtocolError("mining.notify: job id is not a string")
    if not is_hex(prevhash, 32):
        raise RemoteProtocolError("mining.notify: prevhash is not 32-byte hex")
    if not is_hex(coinb1) or not is_hex(coinb2):
        raise RemoteProtocolError("mining.notify: coinbase halves are not hex")
    if not isinstance(branch, list) or not all(is_hex(b, 32) for b in branch):
        raise RemoteProtocolError("mining.notify: merkle branch is not a list of 32-byte hex")
    for name, value in (("version", version), ("nbits", nbits), ("ntime", ntime)):
        if not is_hex(value, 4):
            raise RemoteProtocolError(f"mining.notify: {name} is not 4-byte hex")
    if not isinstance(clean, bool):
        raise RemoteProtocolError("mining.notify: clean_jobs is not a boolean")
    assert isinstance(prevhash, str) and isinstance(coinb1, str) and isinstance(coinb2, str)
    assert isinstance(version, str) and isinstance(nbits, str) and isinstance(ntime, str)
    return NotifyJob(
        job_id, prevhash, coinb1, coinb2, tuple(str(b) for b in branch), version, nbits, ntime, clean
    )


def parse_difficulty(params: object) -> float:
    """The positive number in ``mining.set_difficulty`` params.

    Raises:
        RemoteProtocolError: not ``[number > 0]``.
    """
    if isinstance(params, list) and params:
        value = params[0]
        # an int past float range (a 400-digit JSON number) would raise OverflowError
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e300:
            return float(value)
    raise RemoteProtocolError("mining.set_difficulty: params is not [positive number]")


def parse_submit(params: object) -> Share:
    """Parse ``mining.submit`` params.

    Raises:
        RemoteProtocolError: wrong arity or a non-hex extranonce2/ntime/nonce.
    """
    if not isinstance(params, list) or len(params) < 5 or not all(isinstance(p, str) for p in params[:5]):
        raise RemoteProtocolError("mining.submit: params is not [worker, job, en2, ntime, nonce]")
    worker, job_id, en2, ntime, nonce = (str(p) for p in params[:5])
    for name, value in (("extranonce2", en2), ("ntime", ntime), ("nonce", nonce)):
        if not is_hex(value):
            raise RemoteProtocolError(f"mining.submit: {name} is not hex")
    version_bits = params[5] if len(params) > 5 and isinstance(params[5], str) else None
    return Share(worker, job_id, en2, ntime, nonce, version_bits)


# ---------------------------------------------------------------------------------------
# Judgement shared by the Stratum-shaped dialects


def _zcash_subscription(result: object) -> str | None:
    """The NONCE_1 of a Zcash (ZIP 301) subscription ``[session id | null, nonce1]``."""
    if isinstance(result, list) and len(result) == 2 and is_hex(result[1]):
        if result[0] is None or isinstance(result[0], str):
            assert isinstance(result[1], str)
            return result[1]
    return None


def _zcash_notify(params: object) -> bool:
    """ZIP 301 notify: job id, version, prevhash, merkleroot, reserved, time, bits, clean."""
    if not isinstance(params, list) or len(params) < 8 or not isinstance(params[0], str):
        return False
    return (
        is_hex(params[1], 4)
        and all(is_hex(p, 32) for p in params[2:5])
        and is_hex(params[5], 4)
        and is_hex(params[6], 4)
        and isinstance(params[7], bool)
    )


def _ethstratum_notify(params: object) -> bool:
    """NiceHash EthereumStratum/1.0.0 notify: job id, seedhash, headerhash, clean."""
    return (
        isinstance(params, list)
        and len(params) >= 4
        and isinstance(params[0], str)
        and is_hex(params[1], 32)
        and is_hex(params[2], 32)
        and isinstance(params[3], bool)
    )


class _Findings:
    """What the judge saw, accumulated message by message."""

    def __init__(self) -> None:
        self.evidence: list[Evidence] = []
        self.family: str | None = None
        self.strong: list[str] = []
        self.authorized = False
        self.rejections: list[str] = []
        self.not_found = 0
        self.other_errors: list[str] = []

    def add(self, key: str, value: object) -> None:
        self.evidence.append(Evidence(key, str(value)))

    def set_family(self, family: Family) -> None:
        if self.family is None:
            self.family = str(family)


def _see_response(
    msg: JsonObject, f: _Findings, subscribe_ids: set[object], authorize_ids: set[object]
) -> None:
    mid = reply_id(msg)
    err = msg.get("error")
    result = msg.get("result")
    if err not in (None, False):
        text = error_text(err)
        if is_method_not_found(msg):
            f.not_found += 1
        elif POOL_REJECTION_RE.search(text) or error_code(err) in (ERR_UNAUTHORIZED, ERR_NOT_SUBSCRIBED):
            f.rejections.append(text or str(error_code(err)))
        else:
            f.other_errors.append(text)
        return
    if mid in subscribe_ids:
        try:
            sub = parse_subscribe_result(result)
        except RemoteProtocolError:
            en1 = _zcash_subscription(result)
            if en1 is not None:
                f.set_family(Family.ZCASH)
                f.strong.append("zcash subscription [session, nonce1]")
                f.add("extranonce1", en1)
            return
        if sub.protocol.lower().startswith("ethereumstratum"):
            f.set_family(Family.ETHEREUM)
            f.add("protocol", sub.protocol)
        else:
            f.set_family(Family.BITCOIN)
        f.strong.append("subscription result with extranonce1")
        f.add("extranonce1", sub.extranonce1)
        if sub.extranonce2_size is not None:
            f.add("extranonce2_size", sub.extranonce2_size)
        f.add("subscriptions", ",".join(name for name, _ in sub.subscriptions))
    elif mid in authorize_ids:
        if result is True:
            f.authorized = True
            f.add("authorize", "true")
        elif result is False:
            f.rejections.append("authorize returned false")


def _see_push(msg: JsonObject, f: _Findings) -> None:
    method = msg.get("method")
    params = msg.get("params")
    if method == "mining.notify":
        try:
            job = parse_notify(params)
        except RemoteProtocolError:
            if _zcash_notify(params):
                assert isinstance(params, list)
                f.set_family(Family.ZCASH)
                f.strong.append("zcash mining.notify")
                f.add("job_id", params[0])
                f.add("nbits", params[6])
            elif _ethstratum_notify(params):
                assert isinstance(params, list)
                f.set_family(Family.ETHEREUM)
                f.strong.append("EthereumStratum mining.notify")
                f.add("job_id", params[0])
                f.add("seedhash", params[1])
            return
        f.set_family(Family.BITCOIN)
        f.strong.append("mining.notify")
        f.add("job_id", job.job_id)
        f.add("merkle_branches", len(job.merkle_branch))
        f.add("version", job.version)
        f.add("nbits", job.nbits)
        f.add("ntime", job.ntime)
    elif method == "mining.set_difficulty":
        try:
            diff = parse_difficulty(params)
        except RemoteProtocolError:
            return
        f.strong.append("mining.set_difficulty")
        f.add("difficulty", f"{diff:g}")
    elif method == "mining.set_target" and isinstance(params, list) and params and is_hex(params[0], 32):
        f.set_family(Family.ZCASH)
        f.strong.append("mining.set_target")
        f.add("target", params[0])
    elif method == "mining.set_extranonce" and isinstance(params, list) and params and is_hex(params[0]):
        f.add("extranonce1", params[0])


def judge_stratum(
    dialect: str,
    replies: Sequence[Reply],
    control_replies: Sequence[Reply] | None,
    sent: Sequence[JsonObject],
    *,
    subscribe_ids: Sequence[object] = (SUBSCRIBE_ID,),
    authorize_ids: Sequence[object] = (AUTHORIZE_ID,),
    default_family: Family = Family.BITCOIN,
) -> DialectResult:
    """Judge replies to a ``mining.subscribe`` (+ ``mining.authorize``) probe.

    success: a subscription result of a known shape or a well-formed push
    (``mining.notify``/``set_difficulty``/``set_target``), or ``authorize`` true that the
    control does not share; error: our worker was refused (pool-rejection text, V1 codes
    24/25, ``authorize`` false) and the control was answered differently; none otherwise
    (silence, non-JSON, HTTP, echo, "method not found" for everything).
    """
    msgs = decode_messages(replies)
    if not msgs:
        return no_json_result(dialect, replies)
    own = [m for m in msgs if not is_echo(m, sent)]
    if not own:
        return DialectResult.none(dialect, "echo of our request")
    f = _Findings()
    for msg in own:
        if "method" in msg and ("result" not in msg or msg.get("id") is None):
            _see_push(msg, f)
        else:
            _see_response(msg, f, set(id_set(subscribe_ids)), set(id_set(authorize_ids)))
    control = decode_messages(control_replies) if control_replies is not None else None
    alike = control is not None and answered_alike(own, control)
    family = f.family or str(default_family)
    hints = [Evidence("software", h) for h in software_hints(own)]
    evidence = (Evidence("dialect", dialect), Evidence("family", family), *f.evidence, *hints)
    if f.strong:
        conf = 0.95 if len(f.strong) > 1 or "mining.notify" in f.strong[0] else 0.9
        reason = "; ".join(dict.fromkeys(f.strong))
        if alike:
            conf, reason = 0.7, reason + " (control answered alike)"
        return DialectResult(dialect, Outcome.SUCCESS, conf, evidence, reason)
    if f.authorized:
        if alike:
            return DialectResult.none(dialect, "authorize true, but the control got the same answer")
        conf = 0.6 if control is not None else 0.4
        return DialectResult(dialect, Outcome.SUCCESS, conf, evidence, "mining.authorize accepted")
    if f.rejections:
        if alike:
            return DialectResult.none(dialect, "rejection text is the server's answer to anything")
        conf = 0.75 if control is not None else 0.4
        ev = (*evidence, *(Evidence("error", t) for t in f.rejections[:3]))
        return DialectResult(dialect, Outcome.ERROR, conf, ev, "pool refused our fake worker")
    if f.not_found:
        return DialectResult.none(dialect, "generic JSON-RPC: method not found")
    if f.other_errors:
        return DialectResult.none(
            dialect, "JSON-RPC error without pool semantics", [Evidence("error", f.other_errors[0])]
        )
    return DialectResult.none(dialect, "JSON without Stratum shape")


# ---------------------------------------------------------------------------------------
# Passive recognition (shared by the Stratum-shaped dialects)

BITCOIN_CLIENT_METHODS = frozenset(
    {
        "mining.subscribe",
        "mining.authorize",
        "mining.submit",
        "mining.configure",
        "mining.extranonce.subscribe",
        "mining.suggest_difficulty",
        "mining.get_transactions",
        "mining.multi_version",
    }
)
SERVER_PUSH_METHODS = frozenset(
    {
        "mining.notify",
        "mining.set_difficulty",
        "mining.set_target",
        "mining.set_extranonce",
        "client.reconnect",
    }
)


def stratum_family(
    client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
) -> tuple[Family, list[str]] | None:
    """The Stratum family (bitcoin/zcash/ethereum) of a flow's messages, and methods seen.

    Requires a ``mining.*`` method whose params have the right type (array), so a random
    JSON-RPC service with a method that merely starts with "mining." does not count unless
    the shape fits too.
    """
    methods: list[str] = []
    family: Family | None = None
    for msg in client_msgs:
        method = msg.get("method")
        params = msg.get("params")
        if (
            not isinstance(method, str)
            or method not in BITCOIN_CLIENT_METHODS
            or not isinstance(params, list)
        ):
            continue
        methods.append(method)
        if method == "mining.subscribe":
            if (
                len(params) >= 2
                and isinstance(params[1], str)
                and params[1].lower().startswith("ethereumstratum")
            ):
                family = family or Family.ETHEREUM
            elif len(params) >= 4 and params[1] is None:
                family = family or Family.ZCASH
        if (
            method == "mining.submit"
            and len(params) >= 5
            and isinstance(params[4], str)
            and len(params[4]) > 1000
        ):
            family = family or Family.ZCASH  # an Equihash solution (1344 bytes)
    for msg in server_msgs:
        method = msg.get("method")
        params = msg.get("params")
        if isinstance(method, str) and method in SERVER_PUSH_METHODS and isinstance(params, list):
            methods.append(method)
            if method == "mining.set_target":
                family = family or Family.ZCASH
            elif method == "mining.notify":
                if _zcash_notify(params):
                    family = family or Family.ZCASH
                elif _ethstratum_notify(params):
                    family = family or Family.ETHEREUM
                elif len(params) >= 9:
                    family = family or Family.BITCOIN
        elif "result" in msg and msg.get("id") is not None:
            try:
                sub = parse_subscribe_result(msg["result"])
            except RemoteProtocolError:
                continue
            methods.append("subscribe-result")
            if sub.protocol.lower().startswith("ethereumstratum"):
                family = family or Family.ETHEREUM
            else:
                # V1's [subscriptions, extranonce1, extranonce2_size], not ZIP 301's [session,
                # nonce1]: a later mining.set_target (kawpow pools send it too) is no Zcash
                family = family or Family.BITCOIN
    if not methods:
        return None
    return family or Family.BITCOIN, list(dict.fromkeys(methods))


# ---------------------------------------------------------------------------------------
# The dialect object


class StratumV1(Dialect):
    """Bitcoin-family Stratum V1: ``mining.subscribe`` then ``mining.authorize``."""

    name = "stratum1"
    family = Family.BITCOIN
    framing = Framing.LINE
    transports = (Transport.TCP, Transport.TLS)
    default_ports = (3333, 3334, 4444, 1314, 25, 443, 8888, 9332)

    def _requests(self, ctx: ProbeContext) -> list[dict[str, Any]]:
        return [
            subscribe_request(SUBSCRIBE_ID, ctx.agent or DEFAULT_AGENT),
            authorize_request(AUTHORIZE_ID, ctx.worker or DEFAULT_WORKER, ctx.password),
        ]

    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        return line_requests(self._requests(ctx), spaced=True)

    def control_request(self, ctx: ProbeContext) -> Request:
        msg = rpc_request(CONTROL_ID, CONTROL_METHOD, [ctx.worker or DEFAULT_WORKER, ctx.password])
        return Request(CONTROL_METHOD, encode_json_line(msg, spaced=True), reply_id=CONTROL_ID)

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        ctx = ProbeContext("", 0)
        return judge_stratum(self.name, replies, control_replies, self._requests(ctx))

    def passive_match(
        self, client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
    ) -> DialectResult | None:
        found = stratum_family(client_msgs, server_msgs)
        if found is None:
            return None
        family, methods = found
        return self.passive_result(methods, "plaintext Stratum methods", family=family)


STRATUM1 = StratumV1()
