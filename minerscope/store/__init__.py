"""The case store: every verdict, probe, note and confirmed pool in one local SQLite file.

Library first (:func:`open_store` -> :class:`Store`), the ``export``/``blacklist``/``case``
commands are a thin shell over it. See :mod:`minerscope.store.db` for the durability and
concurrency rules and :mod:`minerscope.store.migrations` for the schema.
"""

from __future__ import annotations

from minerscope.store.api import Store, open_store
from minerscope.store.blacklist import load_blacklist
from minerscope.store.migrations import SCHEMA_VERSION
from minerscope.userdirs import default_db_path

__all__ = ["SCHEMA_VERSION", "Store", "default_db_path", "load_blacklist", "open_store"]
