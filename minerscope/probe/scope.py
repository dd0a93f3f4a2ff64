"""Which addresses the prober may talk to, decided before a single packet leaves.

Active probing sends traffic to machines we do not own, so the decision "may we?" is
made up front and in one place, the way a scanner's exclude list works: a :class:`Scope`
holds allowed and denied networks, and :meth:`Scope.check` raises
:class:`~minerscope.errors.ScopeError` for a target outside it. The runner calls it on
the literal address *and* on every address a host name resolves to (all must be in
scope), and then connects to the checked address itself, never to the name again, so a
second DNS answer cannot move the probe somewhere else.

Defaults, chosen to be safe rather than convenient:

* :data:`LOOPBACK` (``127.0.0.0/8`` and ``::1``) is the scope of tests, benches and demos.
* :meth:`Scope.explicit_targets` is the CLI default when the user gives no ``--scope``:
  any target the user named explicitly is allowed, because naming it is the decision.
* Whatever the allow list says, :data:`ALWAYS_DENIED` is refused: multicast, limited
  broadcast, "this network"/unspecified and the reserved 240/4 block. Nothing there is a
  pool, and a probe sent there reaches many hosts or none.

This module is pure (no sockets, no DNS): resolution happens in
:mod:`minerscope.probe.transport`, which hands the addresses back here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from minerscope.errors import InputError, ScopeError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ALWAYS_DENIED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network" / unspecified
        "224.0.0.0/4",  # IPv4 multicast
        "240.0.0.0/4",  # reserved (includes 255.255.255.255 limited broadcast)
        "::/128",  # IPv6 unspecified
        "ff00::/8",  # IPv6 multicast
    )
)
"""Networks no scope can allow: multicast, broadcast, unspecified, reserved."""

LOOPBACK_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


class DeniedError(ScopeError):
    """The target (or an address its name resolves to) is in a ``--deny`` network: the
    user's own exclusion, as opposed to a target outside the allowed scope.

    Attributes:
        network: the denied network the address fell in.
    """

    def __init__(self, message: str, network: Network) -> None:
        super().__init__(message)
        self.network = network


def parse_networks(values: Iterable[str], *, option: str = "--scope") -> tuple[Network, ...]:
    """Parse CIDR strings (a bare address means a single host).

    Raises:
        InputError: a value is not an address or network; the message names it and ``option``.
    """
    networks: list[Network] = []
    for raw in values:
        text = raw.strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise InputError(f"{option} {text!r}: not an IP address or CIDR network") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """``text`` as an IP address (IPv6 brackets and zone ids tolerated), or None for a name."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    candidate = candidate.split("%", 1)[0]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Scope:
    """Allowed and denied networks for probing.

    Attributes:
        allow: networks a target must fall in; ``None`` allows any address (minus ``deny``).
        deny: networks refused even when ``allow`` contains them (like a scanner's exclude list).
    """

    allow: tuple[Network, ...] | None
    deny: tuple[Network, ...] = ()

    @classmethod
    def loopback(cls) -> Scope:
        """127.0.0.0/8 and ::1 only: the scope of tests, benchmarks and demos."""
        return cls(allow=LOOPBACK_NETWORKS)

    @classmethod
    def explicit_targets(cls, deny: Iterable[str] = ()) -> Scope:
        """Any explicitly named target (CLI default), minus ``deny`` and :data:`ALWAYS_DENIED`."""
        return cls(allow=None, deny=parse_networks(deny, option="--deny"))

    @classmethod
    def for_capture(cls, allow: Iterable[str], deny: Iterable[str]) -> Scope:
        """Scope of endpoints found in traffic (``scan --probe``, ``live --probe``):
        ``--scope`` networks, loopback when none is given, minus ``--deny`` either way.

        Nobody named these targets, so nothing outside loopback is probed unless the analyst
        widens the scope; and a ``--deny`` given without ``--scope`` still applies.
        """
        return cls.from_cli(allow, deny, default=LOOPBACK_NETWORKS)

    @classmethod
    def from_cli(
        cls, allow: Iterable[str], deny: Iterable[str], *, default: tuple[Network, ...] | None = None
    ) -> Scope:
        """Build from ``--scope``/``--deny`` values; no ``--scope`` allows ``default`` (None:
        any explicitly named target, as :meth:`explicit_targets`), minus ``--deny`` always."""
        allow_list = tuple(allow)
        allowed = parse_networks(allow_list) if allow_list else default
        return cls(allow=allowed, deny=parse_networks(deny, option="--deny"))

    def reason_refused(self, address: Address) -> str | None:
        """Why ``address`` is out of scope, or None when it may be probed."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for net in ALWAYS_DENIED:
            if address.version == net.version and address in net:
                return f"{address} is in {net}, which is never probed (multicast/broadcast/reserved)"
        denied = self.denied_by(address)
        if denied is not None:
            return f"{address} is in denied network {denied}"
        if self.allow is None:
            return None
        if any(address.version == net.version and address in net for net in self.allow):
            return None
        allowed = ", ".join(str(n) for n in self.allow) or "nothing"
        return f"{address} is outside the allowed scope ({allowed})"

    def denied_by(self, address: Address) -> Network | None:
        """The ``deny`` network ``address`` falls in, or None."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for net in self.deny:
            if address.version == net.version and address in net:
                return net
        return None

    def permits(self, address: str | Address) -> bool:
        """True when ``address`` (text or address object) may be probed."""
        addr = parse_address(address) if isinstance(address, str) else address
        return addr is not None and self.reason_refused(addr) is None

    def check(self, host: str, addresses: Iterable[str | Address]) -> tuple[str, ...]:
        """Refuse unless every address ``host`` stands for is in scope.

        Args:
            host: the target as the user gave it (used in the error message).
            addresses: the literal address, or every address the name resolved to.

        Returns:
            The checked addresses as strings, in the order given.

        Raises:
            DeniedError: an address is in a ``deny`` network (a :class:`ScopeError`).
            ScopeError: no address was given, or one of them is out of scope.
        """
        checked: list[str] = []
        for raw in addresses:
            addr = parse_address(raw) if isinstance(raw, str) else raw
            if addr is None:
                raise ScopeError(f"target {host!r}: {raw!r} is not an IP address")
            reason = self.reason_refused(addr)
            if reason is not None:
                shown = host if str(addr) == host else f"{host} ({addr})"
                message = f"target {shown}: {reason}; nothing was sent"
                denied = self.denied_by(addr)
                if denied is not None and reason.endswith(f"denied network {denied}"):
                    raise DeniedError(message, denied)
                raise ScopeError(message)
            checked.append(str(addr))
        if not checked:
            raise ScopeError(f"target {host!r}: resolved to no address; nothing was sent")
        return tuple(checked)

    def describe(self) -> str:
        """One line for logs and ``--help``-style summaries."""
        allow = "any explicitly given target" if self.allow is None else ", ".join(map(str, self.allow))
        deny = ", ".join(map(str, self.deny)) or "none"
        return f"allow: {allow}; deny: {deny} (+ multicast/broadcast/reserved)"


LOOPBACK = Scope.loopback()
"""The scope of tests, benchmarks and demos."""
