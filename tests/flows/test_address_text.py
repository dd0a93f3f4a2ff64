"""The assembler's vectorised address text is exactly ``format_ip``'s (``ipaddress``) spelling."""

from __future__ import annotations

import numpy as np

from minerscope.capture.packets import format_ip, parse_ip
from minerscope.flows.assemble import _format_addresses

TRICKY = [
    "0.0.0.0",
    "255.255.255.255",
    "10.0.200.9",
    "::",
    "::1",
    "::1.2.3.4",  # IPv4-compatible: inet_ntop writes a dotted quad, ipaddress does not
    "::ffff:0:102:304",
    "64:ff9b::102:304",
    "2001:db8::",
    "2001:db8:0:0:1::1",
    "2001:0:0:1::",
    "fe80::1:0:0:0",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
]


def _halves(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [parse_ip(t) for t in texts]
    return np.array([h for h, _ in pairs], np.uint64), np.array([lo for _, lo in pairs], np.uint64)


def test_tricky_addresses_match_format_ip() -> None:
    src = TRICKY + TRICKY[::-1]  # repeats: each distinct IPv6 address is formatted once
    dst = TRICKY[::-1] + TRICKY
    src_txt, dst_txt = _format_addresses(*_halves(src), *_halves(dst))
    assert src_txt.to_list() == [format_ip(*parse_ip(t)) for t in src]
    assert dst_txt.to_list() == [format_ip(*parse_ip(t)) for t in dst]
    assert src_txt.to_list()[5] == "::102:304"


def test_random_addresses_match_format_ip() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    hi = rng.integers(0, 2**64, n, dtype=np.uint64)
    lo = rng.integers(0, 2**64, n, dtype=np.uint64)
    v4 = rng.random(n) < 0.5
    hi[v4] = 0
    lo[v4] = np.uint64(0xFFFF << 32) | (lo[v4] & np.uint64(0xFFFFFFFF))
    zero_run = rng.random(n) < 0.2  # long zero runs: the '::' compression
    lo[zero_run & ~v4] &= np.uint64(0xFFFF)
    src_txt, dst_txt = _format_addresses(hi, lo, hi[::-1].copy(), lo[::-1].copy())
    expected = [format_ip(int(h), int(lo_)) for h, lo_ in zip(hi, lo, strict=True)]
    assert src_txt.to_list() == expected
    assert dst_txt.to_list() == expected[::-1]
