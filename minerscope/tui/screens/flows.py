"""The main screen: the ranked flow table, its filter bar, toggles and load progress.

The screen owns only view state (filter text, sort column, toggles) and asks the
session for the matching frame; loading, probing and the case file are the app's
business, reached through app actions so every key is also a command-palette entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Static

from minerscope.rowfilter import FilterError, RowFilter, parse_filter
from minerscope.tui.layout import load_layout, save_layout
from minerscope.tui.screens.columns import ColumnsScreen
from minerscope.tui.widgets.flow_table import BASE_COLUMNS, FlowTableView
from minerscope.untrusted import clean

if TYPE_CHECKING:
    from minerscope.tui.app import MinerscopeApp

SORT_CYCLE = ("p_mining", "bytes", "packets", "duration", "coin", "dst", "src", "first_seen")
"""Columns the ``s`` key steps through (any column can be sorted via its header)."""

FILTER_PAUSE_S = 0.3
"""Pause in typing after which the filter bar's text applies by itself (enter: at once).

Re-cutting 100,000 flows costs tens of milliseconds: done on every key it would make
typing stutter, done when the analyst pauses it does not, and the table still follows
the filter without an enter. Text that does not parse yet (``p>``) waits for more keys;
enter says what is wrong with it.
"""


class FlowsScreen(Screen[None]):
    """Flow table + filter bar + status line."""

    BINDINGS = [
        Binding("/", "focus_filter", "Filter"),
        Binding("p", "app.probe_selected", "Probe"),
        Binding("P", "app.probe_any", "Probe host", show=False),
        Binding("n", "app.note_selected", "Note"),
        Binding("N", "app.note_case", "Case note", show=False),
        Binding("d", "app.dismiss_selected", "Dismiss FP", show=False),
        Binding("u", "app.undismiss_selected", "Undismiss", show=False),
        Binding("b", "toggle_benign", "Hide benign"),
        Binding("c", "toggle_confirmed", "Hide confirmed", show=False),
        Binding("s", "cycle_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse", show=False),
        Binding("o", "app.show_pools", "Pools"),
        Binding("e", "app.export", "Export", show=False),
        Binding("x", "app.cancel_load", "Cancel load", show=False),
        Binding("C", "choose_columns", "Columns", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="flows")
        self.filter: RowFilter | None = None
        self.sort_by: str | None = None
        self.descending = True
        self.hide_benign = False
        self.hide_confirmed = False
        self.progress = ""
        self.progress_source = ""
        self.matching = 0
        self._typed_timer: Timer | None = None
        self.layout_note = ""

    @property
    def ms_app(self) -> MinerscopeApp:
        return cast("MinerscopeApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Input(
            placeholder="filter: p>0.9 coin=xmr port=443 text   (/ to focus, enter to apply)", id="filter"
        )
        layout, self.layout_note = load_layout()
        yield FlowTableView(layout, id="table")
        yield Static(id="status")
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        self.query_one(FlowTableView).focus()
        self.refresh_table()
        if self.layout_note:
            self.notify(self.layout_note, severity="warning", timeout=8)

    @property
    def table(self) -> FlowTableView:
        return self.query_one(FlowTableView)

    def refresh_table(self, *, quiet: bool = False) -> bool:
        """Re-cut the view from the session (after new rows, a filter, a sort or a toggle).

        False when the filter or sort cannot apply; the status line says why unless ``quiet``.
        """
        session = self.ms_app.session
        try:
            order = session.view_order(
                self.filter,
                sort_by=self.sort_by,
                descending=self.descending,
                hide_benign=self.hide_benign,
                hide_confirmed=self.hide_confirmed,
            )
        except FilterError as exc:
            if not quiet:
                self.set_status(str(exc), error=True)
            return False
        self.matching = len(order)
        try:
            table = self.query_one(FlowTableView)
        except NoMatches:  # the app is closing: its widgets go before the refresh timer stops
            return False
        table.show(session.rows, order, session.coins, self.sort_by or "p_mining")
        self.set_status()
        return True

    def set_status(self, message: str = "", *, error: bool = False) -> None:
        session = self.ms_app.session
        line = Text()
        if message:  # an error may be long (the filter's known fields): it wraps, not cut
            line.append(clean(message, 1500), style="bold red" if error else "")
        else:
            if self.progress:  # first, so it survives a narrow terminal
                line.append(self.progress, style="cyan")
                line.append(" · ")
            sort = self.sort_by or "suspicion"
            arrow = "↓" if self.descending or self.sort_by is None else "↑"
            line.append(f"{self.matching:,} of {session.count:,} flows")
            line.append(f" · sort {sort}{arrow}")
            toggles = [
                n for n, on_ in (("benign", self.hide_benign), ("confirmed", self.hide_confirmed)) if on_
            ]
            if toggles:
                line.append(" · hiding " + "+".join(toggles))
            if self.progress and self.progress_source:  # last: a long name may be cut, nothing else
                line.append(" · " + clean(self.progress_source, 200), style="cyan")
        try:
            status = self.query_one("#status", Static)
        except NoMatches:  # the app is closing: its widgets go before the refresh timer stops
            return
        status.set_class(bool(message), "message")
        status.update(line)

    def set_progress(self, text: str, source: str = "") -> None:
        """Show ``text`` first in the status line and ``source`` (the capture) at its end."""
        self.progress = text
        self.progress_source = source
        self.set_status()

    @on(Input.Changed, "#filter")
    def filter_typed(self, event: Input.Changed) -> None:
        """Apply the text once typing pauses (each key only restarts the wait)."""
        self._stop_typed_timer()
        text = event.value
        self._typed_timer = self.set_timer(FILTER_PAUSE_S, lambda: self._apply_typed(text))

    def _stop_typed_timer(self) -> None:
        if self._typed_timer is not None:
            self._typed_timer.stop()
            self._typed_timer = None

    def _apply_typed(self, text: str) -> None:
        self._typed_timer = None
        try:
            flt = parse_filter(text)
        except FilterError:
            return
        if flt != self.filter:
            previous, self.filter = self.filter, flt
            if not self.refresh_table(quiet=True):  # e.g. a field still being typed
                self.filter = previous

    @on(Input.Submitted, "#filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        self._stop_typed_timer()
        try:
            self.filter = parse_filter(event.value)
        except FilterError as exc:
            self.set_status(str(exc), error=True)
            return
        self.refresh_table()
        self.table.focus()

    @on(FlowTableView.RowSelected)
    def row_selected(self, event: FlowTableView.RowSelected) -> None:
        self.ms_app.open_flow(event.uid)

    @on(FlowTableView.HeaderSelected)
    def header_selected(self, event: FlowTableView.HeaderSelected) -> None:
        column = event.sort_column
        if self.sort_by == column:
            self.descending = not self.descending
        else:
            self.sort_by, self.descending = column, True
        self.refresh_table()

    def action_open_flow(self) -> None:
        uid = self.table.selected_uid()
        if uid is not None:
            self.ms_app.open_flow(uid)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        self.table.focus()

    def action_toggle_benign(self) -> None:
        self.hide_benign = not self.hide_benign
        self.refresh_table()

    def action_toggle_confirmed(self) -> None:
        self.hide_confirmed = not self.hide_confirmed
        self.refresh_table()

    def action_choose_columns(self) -> None:
        columns = self.ms_app.session.rows.columns
        self.app.push_screen(ColumnsScreen(self.table.column_layout, columns), self.set_columns)

    def set_columns(self, layout: tuple[str, ...] | None) -> None:
        """Show ``layout``'s columns (None: no change) and keep them for the next session."""
        if not layout:
            return
        self.table.column_layout = layout
        self.refresh_table()
        try:
            save_layout(layout)
        except OSError as exc:
            self.set_status(f"columns not kept for next time: {exc.strerror or exc}", error=True)

    def sort(self, column: str | None, descending: bool = True) -> None:
        """Sort by a frame column (None: suspicion order)."""
        self.sort_by, self.descending = column, descending
        self.refresh_table()

    def action_cycle_sort(self) -> None:
        current = self.sort_by or "p_mining"
        nxt = (
            SORT_CYCLE[(SORT_CYCLE.index(current) + 1) % len(SORT_CYCLE)]
            if current in SORT_CYCLE
            else "p_mining"
        )
        self.sort(nxt, descending=nxt not in ("coin", "dst", "src", "first_seen"))

    def action_reverse_sort(self) -> None:
        if self.sort_by is None:
            self.sort_by = "p_mining"
        self.descending = not self.descending
        self.refresh_table()


SORTABLE = tuple((c.sort_column, c.label) for c in BASE_COLUMNS)
"""(frame column, label) pairs offered as "Sort by" palette commands."""
