"""A byte array that grows in place: the flow assembler's payload-prefix arena.

Growing a numpy array means allocating a larger one and copying: on a busy capture the
arena went 34 -> 68 -> 136 MB, and each step copied (and page-faulted in) everything
already used (0.25 CPU s inside those resizes on the 2M-packet bench capture), with old
and new array alive together at the peak. Here the array is a view of one anonymous private mapping that reserves
address space up front (``MAP_NORESERVE`` on Linux: no memory is committed until a page
is first written), so growing is a wider view of the same pages, and shrinking hands the
tail's pages back to the kernel (``MADV_DONTNEED``) without moving anything. No
``MADV_HUGEPAGE`` (numpy asks it for its large arrays): with the kernel's default
``defrag=madvise`` a huge-page fault may stall in direct compaction, which cost more here
than the 4 KiB faults it saves (136 MB touched: 0.06 s in small pages, up to 0.19 s).

Only when a reservation is outgrown (or the system refuses one) does the array move, as
a plain numpy array would.
"""

from __future__ import annotations

import mmap
import sys

import numpy as np
import numpy.typing as npt

RESERVE_BYTES = 1 << 32
"""Address space reserved per arena (4 GiB, 2 KiB of prefixes for each of 2M live flows);
costs nothing until written."""

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


class GrowingBytes:
    """``array`` (uint8) of a settable length whose first bytes survive :meth:`resize`."""

    __slots__ = ("array", "_mapped")

    def __init__(self, size: int) -> None:
        self.array: npt.NDArray[np.uint8] = np.zeros(size, np.uint8)
        self._mapped: mmap.mmap | None = None

    @property
    def reserved(self) -> int:
        """Bytes the array can grow to without moving (its length when not reserved)."""
        return len(self._mapped) if self._mapped is not None else self.array.shape[0]

    def resize(self, size: int, used: int) -> npt.NDArray[np.uint8]:
        """Make ``array`` ``size`` bytes long, keeping its first ``used``; returns it.

        Bytes past ``used`` are unspecified (zero or left over). The previous array object
        must not be written afterwards: after a shrink its tail is no longer backed.
        """
        mapped = self._mapped
        if mapped is not None and size <= len(mapped):
            old = self.array.shape[0]
            if size < old:
                start = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
                if start < old:
                    mapped.madvise(mmap.MADV_DONTNEED, start, min(old, len(mapped)) - start)
            self.array = np.frombuffer(mapped, np.uint8, count=size)
            return self.array
        reserve = max(RESERVE_BYTES, 2 * size)
        fresh = _reserve(reserve) if size > self.array.shape[0] else None
        if fresh is None:
            new = np.empty(size, np.uint8)
        else:
            new = np.frombuffer(fresh, np.uint8, count=size)
        new[:used] = self.array[:used]
        self._mapped = fresh
        self.array = new
        return new
