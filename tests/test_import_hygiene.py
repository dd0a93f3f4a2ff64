"""The architecture rules the style guide sets, checked by machines (as harlequin does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, runs_ok_in_a_fresh_interpreter


def _modules_after_import(*modules: str) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    return set(out.stdout.split())


def test_headless_modules_never_load_textual() -> None:
    loaded = _modules_after_import("minerscope.cli", "minerscope.capture.packets", "minerscope.flows.records")
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)


def test_package_import_is_cheap() -> None:
    loaded = _modules_after_import("minerscope")
    for heavy in ("numba", "xgboost", "polars", "textual", "scapy"):
        assert heavy not in loaded, heavy


def test_the_probe_command_loads_its_io_stack_only_to_probe() -> None:
    """``minerscope probe --help`` took 0.6 s (1.2 s on a busy box) loading httpx,
    websockets and cryptography for a help text; the command imports the runner when it
    has targets."""
    loaded = _modules_after_import("minerscope.cli.probe_cmd")
    for heavy in ("httpx", "websockets", "cryptography", "minerscope.probe.runner"):
        assert heavy not in loaded, heavy


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_scan_process_imports_only_what_triage_needs() -> None:
    """Triage scores with its own tree walk, so xgboost (and scikit-learn, which it would
    import) stay out of a scan process; its cached kernels load without numba's compiler
    registries, so neither those nor SciPy's linear algebra load
    (:mod:`minerscope.numba_registries`). All of them still import afterwards, in the same
    process, for evaluate and training."""
    code = (
        "import sys\n"
        "from minerscope import resources\n"
        "from minerscope.triage import TriageOptions, load_triage_stack, triage_rows\n"
        "load_triage_stack()\n"
        "rows, report = triage_rows(str(resources.sample_capture()), TriageOptions())\n"
        "assert rows.height > 300 and (rows['verdict'] == 'mining').sum() >= 8\n"
        "assert rows['coin'].drop_nulls().len() >= 8 and rows['top_features'].null_count() == 0\n"
        "heavy = ('xgboost', 'sklearn', 'scipy.linalg', 'numpy.f2py', 'numba.np.arraymath')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "from numba.core.registry import cpu_target\n"
        "cpu_target.target_context.refresh()  # the registries a compile would load\n"
        "import numba.np.arraymath\n"
        "import xgboost, sklearn.ensemble, scipy.linalg.cython_blas, scipy.stats\n"
        "assert scipy.stats.mannwhitneyu([1, 2, 3], [4, 5, 6]).pvalue < 0.2\n"
        "print('ok')\n"
    )
    runs_ok_in_a_fresh_interpreter(code)
