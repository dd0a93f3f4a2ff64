"""Helpers for the sans-IO dialect tests: bytes both ways, no sockets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minerscope.probe.dialects.base import JsonObject, Request
from minerscope.probe.framing import LineBuffer, decode_json_object, encode_json_line


def wire(*messages: Mapping[str, Any], spaced: bool = False) -> list[bytes]:
    """Messages as the lines a LineBuffer would hand to ``classify`` (framed for real)."""
    buf = LineBuffer()
    data = b"".join(encode_json_line(m, spaced=spaced) for m in messages)
    lines = buf.feed(data)
    assert buf.flush() == b""
    return lines


def sent(requests: list[Request]) -> list[JsonObject]:
    """The JSON objects a probe's requests carry (what the far side parses)."""
    out = []
    for req in requests:
        obj = decode_json_object(req.data.rstrip(b"\n"))
        assert obj is not None, req
        out.append(obj)
    return out


METHOD_NOT_FOUND = b'{"id":%d,"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"}}'
HTTP_404 = (
    b"HTTP/1.1 404 Not Found\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\n\r\n"
    b"<html><head><title>404 Not Found</title></head></html>"
)
