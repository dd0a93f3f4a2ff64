"""End-to-end journeys on the real bundled sample, a real pool emulator and a real case file.

Open the sample (real triage pipeline and shipped model), sort and filter, open a flow,
probe a local Stratum emulator on 127.0.0.1 and see the pool verdict, confirm it, write a
note, export CSV, then restart the app on the same case file and find it all again.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message

from minerscope.emulate.pool import start_pool
from minerscope.resources import sample_capture
from minerscope.store import open_store
from minerscope.triage import TriageOptions, TriageUpdate
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.messages import FlowsArrived, ProbeAttemptSeen, ProbeFinished
from minerscope.tui.screens.cases import ExportScreen, NoteEditor, PoolsScreen
from minerscope.tui.screens.flow_detail import FlowDetailScreen
from minerscope.tui.screens.probe import ProbeScreen
from minerscope.tui.session import parse_json_list
from minerscope.tui.widgets.feature_sparklines import FeatureSparklines
from tests.conftest import MS
from tests.tui.test_app import column, shown, until

pytestmark = pytest.mark.skipif(not sample_capture().is_file(), reason="bundled sample not generated")

LOAD_TIMEOUT = 120_000 * MS  # the first triage compiles numba kernels; a loaded CI box is slow


def workstation(db: Path) -> MinerscopeApp:
    return MinerscopeApp([sample_capture()], db_path=db, options=TriageOptions(db_path=db))


async def test_open_probe_confirm_note_export_restart(
    tmp_path: Path, sample_updates: list[TriageUpdate]
) -> None:
    db = tmp_path / "case.sqlite"
    pool = await start_pool("stratum1", "127.0.0.1", 0)
    messages: list[Message] = []
    try:
        app = workstation(db)
        async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
            await until(pilot, lambda: app.loads_done == 1, LOAD_TIMEOUT)
            await pilot.pause()
            assert not app.last_error
            table = app.flows_screen.table
            assert table.row_count == app.session.count > 0
            assert app.session.count == sum(u.rows.height for u in sample_updates if u.rows is not None)
            assert any(isinstance(m, FlowsArrived) for m in messages)
            # ranked by suspicion: every mining verdict above every benign one
            verdicts = column(app, "verdict")
            assert "mining" in verdicts
            assert verdicts.index("benign") > len([v for v in verdicts if v == "mining"]) - 1

            # sort by bytes, then filter
            await pilot.press("s")
            sizes = column(app, "bytes")
            assert sizes == sorted(sizes, reverse=True)
            await pilot.press("slash", *"p>0.9", "enter")
            high = column(app, "p_mining")
            assert high and all(p > 0.9 for p in high)
            assert table.row_count < app.session.count

            # open the top flow: sparklines, reasons, handshake
            await pilot.press("home", "enter")
            detail = app.screen
            assert isinstance(detail, FlowDetailScreen)
            assert detail.query(FeatureSparklines)
            top = parse_json_list(detail.row["top_features"])
            assert top and top[0]["name"] in shown(detail.query_one("#features"))
            await pilot.press("escape")

            # probe the local pool emulator typed in by hand
            await pilot.press("P")
            assert isinstance(app.screen, ProbeScreen)
            await pilot.press(*f"127.0.0.1:{pool.port}", "enter")
            probe_screen = app.screen
            await until(pilot, lambda: probe_screen.verdict is not None, 60_000 * MS)
            verdict = probe_screen.verdict
            assert verdict.is_pool and verdict.dialect == "stratum1"
            assert any(isinstance(m, ProbeAttemptSeen) for m in messages)
            assert any(isinstance(m, ProbeFinished) for m in messages)
            assert "POOL" in shown(probe_screen.query_one("#verdict"))

            # confirm it and write a note on it
            await pilot.press("c")
            await pilot.press("n")
            assert isinstance(app.screen, NoteEditor)
            await pilot.press(*"xmrig on lab host, pool confirmed by probe", "ctrl+s")
            assert isinstance(app.screen, ProbeScreen)
            await pilot.press("escape")

            # export confirmed pools as CSV
            out = tmp_path / "pools.csv"
            await pilot.press("e")
            export = app.screen
            assert isinstance(export, ExportScreen)
            path_input: Any = export.query_one("#path")
            path_input.value = str(out)
            await pilot.press("ctrl+s")
            with out.open(newline="") as fh:
                exported = list(csv.DictReader(fh))
            assert [(r["host"], r["port"]) for r in exported] == [("127.0.0.1", str(pool.port))]
            await pilot.press("q")
    finally:
        await pool.close()

    # restart on the same case file: the pool and the note are still there
    with open_store(db) as store:
        assert [(p["host"], p["port"]) for p in store.list_pools()] == [("127.0.0.1", pool.port)]
    again = workstation(db)
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        pools_screen = again.screen
        assert isinstance(pools_screen, PoolsScreen)
        assert pools_screen.pools and pools_screen.pools[0]["host"] == "127.0.0.1"
        history = again._history("127.0.0.1", pool.port) or []
        assert any("xmrig on lab host" in line for line in history)
        assert any("probe:" in line for line in history)
        await pilot.press("escape")
        await until(pilot, lambda: again.loads_done == 1, LOAD_TIMEOUT)
        await pilot.press("q")


def test_cli_open_command_is_registered() -> None:
    from click.testing import CliRunner

    from minerscope.cli import main

    result = CliRunner().invoke(main, ["open", "--help"])
    assert result.exit_code == 0, result.output
    assert "Open CAPTURES in the analyst workstation" in result.output
    missing = CliRunner().invoke(main, ["open", "/nonexistent/x.pcap"])
    assert missing.exit_code == 4 and "no such file" in missing.output
