"""Shared fixtures: one timing unit, the real-dataset locator, a clean home directory, the libpcap marker."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

needs_libpcap = pytest.mark.skipif(
    ctypes.util.find_library("pcap") is None, reason="capture filters need libpcap (apt install libpcap0.8)"
)


def runs_ok_in_a_fresh_interpreter(code: str) -> None:
    """``code`` (which prints "ok" at its end) in a new process: imports start from nothing."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


SHARED = REPO.parent / "shared"
DATASETS = SHARED / "datasets"

MS = 0.001 * float(os.environ.get("MINERSCOPE_TEST_TIME_SCALE", "1"))
"""One millisecond of test time; CI slowness scales every timeout through this one number."""


@pytest.fixture
def real_datasets() -> Path:
    """``../shared/datasets``; skips the test cleanly when it is absent."""
    if not (DATASETS / "real" / "MANIFEST.csv").is_file():
        pytest.skip("../shared/datasets is absent: real-capture tests skipped")
    return DATASETS


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's real case file, config or cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.delenv("MINERSCOPE_CACHE_DIR", raising=False)
    monkeypatch.delenv("MINERSCOPE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("MINERSCOPE_DB", raising=False)
