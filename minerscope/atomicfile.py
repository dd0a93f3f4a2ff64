"""Files written whole or not at all: a temporary file in the same folder, then a rename.

Why one helper: a model, a tree cache entry and the workstation's layout must never be
left half-written by a crash or a full disk; ``os.replace`` within one folder is atomic
on POSIX and Windows, so readers see the old file or the new one, nothing in between.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    Raises:
        OSError: the folder cannot be created or written (``path`` is then unchanged).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make a shared file unreadable to others
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
