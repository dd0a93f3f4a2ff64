# mypy: disable-error-code="no-untyped-def, no-untyped-call"
"""A cache prefetch hint for compiled kernels: ``prefetch(array, index)``.

Why: the capture walkers follow a chain (each record's length says where the next one
starts), so every record header is a load that depends on the previous one, and the flow
tracker reads per-flow state at addresses a hash decides; both wait on memory for most of
their time. A prefetch asks the CPU to start fetching a cache line early and never faults
or changes a value (an address past the array is not read), so a kernel can request the
lines it will need a few packets ahead. numba has no prefetch of its own; this emits
LLVM's ``llvm.prefetch`` (read, high locality, data cache) for ``&array[index]``.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

CACHE_LINE = 64


@intrinsic
def _prefetch(typingctx, arr, index):
    """Hint that ``arr[index]`` (a 1-D array; ``index`` is not checked) is read soon."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(index, types.Integer):
        return None
    sig = types.void(arr, index)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [idx], wraparound=False, boundscheck=False
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # rw 0 (read), locality 3 (keep in all levels), cache type 1 (data)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


prefetch: Any = _prefetch  # (numba's intrinsic stub types the typing context as an argument)


@njit(cache=True, inline="always")
def prefetch_until(buf, ahead, stop):  # pragma: no cover - compiled
    """Request the cache lines of ``buf[ahead:stop]`` (one hint per line); returns the
    position reached, where the next call carries on, so a sequential walk asks for
    each line once."""
    while ahead < stop:
        prefetch(buf, ahead)
        ahead += CACHE_LINE
    return ahead
