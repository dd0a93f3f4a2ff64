"""Ordered migrations: a v1 file opens in the current version; a newer file is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from minerscope.errors import StoreError
from minerscope.store import SCHEMA_VERSION, open_store
from minerscope.store.migrations import MIGRATIONS, migrate


def _v1_file(path: Path) -> None:
    """A case file as the first release wrote it: the v1 migration only, with data in it."""
    conn = sqlite3.connect(path)
    applied = migrate(conn, path, target=1)
    assert applied == ["v1_initial_schema"]
    conn.execute("INSERT INTO cases (name, description, created_at, updated_at) VALUES ('old', '', 1.0, 1.0)")
    conn.execute(
        "INSERT INTO notes (case_id, target_kind, target_ref, text, created_at, updated_at)"
        " VALUES (1, 'case', '1', 'written by v1', 1.0, 1.0)"
    )
    conn.execute(
        "INSERT INTO pools (host, port, confirmed_by, confirmed_at, case_id) VALUES ('203.0.113.9', 3333, 'analyst', 1.0, 1)"
    )
    conn.commit()
    conn.close()


def test_v1_file_opens_and_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _v1_file(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "allowlist" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    with open_store(path) as st:
        assert st.schema_version == SCHEMA_VERSION
        assert [n["text"] for n in st.list_notes()] == ["written by v1"]
        assert [(p["host"], p["port"]) for p in st.list_pools()] == [("203.0.113.9", 3333)]
        # the v2 feature works on the migrated file
        st.dismiss_endpoint("198.51.100.7", 443)
        assert [a["host"] for a in st.list_allowlist()] == ["198.51.100.7"]
        migrations = [a["target_ref"] for a in st.list_audit() if a["action"] == "migrate"]
        assert migrations == [
            "v6_indicator_dismissed_by",
            "v5_capture_reading",
            "v4_proxy_target",
            "v3_flow_key_index",
            "v2_allowlist",
            "v1_initial_schema",
        ]
        columns = {r["name"] for r in st.rows("PRAGMA table_info(flows)")}
        assert {"proxy_host", "proxy_port"} <= columns
        assert "dismissed_by" in {r["name"] for r in st.rows("PRAGMA table_info(indicators)")}
        plan = st.rows(
            "EXPLAIN QUERY PLAN SELECT id FROM flows WHERE capture_id = ? AND flow_key BETWEEN ? AND ?",
            (1, 1, 2),
        )
        assert any("flows_capture_key" in str(step["detail"]) for step in plan), plan


def test_migrations_are_idempotent_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    open_store(path).close()
    conn = sqlite3.connect(path)
    assert migrate(conn, path) == []
    conn.close()


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        open_store(path)
    assert "newer" in str(info.value) or "upgrade minerscope" in str(info.value)
    assert "\n" not in str(info.value)


def test_failed_migration_leaves_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "half.sqlite"
    _v1_file(path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE allowlist (x INTEGER)")  # a clash the v2 migration will hit
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="v2_allowlist"):
        open_store(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'flows_sni'").fetchone()[0] == 0
    conn.close()
