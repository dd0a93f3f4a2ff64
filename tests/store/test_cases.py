"""Cases, captures (idempotent by hash) and notes with their audit trail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from minerscope.errors import StoreError
from minerscope.store import Store
from tests.store.conftest import flow_row, summary, write_pcap


def test_capture_is_not_duplicated_by_reloading_or_renaming(store: Store, tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "a.pcap", packets=3)
    first = store.add_capture(pcap, packets=3, first_ts=1.0, last_ts=3.0)
    assert store.add_capture(pcap) == first
    moved = tmp_path / "renamed.pcap"
    shutil.copy(pcap, moved)
    assert store.add_capture(moved) == first
    other = store.add_capture(write_pcap(tmp_path / "b.pcap", payload=b"other"))
    assert other != first
    rows = store.list_captures()
    assert [r["id"] for r in rows] == [first, other]
    assert rows[0]["size"] == pcap.stat().st_size and rows[0]["packets"] == 3
    assert len(rows[0]["sha256"]) == 64


def test_what_reading_a_capture_found_is_kept_and_filled_in_once(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "a.pcap"
    path.write_bytes(b"capture bytes")  # the store hashes files; it does not parse them
    first = store.add_capture(path)  # a caller that knows nothing of the reading
    (row,) = store.list_captures()
    assert (row["complete"], row["damage"], row["sensor_dropped"]) == (None, "", None)
    again = store.add_capture(
        path, complete=False, damage="damaged at byte 40: impossible record length", sensor_dropped=3
    )
    assert again == first
    store.add_capture(path, complete=True, damage="", sensor_dropped=0)  # a known reading is not overwritten
    (row,) = store.list_captures()
    assert (row["complete"], row["damage"], row["sensor_dropped"]) == (
        0,
        "damaged at byte 40: impossible record length",
        3,
    )


def test_capture_that_cannot_be_read(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="missing.pcap"):
        store.add_capture(tmp_path / "missing.pcap")


def test_cases_and_default_case(store: Store, tmp_path: Path) -> None:
    default = store.default_case_id()
    assert store.default_case_id() == default
    named = store.add_case("incident-42", "build server mining")
    assert store.add_case("incident-42") == named
    store.add_capture(write_pcap(tmp_path / "a.pcap"), case_id=named)
    cases = {c["name"]: c for c in store.list_cases()}
    assert cases["incident-42"]["captures"] == 1 and cases["default"]["captures"] == 0
    store.set_case_status(named, "closed")
    assert store.get_case(named)["status"] == "closed"
    with pytest.raises(StoreError):
        store.add_capture(write_pcap(tmp_path / "b.pcap", payload=b"b"), case_id=999)


def test_notes_on_every_target_and_edit_is_audited(store: Store, tmp_path: Path) -> None:
    cap = store.add_capture(write_pcap(tmp_path / "a.pcap"))
    flow = store.record_flows(cap, summary([flow_row(7, "1.2.3.4", 3333)]))[7]
    pool = store.confirm_pool("1.2.3.4", 3333)
    probe = store.record_probe(
        {"target": "1.2.3.4:3333", "is_pool": False, "outcome": "none", "attempts": []}
    )
    targets = (("case", ""), ("flow", flow), ("pool", pool), ("probe", probe), ("endpoint", "1.2.3.4:3333"))
    ids = {kind: store.add_note(kind, ref, f"about {kind}") for kind, ref in targets}
    assert {n["target_kind"] for n in store.list_notes()} == set(ids)
    assert [n["text"] for n in store.list_notes("flow", flow)] == ["about flow"]
    store.edit_note(ids["flow"], "benign backup job")
    assert [n["text"] for n in store.list_notes("flow", str(flow))] == ["benign backup job"]
    edit = [a for a in store.list_audit() if a["action"] == "edit_note"]
    assert len(edit) == 1 and edit[0]["actor"] == "tester"
    assert json.loads(edit[0]["detail"])["old_text"] == "about flow"
    assert sum(a["action"] == "add_note" for a in store.list_audit()) == 5


def test_note_validation(store: Store) -> None:
    with pytest.raises(StoreError):
        store.add_note("capture", 1, "no such target kind")
    with pytest.raises(StoreError):
        store.add_note("case", "", "   ")
    with pytest.raises(StoreError):
        store.edit_note(12345, "nothing to edit")
    with pytest.raises(StoreError, match="no pool with id 99"):
        store.add_note("pool", 99, "dangling")


def test_endpoint_notes_have_one_spelling(store: Store) -> None:
    store.add_note("endpoint", "2001:db8::5:3333", "unbracketed, as the TUI writes it")
    store.add_note("endpoint", "[2001:db8::5]:3333", "bracketed")
    assert len(store.list_notes("endpoint", "[2001:db8::5]:3333")) == 2
    history = store.endpoint_history("2001:db8::5", 3333)
    assert [h.split(" ", 2)[2] for h in history] == [
        "note: unbracketed, as the TUI writes it",
        "note: bracketed",
    ]
    with pytest.raises(StoreError, match="HOST:PORT"):
        store.add_note("endpoint", "no-port", "x")


def test_live_sessions_are_captures_of_their_own_that_grow_as_they_run(store: Store) -> None:
    first = store.add_live_capture("eth0", started=1_700_000_000.0)
    second = store.add_live_capture("eth0", started=1_700_000_100.0)  # another session, same interface
    assert first != second
    store.record_flows(first, summary([flow_row(1, "127.0.0.9", 3333)]))
    store.update_capture(first, packets=10, first_ts=5.0, last_ts=7.0)
    store.update_capture(first, packets=25, first_ts=6.0, last_ts=9.0)  # a later batch widens the range
    store.update_capture(first, packets=30, first_ts=None, last_ts=None)  # no rows: only the count moves
    rows = {r["id"]: r for r in store.list_captures()}
    assert rows[first]["path"] == "live:eth0" and rows[first]["size"] == 0
    assert (rows[first]["packets"], rows[first]["first_ts"], rows[first]["last_ts"]) == (30, 5.0, 9.0)
    assert rows[first]["sha256"] != rows[second]["sha256"]
    assert store.scalar("SELECT count(*) FROM flows WHERE capture_id = ?", (first,)) == 1
