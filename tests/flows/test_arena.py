"""The assembler's arrays grow without moving their items and give pages back when they shrink."""

from __future__ import annotations

import numpy as np
import pytest

from minerscope.flows import arena
from minerscope.flows.arena import GrowingArray


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def test_growing_keeps_the_bytes_in_place() -> None:
    g = GrowingArray(1 << 16)
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
    g = GrowingArray(1 << 16)
    g.resize(32 << 20, 0)[:] = 7
    kept = g.resize(1 << 20, 1 << 20)
    assert kept.shape == (1 << 20,) and np.all(kept == 7)
    again = g.resize(32 << 20, 1 << 20)  # the released tail reads as fresh (zero) memory
    assert np.all(again[: 1 << 20] == 7) and not again[(1 << 20) + 4096 :].any()


def test_without_a_reservation_it_copies_like_a_plain_array(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arena, "_reserve", lambda size: None)  # e.g. strict overcommit refused it
    g = GrowingArray(16)
    g.array[:] = 3
    grown = g.resize(1 << 20, 16)
    assert np.all(grown[:16] == 3) and g.reserved == 1 << 20
    assert np.all(g.resize(8, 8) == 3)


def test_typed_logs_grow_in_place_and_count_in_items() -> None:
    """The packet log's int64 timestamps: a reservation counts items, growth keeps them in
    place, and a shrink releases whole pages past the kept items only."""
    g = GrowingArray(1 << 10, np.int64)
    assert g.array.dtype == np.int64 and not g.array.any()
    first = g.resize(1 << 16, 0)
    first[:] = np.arange(1 << 16)
    assert g.reserved == arena.RESERVE_BYTES // 8
    where = _address(first)
    grown = g.resize(1 << 22, 1 << 16)
    assert _address(grown) == where and grown.dtype == np.int64
    assert np.array_equal(grown[: 1 << 16], np.arange(1 << 16))
    grown[:] = -1
    kept = g.resize(1000, 1000)  # 8000 bytes: the second page still holds items 512..999
    assert np.all(kept == -1)
    again = g.resize(1 << 16, 1000)
    assert np.all(again[:1000] == -1) and np.all(again[1024:] == 0)
