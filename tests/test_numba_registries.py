"""Cached kernels load without numba's registries; the registries load without SciPy's
linear algebra; both are safe for our kernels."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minerscope.numba_registries import numba_is_checked
from tests.conftest import REPO, runs_ok_in_a_fresh_interpreter

BLAS_USERS = {"dot", "vdot", "inner", "outer", "matmul", "tensordot", "einsum", "kron", "linalg"}
"""numpy names whose numba implementations go through BLAS/LAPACK (numba.np.linalg)."""


def test_registries_load_without_blas_and_leave_no_placeholder() -> None:
    """Where the registries load (a cache miss, or a numba outside CHECKED_NUMBA), numba's
    BLAS probe is answered "no" and SciPy still imports afterwards (the assertions the
    scan-process import test made before cached kernels stopped loading the registries)."""
    code = (
        "import sys\n"
        "from minerscope.numba_registries import load_registries\n"
        "load_registries()\n"
        "import numba.np.arraymath\n"
        "assert numba.np.arraymath._HAVE_BLAS is False\n"
        "assert 'scipy.linalg.cython_blas' not in sys.modules, 'placeholder left behind'\n"
        "assert 'numpy.f2py' not in sys.modules\n"
        "import scipy.linalg.cython_blas\n"
        "print('ok')\n"
    )
    runs_ok_in_a_fresh_interpreter(code)


def test_scipy_already_loaded_is_left_alone() -> None:
    code = (
        "import sys, scipy.linalg\n"
        "from minerscope.numba_registries import load_registries\n"
        "load_registries()\n"
        "import numba.np.arraymath\n"
        "assert numba.np.arraymath._HAVE_BLAS is True\n"
        "assert sys.modules['scipy.linalg.cython_blas'] is not None\n"
        "print('ok')\n"
    )
    runs_ok_in_a_fresh_interpreter(code)


def _blas_calls(path: Path) -> list[str]:
    """``np.<name>`` uses of BLAS-backed numpy functions and ``@`` in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in BLAS_USERS:
            if isinstance(node.value, ast.Name) and node.value.id in {"np", "numpy"}:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} np.{node.attr}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            found.append(f"{path.relative_to(REPO)}:{node.lineno} @")
    return found


def test_no_module_with_numba_kernels_uses_blas() -> None:
    """The "no BLAS" answer holds only while no kernel needs BLAS: a module that compiles
    numba kernels must not call numpy's BLAS-backed functions (checked file-wide)."""
    kernel_modules = [
        path for path in sorted((REPO / "minerscope").rglob("*.py")) if "njit" in path.read_text()
    ]
    assert len(kernel_modules) >= 6, kernel_modules  # decode, flows, features, saabas, treeshap, ...
    offenders = [hit for path in kernel_modules for hit in _blas_calls(path)]
    assert offenders == []


KERNEL = '''
import numba
import numpy as np


@numba.njit(cache=True)
def tally(words, n):
    """Allocates (the runtime's symbols) and hashes text (the hash secret's)."""
    seen = set()
    for w in words:
        seen.add(w)
    out = np.zeros(n, np.int64)
    for i in range(n):
        out[i] = len(seen) * (i + 1)
    return out
'''

LOAD = (
    "import sys\n"
    "from minerscope.numba_registries import load_cached_kernels_without_registries\n"
    "assert load_cached_kernels_without_registries()\n"
    "import kernel\n"
    "words = ('pool', 'stratum', 'pool', 'xmr')\n"
    "assert list(kernel.tally(words, 3)) == [3, 6, 9]\n"
    "hits = sum(kernel.tally.stats.cache_hits.values())\n"
    "print(hits, 'numba.np.arraymath' in sys.modules)\n"
)


def _run_kernel(folder: Path) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), str(REPO)]))
    env.pop("NUMBA_CACHE_DIR", None)  # numba caches beside kernel.py, in the test's folder
    out = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, env=env, cwd=folder)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_cached_kernel_loads_without_the_registries_and_a_missing_one_compiles(tmp_path: Path) -> None:
    """First process: nothing cached, so the registries load (without BLAS) and numba compiles.
    Second: the kernel comes from the cache with the runtime and hash secret set up alone
    (an unregistered symbol would end the process with an LLVM error)."""
    (tmp_path / "kernel.py").write_text(KERNEL)
    assert _run_kernel(tmp_path) == ["0", "True"]
    assert _run_kernel(tmp_path) == ["1", "False"]


@pytest.mark.parametrize(
    ("version", "checked"),
    [
        ("0.60.0", True),
        ("0.68.1", True),
        ("0.69.0rc1", False),
        ("0.59.1", False),
        ("1.0", False),
        ("dev", False),
    ],
)
def test_only_checked_numba_versions_skip_the_registries(version: str, checked: bool) -> None:
    assert numba_is_checked(version) is checked


def test_the_live_warm_up_loads_its_kernels_without_the_registries() -> None:
    """``live`` loads the model and runs every kernel once before it opens the ring; with
    the cache warm (the sample triage of other tests, or any earlier run) none of it needs
    numba's compiler set-up."""
    code = (
        "import sys\n"
        "from minerscope.live import load_scoring\n"
        "from minerscope.triage import TriageOptions\n"
        "from minerscope.warmup import compile_kernels\n"
        "compile_kernels(load_scoring(TriageOptions())[0])  # fills the cache if it was cold\n"
        "print('ok')\n"
    )
    runs_ok_in_a_fresh_interpreter(code)
    check = code.replace("print('ok')", "assert 'numba.np.arraymath' not in sys.modules\nprint('ok')")
    runs_ok_in_a_fresh_interpreter(check)
