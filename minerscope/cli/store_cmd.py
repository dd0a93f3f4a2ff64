"""``minerscope export``, ``minerscope blacklist`` and ``minerscope case``: the case file from a shell.

Each subcommand opens the case file (``--db``, ``$MINERSCOPE_DB`` or the user data
directory), calls one library function of :mod:`minerscope.store` and closes it, so a CLI
command can run while the TUI has the same file open. Data goes to stdout (or ``-o FILE``),
counts and warnings to stderr; a store problem is one ``minerscope: error:`` line and exit
code 4, a malformed argument (an endpoint, an indicator, an option that does not go with
the format) a usage error, exit 2, checked before the case file is opened.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TextIO, TypeVar

import click

from minerscope.cli.common import FiniteFloatRange, fail, warn
from minerscope.errors import MinerscopeError, StoreError
from minerscope.timetext import utc_text
from minerscope.untrusted import clean, is_decimal

P = ParamSpec("P")
R = TypeVar("R")


def _handled(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a MinerscopeError into one stderr line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MinerscopeError as exc:
            fail(exc)
            raise AssertionError("unreachable") from None

    return wrapper


def _db_path(ctx: click.Context) -> Path | None:
    obj = ctx.find_root().obj
    value = obj.get("db") if isinstance(obj, dict) else None
    return Path(value) if value else None


@contextmanager
def _store(ctx: click.Context) -> Iterator[Any]:
    from minerscope.store import open_store  # deferred: keeps `minerscope --help` fast

    store = open_store(_db_path(ctx))
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _output(path: str) -> Iterator[TextIO]:
    """stdout for ``-``; else a temporary file renamed over ``path`` only if writing succeeded."""
    if path == "-":
        yield sys.stdout
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            yield fh
        os.replace(tmp, target)
    except OSError as exc:
        raise StoreError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _print_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A tab-separated table for people (and for ``cut``); every cell made inert."""
    click.echo("\t".join(columns))
    for row in rows:
        cells = []
        for col in columns:
            value = row.get(col)
            if col.endswith("_at") or col in ("at", "first_seen", "last_seen"):
                cells.append(utc_text(value, " "))
            elif isinstance(value, list):
                cells.append(clean(" ".join(str(v) for v in value), 200))
            else:
                cells.append(clean("" if value is None else value, 200).replace("\\x09", " "))
        click.echo("\t".join(cells))


MAX_EXPIRY_DAYS = 36_500
"""A century: beyond it an expiry means "never" (leave ``--expires-days`` out), and far
beyond it the date no longer fits the platform's time functions."""

_expires_option = click.option(
    "--expires-days",
    type=FiniteFloatRange(min=0, max=MAX_EXPIRY_DAYS, min_open=True),
    default=None,
    help="Expire after N days (default: never).",
)


def _expiry(days: float | None) -> float | None:
    return None if days is None else time.time() + days * 86400.0


def _endpoint(text: str, param: str = "ENDPOINT") -> tuple[str, int]:
    """``HOST:PORT`` from an argument; a malformed one is a usage error (exit 2)."""
    from minerscope.store.pools import split_endpoint

    try:
        return split_endpoint(text)
    except StoreError as exc:
        raise click.BadParameter(clean(str(exc), 200), param_hint=param) from None


def _indicators(texts: Sequence[str], source: str) -> list[Any]:
    """Indicators typed as arguments; one that is none is a usage error (exit 2)."""
    from minerscope.prefilter.blacklist import IndicatorError, parse_indicator

    try:
        return [parse_indicator(t, source) for t in texts]
    except IndicatorError as exc:
        raise click.BadParameter(clean(str(exc), 200), param_hint="INDICATORS") from None


# ---- export ----------------------------------------------------------------------------
@click.group(name="export")
def export() -> None:
    """Export confirmed pools, the blacklist or the whole case file.

    \b
    minerscope export pools --format csv -o pools.csv
    minerscope export blacklist --format zeek -o minerscope.intel
    minerscope export case handover.sqlite
    """


@export.command(name="pools")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("-o", "--output", default="-", show_default=True, help="File to write ('-': stdout).")
@click.option(
    "--case", "case_id", type=click.IntRange(min=1), default=None, help="Only pools confirmed in this case."
)
@click.pass_context
@_handled
def export_pools(ctx: click.Context, fmt: str, output: str, case_id: int | None) -> None:
    """Confirmed pools as CSV or JSON.

    Columns: host, port, names, coin, dialect, transport, tls, first_seen, last_seen,
    confirmation, evidence, note. Cells a spreadsheet would run as a formula are made inert.
    """
    from minerscope.store.export import write_pools_csv, write_pools_json

    with _store(ctx) as store, _output(output) as out:
        writer = write_pools_csv if fmt == "csv" else write_pools_json
        count = writer(store, out, case_id=case_id)
    click.echo(f"{count.written} pools exported", err=True)


def _export_blacklist(
    ctx: click.Context, fmt: str, output: str, categories: str | None, sid_base: int, include_disabled: bool
) -> None:
    from minerscope.store.export import suricata_categories, write_blacklist

    if categories and fmt != "suricata-iprep":  # before anything is written
        raise click.BadParameter(
            f"the categories file goes with --format suricata-iprep, not {fmt}", param_hint="--categories"
        )
    with _store(ctx) as store, _output(output) as out:
        count = write_blacklist(store, out, fmt, sid_base=sid_base, include_disabled=include_disabled)
    if categories:
        with _output(categories) as out:
            out.write(suricata_categories())
    click.echo(f"{count.written} indicators exported", err=True)
    if count.skipped:
        warn(f"{count.skipped} indicators cannot be expressed in the {fmt} format and were left out")
    if count.widened:
        warn(
            f"{count.widened} IP:port indicators are written for their whole address "
            f"(the {fmt} format has no port): it matches more than the indicator did"
        )


_BLACKLIST_FORMATS = ["plain", "hosts", "csv", "zeek", "suricata-iprep", "suricata-rules"]


def _blacklist_export_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            click.option(
                "--format",
                "fmt",
                type=click.Choice(_BLACKLIST_FORMATS),
                default="plain",
                show_default=True,
                help="plain list, hosts file, CSV, Zeek Intel file, Suricata IP reputation or rules.",
            ),
            click.option(
                "-o", "--output", default="-", show_default=True, help="File to write ('-': stdout)."
            ),
            click.option(
                "--categories",
                default=None,
                help="Also write the Suricata reputation categories file here (suricata-iprep only).",
            ),
            click.option(
                "--sid-base",
                type=click.IntRange(1, 2**31 - 1),
                default=9_100_000,
                show_default=True,
                help="Suricata rules: sid = base + 2 x indicator id (+1 for the TLS rule).",
            ),
            click.option(
                "--include-disabled", is_flag=True, help="Also export disabled or expired indicators."
            ),
        ]
    ):
        func = decorator(func)
    return func


@export.command(name="blacklist")
@_blacklist_export_options
@click.pass_context
@_handled
def export_blacklist(
    ctx: click.Context, fmt: str, output: str, categories: str | None, sid_base: int, include_disabled: bool
) -> None:
    """The active blacklist (enabled, unexpired indicators) in another tool's format.

    \b
    plain           one indicator per line (1.2.3.4, 1.2.3.4:3333, pool.example, *.example)
    hosts           0.0.0.0 name (exact domains only)
    csv             kind,value,port,source,added,expires,enabled
    zeek            Zeek Intel framework file (Intel::ADDR, Intel::DOMAIN; no suffixes)
    suricata-iprep  Suricata IP reputation list (--categories writes the categories file)
    suricata-rules  Suricata rules: dns.query / tls.sni for names, IP rules for addresses
    """
    _export_blacklist(ctx, fmt, output, categories, sid_base, include_disabled)


@export.command(name="case")
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace DEST if it exists.")
@click.pass_context
@_handled
def export_case_cmd(ctx: click.Context, dest: str, overwrite: bool) -> None:
    """Copy the whole case file to DEST to hand it over (SQLite backup API, integrity-checked)."""
    from minerscope.store.casefile import export_case

    if Path(dest).exists() and not overwrite:
        raise StoreError(f"{dest}: exists (use --overwrite to replace it)")
    with _store(ctx) as store:
        written = export_case(store, Path(dest), overwrite=overwrite)
    click.echo(f"case file written to {clean(str(written))}", err=True)


# ---- blacklist -----------------------------------------------------------------------
@click.group(name="blacklist")
def blacklist() -> None:
    """Show, add, import, switch off and export blacklist indicators.

    The stage-0 pre-filter reads the active indicators from the case file; confirming a
    pool adds its indicators automatically.
    """


@blacklist.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Include disabled and expired indicators.")
@click.pass_context
@_handled
def blacklist_list(ctx: click.Context, show_all: bool) -> None:
    """List indicators (id, indicator, kind, source, added, expires, enabled)."""
    with _store(ctx) as store:
        rows = store.list_indicators(active_only=not show_all)
    _print_rows(rows, ["id", "text", "kind", "source", "added_at", "expires_at", "enabled"])


@blacklist.command(name="add")
@click.argument("indicators", nargs=-1, required=True)
@click.option("--source", default="analyst", show_default=True, help="Where the indicator came from.")
@_expires_option
@click.pass_context
@_handled
def blacklist_add(
    ctx: click.Context, indicators: tuple[str, ...], source: str, expires_days: float | None
) -> None:
    """Add indicators: 1.2.3.4, 1.2.3.4:3333, [2001:db8::1]:3333, pool.example, *.example."""
    parsed = _indicators(indicators, source)
    with _store(ctx) as store:
        added, existing = store.add_indicators(parsed, source=source, expires_at=_expiry(expires_days))
    click.echo(f"{added} added, {existing} already present", err=True)


@blacklist.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--source", default=None, help="Source label (default: file:<name>).")
@_expires_option
@click.pass_context
@_handled
def blacklist_import(
    ctx: click.Context, files: tuple[str, ...], source: str | None, expires_days: float | None
) -> None:
    """Import indicator files: plain lists, hosts files or CSV (e.g. public coin-miner blocklists).

    A malformed line stops the import of that file with its line number; nothing from
    that file is added.
    """
    with _store(ctx) as store:
        for name in files:
            added, existing = store.import_indicators(
                Path(name), source=source, expires_at=_expiry(expires_days)
            )
            click.echo(f"{clean(name)}: {added} added, {existing} already present", err=True)


@blacklist.command(name="disable")
@click.argument("ids", nargs=-1, required=True, type=int)
@click.pass_context
@_handled
def blacklist_disable(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Switch indicators off by id (they stay in the file; `enable` brings them back)."""
    with _store(ctx) as store:
        for ind in ids:
            store.set_indicator_enabled(ind, False)


@blacklist.command(name="enable")
@click.argument("ids", nargs=-1, required=True, type=int)
@click.pass_context
@_handled
def blacklist_enable(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Switch indicators back on by id."""
    with _store(ctx) as store:
        for ind in ids:
            store.set_indicator_enabled(ind, True)


@blacklist.command(name="export")
@_blacklist_export_options
@click.pass_context
@_handled
def blacklist_export(
    ctx: click.Context, fmt: str, output: str, categories: str | None, sid_base: int, include_disabled: bool
) -> None:
    """Same as `minerscope export blacklist`."""
    _export_blacklist(ctx, fmt, output, categories, sid_base, include_disabled)


# ---- case ------------------------------------------------------------------------------
@click.group(name="case")
def case() -> None:
    """Work with cases, notes, pool confirmations and dismissals in the case file.

    \b
    minerscope case note endpoint 203.0.113.5:3333 "seen from the build server"
    minerscope case confirm 203.0.113.5:3333 --coin monero
    minerscope case dismiss 198.51.100.7:443 --reason "corporate VPN"
    """


@case.command(name="list")
@click.pass_context
@_handled
def case_list(ctx: click.Context) -> None:
    """List cases with their capture, note and pool counts."""
    with _store(ctx) as store:
        rows = store.list_cases()
    _print_rows(rows, ["id", "name", "status", "captures", "notes", "pools", "created_at", "description"])


@case.command(name="new")
@click.argument("name")
@click.option("--description", default="", help="What the case is about.")
@click.pass_context
@_handled
def case_new(ctx: click.Context, name: str, description: str) -> None:
    """Create a case (prints its id; an existing case of that name is reused)."""
    with _store(ctx) as store:
        click.echo(store.add_case(name, description))


def _reading(capture: Mapping[str, Any]) -> str:
    """What reading a capture found, for people: ``whole``, the reader's damage line, and
    what its sensor says it dropped; empty when not recorded (stored before v5, live), and
    :data:`~minerscope.store.cases.FLOWS_PENDING` while its flows are not in."""
    if capture.get("complete") is None:  # not recorded, or waiting for its flows (a stopped scan)
        return str(capture.get("damage") or "")
    text = "whole" if capture["complete"] else str(capture.get("damage") or "incomplete")
    dropped = capture.get("sensor_dropped")
    return f"{text}; its sensor dropped {dropped:,} packets" if dropped else text


@case.command(name="show")
@click.argument("case_id", type=int, required=False)
@click.pass_context
@_handled
def case_show(ctx: click.Context, case_id: int | None) -> None:
    """Show a case (default: the default case): its captures and notes."""
    with _store(ctx) as store:
        cid = case_id if case_id is not None else store.default_case_id()
        info = store.get_case(cid)
        click.echo(
            f"case {info['id']}: {clean(info['name'])} ({info['status']}) {clean(info['description'])}"
        )
        click.echo("")
        captures = [{**c, "read": _reading(c)} for c in store.list_captures(cid)]
        _print_rows(captures, ["id", "path", "size", "sha256", "packets", "flows", "read", "added_at"])
        click.echo("")
        _print_rows(store.list_notes(case_id=cid), ["id", "target_kind", "target_ref", "updated_at", "text"])


@case.command(name="note")
@click.argument("target_kind", type=click.Choice(["case", "flow", "pool", "probe", "endpoint"]))
@click.argument("target")
@click.argument("text")
@click.option(
    "--case",
    "case_id",
    type=click.IntRange(min=1),
    default=None,
    help="Case the note belongs to (default case).",
)
@click.pass_context
@_handled
def case_note(ctx: click.Context, target_kind: str, target: str, text: str, case_id: int | None) -> None:
    """Attach a note to a case, flow, pool or probe id, or an endpoint HOST:PORT. Prints its id.

    A new case file has the ``default`` case (id 1); ``case new NAME`` makes another.
    """
    if target_kind == "endpoint":
        from minerscope.store.pools import endpoint_text

        target = endpoint_text(*_endpoint(target, "TARGET"))
    elif target.strip() and not is_decimal(target.strip()):  # "" for case: the default case
        raise click.BadParameter(
            f"a {target_kind} is named by its id, not {clean(target, 80)!r}", param_hint="TARGET"
        )
    with _store(ctx) as store:
        click.echo(store.add_note(target_kind, target, text, case_id=case_id))


@case.command(name="edit-note")
@click.argument("note_id", type=int)
@click.argument("text")
@click.pass_context
@_handled
def case_edit_note(ctx: click.Context, note_id: int, text: str) -> None:
    """Replace a note's text (the old text stays in the audit trail)."""
    with _store(ctx) as store:
        store.edit_note(note_id, text)


@case.command(name="notes")
@click.option("--kind", "target_kind", default=None, help="Only notes on this kind of target.")
@click.option("--target", default=None, help="Only notes on this target id / HOST:PORT.")
@click.pass_context
@_handled
def case_notes(ctx: click.Context, target_kind: str | None, target: str | None) -> None:
    """List notes."""
    with _store(ctx) as store:
        rows = store.list_notes(target_kind, target)
    _print_rows(rows, ["id", "case_id", "target_kind", "target_ref", "created_at", "updated_at", "text"])


@case.command(name="confirm")
@click.argument("endpoint")
@click.option("--name", "names", multiple=True, help="A domain name of the pool (repeatable).")
@click.option("--coin", default=None, help="Coin mined there.")
@click.option("--dialect", default=None, help="Mining dialect it speaks.")
@click.option("--transport", default=None, help="tcp, tls, ws, wss ...")
@click.option("--tls", is_flag=True, help="The pool speaks TLS.")
@click.option("--note", default=None, help="A note attached to the pool.")
@click.pass_context
@_handled
def case_confirm(
    ctx: click.Context,
    endpoint: str,
    names: tuple[str, ...],
    coin: str | None,
    dialect: str | None,
    transport: str | None,
    tls: bool,
    note: str | None,
) -> None:
    """Confirm HOST:PORT as a mining pool; it joins the blacklist at once. Prints the pool id."""
    host, port = _endpoint(endpoint)
    with _store(ctx) as store:
        pool_id = store.confirm_pool(
            host, port, names=names, coin=coin, dialect=dialect, transport=transport, tls=tls, note=note
        )
    click.echo(pool_id)


@case.command(name="dismiss")
@click.argument("endpoint")
@click.option("--any-port", is_flag=True, help="Dismiss every port of the host.")
@click.option("--reason", default="", help="Why it is a false positive.")
@click.pass_context
@_handled
def case_dismiss(ctx: click.Context, endpoint: str, any_port: bool, reason: str) -> None:
    """Dismiss HOST:PORT as a false positive: its flows, past and future, are hidden."""
    host, port = _endpoint(endpoint)
    with _store(ctx) as store:
        click.echo(store.dismiss_endpoint(host, 0 if any_port else port, reason=reason))


@case.command(name="undismiss")
@click.argument("endpoint")
@click.option("--any-port", is_flag=True, help="Lift a dismissal of every port of the host.")
@click.pass_context
@_handled
def case_undismiss(ctx: click.Context, endpoint: str, any_port: bool) -> None:
    """Lift a dismissal of HOST:PORT."""
    host, port = _endpoint(endpoint)
    with _store(ctx) as store:
        if not store.undismiss_endpoint(host, 0 if any_port else port):
            raise StoreError(f"{clean(endpoint, 80)} is not dismissed")


@case.command(name="pools")
@click.pass_context
@_handled
def case_pools(ctx: click.Context) -> None:
    """List confirmed pools."""
    with _store(ctx) as store:
        rows = store.list_pools()
    _print_rows(
        rows, ["id", "host", "port", "names", "coin", "dialect", "transport", "confirmed_by", "confirmed_at"]
    )


@case.command(name="audit")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
@_handled
def case_audit(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Show the audit trail of analyst actions, newest first."""
    with _store(ctx) as store:
        rows = store.list_audit(limit=limit)
    if as_json:
        for row in rows:
            row["detail"] = json.loads(row["detail"])
            click.echo(json.dumps(row, ensure_ascii=True, default=str))
        return
    _print_rows(rows, ["id", "at", "actor", "action", "target_kind", "target_ref", "detail"])


@case.command(name="export")
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace DEST if it exists.")
@click.pass_context
def case_export(ctx: click.Context, dest: str, overwrite: bool) -> None:
    """Same as `minerscope export case DEST`."""
    ctx.invoke(export_case_cmd, dest=dest, overwrite=overwrite)


@case.command(name="import")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the current case file instead of merging (old one kept as .bak-<time>).",
)
@click.pass_context
@_handled
def case_import(ctx: click.Context, src: str, replace: bool) -> None:
    """Take in a colleague's case file (integrity-checked, migrated).

    By default its cases, captures, flows, probes, pools, indicators, dismissals, notes
    and audit trail are merged into the current case file in one transaction; rows
    already present are skipped, so importing the same file twice adds nothing.
    """
    from minerscope.store import default_db_path
    from minerscope.store.casefile import import_case, merge_case

    if replace:
        dest = _db_path(ctx) or default_db_path()
        kept = import_case(Path(src), dest, replace=True)
        if kept is not None:
            click.echo(f"previous case file kept as {clean(str(kept))}", err=True)
        click.echo(f"case file {clean(str(dest))} replaced by {clean(src)}", err=True)
        return
    with _store(ctx) as store:
        added = merge_case(store, Path(src))
    click.echo(", ".join(f"{count} {table}" for table, count in added.items()) + " added", err=True)


@case.command(name="check")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
@click.pass_context
@_handled
def case_check(ctx: click.Context, path: str | None) -> None:
    """Check a case file (default: the current one): PRAGMA integrity_check, and that every
    cell holds what its column should (JSON where JSON belongs, numbers where times and
    counts belong), as case import does; prints its schema version."""
    from minerscope.store import default_db_path
    from minerscope.store.casefile import verify_case_file

    target = Path(path) if path else (_db_path(ctx) or default_db_path())
    version = verify_case_file(target)
    click.echo(f"{clean(str(target))}: ok (schema version {version})")
