"""Probe targets as text and back: ``host:port``, ``[v6]:port``, ``stratum+tcp://host:port``.

Apart from the runner so a command can check its targets (``probe --from FILE``) without
importing the I/O stack (asyncio transports, httpx, websockets, cryptography).
"""

from __future__ import annotations

import ipaddress
import re
import socket

from minerscope.errors import InputError
from minerscope.untrusted import is_decimal

Target = tuple[str, int]


def format_target(host: str, port: int) -> str:
    """``host:port``, with brackets around IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_target(text: str, default_port: int | None = None) -> Target:
    """``host:port``, ``[v6]:port`` or a URL like ``stratum+tcp://host:port`` -> (host, port).

    Raises:
        InputError: no port (and no ``default_port``), or a port outside 1..65535.
    """
    raw = text.strip()
    if "://" in raw:
        raw = raw.split("://", 1)[1].split("/", 1)[0]
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    else:  # a bare IPv6 address or a bare host name
        host, port_text = raw, ""
    if not port_text and default_port is not None:
        port_text = str(default_port)
    if not host or not is_decimal(port_text) or not 0 < int(port_text) < 65536:
        raise InputError(f"target {raw[:80]!r}: expected host:port with a port 1-65535")
    return canonical_host(host), int(port_text)


_LEGACY_IPV4 = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)(\.(0[xX][0-9a-fA-F]+|[0-9]+)){0,3}")
"""The spellings ``inet_aton`` (and so a resolver) reads as an IPv4 address: 2130706433,
127.1, 127.000.000.001, 0x7f.1."""


def canonical_host(host: str) -> str:
    """One spelling per address: an IP literal in its standard form (an IPv4-mapped IPv6
    address as the IPv4 address; the legacy IPv4 spellings a resolver accepts, such as
    ``2130706433`` or ``127.000.000.001``, as dotted quads), a host name in lower case.

    Why: five spellings of 127.0.0.1 were probed five times and became five pools in the
    case file, one of them a "domain" indicator named 127.000.000.001."""
    text = host.strip()
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        if _LEGACY_IPV4.fullmatch(text):
            try:
                return socket.inet_ntoa(socket.inet_aton(text))
            except OSError:
                pass
        return text.lower()
    if "%" in text:  # a zone id names the interface: keep it
        return text
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)
