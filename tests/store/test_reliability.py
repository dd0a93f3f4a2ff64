"""Crashes and concurrency with real processes: SIGKILL mid-transaction, two writers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minerscope.store import open_store
from minerscope.store.casefile import verify_case_file
from tests.conftest import MS, REPO

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from minerscope.store import open_store
    st = open_store(sys.argv[1], actor="writer")
    for i in range(int(sys.argv[2])):
        print(st.add_note("case", "", f"committed {i}"), flush=True)
    with st.transaction():
        for i in range(2000):
            st.conn.execute(
                "INSERT INTO notes (case_id, target_kind, target_ref, text, created_at, updated_at)"
                " VALUES (1, 'case', '1', ?, 0, 0)", (f"uncommitted {i} " + "y" * 300,))
        st.confirm_pool("203.0.113.99", 3333)
        print("IN_TXN", flush=True)
        time.sleep(600)
    """
)

_FOREVER_WRITER = textwrap.dedent(
    """
    import sys
    from minerscope.store import open_store
    st = open_store(sys.argv[1], actor="writer")
    i = 0
    while True:
        print(st.add_note("endpoint", f"203.0.113.{i % 250}:3333", f"note {i} " + "z" * (i % 500)), flush=True)
        i += 1
    """
)

_CONCURRENT_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from minerscope.store import open_store
    path, tag, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    st = open_store(path, actor=tag)
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(n):
        st.add_note("case", "", f"{tag} {i}")
        st.confirm_pool(f"198.51.100.{i % 10}", 3333, names=[f"{tag}-{i}.pool.example"])
    st.close()
    print("done", flush=True)
    """
)


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sigkill_mid_transaction_keeps_file_and_committed_notes(tmp_path: Path) -> None:
    path = tmp_path / "case.sqlite"
    proc = _spawn(_KILLED_WRITER, str(path), "40")
    assert proc.stdout is not None
    acked: list[int] = []
    for line in proc.stdout:
        if line.strip() == "IN_TXN":
            break
        acked.append(int(line))
    else:
        _, err = proc.communicate()
        pytest.fail(f"writer ended early: {err}")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10_000 * MS)  # reap and close the pipes
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) == 40
    assert verify_case_file(path) >= 1  # full PRAGMA integrity_check passes
    with open_store(path) as st:
        notes = st.list_notes()
        assert [n["id"] for n in notes] == acked
        assert all(n["text"].startswith("committed") for n in notes)
        assert st.list_pools() == [] and st.list_indicators() == []  # the open transaction is gone


def test_sigkill_during_continuous_writes_loses_no_acknowledged_note(tmp_path: Path) -> None:
    path = tmp_path / "case.sqlite"
    proc = _spawn(_FOREVER_WRITER, str(path))
    assert proc.stdout is not None
    acked = [int(proc.stdout.readline()) for _ in range(60)]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10_000 * MS)
    assert proc.returncode == -signal.SIGKILL
    verify_case_file(path)
    with open_store(path) as st:
        stored = {n["id"] for n in st.list_notes()}
    assert set(acked) <= stored


def test_two_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "case.sqlite"
    open_store(path).close()  # created and migrated once, as the TUI would
    go = tmp_path / "go"
    n = 60
    procs = [_spawn(_CONCURRENT_WRITER, str(path), tag, str(n), str(go)) for tag in ("tui", "cli")]
    go.write_text("go")
    for proc in procs:
        out, err = proc.communicate(timeout=60_000 * MS)
        assert proc.returncode == 0, err
        assert out.strip() == "done"
    with open_store(path) as st:
        texts = {n["text"] for n in st.list_notes()}
        assert texts == {f"{tag} {i}" for tag in ("tui", "cli") for i in range(n)}
        pools = st.list_pools()
        assert len(pools) == 10
        for pool in pools:  # both processes' names were merged into each pool
            tags = {name.split("-")[0] for name in pool["names"]}
            assert tags == {"tui", "cli"}
        actors = {a["actor"] for a in st.list_audit(limit=10_000) if a["action"] == "add_note"}
        assert actors == {"tui", "cli"}


def test_reader_and_writer_at_once(tmp_path: Path) -> None:
    """A long read (the TUI listing flows) does not block a writer (a CLI note) in WAL mode."""
    path = tmp_path / "case.sqlite"
    with open_store(path) as reader, open_store(path) as writer:
        reader.add_note("case", "", "before")
        reader.conn.execute("BEGIN")
        assert reader.scalar("SELECT count(*) FROM notes") == 1
        writer.add_note("case", "", "during")  # would raise 'database is locked' without WAL
        assert reader.scalar("SELECT count(*) FROM notes") == 1  # snapshot isolation
        reader.conn.execute("COMMIT")
        assert reader.scalar("SELECT count(*) FROM notes") == 2
