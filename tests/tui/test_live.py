"""``minerscope live --tui``: the workstation fed by a live capture on the loopback interface.

A real TLS pool emulator and a real miner talk on 127.78.0.2 while the app's loader is
:func:`minerscope.live.iter_live`; the Pilot checks that the session's flows reach the
table with their SNI and scores while the capture runs, and that quitting stops it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from functools import partial
from pathlib import Path

import pytest
from textual.message import Message

from minerscope.emulate.pool import start_pool
from minerscope.emulate.server import ThreadedServers
from minerscope.live import LiveOptions, iter_live
from minerscope.triage import TriageOptions
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.messages import FlowsArrived, LoadFinished, LoadProgress
from tests.cli.test_live import SNI, MinersInBackground, needs_capture
from tests.conftest import MS
from tests.tui.test_app import until


@pytest.mark.slow
@needs_capture
async def test_live_capture_fills_the_workstation_while_it_runs(tmp_path: Path) -> None:
    messages: list[Message] = []
    with ThreadedServers() as lab:
        pool = lab.start(start_pool("xmrig", host="127.78.0.2", port=0, tls=True, job_interval=0.5))
        loader = partial(iter_live, live=LiveOptions("lo", bpf="host 127.78.0.2"))
        app = MinerscopeApp(
            [Path("lo")],
            db_path=tmp_path / "case.sqlite",
            options=TriageOptions(window_s=1.0, idle_timeout=1.0),
            loader=loader,
        )
        async with app.run_test(size=(160, 40), message_hook=messages.append) as pilot:
            # the first update says the capture is open
            await until(pilot, lambda: any(isinstance(m, LoadProgress) for m in messages), 60_000 * MS)
            assert "capturing" in app.flows_screen.progress and app.flows_screen.progress_source == "lo"
            status = str(app.flows_screen.query_one("#status").render())
            assert status.startswith("capturing") and status.endswith(" · lo"), status
            miner = MinersInBackground([(*pool.target, True)])
            try:
                # windows close every second: rows arrive while the miner is still mining
                await until(pilot, lambda: app.flows_screen.table.row_count >= 2, 60_000 * MS)
                assert miner.running
                # the status line shows the flow cache: the miner's connection is held open
                await until(pilot, lambda: "1 open flow ·" in app.flows_screen.progress, 10_000 * MS)
            finally:
                stats = await asyncio.to_thread(miner.stop)
            assert stats[0].logged_in and stats[0].accepted >= 3
            # x stops the capture (the app's "cancel loading"); the rows stay
            await pilot.press("x")
            await until(pilot, lambda: any(isinstance(m, LoadFinished) for m in messages), 10_000 * MS)
            assert "cancelled" in app.flows_screen.progress
            await pilot.press("q")
            await pilot.pause()
    assert any(isinstance(m, FlowsArrived) for m in messages)
    # every row is a window of the one miner session, with its SNI and a score
    rows = app.session.rows
    assert rows.height >= 1 and set(rows["dst"]) == {pool.host} and set(rows["dport"]) == {pool.port}
    assert set(rows["capture"]) == {"lo"}
    # (on a starved machine the first window may close before the ClientHello: it has no payload)
    assert set(rows.filter(rows["c2s_payload_bytes"] > 0)["sni"]) == {SNI}
    assert all(0.0 <= p <= 1.0 for p in rows["p_mining"])


def _sample_fed_to_a_fifo(tmp_path: Path) -> tuple[Path, threading.Thread]:
    """A FIFO and a thread writing the bundled sample into it (a sensor's ``tcpdump -U -w -``)."""
    from minerscope import resources

    sample = resources.sample_capture()
    if not sample.is_file():
        pytest.skip("bundled sample capture not generated")
    fifo = tmp_path / "tap"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(sample.read_bytes())

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    return fifo, feeder


async def test_a_stream_from_a_fifo_fills_the_workstation_and_ends_with_it(tmp_path: Path) -> None:
    """``live --tui -i FIFO`` (a sensor's ``tcpdump -U -w -`` written to a FIFO): the flows of
    the stream reach the table, and the stream's end ends the session like a file's."""
    fifo, feeder = _sample_fed_to_a_fifo(tmp_path)
    messages: list[Message] = []
    app = MinerscopeApp(
        [fifo],
        db_path=tmp_path / "case.sqlite",
        options=TriageOptions(window_s=1e6),
        loader=partial(iter_live, live=LiveOptions(str(fifo))),
    )
    async with app.run_test(size=(160, 40), message_hook=messages.append) as pilot:
        await until(pilot, lambda: any(isinstance(m, LoadFinished) for m in messages), 120_000 * MS)
        await pilot.pause()
        assert app.flows_screen.table.row_count == 351
        await pilot.press("q")
    feeder.join(timeout=5)
    rows = app.session.rows
    assert set(rows["capture"]) == {str(fifo)}
    assert rows.filter(rows["verdict"] == "mining").height >= 8


async def test_the_workstations_live_session_is_recorded_in_the_case_file(tmp_path: Path) -> None:
    """``live --tui`` left no capture in the case file (only the workstation's probes and
    notes): the headless session records its flows and reading, the workstation now too."""
    from minerscope.cli.live_cmd import _recording
    from minerscope.store import open_store

    fifo, feeder = _sample_fed_to_a_fifo(tmp_path)
    messages: list[Message] = []
    db = tmp_path / "case.sqlite"
    app = MinerscopeApp(
        [fifo],
        db_path=db,
        options=TriageOptions(window_s=1e6),
        loader=_recording(partial(iter_live, live=LiveOptions(str(fifo))), db, "tap", True),
    )
    async with app.run_test(size=(160, 40), message_hook=messages.append) as pilot:
        await until(pilot, lambda: any(isinstance(m, LoadFinished) for m in messages), 120_000 * MS)
        await pilot.pause()
        await pilot.press("q")
    feeder.join(timeout=5)
    with open_store(db) as store:
        (capture,) = store.list_captures()
    assert (capture["path"], capture["flows"], capture["packets"], capture["complete"]) == (
        "live:tap",
        351,
        13423,
        1,
    )
