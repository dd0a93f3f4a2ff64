"""What every CLI command shares: exit codes, the error-to-exit-code map, output helpers,
and the options several commands take (one definition each, so ``scan``, ``live`` and
``flows`` accept and refuse the same values)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

import click

from minerscope import errors
from minerscope.untrusted import clean


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


MESSAGE_CHARS = 2_000
"""Longest diagnostic line printed (a message quoting a hostile server is cut there)."""


def error_line(message: object) -> None:
    """One inert ``minerscope: error:`` line on stderr.

    Messages quote file names, options and replies: on a terminal a file name holding an
    escape sequence would otherwise clear the screen or retitle the window (click strips
    colour codes only when stderr is no terminal)."""
    click.echo(f"minerscope: error: {clean(message, MESSAGE_CHARS)}", err=True)


def fail(exc: errors.MinerscopeError) -> NoReturn:
    """Print ``exc`` as one :func:`error_line` and exit with its code."""
    error_line(exc)
    sys.exit(int(exit_code_for(exc)))


def warn(message: str) -> None:
    """One diagnostic line on stderr, made inert as :func:`error_line`'s."""
    click.echo(f"minerscope: warning: {clean(message, MESSAGE_CHARS)}", err=True)


def reading_status(complete: bool, warning: str | None, damaged: str) -> ExitCode:
    """Say on stderr what reading a capture left out; return the exit status it calls for.

    A capture read to its end can still have left packets out: an interface of a link
    type the reader cannot decode, or one ``--bpf`` does not apply to. The analyst must
    hear of it, but the input was whole, so only damage (``damaged``: the line when the
    reader gave none) makes the result :attr:`ExitCode.PARTIAL`.
    """
    if not complete:
        warn(warning or damaged)
        return ExitCode.PARTIAL
    if warning:
        warn(warning)
    return ExitCode.OK


def progress_note(message: str) -> None:
    """One ``minerscope:`` progress line on stderr, made inert as :func:`error_line`'s."""
    click.echo(f"minerscope: {clean(message, MESSAGE_CHARS)}", err=True)


def echo_report(text: str) -> None:
    """A multi-line report on stdout, each line made inert: reports quote model names
    from sidecars and group or coin names from label files someone else wrote."""
    click.echo("\n".join(clean(line, MESSAGE_CHARS) for line in text.split("\n")))


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


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and ``inf``.

    Python's ``float()`` parses both, and a NaN passes every range test (it compares false
    with any bound), so ``--idle-timeout nan`` used to reach the flow assembler and end in
    a traceback, and ``--duration nan`` ran for ever. A usage error names the option.
    """

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def seconds(*, minimum: float = 0.0, maximum: float | None = None) -> FiniteFloatRange:
    """A finite number of seconds above ``minimum`` (up to ``maximum``)."""
    return FiniteFloatRange(min=minimum, max=maximum, min_open=True)


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

model_option: Decorator = click.option(
    "--model", default=None, help="Model name or path (default: the shipped model)."
)
idle_timeout_option: Decorator = click.option(
    "--idle-timeout",
    type=seconds(),
    default=120.0,
    show_default=True,
    help="Seconds of silence that end a flow.",
)
active_timeout_option: Decorator = click.option(
    "--active-timeout",
    type=FiniteFloatRange(min=0.0),
    default=None,
    help="Seconds after which a long flow is cut (default: never; 0 is never too).",
)
probe_timeout_option: Decorator = click.option(
    "--probe-timeout",
    type=seconds(maximum=3600.0),
    default=45.0,
    show_default=True,
    help="Seconds for one endpoint's whole dialect sweep.",
)


def _checked_filter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Compile ``--bpf`` while the options are parsed: a typo is one line and exit 4 (as a
    mistyped ``--scope``) before any capture is opened; libpcap's message says what is wrong."""
    if value is None:
        return None
    from minerscope.capture.pcap import check_filter

    try:
        check_filter(value)
    except errors.InputError as exc:
        fail(exc)
    return value


bpf_option: Decorator = click.option(
    "--bpf",
    default=None,
    metavar="FILTER",
    callback=_checked_filter,
    help="Capture filter in tcpdump syntax, e.g. 'not port 53' (needs libpcap): "
    "only the packets it keeps are read.",
)


def _checked_blacklists(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> Sequence[str]:
    """Read every ``--blacklist`` file while the options are parsed: a bad line is one line
    naming the file and line, and exit 4, before any capture is opened. (Read later, by
    each capture's triage, it was printed once per capture, and ended ``scan`` with exit 1,
    "a bug".)"""
    if not value:
        return value
    from minerscope.prefilter.blacklist import Blacklist

    try:
        Blacklist.from_files([Path(v) for v in value])
    except errors.MinerscopeError as exc:
        fail(exc)
    return value


def blacklist_option(help_text: str, **path: Any) -> Decorator:
    """``--blacklist FILE`` (repeatable, into ``blacklists``): an existing file of indicators."""
    return click.option(
        "--blacklist",
        "blacklists",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, **path),
        callback=_checked_blacklists,
        help=help_text,
    )


SAMPLE = "sample"
"""The capture argument that names the bundled sample (unless a file of that name exists)."""


def captures_with_sample(captures: Sequence[str | Path]) -> tuple[list[Path], tuple[Path, ...]]:
    """The capture files to read, where no capture at all, or the word ``sample``, means the
    bundled sample capture, ``-`` means standard input (a capture piped in, e.g. from
    ``tcpdump -w -``), and a directory means the captures under it (by magic bytes,
    :func:`minerscope.capture.discover.expand_captures`); and the indicator files that come
    with the sample (its blacklist, when the sample is among the captures). One rule, so
    ``scan``, ``flows`` and the workstation take the same arguments and show the sample's
    blacklisted pool alike.

    Raises:
        errors.InputError: the sample is asked for and not installed, the directories
            named (and nothing else) hold no capture, or ``-`` is given twice or while
            standard input is a terminal.
    """
    from minerscope import resources
    from minerscope.capture.compressed import NAMES
    from minerscope.capture.discover import STDIN, expand_captures, require_piped_stdin

    paths: list[Path] = []
    extra: tuple[Path, ...] = ()
    for item in captures or [SAMPLE]:
        if str(item) == "-" and not Path(item).exists():
            if STDIN in paths:
                raise errors.InputError("-: standard input can be read only once")
            require_piped_stdin("scan -")
            paths.append(STDIN)
        elif str(item) == SAMPLE and not Path(item).exists():
            sample = resources.sample_capture()
            if not sample.is_file():
                raise errors.InputError(f"the bundled sample capture is missing ({sample})")
            paths.append(sample)
            if resources.sample_blacklist().is_file():
                extra = (resources.sample_blacklist(),)
        else:
            paths.extend(expand_captures([item]))
    if not paths:
        named = ", ".join(str(item) for item in captures)  # (cleaned where it is printed)
        raise errors.InputError(
            f"{named}: no capture files (pcap or pcapng, also compressed: {NAMES}) found there"
        )
    return paths, extra
