"""Probe targets as text and back: ``host:port``, ``[v6]:port``, ``stratum+tcp://host:port``.

Apart from the runner so a command can check its targets (``probe --from FILE``) without
importing the I/O stack (asyncio transports, httpx, websockets, cryptography).
"""

from __future__ import annotations

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
    return host, int(port_text)
