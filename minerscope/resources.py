"""Finds the files minerscope ships: the default model, the sample captures, the sample blacklist.

In a wheel they live under ``minerscope/_data`` (hatchling ``force-include`` maps the
top-level ``models/`` and ``sample_pcaps/`` folders there); in a source checkout they
are read from the repository. Every other module asks here instead of guessing paths.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_CAPTURE_NAME = "campus-gateway.pcapng"
SAMPLE_BLACKLIST_NAME = "sample-blacklist.txt"
DEFAULT_MODEL_NAME = "minerscope-default"


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def data_dir(kind: str) -> Path:
    """Return the folder holding shipped data of ``kind`` (``models`` or ``sample_pcaps``)."""
    packaged = resources.files("minerscope").joinpath("_data", kind)
    if packaged.is_dir():
        return Path(str(packaged))
    return _repo_root() / kind


def sample_capture() -> Path:
    """Path of the bundled demo capture (may not exist before the lab has generated it)."""
    return data_dir("sample_pcaps") / SAMPLE_CAPTURE_NAME


def sample_blacklist() -> Path:
    """Path of the bundled sample blacklist (one indicator per line)."""
    return data_dir("sample_pcaps") / SAMPLE_BLACKLIST_NAME


def models_dir() -> Path:
    """Folder of the shipped models (XGBoost JSON/UBJ files plus metadata sidecars)."""
    return data_dir("models")
