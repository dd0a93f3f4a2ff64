"""Where the user's case file lives by default, without loading the store to find out.

``scan --no-store`` looks for an existing case file (its blacklist and allowlist still
apply) and must not pay for importing the store package (SQLite helpers, sqlite-utils,
migrations: ~0.13 CPU s, a quarter of the command's start-up) just to learn a path.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_FILENAME = "cases.sqlite"
ENV_VAR = "MINERSCOPE_DB"


def default_db_path() -> Path:
    """``$MINERSCOPE_DB`` if set, else ``cases.sqlite`` in the user data directory (XDG on Linux)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    import platformdirs  # deferred: only needed when no path was given

    return platformdirs.user_data_path("minerscope", appauthor=False) / DB_FILENAME
