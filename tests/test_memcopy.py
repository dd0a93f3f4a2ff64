"""``copy_items``: the kernels' memmove does what the slice assignment it replaced did."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from minerscope.memcopy import copy_items


@numba.njit
def _copy(dst, dst_at, src, src_at, n):  # type: ignore[no-untyped-def]
    copy_items(dst, dst_at, src, src_at, n)


@numba.njit
def _copy_row(x, r, row):  # type: ignore[no-untyped-def]
    copy_items(row, 0, x[r], 0, row.shape[0])


def _sliced(dst: np.ndarray, dst_at: int, src: np.ndarray, src_at: int, n: int) -> np.ndarray:
    out = dst.copy()
    out[dst_at : dst_at + n] = src[src_at : src_at + n]
    return out


@pytest.mark.parametrize(("dst_at", "src_at", "n"), [(0, 0, 300), (5, 17, 1), (123, 0, 777), (999, 1, 1)])
def test_bytes_land_as_a_slice_assignment_puts_them(dst_at: int, src_at: int, n: int) -> None:
    rng = np.random.default_rng(n)
    src = rng.integers(0, 256, 1000, dtype=np.uint8)
    dst = rng.integers(0, 256, 1000, dtype=np.uint8)
    expected = _sliced(dst, dst_at, src, src_at, n)
    _copy(dst, dst_at, src, src_at, n)
    assert np.array_equal(dst, expected)


@pytest.mark.parametrize(("dst_at", "src_at"), [(0, 100), (100, 0), (10, 11), (11, 10)])
def test_overlapping_ranges_in_one_array_move_like_memmove(dst_at: int, src_at: int) -> None:
    """The prefix arena compacts regions down over themselves; a forward byte loop would
    smear the source when moving up, memmove (and numpy) do not."""
    arena = np.arange(1000, dtype=np.int64).astype(np.uint8)
    expected = arena.copy()
    expected[dst_at : dst_at + 500] = arena[src_at : src_at + 500].copy()
    _copy(arena, dst_at, arena, src_at, 500)
    assert np.array_equal(arena, expected)


def test_float_rows_copy_whole_items() -> None:
    """Not bytes: ``n`` counts items, so a float32 row of 267 values moves 1068 bytes."""
    x = np.random.default_rng(0).standard_normal((4, 267)).astype(np.float32)
    x[2, 5] = np.nan
    row = np.zeros(267, np.float32)
    _copy_row(x, 2, row)
    assert np.array_equal(row, x[2], equal_nan=True)


@pytest.mark.parametrize(
    ("dst_at", "src_at", "n"),
    [(-1, 0, 4), (0, -1, 4), (997, 0, 4), (0, 997, 4), (0, 0, 1001), (2**62, 0, 4)],
)
def test_a_range_outside_either_array_raises_and_writes_nothing(dst_at: int, src_at: int, n: int) -> None:
    src = np.full(1000, 7, np.uint8)
    dst = np.zeros(1000, np.uint8)
    with pytest.raises(IndexError, match="range outside the array"):
        _copy(dst, dst_at, src, src_at, n)
    assert not dst.any()


@pytest.mark.parametrize("n", [0, -5])
def test_nothing_to_copy_is_a_no_op_even_at_the_end(n: int) -> None:
    dst = np.zeros(8, np.uint8)
    _copy(dst, 8, np.ones(8, np.uint8), 8, n)
    assert not dst.any()


def test_only_contiguous_arrays_of_one_dtype_compile() -> None:
    """A strided view or a dtype change would make a raw memmove wrong: typing refuses them."""
    with pytest.raises(numba.core.errors.TypingError):
        _copy(np.zeros(8, np.uint8), 0, np.ones(16, np.uint8)[::2], 0, 4)
    with pytest.raises(numba.core.errors.TypingError):
        _copy(np.zeros(8, np.uint8), 0, np.ones(8, np.int8), 0, 4)
