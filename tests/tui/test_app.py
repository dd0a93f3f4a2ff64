"""The workstation driven through Textual's Pilot: loading, sorting, filtering, detail, keys."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from textual.message import Message
from textual.widgets import Input

from minerscope.triage import TriageOptions, TriageUpdate
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.messages import FlowsArrived, LoadFailed, LoadFinished, LoadProgress
from minerscope.tui.screens.cases import HelpScreen, QuitScreen
from minerscope.tui.screens.flow_detail import FlowDetailScreen
from minerscope.tui.screens.flows import FILTER_PAUSE_S
from minerscope.tui.widgets.feature_sparklines import FeatureSparklines
from minerscope.tui.widgets.flow_table import BASE_COLUMNS
from tests.conftest import MS
from tests.flows.frames import tcp_session, write_pcap, write_pcapng_with_usb
from tests.tui.conftest import _slice, build_table, layout_loader


def shown(widget: Any) -> str:
    """The plain text of a Static's content, unwrapped (rendered 2000 columns wide: a
    long temporary path in a message must not split it across lines)."""
    from rich.console import Console

    console = Console(width=2000, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def until(pilot: Any, condition: Any, within: float = 3000 * MS) -> None:
    """Let the app run until ``condition()`` holds (fails after ``within`` seconds)."""
    import time

    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await pilot.pause(20 * MS)


def column(app: MinerscopeApp, key: str) -> list[Any]:
    return [app.session.row(uid)[key] for uid in app.flows_screen.table.uids()]


async def test_load_fills_the_table_ranked_by_suspicion() -> None:
    messages: list[Message] = []
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(40, chunks=4))
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.flows_screen.table.row_count == 40
        p = column(app, "p_mining")
        verdicts = column(app, "verdict")
        assert verdicts[:8] == ["mining"] * 8 and "mining" not in verdicts[8:]
        assert p[:8] == sorted(p[:8], reverse=True)
    kinds = [type(m) for m in messages]
    assert kinds.count(FlowsArrived) == 4
    assert LoadProgress in kinds and LoadFinished in kinds


async def test_filter_sort_and_toggles_from_the_keyboard() -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(40))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("slash", *"coin=xmr", "enter")
        assert set(column(app, "coin")) == {"xmr"}
        assert app.focused is app.flows_screen.table
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"p>0.9 port=3333", "enter")
        assert all(p > 0.9 for p in column(app, "p_mining"))
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"nosuch=1", "enter")
        assert "unknown field 'nosuch'" in shown(app.flows_screen.query_one("#status"))
        await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")
        assert app.flows_screen.table.row_count == 40
        await pilot.press("s")  # p_mining -> bytes
        sizes = column(app, "bytes")
        assert sizes == sorted(sizes, reverse=True)
        await pilot.press("r")
        assert column(app, "bytes") == sorted(sizes)
        await pilot.press("b")
        assert set(column(app, "verdict")) == {"mining"}
        await pilot.press("b")
        assert app.flows_screen.table.row_count == 40


async def test_a_typed_filter_applies_when_typing_pauses() -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(40))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        flows = app.flows_screen
        await pilot.press("slash", *"coin=xmr")  # no enter
        # (typed key by key: a pause after "coin=xm" may show that filter's empty table first)
        await until(pilot, lambda: set(column(app, "coin")) == {"xmr"})
        assert flows.table.row_count < 40
        assert app.focused is flows.query_one("#filter")  # the analyst can keep typing
        # a field that is not one (yet) leaves the table as it was, without a red line ...
        # (one edit, as a paste: typed key by key, a loaded machine can pause 0.3 s after
        # "nosuch", a bare word that rightly matches nothing; CI did once)
        flows.query_one("#filter", Input).insert_text_at_cursor(" nosuch=1")
        await pilot.pause(FILTER_PAUSE_S + 0.3)
        assert set(column(app, "coin")) == {"xmr"}
        assert "nosuch" not in shown(flows.query_one("#status"))
        # ... until enter asks for it
        await pilot.press("enter")
        assert "unknown field 'nosuch'" in shown(flows.query_one("#status"))


async def test_clicking_a_header_sorts_by_it() -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(40))
    async with app.run_test(size=(160, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        keys = [c.key for c in BASE_COLUMNS]
        x = sum(c.width + 1 for c in BASE_COLUMNS[: keys.index("packets")]) + 2
        await pilot.click("#table", offset=(x, 0))
        await until(pilot, lambda: app.flows_screen.sort_by == "packets")
        pkts = column(app, "packets")
        assert pkts == sorted(pkts, reverse=True)


async def test_enter_opens_the_detail_with_sparklines_and_reasons() -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(40))
    async with app.run_test(size=(100, 60)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        first = app.flows_screen.table.selected_uid()
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, FlowDetailScreen) and screen.uid == first
        assert screen.query(FeatureSparklines)
        assert "c2s_msg_bytes_median" in shown(screen.query_one("#features"))
        assert "STRATUM" in shown(screen.query_one("#stage0"))
        await pilot.press("escape")
        assert app.screen is app.flows_screen


async def test_help_lists_the_keys() -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(5))
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = shown(app.screen.query_one("#help-text"))
        for key in ("Probe", "Filter", "Confirm pool", "Export", "Quit", "ctrl+p", "Columns"):
            assert key in text
        # and what the columns say: every column the table can draw, the score first
        assert "What the columns say" in text
        assert "stage 1: probability the flow is mining" in text
        assert "STRATUM plaintext Stratum" in text and "no all-clear" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def blocking_loader(started: threading.Event) -> Any:
    """Yields one chunk, then waits (like a huge capture) until cancelled."""

    def run(path: Path, options: TriageOptions | None, *, cancel: threading.Event) -> Iterator[TriageUpdate]:
        rows, table = build_table(10)
        yield TriageUpdate(str(path), 10, 1000, 50, 10, rows=rows, table=_slice(table, 0, 10))
        started.set()
        cancel.wait(5000 * MS)
        yield TriageUpdate(str(path), 20, 1000, 60, 10)

    return run


async def test_quit_asks_while_a_load_runs_and_cancel_keeps_rows() -> None:
    started = threading.Event()
    messages: list[Message] = []
    app = MinerscopeApp([Path("big.pcapng")], loader=blocking_loader(started))
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        started.wait(2000 * MS)
        await pilot.pause()
        assert app.flows_screen.table.row_count == 10  # partial results are on screen
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("n")
        assert app.screen is app.flows_screen
        await pilot.press("x")
        await app.workers.wait_for_complete()
        await pilot.pause()
        finished = [m for m in messages if isinstance(m, LoadFinished)]
        assert finished and finished[-1].cancelled
        assert app.flows_screen.table.row_count == 10
        await pilot.press("q")
        assert not isinstance(app.screen, QuitScreen)
    assert app.return_code == 0


async def test_at_80_columns_the_flow_count_stays_visible_while_a_long_path_loads() -> None:
    started = threading.Event()
    deep = Path("/cases/2026/incident-4711/gateway-captures/monday/eth0-span-port-full.pcapng")
    app = MinerscopeApp([deep], loader=blocking_loader(started))
    async with app.run_test(size=(80, 24)) as pilot:
        started.wait(2000 * MS)
        await pilot.pause()
        status = app.flows_screen.query_one("#status")
        text = shown(status).rstrip()
        assert text.startswith("loading 1%") and "10 of 10 flows" in text, text
        assert text.index("10 of 10 flows") + len("10 of 10 flows") <= status.size.width, (text, status.size)
        assert text.endswith(deep.name) and str(deep.parent) not in text
        await pilot.press("x")
        await app.workers.wait_for_complete()


async def test_an_unreadable_capture_is_reported_not_empty(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not a capture\n")
    messages: list[Message] = []
    app = MinerscopeApp([bogus])  # the real triage pipeline
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        failed = [m for m in messages if isinstance(m, LoadFailed)]
        assert len(failed) == 1 and failed[0].path == "notes.txt"
        assert failed[0].error in shown(app.flows_screen.query_one("#status"))


async def test_packets_left_out_of_a_whole_capture_are_told_apart_from_damage(tmp_path: Path) -> None:
    whole = write_pcapng_with_usb(tmp_path / "with-usb.pcapng")
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(whole.read_bytes()[:-30])
    for path, title, text in (
        (whole, "packets left out", "1 packet of link type 189 (USB_LINUX)"),
        (cut, "capture damaged", "damaged at byte"),
    ):
        messages: list[Message] = []
        app = MinerscopeApp([path])  # the real triage pipeline
        async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            (finished,) = [m for m in messages if isinstance(m, LoadFinished)]
            assert finished.damaged == (path == cut) and text in finished.warning
            assert [n.title for n in app._notifications] == [title]
            status = shown(app.flows_screen.query_one("#status"))
            assert status.startswith(f"{path.name}: ") and text in status
            assert str(path) not in status  # the name once, not the full path again


async def test_a_capture_problem_stays_on_the_status_line_after_clean_captures(tmp_path: Path) -> None:
    """The notices fade; the status line must not forget that one capture of several was
    damaged because a clean one finished after it."""
    whole = write_pcapng_with_usb(tmp_path / "with-usb.pcapng")
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(whole.read_bytes()[:-30])
    clean = write_pcap(
        tcp_session(50.0, ("10.1.0.2", 40000), ("203.0.113.7", 443), [(0, b"hi")]), tmp_path / "a.pcap"
    )
    app = MinerscopeApp([cut, whole, clean])  # the real triage pipeline, one capture after another
    async with app.run_test(size=(200, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.loads_done == 3
        status = shown(app.flows_screen.query_one("#status"))
        assert "1 more capture problem · with-usb.pcapng:" in status
        assert "1 packet of link type 189" in status


async def test_hostile_strings_render_as_literal_text() -> None:
    rows, table = build_table(3)
    evil = "[bold red]pwn[/bold red]\x1b[2J\u202eevil"
    rows = rows.with_columns(pl.lit(evil).alias("sni"), pl.lit(1.0).alias("p_mining"))

    def loader(
        path: Path, options: TriageOptions | None, *, cancel: threading.Event
    ) -> Iterator[TriageUpdate]:
        yield TriageUpdate(str(path), 1, 1, 1, 3, rows=rows, table=table, done=True)

    app = MinerscopeApp([Path("[red]evil\x1b[0m.pcap")], loader=loader)
    async with app.run_test(size=(160, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        cell = app.flows_screen.table.cells(0)[2]
        assert cell.plain.startswith("[bold red]pwn[/bold red]\\x1b[2J\\u202e")
        assert not cell.spans  # no markup was interpreted
        assert app.sub_title == "[red]evil\\x1b[0m.pcap"  # Header shows it as literal Content
        await pilot.press("enter")
        assert "[bold red]pwn[/bold red]\\x1b[2J" in shown(app.screen.query_one("#detail-title"))


def test_progress_messages_replace_each_other_per_capture() -> None:
    a1, a2 = LoadProgress("a", 1, 10, 1, 1), LoadProgress("a", 2, 10, 2, 1)
    b = LoadProgress("b", 1, 10, 1, 1)
    assert a2.can_replace(a1)
    assert not b.can_replace(a1)
    rows, table = build_table(2)
    assert not FlowsArrived("a", rows, table).can_replace(FlowsArrived("a", rows, table))


async def test_a_slow_start_is_explained_then_replaced_by_progress(monkeypatch: Any) -> None:
    """Nothing from the triage process for a while (a first run compiling its kernels): the
    status line says so instead of staying blank; the first progress report replaces it."""
    import minerscope.tui.app as app_module

    monkeypatch.setattr(app_module, "SLOW_START_S", 100 * MS)
    release = threading.Event()
    inner = layout_loader(12)

    def slow(
        path: Path, options: TriageOptions | None, *, cancel: threading.Event | None = None
    ) -> Iterator[TriageUpdate]:
        release.wait(10)
        yield from inner(path, options, cancel=cancel)

    app = MinerscopeApp([Path("slow.pcapng")], loader=slow)
    async with app.run_test(size=(120, 40)) as pilot:
        status = app.flows_screen.query_one("#status")
        await until(pilot, lambda: "first run compiles the pipeline" in shown(status))
        release.set()
        await app.workers.wait_for_complete()
        await until(pilot, lambda: app.flows_screen.table.row_count == 12)
        assert "first run" not in shown(status)


async def test_a_probe_nobody_answers_reads_unreachable_not_all_clear(tmp_path: Path) -> None:
    import socket

    from minerscope.tui.screens.probe import ProbeScreen

    with socket.socket() as s:  # a loopback port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(4), db_path=tmp_path / "case.sqlite")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("P")
        assert isinstance(app.screen, ProbeScreen)
        await pilot.press(*f"127.0.0.1:{port}", "enter")
        screen = app.screen
        await until(pilot, lambda: screen.verdict is not None, within=10_000 * MS)
        text = shown(screen.query_one("#verdict"))
        assert "endpoint unreachable" in text and "refused" in text and "no pool found" not in text
        assert app.session.probes[("127.0.0.1", port)] == "down"  # the flow table's word


@pytest.mark.parametrize("gone", ["#status", "#table"])
async def test_a_refresh_tick_while_the_app_closes_is_harmless(gone: str) -> None:
    """Closing removes the flow screen's widgets before its refresh timer stops; a tick in
    between (rows still pending) failed CI runs with NoMatches, for ``#status`` once and
    for the flow table another time."""
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(4))
    async with app.run_test(size=(120, 40)):
        await app.workers.wait_for_complete()
        await app.flows_screen.query_one(gone).remove()
        app._dirty = True
        app._flush_rows()  # what the timer does
        assert not app._dirty and app.flows_screen.matching == 4


async def test_a_flow_to_a_proxy_is_shown_and_probed_as_the_tunnels_target(tmp_path: Path) -> None:
    """The analyst probes the pool behind the proxy, and the table marks the flow by it."""
    import dataclasses

    from minerscope.emulate.pool import start_pool
    from minerscope.emulate.server import ThreadedServers
    from minerscope.tui.screens.probe import ProbeScreen

    with ThreadedServers() as lab:
        pool = lab.start(start_pool("xmrig", job_interval=0))
        plain = layout_loader(4, chunks=1)

        def proxied(
            path: Path, options: TriageOptions | None, *, cancel: Any = None
        ) -> Iterator[TriageUpdate]:
            for update in plain(path, options, cancel=cancel):
                assert update.rows is not None
                # every flow went to one SOCKS proxy; the first flow's tunnel led to the pool
                targets = [pool.target, ("pool.example", 443), ("", 0), ("", 0)]
                rows = update.rows.with_columns(
                    pl.lit("10.9.9.9").alias("dst"),
                    pl.lit(1080, dtype=pl.UInt16).alias("dport"),
                    pl.Series("proxy_host", [h for h, _ in targets]),
                    pl.Series("proxy_port", [p for _, p in targets], dtype=pl.UInt16),
                )
                yield dataclasses.replace(update, rows=rows)

        app = MinerscopeApp([Path("layout.pcapng")], loader=proxied, db_path=tmp_path / "case.sqlite")
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            uid = next(
                u for u in app.flows_screen.table.uids() if app.session.row(u)["proxy_host"] == pool.target[0]
            )
            app.open_flow(uid)
            await pilot.pause()
            header = shown(app.screen.query_one("#detail-title"))
            assert f"10.9.9.9:1080 (proxy) => {pool.target[0]}:{pool.target[1]}" in header, header
            await pilot.press("p")
            screen = app.screen
            assert isinstance(screen, ProbeScreen) and screen.target == pool.target
            await until(pilot, lambda: screen.verdict is not None, within=10_000 * MS)
            assert screen.verdict is not None and screen.verdict.is_pool
            assert app.session.probes == {pool.target: "pool"}
            statuses = dict(
                zip(app.session.rows["proxy_host"], app.session.rows["probe_status"], strict=True)
            )
            assert statuses == {pool.target[0]: "pool", "pool.example": "", "": ""}
