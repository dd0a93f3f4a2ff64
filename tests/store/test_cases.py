"""Cases, captures (idempotent by hash) and notes with their audit trail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from minerscope.errors import StoreError
from minerscope.store import Store, open_store
from minerscope.store.cases import FLOWS_PENDING
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


def _reading_seen_by(db_path: Path) -> tuple[object, str, int]:
    """(complete, damage, flows) of the only capture, as another connection sees it."""
    with open_store(db_path, actor="reader") as other:
        (row,) = other.list_captures()
    return row["complete"], row["damage"], row["flows"]


def test_a_capture_is_not_whole_before_its_flows_are_in(store: Store, db_path: Path, tmp_path: Path) -> None:
    """scan's sequence (add_capture, then record_flows): a reader in between, or a file
    left by a scan stopped in between, never sees the capture read whole with 0 flows."""
    pcap = write_pcap(tmp_path / "a.pcap", packets=3)
    rows = [flow_row(i, "203.0.113.5", 3333, p_mining=0.9, coin="monero", coin_probs="{}") for i in range(3)]
    capture_id = store.add_capture(
        pcap, packets=3, first_ts=1.0, last_ts=3.0, complete=True, sensor_dropped=2
    )
    assert _reading_seen_by(db_path) == (None, FLOWS_PENDING, 0)
    broken = summary([*rows[:2], {**rows[2], "coin_probs": "{not json"}], scored=True)
    with pytest.raises(StoreError):  # the flows' transaction fails (as Ctrl-C would stop it)
        store.record_flows(capture_id, broken)
    assert _reading_seen_by(db_path) == (None, FLOWS_PENDING, 0)
    store.record_flows(capture_id, summary(rows, scored=True))
    assert _reading_seen_by(db_path) == (1, "", 3)
    (row,) = store.list_captures()
    assert row["sensor_dropped"] == 2


def test_scans_own_call_records_a_reading_with_its_flows(store: Store, db_path: Path, tmp_path: Path) -> None:
    from minerscope.cli.scan_cmd import _mark_analyst
    from minerscope.cli.workers import Outcome

    pcap = write_pcap(tmp_path / "a.pcap", packets=2)
    bad = summary([flow_row(0, "203.0.113.5", 3333, p_mining=0.9, coin_probs="{not json")], scored=True)
    with pytest.raises(StoreError):
        _mark_analyst(store, {}, Outcome(str(pcap), bad, True, None, None, 2))
    with open_store(db_path, actor="reader") as other:
        assert other.list_captures() == []  # one transaction: the capture went with its flows
    good = summary([flow_row(0, "203.0.113.5", 3333, p_mining=0.9, coin_probs="{}")], scored=True)
    _mark_analyst(store, {}, Outcome(str(pcap), good, True, None, None, 2))
    assert _reading_seen_by(db_path) == (1, "", 1)
    # a capture without flows has nothing to wait for: its reading is recorded at once
    empty = write_pcap(tmp_path / "empty.pcap", payload=b"other", packets=1)
    _mark_analyst(store, {}, Outcome(str(empty), summary([]), False, None, None, 1, damage="cut at byte 9"))
    assert [(c["complete"], c["damage"]) for c in store.list_captures()][1] == (0, "cut at byte 9")


def test_record_capture_is_one_transaction(store: Store, tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "a.pcap", packets=2)
    bad = summary([flow_row(0, "203.0.113.5", 3333, p_mining=0.9, coin_probs="{not json")], scored=True)
    with pytest.raises(StoreError):
        store.record_capture(pcap, bad, packets=2, first_ts=1.0, last_ts=2.0, complete=True)
    assert store.list_captures() == []
    good = summary([flow_row(0, "203.0.113.5", 3333, p_mining=0.9, coin_probs="{}")], scored=True)
    capture_id, mapping = store.record_capture(
        pcap, good, packets=2, first_ts=1.0, last_ts=2.0, complete=True
    )
    (row,) = store.list_captures()
    assert (row["id"], row["complete"], row["flows"]) == (capture_id, 1, 1) and len(mapping) == 1
