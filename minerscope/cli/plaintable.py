"""Tables of many rows drawn directly, the same characters Rich draws when nothing wraps.

Rich lays out a table at ~0.5 ms a row: a 56 k-flow capture's ``scan`` table took 28 s
and 0.9 GB (ten times the scan itself), ``flows`` 32 s and 1 GB. For output to a pipe or
file (no width to honour, every column whole) and for very long tables, the commands
draw the same table here at ~1 µs a cell: the cells are already plain, cleaned text, so
all that is left is padding to the widest cell (by terminal cells: wide characters count
twice). Two of Rich's styles are covered, the ones the commands use:

* ``boxed``: ``box.HEAVY_HEAD`` with edges, one space of padding, title centred above;
* not boxed: ``box=None, pad_edge=False, show_edge=False`` (columns two spaces apart).

``tests/cli/test_output_table.py`` checks both against Rich, character for character.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import IO

RICH_TABLE_ROWS = 2_000
"""Up to this many rows a terminal gets Rich's table (wrapping to the window, colours);
more rows, or output to a pipe or file, are drawn here."""


def use_rich(out: IO[str], rows: int) -> bool:
    """Whether ``rows`` rows going to ``out`` are for Rich: a terminal, and not too many."""
    return out.isatty() and rows <= RICH_TABLE_ROWS


def terminal_width(out: IO[str]) -> int | None:
    """The width a table for ``out`` must fit: the terminal's, or None for a pipe or file
    (every column whole)."""
    import shutil

    return shutil.get_terminal_size().columns if out.isatty() else None


def draw(
    out: IO[str],
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str = "",
    boxed: bool = True,
    right: Collection[int] = (),
    max_width: int | None = None,
    flexible: Collection[int] = (),
) -> None:
    """Write the table: ``headers``, then ``rows`` (plain text cells), columns listed in
    ``right`` right-justified (header too), the others left-justified.

    With ``max_width`` (a terminal's), the ``flexible`` columns narrow, widest first and
    not below their header or 8 cells, until the table fits, and their longer cells end in
    "…" (where Rich would wrap them onto more lines). Without it nothing is cut.
    """
    from rich.cells import cell_len, set_cell_size

    lengths = [[cell_len(c) for c in cells] for cells in rows]
    widths = [cell_len(h) for h in headers]
    for sizes in lengths:
        widths = [max(w, n) for w, n in zip(widths, sizes, strict=True)]
    overflow = _width(widths, boxed) - max_width if max_width else 0
    floors = {i: max(8, cell_len(headers[i])) for i in flexible}
    narrowed = []
    while overflow > 0:
        room = [i for i in flexible if widths[i] > floors[i]]
        if not room:
            break  # the other columns alone are wider: the terminal wraps the lines
        i = max(room, key=lambda j: widths[j])
        cut = min(overflow, widths[i] - floors[i])
        widths[i] -= cut
        overflow -= cut
        narrowed.append(i)
    for i in sorted(set(narrowed)):
        rows = [
            [*c[:i], set_cell_size(c[i], widths[i] - 1) + "…", *c[i + 1 :]]
            if cell_len(c[i]) > widths[i]
            else c
            for c in rows
        ]
    if narrowed:
        lengths = [[cell_len(c) for c in cells] for cells in rows]

    def cell(text: str, size: int, column: int) -> str:
        fill = " " * (widths[column] - size)
        return fill + text if column in right else text + fill

    def line(cells: Sequence[str], sizes: Sequence[int], bar: str = "│") -> str:
        parts = [cell(c, n, i) for i, (c, n) in enumerate(zip(cells, sizes, strict=True))]
        if not boxed:
            return "  ".join(parts)
        return bar + bar.join(f" {p} " for p in parts) + bar

    def rule(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end

    header = line(headers, [cell_len(h) for h in headers], "┃")
    if title:
        total = cell_len(header)
        pad = max(0, total - cell_len(title))
        out.write(" " * (pad // 2) + title + " " * (pad - pad // 2) + "\n")
    if boxed:
        out.write(rule("┏", "━", "┳", "┓") + "\n")
    out.write(header + "\n")
    if boxed:
        out.write(rule("┡", "━", "╇", "┩") + "\n")
    out.writelines(line(cells, sizes) + "\n" for cells, sizes in zip(rows, lengths, strict=True))
    if boxed:
        out.write(rule("└", "─", "┴", "┘") + "\n")


def _width(widths: Sequence[int], boxed: bool) -> int:
    """Cells a line of the table takes."""
    if boxed:
        return sum(widths) + 3 * len(widths) + 1
    return sum(widths) + 2 * (len(widths) - 1)
