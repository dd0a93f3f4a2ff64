"""Widgets and dialogs on real records: probe attempts with hostile replies, palette, help."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text

from minerscope.errors import InputError
from minerscope.probe.target import format_target, parse_target
from minerscope.probe.verdict import DialectResult, Evidence, Outcome, ProbeAttempt, Transport, Verdict
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.screens.probe import verdict_text
from minerscope.tui.widgets.flow_table import human_bytes
from minerscope.tui.widgets.probe_log import ProbeLog, attempt_text
from tests.tui.conftest import layout_loader

HOSTILE = b'{"result":"[bold red]owned[/bold red] \x1b]52;c;ZWNobyBoaQ==\x07 \x1b[2J\xff"}\n'


def hostile_attempt() -> ProbeAttempt:
    result = DialectResult(
        "stratum1", Outcome.SUCCESS, 0.9, (Evidence("agent", "[link=x]y[/link]\x1b[31m"),), ""
    )
    return ProbeAttempt("stratum1", Transport.TCP, b'{"id":1}\n', HOSTILE, 0.0123, result)


def test_attempt_reply_is_shown_escaped_and_markup_free() -> None:
    text = attempt_text(hostile_attempt())
    assert isinstance(text, Text)
    assert "[bold red]owned[/bold red]" in text.plain
    assert "\x1b" not in text.plain and "\x07" not in text.plain
    assert "\\x1b]52;c;" in text.plain and "\\xff" in text.plain
    assert "12 ms" in text.plain and "success 0.90" in text.plain
    assert all("link" not in str(span.style) for span in text.spans)


def test_verdict_text_escapes_evidence() -> None:
    attempt = hostile_attempt()
    verdict = Verdict.from_attempts("127.0.0.1:3333", "127.0.0.1", 3333, [attempt])
    text = verdict_text(verdict)
    assert text.plain.startswith("POOL  stratum1/tcp")
    assert "agent=[link=x]y[/link]\\x1b[31m" in text.plain


async def test_probe_log_widget_renders_hostile_reply_literally() -> None:
    app = MinerscopeApp([Path("x.pcapng")], loader=layout_loader(2))
    async with app.run_test(size=(120, 30)) as pilot:
        log = ProbeLog()
        await app.screen.mount(log)
        log.add_attempt(hostile_attempt())
        await pilot.pause()
        rendered = "\n".join(strip.text for strip in log.lines)
        assert "[bold red]owned[/bold red]" in rendered
        assert "\x1b" not in rendered


def test_the_probe_screen_reads_targets_as_the_probe_command_does() -> None:
    assert parse_target("127.0.0.1:3333") == ("127.0.0.1", 3333)
    assert parse_target("[::1]:443") == ("::1", 443)
    assert parse_target(" pool.example:80 ") == ("pool.example", 80)
    assert parse_target("stratum+tcp://pool.example:3333") == ("pool.example", 3333)
    # the screen shows a flow's endpoint as text the analyst may edit and start again
    assert parse_target(format_target("2001:db8::5", 443)) == ("2001:db8::5", 443)
    for bad in ("127.0.0.1", "host:0", "host:70000", ":80", "host:x", "host:4\u00b2"):
        with pytest.raises(InputError, match="expected host:port"):
            parse_target(bad)


def test_human_bytes() -> None:
    assert [human_bytes(v) for v in (0, 999, 1536, 5 * 1024**3, None)] == ["0", "999", "1.5K", "5.0G", ""]


async def test_every_key_action_has_a_palette_entry() -> None:
    app = MinerscopeApp([Path("x.pcapng")], loader=layout_loader(10))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        titles = {c.title for c in app.get_system_commands(app.screen)}
    for wanted in (
        "Help: list keys",
        "Probe selected flow",
        "Probe host:port",
        "Note on selected flow",
        "Case note",
        "Dismiss selected flow",
        "Pools and blacklist",
        "Export",
        "Cancel loading",
        "Filter flows",
        "Toggle hide benign",
        "Toggle hide confirmed",
        "Sort by suspicion",
        "Reverse sort",
        "Sort by bytes",
        "Sort by xmr probability",
        "Quit",
    ):
        assert wanted in titles, wanted


async def test_case_actions_without_a_case_file_say_so() -> None:
    app = MinerscopeApp([Path("x.pcapng")], loader=layout_loader(10))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("n")
        assert app.screen is app.flows_screen  # no editor opened: nowhere to save
        assert any("no case file" in str(n.message) for n in app._notifications)


def test_the_detail_says_why_a_clearly_benign_flow_has_no_coin() -> None:
    from rich.console import Console

    from minerscope.tui.screens.flow_detail import score_table

    def shown(row: dict[str, object]) -> str:
        console = Console(width=200, record=True)
        console.print(score_table(row))
        return console.export_text()

    benign = shown({"p_mining": 0.0003, "verdict": "benign", "coin": None, "coin_probs": "{}"})
    assert "not estimated: clearly benign" in benign
    mining = shown(
        {"p_mining": 0.97, "verdict": "mining", "coin": "xmr", "coin_probs": '{"xmr":0.9,"btc":0.1}'}
    )
    assert "xmr 0.90  btc 0.10" in mining and "not estimated" not in mining
