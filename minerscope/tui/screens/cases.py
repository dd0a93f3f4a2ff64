"""Case-file screens: pools and blacklist, the note editor, export, help and quit dialogs.

They display what the app read from the case file and return what the analyst typed
(dismiss values); the app performs the writes through the headless store, so these
screens stay free of SQL and file handling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Static,
    TextArea,
)

from minerscope.tui.textfmt import clean_lines
from minerscope.untrusted import clean


class PoolsScreen(Screen[None]):
    """Confirmed pools and blacklist indicators from the case file."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "note_pool", "Note on pool"),
        Binding("e", "app.export", "Export"),
        Binding("N", "app.note_case", "Case note"),
    ]

    DEFAULT_CSS = """
    PoolsScreen DataTable { height: 1fr; }
    PoolsScreen .section { text-style: bold; color: $accent; padding: 0 1; }
    """

    def __init__(
        self,
        pools: Sequence[dict[str, Any]] | None,
        blacklist: Sequence[dict[str, Any]] | None,
        notes: Sequence[str] | None = None,
    ) -> None:
        super().__init__(id="pools")
        self.pools = pools
        self.blacklist = blacklist
        self.notes = notes

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("Confirmed pools", classes="section")
        if self.pools is None:
            yield Static(Text("case file not available yet", style="yellow"))
        else:
            yield self._table("pools-table", self.pools)
        yield Static("Blacklist", classes="section")
        if self.blacklist is None:
            yield Static(Text("blacklist not available yet", style="yellow"))
        else:
            yield self._table("blacklist-table", self.blacklist)
        yield Static("Case notes", classes="section")
        if self.notes is None:
            yield Static(Text("case file not available yet", style="yellow"))
        else:
            yield Static(self._notes_text(self.notes), id="case-notes")
        yield Footer(compact=True)  # every key fits in 80 columns

    def action_note_pool(self) -> None:
        """Attach a note to the pool under the cursor (the app writes it)."""
        if not self.pools:
            return
        table = self.query_one("#pools-table", DataTable)
        pool = self.pools[min(table.cursor_row, len(self.pools) - 1)]
        from minerscope.tui.app import MinerscopeApp

        assert isinstance(self.app, MinerscopeApp)
        self.app.note_for_pool(pool)

    def show(
        self,
        pools: Sequence[dict[str, Any]] | None,
        blacklist: Sequence[dict[str, Any]] | None,
        notes: Sequence[str] | None,
    ) -> None:
        """Show the case file as it is now (after a note, a confirmation or a dismissal),
        keeping each table's cursor row."""
        self.pools, self.blacklist, self.notes = pools, blacklist, notes
        for widget_id, rows in (("pools-table", pools), ("blacklist-table", blacklist)):
            found = self.query(f"#{widget_id}").results(DataTable)
            table = next(found, None)
            if table is None or rows is None:
                continue
            cursor = table.cursor_row
            table.clear(columns=True)
            self._fill(table, rows)
            table.move_cursor(row=min(cursor, max(0, len(rows) - 1)))
        if notes is not None:
            for static in self.query("#case-notes").results(Static):
                static.update(self._notes_text(notes))

    @staticmethod
    def _notes_text(notes: Sequence[str]) -> Text:
        return Text("\n".join(clean_lines(n, 300) for n in notes[-8:]) or "no case notes")

    def _table(self, widget_id: str, rows: Sequence[dict[str, Any]]) -> DataTable[Text]:
        table: DataTable[Text] = DataTable(id=widget_id, cursor_type="row", zebra_stripes=True)
        self._fill(table, rows)
        return table

    @staticmethod
    def _fill(table: DataTable[Text], rows: Sequence[dict[str, Any]]) -> None:
        columns = list(rows[0]) if rows else ["(empty)"]
        for col in columns:
            table.add_column(Text(clean(col, 20)), key=col)
        for row in rows:
            table.add_row(*(Text(clean(row.get(c, ""), 60)) for c in columns))


@dataclass(frozen=True, slots=True)
class NoteRequest:
    """What a note is attached to: ``kind`` is ``flow``, ``pool`` or ``case``."""

    kind: str
    subject: str


class NoteEditor(ModalScreen[str | None]):
    """Write a note; dismisses with the text (None on cancel)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    DEFAULT_CSS = """
    NoteEditor { align: center middle; }
    NoteEditor > Vertical { width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 0 1; }
    NoteEditor TextArea { height: 8; }
    NoteEditor Horizontal { height: auto; }
    """

    def __init__(self, request: NoteRequest, existing: Sequence[str] = ()) -> None:
        super().__init__(id="note-editor")
        self.request = request
        self.existing = list(existing)

    def compose(self) -> ComposeResult:
        with Vertical():
            title = Text(f"Note on {self.request.kind}: ", style="bold")
            title.append(clean(self.request.subject, 80))
            yield Label(title)
            if self.existing:
                yield Static(Text("\n".join(clean_lines(n, 200) for n in self.existing[-3:]), style="dim"))
            yield TextArea(id="note-text")
            with Horizontal():
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        text = self.query_one(TextArea).text.strip()
        self.dismiss(text or None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


EXPORT_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("pools-csv", "Confirmed pools (CSV)", "minerscope-pools.csv"),
    ("pools-json", "Confirmed pools (JSON)", "minerscope-pools.json"),
    ("blacklist-plain", "Blacklist: one indicator per line", "minerscope-blacklist.txt"),
    ("blacklist-hosts", "Blacklist: hosts file", "minerscope-blacklist.hosts"),
    ("blacklist-csv", "Blacklist (CSV)", "minerscope-blacklist.csv"),
    ("blacklist-zeek", "Blacklist: Zeek intel", "minerscope-blacklist.zeek"),
    ("blacklist-suricata-iprep", "Blacklist: Suricata IP reputation", "minerscope-iprep.list"),
    ("blacklist-suricata-rules", "Blacklist: Suricata rules", "minerscope-blacklist.rules"),
)
"""Export choices: (key, label, default file name)."""


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """The analyst's export choice."""

    fmt: str
    path: str


class ExportScreen(ModalScreen[ExportRequest | None]):
    """Pick a format and a file; dismisses with the choice (None on cancel)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "export", "Export")]

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical { width: 90%; max-width: 80; height: auto; border: thick $accent;
        background: $surface; padding: 0 1; }
    ExportScreen Horizontal { height: auto; }
    """

    def __init__(self, directory: str, *, again: ExportRequest | None = None) -> None:
        """``again``: the choice to show instead of the defaults (asked again after the
        analyst declined to overwrite its file)."""
        super().__init__(id="export")
        self.directory = directory.rstrip("/")
        self.again = again

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Export", style="bold"))
            chosen = self.again.fmt if self.again is not None else EXPORT_FORMATS[0][0]
            with RadioSet(id="format"):
                for key, label, _ in EXPORT_FORMATS:
                    yield RadioButton(label, value=key == chosen, id=key)
            path = self.again.path if self.again is not None else f"{self.directory}/{EXPORT_FORMATS[0][2]}"
            yield Input(value=path, id="path")
            with Horizontal():
                yield Button("Export (ctrl+s)", id="do-export", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(RadioSet).focus()

    @on(RadioSet.Changed)
    def format_changed(self, event: RadioSet.Changed) -> None:
        key = event.pressed.id or ""
        for fmt, _, filename in EXPORT_FORMATS:
            if fmt == key:
                self.query_one("#path", Input).value = f"{self.directory}/{filename}"

    def selected_format(self) -> str:
        pressed = self.query_one(RadioSet).pressed_button
        return pressed.id if pressed is not None and pressed.id else EXPORT_FORMATS[0][0]

    @on(Button.Pressed, "#do-export")
    @on(Input.Submitted, "#path")
    def action_export(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if path:
            self.dismiss(ExportRequest(self.selected_format(), path))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key of the workstation, screen by screen."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "app.pop_screen", "Close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 90; height: 90%; border: thick $accent;
        background: $surface; padding: 0 1; }
    """

    def __init__(self, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
        super().__init__(id="help")
        self.sections = sections

    def compose(self) -> ComposeResult:
        text = Text()
        for title, keys in self.sections:
            text.append(f"{title}\n", style="bold underline")
            for key, description in keys:
                text.append(f"  {key:<16} ", style="bold cyan")
                text.append(f"{description}\n")
            text.append("\n")
        text.append("ctrl+p opens the command palette: every action is there too.", style="dim")
        # Focused and scrollable: at 80x24 most of the list is below the fold, and
        # up/down/page keys must reach it without a mouse.
        with VerticalScroll(id="help-body"):
            yield Static(text, id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()


class AskScreen(ModalScreen[bool]):
    """A yes/no question before an action that sends traffic, overwrites or undoes analyst work.

    Dismisses True for yes. The question may name hostile strings (an SNI, a file name):
    callers pass them through ``clean``, and it is shown as ``Text``, never as markup.
    """

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    DEFAULT_CSS = """
    AskScreen { align: center middle; }
    AskScreen > Vertical { width: 90%; max-width: 80; height: auto; border: thick $warning;
        background: $surface; padding: 0 1; }
    AskScreen Horizontal { height: auto; }
    AskScreen #question { width: 100%; }
    """

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No", id: str = "ask") -> None:
        super().__init__(id=id)
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question), id="question")
            with Horizontal():
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button(f"{self.no} (n)", id="no")

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class QuitScreen(AskScreen):
    """Asked before quitting while a load or a probe is still running."""

    DEFAULT_CSS = """
    QuitScreen > Vertical { width: 60; border: thick $error; }
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is still running. Quit anyway?", yes="Quit", no="Stay", id="quit")
