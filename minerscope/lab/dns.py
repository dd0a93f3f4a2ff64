"""Real DNS query/response messages (RFC 1035) for the lab's name lookups.

The demo capture must let the pipeline map pool names to addresses from the traffic
itself (stage 0 matches blacklisted names in DNS as well as SNI), so lookups are genuine
DNS messages: header, question, and A/AAAA answers with TTLs, name compression included.
"""

from __future__ import annotations

import ipaddress
import struct


def _qname(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes((len(raw),)) + raw
    return bytes(out) + b"\x00"


def query(txid: int, name: str, qtype: int = 1) -> bytes:
    """A recursive query for ``name`` (qtype 1 = A, 28 = AAAA)."""
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + _qname(name) + struct.pack("!HH", qtype, 1)


def response(txid: int, name: str, addresses: list[str], ttl: int = 300, qtype: int = 1) -> bytes:
    """The resolver's answer: the question echoed, one record per address (compressed name)."""
    answers = b""
    for addr in addresses:
        packed = ipaddress.ip_address(addr).packed
        rtype = 1 if len(packed) == 4 else 28
        answers += struct.pack("!HHHIH", 0xC00C, rtype, 1, ttl, len(packed)) + packed
    header = struct.pack("!HHHHHH", txid, 0x8180, 1, len(addresses), 0, 0)
    return header + _qname(name) + struct.pack("!HH", qtype, 1) + answers
