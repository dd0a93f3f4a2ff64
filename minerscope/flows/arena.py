"""Arrays that grow in place: the flow assembler's logs and payload-prefix arena.

Growing a numpy array means allocating a larger one and copying: on a busy capture the
arena went 34 -> 68 -> 136 MB, and each step copied (and page-faulted in) everything
already used (0.25 CPU s inside those resizes on the 2M-packet bench capture), with old
and new array alive together at the peak; the packet and message logs (thirteen arrays
that grow by half as packets of live flows pile up) spent another ~0.08 s copying. Here
an array is a view of one anonymous private mapping that reserves address space up front
(``MAP_NORESERVE`` on Linux: no memory is committed until a page is first written), so
growing is a wider view of the same pages, and shrinking hands the tail's pages back to
the kernel (``MADV_DONTNEED``) without moving anything. No ``MADV_HUGEPAGE`` (numpy asks
it for its large arrays): with the kernel's default ``defrag=madvise`` a huge-page fault
may stall in direct compaction, which cost more here than the 4 KiB faults it saves
(136 MB touched: 0.06 s in small pages, up to 0.19 s).

Only when a reservation is outgrown (or the system refuses one: strict overcommit, an
address-space limit) does the array move, as a plain numpy array would.
"""

from __future__ import annotations

import mmap
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

RESERVE_BYTES = 1 << 32
"""Address space reserved per array (4 GiB: 2 KiB of prefixes for each of 2M live flows,
or half a billion live packets in the largest log); costs nothing until written."""

_NORESERVE = 0x4000 if sys.platform.startswith("linux") else 0  # MAP_NORESERVE (not in mmap)


def _reserve(size: int) -> mmap.mmap | None:
    if not hasattr(mmap, "MAP_PRIVATE"):  # Windows
        return None
    flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_ANONYMOUS", 0x20) | _NORESERVE
    try:
        mapped = mmap.mmap(-1, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, ValueError, OverflowError):  # strict overcommit, 32-bit, no address space
        return None
    return mapped


class GrowingArray:
    """``array`` (one dimension, ``dtype``) of a settable length whose first items survive
    :meth:`resize`."""

    __slots__ = ("array", "_mapped")

    def __init__(self, size: int, dtype: npt.DTypeLike = np.uint8) -> None:
        self.array: npt.NDArray[Any] = np.zeros(size, dtype)
        self._mapped: mmap.mmap | None = None

    @property
    def reserved(self) -> int:
        """Items the array can grow to without moving (its length when not reserved)."""
        if self._mapped is None:
            return int(self.array.shape[0])
        return len(self._mapped) // self.array.dtype.itemsize

    def resize(self, size: int, used: int) -> npt.NDArray[Any]:
        """Make ``array`` ``size`` items long, keeping its first ``used``; returns it.

        Items past ``used`` are unspecified (zero or left over). The previous array object
        must not be written afterwards: after a shrink its tail is no longer backed.
        """
        mapped, dtype = self._mapped, self.array.dtype
        if mapped is not None and size <= self.reserved:
            old = self.array.shape[0] * dtype.itemsize
            start = -(-size * dtype.itemsize // mmap.PAGESIZE) * mmap.PAGESIZE
            if start < old:
                mapped.madvise(mmap.MADV_DONTNEED, start, min(old, len(mapped)) - start)
            self.array = np.frombuffer(mapped, dtype, count=size)
            return self.array
        fresh = None
        if size > self.array.shape[0]:
            fresh = _reserve(max(RESERVE_BYTES, 2 * size * dtype.itemsize))
        new = np.empty(size, dtype) if fresh is None else np.frombuffer(fresh, dtype, count=size)
        new[:used] = self.array[:used]
        self._mapped = fresh
        self.array = new
        return new
