"""Parsed trees kept in the user's cache directory, keyed by the booster file's sha256.

Why: reading the shipped model's trees out of XGBoost's UBJSON (over a thousand trees,
each a small object of typed arrays) costs 0.12-0.25 CPU s in every process that scores:
a third of ``scan``'s fixed start-up, paid again by every ``-j`` worker. The arrays it
yields are loaded back from a ``.npz`` (numpy's own format, read without pickle) in a few
milliseconds. The booster file stays the model; this is a derived copy: keyed by the
digest the model's metadata already checks, so an edited booster misses, and checked on
load exactly as parsed trees are (:func:`~minerscope.model.trees.linked_trees`), so a
damaged or foreign cache file is a miss, never wrong trees. Any failure to read or write
the cache (read-only home, full disk, a concurrent writer) costs only the parse.

``$MINERSCOPE_CACHE_DIR`` moves the cache; otherwise it is the platform's user cache
directory (``~/.cache/minerscope`` on Linux).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from minerscope.model.trees import ARRAY_FIELDS, TreeArrays, linked_trees

FORMAT = 1
"""Bumped when :class:`TreeArrays` or the way it is read changes: old entries then miss."""


def cache_dir() -> Path:
    """Where the parsed trees are kept (created on first write)."""
    override = os.environ.get("MINERSCOPE_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs  # deferred: only a process that loads a model needs it

    return platformdirs.user_cache_path("minerscope", appauthor=False) / "trees"


def _entry(sha256: str) -> Path:
    return cache_dir() / f"{sha256}.v{FORMAT}.npz"


def load(sha256: str) -> TreeArrays | None:
    """The trees cached for the booster whose bytes hash to ``sha256``, or None (a miss)."""
    try:
        # our own handle: np.load leaves the file open when the zip inside is damaged
        with _entry(sha256).open("rb") as raw, np.load(raw, allow_pickle=False) as npz:
            if str(npz["sha256"][()]) != sha256:  # a file copied or renamed into place
                return None
            columns = {name: npz[name] for name in ARRAY_FIELDS}
            groups, n_features = (int(v) for v in npz["counts"])
            objective = str(npz["objective"][()])
        return linked_trees(**columns, groups=groups, n_features=n_features, objective=objective)
    except Exception:  # noqa: BLE001  (numpy and zipfile raise a zoo on damaged files: any is a miss)
        return None


def save(sha256: str, trees: TreeArrays) -> None:
    """Keep ``trees`` for the next process; written whole or not at all (rename into place)."""
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(
                out,
                **{name: getattr(trees, name) for name in ARRAY_FIELDS},
                counts=np.asarray([trees.groups, trees.n_features], np.int64),
                objective=np.asarray(trees.objective),
                sha256=np.asarray(sha256),
            )
        os.replace(tmp, _entry(sha256))
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
