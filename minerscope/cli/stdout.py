"""Standard output that never loses results silently, and one way out when it fails.

Why: CPython's buffered writer, handed more than its buffer at once, writes straight to
the file; when the disk fills part-way (the kernel takes 64 KiB, then refuses the rest
with ENOSPC) it returns the partial count *without raising*, and the text layer above it
ignores that count. ``minerscope scan > out.jsonl`` on a full disk then exited 0 with a
file cut in the middle of a record and nothing on stderr: the batch job's results, lost
without a word. :func:`install` puts a raw layer under ``sys.stdout`` that writes every
byte it is given or raises, so the loss surfaces as :class:`OutputLost`; the command line
turns that into one line on stderr and exit 4 (:func:`minerscope.cli.LazyGroup.invoke`).

A reader that stops reading (``| head``) is not an error of ours: ``EPIPE`` stays
``BrokenPipeError``, which the command line ends quietly with 141 (128 + SIGPIPE, what a
shell reports for a tool the signal ended): :func:`discard`.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from rich.console import Console

__all__ = ["OutputLost", "discard", "flush", "install", "results_console"]


BUFFER_BYTES = 1 << 20
"""Standard output's buffer: the raw layer is Python, so each flush is a Python call; at
io's default 8 KiB a 100 MB JSONL scan made 13,000 of them (~0.03 CPU s)."""


class OutputLost(Exception):
    """Results could not be written to standard output (disk full, I/O error...)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"standard output: cannot write results: {exc.strerror or exc}")
        self.errno = exc.errno


class _WholeWrites(io.RawIOBase):
    """File descriptor ``fd`` as a raw stream whose ``write`` takes every byte or raises."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._lost = False  # reported once; later writes (the exit's flush) go nowhere

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:  # rich and click ask, to decide on colour and progress
        return os.isatty(self._fd)

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data).cast("B")
        if self._lost:
            return len(view)
        done = 0
        while done < len(view):
            try:
                done += os.write(self._fd, view[done:])
            except InterruptedError:  # (PEP 475 retries; a handler that raised is not this)
                continue
            except BrokenPipeError:
                raise
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):  # a non-blocking pipe: wait
                    _wait_writable(self._fd)
                    continue
                self._lost = True
                raise OutputLost(exc) from exc
        return done


def _wait_writable(fd: int) -> None:
    import select

    select.select([], [fd], [])


def install() -> None:
    """Put :class:`_WholeWrites` under ``sys.stdout`` (idempotent; a no-op when stdout is
    not a plain file descriptor, e.g. click's test runner or an embedding program)."""
    out = sys.stdout
    if not isinstance(out, io.TextIOWrapper) or isinstance(getattr(out, "buffer", None), _Buffered):
        return
    try:
        fd = out.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return
    try:
        out.flush()
    except OSError:
        return
    sys.stdout = io.TextIOWrapper(
        _Buffered(_WholeWrites(fd), buffer_size=BUFFER_BYTES),
        encoding=out.encoding,
        errors=out.errors,
        newline=None,
        line_buffering=out.line_buffering,
        write_through=False,
    )


class _Buffered(io.BufferedWriter):
    """A buffered writer over :class:`_WholeWrites` (a type of its own: :func:`install`
    recognises a stdout it already replaced)."""


def flush() -> None:
    """Write out what standard output still buffers; :class:`OutputLost` if it cannot."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:  # a stdout install() left alone
        raise OutputLost(exc) from exc


def discard() -> None:
    """Send what standard output still holds, and anything written later, nowhere: its
    reader has gone (the remedy Python's documentation gives for ``SIGPIPE``, so the exit's
    own flush does not fail again)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def results_console(**options: Any) -> Console:
    """A Rich console printing results to standard output (``file`` defaults to it).

    Rich answers a broken pipe with ``SystemExit(1)`` (its ``on_broken_pipe``): a closed
    reader then looked like exit 1, "a bug", and skipped whatever the command still had
    to do (``probe | true`` recorded no pool). Here it stays ``BrokenPipeError``, which
    the command line ends with 141 like every other write to a closed pipe."""
    from rich.console import Console

    class _ResultsConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "standard output's reader closed it")

    options.setdefault("file", sys.stdout)
    return _ResultsConsole(**options)
