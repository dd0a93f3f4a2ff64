"""The whole workstation at 80x24, from the keyboard alone.

One walk through every screen and action with key presses only (no widget values set,
no methods called): sort, reverse, toggles, filter, horizontal scroll, flow detail to
its last section, probe a real Stratum emulator on 127.0.0.1, confirm, note, pools,
export CSV through the dialog, help to its last line, the command palette, quit. On
every screen the footer's keys, the dialog buttons and the content that matters must
lie wholly inside the 80x24 screen.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Region
from textual.widget import Widget

from minerscope.emulate.pool import start_pool
from minerscope.resources import sample_capture
from minerscope.store import open_store
from minerscope.triage import TriageOptions, TriageUpdate
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.screens.cases import ExportScreen, HelpScreen, NoteEditor, PoolsScreen
from minerscope.tui.screens.flow_detail import FlowDetailScreen
from minerscope.tui.screens.flows import FlowsScreen
from minerscope.tui.screens.probe import ProbeScreen
from minerscope.tui.widgets.flow_table import BASE_COLUMNS
from tests.conftest import MS
from tests.tui.conftest import replay_loader
from tests.tui.test_app import until

pytestmark = pytest.mark.skipif(not sample_capture().is_file(), reason="bundled sample not generated")

SCREEN = Region(0, 0, 80, 24)
MUST_SEE = ("p", "coin", "server", "port", "badges", "probe", "status")
"""Flow-table columns that must fit in 80 columns without scrolling sideways."""


def inside(widget: Widget) -> None:
    assert widget.region.area > 0, f"{widget!r} is not drawn"
    assert SCREEN.contains_region(widget.region), f"{widget!r} at {widget.region} is cut off"


def footer_fits(app: MinerscopeApp) -> None:
    """Every key the footer offers is drawn in full (none pushed off the right edge)."""
    keys = list(app.screen.query("FooterKey"))
    assert keys, "no footer keys"
    for key in keys:
        inside(key)
    for i, key in enumerate(keys):  # the right-docked palette key must not cover another
        for other in keys[i + 1 :]:
            assert not key.region.overlaps(other.region), f"{key!r} and {other!r} overlap"
    assert any("Help" in str(getattr(k, "description", "")) for k in keys) or isinstance(
        app.screen, HelpScreen | NoteEditor | ExportScreen
    ), "the footer does not offer help"


async def test_every_screen_and_action_at_80x24_by_keyboard(
    tmp_path: Path, sample_updates: list[TriageUpdate], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the export dialog proposes files in the working directory
    db = tmp_path / "case.sqlite"
    pool = await start_pool("stratum1", "127.0.0.1", 0)
    app = MinerscopeApp(
        [sample_capture()],
        db_path=db,
        options=TriageOptions(db_path=db),
        loader=replay_loader(sample_updates),
    )
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.loads_done == 1, 30_000 * MS)
            await pilot.pause()
            flows = app.flows_screen
            table = flows.table
            # the flow table: the telling columns fit, status and footer are whole
            shown_width = sum(c.width + 1 for c in BASE_COLUMNS if c.key in MUST_SEE)
            assert [c.key for c in BASE_COLUMNS[: len(MUST_SEE)]] == list(MUST_SEE)
            assert shown_width <= table.scrollable_content_region.width
            inside(flows.query_one("#status"))
            inside(flows.query_one("#filter"))
            footer_fits(app)

            await pilot.press("s")
            assert flows.sort_by == "bytes"
            await pilot.press("r")
            assert not flows.descending
            await pilot.press("b", "c")
            assert flows.hide_benign and flows.hide_confirmed
            await pilot.press("b", "c")
            await pilot.press("slash", *"p>0.9", "enter")
            assert app.focused is table and 0 < flows.matching < app.session.count
            await pilot.press("right", "right")
            assert table.scroll_x > 0  # columns beyond 80 are reachable
            await pilot.press("left", "left", "home")

            # detail: every section reachable by scrolling to the end
            await pilot.press("enter")
            detail = app.screen
            assert isinstance(detail, FlowDetailScreen)
            footer_fits(app)
            inside(detail.query_one("#detail-title"))
            await pilot.press("end")
            await pilot.pause()
            inside(detail.query_one("#history"))
            await pilot.press("escape")

            # probe a real pool typed in, confirm it, note it
            await pilot.press("P")
            probe = app.screen
            assert isinstance(probe, ProbeScreen)
            await pilot.press(*f"127.0.0.1:{pool.port}", "enter")
            await until(pilot, lambda: probe.verdict is not None, 60_000 * MS)
            assert probe.verdict is not None and probe.verdict.is_pool
            await pilot.pause()
            inside(probe.query_one("#verdict"))
            footer_fits(app)
            await pilot.press("c")
            await pilot.press("n")
            editor = app.screen
            assert isinstance(editor, NoteEditor)
            for button in editor.query("Button"):
                inside(button)
            await pilot.press(*"seen at 80x24", "ctrl+s")
            assert app.screen is probe
            await pilot.press("escape")
            assert isinstance(app.screen, FlowsScreen)

            # pools, then export the CSV from the dialog, path typed by hand
            await pilot.press("o")
            pools = app.screen
            assert isinstance(pools, PoolsScreen)
            footer_fits(app)
            assert pools.pools and pools.pools[0]["port"] == str(pool.port)
            inside(pools.query("DataTable").first())
            out = tmp_path / "typed.csv"
            await pilot.press("e")
            export = app.screen
            assert isinstance(export, ExportScreen)
            for button in export.query("Button"):
                inside(button)
            inside(export.query_one("#path"))
            await pilot.press("tab", "home", "ctrl+k", *str(out), "ctrl+s")
            await pilot.pause()
            with out.open(newline="") as fh:
                assert [(r["host"], r["port"]) for r in csv.DictReader(fh)] == [("127.0.0.1", str(pool.port))]
            await pilot.press("escape")
            assert isinstance(app.screen, FlowsScreen)

            # help scrolls to its last line from the keyboard
            await pilot.press("question_mark")
            help_screen = app.screen
            assert isinstance(help_screen, HelpScreen)
            body: Any = help_screen.query_one("#help-body")
            inside(body)
            assert body.max_scroll_y > 0  # longer than 24 lines: scrolling is needed
            await pilot.press("end")
            await pilot.pause()
            assert body.scroll_y == body.max_scroll_y
            await pilot.press("escape")

            # the command palette runs an action
            await pilot.press("ctrl+p")
            await pilot.press(*"toggle hide benign")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await until(pilot, lambda: flows.hide_benign, 3000 * MS)
            assert isinstance(app.screen, FlowsScreen)

            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0
    finally:
        await pool.close()
    with open_store(db) as store:
        assert [(p["host"], p["port"]) for p in store.list_pools()] == [("127.0.0.1", pool.port)]
        assert any("seen at 80x24" in str(n["text"]) for n in store.list_notes())
