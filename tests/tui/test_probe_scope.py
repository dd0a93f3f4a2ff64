"""The probe key honours --scope/--deny: in scope it probes at once, outside it asks first
(naming the address), in --deny it refuses. Only 127.0.0.0/8 is ever contacted: "outside
the scope" is a loopback address excluded from a narrower scope, and a listening socket
there proves whether anything was sent."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from textual.message import Message

from minerscope.cli import main
from minerscope.emulate.pool import start_pool
from minerscope.emulate.server import ThreadedServers
from minerscope.probe.runner import ProbeOptions
from minerscope.probe.scope import LOOPBACK, Scope
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.messages import ProbeAttemptSeen, ProbeFinished
from minerscope.tui.probe_scope import ProbeAction, decide_probe
from minerscope.tui.screens.cases import AskScreen
from minerscope.tui.screens.probe import ProbeScreen
from tests.conftest import MS
from tests.tui.conftest import layout_loader
from tests.tui.test_app import shown, until

NARROW = Scope.for_capture(["127.20.0.9/32"], [])
OUTSIDE = "127.20.0.10"  # loopback, but not in NARROW


def test_decide_probe_follows_scope_and_deny() -> None:
    assert decide_probe(NARROW, "127.20.0.9", 3333).action is ProbeAction.PROBE
    ask = decide_probe(NARROW, OUTSIDE, 3333)
    assert ask.action is ProbeAction.ASK
    assert ask.message == (
        "probe 127.20.0.10:3333? it is outside the probe scope (127.20.0.9/32); this sends traffic to it"
    )
    assert ask.scope is not None and ask.scope.permits(OUTSIDE) and not ask.scope.permits("127.20.0.11")
    # the default scope is loopback, as scan --probe: a public address is asked about
    public = decide_probe(LOOPBACK, "94.23.199.191", 3333)
    assert public.action is ProbeAction.ASK
    assert public.message.startswith("probe 94.23.199.191:3333? it is outside the probe scope (127.0.0.0/8")
    v6 = decide_probe(LOOPBACK, "2001:db8::7", 443)
    assert v6.action is ProbeAction.ASK and "probe [2001:db8::7]:443?" in v6.message
    denied = Scope.for_capture(["127.0.0.0/8"], ["127.20.0.0/16"])
    refused = decide_probe(denied, "127.20.0.9", 3333)
    assert refused.action is ProbeAction.REFUSE and refused.scope is None
    assert "denied network 127.20.0.0/16" in refused.message
    assert decide_probe(LOOPBACK, "224.0.0.1", 5353).action is ProbeAction.REFUSE  # never, whatever the scope
    named = decide_probe(LOOPBACK, "pool.example", 443)
    assert named.action is ProbeAction.ASK and "host name" in named.message
    assert named.scope is not None and named.scope.allow is None  # the runner checks what it resolves to


@pytest.fixture
def outside_listener() -> Iterator[socket.socket]:
    """A listening socket on the out-of-scope loopback address: it records any connection."""
    with socket.socket() as listener:
        listener.bind((OUTSIDE, 0))
        listener.listen()
        listener.setblocking(False)
        yield listener


def connections(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


async def test_outside_the_scope_p_asks_and_no_sends_nothing(
    tmp_path: Path, outside_listener: socket.socket
) -> None:
    port = outside_listener.getsockname()[1]
    messages: list[Message] = []
    app = MinerscopeApp(
        [Path("layout.pcapng")], loader=layout_loader(4), db_path=tmp_path / "case.sqlite", probe_scope=NARROW
    )
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        await app.workers.wait_for_complete()
        app.push_screen(ProbeScreen((OUTSIDE, port)))  # what p on a flow to it opens
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        question = shown(app.screen.query_one("#question"))
        assert f"probe {OUTSIDE}:{port}? it is outside the probe scope (127.20.0.9/32)" in question
        await pilot.press("n")
        probe = app.screen
        assert isinstance(probe, ProbeScreen) and not probe.running
        assert "not probed" in shown(probe.query_one("#verdict"))
        await pilot.pause(200 * MS)
        await app.workers.wait_for_complete()
    assert connections(outside_listener) == 0
    assert not any(isinstance(m, ProbeAttemptSeen | ProbeFinished) for m in messages)
    assert (OUTSIDE, port) not in app.session.probes


async def test_outside_the_scope_yes_probes_that_address(tmp_path: Path) -> None:
    with ThreadedServers() as lab:
        pool = lab.start(start_pool("xmrig", host=OUTSIDE, port=0, job_interval=0))
        app = MinerscopeApp(
            [Path("layout.pcapng")],
            loader=layout_loader(4),
            db_path=tmp_path / "case.sqlite",
            probe_scope=NARROW,
        )
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            app.push_screen(ProbeScreen(pool.target))
            await pilot.pause()
            assert isinstance(app.screen, AskScreen)
            await pilot.press("y")
            screen = app.screen
            assert isinstance(screen, ProbeScreen)
            await until(pilot, lambda: screen.verdict is not None, within=10_000 * MS)
            assert screen.verdict is not None and screen.verdict.is_pool


async def test_inside_the_scope_p_probes_at_once_and_deny_refuses(
    tmp_path: Path, outside_listener: socket.socket
) -> None:
    port = outside_listener.getsockname()[1]
    wide = Scope.for_capture(["127.20.0.0/24"], [])
    app = MinerscopeApp(
        [Path("layout.pcapng")],
        loader=layout_loader(4),
        db_path=tmp_path / "case.sqlite",
        probe_scope=wide,
        probe_options=ProbeOptions(attempt_deadline=0.3, total_deadline=3.0),  # nothing answers
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.push_screen(ProbeScreen((OUTSIDE, port)))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProbeScreen)  # no question
        await until(pilot, lambda: connections(outside_listener) > 0, within=10_000 * MS)
        await until(pilot, lambda: screen.verdict is not None, within=30_000 * MS)
        await pilot.press("escape")
    connections(outside_listener)  # the attempts of that probe, every one accepted by now

    denied = Scope.for_capture(["127.20.0.0/24"], [f"{OUTSIDE}/32"])
    app = MinerscopeApp(
        [Path("layout.pcapng")], loader=layout_loader(4), db_path=tmp_path / "case.sqlite", probe_scope=denied
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.push_screen(ProbeScreen((OUTSIDE, port)))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProbeScreen) and not screen.running  # refused, not asked
        assert "denied network" in shown(screen.query_one("#verdict"))
        assert [n.title for n in app._notifications] == ["not probed"]
        await pilot.pause(200 * MS)
    assert connections(outside_listener) == 0


def test_open_and_live_tui_take_scope_and_deny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import minerscope.cli.tui_cmd as tui_cmd
    import minerscope.tui.offload as offload

    seen: list[Any] = []
    monkeypatch.setattr(tui_cmd, "run_workstation", lambda *a, **k: seen.append(k["probe_scope"]))
    monkeypatch.setattr(offload, "prestart", lambda *a, **k: None)
    capture = tmp_path / "a.pcap"
    capture.write_bytes(b"")
    db = ["--db", str(tmp_path / "case.sqlite")]
    runner = CliRunner()
    result = runner.invoke(
        main, [*db, "open", str(capture), "--scope", "127.20.0.9/32", "--deny", "127.20.0.8"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, [*db, "open", str(capture)])
    assert result.exit_code == 0, result.output
    assert seen == [Scope.for_capture(["127.20.0.9/32"], ["127.20.0.8"]), LOOPBACK]
    bad = runner.invoke(main, [*db, "open", str(capture), "--scope", "not-a-net"])
    assert bad.exit_code == 4 and "--scope 'not-a-net'" in bad.output

    import os

    fifo = tmp_path / "tap"
    os.mkfifo(fifo)
    result = runner.invoke(main, [*db, "live", "--tui", "-i", str(fifo), "--scope", "127.20.0.9/32"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == NARROW
