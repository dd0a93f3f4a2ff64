"""Solo-mining daemons over HTTP JSON-RPC: bitcoind-family, monerod and geth-style nodes.

Miners that mine solo talk to a node, not a pool, with HTTP request/response pairs
(PROTOCOLS.md §5.6). Three probes, one module, because they share the HTTP plumbing:

* ``bitcoind``: ``getblocktemplate`` with ``rules: ["mweb", "segwit"]`` (segwit is
  mandatory in Bitcoin Core, mweb in Litecoin Core 0.21) on ``/``. Bitcoin Core and its
  forks require HTTP basic auth and answer an unauthenticated call with ``401`` + ``WWW-Authenticate: Basic realm="jsonrpc"``: a
  *fingerprint of the daemon*, reported as outcome ``error`` ("daemon exists, auth
  required") below the pool threshold. A template result is ``success``.
* ``monerod``: ``get_block_template`` on ``/json_rpc`` with a wallet address. A template is
  ``success``; "Failed to parse wallet address" (code -4 from monerod 0.18) still proves
  monerod (``error``). The probe's wallet is valid (:data:`~.monero.PROBE_WALLET`), so a
  mainnet or regtest daemon builds a template.
* ``geth``: ``eth_getWork`` on ``/``: a valid work triple is ``success``; "no mining work
  available yet", "method not found" and TRON-style null arrays are *not* pools.

HTTP error pages (404/405/HTML) are "not a pool"; so is a JSON-RPC server answering our
method and the control alike. Besides the probes, the module builds and parses raw HTTP
messages (:func:`http_request_bytes`, :func:`http_response_bytes`,
:func:`parse_http_request`, :func:`parse_http_response`) so the traffic lab can produce
solo-mining sessions and stage 0 can read them.

Builders: :func:`gbt_request`, :func:`make_block_template`, :func:`gbt_result`,
:func:`unauthorized_reply`, :func:`monerod_template_request`, :func:`monerod_template_result`,
:func:`monerod_error`, :func:`json_rpc_http_request`, :func:`json_http_reply`; for geth use
:mod:`~.ethereum` (:func:`~.ethereum.get_work_request`, :func:`~.ethereum.work_result`).
"""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from minerscope.errors import LimitExceededError, RemoteProtocolError
from minerscope.probe.dialects import ethereum, monero
from minerscope.probe.dialects.base import (
    CONTROL_ID,
    CONTROL_METHOD,
    Dialect,
    Family,
    Framing,
    HttpReply,
    HttpRequestSpec,
    JsonObject,
    ProbeContext,
    Reply,
    Request,
    answered_alike,
    decode_messages,
    error_code,
    error_text,
    is_hex,
    is_method_not_found,
)
from minerscope.probe.verdict import DialectResult, Evidence, Outcome, Transport

DEFAULT_AGENT = "cgminer/4.12.1"
MAX_HTTP_HEAD_BYTES = 16 * 1024
"""Largest HTTP header block :func:`parse_http_response`/:func:`parse_http_request` accept."""

DAEMON_FINGERPRINT_CONFIDENCE = 0.45
"""A daemon that exists but served no work: shown as evidence, below the pool threshold."""

_BITCOIND_ERROR_RE = re.compile(
    r"initial (?:block )?(?:sync|download)|is downloading blocks|not connected|segwit rule|"
    r"getblocktemplate|rules? (?:set|must)|Bitcoin|Litecoin|Dogecoin|Zcash",
    re.IGNORECASE,
)
_MONEROD_ERROR_RE = re.compile(
    r"wallet address|reserve_size|core is busy|too big reserved size", re.IGNORECASE
)


# ---------------------------------------------------------------------------------------
# Raw HTTP (for the lab and stage 0; the prober uses httpx)


def http_request_bytes(spec: HttpRequestSpec, host: str) -> bytes:
    """An HTTP/1.1 request: request line, ``Host``, the spec's headers, Content-Length, body."""
    lines = [f"{spec.method} {spec.path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in spec.headers if k.lower() not in ("host", "content-length")]
    lines.append(f"Content-Length: {len(spec.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + spec.body


def http_response_bytes(reply: HttpReply) -> bytes:
    """An HTTP/1.1 response with the reply's status, headers, Content-Length and body."""
    lines = [f"HTTP/1.1 {reply.status} {reply.reason}"]
    lines += [f"{k}: {v}" for k, v in reply.headers if k.lower() != "content-length"]
    lines.append(f"Content-Length: {len(reply.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body


def _split_head(data: bytes, what: str) -> tuple[list[str], bytes]:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_HTTP_HEAD_BYTES:
            raise LimitExceededError(
                "max_http_head_bytes", MAX_HTTP_HEAD_BYTES, f"{what} head not terminated"
            )
        raise RemoteProtocolError(f"{what}: header block not terminated")
    if end > MAX_HTTP_HEAD_BYTES:
        raise LimitExceededError("max_http_head_bytes", MAX_HTTP_HEAD_BYTES, f"{what} head of {end} bytes")
    head = data[:end].decode("latin-1").split("\r\n")
    return head, data[end + 4 :]


def _headers(lines: Sequence[str]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            out.append((name.strip(), value.strip()))
    return tuple(out)


# ASCII digits only: str.isdigit() also accepts "¹²³" (latin-1 bytes 0xb9/0xb2/0xb3), which int()
# refuses, and a Content-Length of thousands of digits would trip int()'s digit limit (fuzzing).
_STATUS_RE = re.compile(r"[0-9]{1,9}")
_LENGTH_RE = re.compile(r"[0-9]+")


def _body(headers: tuple[tuple[str, str], ...], rest: bytes) -> bytes:
    for key, value in headers:
        if key.lower() == "content-length" and _LENGTH_RE.fullmatch(value):
            return rest[: int(value)] if len(value) < 19 else rest
    return rest


def parse_http_response(data: bytes) -> HttpReply:
    """Parse an HTTP/1.x response (body cut at Content-Length; chunked bodies left as is).

    Raises:
        RemoteProtocolError: no ``HTTP/1.x NNN`` status line or unterminated head.
        LimitExceededError: head larger than :data:`MAX_HTTP_HEAD_BYTES`.
    """
    head, rest = _split_head(data, "HTTP response")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _STATUS_RE.fullmatch(parts[1]):
        raise RemoteProtocolError("HTTP response: malformed status line")
    headers = _headers(head[1:])
    return HttpReply(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, _body(headers, rest))


def parse_http_request(data: bytes) -> HttpRequestSpec:
    """Parse an HTTP/1.x request (the lab's daemon emulators read miners' requests).

    Raises:
        RemoteProtocolError: malformed request line or unterminated head.
        LimitExceededError: head larger than :data:`MAX_HTTP_HEAD_BYTES`.
    """
    head, rest = _split_head(data, "HTTP request")
    parts = head[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise RemoteProtocolError("HTTP request: malformed request line")
    headers = _headers(head[1:])
    return HttpRequestSpec(parts[0], parts[1], headers, _body(headers, rest))


def json_rpc_http_request(
    path: str, body: Mapping[str, Any], *, agent: str = DEFAULT_AGENT, auth: tuple[str, str] | None = None
) -> HttpRequestSpec:
    """A JSON-RPC POST as miners send it (``Content-Type: application/json``, optional basic auth)."""
    headers = [("User-Agent", agent), ("Content-Type", "application/json"), ("Accept", "application/json")]
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return HttpRequestSpec("POST", path, tuple(headers), payload)


def json_http_reply(
    body: Mapping[str, Any], status: int = 200, reason: str = "OK", *, epee: bool = False
) -> HttpReply:
    """A JSON response as daemons send it: one compact line (bitcoind, geth) or, with
    ``epee``, as monerod 0.18's epee server lays it out (keys sorted, 2-space indent, CRLF
    line ends, no final line end)."""
    if epee:
        data = json.dumps(body, indent=2, sort_keys=True).replace("\n", "\r\n").encode("utf-8")
    else:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8") + b"\n"
    return HttpReply(status, reason, (("Content-Type", "application/json"),), data)


# ---------------------------------------------------------------------------------------
# bitcoind family


PROBE_GBT_RULES = ("mweb", "segwit")
"""The rules the probe's ``getblocktemplate`` claims: Litecoin Core (0.21, MWEB) refuses a
call without ``mweb`` ("must be called with the segwit & mweb rule sets"), Bitcoin Core
requires ``segwit`` and ignores rules it does not know."""


def gbt_request(
    id: int | str = 1,
    *,
    capabilities: Sequence[str] = ("coinbasetxn", "workid", "coinbase/append"),
    rules: Sequence[str] = ("segwit",),
) -> dict[str, Any]:
    """``getblocktemplate`` [{rules, capabilities}] (JSON-RPC 1.0 as bitcoin-cli; a Bitcoin
    miner's rules by default)."""
    return {
        "jsonrpc": "1.0",
        "id": id,
        "method": "getblocktemplate",
        "params": [{"rules": list(rules), "capabilities": list(capabilities)}],
    }


def make_block_template(
    rng: random.Random,
    *,
    tx_count: int = 20,
    height: int = 870_000,
    curtime: int = 1_732_000_000,
    bits: str = "17030ecd",
) -> dict[str, Any]:
    """A getblocktemplate result with ``tx_count`` transactions of realistic sizes
    (150-600 bytes of raw hex each; a real mainnet template has thousands, ~1-2 MB)."""
    txs: list[dict[str, Any]] = []
    fees = 0
    for _ in range(tx_count):
        size = rng.randrange(150, 600)
        txid = rng.randbytes(32).hex()
        txs.append(
            {
                "data": rng.randbytes(size).hex(),
                "txid": txid,
                "hash": txid,
                "depends": [],
                "fee": (fee := rng.randrange(200, 20_000)),
                "sigops": rng.randrange(0, 8),
                "weight": size * 4,
            }
        )
        fees += fee
    exponent, mantissa = int(bits[:2], 16), int(bits[2:], 16)
    target = mantissa * (1 << (8 * (exponent - 3)))
    return {
        "capabilities": ["proposal"],
        "version": 0x20000000,
        "rules": ["csv", "!segwit", "taproot"],
        "vbavailable": {},
        "vbrequired": 0,
        "previousblockhash": (b"\x00" * 10 + rng.randbytes(22)).hex(),
        "transactions": txs,
        "coinbaseaux": {},
        "coinbasevalue": 312_500_000 + fees,
        "longpollid": rng.randbytes(32).hex() + str(rng.randrange(1000, 99999)),
        "target": target.to_bytes(32, "big").hex(),
        "mintime": curtime - 3000,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": 80000,
        "sizelimit": 4000000,
        "weightlimit": 4000000,
        "curtime": curtime,
        "bits": bits,
        "height": height,
        "default_witness_commitment": "6a24aa21a9ed" + rng.randbytes(32).hex(),
    }


def gbt_result(id: int | str, template: Mapping[str, Any]) -> dict[str, Any]:
    """``{"result": template, "error": null, "id": id}`` (bitcoind's key order)."""
    return {"result": dict(template), "error": None, "id": id}


def unauthorized_reply() -> HttpReply:
    """Bitcoin Core's answer to a call without valid credentials."""
    return HttpReply(
        401,
        "Unauthorized",
        (("WWW-Authenticate", 'Basic realm="jsonrpc"'), ("Content-Type", "text/html")),
        b"",
    )


def parse_block_template(result: object) -> Mapping[str, Any]:
    """Validate a getblocktemplate result's core fields.

    Raises:
        RemoteProtocolError: a required field is missing or malformed (named).
    """
    if not isinstance(result, Mapping):
        raise RemoteProtocolError("getblocktemplate: result is not an object")
    if not is_hex(result.get("previousblockhash"), 32):
        raise RemoteProtocolError("getblocktemplate: previousblockhash is not 32-byte hex")
    for key in ("version", "height", "curtime", "coinbasevalue"):
        value = result.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RemoteProtocolError(f"getblocktemplate: {key} is not an integer")
    if not isinstance(result.get("transactions"), list):
        raise RemoteProtocolError("getblocktemplate: transactions is not an array")
    if not is_hex(result.get("bits"), 4):
        raise RemoteProtocolError("getblocktemplate: bits is not 4-byte hex")
    return result


# ---------------------------------------------------------------------------------------
# monerod


def monerod_template_request(wallet: str, reserve_size: int = 60, id: str = "0") -> dict[str, Any]:
    """``get_block_template`` {wallet_address, reserve_size} (JSON-RPC 2.0 on /json_rpc)."""
    return {
        "jsonrpc": "2.0",
        "id": id,
        "method": "get_block_template",
        "params": {"wallet_address": wallet, "reserve_size": reserve_size},
    }


def monerod_template_result(
    rng: random.Random,
    id: str = "0",
    *,
    height: int = 3_280_000,
    difficulty: int = 350_000_000_000,
    tx_count: int = 40,
) -> dict[str, Any]:
    """A monerod template: ``blocktemplate_blob`` (header + miner tx + tx hashes),
    ``blockhashing_blob`` (76-77 bytes), difficulty, height, seed_hash, status OK."""
    hashing = monero.make_blob(rng, tx_count=tx_count)
    miner_tx = rng.randbytes(rng.randrange(90, 140))
    template = bytes.fromhex(hashing[: 2 * 43]) + miner_tx + bytes([tx_count]) + rng.randbytes(32 * tx_count)
    return {
        "id": id,
        "jsonrpc": "2.0",
        "result": {
            "blockhashing_blob": hashing,
            "blocktemplate_blob": template.hex(),
            "difficulty": difficulty,
            "difficulty_top64": 0,
            "expected_reward": 600_000_000_000,
            "height": height,
            "next_seed_hash": "",
            "prev_hash": rng.randbytes(32).hex(),
            "reserved_offset": 130,
            "seed_hash": rng.randbytes(32).hex(),
            "seed_height": height - height % 2048,
            "status": "OK",
            "untrusted": False,
        },
    }


def monerod_error(
    id: str = "0", message: str = "Failed to parse wallet address", code: int = -4
) -> dict[str, Any]:
    """monerod's error object (as monerod 0.18 refuses a bad wallet address: code -4)."""
    return {"error": {"code": code, "message": message}, "id": id, "jsonrpc": "2.0"}


# ---------------------------------------------------------------------------------------
# Judgement


def _http_replies(replies: Sequence[Reply]) -> list[HttpReply]:
    out: list[HttpReply] = []
    for reply in replies:
        if isinstance(reply, HttpReply):
            out.append(reply)
        elif reply.startswith(b"HTTP/1."):
            try:
                out.append(parse_http_response(reply))
            except (RemoteProtocolError, LimitExceededError):
                continue
    return out


def _not_http(dialect: str, replies: Sequence[Reply]) -> DialectResult:
    if any(isinstance(r, bytes) and r.strip() for r in replies):
        return DialectResult.none(dialect, "reply is not HTTP")
    return DialectResult.none(dialect, "no reply")


def _status_page(dialect: str, reply: HttpReply) -> DialectResult:
    return DialectResult.none(
        dialect, f"HTTP {reply.status} page without JSON-RPC", [Evidence("http_status", str(reply.status))]
    )


class _HttpDaemon(Dialect):
    """Common HTTP plumbing; subclasses give the path, body and judgement."""

    framing = Framing.HTTP
    transports = (Transport.HTTP, Transport.HTTPS)
    family = Family.DAEMON
    path = "/"

    def _body(self, ctx: ProbeContext) -> dict[str, Any]:
        raise NotImplementedError

    def _spec(self, ctx: ProbeContext, body: Mapping[str, Any]) -> HttpRequestSpec:
        auth = (ctx.worker, ctx.password) if ctx.worker else None
        return json_rpc_http_request(self.path, body, agent=ctx.agent or DEFAULT_AGENT, auth=auth)

    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        body = self._body(ctx)
        spec = self._spec(ctx, body)
        return [Request(str(body["method"]), spec.body, reply_id=body.get("id"), http=spec)]

    def control_request(self, ctx: ProbeContext) -> Request:
        body = {"jsonrpc": "2.0", "id": CONTROL_ID, "method": CONTROL_METHOD, "params": []}
        spec = self._spec(ctx, body)
        return Request(CONTROL_METHOD, spec.body, reply_id=CONTROL_ID, http=spec)


class BitcoindGbt(_HttpDaemon):
    """bitcoind-family ``getblocktemplate`` (and the 401 realm="jsonrpc" fingerprint)."""

    name = "bitcoind"
    default_ports = (8332, 18332, 38332, 18443, 9332, 22555, 8232, 8766)

    def _body(self, ctx: ProbeContext) -> dict[str, Any]:
        return gbt_request(1, rules=PROBE_GBT_RULES)

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        http = _http_replies(replies)
        if not http:
            return _not_http(self.name, replies)
        base = (
            *self.identity(),
            Evidence("chain", "bitcoin-family"),  # (BTC, LTC, DOGE ... answer alike: no coin)
        )
        for reply in http:
            challenge = reply.header("WWW-Authenticate") or ""
            if reply.status == 401 and 'realm="jsonrpc"' in challenge:
                ev = (
                    *base,
                    Evidence("http_status", "401"),
                    Evidence("software", f"WWW-Authenticate: {challenge}"),
                )
                return DialectResult(
                    self.name,
                    Outcome.ERROR,
                    DAEMON_FINGERPRINT_CONFIDENCE,
                    ev,
                    "bitcoind-family daemon, auth required",
                )
        msgs = decode_messages(http)
        if not msgs:
            return _status_page(self.name, http[0])
        control = decode_messages(control_replies) if control_replies is not None else None
        for msg in msgs:
            result = msg.get("result")
            if result is not None:
                try:
                    tpl = parse_block_template(result)
                except RemoteProtocolError:
                    continue
                txs = tpl["transactions"]
                tpl_ev = (
                    *base,
                    Evidence("height", str(tpl["height"])),
                    Evidence("bits", str(tpl["bits"])),
                    Evidence("transactions", str(len(txs))),
                    Evidence("rules", ",".join(str(r) for r in tpl.get("rules", []) if isinstance(r, str))),
                )
                return DialectResult(self.name, Outcome.SUCCESS, 0.9, tpl_ev, "getblocktemplate result")
        for msg in msgs:
            err = msg.get("error")
            text = error_text(err)
            if err is not None and not is_method_not_found(msg) and _BITCOIND_ERROR_RE.search(text):
                if control is not None and answered_alike(msgs, control):
                    return DialectResult.none(self.name, "daemon error is its answer to anything")
                ev = (*base, Evidence("error", text), Evidence("error_code", str(error_code(err))))
                return DialectResult(
                    self.name,
                    Outcome.ERROR,
                    DAEMON_FINGERPRINT_CONFIDENCE,
                    ev,
                    "bitcoind-family daemon, no template",
                )
        if any(is_method_not_found(m) for m in msgs):
            return DialectResult.none(self.name, "generic JSON-RPC: method not found")
        return DialectResult.none(self.name, "JSON without a block template")


class MonerodTemplate(_HttpDaemon):
    """monerod ``get_block_template`` on ``/json_rpc``."""

    name = "monerod"
    path = "/json_rpc"
    default_ports = (18081, 18089, 28081, 38081)

    def _body(self, ctx: ProbeContext) -> dict[str, Any]:
        return monerod_template_request(ctx.wallet or monero.PROBE_WALLET)

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        http = _http_replies(replies)
        if not http:
            return _not_http(self.name, replies)
        msgs = decode_messages(http)
        if not msgs:
            return _status_page(self.name, http[0])
        base = (
            *self.identity(),
            Evidence("coin", "xmr"),
        )
        control = decode_messages(control_replies) if control_replies is not None else None
        for msg in msgs:
            result = msg.get("result")
            if (
                isinstance(result, Mapping)
                and is_hex(result.get("blocktemplate_blob"))
                and result.get("status") == "OK"
            ):
                ev = [*base]
                for key in ("height", "difficulty", "seed_hash"):
                    if key in result:
                        ev.append(Evidence(key, str(result[key])))
                ev.append(Evidence("blob_bytes", str(len(str(result["blocktemplate_blob"])) // 2)))
                return DialectResult(self.name, Outcome.SUCCESS, 0.9, tuple(ev), "get_block_template result")
        for msg in msgs:
            err = msg.get("error")
            text = error_text(err)
            if err is not None and not is_method_not_found(msg) and _MONEROD_ERROR_RE.search(text):
                if control is not None and answered_alike(msgs, control):
                    return DialectResult.none(self.name, "daemon error is its answer to anything")
                conf = 0.55 if control is not None else 0.4
                return DialectResult(
                    self.name,
                    Outcome.ERROR,
                    conf,
                    (*base, Evidence("error", text)),
                    "monerod refused our wallet",
                )
        if any(is_method_not_found(m) for m in msgs):
            return DialectResult.none(self.name, "generic JSON-RPC: method not found")
        return DialectResult.none(self.name, "JSON without a block template")


class GethGetWork(_HttpDaemon):
    """geth/core-geth ``eth_getWork`` over HTTP."""

    name = "geth"
    default_ports = (8545, 8546, 8547)

    def _body(self, ctx: ProbeContext) -> dict[str, Any]:
        return ethereum.get_work_request(1, jsonrpc=True)

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        http = _http_replies(replies)
        if not http:
            return _not_http(self.name, replies)
        msgs = decode_messages(http)
        if not msgs:
            return _status_page(self.name, http[0])
        control = decode_messages(control_replies) if control_replies is not None else None
        outcome, conf, ev, reason = ethereum.judge_ethproxy(self.name, msgs, control, login_ids=())
        if outcome is not Outcome.SUCCESS:
            # a node's refusal is not a pool and not a solo-mining daemon either
            return DialectResult.none(self.name, reason, ev)
        base = (
            *self.identity(),
            Evidence("chain", "ethereum-family"),  # (ETC, ETHW ... answer alike: no coin)
        )
        return DialectResult(self.name, outcome, min(conf, 0.9), (*base, *ev), "eth_getWork over HTTP")


BITCOIND = BitcoindGbt()
MONEROD = MonerodTemplate()
GETH = GethGetWork()

DAEMON_METHODS = frozenset(
    {
        "getblocktemplate",
        "submitblock",
        "getwork",
        "get_block_template",
        "submit_block",
        "eth_getWork",
        "eth_submitWork",
    }
)
"""JSON-RPC methods that only mining software sends to a node (stage-0 recognition)."""


def daemon_passive(client_msgs: Sequence[JsonObject]) -> list[str] | None:
    """Solo-mining methods in HTTP JSON-RPC request bodies of a flow (None: none)."""
    methods = [
        m for m in (msg.get("method") for msg in client_msgs) if isinstance(m, str) and m in DAEMON_METHODS
    ]
    return list(dict.fromkeys(methods)) or None
