"""The periodicity FFTs: scipy's pocketfft loaded without importing scipy, same bits as scipy.fft."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import fft as scipy_fft

from minerscope.features import fft
from minerscope.features.series import BINS


def _rows(seed: int, shape: tuple[int, int] = (300, 2 * BINS)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.uniform(0.1, 6.0, (shape[0], 1)), shape).astype(np.float32)
    counts[:, shape[1] // 2 :] = 0.0  # zero padding, as the features pad
    return np.ascontiguousarray(counts - counts.mean(axis=1, keepdims=True, dtype=np.float32))


def test_the_extension_is_loaded_directly() -> None:
    # a scipy release that moves pocketfft would silently cost every start ~0.2 s again
    assert fft.DIRECT


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_and_inverse_equal_scipy_bit_for_bit(seed: int) -> None:
    x = _rows(seed)
    spectrum = fft.rfft_rows(x.copy())
    expected = scipy_fft.rfft(x.copy(), axis=1, overwrite_x=True)
    assert spectrum.dtype == expected.dtype == np.complex64
    assert np.array_equal(spectrum.view(np.uint32), expected.view(np.uint32))
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.complex64)
    back = fft.irfft_rows(power.copy(), 2 * BINS)
    expected_back = scipy_fft.irfft(power.copy(), n=2 * BINS, axis=1, overwrite_x=True)
    assert back.dtype == expected_back.dtype == np.float32
    assert np.array_equal(back.view(np.uint32), expected_back.view(np.uint32))
    real_power = power.real.astype(np.float32)  # real input is taken as complex, as scipy does
    assert np.array_equal(
        fft.irfft_rows(real_power, 2 * BINS), scipy_fft.irfft(real_power, n=2 * BINS, axis=1)
    )


def test_a_spectrum_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 129 columns"):
        fft.irfft_rows(np.zeros((2, 100), np.complex64), 2 * BINS)


def test_computing_features_does_not_import_scipy_fft() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from minerscope.features import fft\n"
        "x = np.zeros((4, 256), np.float32); x[:, ::8] = 1\n"
        "p = fft.rfft_rows(x)\n"
        "fft.irfft_rows((p.real**2 + p.imag**2).astype(np.complex64), 256)\n"
        "import minerscope.features.series\n"
        "heavy = ('scipy.fft', 'scipy._lib.array_api_compat', 'numpy.f2py', 'numpy.testing')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    # (numba imports scipy's small top-level package; that is not what costs.) The extension
    # registers nothing under scipy's names either: a later real scipy.fft import is unaffected.
    assert out.stdout.strip() == "[]"
