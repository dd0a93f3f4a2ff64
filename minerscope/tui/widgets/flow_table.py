"""The flow table: a virtual table over the session's frame, in an already computed order.

Sorting and filtering happen in polars over every loaded flow and yield only the uids
to show, in order (see :mod:`minerscope.tui.session`). This widget draws with Textual's
line API: it renders only the rows on screen, reading each from the frame by uid, and
caches them; column widths are fixed by the column spec instead of measured. Textual's
``DataTable`` measures and stores every cell of every row (about 2 ms per row here),
which makes re-sorting 100,000 flows take seconds; this widget's cost is the screenful,
whatever the count. Every string that came from the capture (addresses, SNI, DNS names, stage-0
evidence) becomes a ``rich.text.Text`` through :func:`minerscope.untrusted.clean`, so a
hostile SNI such as ``[blink]x`` or one carrying terminal escapes shows as literal text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from minerscope.timetext import utc_text
from minerscope.tui.session import (
    CAPTURE_ID,
    COIN_PREFIX,
    COLUMN_ALIASES,
    UID,
    badges,
    proxy_target,
    server_name,
)
from minerscope.unscored import NOT_SCORED, unscored
from minerscope.untrusted import clean

PROTO = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}


def human_bytes(value: float | None) -> str:
    """``1536`` -> ``1.5K``; keeps the bytes column four characters wide."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("", "K", "M", "G", "T"):
        if abs(size) < 1000 or unit == "T":
            return f"{size:.0f}{unit}" if unit == "" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}T"  # pragma: no cover


def _p_cell(row: dict[str, Any]) -> Text:
    p = row.get("p_mining")
    if p is None or unscored(row):
        return Text(NOT_SCORED, style="dim")
    style = "bold red" if p >= 0.9 else "yellow" if p >= 0.5 else ""
    return Text(f"{p:.2f}", style=style, justify="right")


def _server_cell(row: dict[str, Any]) -> Text:
    name = server_name(row)
    host = name or str(row.get("dst") or "")
    return Text(clean(host, 60))


def _badge_cell(row: dict[str, Any]) -> Text:
    labels = badges(row.get("stage0"))
    return Text(clean(" ".join(labels), 16), style="bold magenta" if labels else "")


_STATUS_STYLES = {
    "confirmed": "bold red",
    "pool": "bold red",
    "dismissed": "dim",
    "probing": "cyan",
    "down": "yellow",  # the probe found nothing listening: not checked, no all-clear
}


def _status_cell(key: str) -> Callable[[dict[str, Any]], Text]:
    def cell(row: dict[str, Any]) -> Text:
        value = str(row.get(key) or "")
        style = _STATUS_STYLES.get(value, "")
        return Text(clean(value, 12), style=style)

    return cell


def _text_cell(key: str, width: int = 24) -> Callable[[dict[str, Any]], Text]:
    return lambda row: Text(clean(row.get(key) or "", width))


def _num_cell(key: str, fmt: Callable[[Any], str]) -> Callable[[dict[str, Any]], Text]:
    return lambda row: Text(fmt(row.get(key)), justify="right")


def _value_text(value: Any) -> str:
    """A cell's text: "" for a missing value, floats to six significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _time_cell(key: str) -> Callable[[dict[str, Any]], Text]:
    return lambda row: Text(utc_text(row.get(key), " ").removesuffix("Z"))


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: key, label, frame column it sorts by, cell builder, width, and what
    it says (the help screen's legend: users of neighbouring tools ask what the score
    columns mean, RITA #751, and where the results are, zeek-cryptomining #3)."""

    key: str
    label: str
    sort_column: str
    cell: Callable[[dict[str, Any]], Text]
    width: int
    meaning: str = ""


BASE_COLUMNS: tuple[Column, ...] = (
    Column(
        "p",
        "p",
        "p_mining",
        _p_cell,
        4,
        "stage 1: probability the flow is mining (red >= 0.9, yellow >= 0.5; - not scored)",
    ),
    Column(
        "coin",
        "coin",
        "coin",
        _text_cell("coin", 6),
        4,
        "likeliest coin (for flows scored >= 0.01 or with stage-0 evidence)",
    ),
    Column(
        "server",
        "server",
        "dst",
        _server_cell,
        26,
        "the server: its SNI, DNS name or HTTP host when seen, else its address",
    ),
    Column("port", "port", "dport", _num_cell("dport", _value_text), 5, "server port"),
    Column(
        "badges",
        "stage0",
        "stage0",
        _badge_cell,
        7,
        "stage 0 evidence: BL blacklisted address or name, STRATUM plaintext Stratum",
    ),
    Column(
        "probe",
        "probe",
        "probe_status",
        _status_cell("probe_status"),
        7,
        "stage 2 this session: probing, pool, no pool, down (nothing answered: no all-clear), error",
    ),
    Column(
        "status",
        "status",
        "analyst_status",
        _status_cell("analyst_status"),
        9,
        "case file: confirmed pool, or dismissed as a false positive",
    ),
    Column("client", "client", "src", _text_cell("src", 40), 15, "client address"),
    Column(
        "proto",
        "proto",
        "proto",
        lambda r: Text(PROTO.get(r.get("proto") or 0, str(r.get("proto")))),
        5,
        "transport protocol",
    ),
    Column("packets", "pkts", "packets", _num_cell("packets", _value_text), 7, "packets, both directions"),
    Column(
        "bytes", "bytes", "bytes", _num_cell("bytes", human_bytes), 6, "bytes on the wire, both directions"
    ),
    Column(
        "duration",
        "dur s",
        "duration",
        _num_cell("duration", lambda v: "" if v is None else f"{v:.0f}"),
        6,
        "seconds from first to last packet (of the window, for a windowed flow)",
    ),
)
"""Columns before the per-coin probabilities, most telling first (so 80 columns show them)."""


EXTRA_COLUMNS: tuple[Column, ...] = (
    Column("sni", "sni", "sni", _text_cell("sni", 60), 24, "TLS server name from the ClientHello"),
    Column(
        "dns",
        "dns names",
        "dns_names",
        _text_cell("dns_names", 80),
        24,
        "names the capture's DNS answers gave the server's address",
    ),
    Column(
        "http_host",
        "http host",
        "http_host",
        _text_cell("http_host", 60),
        20,
        "Host header of plaintext HTTP or a WebSocket upgrade",
    ),
    Column(
        "proxy",
        "proxy target",
        "proxy_host",
        lambda row: Text(clean(proxy_target(row), 60)),
        22,
        "what a flow to an explicit proxy (SOCKS, HTTP) asked it for: the server it reached",
    ),
    Column("ja4", "ja4", "ja4", _text_cell("ja4", 40), 36, "JA4 fingerprint of the ClientHello"),
    Column("ja3", "ja3", "ja3", _text_cell("ja3", 40), 32, "JA3 fingerprint of the ClientHello"),
    Column("alpn", "alpn", "alpn", _text_cell("alpn", 20), 10, "protocols the client offered (ALPN)"),
    Column("tls", "tls", "tls_version", _text_cell("tls_version", 8), 7, "TLS version negotiated"),
    Column(
        "verdict",
        "verdict",
        "verdict",
        _text_cell("verdict", 8),
        7,
        "mining or benign, stages 0 and 1 together",
    ),
    Column(
        "end",
        "end",
        "end_reason",
        _text_cell("end_reason", 8),
        6,
        "how the flow ended: fin, rst, idle, active (cut at the window), eof",
    ),
    Column(
        "first_seen",
        "first seen (UTC)",
        "first_seen",
        _time_cell("first_seen"),
        19,
        "time of the first packet",
    ),
    Column(
        "last_seen", "last seen (UTC)", "last_seen", _time_cell("last_seen"), 19, "time of the last packet"
    ),
    Column(
        "c2s_packets",
        "c2s pkts",
        "c2s_packets",
        _num_cell("c2s_packets", _value_text),
        8,
        "packets client to server",
    ),
    Column(
        "s2c_packets",
        "s2c pkts",
        "s2c_packets",
        _num_cell("s2c_packets", _value_text),
        8,
        "packets server to client (0: nobody answered)",
    ),
    Column(
        "c2s_bytes", "c2s B", "c2s_bytes", _num_cell("c2s_bytes", human_bytes), 6, "bytes client to server"
    ),
    Column(
        "s2c_bytes", "s2c B", "s2c_bytes", _num_cell("s2c_bytes", human_bytes), 6, "bytes server to client"
    ),
    Column(
        "window",
        "win",
        "window",
        _num_cell("window", _value_text),
        4,
        "which feature window of the connection this row scores",
    ),
    Column(
        "capture", "capture", "capture", _text_cell("capture", 60), 20, "the capture file (or live interface)"
    ),
)
"""Columns the analyst can add from the column chooser (hidden by default): the handshake
names and fingerprints, direction counts, times, the window and the capture."""

COINS_KEY = "coins"
"""Layout key standing for the per-coin probability columns (one per coin the model knows)."""

DATA_PREFIX = "col:"
"""Layout keys ``col:NAME`` show the frame column NAME as it is: any column the catalogue
does not draw (termshark users asked for custom columns, #177), e.g. ``col:vlan``."""

NOT_SHOWN = frozenset({"top_features", "coin_probs"})
"""Frame columns that are JSON for the detail screen, not cells."""

NOT_OFFERED = NOT_SHOWN | {UID, CAPTURE_ID, *COLUMN_ALIASES}
"""Frame columns the chooser never offers as data columns (the JSON ones, the session's
internal row and capture numbers, and the filter's names for the server and client columns)."""


def data_column(name: str) -> Column:
    """The frame column ``name`` as a table column: numbers right-aligned, text inert."""

    def cell(row: dict[str, Any]) -> Text:
        value = row.get(name)
        if isinstance(value, bool):
            return Text("yes" if value else "no")
        if isinstance(value, int | float):
            return Text(_value_text(value), justify="right")
        return Text(clean(_value_text(value), 60))

    label = clean(name, 16)
    return Column(
        DATA_PREFIX + name, label, name, cell, max(len(label), 8), f"the data's {label} column, as it is"
    )


CATALOGUE: dict[str, Column] = {c.key: c for c in (*BASE_COLUMNS, *EXTRA_COLUMNS)}
"""Every column by key, in the order the chooser lists them."""

DEFAULT_LAYOUT: tuple[str, ...] = (*(c.key for c in BASE_COLUMNS), COINS_KEY)
"""The columns shown until the analyst chooses others."""


def column_title(key: str) -> str:
    """What the chooser calls a layout key."""
    if key == COINS_KEY:
        return "per-coin probabilities"
    if key.startswith(DATA_PREFIX):
        return f"{clean(key.removeprefix(DATA_PREFIX), 40)} (data column)"
    return CATALOGUE[key].label


def extra_data_keys(columns: list[str]) -> list[str]:
    """Layout keys for the frame ``columns`` no catalogue column draws (sorted)."""
    drawn = {c.sort_column for c in CATALOGUE.values()} | NOT_OFFERED
    return [
        DATA_PREFIX + name
        for name in sorted(columns)
        if name not in drawn and not name.startswith(COIN_PREFIX)
    ]


def layout_columns(layout: tuple[str, ...], coins: list[str]) -> list[Column]:
    """The columns of ``layout`` in its order, the coins' columns where ``coins`` stands;
    keys this version does not know are skipped."""
    columns: list[Column] = []
    for key in layout:
        if key == COINS_KEY:
            columns.extend(coin_column(c) for c in coins)
        elif key in CATALOGUE:
            columns.append(CATALOGUE[key])
        elif key.startswith(DATA_PREFIX) and key.removeprefix(DATA_PREFIX) not in NOT_OFFERED:
            columns.append(data_column(key.removeprefix(DATA_PREFIX)))
    return columns


def coin_column(coin: str) -> Column:
    """The probability column of one coin."""
    key = COIN_PREFIX + coin
    return Column(
        key,
        clean(coin, 5),
        key,
        _num_cell(key, lambda v: "" if v is None else f"{v:.2f}"),
        5,
        f"the coin model's probability for {clean(coin, 12)}",
    )


ELLIPSIS = "…"
"""Ends a cell cut to its column's width: a cut host name or address must not pass for a
different, valid one (``fe80::2e7e:81ff`` for ``fe80::2e7e:81ff:feb0:4aa1``)."""


def _fit(text: Text, width: int) -> tuple[str, str | Style]:
    """A cell's plain text cut/padded to ``width`` cells (right-justified numbers), and its
    style; a cut cell ends with :data:`ELLIPSIS`."""
    plain = text.plain
    if cell_len(plain) > width:
        plain = set_cell_size(plain, max(0, width - 1)) + ELLIPSIS if width > 0 else ""
    elif text.justify == "right":
        plain = plain.rjust(width)
    else:
        plain = set_cell_size(plain, width)
    return plain, text.style


class FlowTableView(ScrollView, can_focus=True):
    """Every row of the current view, drawn lazily; a row is identified by its session uid."""

    DEFAULT_CSS = """
    FlowTableView { height: 1fr; }
    FlowTableView > .flow-table--header { text-style: bold; background: $panel; }
    FlowTableView > .flow-table--cursor { background: $accent 50%; }
    FlowTableView:focus > .flow-table--cursor { background: $accent; color: $text; }
    FlowTableView > .flow-table--sorted { text-style: bold underline; background: $panel; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"flow-table--header", "flow-table--cursor", "flow-table--sorted"}

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor_row: reactive[int] = reactive(0)

    class RowSelected(Message):
        """Enter (or a click on the cursor row) on a flow."""

        def __init__(self, uid: int) -> None:
            super().__init__()
            self.uid = uid

    class HeaderSelected(Message):
        """A click on a column header; ``sort_column`` is the frame column behind it."""

        def __init__(self, column_key: str, sort_column: str) -> None:
            super().__init__()
            self.column_key = column_key
            self.sort_column = sort_column

    def __init__(self, column_layout: tuple[str, ...] = DEFAULT_LAYOUT, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns_spec: list[Column] = []
        self.column_layout = column_layout  # the analyst's column choice (layout keys)
        self.sorted_column: str | None = None
        self.cursor_moved = False  # until the analyst moves, the cursor stays on the top row
        self._frame: pl.DataFrame | None = None
        self._uids: list[int] = []
        self._cache: dict[int, list[tuple[str, str | Style]]] = {}
        self._styles: dict[str, Style] = {}

    # ---- data ---------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._uids)

    def show(
        self, rows: pl.DataFrame, order: pl.Series, coins: list[str], sorted_column: str | None = None
    ) -> None:
        """Show the rows of ``rows`` whose uids are in ``order``, in that order, keeping the cursor's flow.

        ``rows`` is every loaded flow, row ``uid`` being flow ``uid`` (the session's frame);
        ``order`` the filtered, sorted uids. Only the rows drawn are ever read from ``rows``.
        """
        keep = self.selected_uid() if self.cursor_moved else None
        self.columns_spec = layout_columns(self.column_layout, coins)
        self.sorted_column = sorted_column
        self._frame = rows.drop(sorted(NOT_SHOWN), strict=False)
        self._uids = order.to_list()
        self._cache.clear()
        width = sum(c.width + 1 for c in self.columns_spec)
        self.virtual_size = Size(width, len(self._uids) + 1)
        row = 0
        if keep is not None and self._uids:
            try:
                row = self._uids.index(keep)
            except ValueError:
                row = 0
        self.cursor_row = min(row, max(0, len(self._uids) - 1))
        self._scroll_cursor_into_view()
        self.refresh()

    def selected_uid(self) -> int | None:
        """Session uid of the flow under the cursor (None when the table is empty)."""
        if not self._uids:
            return None
        return self._uids[min(self.cursor_row, len(self._uids) - 1)]

    def uid_at(self, index: int) -> int:
        return self._uids[index]

    def uids(self) -> list[int]:
        """Uids in display order."""
        return list(self._uids)

    def cells(self, index: int) -> list[Text]:
        """The cells of row ``index`` as built (tests read them)."""
        assert self._frame is not None
        row = self._frame.row(self._uids[index], named=True)
        return [c.cell(row) for c in self.columns_spec]

    def sort_column_for(self, column_key: str) -> str | None:
        """The frame column a header sorts by."""
        for col in self.columns_spec:
            if col.key == column_key:
                return col.sort_column
        return None

    # ---- drawing ------------------------------------------------------------------
    def _style(self, style: str | Style) -> Style:
        if isinstance(style, Style):
            return style
        cached = self._styles.get(style)
        if cached is None:
            cached = self._styles[style] = Style.parse(style) if style else Style()
        return cached

    def _row_cells(self, index: int) -> list[tuple[str, str | Style]]:
        cached = self._cache.get(index)
        if cached is None:
            assert self._frame is not None
            row = self._frame.row(self._uids[index], named=True)
            cached = [_fit(c.cell(row), c.width) for c in self.columns_spec]
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[index] = cached
        return cached

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("flow-table--header")
            sorted_style = self.get_component_rich_style("flow-table--sorted")
            segments = []
            for col in self.columns_spec:
                style = sorted_style if col.sort_column == self.sorted_column else header
                segments.append(Segment(set_cell_size(col.label, col.width) + " ", base + style))
            return Strip(segments).crop_extend(scroll_x, scroll_x + width, base + header)
        index = scroll_y + y - 1
        if index >= len(self._uids):
            return Strip.blank(width, base)
        cursor = self.get_component_rich_style("flow-table--cursor") if index == self.cursor_row else None
        segments = []
        for text, cell_spec in self._row_cells(index):
            cell_style = base + self._style(cell_spec)
            if cursor is not None:
                cell_style = cell_style + cursor
            segments.append(Segment(text + " ", cell_style))
        fill = base + cursor if cursor is not None else base
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, fill)

    # ---- cursor and keys ----------------------------------------------------------------
    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh()

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False)

    def _move(self, row: int) -> None:
        if not self._uids:
            return
        self.cursor_moved = True
        self.cursor_row = max(0, min(len(self._uids) - 1, row))
        self._scroll_cursor_into_view()

    def action_cursor(self, delta: int) -> None:
        self._move(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._move(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_jump(self, row: int) -> None:
        self._move(row if row >= 0 else len(self._uids) - 1)

    def action_select(self) -> None:
        uid = self.selected_uid()
        if uid is not None:
            self.post_message(self.RowSelected(uid))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x + self.scroll_offset.x
            for col in self.columns_spec:
                if x < col.width + 1:
                    self.post_message(self.HeaderSelected(col.key, col.sort_column))
                    return
                x -= col.width + 1
            return
        row = self.scroll_offset.y + event.y - 1
        if row < len(self._uids):
            if row == self.cursor_row:
                self.action_select()
            self._move(row)
