"""``minerscope probe``: ask host:port targets, in every mining dialect, whether they are pools.

A thin shell over :func:`minerscope.probe.runner.probe_many`: targets from arguments and
``--from`` files, verdicts to stdout as they finish (``--format jsonl``) or as one table
(``table``), diagnostics to stderr. Everything a probed server said is shown through
:func:`minerscope.untrusted.clean` and rendered as ``rich.text.Text`` (never as markup).

Scope, chosen to be safe without being useless: with no ``--scope`` any target the user
*named explicitly* may be probed (naming it is the decision), except multicast,
broadcast, unspecified and reserved addresses, and anything under ``--deny``. With
``--scope CIDR`` only those networks are allowed; a host name must resolve entirely into
scope. A literal target out of scope stops the run before anything is sent (exit 4).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from minerscope import errors
from minerscope.cli.common import ExitCode, FiniteFloatRange, fail, progress_wanted, stderr_progress, warn
from minerscope.probe.scope import DeniedError, Scope, parse_address
from minerscope.probe.target import Target, format_target, parse_target
from minerscope.probe.verdict import UNREACHABLE, ProbeAttempt, Verdict
from minerscope.untrusted import clean

if TYPE_CHECKING:
    from minerscope.probe.runner import ProbeOptions

_MAX_TARGETS = 100_000


def read_targets(path: str) -> list[str]:
    """Targets from a file: one per line, blank lines and ``#`` comments ignored.

    Raises:
        InputError: unreadable file, or more than the target limit (message names the file).
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise errors.InputError(f"{path}: cannot read target list: {exc.strerror or exc}") from None
    out: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        if len(out) >= _MAX_TARGETS:
            raise errors.InputError(f"{path}:{number}: more than {_MAX_TARGETS} targets")
        try:
            parse_target(item)
        except errors.InputError as exc:
            raise errors.InputError(f"{path}:{number}: {exc}") from None
        out.append(item)
    return out


def _attempt_line(attempt: ProbeAttempt) -> str:
    outcome = str(attempt.result.outcome) if attempt.result else "-"
    error = f" {clean(attempt.error, 100)}" if attempt.error else ""
    return (
        f"{clean(attempt.dialect, 32)}/{attempt.transport} {outcome} {attempt.elapsed_s * 1000:.0f}ms{error}"
    )


def render_table(verdicts: Sequence[Verdict | NotProbed], *, verbose: bool = False, out: Any = None) -> None:
    """Print verdicts as a rich table; peer text is inert ``Text`` (no markup parsing)."""
    from rich.table import Table
    from rich.text import Text

    from minerscope.cli.stdout import results_console

    table = Table(show_lines=verbose)
    for name in ("target", "pool", "confidence", "dialect", "transport", "outcome", "evidence"):
        table.add_column(name, overflow="fold")
    for v in verdicts:
        if isinstance(v, NotProbed):
            not_sent = Text("not probed", style="yellow")
            table.add_row(
                Text(clean(v.target, 80)),
                not_sent,
                *map(Text, ("-", "-", "-", "-")),
                Text(clean(v.error, 200)),
            )
            continue
        evidence = "; ".join(f"{e.key}={clean(e.value, 80)}" for e in v.evidence[:6])
        unreachable = v.unreachable
        if unreachable and not evidence:  # not checked, which "no" would hide
            evidence = clean(unreachable, 120)
        if verbose:
            evidence += "\n" + "\n".join(_attempt_line(a) for a in v.attempts)
        label = v.label
        if v.is_pool:
            pool = Text("POOL", style="bold red")
        elif unreachable:
            pool = Text(UNREACHABLE, style="yellow")
        elif label:  # a mining service, not confirmed: never the "no" of a web server
            pool = Text(clean(label, 40), style="magenta")
        else:
            pool = Text("no", style="green")
        table.add_row(
            Text(clean(v.target, 80)),
            pool,
            Text(f"{v.confidence:.2f}"),
            Text(clean(v.dialect or "-", 32)),
            Text(str(v.transport or "-")),
            Text(str(v.outcome)),
            Text(evidence),
        )
    console = results_console(file=out or sys.stdout)
    if not console.is_terminal:
        console = results_console(file=out or sys.stdout, width=200)
    console.print(table)


@click.command(name="probe")
@click.argument("targets", nargs=-1)
@click.option(
    "--from", "from_file", type=click.Path(dir_okay=False), help="File of targets, one host:port per line."
)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.option("--dialect", "dialects", multiple=True, help="Only these dialects (repeatable). Default: all.")
@click.option(
    "--scope", "scope", multiple=True, help="Allowed network (CIDR, repeatable). Default: any named target."
)
@click.option(
    "--deny", "deny", multiple=True, help="Denied network (CIDR, repeatable), checked before --scope."
)
@click.option(
    "--timeout", type=FiniteFloatRange(0.05, 600), default=5.0, show_default=True, help="Seconds per attempt."
)
@click.option("--connect-timeout", type=FiniteFloatRange(0.05, 600), default=3.0, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="Connections in flight.",
)
@click.option(
    "--per-host", type=click.IntRange(1, 64), default=4, show_default=True, help="Connections per address."
)
@click.option(
    "--rate",
    type=FiniteFloatRange(0),
    default=100.0,
    show_default=True,
    help="New connections/s (0: no limit).",
)
@click.option("--full-sweep", is_flag=True, help="Try every dialect even after a confident answer.")
@click.option("--worker", default="", help="Worker/user to present (also HTTP basic-auth user for daemons).")
@click.option("--password", default="x", show_default=True, help="Password to present.")
@click.option(
    "--wallet", default="", help="Wallet/site key to present (default: the probe's own, per dialect)."
)
@click.option(
    "--no-store", is_flag=True, help="Do not record the verdicts (and confirmed pools) in the case file."
)
@click.option("-v", "--verbose", is_flag=True, help="Table: list every attempt.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.pass_context
def probe(
    ctx: click.Context,
    targets: tuple[str, ...],
    from_file: str | None,
    fmt: str,
    dialects: tuple[str, ...],
    scope: tuple[str, ...],
    deny: tuple[str, ...],
    timeout: float,
    connect_timeout: float,
    concurrency: int,
    per_host: int,
    rate: float,
    full_sweep: bool,
    worker: str,
    password: str,
    wallet: str,
    no_store: bool,
    verbose: bool,
    quiet: bool,
) -> None:
    """Ask TARGET... (host:port) whether they are mining pools, in every dialect.

    Each target gets a TCP liveness check, a TLS sniff, then each dialect's handshake
    on a fresh connection plus a control request that no pool understands. JSONL fields:
    target, is_pool, confidence, dialect, transport, outcome (success|error|none),
    evidence, attempts (request, escaped reply excerpt, timing), tls.

    Verdicts are recorded in the case file (``--db``) and confirmed pools join its
    blacklist, as for ``scan --probe``; ``--no-store`` records nothing. A target denied by
    ``--deny`` gets a record saying so (is_pool null) and is sent nothing.

    Exit status: 0 all probed; 4 a target is out of scope or unreadable; 2 bad usage.
    """
    try:
        names = list(targets)
        if from_file:
            names += read_targets(from_file)
        if not names:
            raise click.UsageError("no targets: give host:port arguments or --from FILE")
        # each distinct target once, in the order it first appears
        parsed: list[Target] = list(dict.fromkeys(parse_target(t) for t in names))
        # the I/O stack (httpx, websockets, cryptography) only once there is work: --help
        # and usage errors stay quick
        from minerscope.probe.runner import ProbeOptions, available_dialects

        known = available_dialects()
        for name in dialects:
            if name not in known:
                raise click.BadParameter(
                    f"{name!r}: unknown dialect (known: {', '.join(sorted(known))})", param_hint="--dialect"
                )
        options = ProbeOptions(
            connect_timeout=min(connect_timeout, timeout),
            attempt_deadline=timeout,
            total_deadline=max(30.0, timeout * 12),
            concurrency=concurrency,
            per_host=per_host,
            rate=rate,
            dialects=tuple(dialects) or None,
            full_sweep=full_sweep,
            scope=Scope.from_cli(scope, deny),
            worker=worker,
            password=password,
            wallet=wallet,
        )
        refused: list[str] = []
        show = progress_wanted(quiet, results_stream=fmt == "jsonl")
        with ExitStack() as stack:
            store = None
            if not no_store:  # opened first: a bad case file is one line before any probe
                from minerscope.store import default_db_path, open_store

                db = (ctx.obj or {}).get("db")
                store = stack.enter_context(open_store(Path(db) if db else default_db_path()))
            records = asyncio.run(
                _run(
                    parsed,
                    options,
                    fmt,
                    refused,
                    show_progress=show,
                    record=None if store is None else store.record_probe,
                )
            )
    except errors.MinerscopeError as exc:
        fail(exc)
        return
    if fmt == "table":
        render_table(records, verbose=verbose)
    if refused:
        sys.exit(int(ExitCode.INPUT))


@dataclass(frozen=True, slots=True)
class NotProbed:
    """A target nothing was sent to (denied by ``--deny``, or its name resolved out of
    scope): a record like a verdict's, ``is_pool`` null and the reason in ``error``."""

    target: str
    error: str

    def to_json(self) -> dict[str, Any]:
        return {
            "target": clean(self.target),
            "is_pool": None,
            "confidence": 0.0,
            "dialect": None,
            "transport": None,
            "outcome": "none",
            "evidence": [],
            "attempts": [],
            "error": clean(self.error),
        }

    def to_jsonl(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)


def _not_probed(target: Target, exc: errors.ScopeError) -> NotProbed:
    """The record of a target refused by the scope; a ``--deny`` match says so first."""
    why = str(exc)
    if isinstance(exc, DeniedError):
        why = f"denied by --deny {exc.network}: {why}"
    return NotProbed(format_target(*target), why)


async def _run(
    targets: list[Target],
    options: ProbeOptions,
    fmt: str,
    refused: list[str],
    *,
    show_progress: bool = False,
    record: Callable[[Verdict], object] | None = None,
) -> list[Verdict | NotProbed]:
    """Probe every target; JSONL records printed as they come, a bar of targets done on
    stderr with ``show_progress``. ``record`` (the case file's) takes each verdict as it
    comes, before it is printed: an interrupt or a full disk later loses no pool already
    confirmed.

    A literal target in a ``--deny`` network gets its record at once and is not probed (a
    name resolving into one, once resolved); any other literal target out of scope stops
    the run before anything is sent. A name that resolves out of ``--scope`` gets its
    record too, and is also put in ``refused`` (exit 4)."""
    out: list[Verdict | NotProbed] = []

    def emit(found: Verdict | NotProbed) -> None:
        out.append(found)
        if record is not None and isinstance(found, Verdict):
            record(found)
        if fmt == "jsonl":
            click.echo(found.to_jsonl())

    todo: list[Target] = []
    denied: list[NotProbed] = []
    for host, port in targets:
        literal = parse_address(host)
        try:
            if literal is not None:
                options.scope.check(host, [literal])
        except DeniedError as exc:
            denied.append(_not_probed((host, port), exc))
            continue
        todo.append((host, port))
    for refusal in denied:
        emit(refusal)

    with ExitStack() as stack:
        bar = stack.enter_context(stderr_progress()) if show_progress else None
        task = bar.add_task("targets probed", total=len(todo)) if bar is not None else None

        def on_error(target: Target, exc: errors.MinerscopeError) -> None:
            if isinstance(exc, errors.ScopeError):
                emit(_not_probed(target, exc))
            if isinstance(exc, DeniedError):  # the user's own exclusion, as for an address
                if bar is not None:
                    bar.advance(task)
                return
            refused.append(format_target(*target))
            message = f"{clean(format_target(*target), 120)}: {clean(exc, 300)}"
            if bar is not None:  # above the bar, not through it
                bar.advance(task)
                bar.console.print(f"minerscope: warning: {message}", markup=False, highlight=False)
            else:
                warn(message)

        from minerscope.probe.runner import probe_many

        if todo:
            async for verdict in probe_many(todo, options, on_error=on_error):
                if bar is not None:
                    bar.advance(task)
                emit(verdict)
    order = {format_target(h, p): i for i, (h, p) in enumerate(targets)}
    out.sort(key=lambda v: order.get(v.target, len(order)))
    return out
