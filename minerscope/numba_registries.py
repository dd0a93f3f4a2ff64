"""Cached numba kernels load without numba's compiler registries; when those do load
(a kernel must be compiled), they load without the SciPy import numba makes for BLAS.

**Cached kernels.** Before numba loads a kernel from its on-disk cache it fills its whole
CPU target (``Cache.load_overload`` calls ``target_context.refresh()``): it imports ~100 of
its own modules and registers their typing templates and lowering implementations,
which only the *compiler* reads. A 351-flow triage of the sample spent 0.40 of its
1.04 CPU s there. A cached kernel is finished machine code: loading it needs only the
symbols its code links against. numba registers those with LLVM in five places:
``numba.core.base`` (helper library, ``None``, exceptions) and the CPU context's
``init`` (C maths), both done once the context exists; the runtime (``NRT_*``:
allocation in kernels) in ``rtsys.initialize``; ``numba.cpython.hashing`` (the hash
secret: dicts, sets) at import; ``numba.np.ufunc.parallel`` for ``parallel=True``,
which no minerscope kernel uses. :func:`load_cached_kernels_without_registries` makes
numba's cache loader do the middle two and load the kernel; on a cache miss it falls
back to numba's own path (registries, then compile). An LLVM symbol that no one
registered ends the process (``LLVM ERROR``, not an exception), so this runs only on the
numba versions whose symbol sources were checked (:data:`CHECKED_NUMBA`); others keep
numba's path.

**No BLAS.** ``numba.np.arraymath``, one of the registry modules, asks at import time
whether BLAS is available for ``np.dot`` by importing ``scipy.linalg.cython_blas``;
SciPy's linear algebra then pulls in its array-API layer, which imports every numpy
submodule, ``numpy.f2py`` among them (~0.2 CPU s, measured: refresh 0.39-0.57 s with the
probe, 0.23-0.33 s without). No minerscope kernel calls ``np.dot``, ``np.vdot`` or
``np.linalg`` (``tests/test_numba_registries.py`` checks the sources). :func:`load_registries`
answers numba's probe "no BLAS" by holding ``None`` in ``sys.modules`` for that one module
name while numba imports ``arraymath``: Python's import system then fails the import at
once, before it imports any parent package. The entry is removed again straight after, so
SciPy imports as usual later in the process (training's statistical tests use it). What
changes for numba: a kernel compiled *later in this process* that calls ``np.dot`` on
floats would use numba's plain loop instead of BLAS; none of ours does. If SciPy's linear
algebra is already imported, nothing is held back.
"""

from __future__ import annotations

import sys
from typing import Any

BLAS_PROBE = "scipy.linalg.cython_blas"
"""The module numba imports to decide whether BLAS backs ``np.dot`` (numba.np.linalg.ensure_blas)."""

CHECKED_NUMBA = ((0, 60), (0, 68))
"""numba releases (major, minor; inclusive) whose LLVM symbol sources are the five above
and whose cache loader is ``load_overload`` = refresh + ``_load_overload`` (read in the
sources of 0.60.0, 0.64.0 and 0.68.1; the tests run the installed one)."""

_loaded = False
_light = False


def load_registries() -> None:
    """Fill numba's CPU target now (idempotent); a no-op on a numba without that layout."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    held = BLAS_PROBE not in sys.modules and "numba.np.arraymath" not in sys.modules
    if held:
        sys.modules[BLAS_PROBE] = None  # type: ignore[assignment]  # import fails at once
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    except (ImportError, AttributeError):  # another numba layout: numba loads them itself, only slower
        pass
    finally:
        if held and sys.modules.get(BLAS_PROBE, 0) is None:
            del sys.modules[BLAS_PROBE]


def numba_is_checked(version: str) -> bool:
    """Whether numba ``version`` ("0.68.1", "0.69.0rc1") is in :data:`CHECKED_NUMBA`."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return CHECKED_NUMBA[0] <= (major, minor) <= CHECKED_NUMBA[1]


def load_cached_kernels_without_registries() -> bool:
    """From now on in this process, numba loads a cached kernel with only the runtime and
    the hash secret set up (idempotent). False (numba's own path kept) on an unchecked
    numba version or layout."""
    global _light
    if _light:
        return True
    try:
        import numba
        from numba.core import caching
        from numba.core.runtime import nrt
    except ImportError:
        return False
    if (
        not numba_is_checked(numba.__version__)
        or not hasattr(caching.Cache, "load_overload")
        or not hasattr(caching.Cache, "_load_overload")
        or not hasattr(caching.Cache, "_guard_against_spurious_io_errors")
        or not hasattr(nrt, "rtsys")
    ):
        return False
    import numba.cpython.hashing  # noqa: F401  (_numba_hashsecret_* symbols, at import)

    def load_overload(self: Any, sig: Any, target_context: Any) -> Any:
        nrt.rtsys.initialize(target_context)  # NRT_* symbols; once per process
        got = None
        with self._guard_against_spurious_io_errors():  # what numba's own loader guards
            got = self._load_overload(sig, target_context)
        if got is None:  # a miss: numba compiles next, and its set-up finds these loaded
            load_registries()
        return got

    caching.Cache.load_overload = load_overload  # type: ignore[method-assign]
    _light = True
    return True
