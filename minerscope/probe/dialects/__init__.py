"""The mining dialects, sans-IO, and the registry the prober iterates over.

``DIALECTS`` maps a dialect's name to its (stateless) :class:`~.base.Dialect` object in
the recommended probe order: the line dialects seen most in the wild first (xmrig,
Stratum V1, eth-proxy, EthereumStratum, Zcash), then the browser WebSocket dialect, the
HTTP daemons, and the Stratum V2 Noise guess last. ``get_dialect(name)`` raises
``KeyError`` naming the known names.

Names: ``xmrig``, ``stratum1``, ``ethproxy``, ``ethstratum``, ``stratum1-zcash``,
``coinhive``, ``bitcoind``, ``monerod``, ``geth``, ``sv2``.
"""

from __future__ import annotations

from minerscope.probe.dialects.base import Dialect, Family, Framing, ProbeContext
from minerscope.probe.dialects.bitcoin import STRATUM1
from minerscope.probe.dialects.browser_ws import COINHIVE
from minerscope.probe.dialects.ethereum import ETHPROXY, ETHSTRATUM
from minerscope.probe.dialects.http_jsonrpc import BITCOIND, GETH, MONEROD
from minerscope.probe.dialects.monero import XMRIG
from minerscope.probe.dialects.sv2 import SV2
from minerscope.probe.dialects.zcash import ZCASH

DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (XMRIG, STRATUM1, ETHPROXY, ETHSTRATUM, ZCASH, COINHIVE, BITCOIND, MONEROD, GETH, SV2)
}
"""Every dialect by name, in recommended probe order."""


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``.

    Raises:
        KeyError: no such dialect (the message lists the known names).
    """
    try:
        return DIALECTS[name]
    except KeyError:
        raise KeyError(f"unknown dialect {name!r}; known: {', '.join(DIALECTS)}") from None


def dialects_for(framing: Framing | None = None, family: Family | None = None) -> list[Dialect]:
    """Dialects filtered by framing and/or family, in probe order."""
    return [
        d
        for d in DIALECTS.values()
        if (framing is None or d.framing is framing) and (family is None or d.family is family)
    ]


__all__ = ["DIALECTS", "Dialect", "Family", "Framing", "ProbeContext", "dialects_for", "get_dialect"]
