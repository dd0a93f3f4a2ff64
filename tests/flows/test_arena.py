"""The prefix arena grows without moving its bytes and gives pages back when it shrinks."""

from __future__ import annotations

import numpy as np
import pytest

from minerscope.flows import arena
from minerscope.flows.arena import GrowingBytes


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def test_growing_keeps_the_bytes_in_place() -> None:
    g = GrowingBytes(1 << 16)
    g.array[:] = np.arange(1 << 16) % 251
    first = g.resize(1 << 20, 1 << 16)  # the first growth moves into a reservation
    assert np.array_equal(first[: 1 << 16], np.arange(1 << 16) % 251)
    assert g.reserved >= arena.RESERVE_BYTES
    first[-1] = 9
    where = _address(first)
    grown = g.resize(64 << 20, 1 << 20)
    assert _address(grown) == where and grown.shape == (64 << 20,)  # no copy
    assert grown[(1 << 20) - 1] == 9 and np.array_equal(grown[:100], np.arange(100) % 251)
    grown[(64 << 20) - 1] = 5


def test_shrinking_releases_the_tail() -> None:
    g = GrowingBytes(1 << 16)
    g.resize(32 << 20, 0)[:] = 7
    kept = g.resize(1 << 20, 1 << 20)
    assert kept.shape == (1 << 20,) and np.all(kept == 7)
    again = g.resize(32 << 20, 1 << 20)  # the released tail reads as fresh (zero) memory
    assert np.all(again[: 1 << 20] == 7) and not again[(1 << 20) + 4096 :].any()


def test_without_a_reservation_it_copies_like_a_plain_array(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arena, "_reserve", lambda size: None)  # e.g. strict overcommit refused it
    g = GrowingBytes(16)
    g.array[:] = 3
    grown = g.resize(1 << 20, 16)
    assert np.all(grown[:16] == 3) and g.reserved == 1 << 20
    assert np.all(g.resize(8, 8) == 3)
