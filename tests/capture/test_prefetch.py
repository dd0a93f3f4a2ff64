"""The prefetch hint compiles into kernels, changes no value, and refuses what it cannot address."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from minerscope.capture.prefetch import prefetch


@njit
def _sum_with_hints(a, ahead):  # type: ignore[no-untyped-def]
    total = 0
    for i in range(a.shape[0]):
        if i + ahead < a.shape[0]:
            prefetch(a, i + ahead)
        total += a[i]
    return total


@njit
def _hint_2d(a):  # type: ignore[no-untyped-def]
    prefetch(a, 0)


def test_hints_leave_every_value_as_it_was() -> None:
    a = np.arange(10_000, dtype=np.int64)
    before = a.copy()
    assert _sum_with_hints(a, 16) == int(before.sum())
    assert _sum_with_hints(a.astype(np.uint8), np.uint32(64)) == int(before.astype(np.uint8).sum())
    assert np.array_equal(a, before)


def test_only_one_dimensional_arrays_are_accepted() -> None:
    with pytest.raises(TypingError):
        _hint_2d(np.zeros((4, 4)))
