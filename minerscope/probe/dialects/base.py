"""What every mining dialect provides, and the shared rules for judging replies.

A *dialect* (Stratum V1, xmrig login, eth-proxy, Coinhive WebSocket, a solo daemon's HTTP
JSON-RPC, Stratum V2 Noise) is one sans-IO object that knows three things:

1. which messages a probe sends, in order (:meth:`Dialect.probe_requests`), plus one
   *control* message on the same terms that no pool understands
   (:meth:`Dialect.control_request`);
2. how to judge what came back (:meth:`Dialect.classify`), using the control's replies to
   reject servers that answer everything the same way (the main false-positive source of
   earlier probers: CESNET and sMaSheD both count any non-empty ``result``);
3. how to recognise the dialect passively in the first bytes of a captured flow
   (:meth:`Dialect.passive_match`, used by :mod:`minerscope.prefilter.stratum`).

Each dialect module also exposes message *builders* and *parsers* for both sides (miner
and pool) as plain functions, which the traffic lab and the pool emulators use, so the
probe, the emulators and the recogniser cannot drift apart.

How the engine drives a dialect (the contract; no I/O here)::

    d = get_dialect("stratum1")                      # minerscope.probe.dialects
    ctx = ProbeContext(host, port, Transport.TCP)
    for req in d.probe_requests(ctx):                # one fresh connection for the list
        send req.data (framing LINE: the bytes incl. "\\n"; WS: one text frame with that
        payload, connecting to each of d.ws_paths; HTTP: req.http; RAW: the bytes)
        read replies until one has JSON-RPC id == req.reply_id (None: read until quiet,
        a byte budget or the deadline), keeping every line/frame/HTTP reply in order
    result = d.classify(replies)
    if result.outcome is not Outcome.NONE:           # confirm on a fresh connection
        ctrl = d.control_request(ctx) ; read its replies the same way
        result = d.classify(replies, control_replies)

``replies`` elements are ``bytes`` (one line without terminator for LINE, one frame
payload for WS, one received chunk for RAW; a bytes element containing newlines is split)
or :class:`HttpReply` (HTTP). ``control_replies=None`` means "no control was run": error
outcomes then stay below the pool threshold; ``[]`` means the control was run and met
silence or a close (which counts as "answered differently", as real pools often drop a
connection on an unknown method).

API (stable)::

    Family, Framing (StrEnum)
    ProbeContext(host, port, transport=Transport.TCP, agent="", wallet="", worker="",
                 password="x", path="/")
    HttpRequestSpec(method, path, headers, body) ; HttpReply(status, reason, headers, body)
    Request(label, data, reply_id=None, http=None) ; Reply = bytes | HttpReply
    Dialect (ABC): name, family, framing, transports, ws_paths, default_ports,
        probe_requests(ctx) -> list[Request], control_request(ctx) -> Request,
        classify(replies, control_replies=None) -> DialectResult,
        passive_match(client_msgs, server_msgs) -> DialectResult | None
    helpers: decode_messages, split_rpc -> RpcMessage, error_text, error_code, is_method_not_found,
        is_echo, software_hints, answered_alike, reply_signature, is_hex, looks_like_http,
        id_set, reply_id
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from minerscope.errors import LimitExceededError
from minerscope.probe.framing import decode_json_object, encode_json_line
from minerscope.probe.verdict import DialectResult, Evidence, Outcome, Transport

JsonObject = dict[str, object]
"""A decoded JSON object from a peer; values must be narrowed with isinstance before use."""

CONTROL_METHOD = "minerscope.no_such_method"
"""The method name of every JSON control request: no pool, node or proxy implements it."""

CONTROL_ID = 909
"""The JSON-RPC id of control requests (distinct from the probe ids 1..10)."""

PASSIVE_CONFIDENCE = 0.9
"""A dialect's own methods seen in a capture: strong evidence, but short of a probe's proof."""


class Family(StrEnum):
    """Coin/protocol family a dialect belongs to (what the evidence calls ``family``)."""

    BITCOIN = "bitcoin"
    ZCASH = "zcash"
    MONERO = "monero"
    ETHEREUM = "ethereum"
    BROWSER = "browser"
    DAEMON = "daemon"
    SV2 = "sv2"


class Framing(StrEnum):
    """How a dialect's messages are delimited on the wire."""

    LINE = "line"
    WS = "ws"
    HTTP = "http"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Who we probe and which (fake) identity we present.

    Empty ``agent``/``wallet``/``worker`` mean "the dialect's own realistic default" (a
    syntactically plausible but invalid wallet, so a real pool answers with a login error
    rather than crediting anyone). For the HTTP daemons a non-empty ``worker`` (with
    ``password``) becomes HTTP basic auth. ``path`` is informational: WS paths come from
    :attr:`Dialect.ws_paths`, HTTP paths from each request's :class:`HttpRequestSpec`.
    """

    host: str
    port: int
    transport: Transport = Transport.TCP
    agent: str = ""
    wallet: str = ""
    worker: str = ""
    password: str = "x"
    path: str = "/"


@dataclass(frozen=True, slots=True)
class HttpRequestSpec:
    """An HTTP request for the transport to send (HTTP framing)."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpReply:
    """An HTTP response as received (status line, headers in order, body bytes)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first header named ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Request:
    """One message a probe sends.

    Attributes:
        label: the method/type name, for logs (``mining.subscribe``, ``auth``, ``act1``).
        data: LINE: the JSON line including ``\\n``; WS: the text-frame payload; RAW: bytes;
            HTTP: the body (same as ``http.body``).
        reply_id: the JSON-RPC id whose reply completes this request; None means read
            until quiet/budget/deadline (pushes, WS, raw).
        http: the HTTP request (HTTP framing only).
    """

    label: str
    data: bytes
    reply_id: int | str | None = None
    http: HttpRequestSpec | None = field(default=None)


Reply = bytes | HttpReply


class Dialect(ABC):
    """A mining dialect's probe side: requests to send, and the judgement of replies."""

    name: str
    """Registry key, e.g. ``stratum1``."""
    family: Family
    framing: Framing
    transports: tuple[Transport, ...]
    """Transports worth trying, most likely first."""
    ws_paths: tuple[str, ...] = ()
    """WS framing only: URL paths to try, in order."""
    default_ports: tuple[int, ...] = ()
    """Ports where this dialect is commonly served (a hint for ordering attempts)."""

    @abstractmethod
    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        """The messages to send on one fresh connection, in order."""

    @abstractmethod
    def control_request(self, ctx: ProbeContext) -> Request:
        """An unknown method on the same terms (framing, shape, credentials)."""

    @abstractmethod
    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        """Judge the replies to :meth:`probe_requests` (and to the control, when run)."""

    def passive_match(
        self, client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
    ) -> DialectResult | None:
        """Recognise this dialect in decoded messages of a captured flow (None: not this one)."""
        return None

    def identity(self, family: Family | None = None) -> tuple[Evidence, Evidence]:
        """The two evidence lines every verdict of this dialect starts with."""
        return (Evidence("dialect", self.name), Evidence("family", str(family or self.family)))

    def passive_result(
        self, methods: Sequence[str], reason: str, *extra: Evidence, family: Family | None = None
    ) -> DialectResult:
        """A passive recognition: seeing the dialect's own methods in a capture is strong evidence
        (0.9), but not a probe's proof, so every dialect reports it the same way."""
        evidence = (*self.identity(family), Evidence("methods", ",".join(methods)), *extra)
        return DialectResult(self.name, Outcome.SUCCESS, PASSIVE_CONFIDENCE, evidence, reason)

    def __repr__(self) -> str:
        return f"<Dialect {self.name} family={self.family} framing={self.framing}>"


# ---------------------------------------------------------------------------------------
# Shared judgement helpers (pure functions over decoded messages)

_HEX_RE = re.compile(r"[0-9a-fA-F]*")
_NOT_FOUND_RE = re.compile(
    r"method not found|unknown method|no such method|unsupported method|invalid method|"
    r"method .{0,40}(?:not (?:found|supported|available|exist)|does not exist|unknown)|"
    r"not implemented|unsupported request|unknown command|unrecognized",
    re.IGNORECASE,
)


def is_hex(value: object, nbytes: int | None = None, *, prefix: bool = False) -> bool:
    """``value`` is a hex string (of exactly ``nbytes`` bytes when given; ``0x`` when ``prefix``)."""
    if not isinstance(value, str):
        return False
    text = value
    if prefix:
        if text[:2] not in ("0x", "0X"):
            return False
        text = text[2:]
    if not text or len(text) % 2 or not _HEX_RE.fullmatch(text):
        return False
    return nbytes is None or len(text) == 2 * nbytes


def looks_like_http(data: bytes) -> bool:
    """The bytes start like an HTTP response or request (an HTTP server on a line port)."""
    head = data.lstrip()[:16]
    return head.startswith((b"HTTP/", b"<!DOCTYPE", b"<html", b"<HTML", b"GET ", b"POST "))


LINE_SILENCE = ("HTTP reply to a Stratum line", "non-JSON reply", "no reply")
"""Why a line dialect's replies held no JSON message: an HTTP answer, other bytes, nothing."""
FRAME_SILENCE = ("HTTP page instead of WebSocket frames", "non-JSON frames", "no frame")
"""The same reasons for WebSocket frames."""


def no_json_result(
    dialect: str, replies: Sequence[Reply], reasons: tuple[str, str, str] = LINE_SILENCE
) -> DialectResult:
    """The verdict on replies in which :func:`decode_messages` found nothing: not this
    dialect, saying whether the peer spoke HTTP, sent other bytes, or stayed silent (what
    an analyst needs to tell a web server from a closed or unrelated service)."""
    raw = [r for r in replies if isinstance(r, bytes)]
    if any(looks_like_http(r) for r in raw):
        return DialectResult.none(dialect, reasons[0])
    if any(r.strip() for r in raw):
        return DialectResult.none(dialect, reasons[1])
    return DialectResult.none(dialect, reasons[2])


def line_requests(messages: Sequence[Mapping[str, Any]], *, spaced: bool = False) -> list[Request]:
    """JSON-RPC requests as newline-terminated lines, each completed by the reply with its id."""
    return [Request(str(m["method"]), encode_json_line(m, spaced=spaced), reply_id=m["id"]) for m in messages]


def decode_messages(replies: Sequence[Reply]) -> list[JsonObject]:
    """Every JSON object in ``replies``, in order; non-JSON lines are skipped.

    A bytes element (line framing) is split on newlines. An :class:`HttpReply`'s body is
    one document, whatever its layout: real monerod (epee) indents its JSON-RPC replies
    over many CRLF-ended lines. Oversized or over-nested documents are skipped too
    (the transport already bounded the reply; here they are simply not evidence).
    """
    out: list[JsonObject] = []
    for reply in replies:
        docs = [reply.body] if isinstance(reply, HttpReply) else reply.split(b"\n")
        for doc in docs:
            if not doc.strip():
                continue
            try:
                obj = decode_json_object(doc)
            except LimitExceededError:
                continue
            if obj is not None:
                out.append(obj)
    return out


def error_text(error: object) -> str:
    """A JSON-RPC ``error`` as text: object ``message``, array ``[code, message, ...]`` or string."""
    if error is None or error is False:
        return ""
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        msg = error.get("message", error.get("error", ""))
        return msg if isinstance(msg, str) else str(msg)
    if isinstance(error, list):
        parts = [p for p in error if isinstance(p, str)]
        return parts[0] if parts else ""
    return str(error)


def error_code(error: object) -> int | None:
    """The numeric code of a JSON-RPC ``error`` (object ``code`` or array element 0)."""
    if isinstance(error, dict):
        code = error.get("code")
        return code if isinstance(code, int) and not isinstance(code, bool) else None
    if isinstance(error, list) and error and isinstance(error[0], int) and not isinstance(error[0], bool):
        return error[0]
    return None


def is_method_not_found(msg: JsonObject) -> bool:
    """A generic "method not found"-style JSON-RPC error."""
    err = msg.get("error")
    if err is None:
        return False
    if error_code(err) == -32601:
        return True
    return bool(_NOT_FOUND_RE.search(error_text(err)))


def _normalise(text: str) -> str:
    return re.sub(r"[0-9a-fA-Fx]{6,}|\d+", "#", text.lower()).strip()


def reply_signature(msg: JsonObject) -> str:
    """What a reply says, independent of ids and numbers: for comparing probe vs control."""
    if "error" in msg and msg["error"] not in (None, False):
        return "error:" + _normalise(error_text(msg["error"])) + f":{error_code(msg['error'])}"
    if "result" in msg:
        return "result:" + _normalise(repr(msg["result"]))[:200]
    if "type" in msg:
        return "type:" + _normalise(str(msg.get("type"))) + ":" + _normalise(repr(msg.get("params")))[:200]
    return "other:" + ",".join(sorted(msg))


def answered_alike(probe_msgs: Sequence[JsonObject], control_msgs: Sequence[JsonObject]) -> bool:
    """The server answered the control the same way as the probe (so the probe proves nothing)."""
    if not probe_msgs or not control_msgs:
        return False
    probe = {reply_signature(m) for m in probe_msgs}
    control = {reply_signature(m) for m in control_msgs}
    return bool(probe & control)


def id_set(ids: Sequence[object]) -> frozenset[object]:
    """Reply ids to accept for our request ids: the ids themselves and their string forms
    (some pools echo ``"1"`` for ``1``)."""
    return frozenset([*ids, *(str(i) for i in ids)])


def reply_id(msg: JsonObject) -> int | str | None:
    """The message's ``id`` when it is a usable (hashable) id, else None (a hostile peer may
    send arrays or objects as ids)."""
    mid = msg.get("id")
    return mid if isinstance(mid, int | str) and not isinstance(mid, bool) else None


def is_echo(msg: JsonObject, sent: Sequence[JsonObject]) -> bool:
    """``msg`` repeats one of our requests (an echo server or a reflecting proxy).

    A server never sends back a *client* method we used, so the same ``method`` (or
    ``type`` for WebSocket dialects) counts as an echo even when the params differ.
    """
    for req in sent:
        if msg == req:
            return True
        method = req.get("method")
        if method is not None and msg.get("method") == method:
            return True
        kind = req.get("type")
        if kind is not None and msg.get("type") == kind:
            return True
    return False


_VERSION_RE = re.compile(r"\b[A-Za-z][\w.+-]{1,40}/v?\d+(?:\.\d+)+[\w.-]*")
_HINT_KEYS = ("agent", "version", "software", "server", "pool", "extensions", "protocol")


def software_hints(msgs: Sequence[JsonObject], limit: int = 4) -> list[str]:
    """Pool software/version strings in replies: ``client.show_message`` texts, ``agent``/
    ``version``-like keys, and ``Name/1.2.3`` tokens anywhere in results (at most ``limit``)."""
    hints: list[str] = []

    def walk(value: object, depth: int) -> None:
        if depth > 6 or len(hints) >= limit * 4:
            return
        if isinstance(value, str):
            hints.extend(m.group(0) for m in _VERSION_RE.finditer(value[:400]))
        elif isinstance(value, list):
            for item in value[:32]:
                walk(item, depth + 1)
        elif isinstance(value, dict):
            for key, item in list(value.items())[:32]:
                if key in _HINT_KEYS and isinstance(item, str) and item:
                    hints.append(f"{key}={item[:80]}")
                else:
                    walk(item, depth + 1)

    for msg in msgs:
        if msg.get("method") == "client.show_message":
            params = msg.get("params")
            if isinstance(params, list) and params and isinstance(params[0], str):
                hints.append("message=" + params[0][:120])
        for key in ("result", "params", "error"):
            if key in msg and msg.get("method") not in ("mining.notify", "job"):
                walk(msg[key], 0)
    return list(dict.fromkeys(hints))[:limit]


@dataclass(frozen=True, slots=True)
class RpcMessage:
    """A JSON-RPC-ish message split into its parts (either side's view).

    ``kind`` is ``request`` (method and non-null id), ``notification`` (method, null or
    missing id: a server push), ``response`` (result/error and an id) or ``other``.
    """

    kind: str
    id: object
    method: str | None
    params: object
    result: object
    error: object


def split_rpc(msg: JsonObject) -> RpcMessage:
    """Classify one decoded message as request / notification / response / other."""
    method = msg.get("method")
    mid = msg.get("id")
    if isinstance(method, str):
        kind = "request" if mid is not None else "notification"
        return RpcMessage(kind, mid, method, msg.get("params"), None, None)
    if "result" in msg or "error" in msg:
        return RpcMessage("response", mid, None, None, msg.get("result"), msg.get("error"))
    return RpcMessage("other", mid, None, None, None, None)
