# mypy: disable-error-code="no-untyped-def, no-untyped-call"
"""Array copies for compiled kernels: ``copy_items(dst, dst_at, src, src_at, n)``.

Why: numba compiles a slice assignment (``dst[a:a + n] = src[b:b + n]``, ``row[:] = x[r]``)
into a loop that moves one element per step and clamps both indices each time. The flow
tracker copies every flow's first payload bytes into its prefix arena that way, and on
the 2 M-packet bench capture those two lines were half of the tracker's CPU time; the
Saabas walk copies each feature row so. This emits LLVM's ``llvm.memmove`` instead,
which becomes the C library's ``memmove``: whole vector registers per step, and
overlapping ranges allowed (the prefix arena moves its regions down over themselves
when it is compacted).

Both ranges are checked before the copy, so a broken invariant raises ``IndexError``
(where the slice assignment raised ``ValueError``): never a write outside the array.
"""

from __future__ import annotations

from typing import Any

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _contiguous_1d(arr: Any) -> bool:
    return isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"


@intrinsic
def _memmove(typingctx, dst, dst_at, src, src_at, n):
    """``memmove(&dst[dst_at], &src[src_at], n items)``: C-contiguous 1-D arrays of one
    dtype, nothing checked."""
    if not (_contiguous_1d(dst) and _contiguous_1d(src) and dst.dtype == src.dtype):
        return None
    if not all(isinstance(i, types.Integer) for i in (dst_at, src_at, n)):
        return None
    sig = types.void(dst, dst_at, src, src_at, n)

    def codegen(context, builder, signature, args):
        def pointer(k: int) -> Any:
            aryty = signature.args[k]
            ary = context.make_array(aryty)(context, builder, args[k])
            idx = context.cast(builder, args[k + 1], signature.args[k + 1], types.intp)
            return cgutils.get_item_pointer(
                context, builder, aryty, ary, [idx], wraparound=False, boundscheck=False
            )

        count = context.cast(builder, args[4], signature.args[4], types.intp)
        itemsize = context.get_abi_sizeof(context.get_data_type(signature.args[0].dtype))
        cgutils.raw_memmove(builder, pointer(0), pointer(2), count, itemsize)
        return context.get_dummy_value()

    return sig, codegen


memmove: Any = _memmove  # (numba's intrinsic stub types the typing context as an argument)


@njit(cache=True, inline="always")
def copy_items(dst, dst_at, src, src_at, n):  # pragma: no cover - compiled
    """``dst[dst_at:dst_at + n] = src[src_at:src_at + n]`` as one ``memmove`` (the ranges may
    overlap; ``n <= 0`` copies nothing). Raises IndexError if either range leaves its array."""
    if n <= 0:
        return
    if dst_at < 0 or src_at < 0 or dst_at > dst.shape[0] - n or src_at > src.shape[0] - n:
        raise IndexError("copy_items: range outside the array")
    memmove(dst, dst_at, src, src_at, n)
