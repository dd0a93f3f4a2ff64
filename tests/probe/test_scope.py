"""Scope: targets outside it are refused before any I/O, with a message saying why."""

from __future__ import annotations

import time

import pytest

from minerscope.errors import InputError, ScopeError
from minerscope.probe.runner import probe_many_list, probe_target
from minerscope.probe.scope import LOOPBACK, Scope, parse_address
from tests.probe.conftest import fast_options


def test_loopback_scope_allows_only_loopback() -> None:
    assert LOOPBACK.permits("127.0.0.1")
    assert LOOPBACK.permits("127.42.0.9")
    assert LOOPBACK.permits("::1")
    assert LOOPBACK.permits("::ffff:127.0.0.1")  # v4-mapped loopback
    assert not LOOPBACK.permits("192.0.2.1")
    assert not LOOPBACK.permits("10.0.0.1")
    assert not LOOPBACK.permits("2001:db8::1")
    assert not LOOPBACK.permits("::ffff:192.0.2.1")
    assert not LOOPBACK.permits("example.org")  # a name is never an address


def test_explicit_target_scope_denies_multicast_broadcast_and_unspecified() -> None:
    scope = Scope.explicit_targets()
    assert scope.permits("192.0.2.1")
    assert scope.permits("2001:db8::1")
    for bad in ("224.0.0.1", "239.255.255.250", "255.255.255.255", "0.0.0.0", "::", "ff02::1", "240.0.0.1"):
        assert not scope.permits(bad), bad


def test_deny_list_wins_over_allow_list() -> None:
    scope = Scope.from_cli(["10.0.0.0/8"], ["10.1.0.0/16"])
    assert scope.permits("10.2.3.4")
    assert not scope.permits("10.1.2.3")
    with pytest.raises(ScopeError, match=r"10\.1\.2\.3 is in denied network 10\.1\.0\.0/16"):
        scope.check("10.1.2.3", ["10.1.2.3"])


def test_capture_scope_is_loopback_by_default_and_deny_always_applies() -> None:
    """Endpoints found in traffic were named by nobody: loopback unless widened, and a
    ``--deny`` counts with or without ``--scope`` (it used to be dropped without one)."""
    default = Scope.for_capture([], ["127.20.0.0/16"])
    assert default.permits("127.0.0.1") and not default.permits("192.0.2.1")
    assert not default.permits("127.20.0.9")
    widened = Scope.for_capture(["192.0.2.0/24"], ["192.0.2.128/25"])
    assert widened.permits("192.0.2.1") and not widened.permits("192.0.2.200")
    assert not widened.permits("127.0.0.1")
    with pytest.raises(InputError, match="--deny '127.20/16'"):
        Scope.for_capture([], ["127.20/16"])


def test_every_resolved_address_must_be_in_scope() -> None:
    with pytest.raises(ScopeError, match=r"pool\.test \(192\.0\.2\.7\).*outside the allowed scope"):
        LOOPBACK.check("pool.test", ["127.0.0.1", "192.0.2.7"])
    assert LOOPBACK.check("pool.test", ["127.0.0.1", "::1"]) == ("127.0.0.1", "::1")
    with pytest.raises(ScopeError, match="no address"):
        LOOPBACK.check("pool.test", [])


def test_bad_cidr_is_an_input_error_naming_the_option() -> None:
    with pytest.raises(InputError, match=r"--deny '10\.0\.0\.0/33'"):
        Scope.from_cli([], ["10.0.0.0/33"])
    with pytest.raises(InputError, match=r"--scope 'nonsense'"):
        Scope.from_cli(["nonsense"], [])


def test_parse_address_handles_brackets_and_zones() -> None:
    assert str(parse_address("[::1]")) == "::1"
    assert str(parse_address("fe80::1%eth0")) == "fe80::1"
    assert parse_address("pool.example") is None


async def test_out_of_scope_probe_raises_instantly_and_sends_nothing(no_network: list[str]) -> None:
    start = time.monotonic()
    with pytest.raises(ScopeError, match=r"192\.0\.2\.1.*nothing was sent"):
        await probe_target("192.0.2.1", 3333, options=fast_options())
    assert time.monotonic() - start < 0.1
    assert no_network == []  # the guard saw no connect and no DNS lookup


async def test_batch_with_one_out_of_scope_literal_fails_before_any_traffic(no_network: list[str]) -> None:
    targets = ["127.0.0.1:1", "192.0.2.1:3333", "127.0.0.2:2"]
    with pytest.raises(ScopeError, match=r"192\.0\.2\.1"):
        await probe_many_list(targets, fast_options())
    assert no_network == []


async def test_denied_loopback_address_is_refused(no_network: list[str]) -> None:
    options = fast_options(scope=Scope.from_cli(["127.0.0.0/8"], ["127.0.0.9/32"]))
    with pytest.raises(ScopeError, match="denied"):
        await probe_target("127.0.0.9", 80, options=options)
    assert no_network == []


async def test_multicast_refused_even_with_open_scope(no_network: list[str]) -> None:
    options = fast_options(scope=Scope.explicit_targets())
    with pytest.raises(ScopeError, match="never probed"):
        await probe_target("224.0.0.251", 5353, options=options)
    assert no_network == []
