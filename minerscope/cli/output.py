"""Row output shared by the commands that print per-flow records (``scan``, ``live``).

One function per format so every command prints the same columns the same way:
JSONL (one object per line, the machine contract), CSV (through the formula guard) and
a Rich table for people (untrusted strings as ``Text``, never as markup).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from minerscope.untrusted import clean, csv_cell

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

_JSON_COLUMNS = ("stage0", "coin_probs", "top_features", "probe")


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


def write_jsonl(records: Iterable[Mapping[str, Any]], out: IO[str] | None = None) -> None:
    """One JSON object per line; strings are left exact (JSON escaping makes them inert)."""
    out = out if out is not None else sys.stdout
    for record in records:
        out.write(json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n")
    out.flush()


def write_csv(
    records: Iterable[Mapping[str, Any]], out: IO[str] | None = None, fields: Sequence[str] = RECORD_FIELDS
) -> None:
    """CSV with a header; every cell goes through :func:`minerscope.untrusted.csv_cell`."""
    out = out if out is not None else sys.stdout
    writer = csv.writer(out)
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
