"""The analyst's flow-table columns, kept between sessions in a small JSON file.

Why a file of its own and not the case file: a column layout is a person's habit, not
evidence; it follows the analyst from case to case (termshark users asked for exactly
this: configurable columns and saved profiles, termshark #45, #54, #177). It lives in the
user's config folder (``$MINERSCOPE_CONFIG_DIR`` moves it), is written atomically (a crash
mid-write leaves the old file), and is read defensively: a file from another version, or
one edited by hand into nonsense, yields the default layout and a note, never a crash.
Keys this version does not know are dropped, so a newer file still opens here; a data
column (``col:NAME``) is kept whatever NAME is, and shows empty cells when the data lacks it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from minerscope.atomicfile import atomic_write_bytes
from minerscope.tui.widgets.flow_table import CATALOGUE, COINS_KEY, DATA_PREFIX, DEFAULT_LAYOUT
from minerscope.untrusted import clean

FILE_NAME = "workstation.json"
MAX_FILE_BYTES = 64 * 1024
"""A layout is a few hundred bytes: a larger file is not ours, and is not read."""


def config_path() -> Path:
    """Where the layout is kept: ``$MINERSCOPE_CONFIG_DIR`` or the user's config folder."""
    folder = os.environ.get("MINERSCOPE_CONFIG_DIR")
    if folder:
        return Path(folder) / FILE_NAME
    import platformdirs  # deferred: only the workstation needs it

    return platformdirs.user_config_path("minerscope", appauthor=False) / FILE_NAME


def parse_layout(value: object) -> tuple[str, ...]:
    """The known column keys of ``value`` (a list of strings), once each, in its order.

    Raises:
        ValueError: ``value`` is no list of strings, or keeps no column this version shows.
    """
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        raise ValueError("columns must be a list of column names")
    known = [key for key in dict.fromkeys(value) if key in CATALOGUE or key == COINS_KEY or _data_key(key)]
    if not known:
        raise ValueError("no column this version knows")
    return tuple(known)


def _data_key(key: str) -> bool:
    """``col:NAME`` with a plain column name (letters, digits, underscores; at most 64)."""
    name = key.removeprefix(DATA_PREFIX)
    return (
        key.startswith(DATA_PREFIX)
        and 0 < len(name) <= 64
        and name.replace("_", "").isalnum()
        and name.isascii()
    )


def load_layout(path: Path | None = None) -> tuple[tuple[str, ...], str]:
    """The saved layout (the default when none is saved) and a note when the file was unusable."""
    path = path or config_path()
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return parse_layout(data.get("columns")), ""
    except FileNotFoundError:
        return DEFAULT_LAYOUT, ""
    except (OSError, ValueError, RecursionError) as exc:
        return DEFAULT_LAYOUT, clean(f"{path}: column layout ignored ({exc}); using the default", 300)


def save_layout(layout: tuple[str, ...], path: Path | None = None) -> Path:
    """Write ``layout`` atomically (temporary file, then rename); returns the file.

    Raises:
        OSError: the folder cannot be created or written.
    """
    path = path or config_path()
    text = json.dumps({"columns": list(parse_layout(list(layout)))}, indent=1) + "\n"
    atomic_write_bytes(path, text.encode())
    return path
