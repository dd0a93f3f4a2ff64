"""Load numba's lowering registries once, without the SciPy import numba makes for BLAS.

numba fills its CPU target lazily, on the first kernel call of a process: it imports
~100 of its own modules and registers their implementations (~0.25 CPU s). One of
them, ``numba.np.arraymath``, asks at import time whether BLAS is available for
``np.dot`` by importing ``scipy.linalg.cython_blas``; SciPy's linear algebra then pulls in
its array-API layer, which imports every numpy submodule, ``numpy.f2py`` among them
(~0.2 CPU s, measured: refresh 0.39-0.57 s with the probe, 0.23-0.33 s without). No
minerscope kernel calls ``np.dot``, ``np.vdot`` or ``np.linalg`` (``tests/test_numba_registries.py``
checks the sources), so every process that triages a capture pays that for nothing.

:func:`load_registries` answers numba's probe "no BLAS" by holding ``None`` in
``sys.modules`` for that one module name while numba imports ``arraymath``: Python's import
system then fails the import at once, before it imports any parent package. The entry
is removed again straight after, so SciPy imports as usual later in the process (training's
statistical tests use it). What changes for numba: a kernel compiled *later in this process*
that calls ``np.dot`` on floats would use numba's plain loop instead of BLAS; none of ours
does. If SciPy's linear algebra is already imported, nothing is held back.
"""

from __future__ import annotations

import sys

BLAS_PROBE = "scipy.linalg.cython_blas"
"""The module numba imports to decide whether BLAS backs ``np.dot`` (numba.np.linalg.ensure_blas)."""

_loaded = False


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
