"""Stage 0: recognise plaintext mining protocols in the first bytes of a flow.

Real mining traffic is still often plaintext Stratum (every real capture we have is), and
when it is, the first kilobytes of each direction say everything: the dialect, the coin
family, the miner's agent string. This module reads them *with the dialect parsers the
prober uses* (:meth:`minerscope.probe.dialects.base.Dialect.passive_match`), so stage 0
and stage 2 cannot disagree about what Stratum looks like.

Three framings are tried, decided from the bytes rather than the port:

* newline-delimited JSON (pool Stratum of every family);
* WebSocket: an HTTP ``Upgrade: websocket`` handshake (or bare frames, for a capture that
  starts mid-connection), then text frames, masked from the client and unmasked from the
  server, each holding a browser-mining message;
* HTTP JSON-RPC requests/responses (solo mining to a node: ``getblocktemplate``,
  ``get_block_template``, ``eth_getWork``...).

It does not fire on ordinary JSON-RPC (``{"method": "getinfo"}``), plain HTTP, TLS, SSH
or binary peer-to-peer protocols: every recogniser requires dialect-specific method names
*and* parameter shapes. TLS and SSH are rejected up front by their first bytes.

:func:`may_be_stratum` is the cheap *necessary* condition stage 0 checks first on every
flow (a capture has tens of thousands of non-TLS flows, almost none of them Stratum):
it is derived from what :func:`detect_stratum` can accept, so it is False only when
``detect_stratum`` would certainly return None. A change to one must be mirrored in the
other; tests/prefilter/test_stage0_fast.py compares both paths on real captures.

API::

    detect_stratum(c2s: bytes, s2c: bytes, *, max_bytes=4096) -> StratumEvidence | None
    may_be_stratum(c2s: bytes, s2c: bytes, *, max_bytes=4096) -> bool
    StratumEvidence(dialect, family, methods, framing, confidence, evidence)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from minerscope.errors import LimitExceededError, RemoteProtocolError
from minerscope.probe.dialects import http_jsonrpc
from minerscope.probe.dialects.base import Family, JsonObject
from minerscope.probe.dialects.bitcoin import STRATUM1
from minerscope.probe.dialects.browser_ws import COINHIVE
from minerscope.probe.dialects.ethereum import ETHPROXY
from minerscope.probe.dialects.monero import XMRIG
from minerscope.probe.framing import OP_CONT, OP_TEXT, decode_json_object, decode_ws_frames
from minerscope.probe.verdict import DialectResult, Evidence

DEFAULT_SCAN_BYTES = 4096
"""Bytes of each direction examined (a few messages; the handshake is always in them)."""

_HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"OPTIONS ", b"DELETE ", b"PATCH ")
_NOT_PLAINTEXT = (b"\x16\x03", b"\x17\x03", b"\x15\x03", b"SSH-")
# A line that ``bytes.strip()`` (ASCII whitespace) leaves starting with "{": at the start of
# the data, or after a newline. The second starts with a literal, so ``re`` jumps from
# newline to newline in C.
_LEADING_BRACE = re.compile(rb"[ \t\n\r\x0b\x0c]*\{")
LINE_BRACE = re.compile(rb"\n[ \t\r\x0b\x0c]*\{")
_line_brace = LINE_BRACE.search
_FAMILY_DIALECT = {
    Family.BITCOIN: "stratum1",
    Family.ZCASH: "stratum1-zcash",
    Family.ETHEREUM: "ethstratum",
}
_FAMILY_ALGO = {Family.ZCASH: "equihash"}


@dataclass(frozen=True, slots=True)
class StratumEvidence:
    """What stage 0 recognised in a flow.

    Attributes:
        dialect: registry name of the dialect (``xmrig``, ``stratum1``, ``coinhive``...).
        family: coin/protocol family (``monero``, ``bitcoin``, ``zcash``, ``ethereum``,
            ``browser``, ``daemon``).
        methods: the dialect methods/message types seen, in order of first appearance.
        framing: ``line``, ``ws`` or ``http``.
        confidence: how sure the match is (0..1).
        evidence: the dialect's evidence lines (agent, algo, ...); peer text, unescaped.
    """

    dialect: str
    family: str
    methods: tuple[str, ...]
    framing: str
    confidence: float
    evidence: tuple[Evidence, ...]


def _json_lines(data: bytes) -> list[JsonObject]:
    """JSON objects on the complete lines of ``data`` (a truncated last line is skipped)."""
    out: list[JsonObject] = []
    for line in data.split(b"\n"):
        line = line.strip()
        if not line.startswith(b"{"):
            continue
        try:
            obj = decode_json_object(line)
        except LimitExceededError:
            continue
        if obj is not None:
            out.append(obj)
    return out


def _json_document(body: bytes) -> list[JsonObject]:
    """The JSON object an HTTP body holds, as a list (empty: none). One document however
    it is laid out: real monerod indents its replies over many lines."""
    try:
        obj = decode_json_object(body.strip())
    except LimitExceededError:
        return []
    return [obj] if obj is not None else []


def _after_head(data: bytes) -> bytes | None:
    end = data.find(b"\r\n\r\n")
    return data[end + 4 :] if end >= 0 else None


def _ws_messages(data: bytes) -> list[JsonObject]:
    """JSON objects in the text frames at the start of ``data`` (either direction)."""
    try:
        frames, _ = decode_ws_frames(data, max_frames=64)
    except (RemoteProtocolError, LimitExceededError):
        return []
    out: list[JsonObject] = []
    for frame in frames:
        if frame.opcode in (OP_TEXT, OP_CONT):
            out.extend(_json_lines(frame.payload))
    return out


def _is_ws_upgrade(c2s: bytes, s2c: bytes) -> bool:
    head = c2s[: c2s.find(b"\r\n\r\n") + 1 or 2048].lower()
    return (c2s.startswith(b"GET ") and b"upgrade: websocket" in head) or s2c.startswith(b"HTTP/1.1 101")


def _looks_like_bare_ws(data: bytes) -> bool:
    return len(data) >= 2 and data[0] in (0x81, 0x01) and data[1] & 0x7F > 0


def _http_bodies(data: bytes, *, request: bool) -> list[JsonObject]:
    """JSON bodies of the HTTP messages at the start of ``data`` (keep-alive sequences)."""
    out: list[JsonObject] = []
    pos = 0
    for _ in range(16):
        chunk = data[pos:]
        if not chunk:
            break
        try:
            if request:
                body = http_jsonrpc.parse_http_request(chunk).body
            else:
                body = http_jsonrpc.parse_http_response(chunk).body
        except (RemoteProtocolError, LimitExceededError):
            break
        out.extend(_json_document(body))
        head_end = chunk.find(b"\r\n\r\n") + 4
        pos += head_end + len(body)
    return out


def _from_result(result: DialectResult, framing: str) -> StratumEvidence:
    family = result.get("family") or ""
    methods = tuple(m for m in (result.get("methods") or "").split(",") if m)
    return StratumEvidence(result.dialect, family, methods, framing, result.confidence, result.evidence)


def _match_json(
    client: Sequence[JsonObject], server: Sequence[JsonObject], framing: str
) -> StratumEvidence | None:
    """Run the JSON dialects' passive recognisers, most specific first."""
    if not client and not server:
        return None
    if framing == "ws":
        found = COINHIVE.passive_match(client, server)
        if found is not None:
            return _from_result(found, framing)
    for dialect in (XMRIG, ETHPROXY):
        found = dialect.passive_match(client, server)
        if found is not None:
            return _from_result(found, framing)
    found = STRATUM1.passive_match(client, server)
    if found is not None:
        family = Family(found.get("family") or "bitcoin")
        name = _FAMILY_DIALECT.get(family, "stratum1")
        ev = [Evidence("dialect", name), *(e for e in found.evidence if e.key != "dialect")]
        if family in _FAMILY_ALGO:
            ev.append(Evidence("algo", _FAMILY_ALGO[family]))
        for msg in client:
            params = msg.get("params")
            if msg.get("method") == "mining.subscribe" and isinstance(params, list) and params:
                if isinstance(params[0], str):
                    ev.append(Evidence("agent", params[0]))
                break
        methods = tuple(m for m in (found.get("methods") or "").split(",") if m)
        return StratumEvidence(name, str(family), methods, framing, found.confidence, tuple(ev))
    return None


def detect_stratum(c2s: bytes, s2c: bytes, *, max_bytes: int = DEFAULT_SCAN_BYTES) -> StratumEvidence | None:
    """Recognise plaintext mining in the first ``max_bytes`` of each direction of a flow.

    Args:
        c2s: client-to-server payload bytes (reassembled, in order), from the start.
        s2c: server-to-client payload bytes.
        max_bytes: how much of each direction to read.

    Returns:
        What was recognised, or None when nothing mining-specific is present.
    """
    c2s = bytes(c2s[:max_bytes])
    s2c = bytes(s2c[:max_bytes])
    if c2s.startswith(_NOT_PLAINTEXT) or s2c.startswith(_NOT_PLAINTEXT):
        return None
    if _is_ws_upgrade(c2s, s2c):
        client_ws = _after_head(c2s) or b""
        server_ws = _after_head(s2c) or b""
        return _match_json(_ws_messages(client_ws), _ws_messages(server_ws), "ws")
    if c2s.startswith(_HTTP_METHODS):
        client = _http_bodies(c2s, request=True)
        server = _http_bodies(s2c, request=False)
        found = _match_json(client, server, "http")
        if found is not None:
            return found
        methods = http_jsonrpc.daemon_passive(client)
        if methods is None:
            return None
        return _daemon_evidence(methods, client)
    if b"{" not in c2s and b"{" not in s2c:
        if _looks_like_bare_ws(c2s) or _looks_like_bare_ws(s2c):
            return _match_json(_ws_messages(c2s), _ws_messages(s2c), "ws")
        return None
    client, server = _json_lines(c2s), _json_lines(s2c)
    found = _match_json(client, server, "line")
    if found is None:
        # a capture that starts mid-connection may have guessed the directions wrong
        found = _match_json(server, client, "line")
    if found is None and (_looks_like_bare_ws(c2s) or _looks_like_bare_ws(s2c)):
        found = _match_json(_ws_messages(c2s), _ws_messages(s2c), "ws")
    return found


def _may_hold_json_line(data: bytes) -> bool:
    """Whether :func:`_json_lines` could find an object in ``data`` or in a slice of it that
    starts at a line start (an HTTP body begins after the blank line ending its head)."""
    return b"{" in data and (_LEADING_BRACE.match(data) is not None or LINE_BRACE.search(data) is not None)


CHECK_FIRST = b"\x81\x01GH \t\n\r\x0b\x0c{\x16\x17\x15S"
"""First bytes that need the exact checks of ``_may_be_stratum``: WebSocket frame opcodes,
"G"ET upgrade / "H"TTP 101, blank or "{" (a JSON first line), TLS records and "S"SH-.
A flow whose directions start with none of them may be Stratum only if a later line of
one starts with ``{`` (``LINE_BRACE``)."""
_CHECK_FIRST = frozenset(bytes([b]) for b in CHECK_FIRST)


def may_be_stratum(c2s: bytes, s2c: bytes, *, max_bytes: int = DEFAULT_SCAN_BYTES) -> bool:
    """False only when ``detect_stratum(c2s, s2c, max_bytes=max_bytes)`` is certainly None.

    Every path of :func:`detect_stratum` needs at least one JSON object: WebSocket frames
    (masked, so invisible in the raw bytes: an upgrade or a frame-like first byte is
    enough here), or a line whose first non-blank byte is ``{``, in the data itself or in
    an HTTP body (a raw slice starting after the blank line ending the head). Most flows
    are settled by their first bytes and one regex scan for newline, blanks, ``{`` in C:
    no splitting, stripping or decoding.
    True may be a false alarm (the recogniser then decides); False never is.
    """
    if c2s[:1] in _CHECK_FIRST or s2c[:1] in _CHECK_FIRST:
        return _may_be_stratum(c2s, s2c, max_bytes)
    # no frame, upgrade or first-line JSON: only a later line (or HTTP body) can hold one;
    # scanning past max_bytes can only add false alarms
    return (_line_brace(c2s) or _line_brace(s2c)) is not None


def _may_be_stratum(c2s: bytes, s2c: bytes, max_bytes: int) -> bool:
    """:func:`may_be_stratum`, following :func:`detect_stratum` step by step."""
    c2s = bytes(c2s[:max_bytes])
    s2c = bytes(s2c[:max_bytes])
    if c2s.startswith(_NOT_PLAINTEXT) or s2c.startswith(_NOT_PLAINTEXT):
        return False
    if _looks_like_bare_ws(c2s) or _looks_like_bare_ws(s2c):
        return True
    if _is_ws_upgrade(c2s, s2c):
        return True
    return _may_hold_json_line(c2s) or _may_hold_json_line(s2c)


_DAEMON_OF_METHOD = {
    "getblocktemplate": ("bitcoind", "bitcoin-family"),
    "submitblock": ("bitcoind", "bitcoin-family"),
    "getwork": ("bitcoind", "bitcoin-family"),
    "get_block_template": ("monerod", "monero"),
    "submit_block": ("monerod", "monero"),
    "eth_getWork": ("geth", "ethereum-family"),
    "eth_submitWork": ("geth", "ethereum-family"),
}


def _daemon_evidence(methods: list[str], client: Sequence[JsonObject]) -> StratumEvidence:
    """Solo mining to a node, named by its first mining method. xmrig's daemon mode asks
    monerod for ``getblocktemplate`` (monerod's alias of ``get_block_template``), the
    bitcoind method's name, so a ``wallet_address`` in its params names monerod."""
    dialect, coin = _DAEMON_OF_METHOD[methods[0]]
    for msg in client:
        params = msg.get("params")
        if isinstance(params, Mapping) and "wallet_address" in params:
            dialect, coin = _DAEMON_OF_METHOD["get_block_template"]
            break
    ev = (
        Evidence("dialect", dialect),
        Evidence("family", str(Family.DAEMON)),
        Evidence("coin", coin),
        Evidence("methods", ",".join(methods)),
    )
    return StratumEvidence(dialect, str(Family.DAEMON), tuple(methods), "http", 0.8, ev)
