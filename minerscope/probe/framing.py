"""Bounded, sans-IO framing: newline-delimited JSON-RPC, JSON decoding, WebSocket frames.

A probed server is hostile by assumption: it may never send a newline, send a gigabyte,
nest JSON ten thousand levels deep or send bytes that are not UTF-8. Every reader here
therefore has *named* limits (websockets/h11 style) and raises
:class:`minerscope.errors.LimitExceededError` naming the limit, or
:class:`minerscope.errors.RemoteProtocolError` when the peer's bytes are not what the
framing requires. There is no I/O: bytes in, lines/objects/frames out, so the asyncio
transport, the traffic lab and the stage-0 recogniser all share one implementation.

API (stable)::

    LineBuffer(max_line_bytes=65536, max_total_bytes=1048576)
        .feed(data: bytes) -> list[bytes]   complete lines, terminator and a trailing
                                            "\\r" removed, blank lines skipped
        .flush() -> bytes                   the unterminated tail (peer closed mid-line)
        .total_bytes / .pending_bytes
    decode_json(data, *, max_bytes=65536, max_depth=32) -> object
    decode_json_object(data, *, max_bytes=65536, max_depth=32) -> dict[str, object] | None
    encode_json_line(message, *, spaced=False) -> bytes            ends with b"\\n"
    rpc_request(id, method, params, *, jsonrpc=False, extra=None) -> dict
    rpc_response(id, result, error=None, *, jsonrpc=False) -> dict
    rpc_notification(method, params, *, jsonrpc=False) -> dict     ("id": null)
    WsFrame(fin, opcode, payload, complete) ; encode_ws_frame(payload, *, opcode=OP_TEXT,
        mask=None, fin=True) -> bytes ; decode_ws_frames(data, *, max_frames=64,
        max_payload_bytes=1048576) -> tuple[list[WsFrame], int]

If a limit is hit in the middle of a :meth:`LineBuffer.feed`, the complete lines that
arrived before it are still returned and the error is raised by the next ``feed`` or
``flush`` (nothing that could be read is lost; the error is never swallowed).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from minerscope.errors import LimitExceededError, RemoteProtocolError

DEFAULT_MAX_LINE_BYTES = 64 * 1024
"""Longest JSON-RPC line accepted; real mining messages are under 2 KiB (PROTOCOLS.md §5)."""
DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024
"""Most bytes one :class:`LineBuffer` accepts over its lifetime (one probe connection)."""
DEFAULT_MAX_JSON_BYTES = 64 * 1024
"""Largest JSON document :func:`decode_json` parses."""
DEFAULT_MAX_JSON_DEPTH = 32
"""Deepest array/object nesting :func:`decode_json` accepts (real messages nest <= 4)."""

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_KNOWN_OPCODES = frozenset({OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})


class LineBuffer:
    """Split a byte stream into newline-terminated lines under two named limits.

    Args:
        max_line_bytes: longest line (without terminator) before ``max_line_bytes`` is raised;
            an unterminated tail longer than this raises too (the "endless line" attack).
        max_total_bytes: most bytes accepted in total before ``max_total_bytes`` is raised.
    """

    __slots__ = ("_buf", "_failed", "_max_line", "_max_total", "_total")

    def __init__(
        self,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        if max_line_bytes <= 0 or max_total_bytes <= 0:
            raise ValueError("LineBuffer limits must be positive")
        self._max_line = max_line_bytes
        self._max_total = max_total_bytes
        self._buf = bytearray()
        self._total = 0
        self._failed: LimitExceededError | None = None

    @property
    def total_bytes(self) -> int:
        """Bytes fed so far (including any cut off by ``max_total_bytes``)."""
        return self._total

    @property
    def pending_bytes(self) -> int:
        """Bytes of the current, not yet terminated line."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the lines it completed.

        Raises:
            LimitExceededError: ``max_line_bytes`` or ``max_total_bytes`` was exceeded
                (possibly by an earlier ``feed`` that still returned its complete lines).
        """
        if self._failed is not None:
            raise self._failed
        pending: LimitExceededError | None = None
        over_total: LimitExceededError | None = None
        self._total += len(data)
        if self._total > self._max_total:
            allowed = self._max_total - (self._total - len(data))
            data = data[: max(0, allowed)]
            over_total = LimitExceededError(
                "max_total_bytes", self._max_total, f"peer sent at least {self._total} bytes"
            )
        lines: list[bytes] = []
        start = 0
        while pending is None:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            if len(self._buf) + (nl - start) > self._max_line:
                pending = self._line_error(len(self._buf) + (nl - start))
                break
            if self._buf:
                self._buf += data[start:nl]
                line = bytes(self._buf)
                self._buf.clear()
            else:
                line = bytes(data[start:nl])
            start = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip():
                lines.append(line)
        if pending is None:
            rest = len(data) - start
            if len(self._buf) + rest > self._max_line:
                pending = self._line_error(len(self._buf) + rest, terminated=False)
            else:
                self._buf += data[start:]
        pending = pending or over_total
        if pending is not None:
            self._failed = pending
            self._buf.clear()
            if not lines:
                raise pending
        return lines

    def flush(self) -> bytes:
        """Return and clear the unterminated tail (for a peer that closed mid-line).

        Raises:
            LimitExceededError: a limit was hit by an earlier ``feed``.
        """
        if self._failed is not None:
            raise self._failed
        tail = bytes(self._buf)
        self._buf.clear()
        return tail.rstrip(b"\r")

    def _line_error(self, size: int, terminated: bool = True) -> LimitExceededError:
        what = "line of" if terminated else "no newline within"
        return LimitExceededError("max_line_bytes", self._max_line, f"{what} {size} bytes")


_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE = re.compile(rb"[\[\]{}]")


def _max_depth(raw: bytes, limit: int) -> int:
    """Deepest bracket nesting outside string literals (stops counting past ``limit``)."""
    depth = deepest = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub(b'""', raw)):
        if match.group(0) in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        else:
            depth -= 1
    return deepest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _finite_float(text: str) -> float:
    """A JSON number as a float; ``1e400`` would silently become infinity (found by fuzzing)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of the float range")
    return value


def decode_json(
    data: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_JSON_BYTES,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> object:
    """Parse one JSON document from an untrusted peer under size and depth limits.

    Returns:
        The decoded value (``dict``/``list``/``str``/``int``/``float``/``bool``/``None``).

    Raises:
        LimitExceededError: ``max_json_bytes`` or ``max_json_depth`` exceeded.
        RemoteProtocolError: invalid UTF-8 (offset named), not JSON, or NaN/Infinity (also
            as a number too large for a float, such as ``1e400``).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise LimitExceededError("max_json_bytes", max_bytes, f"document of {len(raw)} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"invalid UTF-8 in JSON at byte {exc.start}") from None
    depth = _max_depth(raw, max_depth)
    if depth > max_depth:
        raise LimitExceededError("max_json_depth", max_depth, f"nesting deeper than {max_depth}")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"not JSON: {exc}"[:200]) from None


def decode_json_object(
    data: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_JSON_BYTES,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> dict[str, object] | None:
    """The JSON object in ``data``, or None when it is not JSON or not an object.

    Lenient about *content* (classifiers treat non-JSON as "not a pool") but still strict
    about *limits*: :class:`LimitExceededError` propagates.
    """
    try:
        value = decode_json(data, max_bytes=max_bytes, max_depth=max_depth)
    except RemoteProtocolError:
        return None
    return value if isinstance(value, dict) else None


def encode_json_line(message: Mapping[str, Any], *, spaced: bool = False) -> bytes:
    """Serialise ``message`` (key order kept) as one UTF-8 line ending in ``\\n``.

    ``spaced=False`` gives ``{"id":1,...}`` (xmrig, most pools); ``spaced=True`` gives
    ``{"id": 1, ...}`` (Python's default, cpuminer/sgminer-style), which changes sizes.
    """
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(message, separators=separators, ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def rpc_request(
    id: int | str | None,
    method: str,
    params: Any,
    *,
    jsonrpc: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-RPC request object: ``id``, [``jsonrpc``], ``method``, ``params``, then ``extra``."""
    msg: dict[str, Any] = {"id": id}
    if jsonrpc:
        msg["jsonrpc"] = "2.0"
    msg["method"] = method
    msg["params"] = params
    if extra:
        msg.update(extra)
    return msg


def rpc_response(
    id: int | str | None, result: Any, error: Any = None, *, jsonrpc: bool = False
) -> dict[str, Any]:
    """A JSON-RPC response object: ``id``, [``jsonrpc``], ``result``, ``error``."""
    msg: dict[str, Any] = {"id": id}
    if jsonrpc:
        msg["jsonrpc"] = "2.0"
    msg["result"] = result
    msg["error"] = error
    return msg


def rpc_notification(method: str, params: Any, *, jsonrpc: bool = False) -> dict[str, Any]:
    """A server push: ``id`` null, [``jsonrpc``], ``method``, ``params``."""
    msg: dict[str, Any] = {"id": None}
    if jsonrpc:
        msg["jsonrpc"] = "2.0"
    msg["method"] = method
    msg["params"] = params
    return msg


@dataclass(frozen=True, slots=True)
class WsFrame:
    """One RFC 6455 frame, payload already unmasked.

    ``complete`` is False for the last frame of a truncated buffer (a capture's first KB):
    its payload is then whatever part of it was present.
    """

    fin: bool
    opcode: int
    payload: bytes
    complete: bool = True


def encode_ws_frame(
    payload: bytes, *, opcode: int = OP_TEXT, mask: bytes | None = None, fin: bool = True
) -> bytes:
    """One WebSocket frame; pass a 4-byte ``mask`` for client-to-server frames (RFC 6455 §5.3)."""
    if mask is not None and len(mask) != 4:
        raise ValueError("a WebSocket mask is exactly 4 bytes")
    head = bytearray([(0x80 if fin else 0) | (opcode & 0x0F)])
    mbit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head.append(mbit | n)
    elif n < 1 << 16:
        head.append(mbit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mbit | 127)
        head += n.to_bytes(8, "big")
    if mask is None:
        return bytes(head) + payload
    head += mask
    return bytes(head) + _unmask(payload, mask)


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return b""
    key = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def decode_ws_frames(
    data: bytes,
    *,
    max_frames: int = 64,
    max_payload_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
) -> tuple[list[WsFrame], int]:
    """Parse WebSocket frames from the start of ``data`` (after the HTTP upgrade).

    Stops at ``max_frames`` frames or at a truncated frame (returned with
    ``complete=False`` when at least its header was present).

    Returns:
        (frames, bytes consumed by the complete frames).

    Raises:
        RemoteProtocolError: reserved bits set or an unknown opcode at the named offset
            (the bytes are not WebSocket frames).
        LimitExceededError: a frame announces more than ``max_payload_bytes``.
    """
    frames: list[WsFrame] = []
    pos = 0
    while pos < len(data) and len(frames) < max_frames:
        if len(data) - pos < 2:
            break
        b0, b1 = data[pos], data[pos + 1]
        if b0 & 0x70:
            raise RemoteProtocolError(f"WebSocket frame at byte {pos}: reserved bits set")
        opcode = b0 & 0x0F
        if opcode not in _KNOWN_OPCODES:
            raise RemoteProtocolError(f"WebSocket frame at byte {pos}: unknown opcode {opcode:#x}")
        hdr = 2
        length = b1 & 0x7F
        if length == 126:
            if len(data) - pos < 4:
                break
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            hdr = 4
        elif length == 127:
            if len(data) - pos < 10:
                break
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            hdr = 10
        if length > max_payload_bytes:
            raise LimitExceededError(
                "max_payload_bytes", max_payload_bytes, f"frame of {length} bytes at byte {pos}"
            )
        mask: bytes | None = None
        if b1 & 0x80:
            if len(data) - pos < hdr + 4:
                break
            mask = bytes(data[pos + hdr : pos + hdr + 4])
            hdr += 4
        body = bytes(data[pos + hdr : pos + hdr + length])
        complete = len(body) == length
        if mask is not None:
            body = _unmask(body, mask)
        frames.append(WsFrame(bool(b0 & 0x80), opcode, body, complete))
        if not complete:
            break
        pos += hdr + length
    return frames, pos
