"""``minerscope open``: the analyst workstation on one or more captures.

A thin shell: it resolves the captures (none given: the bundled sample), the case
file (``--db`` on the group, else the default in the user data directory) and the
triage options, then runs :class:`minerscope.tui.app.MinerscopeApp`. Textual is
imported inside the command so the rest of the CLI never loads it.
"""

from __future__ import annotations

from pathlib import Path

import click

from minerscope import resources
from minerscope.cli.common import ExitCode, fail
from minerscope.errors import CaptureError


def default_db_path() -> Path:
    """The default case file: ``<user data dir>/minerscope/cases.sqlite``."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("minerscope", appauthor=False)) / "cases.sqlite"


@click.command(name="open")
@click.argument("captures", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", default=None, help="Model name or path (default: the shipped model).")
@click.option(
    "--blacklist",
    "blacklists",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Extra blacklist file for stage 0 (repeatable).",
)
@click.pass_context
def open_cmd(
    ctx: click.Context, captures: tuple[Path, ...], model: str | None, blacklists: tuple[Path, ...]
) -> None:
    """Open CAPTURES in the analyst workstation (none: the bundled sample capture).

    Keys: ? help, / filter, enter detail, p probe, n note, o pools, e export, q quit.
    """
    paths = list(captures) or [resources.sample_capture()]
    for path in paths:
        if not path.is_file():
            fail(CaptureError("no such file", path=str(path)))
    obj = ctx.find_root().obj or {}
    db = Path(obj["db"]) if obj.get("db") else default_db_path()
    db.parent.mkdir(parents=True, exist_ok=True)

    from minerscope.triage import TriageOptions
    from minerscope.tui.app import MinerscopeApp  # deferred: only this command loads Textual

    options = TriageOptions(model=model, blacklist_files=tuple(blacklists), db_path=db)
    MinerscopeApp(paths, db_path=db, options=options).run()
    ctx.exit(int(ExitCode.OK))
