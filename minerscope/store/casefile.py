"""Hand a case to a colleague: the case file itself, copied with SQLite's online backup API.

A plain file copy of a WAL database can miss committed pages still in the ``-wal`` file or
catch a half-written page while the TUI is writing; the backup API copies a consistent
snapshot page by page while other connections keep working. The copy is then opened and
checked with ``PRAGMA integrity_check`` (the full check, not the quick one) before it is
reported as written, and an incoming file gets the same check plus the schema-version test
before it replaces anything.

An incoming file is input like a capture: SQLite keeps whatever a column is given (text in
a REAL column, a broken JSON list of pool names), and such a cell, merged in, used to stop
``case pools`` or ``export pools`` with a traceback much later. :func:`check_contents`
refuses it at the door, naming the table, row and column.

Two ways in: :func:`merge_case` adds a colleague's file to the open one (one transaction,
ids translated, rows already present skipped), and :func:`import_case` *replaces* the
destination file (after keeping the old one as ``<name>.bak-<timestamp>``).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from minerscope.errors import StoreError
from minerscope.store.db import StoreBase, connect, integrity_check, refuse_non_sqlite
from minerscope.store.migrations import SCHEMA_VERSION, migrate
from minerscope.untrusted import clean

_PAGES_PER_STEP = 1024


def _backup(src: sqlite3.Connection, dest_path: Path) -> None:
    tmp = dest_path.with_name(dest_path.name + f".part-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        out = sqlite3.connect(str(tmp))
        try:
            src.backup(out, pages=_PAGES_PER_STEP)
            out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to hand over
        finally:
            out.close()
        check = connect(tmp)
        try:
            integrity_check(check, dest_path, full=True)
        finally:
            check.close()
        os.replace(tmp, dest_path)
    except sqlite3.Error as exc:
        raise StoreError(f"{dest_path}: backup failed: {exc}") from None
    except OSError as exc:
        raise StoreError(f"{dest_path}: cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def export_case(store: StoreBase, dest: Path | str, *, overwrite: bool = False) -> Path:
    """Write a consistent, integrity-checked copy of the open case file to ``dest``."""
    dest_path = Path(dest)
    if dest_path.exists() and not overwrite:
        raise StoreError(f"{dest_path}: exists (pass overwrite=True to replace it)")
    if dest_path.resolve() == store.path.resolve():
        raise StoreError(f"{dest_path}: is the open case file itself")
    with store._lock:  # the connection is shared with other threads of this process
        _backup(store.conn, dest_path)
    return dest_path


def verify_case_file(path: Path | str) -> int:
    """Check that ``path`` is an intact minerscope case file this version can open.

    Returns:
        Its schema version.

    Raises:
        StoreError: missing, not SQLite, damaged, newer than this code, or not minerscope's.
    """
    src = Path(path)
    if not src.is_file():
        raise StoreError(f"{src}: no such case file")
    conn = connect(src)
    try:
        refuse_non_sqlite(conn, src)
        integrity_check(conn, src, full=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{src}: case file is damaged: {exc}") from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{src}: case file has schema version {version}, this minerscope knows up to {SCHEMA_VERSION}"
            )
        if version == 0 or not {"cases", "notes", "pools", "indicators"} <= tables:
            raise StoreError(f"{src}: not a minerscope case file")
        check_contents(conn, src)
    finally:
        conn.close()
    return version


JSON_COLUMNS: dict[tuple[str, str], str] = {
    ("pools", "names"): "array",
    ("probes", "evidence"): "array",
    ("probes", "record"): "object",
    ("flow_scores", "coin_probs"): "object",
    ("audit", "detail"): "object",
}
"""Columns minerscope writes as JSON text and parses when it reads them, and the JSON type."""

_STORAGE_CLASSES = {
    "INTEGER": ("integer", "null"),
    "REAL": ("integer", "real", "null"),
    "TEXT": ("text", "null"),
}
"""What each declared column type may hold (SQLite's ``typeof``); a column of another
declared type is not checked."""


@functools.cache
def _own_columns() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """Every table of the current schema with its (column, declared type) pairs, read from
    a fresh in-memory case file: the content check takes the names it puts into SQL from
    here, never from the file it checks."""
    conn = sqlite3.connect(":memory:")
    try:
        migrate(conn, Path(":memory:"))
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return tuple(
            (
                table,
                tuple(
                    (str(r[0]), str(r[1]).upper())
                    for r in conn.execute("SELECT name, type FROM pragma_table_info(?)", (table,))
                ),
            )
            for table in tables
            if not table.startswith("sqlite_")
        )
    finally:
        conn.close()


def check_contents(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a case file any of whose cells minerscope could not read back: a value of
    the wrong storage class for its column (text where a time or a count belongs) or a
    JSON column that does not hold JSON of its type.

    One pass over each table of minerscope's schema; what an older schema lacks is skipped.

    Raises:
        StoreError: naming the first bad cell: table, row id and column.
    """
    try:
        for table, columns in _own_columns():
            present = {r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))}
            tests: list[tuple[str, str, str]] = []  # (column, SQL test of a bad cell, what it must be)
            for column, declared in columns:
                allowed = _STORAGE_CLASSES.get(declared)
                if allowed is None or column not in present:
                    continue
                classes = ", ".join(f"'{c}'" for c in allowed)
                tests.append((column, f"typeof({column}) NOT IN ({classes})", f"{declared.lower()} value"))
                kind = JSON_COLUMNS.get((table, column))
                if kind is not None:
                    # (json_type raises on malformed text, and OR does not short-circuit in SQL)
                    bad_json = (
                        f"CASE WHEN json_valid({column}) THEN json_type({column}) != '{kind}' ELSE 1 END"
                    )
                    tests.append((column, f"({column} IS NOT NULL AND ({bad_json}))", f"JSON {kind}"))
            if not tests:
                continue
            names = [column for column, _test, _what in tests]
            sql = f"SELECT rowid, {', '.join(names)} FROM {table} WHERE {' OR '.join(t for _c, t, _w in tests)} LIMIT 1"
            bad = conn.execute(sql).fetchone()
            if bad is None:
                continue
            for (column, test, what), value in zip(tests, bad[1:], strict=True):
                sql = f"SELECT {test} FROM (SELECT ? AS {column})"  # which cell: the same test on its value
                if conn.execute(sql, (value,)).fetchone()[0]:
                    raise StoreError(
                        f"{path}: table {table}, row {bad[0]}, column {column}:"
                        f" {clean(repr(value), 40)} is not a valid {what}"
                    )
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: case file is damaged: {exc}") from None


def _alone(path: Path) -> sqlite3.Connection:
    """A connection that has ``path`` to itself, or StoreError when another process has it open.

    Replacing the file under an open connection (the workstation, a running scan) would
    leave that process writing notes and verdicts into the old, unlinked file: lost without
    a word. A connection in a WAL database holds a shared lock for as long as it is open,
    so an exclusive lock taken without waiting proves nobody else is there; exclusive
    locking mode keeps it until this connection closes.
    """
    conn = connect(path, timeout=0)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        conn.close()
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise StoreError(
                f"{path}: the case file is open in another process (the workstation, a scan?): close it first"
            ) from None
        raise StoreError(f"{path}: cannot set the old case file aside: {exc}") from None
    return conn


def import_case(src: Path | str, dest: Path | str, *, replace: bool = False) -> Path | None:
    """Verify ``src`` and make it the case file at ``dest`` (migrated to the current schema).

    Args:
        replace: required when ``dest`` already exists; the old file is kept as
            ``<dest>.bak-<unix time>`` and that path is returned.

    Returns:
        The path of the kept old file, or None when ``dest`` did not exist.
    """
    src_path, dest_path = Path(src), Path(dest)
    verify_case_file(src_path)
    if src_path.resolve() == dest_path.resolve():
        raise StoreError(f"{src_path}: is already the case file")
    if dest_path.exists():
        if not replace:
            raise StoreError(f"{dest_path}: a case file exists there (use replace to replace it)")
        kept = dest_path.with_name(f"{dest_path.name}.bak-{int(time.time())}")
        old = _alone(dest_path)
        try:
            _backup(old, kept)
            _overwrite(old, src_path, dest_path, kept)
        finally:
            old.close()
        return kept
    dest_path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(src_path)
    try:
        _backup(conn, dest_path)
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(dest_path) + suffix).unlink(missing_ok=True)
    new = connect(dest_path)
    try:
        migrate(new, dest_path)
    finally:
        new.close()
    return None


def _overwrite(dest: sqlite3.Connection, src_path: Path, dest_path: Path, kept: Path) -> None:
    """Copy the verified case file ``src_path`` over ``dest`` (a connection from :func:`_alone`),
    migrated, in place.

    In place, through SQLite, because the file keeps its inode: a process that opens the
    case file meanwhile waits on the lock, then works on the new case. Swapping files left
    it on the old, unlinked one, where its notes were lost. The copy is one transaction of a
    rollback journal, so a crash part way leaves the old case as it was.
    """
    src = connect(src_path)
    try:
        # WAL copies only between equal page sizes; a rollback journal takes the source's
        dest.execute("PRAGMA journal_mode = DELETE")
        src.backup(dest)
        integrity_check(dest, dest_path, full=True)
        migrate(dest, dest_path)
    except sqlite3.Error as exc:
        raise StoreError(
            f"{dest_path}: cannot replace the case file ({exc}); the old one is kept at {kept}"
        ) from None
    finally:
        src.close()


# Each statement copies one table from the attached file ``src`` into ``main``, skipping rows
# that already exist by their natural key and translating ids through the temp maps built
# on the way (cases by name, captures by hash, flows by 5-tuple and time, pools by endpoint,
# probes by target and time). Constant SQL: the file name is bound by ATTACH ... AS src.
_MERGE_SQL = (
    "INSERT OR IGNORE INTO main.cases (name, description, status, created_at, updated_at)"
    " SELECT name, description, status, created_at, updated_at FROM src.cases",
    "CREATE TEMP TABLE case_map AS SELECT s.id AS old, m.id AS new FROM src.cases s JOIN main.cases m ON m.name = s.name",
    "INSERT OR IGNORE INTO main.captures (case_id, path, size, sha256, packets, first_ts, last_ts, added_at,"
    " complete, damage, sensor_dropped)"
    " SELECT cm.new, c.path, c.size, c.sha256, c.packets, c.first_ts, c.last_ts, c.added_at,"
    " c.complete, c.damage, c.sensor_dropped"
    " FROM src.captures c JOIN temp.case_map cm ON cm.old = c.case_id",
    "CREATE TEMP TABLE capture_map AS SELECT s.id AS old, m.id AS new FROM src.captures s"
    " JOIN main.captures m ON m.sha256 = s.sha256",
    "INSERT OR IGNORE INTO main.flows (capture_id, flow_key, {flow_cols})"
    " SELECT cm.new, f.flow_key, {f_flow_cols} FROM src.flows f JOIN temp.capture_map cm ON cm.old = f.capture_id",
    "CREATE TEMP TABLE flow_map AS SELECT s.id AS old, m.id AS new FROM src.flows s"
    " JOIN temp.capture_map cm ON cm.old = s.capture_id JOIN main.flows m ON m.capture_id = cm.new"
    " AND m.proto = s.proto AND m.src = s.src AND m.sport = s.sport AND m.dst = s.dst AND m.dport = s.dport"
    " AND m.vlan = s.vlan AND m.first_seen = s.first_seen",
    "INSERT OR IGNORE INTO main.flow_scores (flow_id, model, p_mining, coin, coin_probs, scored_at)"
    " SELECT fm.new, s.model, s.p_mining, s.coin, s.coin_probs, s.scored_at FROM src.flow_scores s"
    " JOIN temp.flow_map fm ON fm.old = s.flow_id",
    "INSERT INTO main.probes (case_id, target, host, port, dialect, transport, outcome, is_pool, confidence,"
    " request, reply, evidence, record, probed_at)"
    " SELECT cm.new, p.target, p.host, p.port, p.dialect, p.transport, p.outcome, p.is_pool, p.confidence,"
    " p.request, p.reply, p.evidence, p.record, p.probed_at FROM src.probes p"
    " LEFT JOIN temp.case_map cm ON cm.old = p.case_id WHERE NOT EXISTS (SELECT 1 FROM main.probes m"
    " WHERE m.host = p.host AND m.port = p.port AND m.target = p.target AND m.probed_at = p.probed_at)",
    "CREATE TEMP TABLE probe_map AS SELECT s.id AS old, min(m.id) AS new FROM src.probes s"
    " JOIN main.probes m ON m.host = s.host AND m.port = s.port AND m.target = s.target"
    " AND m.probed_at = s.probed_at GROUP BY s.id",
    "INSERT OR IGNORE INTO main.pools (host, port, names, coin, dialect, transport, tls, first_seen, last_seen,"
    " confirmed_by, confirmed_at, probe_id, case_id, evidence)"
    " SELECT p.host, p.port, p.names, p.coin, p.dialect, p.transport, p.tls, p.first_seen, p.last_seen,"
    " p.confirmed_by, p.confirmed_at, pm.new, cm.new, p.evidence FROM src.pools p"
    " LEFT JOIN temp.probe_map pm ON pm.old = p.probe_id LEFT JOIN temp.case_map cm ON cm.old = p.case_id",
    "CREATE TEMP TABLE pool_map AS SELECT s.id AS old, m.id AS new FROM src.pools s"
    " JOIN main.pools m ON m.host = s.host AND m.port = s.port",
    "INSERT OR IGNORE INTO main.allowlist (host, port, reason, source_flow_id, case_id, added_at, enabled)"
    " SELECT a.host, a.port, a.reason, fm.new, cm.new, a.added_at, a.enabled FROM src.allowlist a"
    " LEFT JOIN temp.flow_map fm ON fm.old = a.source_flow_id LEFT JOIN temp.case_map cm ON cm.old = a.case_id",
    # (a dismissal's id, for the indicators it switched off: the same host and port here)
    "INSERT OR IGNORE INTO main.indicators (kind, value, port, source, added_at, expires_at, enabled, pool_id,"
    " dismissed_by)"
    " SELECT i.kind, i.value, i.port, i.source, i.added_at, i.expires_at, i.enabled, pm.new, ma.id"
    " FROM src.indicators i LEFT JOIN temp.pool_map pm ON pm.old = i.pool_id"
    " LEFT JOIN src.allowlist sa ON sa.id = i.dismissed_by"
    " LEFT JOIN main.allowlist ma ON ma.host = sa.host AND ma.port = sa.port",
    "CREATE TEMP TABLE note_src AS SELECT n.id, cm.new AS case_id, n.target_kind, CASE n.target_kind"
    " WHEN 'case' THEN (SELECT CAST(new AS TEXT) FROM temp.case_map WHERE CAST(old AS TEXT) = n.target_ref)"
    " WHEN 'flow' THEN (SELECT CAST(new AS TEXT) FROM temp.flow_map WHERE CAST(old AS TEXT) = n.target_ref)"
    " WHEN 'pool' THEN (SELECT CAST(new AS TEXT) FROM temp.pool_map WHERE CAST(old AS TEXT) = n.target_ref)"
    " WHEN 'probe' THEN (SELECT CAST(new AS TEXT) FROM temp.probe_map WHERE CAST(old AS TEXT) = n.target_ref)"
    " ELSE n.target_ref END AS target_ref, n.text, n.created_at, n.updated_at"
    " FROM src.notes n LEFT JOIN temp.case_map cm ON cm.old = n.case_id",
    "INSERT INTO main.notes (case_id, target_kind, target_ref, text, created_at, updated_at)"
    " SELECT case_id, target_kind, target_ref, text, created_at, updated_at FROM temp.note_src s"
    " WHERE s.target_ref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM main.notes m WHERE m.target_kind = s.target_kind"
    " AND m.target_ref = s.target_ref AND m.created_at = s.created_at AND m.text = s.text) ORDER BY s.id",
    "INSERT INTO main.audit (at, actor, action, target_kind, target_ref, case_id, detail)"
    " SELECT a.at, a.actor, a.action, a.target_kind, a.target_ref, cm.new, a.detail FROM src.audit a"
    " LEFT JOIN temp.case_map cm ON cm.old = a.case_id WHERE a.action != 'migrate' AND NOT EXISTS"
    " (SELECT 1 FROM main.audit m WHERE m.at = a.at AND m.actor = a.actor AND m.action = a.action"
    " AND m.target_kind = a.target_kind AND m.target_ref = a.target_ref) ORDER BY a.id",
)
_MERGE_TEMP = ("case_map", "capture_map", "flow_map", "probe_map", "pool_map", "note_src")
_MERGE_COUNTED = (
    "cases",
    "captures",
    "flows",
    "flow_scores",
    "probes",
    "pools",
    "indicators",
    "allowlist",
    "notes",
)


def merge_case(store: StoreBase, src: Path | str) -> dict[str, int]:
    """Merge a colleague's case file into the open one, in one transaction; returns rows added per table.

    The incoming file is verified (``integrity_check``, schema version), copied and
    migrated to the current schema first, so an older colleague's file merges too. Rows
    already present (same case name, capture hash, flow identity, endpoint, indicator,
    note text and time) are not duplicated, so merging the same file twice adds nothing.
    Where both files confirm the same pool, the open file's row is kept.

    Raises:
        StoreError: ``src`` is the open case file itself (as :func:`export_case` refuses
            it), or it fails verification.
    """
    from minerscope.store.flows import FLOW_COLUMNS  # deferred: flows imports polars lazily only

    src_path = Path(src)
    if src_path.resolve() == store.path.resolve():  # it would add nothing, and say so as a success
        raise StoreError(f"{src_path}: is the open case file itself")
    verify_case_file(src_path)
    flow_cols = ", ".join(FLOW_COLUMNS)
    statements = [
        sql.format(flow_cols=flow_cols, f_flow_cols=", ".join(f"f.{c}" for c in FLOW_COLUMNS))
        for sql in _MERGE_SQL
    ]
    with tempfile.TemporaryDirectory(prefix="minerscope-merge-") as tmp:
        staged = Path(tmp) / "incoming.sqlite"
        conn = connect(src_path)
        try:
            _backup(conn, staged)
        finally:
            conn.close()
        staged_conn = connect(staged)
        try:
            migrate(staged_conn, staged)
        finally:
            staged_conn.close()
        with store._lock:
            before = {t: int(store.scalar(f"SELECT count(*) FROM {t}")) for t in _MERGE_COUNTED}
            try:
                store.conn.execute("ATTACH DATABASE ? AS src", (str(staged),))
            except sqlite3.Error as exc:
                raise StoreError(f"{src_path}: cannot attach: {exc}") from None
            try:
                with store.transaction():
                    for sql in statements:
                        store.conn.execute(sql)
                    for name in _MERGE_TEMP:
                        store.conn.execute(f"DROP TABLE temp.{name}")
                    added = {
                        t: int(store.scalar(f"SELECT count(*) FROM {t}")) - before[t] for t in _MERGE_COUNTED
                    }
                    store._audit("import_case", "case", src_path.name, added)
            finally:
                store.conn.execute("DETACH DATABASE src")
    return added
