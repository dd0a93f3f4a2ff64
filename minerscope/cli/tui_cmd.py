"""``minerscope open``: the analyst workstation on one or more captures.

A thin shell: it resolves the captures (none given: the bundled sample), the case
file (``--db`` on the group, else the default in the user data directory) and the
triage options, then runs :class:`minerscope.tui.app.MinerscopeApp`. Textual is
imported inside the command so the rest of the CLI never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from minerscope.capture.discover import is_stream
from minerscope.cli.common import (
    ExitCode,
    blacklist_option,
    bpf_option,
    captures_with_sample,
    fail,
    model_option,
)
from minerscope.errors import CaptureError, InputError

if TYPE_CHECKING:
    from minerscope.probe.scope import Scope
    from minerscope.triage import TriageOptions


@click.command(name="open")
@click.argument("captures", nargs=-1, type=click.Path(path_type=Path))
@model_option
@blacklist_option("Extra blacklist file for stage 0 (repeatable).", path_type=Path)
@bpf_option
@click.option(
    "--scope",
    "scope_allow",
    multiple=True,
    metavar="CIDR",
    help="Networks p probes without asking (repeatable). Default: loopback only; outside it, p asks first.",
)
@click.option(
    "--deny",
    "scope_deny",
    multiple=True,
    metavar="CIDR",
    help="Networks p never probes, even inside --scope (repeatable).",
)
@click.pass_context
def open_cmd(
    ctx: click.Context,
    captures: tuple[Path, ...],
    model: str | None,
    blacklists: tuple[Path, ...],
    bpf: str | None,
    scope_allow: tuple[str, ...],
    scope_deny: tuple[str, ...],
) -> None:
    """Open CAPTURES in the analyst workstation (files, or directories searched for captures;
    none, or ``sample``: the bundled sample capture with its sample blacklist).

    Keys: ? help, / filter, enter detail, p probe, n note, o pools, e export, q quit.

    p probes a flow's server at once inside --scope (as scan --probe: loopback unless
    given), asks first outside it, and refuses --deny networks.
    """
    from minerscope.probe.scope import Scope

    obj = ctx.find_root().obj or {}
    try:  # before any work: a mistyped network must not cost a load
        scope = Scope.for_capture(scope_allow, scope_deny)
        paths, db, options = workstation_args(
            captures, db=obj.get("db"), model=model, blacklists=blacklists, bpf=bpf
        )
    except InputError as exc:
        fail(exc)
    # Start reading the first capture before Textual is even imported (no Textual in offload):
    # the triage child's start-up then overlaps the UI's, and first rows come sooner.
    from minerscope.tui.offload import prestart

    prestart(paths[0], options)
    run_workstation(paths, db_path=db, options=options, probe_scope=scope)
    ctx.exit(int(ExitCode.OK))


def workstation_args(
    captures: Sequence[Path],
    *,
    db: str | Path | None,
    model: str | None,
    blacklists: Sequence[Path] = (),
    bpf: str | None = None,
) -> tuple[list[Path], Path, TriageOptions]:
    """What ``open`` runs the workstation on: captures (none: the sample), case file, options.

    ``db`` is the group's ``--db`` (``$MINERSCOPE_DB``); None means the default case file,
    whose folder is created. Kept apart from the command so the no-argument defaults are
    testable without a terminal.

    Raises:
        CaptureError: a capture path is not a regular file (stdin, a pipe: scan reads those).
    """
    from minerscope.triage import TriageOptions

    paths, sample_lists = captures_with_sample(captures)
    for path in paths:
        if is_stream(path):  # its keys come from stdin, and its triage child cannot open our pipes
            raise CaptureError(
                "not a regular file: the workstation opens capture files (scan reads pipes and stdin: scan -)",
                path=str(path),
            )
        if not path.is_file():
            raise CaptureError("no such file", path=str(path))
    from minerscope.userdirs import default_db_path

    case_file = Path(db) if db else default_db_path()
    case_file.parent.mkdir(parents=True, exist_ok=True)
    options = TriageOptions(
        model=model, blacklist_files=(*blacklists, *sample_lists), db_path=case_file, bpf=bpf
    )
    return paths, case_file, options


def run_workstation(
    sources: list[Path],
    *,
    db_path: Path,
    options: Any,
    loader: Callable[..., Any] | None = None,
    probe_scope: Scope | None = None,
) -> None:
    """Run the workstation on ``sources`` (the CLI's one door into Textual; ``live --tui`` uses it).

    ``loader`` replaces the capture reader (``minerscope.live.iter_live`` for an interface);
    ``probe_scope`` is ``--scope``/``--deny`` (None: loopback only).
    """
    from minerscope.tui.app import MinerscopeApp  # deferred: only the workstation loads Textual

    MinerscopeApp(sources, db_path=db_path, options=options, loader=loader, probe_scope=probe_scope).run()
