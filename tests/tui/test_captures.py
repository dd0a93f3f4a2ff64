"""Several captures in one workstation: flows keep the capture they came from.

The same sample opened twice (once from a copy with the same file name) holds the same
5-tuples at the same times in both captures; every flow must stay its own row, known by
(capture_id, flow_id), with its own packets behind the detail screen.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from minerscope.resources import sample_capture
from minerscope.triage import TriageUpdate
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.screens.flow_detail import FlowDetailScreen
from minerscope.tui.session import CAPTURE_ID
from tests.tui.conftest import replay_loader
from tests.tui.test_app import column, shown

pytestmark = pytest.mark.skipif(not sample_capture().is_file(), reason="bundled sample not generated")

FIVE_TUPLE = ["proto", "src", "sport", "dst", "dport", "first_seen"]


async def test_the_same_flows_in_two_captures_stay_distinct(
    tmp_path: Path, sample_updates: list[TriageUpdate]
) -> None:
    copy = tmp_path / sample_capture().name  # same name, same flows: only the capture tells them apart
    shutil.copyfile(sample_capture(), copy)
    per_capture = sum(u.rows.height for u in sample_updates if u.rows is not None)
    app = MinerscopeApp([sample_capture(), copy], loader=replay_loader(sample_updates))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        rows = app.session.rows
        assert app.flows_screen.table.row_count == rows.height == 2 * per_capture
        assert rows.select(CAPTURE_ID, "flow_id").unique().height == 2 * per_capture
        assert dict(rows.group_by(CAPTURE_ID).len().iter_rows()) == {0: per_capture, 1: per_capture}
        first, second = (
            rows.filter(pl.col(CAPTURE_ID) == k).select(FIVE_TUPLE).sort(FIVE_TUPLE) for k in (0, 1)
        )
        assert first.equals(second)  # identical 5-tuples, still two rows each

        # the filter language reaches the column; the detail says which capture it shows
        await pilot.press("slash", *"capture_id=1", "enter")
        assert set(column(app, CAPTURE_ID)) == {1}
        assert app.flows_screen.table.row_count == per_capture
        uid = app.flows_screen.table.selected_uid()
        assert uid is not None
        capture_id, flow_id = app.session.flow_key(uid)
        assert capture_id == 1
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, FlowDetailScreen)
        assert f"(capture 2 of 2) · flow {flow_id}" in shown(detail.query_one("#detail-capture"))
        located = app.session.table_for(uid)
        assert located is not None
        table, index = located
        assert int(table.summary["flow_id"][index]) == flow_id
        assert detail.series is not None
        assert detail.series.packets == int(detail.row["packets"])


async def test_an_unscored_flow_shows_no_probability_and_says_why(sample_updates: list[TriageUpdate]) -> None:
    """A flow none of whose windows holds the model's minimum of messages: '-' in the table's
    p column, and the detail says it was not scored (not 0.000, which reads as a measurement)."""
    app = MinerscopeApp([sample_capture()], loader=replay_loader(sample_updates))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.flows_screen.table
        rows = app.session.rows
        unscored = set(rows.filter(pl.col("window").is_null())["uid"].to_list())
        assert 0 < len(unscored) < rows.height
        p_at = [c.key for c in table.columns_spec].index("p")
        for index, uid in enumerate(table.uids()):
            text = table.cells(index)[p_at].plain.strip()
            assert (text == "-") == (uid in unscored), (uid, text)
        index = next(i for i, uid in enumerate(table.uids()) if uid in unscored)
        table.cursor_row = index
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, FlowDetailScreen)
        text = shown(detail.query_one("#score"))
        assert "not scored: too few messages in every window" in text and "not estimated: not scored" in text
