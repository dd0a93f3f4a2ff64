"""``minerscope flows``: list the flows of captures with their cleartext metadata and stage-0 evidence.

A thin shell over :func:`minerscope.flows.assemble.assemble_capture` and
:func:`minerscope.prefilter.stage0.apply_stage0`. Data goes to stdout (a Rich table, JSON
lines or CSV), diagnostics to stderr. Every string that came out of a capture (SNI,
hosts, DNS names, even file names) is untrusted: it passes through
:func:`minerscope.untrusted.clean` and is rendered as ``rich.text.Text``, never as markup;
CSV cells go through :func:`minerscope.untrusted.csv_cell`.

Exit codes: 0 all captures read completely; 3 some capture was damaged (the flows cover
what could be read; the reader's one-line warning is on stderr); 4 some input was not a
capture, used an unsupported link type, or a blacklist file was malformed.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from minerscope import errors, untrusted
from minerscope.cli.common import (
    ExitCode,
    active_timeout_option,
    blacklist_option,
    bpf_option,
    captures_with_sample,
    error_line,
    exit_code_for,
    fail,
    idle_timeout_option,
    progress_wanted,
    reading_status,
    stderr_progress,
)
from minerscope.cli.output import proxied_name

FORMATS = ("table", "jsonl", "csv")

_TABLE_COLUMNS = (
    ("id", "flow_id"),
    ("proto", "proto"),
    ("client", "src"),
    ("server", "dst"),
    ("pkts", "packets"),
    ("bytes", "bytes"),
    ("dur s", "duration"),
    ("end", "end_reason"),
    ("name", "name"),
    ("ja4", "ja4"),
    ("stage0", "stage0"),
)


def _name_cell(row: dict[str, Any]) -> str:
    if row.get("proxy_host"):
        return proxied_name(row)
    for key in ("sni", "http_host", "dns_names"):
        if row.get(key):
            return str(row[key])
    return ""


def _badges(stage0: str) -> str:
    if not stage0:
        return ""
    try:
        items = json.loads(stage0)
    except ValueError:
        return "?"
    kinds = {"blacklist": "BL", "stratum": "STRATUM"}
    return " ".join(
        sorted({kinds.get(str(i.get("kind")), str(i.get("kind"))) for i in items if isinstance(i, dict)})
    )


_RIGHT = ("id", "pkts", "bytes", "dur s")


def _print_table(rows: list[dict[str, Any]]) -> None:
    cells = [_table_cells(row) for row in rows]
    headers = [title for title, _ in _TABLE_COLUMNS]
    from minerscope.cli import plaintable

    if not plaintable.use_rich(sys.stdout, len(cells)):  # pipes and files get full cells
        right = [i for i, h in enumerate(headers) if h in _RIGHT]
        flexible = [i for i, h in enumerate(headers) if h in ("name", "ja4", "stage0")]
        width = plaintable.terminal_width(sys.stdout)
        plaintable.draw(
            sys.stdout, headers, cells, boxed=False, right=right, max_width=width, flexible=flexible
        )
        return
    from rich.table import Table
    from rich.text import Text

    from minerscope.cli.stdout import results_console  # rich loads only when a table is printed

    table = Table(box=None, pad_edge=False, show_edge=False)
    for title in headers:
        table.add_column(title, justify="right" if title in _RIGHT else "left")
    for row in cells:
        table.add_row(*(Text(c) for c in row))
    results_console(soft_wrap=True).print(table)


def _table_cells(row: dict[str, Any]) -> list[str]:
    cells = {
        "flow_id": str(row["flow_id"]),
        "proto": {6: "tcp", 17: "udp"}.get(row["proto"], str(row["proto"])),
        "src": f"{row['src']}:{row['sport']}",
        "dst": f"{row['dst']}:{row['dport']}",
        "packets": str(row["packets"]),
        "bytes": str(row["bytes"]),
        "duration": f"{row['duration']:.1f}",
        "end_reason": row["end_reason"],
        "name": _name_cell(row),
        "ja4": row["ja4"],
        "stage0": _badges(row["stage0"]),
    }
    return [untrusted.clean(cells[key], 80) for _, key in _TABLE_COLUMNS]


def _bytes_read_bar(bar: Any, path: Path) -> Callable[[Any], None]:
    """A bar on ``bar`` (a :func:`~minerscope.cli.common.stderr_progress` display) for the
    bytes of ``path``; returns what the assembler calls after each batch."""
    from rich.markup import escape

    try:
        total: int | None = path.stat().st_size
    except OSError:
        total = None
    task = bar.add_task(escape(untrusted.clean(path.name, 60)), total=total)  # a file name is untrusted text
    return lambda report: bar.update(task, completed=report.bytes_read)


@click.command(name="flows")
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)
@blacklist_option("Indicator file (plain list, hosts file or CSV); repeatable.")
@idle_timeout_option
@active_timeout_option
@bpf_option
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def flows(
    captures: tuple[str, ...],
    fmt: str,
    blacklists: tuple[str, ...],
    idle_timeout: float,
    active_timeout: float | None,
    bpf: str | None,
    quiet: bool,
) -> None:
    """List the flows of CAPTURES (pcap/pcapng files, compressed ok, or directories searched for them) with TLS/DNS/HTTP metadata.

    CAPTURE may be ``sample`` for the bundled demo capture (its sample blacklist is then
    applied too), or ``-`` for a capture piped in. Exit status 3 means a capture was damaged and only the part before the
    damage is listed; 4 means an input could not be used at all.
    """
    from minerscope.flows.assemble import assemble_capture
    from minerscope.flows.records import FlowTable
    from minerscope.prefilter.blacklist import Blacklist
    from minerscope.prefilter.stage0 import apply_stage0

    status = ExitCode.OK
    try:
        paths, default_lists = captures_with_sample(captures)
        blacklist = Blacklist.from_files([*default_lists, *(Path(b) for b in blacklists)])
    except errors.MinerscopeError as exc:
        fail(exc)
    tables = []
    left_out = 0
    with ExitStack() as stack:
        # every row is printed at the end, so a bar (on a terminal, gone when done) never
        # meets the output
        bar = None
        if progress_wanted(quiet, results_stream=False):
            from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn

            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
            bar = stack.enter_context(stderr_progress(*columns))
        for path in paths:
            try:
                table, report = assemble_capture(
                    path,
                    idle_timeout=idle_timeout,
                    active_timeout=active_timeout,
                    bpf=bpf,
                    on_batch=None if bar is None else _bytes_read_bar(bar, path),
                )
            except errors.MinerscopeError as exc:
                error_line(exc)
                status = max(status, exit_code_for(exc))
                continue
            status = max(
                status, reading_status(report.complete, report.warning, f"{path}: capture is damaged")
            )
            tables.append(apply_stage0(table, blacklist if len(blacklist) else None))
            left_out += report.filtered
    result = FlowTable.concat(tables)
    rows = result.summary.to_dicts()
    if fmt == "jsonl":
        out = sys.stdout
        for row in rows:
            out.write(
                json.dumps({k: untrusted.clean(v) if isinstance(v, str) else v for k, v in row.items()})
                + "\n"
            )
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.summary.columns)
        for row in rows:
            writer.writerow([untrusted.csv_cell(v) if isinstance(v, str) else v for v in row.values()])
    elif tables:
        _print_table(rows)
    sys.stdout.flush()
    dropped = f"; --bpf left out {left_out:,} packets" if bpf else ""
    click.echo(f"minerscope: {len(rows)} flows from {len(tables)} capture(s){dropped}", err=True)
    if status != ExitCode.OK:
        sys.exit(int(status))
