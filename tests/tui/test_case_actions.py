"""The analyst's decisions through the Pilot, against a real case file: dismissing a confirmed
pool asks first and can be undone, a second confirm neither duplicates nor changes hands,
the pools screen says who confirmed and keeps its notes current, and exports do not
overwrite a file without asking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable

from minerscope.emulate.pool import start_pool
from minerscope.emulate.server import ThreadedServers
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.screens.cases import AskScreen, ExportScreen, NoteEditor, PoolsScreen
from minerscope.tui.screens.flow_detail import FlowDetailScreen
from minerscope.tui.screens.probe import ProbeScreen
from tests.conftest import MS
from tests.tui.conftest import layout_loader
from tests.tui.test_app import shown, until


async def loaded(app: MinerscopeApp, pilot: Any) -> tuple[str, int]:
    """Wait for the hand-built flows; the endpoint of the flow under the cursor."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    uid = app.flows_screen.table.selected_uid()
    assert uid is not None
    return app._endpoint(uid)


def top(app: MinerscopeApp) -> Screen[Any]:
    """The screen on top (a function, so a type check does not keep an earlier isinstance)."""
    return app.screen


def status_of(app: MinerscopeApp, endpoint: tuple[str, int]) -> str:
    return app.session.analyst.get(endpoint, "")


async def test_dismissing_a_confirmed_pool_asks_first_and_u_undoes_it(tmp_path: Path) -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(10), db_path=tmp_path / "case.sqlite")
    async with app.run_test(size=(120, 40)) as pilot:
        host, port = await loaded(app, pilot)
        app.store.confirm_pool(host, port, how="analyst")
        app._load_annotations()

        def indicators() -> list[bool]:
            return [bool(i["enabled"]) for i in app.store.list_indicators()]

        assert status_of(app, (host, port)) == "confirmed" and all(indicators())

        await pilot.press("d")  # no: nothing changes
        assert isinstance(app.screen, AskScreen)
        question = shown(app.screen.query_one("#question"))
        assert f"{host}:{port} is a confirmed pool (analyst " in question
        await pilot.press("n")
        assert top(app) is app.flows_screen
        assert not app.store.is_dismissed(host, port) and all(indicators())
        assert status_of(app, (host, port)) == "confirmed"

        await pilot.press("d", "y")  # yes: dismissed
        assert top(app) is app.flows_screen
        assert app.store.is_dismissed(host, port)
        assert status_of(app, (host, port)) == "dismissed"

        await pilot.press("u")  # undo, through the store's undismiss
        assert not app.store.is_dismissed(host, port)
        assert status_of(app, (host, port)) == "confirmed"
        actions = [a["action"] for a in app.store.list_audit()]
        assert actions.count("dismiss") == 1 and actions.count("undismiss") == 1
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert "Undismiss selected flow" in commands


async def test_dismissing_an_endpoint_that_is_no_pool_needs_no_question(tmp_path: Path) -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(10), db_path=tmp_path / "case.sqlite")
    async with app.run_test(size=(120, 40)) as pilot:
        host, port = await loaded(app, pilot)
        await pilot.press("enter", "d")  # from the flow detail
        assert isinstance(app.screen, FlowDetailScreen)
        assert app.store.is_dismissed(host, port)
        await pilot.press("u")
        assert not app.store.is_dismissed(host, port) and status_of(app, (host, port)) == ""
        await pilot.press("u")  # nothing left to lift: said, not an error
        assert list(app._notifications)[-1].message.endswith("is not dismissed")


async def test_a_host_wide_dismissal_is_lifted_only_when_asked(tmp_path: Path) -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(10), db_path=tmp_path / "case.sqlite")
    async with app.run_test(size=(120, 40)) as pilot:
        host, port = await loaded(app, pilot)
        app.store.dismiss_endpoint(host, 0)  # as `case dismiss --any-port`
        app._load_annotations()
        await pilot.press("u")
        assert isinstance(app.screen, AskScreen)
        assert "every port of" in shown(app.screen.query_one("#question"))
        await pilot.press("n")
        assert app.store.is_dismissed(host, port)
        await pilot.press("u", "y")
        assert not app.store.is_dismissed(host, port)


async def test_confirming_a_pool_the_probe_confirmed_says_so_and_changes_nothing(tmp_path: Path) -> None:
    with ThreadedServers() as lab:
        pool = lab.start(start_pool("xmrig", job_interval=0))
        app = MinerscopeApp(
            [Path("layout.pcapng")], loader=layout_loader(4), db_path=tmp_path / "case.sqlite"
        )
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            app.push_screen(ProbeScreen(pool.target))
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ProbeScreen)
            await until(pilot, lambda: screen.verdict is not None, within=10_000 * MS)
            await until(pilot, lambda: app.store.get_pool(*pool.target) is not None)
            before = app.store.get_pool(*pool.target)
            assert before["confirmed_by"] == "probe"  # the probe's own confirmation
            await pilot.press("c")
            assert app.store.get_pool(*pool.target) == before  # confirmed_at did not move
            confirms = [a for a in app.store.list_audit() if a["action"] == "confirm"]
            assert [a["actor"] for a in confirms] == ["probe"]
            assert "is already confirmed: probe " in list(app._notifications)[-1].message


async def test_the_analysts_confirm_is_recorded_as_the_analysts(tmp_path: Path) -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(4), db_path=tmp_path / "case.sqlite")
    async with app.run_test(size=(120, 40)) as pilot:
        host, port = await loaded(app, pilot)
        app.confirm_pool((host, port), None)  # what c on the probe panel calls
        pool = app.store.get_pool(host, port)
        assert pool["confirmed_by"] == "analyst"
        (confirm,) = [a for a in app.store.list_audit() if a["action"] == "confirm"]
        assert confirm["actor"] == app.store.actor != "probe"
        app.confirm_pool((host, port), None)
        assert len([a for a in app.store.list_audit() if a["action"] == "confirm"]) == 1


async def test_pools_screen_says_who_confirmed_and_shows_a_new_note_at_once(tmp_path: Path) -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(4), db_path=tmp_path / "case.sqlite")
    async with app.run_test(size=(160, 40)) as pilot:
        host, port = await loaded(app, pilot)
        app.confirm_pool((host, port), None)
        await pilot.press("o")
        screen = app.screen
        assert isinstance(screen, PoolsScreen) and screen.pools
        confirmation = screen.pools[0]["confirmation"]
        assert confirmation.startswith("analyst 20") and confirmation.endswith("Z")
        table = screen.query_one("#pools-table", DataTable)
        assert str(table.get_cell_at(Coordinate(0, 7))) == confirmation

        await pilot.press("n")
        assert isinstance(app.screen, NoteEditor)
        await pilot.press(*"seen at night", "ctrl+s")
        await until(pilot, lambda: bool(screen.pools) and screen.pools[0]["note"] == "seen at night")
        assert (
            str(screen.query_one("#pools-table", DataTable).get_cell_at(Coordinate(0, 8))) == "seen at night"
        )


async def test_a_note_keeps_its_line_breaks_and_stays_inert(tmp_path: Path) -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(4), db_path=tmp_path / "case.sqlite")
    async with app.run_test(size=(120, 50)) as pilot:
        host, port = await loaded(app, pilot)
        from minerscope.probe.target import format_target

        app.store.add_note("endpoint", format_target(host, port), "first line\n[bold]second\x1b[2J")
        await pilot.press("enter")
        history = shown(app.screen.query_one("#history"))
        assert "first line\n" in history and "\\x0a" not in history
        assert "[bold]second\\x1b[2J" in history


async def test_export_asks_before_overwriting_a_file(tmp_path: Path) -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(4), db_path=tmp_path / "case.sqlite")
    out = tmp_path / "pools.csv"
    out.write_text("the analyst's own file\n")
    async with app.run_test(size=(120, 40)) as pilot:
        host, port = await loaded(app, pilot)
        app.confirm_pool((host, port), None)
        await pilot.press("e")
        export = app.screen
        assert isinstance(export, ExportScreen)
        path_input: Any = export.query_one("#path")
        path_input.value = str(out)
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, AskScreen)
        assert f"{out} exists. Overwrite it?" in shown(app.screen.query_one("#question"))
        await pilot.press("n")
        assert out.read_text() == "the analyst's own file\n"
        again = app.screen  # the dialog is back with the same choice, to pick another name
        assert isinstance(again, ExportScreen) and again.query_one("#path").value == str(out)  # type: ignore[attr-defined]
        await pilot.press("ctrl+s", "y")
        assert top(app) is app.flows_screen
        assert out.read_text().startswith("host,port") and host in out.read_text()
