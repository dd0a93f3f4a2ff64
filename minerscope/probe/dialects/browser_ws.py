"""Browser mining over WebSocket (Coinhive and its clones/proxies): both sides, and judgement.

Not JSON-RPC: every message is ``{"type": ..., "params": {...}}`` in one text frame
(cazala/coin-hive-stratum src/Miner.ts, src/types.ts). The miner sends ``auth``
``{site_key, type, user, goal}`` then ``submit`` ``{job_id, nonce, result}``; the server
answers ``authed`` ``{token, hashes}``, pushes ``job`` ``{job_id, blob, target[, id, algo,
height, seed_hash]}`` (the xmrig job fields, forwarded by proxies), ``hash_accepted``
``{hashes}`` and ``error`` ``{error}``. Proxies are served on a handful of paths, which
:attr:`CoinhiveWs.ws_paths` lists for the transport to try.

A WebSocket echo server (a common test service) returns our ``auth`` frame: that is an
echo, not a pool. A server that answers every ``type`` with the same ``error`` proves
nothing either; the control frame uses an unknown ``type``.

Builders (miner): :func:`auth_message`, :func:`submit_message`, :func:`make_site_key`.
Builders (pool): :func:`authed_message`, :func:`job_message`, :func:`hash_accepted_message`,
:func:`error_message`, :func:`banned_message`. Parsers: :func:`parse_ws_message`.
Encode each with :func:`encode_ws_json` (a text-frame payload; the transport or
:func:`minerscope.probe.framing.encode_ws_frame` adds the frame).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from minerscope.errors import RemoteProtocolError
from minerscope.probe.dialects.base import (
    FRAME_SILENCE,
    Dialect,
    Family,
    Framing,
    JsonObject,
    ProbeContext,
    Reply,
    Request,
    answered_alike,
    decode_messages,
    is_echo,
    no_json_result,
    software_hints,
)
from minerscope.probe.dialects.monero import Job, parse_job
from minerscope.probe.verdict import DialectResult, Evidence, Outcome, Transport

WS_PATHS = ("/", "/proxy", "/ws", "/socket", "/websocket")
"""Paths Coinhive clones and coin-hive-stratum deployments listen on, most common first."""

SERVER_TYPES = frozenset({"authed", "job", "hash_accepted", "error", "banned", "verified"})
CLIENT_TYPES = frozenset({"auth", "submit", "verify"})
CONTROL_TYPE = "minerscope_no_such_type"

_SITE_KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SITE_ERROR_RE = re.compile(
    r"site.?key|invalid_?(?:site|key|token|user)|unauthori[sz]ed|not allowed|banned", re.IGNORECASE
)


def make_site_key(rng: random.Random) -> str:
    """A Coinhive-style 32-character public site key."""
    return "".join(rng.choice(_SITE_KEY_ALPHABET) for _ in range(32))


FAKE_SITE_KEY = make_site_key(random.Random(0xC01))


def encode_ws_json(message: Mapping[str, Any]) -> bytes:
    """A message as the compact UTF-8 JSON text-frame payload browsers send."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def auth_message(
    site_key: str, *, user: str | None = None, goal: int = 0, kind: str = "anonymous"
) -> dict[str, Any]:
    """``{"type": "auth", "params": {site_key, type, user, goal}}``."""
    return {"type": "auth", "params": {"site_key": site_key, "type": kind, "user": user, "goal": goal}}


def submit_message(job_id: str, nonce: str, result: str) -> dict[str, Any]:
    """``{"type": "submit", "params": {job_id, nonce, result}}``."""
    return {"type": "submit", "params": {"job_id": job_id, "nonce": nonce, "result": result}}


def authed_message(token: str = "", hashes: int = 0) -> dict[str, Any]:
    """``{"type": "authed", "params": {token, hashes}}``."""
    return {"type": "authed", "params": {"token": token, "hashes": hashes}}


def job_message(job: Job) -> dict[str, Any]:
    """``{"type": "job", "params": {job_id, blob, target, ...}}`` from a CryptoNote job."""
    params = job.to_json()
    ordered = {
        "job_id": params.pop("job_id"),
        "blob": params.pop("blob"),
        "target": params.pop("target"),
        **params,
    }
    return {"type": "job", "params": ordered}


def hash_accepted_message(hashes: int) -> dict[str, Any]:
    """``{"type": "hash_accepted", "params": {hashes}}`` (running count)."""
    return {"type": "hash_accepted", "params": {"hashes": hashes}}


def error_message(error: str = "invalid_site_key") -> dict[str, Any]:
    """``{"type": "error", "params": {error}}``."""
    return {"type": "error", "params": {"error": error}}


def banned_message() -> dict[str, Any]:
    """``{"type": "banned", "params": {banned: true}}``."""
    return {"type": "banned", "params": {"banned": True}}


def parse_ws_message(obj: object) -> tuple[str, Mapping[str, Any]]:
    """(type, params) of a browser-mining message.

    Raises:
        RemoteProtocolError: not an object with a string ``type`` and object ``params``.
    """
    if isinstance(obj, Mapping):
        kind, params = obj.get("type"), obj.get("params")
        if isinstance(kind, str) and isinstance(params, Mapping):
            return kind, params
    raise RemoteProtocolError("browser-mining message: not {type: str, params: object}")


def _judge(msgs: Sequence[JsonObject]) -> tuple[list[str], list[str], list[Evidence]]:
    strong: list[str] = []
    rejections: list[str] = []
    ev: list[Evidence] = []
    for msg in msgs:
        try:
            kind, params = parse_ws_message(msg)
        except RemoteProtocolError:
            continue
        if kind == "authed":
            token, hashes = params.get("token"), params.get("hashes")
            if isinstance(token, str) and isinstance(hashes, int) and not isinstance(hashes, bool):
                strong.append("authed")
                ev.append(Evidence("hashes", str(hashes)))
        elif kind == "job":
            try:
                job = parse_job(params)
            except RemoteProtocolError:
                continue
            strong.append("job")
            ev.extend(
                [
                    Evidence("job_id", job.job_id),
                    Evidence("target", job.target),
                    Evidence("blob_bytes", str(len(job.blob) // 2)),
                ]
            )
            if job.algo:
                ev.append(Evidence("algo", job.algo))
        elif kind == "hash_accepted" and isinstance(params.get("hashes"), int):
            strong.append("hash_accepted")
        elif kind in ("error", "banned"):
            text = str(params.get("error", kind))
            if kind == "banned" or _SITE_ERROR_RE.search(text):
                rejections.append(text)
    return strong, rejections, ev


def browser_passive(
    client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
) -> tuple[list[str], list[Evidence]] | None:
    """Message types of browser mining in a flow's WebSocket messages (None: not present).

    ``auth`` needs a ``site_key``; ``submit`` needs job_id/nonce/result; server types need
    their shapes, so generic ``{"type": "error"}`` chat protocols do not count.
    """
    seen: list[str] = []
    for msg in client_msgs:
        try:
            kind, params = parse_ws_message(msg)
        except RemoteProtocolError:
            continue
        if kind == "auth" and isinstance(params.get("site_key"), str):
            seen.append(kind)
        elif kind == "submit" and all(isinstance(params.get(k), str) for k in ("job_id", "nonce", "result")):
            seen.append(kind)
    strong, _, ev = _judge(server_msgs)
    seen.extend(strong)
    if not seen:
        return None
    return list(dict.fromkeys(seen)), ev


class CoinhiveWs(Dialect):
    """Coinhive-style WebSocket: an ``auth`` frame with a site key."""

    name = "coinhive"
    family = Family.BROWSER
    framing = Framing.WS
    transports = (Transport.WS, Transport.WSS)
    ws_paths = WS_PATHS
    default_ports = (80, 443, 8080, 8443, 8181, 8892)

    def _auth(self, ctx: ProbeContext) -> dict[str, Any]:
        return auth_message(ctx.wallet or FAKE_SITE_KEY)

    def probe_requests(self, ctx: ProbeContext) -> list[Request]:
        return [Request("auth", encode_ws_json(self._auth(ctx)))]

    def control_request(self, ctx: ProbeContext) -> Request:
        msg = {"type": CONTROL_TYPE, "params": {"site_key": ctx.wallet or FAKE_SITE_KEY}}
        return Request(CONTROL_TYPE, encode_ws_json(msg))

    def classify(
        self, replies: Sequence[Reply], control_replies: Sequence[Reply] | None = None
    ) -> DialectResult:
        msgs = decode_messages(replies)
        if not msgs:
            return no_json_result(self.name, replies, FRAME_SILENCE)
        own = [m for m in msgs if not is_echo(m, [self._auth(ProbeContext("", 0))])]
        if not own:
            return DialectResult.none(self.name, "echo of our auth frame")
        strong, rejections, ev = _judge(own)
        control = decode_messages(control_replies) if control_replies is not None else None
        alike = control is not None and answered_alike(own, control)
        hints = [Evidence("software", h) for h in software_hints(own)]
        base = self.identity()
        if strong:
            conf = 0.95 if "job" in strong or "authed" in strong else 0.8
            reason = ", ".join(dict.fromkeys(strong))
            if alike:
                conf, reason = 0.7, reason + " (control answered alike)"
            return DialectResult(self.name, Outcome.SUCCESS, conf, (*base, *ev, *hints), reason)
        if rejections:
            if alike:
                return DialectResult.none(self.name, "error frame is the server's answer to anything")
            conf = 0.75 if control is not None else 0.4
            return DialectResult(
                self.name,
                Outcome.ERROR,
                conf,
                (*base, *(Evidence("error", t) for t in rejections[:3]), *hints),
                "browser-mining server refused our site key",
            )
        return DialectResult.none(self.name, "WebSocket JSON without browser-mining shape")

    def passive_match(
        self, client_msgs: Sequence[JsonObject], server_msgs: Sequence[JsonObject]
    ) -> DialectResult | None:
        found = browser_passive(client_msgs, server_msgs)
        if found is None:
            return None
        kinds, ev = found
        return self.passive_result(kinds, "browser-mining WebSocket messages", *ev)


COINHIVE = CoinhiveWs()
