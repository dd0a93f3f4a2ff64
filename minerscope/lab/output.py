"""Where the lab writes: output folders and file names, checked before any work is done.

The lab's commands take a folder (``--out``), a base name (``--name``) and an output
file; a path that cannot be written is the user's input at fault, so it is an
:class:`~minerscope.errors.InputError` naming the path (exit 4), never a traceback; a
``--name`` that is not a plain file name (``a/b``, ``../escape``) would write outside
``--out``, and is refused outright.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from minerscope.errors import InputError


def check_name(name: str) -> str:
    """``name`` if it is a plain file name: not empty, not ``.``/``..``, no path separator, no NUL.

    Raises:
        InputError: it is not (the message says why).
    """
    seps = {"/", "\\", os.sep, *([os.altsep] if os.altsep else [])}
    if not name or name in (".", "..") or any(s in name for s in seps) or "\0" in name:
        raise InputError(f"name {name!r} must be a plain file name (no folder, not '.' or '..')")
    return name


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def output_dir(folder: Path) -> Path:
    """Create ``folder`` (and its parents) if needed.

    Raises:
        InputError: it cannot be created or is not a folder (names the path).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{folder}: cannot write here: exists and is not a folder") from None
    except OSError as exc:
        raise InputError(f"{exc.filename or folder}: cannot create the output folder: {_why(exc)}") from None
    return folder


def check_parent(path: Path) -> None:
    """Refuse an output file whose folder does not exist (before the work that fills it).

    Raises:
        InputError: the parent is missing or not a folder.
    """
    parent = path.parent
    if not parent.is_dir():
        what = "does not exist" if not parent.exists() else "is not a folder"
        raise InputError(f"{path}: cannot write: {parent} {what}")


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an :class:`OSError` while writing ``path`` into one :class:`InputError` naming it."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"{exc.filename or path}: cannot write: {_why(exc)}") from None
