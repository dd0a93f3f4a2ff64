"""Open the case file: one SQLite database, checked, migrated, safe to share between processes.

An analyst triages for hours on a laptop, with the TUI and a CLI command often touching the
same file at once, and the machine may crash at any moment. So every connection:

* refuses a file that is not SQLite, fails ``PRAGMA quick_check`` or carries a schema
  version newer than this code, with a one-line :class:`~minerscope.errors.StoreError`
  (never a traceback);
* runs in WAL mode with a busy timeout, so a reader never blocks a writer and two writers
  wait for each other instead of failing;
* writes only inside :meth:`StoreBase.transaction`, which starts with ``BEGIN IMMEDIATE``:
  the write lock is taken up front, so two processes doing read-then-write cannot deadlock
  (a deferred transaction that upgrades to a writer gets ``SQLITE_BUSY`` with no retry).

SQL is never built from strings that came from a user, a capture or a peer: values are
always bound parameters; the few identifiers interpolated are constants of this package.

The connection is wrapped in a :class:`sqlite_utils.Database` so queries return dicts and
bulk inserts are one call. The domain operations live in sibling modules as mixins
(:mod:`.cases`, :mod:`.flows`, :mod:`.probes`, :mod:`.pools`, :mod:`.blacklist`) over
:class:`StoreBase`; :func:`minerscope.store.open_store` assembles them.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlite_utils

from minerscope.errors import StoreError

BUSY_TIMEOUT_S = 10.0
"""How long a writer waits for another process's transaction before giving up."""
DEFAULT_CASE = "default"
"""The case used when an operation names none (created on first use)."""


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "analyst"


def refuse_non_sqlite(conn: sqlite3.Connection, path: Path) -> None:
    """Raise StoreError unless the file behind ``conn`` is empty or an SQLite database.

    Asked through the connection (SQLite reads the header and answers ``SQLITE_NOTADB``
    before anything is written), never by reading the file in Python: closing any
    descriptor of a file drops every POSIX lock the process holds on it, including those
    of a connection already open there. ``scan``'s parent, holding the case file open,
    once read the header this way when it opened the file again; its locks gone, a worker
    closing its own connection took itself for the last one and deleted the WAL the parent
    was still writing (captures lost, "disk I/O error" in the workers).
    """
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_NOTADB:
            raise StoreError(f"{path}: not a minerscope case file (not an SQLite database)") from None
        raise StoreError(f"{path}: cannot read case file: {exc}") from None


def connect(path: Path, *, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A raw connection with the busy timeout set; raises StoreError on any failure."""
    try:
        conn = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open case file: {exc}") from None
    return conn


def integrity_check(conn: sqlite3.Connection, path: Path, *, full: bool = False) -> None:
    """Run ``PRAGMA quick_check`` (or ``integrity_check`` when ``full``); StoreError if not ok."""
    pragma = "integrity_check" if full else "quick_check"
    try:
        rows = conn.execute(f"PRAGMA {pragma}").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: case file is damaged: {exc}") from None
    if [r[0] for r in rows] != ["ok"]:
        first = " ".join(str(rows[0][0]).split()) if rows else "no result"
        raise StoreError(f"{path}: case file failed {pragma}: {first[:200]}")


def _sqlite_message(exc: sqlite3.Error) -> str:
    """One line saying what SQLite refused (locked, disk full, damaged, constraint ...)."""
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    return f"case file error: {text}"


class StoreBase:
    """The connection, the transaction helper and the audit trail every operation shares.

    Attributes:
        path: the case file.
        db: the :class:`sqlite_utils.Database` over the connection.
        actor: the name written into the audit trail (default: the login name).
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, *, actor: str | None = None) -> None:
        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn, execute_plugins=False)
        self.actor = actor or _default_actor()
        self._lock = threading.RLock()
        self._closed = False
        self._pending_readings: dict[int, tuple[bool | None, str, int | None]] = {}
        """capture id -> (complete, damage, sensor_dropped) held back until its flows are
        written (see :meth:`~minerscope.store.cases.CaseOps.add_capture`)."""

    # ---- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions ------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction (``BEGIN IMMEDIATE``); nested calls become savepoints.

        Commits when the block ends, rolls back on any exception. SQLite's own errors (a
        lock held by another process past the busy timeout, a full disk, a violated
        constraint) roll back and surface as one-line StoreErrors.
        """
        with self._lock:
            if self.conn.in_transaction:
                with self.db.atomic():  # sqlite-utils turns the nested block into a SAVEPOINT
                    yield self.db
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.path}: case file is busy or read-only: {exc}") from None
            try:
                yield self.db
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: {_sqlite_message(exc)}") from None
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise StoreError(f"{self.path}: commit failed: {exc}") from None

    def rows(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """Run a read query with bound parameters and return its rows as dicts."""
        with self._lock:
            try:
                cur = self.conn.execute(sql, params)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {_sqlite_message(exc)}") from None

    def scalar(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> Any:
        """The first column of the first row of a query, or None."""
        with self._lock:
            try:
                row = self.conn.execute(sql, params).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {_sqlite_message(exc)}") from None
        return None if row is None else row[0]

    # ---- cases -------------------------------------------------------------------------
    def default_case_id(self) -> int:
        """The id of the ``default`` case, created on first use."""
        found = self.scalar("SELECT id FROM cases WHERE name = ?", (DEFAULT_CASE,))
        if found is not None:
            return int(found)
        with self.transaction():
            now = time.time()
            self.conn.execute(
                "INSERT OR IGNORE INTO cases (name, description, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (DEFAULT_CASE, "created automatically", now, now),
            )
            return int(self.scalar("SELECT id FROM cases WHERE name = ?", (DEFAULT_CASE,)))

    def _case_or_default(self, case_id: int | None) -> int:
        if case_id is None:
            return self.default_case_id()
        if self.scalar("SELECT id FROM cases WHERE id = ?", (case_id,)) is None:
            raise StoreError(f"{self.path}: no case with id {case_id}")
        return case_id

    # ---- audit trail --------------------------------------------------------------------
    def _audit(
        self,
        action: str,
        target_kind: str,
        target_ref: str,
        detail: Mapping[str, Any] | None = None,
        *,
        case_id: int | None = None,
        actor: str | None = None,
    ) -> None:
        """Append one analyst action to the audit trail (call inside a transaction)."""
        self.conn.execute(
            "INSERT INTO audit (at, actor, action, target_kind, target_ref, case_id, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                actor or self.actor,
                action,
                target_kind,
                target_ref,
                case_id,
                json.dumps(dict(detail or {}), sort_keys=True, default=str),
            ),
        )

    def list_audit(self, *, limit: int = 1000, case_id: int | None = None) -> list[dict[str, Any]]:
        """The audit trail, newest first."""
        if case_id is None:
            return self.rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return self.rows("SELECT * FROM audit WHERE case_id = ? ORDER BY id DESC LIMIT ?", (case_id, limit))

    @property
    def schema_version(self) -> int:
        """The file's ``PRAGMA user_version`` (the number of migrations applied)."""
        return int(self.scalar("PRAGMA user_version") or 0)
