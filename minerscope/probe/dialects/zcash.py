"""Zcash-style Stratum (ZIP 301; Equihash coins): both sides, judged as Stratum.

It reuses V1 method names with different contents, which is why CESNET used it as its
own probe (``mining.subscribe`` [agent, null, host, port]; positive on ``mining.set_target``)
and why the shared :func:`~.bitcoin.judge_stratum` recognises its shapes:

* subscribe result ``[session id | null, NONCE_1]`` (flypool in ndpi mining.pcapng sends
  ``["04d567b212", "04d567b212"]``); the miner's NONCE_2 fills the rest of 32 bytes;
* ``mining.set_target`` [256-bit target, 64 hex] instead of a difficulty;
* ``mining.notify`` [job id, version, prevhash, merkleroot, reserved (final sapling
  root), time, bits, clean] — 8 fields, all hashes 64 hex, version/time/bits 8 hex;
* ``mining.submit`` [worker, job id, time, NONCE_2, solution] where the Equihash 200,9
  solution is ``fd4005`` + 1344 bytes (2694 hex chars): ~2.8 KB per share.

Builders (miner): :func:`subscribe_request`, :func:`submit_request`, :func:`make_solution`.
Builders (pool): :func:`subscribe_result`, :func:`set_target`, :func:`notify`,
:func:`make_job`, :func:`target_for_difficulty`. Parsers: :func:`parse_notify`,
:func:`parse_submit`. ``mining.authorize`` is :func:`~.bitcoin.authorize_request`.
"""

from __future__ import annotations

import random
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
    is_hex,
    line_requests,
)
from minerscope.probe.framing import encode_json_line, rpc_notification, rpc_request, rpc_response
from minerscope.probe.verdict import DialectResult, Evidence, Transport

DEFAULT_AGENT = "EWBF 0.3.4b"
FAKE_WORKER = "t1" + "".join(
    random.Random(0x2EC).choice("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
    for _ in range(33)
)
"""A t-address-shaped fake worker (35 chars, ``t1`` prefix, invalid checksum)."""
SOLUTION_BYTES = 1344
"""Equihash (200, 9) solution length; sent with the 3-byte compact-size prefix ``fd4005``."""


@dataclass(frozen=True, slots=True)
class ZcashJob:
    """The eight ZIP 301 notify fields."""

    job_id: str
    version: str
    prevhash: str
    merkleroot: str
    reserved: str
    time: str
    bits: str
    clean_jobs: bool

    def params(self) -> list[Any]:
        """The ``params`` array as sent."""
        return [
            self.job_id,
            self.version,
            self.prevhash,
            self.merkleroot,
            self.reserved,
            self.time,
            self.bits,
            self.clean_jobs,
        ]


def subscribe_request(
    id: int, agent: str = DEFAULT_AGENT, host: str = "", port: int | str = 3333
) -> dict[str, Any]:
    """``mining.subscribe`` [agent, null, host, port-as-string] (the EWBF/CESNET shape)."""
    return rpc_request(id, "mining.subscribe", [agent, None, host, str(port)])


def subscribe_result(id: int, nonce1: str, session_id: str | None = None) -> dict[str, Any]:
    """``[session id, NONCE_1]`` (flypool repeats NONCE_1 as the session id)."""
    return rpc_response(id, [session_id if session_id is not None else nonce1, nonce1])


def target_for_difficulty(difficulty: float) -> str:
    """A 256-bit share target for ``difficulty`` (difficulty 1 = 0x0007ffff...), 64 hex."""
    base = 0x0007FFFF << (256 - 32)
    value = min(int(base / max(difficulty, 1e-9)), 2**256 - 1)
    return value.to_bytes(32, "big").hex()


def set_target(target: str) -> dict[str, Any]:
    """Server push ``mining.set_target`` [64-hex target]."""
    return rpc_notification("mining.set_target", [target])


def make_job(
    rng: random.Random, *, ntime: int = 1_732_000_000, bits: str = "1c0a8a28", clean_jobs: bool = True
) -> ZcashJob:
    """A ZIP 301 job: 20-hex job id (flypool style), version 4, random hashes."""
    return ZcashJob(
        rng.randbytes(10).hex(),
        "04000000",
        (rng.randbytes(28) + b"\x00" * 4).hex(),
        rng.randbytes(32).hex(),
        rng.randbytes(32).hex(),
        ntime.to_bytes(4, "little").hex(),
        bits,
        clean_jobs,
    )


def notify(job: ZcashJob) -> dict[str, Any]:
    """Server push ``mining.notify`` with the eight ZIP 301 fields."""
    return rpc_notification("mining.notify", job.params())


def make_solution(rng: random.Random) -> str:
    """A random Equihash-sized solution string: ``fd4005`` + 1344 bytes of hex."""
    return "fd4005" + rng.randbytes(SOLUTION_BYTES).hex()


def submit_request(
    id: int, worker: str, job_id: str, time: str, nonce2: str, solution: str
) -> dict[str, Any]:
    """``mining.submit`` [worker, job id, time, NONCE_2, solution]."""
    return rpc_request(id, "mining.submit", [worker, job_id, time, nonce2, solution])


def parse_notify(params: object) -> ZcashJob:
    """Parse ZIP 301 notify params.

    Raises:
        RemoteProtocolError: wrong arity or malformed field (named).
    """
    if not isinstance(params, list) or len(params) < 8:
        raise RemoteProtocolError("zcash mining.notify: params is not an array of 8")
    job_id, version, prevhash, merkleroot, reserved, time, bits, clean = params[:8]
    if not isinstance(job_id, str) or not job_id:
        raise RemoteProtocolError("zcash mining.notify: job id is not a string")
    for name, value, size in (
        ("version", version, 4),
        ("prevhash", prevhash, 32),
        ("merkleroot", merkleroot, 32),
        ("reserved", reserved, 32),
        ("time", time, 4),
        ("bits", bits, 4),
    ):
        if not is_hex(value, size):
            raise RemoteProtocolError(f"zcash mining.notify: {name} is not {size}-byte hex")
    if not isinstance(clean, bool):
        raise RemoteProtocolError("zcash mining.notify: clean_jobs is not a boolean")
    return ZcashJob(
        job_id, str(version), str(prevhash), str(merkleroot), str(reserved), str(time), str(bits), clean
    )


def parse_submit(params: object) -> tuple[str, str, str, str, str]:
    """(worker, job id, time, NONCE_2, solution) of a Zcash submit.

    Raises:
        RemoteProtocolError: wrong arity or non-hex time/nonce/solution.
    """
    if not isinstance(params, list) or len(params) < 5 or not all(isinstance(p, str) for p in params[:5]):
        raise RemoteProtocolError("zcash mining.submit: params is not [worker, job, time, nonce2, solution]")
    worker, job_id, time, nonce2, solution = (str(p) for p in params[:5])
    if not is_hex(time, 4) or not is_hex(nonce2) or not is_hex(solution):
        raise RemoteProtocolError("zcash mining.submit: time/nonce2/solution are not hex")
    return worker, job_id, time, nonce2, solution


class ZcashStratum(Dialect):
    """Zcash-style Stratum: ``mining.subscribe`` [agent, null, host, port], then authorize."""

    name = "stratum1-zcash"
    family = Family.ZCASH
    framing = Framing.LINE
    transports = (Transport.TCP, Transport.TLS)
    default_ports = (3333, 3357, 13333, 443)

    def _requests(self, ctx: ProbeContext) -> list[dict[str, Any]]:
        return [
            subscribe_request(bitcoin.SUBSCRIBE_ID, ctx.agent or DEFAULT_AGENT, ctx.host, ctx.port),
            bitcoin.authorize_request(
                bitcoin.AUTHORIZE_ID, f"{ctx.wallet or FAKE_WORKER}.{ctx.worker or 'rig'}", ctx.password
            ),
        ]

    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        return line_requests(self._requests(ctx))

    def control_request(self, ctx: ProbeContext) -> Request:
        msg = rpc_request(
            CONTROL_ID, CONTROL_METHOD, [ctx.agent or DEFAULT_AGENT, None, ctx.host, str(ctx.port)]
        )
        return Request(CONTROL_METHOD, encode_json_line(msg), reply_id=CONTROL_ID)

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        return bitcoin.judge_stratum(
            self.name,
            replies,
            control_replies,
            self._requests(ProbeContext("", 0)),
            default_family=Family.ZCASH,
        )

    def passive_match(
        self, client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
    ) -> DialectResult | None:
        found = bitcoin.stratum_family(client_msgs, server_msgs)
        if found is None or found[0] is not Family.ZCASH:
            return None
        return self.passive_result(found[1], "plaintext Zcash Stratum", Evidence("algo", "equihash"))


ZCASH = ZcashStratum()
