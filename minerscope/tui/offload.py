"""Run the triage pipeline in a child process, so the workstation stays responsive.

A thread worker is not enough here: the pipeline's first seconds are spent importing
and initialising native libraries (polars, numba kernels) and scoring blocks
with the GIL held in long stretches, and on a busy machine the Textual event loop then
starves: keys wait tens of seconds. A child process has its own interpreter and can use
the second core. It streams the same :class:`~minerscope.triage.TriageUpdate` objects
back through a bounded queue (pickled: polars frames and numpy arrays), so the app's
worker is still a thin loop over :func:`iter_triage_offloaded`.

Cancellation terminates the child: the rows already received stay on screen. Errors
cross the process boundary as (class name, message) and are raised again as the same
branch of the exception tree (:class:`CaptureError`, :class:`ModelError` ...), with the
one-line message intact. No Textual import here.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minerscope import errors
from minerscope.triage import TriageOptions, TriageUpdate

QUEUE_UPDATES = 4
"""Updates buffered between the child and the app (bounds memory if the UI lags)."""

POLL_S = 0.1
"""How often the waiting thread checks for cancellation and a dead child."""


def prepare() -> None:
    """Start multiprocessing's resource tracker now, while ``sys.stderr`` is the real one.

    Textual replaces ``sys.stderr`` while an app runs; a tracker started then is handed
    that object's bogus file descriptor and ``Process.start`` fails with "bad value(s)
    in fds_to_keep". Call this before the app starts.
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def _child(path: str, options: TriageOptions | None, out: Any) -> None:
    import os

    from minerscope.triage import load_triage_stack

    load_triage_stack()

    # The parent's terminal belongs to the UI: library chatter in the child must not
    # paint over it. Failures still reach the app through the queue.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from minerscope.triage import iter_triage

    try:
        for update in iter_triage(path, options):
            out.put(("update", update))
        out.put(("done", None))
    except errors.MinerscopeError as exc:
        out.put(("error", (type(exc).__name__, str(exc))))
    except Exception as exc:  # a bug in the pipeline: report it as ours, in one line
        out.put(("error", ("InternalError", f"{type(exc).__name__}: {exc}")))


def _rebuild(name: str, message: str) -> errors.MinerscopeError:
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.MinerscopeError)):
        return errors.InternalError(message)
    error = cls.__new__(cls)
    Exception.__init__(error, message)  # the message is already formatted by the child
    return error


_PRESTARTED: dict[tuple[str, TriageOptions | None], tuple[Any, Any]] = {}
"""Triage children started by :func:`prestart`, waiting for the app to read them."""


def _start(path: str | Path, options: TriageOptions | None) -> tuple[Any, Any]:
    ctx = multiprocessing.get_context("spawn")
    out: Any = ctx.Queue(maxsize=QUEUE_UPDATES)
    proc = ctx.Process(target=_child, args=(str(path), options, out), daemon=True, name="minerscope-triage")
    proc.start()
    return proc, out


def prestart(path: str | Path, options: TriageOptions | None = None) -> None:
    """Start triaging ``path`` now; the next :func:`iter_triage_offloaded` of it reads this child.

    ``minerscope open`` calls this before it imports Textual: the child's imports and
    first block (about two CPU-seconds) then run on the second core while the app's
    own imports and startup run on the first, instead of after them. A prestarted child
    that is never read is a daemon: it ends with the app. Like :func:`prepare`, call it
    before the app runs (while ``sys.stderr`` is the real one).
    """
    key = (str(path), options)
    if key not in _PRESTARTED:
        _PRESTARTED[key] = _start(path, options)


def iter_triage_offloaded(
    path: str | Path,
    options: TriageOptions | None = None,
    *,
    cancel: threading.Event | None = None,
) -> Iterator[TriageUpdate]:
    """:func:`minerscope.triage.iter_triage`, computed in a child process.

    Raises:
        minerscope.errors.MinerscopeError: whatever the pipeline raised, same class and message.
        minerscope.errors.InternalError: the child died without saying why.
    """
    started = _PRESTARTED.pop((str(path), options), None)
    proc, out = started if started is not None else _start(path, options)
    try:
        while True:
            if cancel is not None and cancel.is_set():
                return
            try:
                kind, payload = out.get(timeout=POLL_S)
            except queue_module.Empty:
                if not proc.is_alive() and out.empty():
                    raise errors.InternalError(f"triage process exited with code {proc.exitcode}") from None
                continue
            if kind == "update":
                yield payload
            elif kind == "error":
                raise _rebuild(*payload)
            else:
                return
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(timeout=5)
        out.close()
