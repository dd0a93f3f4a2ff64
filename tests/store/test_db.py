"""Opening case files: default location, WAL, and a one-line StoreError for every bad file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from minerscope.errors import StoreError
from minerscope.store import SCHEMA_VERSION, Store, default_db_path, open_store


def test_default_path_is_in_the_xdg_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "minerscope" / "cases.sqlite"
    with open_store() as st:
        assert st.path == tmp_path / "xdg" / "minerscope" / "cases.sqlite"
    assert (tmp_path / "xdg" / "minerscope" / "cases.sqlite").is_file()


def test_env_var_overrides_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINERSCOPE_DB", str(tmp_path / "env.sqlite"))
    with open_store() as st:
        st.add_note("case", "", "from env")
    assert (tmp_path / "env.sqlite").is_file()


def test_wal_busy_timeout_and_version(store: Store) -> None:
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert int(store.scalar("PRAGMA busy_timeout")) >= 5000
    assert store.schema_version == SCHEMA_VERSION
    assert store.scalar("PRAGMA foreign_keys") == 1


def test_reopen_keeps_data(db_path: Path) -> None:
    with open_store(db_path) as st:
        note = st.add_note("case", "", "persisted")
    with open_store(db_path) as st:
        assert [n["id"] for n in st.list_notes()] == [note]


def test_not_sqlite_is_one_line_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a database\n" * 100)
    with pytest.raises(StoreError) as info:
        open_store(bad)
    message = str(info.value)
    assert "\n" not in message and str(bad) in message and "not an SQLite database" in message


def test_corrupted_case_file_is_refused(db_path: Path) -> None:
    with open_store(db_path) as st:
        for i in range(300):
            st.add_note("case", "", f"note {i} " + "x" * 200)
        st.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db_path.read_bytes())
    assert len(data) > 8 * 4096
    # Keep the header page, smash the b-tree pages after it.
    for offset in range(4096, len(data), 4096):
        data[offset : offset + 64] = b"\xff" * 64
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as info:
        open_store(db_path)
    assert "\n" not in str(info.value) and str(db_path) in str(info.value)


def test_truncated_header_page_is_refused(db_path: Path) -> None:
    with open_store(db_path) as st:
        st.add_note("case", "", "x")
        st.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db_path.write_bytes(db_path.read_bytes()[:50])
    with pytest.raises(StoreError):
        open_store(db_path)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE browser_history (url TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a minerscope case file"):
        open_store(other)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        open_store(tmp_path)


def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.conn.execute(
                "INSERT INTO notes (case_id, target_kind, target_ref, text, created_at, updated_at)"
                " VALUES (NULL, 'case', '1', 'lost', 0, 0)"
            )
            raise RuntimeError("boom")
    assert store.list_notes() == []


def test_hostile_text_is_stored_verbatim_as_a_parameter(store: Store) -> None:
    text = "'); DROP TABLE notes; --"
    store.add_note("endpoint", "1.2.3.4:3333", text)
    assert [n["text"] for n in store.list_notes("endpoint", "1.2.3.4:3333")] == [text]
    assert "notes" in store.db.table_names()


def test_busy_past_the_timeout_is_a_store_error(db_path: Path) -> None:
    with open_store(db_path) as holder, open_store(db_path, busy_timeout=0.05) as waiter:
        holder.conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="busy|locked"):
            waiter.add_note("endpoint", "1.2.3.4:1", "blocked")
        holder.conn.execute("ROLLBACK")
        waiter.add_note("endpoint", "1.2.3.4:1", "now it goes through")
        assert len(holder.list_notes()) == 1


def test_constraint_violation_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="CHECK constraint"):
        with store.transaction():
            store.conn.execute(
                "INSERT INTO notes (target_kind, target_ref, text, created_at, updated_at)"
                " VALUES ('nonsense', '1', 't', 0, 0)"
            )


_OTHER_PROCESS_OPENS_AND_CLOSES = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM notes").fetchone()
conn.close()  # the last connection out checkpoints and deletes the WAL: it must not think it is last
"""


def test_opening_the_file_again_keeps_this_process_locks(db_path: Path) -> None:
    """POSIX drops every lock a process holds on a file when it closes *any* descriptor of
    it. Opening the case file a second time in a process that holds a connection (``scan``'s
    parent reads the blacklist for its own share of captures) once read the header through
    a Python file object: its close dropped the first connection's WAL locks, a worker
    process closing its connection then saw itself as the last one and deleted the WAL the
    parent was still writing, and the parent's later writes were lost (``scan -j2``: 43 of
    159 captures recorded, the rest "disk I/O error")."""
    import subprocess
    import sys

    with open_store(db_path) as holder:
        holder.add_note("case", "", "before")
        with open_store(db_path) as again:
            again.list_notes()
        subprocess.run([sys.executable, "-c", _OTHER_PROCESS_OPENS_AND_CLOSES, str(db_path)], check=True)
        holder.add_note("case", "", "after")  # committed: every other connection must see it
        other = sqlite3.connect(db_path)
        try:
            texts = [r[0] for r in other.execute("SELECT text FROM notes ORDER BY id")]
        finally:
            other.close()
    assert texts == ["before", "after"]
