"""What a live session leaves in the case file at its end."""

from __future__ import annotations

from pathlib import Path

from minerscope import resources
from minerscope.cli.live_cmd import _CaseWriter
from minerscope.store import open_store
from minerscope.triage import triage_rows


def test_the_reading_is_recorded_when_every_flow_was_written_before_the_end(tmp_path: Path) -> None:
    """A session whose flows had all been written by an earlier batch ended with an empty
    ``read``: the last flush had no rows, and returned before it wrote the reading (the
    stream's damage, the drops) and the packet count."""
    data = resources.sample_capture().read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[:200_000])
    rows, _ = triage_rows(cut)
    db = tmp_path / "case.sqlite"
    writer = _CaseWriter(db, "stdin")
    writer.add(rows, packets=500, final=False)
    writer.flush()  # a batch written while the session runs
    reading = (False, "damaged at byte 199552: stream ends inside a record (truncated)", 7)
    writer.add(None, packets=813, final=True, reading=reading)
    writer.close()
    with open_store(db) as store:
        (capture,) = store.list_captures()
    assert capture["path"] == "live:stdin" and capture["flows"] == rows.height
    assert (capture["packets"], capture["complete"], capture["damage"], capture["sensor_dropped"]) == (
        813,
        0,
        reading[1],
        7,
    )


def test_a_session_without_flows_is_still_on_record(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    writer = _CaseWriter(db, "lo")
    writer.add(None, packets=12, final=True, reading=(True, "", 0))
    writer.close()
    with open_store(db) as store:
        (capture,) = store.list_captures()
    assert (capture["path"], capture["packets"], capture["flows"], capture["complete"]) == (
        "live:lo",
        12,
        0,
        1,
    )
