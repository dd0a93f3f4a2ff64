"""Handing a case over: backup-API export, integrity-checked import."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from minerscope.errors import StoreError
from minerscope.store import Store, open_store
from minerscope.store.casefile import export_case, import_case, merge_case, verify_case_file
from minerscope.store.migrations import migrate
from tests.store.conftest import flow_row, summary, write_pcap


def test_export_is_a_complete_checked_copy(store: Store, tmp_path: Path) -> None:
    store.confirm_pool("203.0.113.5", 3333, note="handover")
    store.add_note("case", "", "for my colleague")
    dest = export_case(store, tmp_path / "handover.sqlite")
    assert not Path(str(dest) + "-wal").exists()
    assert verify_case_file(dest) == store.schema_version
    with open_store(dest) as copy:
        assert [n["text"] for n in copy.list_notes()] == ["handover", "for my colleague"]
        assert {i["text"] for i in copy.list_indicators()} == {"203.0.113.5:3333"}
    with pytest.raises(StoreError, match="exists"):
        export_case(store, dest)
    with pytest.raises(StoreError, match="open case file"):
        export_case(store, store.path, overwrite=True)


def test_import_replaces_and_keeps_the_old_file(store: Store, tmp_path: Path) -> None:
    store.add_note("case", "", "theirs")
    handed = export_case(store, tmp_path / "handed.sqlite")
    mine = tmp_path / "mine.sqlite"
    with open_store(mine) as st:
        st.add_note("case", "", "mine")
    with pytest.raises(StoreError, match="exists"):
        import_case(handed, mine)
    kept = import_case(handed, mine, replace=True)
    assert kept is not None
    with open_store(mine) as st:
        assert [n["text"] for n in st.list_notes()] == ["theirs"]
    with open_store(kept) as old:
        assert [n["text"] for n in old.list_notes()] == ["mine"]
    fresh = tmp_path / "new" / "case.sqlite"
    assert import_case(handed, fresh) is None and verify_case_file(fresh) >= 1


def test_replace_is_in_place_so_a_process_opening_it_meanwhile_sees_the_new_case(
    store: Store, tmp_path: Path
) -> None:
    """A connection made before the replace but not yet reading (the workstation starting up
    while ``case import --replace`` runs) reads the new case after it: the file keeps its
    inode. Swapping files left such a process on the old, unlinked file. The colleague's
    file has another page size, which a WAL case file cannot take in by backup."""
    store.add_note("case", "", "theirs")
    handed = export_case(store, tmp_path / "handed.sqlite")
    with sqlite3.connect(handed) as conn:
        conn.execute("PRAGMA page_size = 8192")
        conn.execute("VACUUM")
    assert sqlite3.connect(handed).execute("PRAGMA page_size").fetchone() == (8192,)
    mine = tmp_path / "mine.sqlite"
    with open_store(mine) as st:
        st.add_note("case", "", "mine")
    inode = mine.stat().st_ino
    late = sqlite3.connect(mine)  # opened, no lock taken yet
    try:
        kept = import_case(handed, mine, replace=True)
        assert late.execute("SELECT text FROM notes").fetchall() == [("theirs",)]
    finally:
        late.close()
    assert mine.stat().st_ino == inode and kept is not None
    with open_store(mine) as st:
        assert [n["text"] for n in st.list_notes()] == ["theirs"]
        st.add_note("case", "", "after")  # WAL again, writable
    with open_store(kept) as old:
        assert [n["text"] for n in old.list_notes()] == ["mine"]
    assert verify_case_file(mine) >= 1


_HOLD_OPEN = (
    "import sys, time\n"
    "from minerscope.store import open_store\n"
    "store = open_store(sys.argv[1])\n"
    "store.list_notes()\n"
    "print('open', flush=True)\n"
    "time.sleep(120)\n"
)


def test_replace_refuses_a_case_file_another_process_has_open(store: Store, tmp_path: Path) -> None:
    """Replacing it would leave the other process (the workstation) writing into the old,
    unlinked file: its notes lost without a word."""
    import subprocess
    import sys

    store.add_note("case", "", "theirs")
    handed = export_case(store, tmp_path / "handed.sqlite")
    mine = tmp_path / "mine.sqlite"
    with open_store(mine) as st:
        st.add_note("case", "", "mine")
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_OPEN, str(mine)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
            with pytest.raises(StoreError, match="open in another process"):
                import_case(handed, mine, replace=True)
            assert not list(tmp_path.glob("mine.sqlite.bak-*"))
        finally:
            holder.kill()
    with open_store(mine) as st:
        assert [n["text"] for n in st.list_notes()] == ["mine"]
    assert import_case(handed, mine, replace=True) is not None  # alone now: replaced


def test_import_refuses_bad_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"PK\x03\x04 not sqlite")
    with pytest.raises(StoreError, match="not an SQLite"):
        import_case(junk, tmp_path / "dest.sqlite")
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a minerscope case file"):
        import_case(other, tmp_path / "dest.sqlite")
    with pytest.raises(StoreError, match="no such"):
        import_case(tmp_path / "absent.sqlite", tmp_path / "dest.sqlite")
    assert not (tmp_path / "dest.sqlite").exists()


def _colleague_file(tmp_path: Path) -> Path:
    """A colleague's case file with a case, capture, flows, probe, pool, notes and a dismissal."""
    path = tmp_path / "colleague.sqlite"
    with open_store(path, actor="colleague") as st:
        case = st.add_case("incident-9")
        cap = st.add_capture(write_pcap(tmp_path / "shared.pcap"), case_id=case)
        ids = st.record_flows(
            cap,
            summary(
                [
                    flow_row(0, "203.0.113.5", 3333, p_mining=0.9),
                    flow_row(1, "198.51.100.7", 443, p_mining=0.2),
                ],
                scored=True,
            ),
            model_version="m1",
        )
        probe = st.record_probe(
            {
                "target": "203.0.113.5:3333",
                "is_pool": True,
                "confidence": 0.9,
                "dialect": "monero",
                "transport": "tcp",
                "outcome": "success",
            },
            case_id=case,
        )
        pool = st.get_pool("203.0.113.5", 3333)
        assert pool is not None
        st.add_note("pool", pool["id"], "their pool note", case_id=case)
        st.add_note("flow", ids[1], "their flow note", case_id=case)
        st.add_note("probe", probe, "their probe note", case_id=case)
        st.add_note("case", case, "their case note")
        st.dismiss_flow(ids[1], reason="CDN")
    return path


def test_merge_adds_a_colleagues_case_without_duplicates(store: Store, tmp_path: Path) -> None:
    store.confirm_pool("192.0.2.1", 4444, note="my own pool")
    mine = tmp_path / "mine"
    mine.mkdir()
    store.add_capture(write_pcap(mine / "shared.pcap"))  # the same bytes as the colleague's capture
    theirs = _colleague_file(tmp_path)
    added = merge_case(store, theirs)
    assert added["cases"] == 1 and added["captures"] == 0 and added["flows"] == 2
    assert added["pools"] == 1 and added["notes"] == 4 and added["allowlist"] == 1
    case = next(c for c in store.list_cases() if c["name"] == "incident-9")
    pool = store.get_pool("203.0.113.5", 3333)
    assert pool is not None and pool["note"] == "their pool note"
    notes = {n["text"]: n for n in store.list_notes()}
    flow_note = notes["their flow note"]
    flow = next(
        f for f in store.list_flows(include_dismissed=True) if str(f["id"]) == flow_note["target_ref"]
    )
    assert flow["dst"] == "198.51.100.7" and flow["dismissed"]
    probe_note = notes["their probe note"]
    assert store.list_probes("203.0.113.5", 3333)[0]["id"] == int(probe_note["target_ref"])
    assert notes["their case note"]["target_ref"] == str(case["id"])
    assert {i["text"] for i in store.list_indicators()} >= {"203.0.113.5:3333", "192.0.2.1:4444"}
    assert "colleague" in {a["actor"] for a in store.list_audit()}
    assert store.list_audit()[0]["action"] == "import_case"
    again = merge_case(store, theirs)
    assert all(count == 0 for count in again.values()), again


def test_merge_of_an_older_schema_file(store: Store, tmp_path: Path) -> None:
    old = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(old)
    migrate(conn, old, target=1)
    conn.execute("INSERT INTO cases (name, created_at, updated_at) VALUES ('legacy', 1, 1)")
    conn.execute(
        "INSERT INTO notes (case_id, target_kind, target_ref, text, created_at, updated_at)"
        " VALUES (1, 'case', '1', 'from v1', 1, 1)"
    )
    conn.commit()
    conn.close()
    assert merge_case(store, old)["notes"] == 1
    assert [n["text"] for n in store.list_notes()] == ["from v1"]
    assert old.read_bytes()[:16] == b"SQLite format 3\x00"
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # the colleague's file is untouched
    conn.close()


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (
            "UPDATE pools SET names = 'notjson{'",
            "table pools, row 1, column names: 'notjson{' is not a valid JSON array",
        ),
        ("UPDATE pools SET names = '{\"a\": 1}'", "column names: .* is not a valid JSON array"),
        (
            "UPDATE flow_scores SET coin_probs = '[1]' WHERE rowid = 2",
            "table flow_scores, row 2, column coin_probs",
        ),
        (
            "UPDATE flows SET first_seen = 'yesterday' WHERE id = 1",
            "table flows, row 1, column first_seen: 'yesterday' is not a valid real value",
        ),
        (
            "UPDATE flows SET packets = 2.5 WHERE id = 2",
            "table flows, row 2, column packets: 2.5 is not a valid integer value",
        ),
        ("UPDATE probes SET record = 'null'", "column record: 'null' is not a valid JSON object"),
        (
            "UPDATE notes SET text = x'00ff'",
            "table notes, row 1, column text: b'\\\\x00\\\\xff' is not a valid text value",
        ),
    ],
)
def test_merge_refuses_cells_minerscope_could_not_read_back(
    store: Store, tmp_path: Path, update: str, message: str
) -> None:
    """A colleague's file is input: a cell of the wrong kind used to merge silently and
    stop ``case pools`` or the exports later; now it is refused, named, and nothing moves."""
    theirs = _colleague_file(tmp_path)
    with sqlite3.connect(theirs) as conn:
        assert conn.execute(update).rowcount >= 1
    conn.close()
    before = store.scalar("SELECT count(*) FROM flows"), len(store.list_pools())
    with pytest.raises(StoreError, match=message):
        merge_case(store, theirs)
    with pytest.raises(StoreError, match=message):
        import_case(theirs, tmp_path / "fresh.sqlite")
    assert (store.scalar("SELECT count(*) FROM flows"), len(store.list_pools())) == before
    assert not (tmp_path / "fresh.sqlite").exists()


def test_a_colleagues_file_as_minerscope_writes_it_passes_the_content_check(
    store: Store, tmp_path: Path
) -> None:
    theirs = _colleague_file(tmp_path)
    assert verify_case_file(theirs) >= 1
    assert merge_case(store, theirs)["pools"] == 1


def test_merge_keeps_what_reading_each_capture_found(store: Store, tmp_path: Path) -> None:
    colleague = tmp_path / "colleague-reading.sqlite"
    with open_store(colleague, actor="colleague") as st:
        st.add_capture(
            write_pcap(tmp_path / "theirs.pcap"),
            complete=False,
            damage="damaged at byte 4096: impossible record length",
            sensor_dropped=12,
        )
    assert merge_case(store, colleague)["captures"] == 1
    (row,) = store.list_captures()
    assert (row["complete"], row["damage"], row["sensor_dropped"]) == (
        0,
        "damaged at byte 4096: impossible record length",
        12,
    )


def test_merge_keeps_which_dismissal_switched_an_indicator_off(store: Store, tmp_path: Path) -> None:
    colleague = tmp_path / "colleague-dismissed.sqlite"
    with open_store(colleague, actor="colleague") as st:
        st.dismiss_endpoint("198.51.100.1", 80)
        st.confirm_pool("203.0.113.5", 3333)
        st.dismiss_endpoint("203.0.113.5", 3333)
    store.dismiss_endpoint("192.0.2.9", 443)  # so the merged entries get other ids here
    merge_case(store, colleague)
    assert store.list_pools() == [] and store.list_indicators(active_only=True) == []
    assert store.undismiss_endpoint("203.0.113.5", 3333)
    assert [i["text"] for i in store.list_indicators(active_only=True)] == ["203.0.113.5:3333"]
