"""numba's registries load without SciPy's linear algebra, and that is safe for our kernels."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO, runs_ok_in_a_fresh_interpreter

BLAS_USERS = {"dot", "vdot", "inner", "outer", "matmul", "tensordot", "einsum", "kron", "linalg"}
"""numpy names whose numba implementations go through BLAS/LAPACK (numba.np.linalg)."""


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
