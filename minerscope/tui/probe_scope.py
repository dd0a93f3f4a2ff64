"""Whether the workstation's probe key may send traffic to an endpoint: now, after asking, or never.

``scan --probe`` and ``live --probe`` probe what the capture shows only inside ``--scope``
(default: loopback), minus ``--deny``. The workstation takes the same options, but an
analyst pressing ``p`` on one endpoint is making a decision about that endpoint, so an
endpoint outside the scope is not refused outright: the app asks, naming the address and
the scope, and probes only on yes, under a scope of that one address (so a resolver or a
redirect cannot widen it). What ``--deny`` (or the always-denied multicast/broadcast/
reserved blocks) excludes is refused whatever the analyst answers: that list is the
operator's, not a default.

A host name (a proxy's tunnel target) cannot be placed in a network without resolving
it, and the lookup itself tells the name's owner; it is treated as outside the scope
(asked first), and probed under a scope that allows any address it resolves to, minus
``--deny``: the runner still checks every resolved address against that.

Pure (no Textual, no sockets), so the rule is tested without a terminal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

from minerscope.probe.scope import Scope, parse_address
from minerscope.probe.target import format_target


class ProbeAction(Enum):
    """What the probe key does with an endpoint."""

    PROBE = "probe"
    ASK = "ask"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class ProbeDecision:
    """The probe key's answer for one endpoint.

    Attributes:
        action: probe at once, ask the analyst first, or refuse.
        message: for ASK the question to put, for REFUSE the reason ("" for PROBE).
        scope: the scope the probe runs under (PROBE, and ASK once answered yes); None for REFUSE.
    """

    action: ProbeAction
    message: str
    scope: Scope | None


def _allowed_text(scope: Scope) -> str:
    return "any address" if scope.allow is None else ", ".join(str(n) for n in scope.allow) or "nothing"


def decide_probe(scope: Scope, host: str, port: int) -> ProbeDecision:
    """Decide what pressing the probe key on ``host:port`` does under ``scope``."""
    target = format_target(host, port)
    deny_only = Scope(allow=None, deny=scope.deny)
    address = parse_address(host)
    if address is None:  # a host name: which networks it is in is unknown until resolved
        if scope.allow is None:
            return ProbeDecision(ProbeAction.PROBE, "", scope)
        return ProbeDecision(
            ProbeAction.ASK,
            f"probe {target}? it is a host name: resolving it may reach addresses outside the "
            f"probe scope ({_allowed_text(scope)}); this sends traffic to them",
            deny_only,
        )
    refused = deny_only.reason_refused(address)
    if refused is not None:
        return ProbeDecision(ProbeAction.REFUSE, f"not probed: {refused}", None)
    if scope.reason_refused(address) is None:
        return ProbeDecision(ProbeAction.PROBE, "", scope)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # the scope checks a mapped address as its IPv4 form
    return ProbeDecision(
        ProbeAction.ASK,
        f"probe {target}? it is outside the probe scope ({_allowed_text(scope)}); this sends traffic to it",
        Scope(allow=(ipaddress.ip_network(address),), deny=scope.deny),
    )
