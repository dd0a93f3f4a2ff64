"""Real FFTs of float32 rows for the periodicity features: scipy's pocketfft, without scipy.

Why not ``from scipy import fft``: the features need two calls, a real forward FFT and
its inverse over rows of 256 float32 values, and scipy's pocketfft does them in float32
about 8x faster than ``numpy.fft`` (which also gives other low bits). But importing
``scipy.fft`` runs scipy's array-API layer, which imports ``numpy.f2py``,
``numpy.testing`` and ``unittest``: ~0.2 CPU s of every process start (``scan``, each
``-j`` worker, ``live``, the workstation), as much as triaging a small capture.

So the pocketfft extension (a self-contained pybind11 module that needs only numpy) is
loaded from scipy's installed files without running scipy's package code, and called
with the arguments ``scipy.fft.rfft`` / ``irfft`` pass it (no normalisation forward,
``1/n`` back, one thread): the same library on the same data, so the same bits
(``tests/features/test_fft.py`` compares them with ``scipy.fft``). Where that module is
not where scipy 1.x keeps it, ``scipy.fft`` itself is used: slower to start, same numbers.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

_NAME = "scipy.fft._pocketfft.pypocketfft"
_NO_NORM, _BY_N = 0, 2  # pocketfft's normalisation modes (scipy's norm=None forward / inverse)


def _load_pocketfft() -> ModuleType | None:
    """scipy's pocketfft extension loaded straight from its file, or None when absent."""
    spec = importlib.util.find_spec("scipy")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "fft" / "_pocketfft"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"pypocketfft{suffix}"
        if path.is_file():
            loader = importlib.machinery.ExtensionFileLoader(_NAME, str(path))
            module_spec = importlib.util.spec_from_file_location(_NAME, str(path), loader=loader)
            if module_spec is None:
                return None
            try:
                module = importlib.util.module_from_spec(module_spec)
                loader.exec_module(module)
            except ImportError:
                return None
            if hasattr(module, "r2c") and hasattr(module, "c2r"):
                return module
            return None
    return None


_POCKETFFT = _load_pocketfft()
DIRECT = _POCKETFFT is not None
"""Whether the extension was loaded directly (False: through ``scipy.fft``)."""


def rfft_rows(x: npt.NDArray[np.float32]) -> npt.NDArray[np.complex64]:
    """``scipy.fft.rfft(x, axis=1)`` of a C-contiguous float32 matrix."""
    if _POCKETFFT is not None:
        result: Any = _POCKETFFT.r2c(x, (1,), True, _NO_NORM, None, 1)
        return result  # type: ignore[no-any-return]
    from scipy import fft

    return fft.rfft(x, axis=1, overwrite_x=True)  # type: ignore[no-any-return]


def irfft_rows(spectrum: npt.NDArray[Any], n: int) -> npt.NDArray[np.float32]:
    """``scipy.fft.irfft(spectrum, n=n, axis=1)`` of a complex64 (or float32, then taken as
    complex with zero imaginary parts, as scipy does) matrix of ``n // 2 + 1`` columns."""
    if _POCKETFFT is not None:
        if spectrum.ndim != 2 or spectrum.shape[1] != n // 2 + 1:
            raise ValueError(f"irfft_rows: shape {spectrum.shape} for n={n}, expected {n // 2 + 1} columns")
        tmp = spectrum if np.iscomplexobj(spectrum) else spectrum + 0j
        result: Any = _POCKETFFT.c2r(tmp, (1,), n, False, _BY_N, None, 1)
        return result  # type: ignore[no-any-return]
    from scipy import fft

    return fft.irfft(spectrum, n=n, axis=1, overwrite_x=True)  # type: ignore[no-any-return]
