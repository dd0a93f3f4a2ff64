"""The column chooser: which flow-table columns show, and in what order.

termshark's users asked for configurable columns and saved layouts (#45, #54, #177); here
every column the table can draw is listed once, ticked when shown, in the order the table
will show them. The choice comes back to the flow screen, which applies it and keeps it
for the next session (:mod:`minerscope.tui.layout`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, SelectionList
from textual.widgets.selection_list import Selection

from minerscope.tui.widgets.flow_table import (
    CATALOGUE,
    COINS_KEY,
    DATA_PREFIX,
    DEFAULT_LAYOUT,
    column_title,
    extra_data_keys,
)


def listing(layout: tuple[str, ...], data_columns: Sequence[str] = ()) -> list[str]:
    """Every column key: the shown ones first, in ``layout`` order, then the others: the
    catalogue's, then any other column of the data (``data_columns``: the frame's names)."""
    every = [*CATALOGUE, COINS_KEY, *extra_data_keys(list(data_columns))]
    shown = [key for key in layout if key in every or key.startswith(DATA_PREFIX)]
    return [*shown, *(key for key in every if key not in layout)]


class ColumnsScreen(ModalScreen[tuple[str, ...] | None]):
    """Tick columns, move them; dismisses with the new layout (None on cancel)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "apply", "Apply and keep"),
        Binding("shift+up,K", "move(-1)", "Move up"),
        Binding("shift+down,J", "move(1)", "Move down"),
        Binding("ctrl+r", "defaults", "Default columns"),
    ]

    DEFAULT_CSS = """
    ColumnsScreen { align: center middle; }
    ColumnsScreen > Vertical { width: 90%; max-width: 60; height: 90%; border: thick $accent;
        background: $surface; padding: 0 1; }
    ColumnsScreen SelectionList { height: 1fr; }
    ColumnsScreen Horizontal { height: auto; }
    """

    def __init__(self, layout: tuple[str, ...], data_columns: list[str] | None = None) -> None:
        super().__init__(id="columns")
        self.data_columns = list(data_columns or [])
        self.order = listing(layout, self.data_columns)
        self.shown = set(layout)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Columns (space: show/hide; shift+up/down: move)", style="bold"))
            yield SelectionList[str](*self._selections(), id="column-list")
            with Horizontal():
                yield Button("Apply (ctrl+s)", id="apply", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    @property
    def choices(self) -> SelectionList[str]:
        return self.query_one("#column-list", SelectionList)

    def chosen(self) -> tuple[str, ...]:
        """The ticked columns, in list order."""
        ticked = set(self.choices.selected)
        return tuple(key for key in self.order if key in ticked)

    def _selections(self) -> list[Selection[str]]:
        return [Selection(column_title(key), key, key in self.shown) for key in self.order]

    def _redraw(self, highlighted: int) -> None:
        choices = self.choices
        choices.clear_options()
        choices.add_options(self._selections())
        choices.highlighted = highlighted

    def action_move(self, step: int) -> None:
        index = self.choices.highlighted
        if index is None or not 0 <= index + step < len(self.order):
            return
        self.shown = set(self.choices.selected)
        order = self.order
        order[index], order[index + step] = order[index + step], order[index]
        self._redraw(index + step)

    def action_defaults(self) -> None:
        self.order = listing(DEFAULT_LAYOUT, self.data_columns)
        self.shown = set(DEFAULT_LAYOUT)
        self._redraw(0)

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        layout = self.chosen()
        if not layout:  # an empty table would look like a lost capture
            self.notify("keep at least one column", severity="warning")
            return
        self.dismiss(layout)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
