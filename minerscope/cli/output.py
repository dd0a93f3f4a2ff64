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
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

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
"""Fields of a per-flow record, in output order (JSONL keys, CSV columns)."""

SCAN_FIELDS: tuple[str, ...] = (*RECORD_FIELDS[: RECORD_FIELDS.index("probe")], "analyst", "probe")
"""Fields of a ``scan`` record: the per-flow record plus the analyst's decision on its endpoint
(``confirmed``, ``dismissed`` or "")."""

_JSON_COLUMNS = ("stage0", "coin_probs", "top_features", "probe")


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
        cells = []
        for name in fields:
            value = record.get(name)
            if isinstance(value, list | dict):
                value = json.dumps(value, separators=(",", ":"))
            cells.append(csv_cell("" if value is None else value))
        writer.writerow(cells)
    out.flush()


def write_table(records: Sequence[Mapping[str, Any]], out: IO[str] | None = None, title: str = "") -> None:
    """A Rich table for people: most suspicious first, untrusted text rendered inertly."""
    out = out if out is not None else sys.stdout
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(clean(title)) if title else None, show_lines=False)
    for header in ("client", "server", "name", "pkts", "p_mining", "verdict", "coin", "stage 0", "probe"):
        table.add_column(header, no_wrap=header not in ("name", "stage 0"))
    for record in records:
        stage0 = record.get("stage0") or []
        badges = ",".join(sorted({str(e.get("kind", "")) for e in stage0 if isinstance(e, dict)}))
        probe = record.get("probe") or {}
        probe_text = ""
        if probe:
            probe_text = f"pool ({probe.get('dialect')})" if probe.get("is_pool") else "not a pool"
        name = record.get("sni") or ",".join(record.get("dns_names") or [])
        p = record.get("p_mining")
        table.add_row(
            Text(f"{record.get('src')}:{record.get('sport')}"),
            Text(f"{record.get('dst')}:{record.get('dport')}"),
            Text(clean(name, 60)),
            str(record.get("packets", "")),
            "" if p is None else f"{float(p):.3f}",
            Text(
                str(record.get("verdict") or ""),
                style="bold red" if record.get("verdict") == "mining" else "",
            ),
            Text(clean(record.get("coin") or "")),
            Text(clean(badges)),
            Text(clean(probe_text)),
        )
    console = Console(file=out)
    if not console.is_terminal:  # piped: no terminal width to honour, keep every column whole
        console = Console(file=out, width=200)
    console.print(table)
