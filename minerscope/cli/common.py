"""What every CLI command shares: exit codes, the error-to-exit-code map, output helpers."""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Any

import click

from minerscope import errors


class ExitCode(IntEnum):
    """Exit status of every ``minerscope`` command (documented in the README)."""

    OK = 0  # all input read completely, command succeeded
    INTERNAL = 1  # a bug in minerscope (traceback shown)
    USAGE = 2  # bad arguments or options (click's own convention)
    PARTIAL = 3  # ran, but some input was damaged/truncated: results cover what could be read
    INPUT = 4  # an input could not be used at all (not a capture, unsupported link type, bad model)
    REMOTE = 5  # a remote peer failed us in a way that stopped the command


def exit_code_for(exc: BaseException) -> ExitCode:
    """Map an exception to the exit code the CLI reports (one place, as the style guide asks)."""
    if isinstance(exc, click.UsageError):
        return ExitCode.USAGE
    if isinstance(exc, errors.InputError):
        return ExitCode.INPUT
    if isinstance(exc, errors.RemoteError):
        return ExitCode.REMOTE
    return ExitCode.INTERNAL


def fail(exc: errors.MinerscopeError) -> None:
    """Print ``exc`` as one line on stderr and exit with its code."""
    click.echo(f"minerscope: error: {exc}", err=True)
    sys.exit(int(exit_code_for(exc)))


def warn(message: str) -> None:
    """One diagnostic line on stderr."""
    click.echo(f"minerscope: warning: {message}", err=True)


def progress_wanted(quiet: bool, *, results_stream: bool) -> bool:
    """Whether a command shows progress bars on stderr: on a terminal, unless ``-q``, and
    not while its results stream onto that same terminal (redrawing a bar moves the cursor
    up over lines it did not write, and would erase results from the screen)."""
    return not quiet and sys.stderr.isatty() and not (results_stream and sys.stdout.isatty())


def stderr_progress(*columns: Any) -> Any:
    """A Rich progress display on stderr that leaves stdout alone (results only) and is
    gone when it stops; Rich's default columns unless ``columns`` are given."""
    from rich.console import Console
    from rich.progress import Progress

    return Progress(*columns, transient=True, console=Console(stderr=True), redirect_stdout=False)
