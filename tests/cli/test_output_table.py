"""Tables drawn directly (scan, flows) are the tables Rich draws, character for character."""

from __future__ import annotations

import io
import json

from rich.cells import cell_len
from rich.console import Console

from minerscope import resources
from minerscope.cli import plaintable
from minerscope.cli.output import TABLE_HEADERS, _rich_table, _table_cells, write_table
from minerscope.triage import triage_rows


def _records() -> list[dict[str, object]]:
    """The bundled sample's records, plus hand-made ones with wide, markup-like and hostile text."""
    from minerscope.cli.output import SCAN_FIELDS, frame_to_records

    rows, _ = triage_rows(str(resources.sample_capture()))
    records = frame_to_records(rows, SCAN_FIELDS)
    base = dict(records[0])
    records += [
        {
            **base,
            "sni": "例え.テスト.example",
            "src": "2001:db8:ffff:ffff:ffff:ffff:ffff:fff1",
            "sport": 65535,
        },
        {**base, "sni": "[bold red]x[/] \x1b]52;c;AAAA\x07", "coin": "[link=x]y[/link]"},
        {**base, "sni": "", "dns_names": ["a.example", "b.example"], "p_mining": None},
        {
            **base,
            "stage0": [{"kind": "stratum"}, {"kind": "blacklist"}],
            "probe": {"is_pool": True, "dialect": "xmrig"},
            "verdict": "mining",
        },
        {**base, "probe": {"is_pool": False}},
    ]
    return records


def test_plain_drawing_is_richs_table_when_nothing_wraps() -> None:
    rows = [_table_cells(r) for r in _records()]
    assert len(rows) > 350
    for title in ("campus-gateway.pcapng", "", "a, b"):
        rich_out, plain_out = io.StringIO(), io.StringIO()
        _rich_table(Console(file=rich_out, width=1000), rows, title)
        plaintable.draw(plain_out, TABLE_HEADERS, rows, title=title)
        assert plain_out.getvalue() == rich_out.getvalue()
    assert "例え.テスト.example" in plain_out.getvalue()
    assert "[bold red]x[/]" in plain_out.getvalue() and "\x1b" not in plain_out.getvalue()


def test_piped_output_keeps_every_column_whole() -> None:
    """A pipe has no width to honour: the longest name stays on one line, whatever its length."""
    records = _records()
    long_name = "n" * 55 + ".example"
    records.append({**records[0], "sni": long_name, "dst": "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"})
    out = io.StringIO()
    write_table(records, out=out, title="t")
    lines = out.getvalue().splitlines()
    assert len(lines) == len(records) + 5  # title, top rule, header, rule, rows, bottom rule
    assert len({cell_len(line) for line in lines[1:]}) == 1  # every line the table's full width
    assert any(long_name[:50] in line for line in lines)  # (cut at 60 characters, on one line)
    header = lines[2]
    assert all(h in header for h in TABLE_HEADERS)
    assert json.dumps(records[0]["src"])[1:-1] in out.getvalue()


def test_unboxed_drawing_with_right_justified_columns_is_richs_too() -> None:
    """The ``flows`` style: no box, no outer padding, numbers right-justified."""
    from rich.table import Table
    from rich.text import Text

    rows = [_table_cells(r) for r in _records()]
    right = {3, 4}
    table = Table(box=None, pad_edge=False, show_edge=False)
    for i, header in enumerate(TABLE_HEADERS):
        table.add_column(header, justify="right" if i in right else "left")
    for cells in rows:
        table.add_row(*(Text(c) for c in cells))
    rich_out, plain_out = io.StringIO(), io.StringIO()
    Console(file=rich_out, width=1000).print(table)
    plaintable.draw(plain_out, TABLE_HEADERS, rows, boxed=False, right=right)
    assert plain_out.getvalue() == rich_out.getvalue()


def test_a_terminal_width_narrows_the_name_columns_only() -> None:
    """Long terminal tables are drawn directly too; they fit the window by cutting names
    (and stage-0 badges), never addresses."""
    records = _records()
    rows = [_table_cells(r) for r in records]
    for width in (160, 175):
        out = io.StringIO()
        plaintable.draw(out, TABLE_HEADERS, rows, title="t", max_width=width, flexible=(2, 7))
        lines = out.getvalue().splitlines()
        assert {cell_len(line) for line in lines[1:]} == {width}
        text = out.getvalue()
        assert "2001:db8:ffff:ffff:ffff:ffff:ffff:fff1:65535" in text  # addresses whole
        assert "…" in text and "例え" in text  # the wide-character name cut on a cell boundary
    narrow = io.StringIO()  # narrower than the fixed columns: drawn as narrow as it can be
    plaintable.draw(narrow, TABLE_HEADERS, rows, max_width=20, flexible=(2, 7))
    assert all(len(line.split("│")) in (1, len(TABLE_HEADERS) + 2) for line in narrow.getvalue().splitlines())


def test_an_unscored_flow_shows_no_probability() -> None:
    """The sample's flows without a window of the model's minimum of messages carry p_mining
    0.0 and no window: the table shows '-' for them (0.000 would read as a measurement)."""
    cells = {_table_cells(r)[4] for r in _records() if r["window"] is None and r["p_mining"] == 0.0}
    assert cells == {"-"}
    scored = [_table_cells(r)[4] for r in _records() if r["window"] is not None]
    assert scored and all(c.replace(".", "").isdigit() for c in scored)
