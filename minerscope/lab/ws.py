"""RFC 6455 WebSocket framing for the lab (browser miners, chat/ticker apps).

Real framing matters because a WebSocket frame's 2-14 byte header and the client's
mandatory 4-byte mask change every client message size by a small, length-dependent
amount: a detector must see that, not a bare JSON line. The mask is real (payload XORed
with a key from the session's seeded generator), so client payloads are unreadable on
the wire exactly as in a browser.
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, *, masked: bool, rng: random.Random, opcode: int = OP_TEXT) -> bytes:
    """One final frame carrying ``payload``; client frames (``masked``) are XOR-masked."""
    n = len(payload)
    head = bytes((0x80 | opcode,))
    mbit = 0x80 if masked else 0
    if n < 126:
        head += bytes((mbit | n,))
    elif n < 65536:
        head += struct.pack("!BH", mbit | 126, n)
    else:
        head += struct.pack("!BQ", mbit | 127, n)
    if not masked:
        return head + payload
    key = rng.randbytes(4)
    reps = (n + 3) // 4
    mask = int.from_bytes((key * reps)[:n], "big") if n else 0
    body = (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big") if n else b""
    return head + key + body


def unmask(data: bytes) -> tuple[int, bytes, int]:
    """Parse one frame at the start of ``data``: ``(opcode, payload, frame_length)`` (tests, stats)."""
    op = data[0] & 0x0F
    masked = data[1] & 0x80
    n = data[1] & 0x7F
    pos = 2
    if n == 126:
        (n,) = struct.unpack_from("!H", data, 2)
        pos = 4
    elif n == 127:
        (n,) = struct.unpack_from("!Q", data, 2)
        pos = 10
    if masked:
        key = data[pos : pos + 4]
        pos += 4
        body = bytes(b ^ key[i % 4] for i, b in enumerate(data[pos : pos + n]))
    else:
        body = data[pos : pos + n]
    return op, body, pos + n


def upgrade(rng: random.Random, host: str, path: str, origin: str, agent: str) -> tuple[bytes, bytes]:
    """The HTTP/1.1 upgrade request and the server's ``101`` answer, with a real accept key."""
    key = base64.b64encode(rng.randbytes(16)).decode()
    accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nPragma: no-cache\r\n"
        f"Cache-Control: no-cache\r\nUser-Agent: {agent}\r\nUpgrade: websocket\r\nOrigin: {origin}\r\n"
        f"Sec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\n"
        f"Accept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    response = (
        f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    return request.encode(), response.encode()
