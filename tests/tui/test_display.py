"""What the screens write: cut cells marked as cut, IPv6 endpoints bracketed, sparkline
ranges stated, filter errors readable in full, and the table's column names as filter fields."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.text import Text
from textual.widgets import Static

from minerscope.triage import TriageOptions, TriageUpdate
from minerscope.tui.app import MinerscopeApp
from minerscope.tui.screens.flow_detail import header_text
from minerscope.tui.widgets.feature_sparklines import FeatureSparklines, range_text
from minerscope.tui.widgets.flow_table import BASE_COLUMNS, ELLIPSIS, _fit
from tests.tui.conftest import build_table, layout_loader
from tests.tui.test_app import column, shown

LONG_NAME = "xmr-eu1.hashvault-lab.example.org"
V6 = "fe80::2e7e:81ff:feb0:4aa1"


def loader_with(rows: pl.DataFrame, table: object) -> object:
    def run(path: Path, options: TriageOptions | None, *, cancel: threading.Event) -> Iterator[TriageUpdate]:
        yield TriageUpdate(str(path), 1, 1, 1, rows.height, rows=rows, table=table, done=True)  # type: ignore[arg-type]

    return run


def test_a_cut_cell_ends_with_an_ellipsis() -> None:
    server = next(c for c in BASE_COLUMNS if c.key == "server")
    plain, _ = _fit(Text(LONG_NAME), server.width)
    assert len(plain) == server.width and plain.endswith(ELLIPSIS)
    assert plain[:-1] == LONG_NAME[: server.width - 1]
    client = next(c for c in BASE_COLUMNS if c.key == "client")
    plain, _ = _fit(Text(V6), client.width)
    assert plain.endswith(ELLIPSIS) and plain != V6[: client.width]
    assert _fit(Text("10.0.0.1"), client.width)[0] == "10.0.0.1".ljust(client.width)  # fits: as it is
    assert _fit(Text("1234567", justify="right"), 4)[0] == "123" + ELLIPSIS
    assert _fit(Text("12", justify="right"), 4)[0] == "  12"


async def test_the_table_draws_cut_names_and_addresses_with_an_ellipsis() -> None:
    rows, table = build_table(2)
    rows = rows.with_columns(
        pl.Series("sni", [LONG_NAME, ""]),
        pl.Series("dns_names", ["", ""]),
        pl.Series("src", [V6, V6]),
        pl.Series("dst", ["203.0.113.9", V6]),
        pl.Series("p_mining", [0.99, 0.98]),
    )
    app = MinerscopeApp([Path("v6.pcapng")], loader=loader_with(rows, table))  # type: ignore[arg-type]
    async with app.run_test(size=(200, 20)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        view = app.flows_screen.table
        first, second = view.render_line(1).text, view.render_line(2).text
        assert LONG_NAME[:25] + ELLIPSIS in first  # the server column, 26 wide
        assert V6[:14] + ELLIPSIS in first  # the client column, 15 wide
        assert V6[:25] + ELLIPSIS not in second and V6 in second  # 25 characters fit the server column


def test_the_detail_header_brackets_ipv6_endpoints() -> None:
    row = {"src": V6, "sport": 0, "dst": "ff02::1", "dport": 0}
    assert header_text(row).plain == f"[{V6}]:0 -> [ff02::1]:0"
    row = {"src": "10.0.0.2", "sport": 40000, "dst": "203.0.113.9", "dport": 3333}
    assert header_text(row).plain == "10.0.0.2:40000 -> 203.0.113.9:3333"


def test_sparkline_labels_state_the_range_they_span() -> None:
    assert range_text([275.0, 276.0, 275.0]) == "n=3, min=275 max=276"
    assert range_text([276.0, 276.0]) == "n=2, flat at 276"
    assert range_text([0.0125, 0.5]) == "n=2, min=0.0125 max=0.5"
    assert range_text([]) == "n=0"


async def test_the_detail_sparkline_labels_carry_min_and_max() -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(4))
    async with app.run_test(size=(120, 60)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        labels = [shown(label) for label in app.screen.query_one(FeatureSparklines).query(".spark-label")]
        assert labels and all("min=" in t and "max=" in t or "flat at" in t for t in labels), labels


async def test_a_filter_error_is_readable_to_its_end_at_80_columns() -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(10))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("slash", *"nosuch=1", "enter")
        await pilot.pause()
        status = app.flows_screen.query_one("#status", Static)
        text = shown(status).strip()
        assert text.startswith("filter: unknown field 'nosuch' (known:") and text.endswith(")")
        console = Console(width=status.content_region.width, record=True, file=None)
        needed = len(console.render_lines(Text(shown(status).rstrip("\n")), console.options, pad=False))
        assert status.content_region.height >= needed > 1
        await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")  # cleared: one line again
        await pilot.pause()
        assert status.size.height == 1


async def test_server_and_client_are_filter_fields() -> None:
    app = MinerscopeApp([Path("layout.pcapng")], loader=layout_loader(10))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("slash", *"server~svc1", "enter")  # the server column shows the SNI
        assert column(app, "sni") == ["svc1.example.net"]
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"server=pool0.mine.test", "enter")  # a DNS name
        assert column(app, "dns_names") == ["pool0.mine.test"]
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"client=10.0.0.3", "enter")
        assert column(app, "src") == ["10.0.0.3"]
        assert "error" not in shown(app.flows_screen.query_one("#status"))


async def test_a_question_is_shown_to_its_end() -> None:
    """The probe and dismiss questions were cut off at the modal's edge ("... this se"):
    the analyst answered y/n without reading what the action does."""
    from textual.app import App

    from minerscope.tui.screens.cases import AskScreen

    question = (
        "probe 127.20.0.7:443? it is outside the probe scope (127.20.0.9/32); this sends traffic "
        "to it, and the end of this sentence must be on the screen: LAST-WORDS"
    )

    class Asking(App[None]):
        def on_mount(self) -> None:
            self.push_screen(AskScreen(question))

    app = Asking()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        label = app.screen.query_one("#question")
        assert label.size.height >= 2  # wrapped, not clipped to one line
        assert label.region.right <= app.screen.size.width
        assert "LAST-WORDS" in str(label.render())
