"""Row output shared by the commands that print per-flow records (``scan``, ``live``).

One function per format so every command prints the same columns the same way:
JSONL (one object per line, the machine contract), CSV (through the formula guard) and
a Rich table for people (untrusted strings as ``Text``, never as markup).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from minerscope.probe.target import format_target
from minerscope.probe.verdict import UNREACHABLE
from minerscope.unscored import NOT_SCORED, unscored
from minerscope.untrusted import clean, csv_cell

if TYPE_CHECKING:  # polars only for the frame -> records conversion
    import polars as pl

RECORD_FIELDS: tuple[str, ...] = (
    "capture",
    "src",
    "sport",
    "dst",
    "dport",
    "proto",
    "first_seen",
    "last_seen",
    "packets",
    "bytes",
    "sni",
    "dns_names",
    "proxy_host",
    "proxy_port",
    "stage0",
    "p_mining",
    "stage1",
    "verdict",
    "coin",
    "coin_probs",
    "top_features",
    "window",
    "probe",
)
"""Fields of a per-flow record, in output order (JSONL keys, CSV columns). ``proxy_host`` and
``proxy_port`` name the tunnel's target when ``dst`` is an explicit proxy ("" and 0 otherwise)."""

SCAN_FIELDS: tuple[str, ...] = (*RECORD_FIELDS[: RECORD_FIELDS.index("probe")], "analyst", "probe")
"""Fields of a ``scan`` record: the per-flow record plus the analyst's decision on its endpoint
(``confirmed``, ``dismissed`` or "")."""

_JSON_COLUMNS = ("stage0", "coin_probs", "top_features", "probe")
RAW_JSON_COLUMNS = ("coin_probs", "top_features")
"""Text columns that triage writes as compact JSON exactly as :func:`json_line` would
write their values (see ``minerscope._pipeline.ROW_EXTRA_SCHEMA``): the JSONL writer
copies them through instead of parsing and re-encoding them."""


def _json_cell(name: str, value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value else ([] if name == "stage0" else None)
    if value is None and name == "stage0":
        return []
    return value


def _column_values(name: str, values: list[Any]) -> list[Any]:
    """One output field for a whole column (what :func:`row_to_record` does per cell)."""
    if name in _JSON_COLUMNS:
        return [_json_cell(name, v) for v in values]
    if name == "dns_names":
        return [[n for n in v.split(",") if n] if v else [] for v in values]
    if name == "p_mining":
        return [None if v is None else round(float(v), 6) for v in values]
    return values


def frame_to_records(rows: pl.DataFrame, fields: Sequence[str] = RECORD_FIELDS) -> list[dict[str, Any]]:
    """Every row of a rows frame as a JSON-ready record (same values as :func:`row_to_record`).

    Column by column: only ``fields`` are converted, each with one list comprehension,
    instead of a dict of every frame column per row; on a million-packet capture the
    per-row path cost as much as feature extraction. Fields the frame lacks are None.
    """
    if rows.height == 0:
        return []
    none = [None] * rows.height
    columns = [
        _column_values(name, rows.get_column(name).to_list()) if name in rows.columns else none
        for name in fields
    ]
    names = tuple(fields)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def row_to_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """Turn one rows-frame row (JSON columns as strings) into a JSON-ready record."""
    record: dict[str, Any] = {}
    for name in RECORD_FIELDS:
        value = row.get(name)
        if name in _JSON_COLUMNS:
            if isinstance(value, str):
                value = json.loads(value) if value else ([] if name == "stage0" else None)
            elif value is None and name == "stage0":
                value = []
        elif name == "dns_names":
            value = [n for n in (value or "").split(",") if n]
        elif name == "p_mining" and value is not None:
            value = round(float(value), 6)
        record[name] = value
    return record


_ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_STRICT = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode
_ENCODE_STR = json.encoder.encode_basestring_ascii  # the string encoder _STRICT uses


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON has no spelling for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_line(record: Mapping[str, Any]) -> str:
    """One record as strict JSON text (non-finite numbers as ``null``), no newline."""
    try:
        return _STRICT(record)
    except ValueError:  # a NaN somewhere: rare, so only then walk the record
        return _ENCODE(_finite(dict(record)))


def write_jsonl(records: Iterable[Mapping[str, Any]], out: IO[str] | None = None) -> None:
    """One JSON object per line; strings are left exact (JSON escaping makes them inert).

    The output is strict JSON: NaN or infinity (a feature value of an empty flow) is
    written as ``null``, so every line parses with any JSON reader, not only Python's.
    Lines are written in blocks, not one ``write`` each.
    """
    out = out if out is not None else sys.stdout
    block: list[str] = []
    for record in records:
        block.append(json_line(record))
        if len(block) >= 4096:
            out.write("\n".join(block) + "\n")
            block.clear()
    if block:
        out.write("\n".join(block) + "\n")
    out.flush()


JSONL_BLOCK_ROWS = 8_192
"""Rows turned into JSONL text at a time: bounds the text held besides the frame."""


def write_jsonl_frame(
    rows: pl.DataFrame, fields: Sequence[str] = RECORD_FIELDS, out: IO[str] | None = None
) -> None:
    """A rows frame as JSONL, byte for byte what ``write_jsonl(frame_to_records(rows, fields))``
    writes, built column by column.

    Per-record ``json`` encoding of the coin probabilities and top features, after
    parsing them back from text, cost as much as the model on busy captures. Here each
    field of a block becomes literal text and text columns spelled as ``json`` spells
    them (see :func:`_json_pieces`), and polars concatenates them into lines and the
    lines into one string: no Python object per line or per cell except for floats,
    whose spelling only ``float.__repr__`` is sure to give.
    """
    out = out if out is not None else sys.stdout
    if not fields:  # no field, no record (as frame_to_records)
        out.flush()
        return
    keys = [("{" if i == 0 else ",") + _STRICT(name) + ":" for i, name in enumerate(fields)]
    for start in range(0, rows.height, JSONL_BLOCK_ROWS):
        block = rows.slice(start, JSONL_BLOCK_ROWS)
        pieces: list[str | pl.Series] = []
        for key, name in zip(keys, fields, strict=True):
            pieces.append(key)
            pieces += _json_pieces(block.get_column(name), name) if name in block.columns else ["null"]
        pieces.append("}")
        out.write(_concat_lines(pieces, block.height) + "\n")
    out.flush()


def _concat_lines(pieces: list[str | pl.Series], height: int) -> str:
    """``height`` lines, line ``i`` the concatenation of each piece (a text, or a text
    column's row ``i``), joined by newlines."""
    import polars as pl

    columns: dict[str, pl.Series] = {}
    parts: list[pl.Expr] = []
    text = ""
    for piece in pieces:
        if isinstance(piece, str):
            text += piece  # adjacent texts make one literal
            continue
        if text:
            parts.append(pl.lit(text))
            text = ""
        name = f"c{len(columns)}"
        columns[name] = piece.alias(name)
        parts.append(pl.col(name))
    if text:
        parts.append(pl.lit(text))
    if not columns:  # every field literal: the same line height times
        return "\n".join([text] * height)
    return str(pl.DataFrame(columns).select(pl.concat_str(parts).str.join("\n")).item())


def _json_pieces(column: pl.Series, name: str) -> list[str | pl.Series]:
    """One field of every row as text pieces (see :func:`_concat_lines`): the quotes
    around strings that need no escaping, and integer and raw JSON columns without
    nulls, are used as they are rather than copied into a new text column."""
    import polars as pl

    if column.dtype == pl.String and column.len() > 1 and column.n_unique() == 1:
        # one value all block long (the capture, a quiet capture's verdict): encode it once
        return [_json_column(column.head(1), name).item()]
    if column.null_count() == 0:
        if column.dtype == pl.String and name in RAW_JSON_COLUMNS:
            if not (column.str.len_bytes() == 0).any():
                return [column]
        elif column.dtype == pl.String and name not in _JSON_COLUMNS and name != "dns_names":
            if not column.str.contains(_JSON_ESCAPED).any():
                return ['"', column, '"']
        elif column.dtype.is_integer() and name != "p_mining":
            return [column.cast(pl.String)]  # polars spells integers as Python does
    return [_json_column(column, name)]


def _json_column(column: pl.Series, name: str) -> pl.Series:
    """One field of every row as a JSON text column without nulls, whatever the cells
    (nulls, strings that need escaping, non-finite floats): what :func:`_json_pieces`
    falls back to."""
    import polars as pl

    dtype = column.dtype
    text_cells = dtype in (pl.String, pl.Null)
    if name in RAW_JSON_COLUMNS and text_cells:  # already JSON; "" and null mean null
        text = column.cast(pl.String)
        return pl.select(pl.when(text.str.len_bytes() > 0).then(text).otherwise(pl.lit("null"))).to_series()
    if name in _JSON_COLUMNS or name == "dns_names":
        if not text_cells:
            return _texts([_json_value(v) for v in _column_values(name, column.to_list())])
        # mostly empty or repeated: encode each distinct text once
        return _json_distinct(column.cast(pl.String), lambda v: _json_value(_column_values(name, [v])[0]))
    if dtype == pl.Null:
        return pl.repeat("null", column.len(), dtype=pl.String, eager=True)
    if dtype == pl.String:
        return _json_strings(column)
    if dtype.is_integer() and name != "p_mining":
        return column.cast(pl.String).fill_null("null")  # polars spells integers as Python does
    if dtype.is_float() or (name == "p_mining" and dtype.is_numeric()):
        return _json_floats(column, rounded=name == "p_mining")
    return _texts([_json_value(v) for v in column.to_list()])


_JSON_ESCAPED = r"[^ !#-\[\]-~]"
"""A character ``encode_basestring_ascii`` escapes: anything but printable ASCII, ``"`` and ``\\``."""


def _json_strings(column: pl.Series) -> pl.Series:
    """Strings as :data:`_ENCODE_STR` writes them, null as ``null``.

    A string of printable ASCII other than ``"`` and ``\\`` is written unchanged between
    quotes, which polars can do for the whole column; only the distinct other strings
    (non-ASCII names, control characters) go through the Python encoder.
    """
    import polars as pl

    escaped = column.str.contains(_JSON_ESCAPED)
    quoted = pl.concat_str([pl.lit('"'), column, pl.lit('"')])
    if not escaped.any():
        return pl.select(quoted.fill_null("null")).to_series()
    others = column.filter(escaped).unique()
    encoded = column.replace_strict(others, [_ENCODE_STR(v) for v in others.to_list()], default=None)
    return pl.select(pl.when(escaped).then(encoded).otherwise(quoted).fill_null("null")).to_series()


def _json_distinct(column: pl.Series, encode: Callable[[str | None], str]) -> pl.Series:
    """A text column encoded by ``encode`` once per distinct value (null included)."""
    import polars as pl

    distinct = column.drop_nulls().unique()
    texts = column.replace_strict(distinct, [encode(v) for v in distinct.to_list()], return_dtype=pl.String)
    return texts.fill_null(encode(None))


def _json_floats(column: pl.Series, *, rounded: bool) -> pl.Series:
    """A numeric column as ``json`` writes its floats, null and non-finite as ``null``;
    ``rounded`` first rounds to 6 places as :func:`frame_to_records` does to ``p_mining``.

    Spelled by :func:`minerscope.jsonfloat.distinct_json_numbers` (``float.__repr__``, each
    distinct value once: probabilities repeat, more so once rounded) and gathered back into
    rows by polars. Nulls become NaN on the way to numpy, so they print ``null`` too.
    """
    import polars as pl

    from minerscope.jsonfloat import distinct_json_numbers  # numpy: only once a frame is printed

    values = column.cast(pl.Float64).to_numpy()
    texts, index = distinct_json_numbers(values, digits=6 if rounded else None)
    return _texts(texts).gather(index)


def _texts(values: list[str]) -> pl.Series:
    """Python texts as a polars text column (for :func:`_concat_lines`)."""
    import polars as pl

    return pl.Series(values, dtype=pl.String)


def _json_value(value: Any) -> str:
    """One JSON-ready value as :func:`json_line` would write it inside a record."""
    try:
        return _STRICT(value)
    except ValueError:  # a NaN somewhere
        return _ENCODE(_finite(value))


def write_csv(
    records: Iterable[Mapping[str, Any]],
    out: IO[str] | None = None,
    fields: Sequence[str] = RECORD_FIELDS,
    *,
    header: bool = True,
) -> None:
    """CSV (with a header row unless ``header`` is False, for a continued stream); every
    cell goes through :func:`minerscope.untrusted.csv_cell`."""
    out = out if out is not None else sys.stdout
    writer = csv.writer(out)
    if header:
        writer.writerow(fields)
    for record in records:
        writer.writerow([_csv_text(record.get(name)) for name in fields])
    out.flush()


def write_csv_frame(
    rows: pl.DataFrame,
    fields: Sequence[str] = RECORD_FIELDS,
    out: IO[str] | None = None,
    *,
    header: bool = True,
) -> None:
    """:func:`write_csv` of ``frame_to_records(rows, fields)``, the same bytes, built column
    by column: each distinct text of a column is converted and guarded once, numbers are
    spelled directly (the record path cost 2.5 s for a 56 k-flow capture, 5x the JSONL)."""
    out = out if out is not None else sys.stdout
    writer = csv.writer(out)
    if header:
        writer.writerow(fields)
    n = rows.height
    if n:
        columns = [
            _csv_column(name, rows.get_column(name)) if name in rows.columns else [""] * n for name in fields
        ]
        writer.writerows(zip(*columns, strict=True))
    out.flush()


def _csv_column(name: str, column: pl.Series) -> list[str]:
    """One field's CSV cells for a whole column, as :func:`write_csv` spells each value."""
    values = column.to_list()
    if column.dtype.is_numeric() and name != "p_mining":
        # str() of a number is what csv_cell makes of it (no unsafe character; a leading
        # "-" belongs to a number, which the formula guard leaves alone)
        return ["" if v is None else str(v) for v in values]
    memo: dict[Any, str] = {}
    cells = []
    for v in values:
        key = (type(v), repr(v)) if isinstance(v, float) else v  # -0.0 is not 0.0 here
        cell = memo.get(key)
        if cell is None:
            cell = memo[key] = _csv_text(_column_values(name, [v])[0])
        cells.append(cell)
    return cells


def _csv_text(value: Any) -> str:
    """One value as :func:`write_csv` writes it."""
    if isinstance(value, list | dict):
        value = json.dumps(value, separators=(",", ":"))
    return csv_cell("" if value is None else value)


TABLE_HEADERS = ("client", "server", "name", "pkts", "p_mining", "verdict", "coin", "stage 0", "probe")


def _probe_cell(probe: Mapping[str, Any]) -> str:
    """A flow's probe outcome in a word or two: checked and a pool, a mining service
    identified but not confirmed (``daemon? (auth required)``, ``possible pool (sv2)``),
    checked and no pool, could not be checked, or not probed (out of scope), from its
    ``probe`` summary."""
    from minerscope.probe.verdict import identified_label  # (a leaf module, no I/O stack)

    if not probe:
        return ""
    if probe.get("is_pool"):
        return f"pool ({probe.get('dialect')})"  # (cleaned with the other cells)
    if probe.get("is_pool") is None:
        return "not probed"
    if str(probe.get("error") or "").startswith(UNREACHABLE):
        return UNREACHABLE
    if probe.get("label"):
        return str(probe["label"])
    if probe.get("outcome") in ("success", "error") and probe.get("dialect"):  # (a summary without label)
        return identified_label(str(probe["dialect"]))
    return "not a pool"


def proxied_name(row: Mapping[str, Any]) -> str:
    """A table's name cell for a flow to a proxy: its SNI, if any, and where the tunnel led
    (the flow's DNS names name the proxy)."""
    from minerscope.flows.records import server_endpoint  # (output loads no polars until asked)

    return f"{row.get('sni') or ''} via proxy to {format_target(*server_endpoint(row))}".lstrip()


def _table_cells(record: Mapping[str, Any]) -> tuple[str, ...]:
    """One record's table cells as plain text, untrusted parts cleaned."""
    stage0 = record.get("stage0") or []
    badges = ",".join(sorted({str(e.get("kind", "")) for e in stage0 if isinstance(e, dict)}))
    probe_text = _probe_cell(record.get("probe") or {})
    name = record.get("sni") or ",".join(record.get("dns_names") or [])
    if record.get("proxy_host"):  # dst is a proxy: the name is the tunnel's target
        name = proxied_name(record)
    p = record.get("p_mining")
    return (
        clean(f"{record.get('src')}:{record.get('sport')}"),
        clean(f"{record.get('dst')}:{record.get('dport')}"),
        clean(name, 60),
        str(record.get("packets", "")),
        "" if p is None else NOT_SCORED if unscored(record) else f"{float(p):.3f}",
        # an analyst's dismissal outranks the verdict in a table for people (JSONL keeps both)
        "dismissed" if record.get("analyst") == "dismissed" else clean(str(record.get("verdict") or "")),
        clean(record.get("coin") or ""),
        clean(badges),
        clean(probe_text),
    )


def write_table(records: Sequence[Mapping[str, Any]], out: IO[str] | None = None, title: str = "") -> None:
    """A table for people: most suspicious first, untrusted text rendered inertly (cleaned,
    and never read as Rich markup)."""
    from minerscope.cli import plaintable

    out = out if out is not None else sys.stdout
    rows = [_table_cells(r) for r in records]
    title = clean(title)
    if plaintable.use_rich(out, len(rows)):
        from minerscope.cli.stdout import results_console

        _rich_table(results_console(file=out), rows, title)
    else:  # many rows (Rich took 28 s and 0.9 GB for 56 k flows), or a pipe or file
        plaintable.draw(
            out, TABLE_HEADERS, rows, title=title, max_width=plaintable.terminal_width(out), flexible=(2, 7)
        )


def _rich_table(console: Any, rows: list[tuple[str, ...]], title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title) if title else None, show_lines=False)
    for header in TABLE_HEADERS:
        table.add_column(header, no_wrap=header not in ("name", "stage 0"))
    for cells in rows:
        verdict = Text(cells[5], style="bold red" if cells[5] == "mining" else "")
        table.add_row(*(Text(c) for c in cells[:5]), verdict, *(Text(c) for c in cells[6:]))
    console.print(table)
