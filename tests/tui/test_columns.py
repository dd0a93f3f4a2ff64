"""The column chooser: tick, order, apply, and find the same columns in the next session.

Driven through the real app and its Pilot, with the layout kept in a real file under an
isolated config folder; a file that is damaged, hostile or from another version must
leave the workstation usable with its default columns.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from minerscope.tui.app import MinerscopeApp
from minerscope.tui.layout import MAX_FILE_BYTES, config_path, load_layout, parse_layout, save_layout
from minerscope.tui.screens.columns import ColumnsScreen
from minerscope.tui.widgets.flow_table import COINS_KEY, DEFAULT_LAYOUT
from tests.tui.conftest import layout_loader
from tests.tui.test_app import column, shown, until


def workstation() -> MinerscopeApp:
    return MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(40))


@asynccontextmanager
async def loaded(size: tuple[int, int]) -> AsyncIterator[tuple[MinerscopeApp, Any]]:
    """A workstation of ``size`` with its 40 flows loaded, and its Pilot."""
    app = workstation()
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        yield app, pilot


def keys(app: MinerscopeApp) -> list[str]:
    return [c.key for c in app.flows_screen.table.columns_spec]


def highlight(screen: ColumnsScreen, key: str) -> None:
    screen.choices.highlighted = screen.order.index(key)


def chooser(app: MinerscopeApp) -> ColumnsScreen:
    screen = app.screen
    assert isinstance(screen, ColumnsScreen)
    return screen


async def toggle(pilot: Any, app: MinerscopeApp, *columns: str, then: str = "ctrl+s") -> None:
    """Open the chooser, show/hide ``columns``, press ``then`` and wait for the flow table."""
    await pilot.press("C")
    for key in columns:
        highlight(chooser(app), key)
        await pilot.press("space")
    await pilot.press(then)
    await until(pilot, lambda: app.screen is app.flows_screen)


async def test_choose_order_apply_and_find_them_again_next_session(tmp_path: Path) -> None:
    async with loaded((160, 40)) as (app, pilot):
        assert keys(app)[:3] == ["p", "coin", "server"]
        await pilot.press("C")
        screen = chooser(app)
        # show the SNI and move it to the front; hide the client column
        highlight(screen, "sni")
        await pilot.press("space")
        for _ in range(screen.order.index("sni")):
            await pilot.press("shift+up")
        assert screen.order[0] == "sni" and screen.choices.highlighted == 0
        highlight(screen, "client")
        await pilot.press("space")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is app.flows_screen)
        shown_keys = keys(app)
        assert shown_keys[0] == "sni" and "client" not in shown_keys
        assert shown_keys[1:4] == ["p", "coin", "server"]
        # the SNI column draws each flow's SNI, inert, and sorts by it from its header
        table = app.flows_screen.table
        uid = table.selected_uid()
        assert uid is not None
        assert table.cells(0)[0].plain == (app.session.row(uid)["sni"] or "")
        await pilot.click("#table", offset=(2, 0))
        await until(pilot, lambda: app.flows_screen.sort_by == "sni")
        names = [s or "" for s in column(app, "sni")]
        assert names == sorted(names, reverse=True)
    saved = json.loads(config_path().read_text())
    assert saved["columns"][0] == "sni" and "client" not in saved["columns"]

    async with loaded((160, 40)) as (again, pilot):
        assert keys(again) == shown_keys


async def test_escape_changes_nothing_and_defaults_come_back_with_ctrl_r() -> None:
    async with loaded((120, 40)) as (app, pilot):
        before = keys(app)
        await toggle(pilot, app, "p", then="escape")
        assert keys(app) == before and not config_path().exists()
        await toggle(pilot, app, "ja4")
        assert "ja4" in keys(app)
        await pilot.press("C", "ctrl+r")
        await toggle(pilot, app)  # the chooser is open already: C does nothing, ctrl+s applies
        assert keys(app) == before
        assert tuple(json.loads(config_path().read_text())["columns"]) == DEFAULT_LAYOUT


async def test_hiding_every_column_is_refused() -> None:
    async with loaded((120, 40)) as (app, pilot):
        await pilot.press("C")
        screen = chooser(app)
        screen.choices.deselect_all()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen  # still choosing: an empty table would look like a lost capture


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "column layout ignored"),
        (b'{"columns": "p"}', "must be a list"),
        (b'{"columns": ["nosuch", 3]}', "must be a list"),
        (b'{"columns": ["nosuch"]}', "no column this version knows"),
        (b"[" * 100_000 + b"]" * 100_000, "larger than"),
        (b'{"columns": [' + b"[" * 5000 + b"]" * 5000 + b"]}", "column layout ignored"),
        (b'"\\u001b[2Jcolumns"', "not a JSON object"),
        (b"\xff\xfe{", "column layout ignored"),
    ],
)
async def test_a_damaged_or_hostile_layout_file_leaves_the_default_columns(content: bytes, why: str) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    layout, note = load_layout()
    assert layout == DEFAULT_LAYOUT and why in note and "\x1b" not in note
    async with loaded((120, 40)) as (app, pilot):
        assert tuple(c.key for c in app.flows_screen.table.columns_spec[:3]) == DEFAULT_LAYOUT[:3]
        assert app.flows_screen.table.row_count == 40


def test_layouts_keep_known_keys_once_in_order_and_are_written_whole(tmp_path: Path) -> None:
    assert parse_layout(["sni", "p", "sni", "from-a-newer-version", COINS_KEY]) == ("sni", "p", COINS_KEY)
    with pytest.raises(ValueError, match="no column"):
        parse_layout([])
    target = tmp_path / "deep" / "workstation.json"
    save_layout(("p", "sni"), target)
    assert json.loads(target.read_text()) == {"columns": ["p", "sni"]}
    assert load_layout(target) == (("p", "sni"), "")
    assert [p.name for p in target.parent.iterdir()] == ["workstation.json"]  # no temporary left
    assert MAX_FILE_BYTES < 1_000_000


async def test_columns_apply_even_when_they_cannot_be_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the config folder should be")
    monkeypatch.setenv("MINERSCOPE_CONFIG_DIR", str(blocker / "minerscope"))
    async with loaded((120, 40)) as (app, pilot):
        await toggle(pilot, app, "end")
        assert "end" in keys(app)
        assert "columns not kept for next time" in shown(app.flows_screen.query_one("#status"))


async def test_any_other_column_of_the_data_can_be_shown_and_is_kept() -> None:
    """Beyond the catalogue, every other column of the loaded data is offered as it is
    (numbers right-aligned), sorts from its header, and comes back next session."""
    async with loaded((160, 40)) as (app, pilot):
        await pilot.press("C")
        screen = chooser(app)
        assert {"col:vlan", "col:syn_seen", "col:fragments"} <= set(screen.order)
        assert not {"col:uid", "col:capture_id", "col:top_features", "col:sni"} & set(screen.order)
        assert not [key for key in screen.order if key.startswith("col:pc_")]  # the coins are one group
        await pilot.press("escape")
        await toggle(pilot, app, "col:sport", "col:syn_seen")
        assert keys(app)[-2:] == ["col:sport", "col:syn_seen"]
        table = app.flows_screen.table
        uid = table.selected_uid()
        assert uid is not None
        row = app.session.row(uid)
        sport_cell, syn_cell = table.cells(0)[-2:]
        assert sport_cell.plain == str(row["sport"]) and sport_cell.justify == "right"
        assert syn_cell.plain == ("yes" if row["syn_seen"] else "no")
        app.flows_screen.sort("sport")
        ports = column(app, "sport")
        assert ports == sorted(ports, reverse=True)
    assert json.loads(config_path().read_text())["columns"][-2:] == ["col:sport", "col:syn_seen"]
    async with loaded((160, 40)) as (again, pilot):
        assert keys(again)[-2:] == ["col:sport", "col:syn_seen"]


def test_data_column_keys_must_be_plain_names() -> None:
    assert parse_layout(["col:vlan", "col:ws_path", "p"]) == ("col:vlan", "col:ws_path", "p")
    for bad in ("col:", "col:two words", "col:\x1b[2J", "col:ünïcode", "col:" + "x" * 65):
        assert parse_layout([bad, "p"]) == ("p",), bad
