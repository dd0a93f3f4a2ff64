"""The architecture rules the style guide sets, checked by machines (as harlequin does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


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


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
