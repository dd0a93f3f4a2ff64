"""The ``minerscope`` command line: a thin shell over library functions.

Each subcommand lives in its own module and is imported only when it runs, so
``minerscope --help`` stays fast and a broken optional piece cannot break the others.
Results go to stdout, diagnostics to stderr; exit codes are :class:`~minerscope.cli.common.ExitCode`.
With no subcommand, ``minerscope`` opens the analyst workstation on the bundled sample.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import click

from minerscope import __version__

# name -> "module:attribute"; the module is imported only when the command is used.
_COMMANDS: dict[str, tuple[str, str]] = {
    "flows": (
        "minerscope.cli.flows_cmd:flows",
        "List the flows of captures with TLS/DNS metadata and stage-0 evidence.",
    ),
    "scan": (
        "minerscope.cli.scan_cmd:scan",
        "Run the detection pipeline over captures and print one verdict per flow.",
    ),
    "probe": (
        "minerscope.cli.probe_cmd:probe",
        "Ask host:port targets, in each mining dialect, whether they are pools.",
    ),
    "pool": (
        "minerscope.cli.pool_cmd:pool",
        "Run a local mining-pool emulator (for tests, demos and the lab).",
    ),
    "lab": (
        "minerscope.cli.lab_cmd:lab",
        "Generate labelled captures of mining and benign encrypted traffic.",
    ),
    "train": (
        "minerscope.cli.model_cmd:train",
        "Train the mining and coin models from labelled captures.",
    ),
    "evaluate": (
        "minerscope.cli.model_cmd:evaluate",
        "Evaluate models and compare classifiers on a held-out split.",
    ),
    "export": (
        "minerscope.cli.store_cmd:export",
        "Export confirmed pools or cases from the case file.",
    ),
    "blacklist": (
        "minerscope.cli.store_cmd:blacklist",
        "Show, import and export blacklist indicators.",
    ),
    "case": ("minerscope.cli.store_cmd:case", "Work with cases and notes in the case file."),
    "open": (
        "minerscope.cli.tui_cmd:open_cmd",
        "Open captures in the analyst workstation (Textual UI).",
    ),
    "live": (
        "minerscope.cli.live_cmd:live",
        "Capture from a live interface and print verdicts as they appear.",
    ),
}


_PIPELINE_COMMANDS = frozenset({"scan", "flows", "open", "live"})
"""Commands that run the capture pipeline: one BLAS thread each (see LazyGroup.get_command)."""


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = _COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr = spec[0].split(":")
        if cmd_name in _PIPELINE_COMMANDS:
            # Before numpy loads: the pipeline does no linear algebra, yet each of the two
            # OpenBLAS copies (numpy's, scipy's) starts a thread per core that spins ~0.1 CPU s
            # after loading; parallelism is by process (-j). An explicit setting wins.
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            settle_sigint()
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _not_yet(cmd_name, spec[1])
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command with results written whole or not at all, and one line for an
        interrupt: Ctrl-C gave click's "Aborted!" and exit 1 ("a bug" in the README's
        table), or, landing inside a compiled kernel, a 76-line traceback of the
        ``SystemError`` numba wraps it in."""
        import signal

        from minerscope.cli import stdout

        stdout.install()
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started as a background job
            settle_sigint()
        try:
            result = super().invoke(ctx)
        except BaseException as exc:
            if interrupted(exc):
                _flush_quietly()
                click.echo("minerscope: interrupted", err=True)
                raise click.exceptions.Exit(INTERRUPTED) from None
            if isinstance(exc, stdout.OutputLost):
                _fail_output(exc)
            if isinstance(exc, BrokenPipeError):
                stdout.discard()
                raise click.exceptions.Exit(READER_GONE) from None
            if isinstance(exc, (SystemExit, click.exceptions.Exit)):
                _flush_or_fail()
            raise
        _flush_or_fail()
        return result

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def settle_sigint(handler: Any = None) -> None:
    """Import polars now, then set SIGINT's handler (default: the one it had) over polars'.

    polars replaces SIGINT's handler when it is imported (over SIG_IGN too, seen in
    /proc/self/status) and raises a KeyboardInterrupt of its own in its next call: one
    Ctrl-C became two, the second inside the cleanup after the first ("Exception ignored
    in ..."), and a job started in the background, Ctrl-C ignored, was interrupted all the
    same. The pipeline commands and their workers import polars anyway."""
    import signal

    import polars  # noqa: F401

    signal.signal(signal.SIGINT, signal.getsignal(signal.SIGINT) if handler is None else handler)


INTERRUPTED = 130
"""Exit status after Ctrl-C / SIGINT (128 + SIGINT, as shells report a command it killed)."""

READER_GONE = 141
"""Exit status when standard output's reader closed it (``| head``): 128 + SIGPIPE."""


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt (numba re-raises
    one that lands in a kernel's boxing code as ``SystemError``)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _fail_output(exc: Exception) -> NoReturn:
    """One line and exit 4 for results that could not be written."""
    click.echo(f"minerscope: error: {exc}", err=True)
    raise click.exceptions.Exit(4) from None


def _flush_or_fail() -> None:
    from minerscope.cli import stdout

    try:
        stdout.flush()
    except stdout.OutputLost as exc:
        _fail_output(exc)
    except BrokenPipeError:
        stdout.discard()
        raise click.exceptions.Exit(READER_GONE) from None


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 (an interrupt is being reported; what stdout does not take is lost anyway)
        pass


def _not_yet(name: str, summary: str) -> click.Command:
    """A placeholder for a command whose module has not landed yet: says so, exits 2."""

    @click.command(
        name=name,
        help=f"{summary}\n\nNot available yet in this version.",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def _cmd(**_: Any) -> None:
        click.echo(f"minerscope {name}: not available yet in this version", err=True)
        sys.exit(2)

    return _cmd


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="minerscope")
@click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="MINERSCOPE_DB",
    help="Case file (SQLite). Default: the user data directory, or $MINERSCOPE_DB.",
)
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """minerscope: find cryptomining hidden in encrypted network traffic.

    With no command, opens the analyst workstation on the bundled sample capture.
    """
    if db is not None and not db.strip():  # else every command quietly used the default file
        raise click.BadParameter(
            "an empty path; give the case file, or leave --db out for the default", param_hint="--db"
        )
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    if ctx.invoked_subcommand is None:
        open_cmd = LazyGroup.get_command(main, ctx, "open")
        assert open_cmd is not None
        ctx.invoke(open_cmd)
