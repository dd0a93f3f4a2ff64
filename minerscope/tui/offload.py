"""Run the triage pipeline in a child process, so the workstation stays responsive.

A thread worker is not enough here: the pipeline's first seconds are spent importing
and initialising native libraries (polars, numba kernels) and scoring blocks
with the GIL held in long stretches, and on a busy machine the Textual event loop then
starves: keys wait tens of seconds. A child process has its own interpreter and can use
the second core. It streams the same :class:`~minerscope.triage.TriageUpdate` objects
back through a bounded queue (pickled: polars frames and numpy arrays), so the app's
worker is still a thin loop over :func:`iter_triage_offloaded`.

One child serves the captures of a load in turn: its start-up (imports, kernels, model:
one to two CPU-seconds) is paid once, not per capture. With a child per capture, opening
a folder of 52 small captures took ~2 s a capture, where ``scan`` needs 0.1. Between
captures it waits, idle; the app closes idle children when a load ends (:func:`close_idle`).

Cancellation terminates the child: the rows already received stay on screen. Errors
cross the process boundary as (class name, message) and are raised again as the same
branch of the exception tree (:class:`CaptureError`, :class:`ModelError` ...), with the
one-line message intact; the child then waits for the next capture. No Textual import here.
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


def _serve(options: TriageOptions | None, requests: Any, out: Any) -> None:
    """The child: triage each path ``requests`` hands over, streaming its updates to ``out``
    and then ``done`` or ``error``; None ends it."""
    import os

    from minerscope.triage import load_triage_stack

    load_triage_stack()

    # The parent's terminal belongs to the UI: library chatter in the child must not
    # paint over it. Failures still reach the app through the queue.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from minerscope.triage import iter_triage

    while (path := requests.get()) is not None:
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


class _Child:
    """One triage process and its two queues: paths in, updates out."""

    def __init__(self, options: TriageOptions | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.options = options
        self.requests: Any = ctx.Queue()
        self.out: Any = ctx.Queue(maxsize=QUEUE_UPDATES)
        self.proc = ctx.Process(
            target=_serve, args=(options, self.requests, self.out), daemon=True, name="minerscope-triage"
        )
        self.proc.start()

    def send(self, path: str | Path) -> None:
        self.requests.put(str(path))

    def stop(self) -> None:
        """End the process now (cancelled mid-capture: its queue still holds updates)."""
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(timeout=5)
        for q in (self.requests, self.out):
            q.close()


_lock = threading.Lock()
_IDLE: list[_Child] = []
"""Children that finished a capture and wait for the next one."""
_PRESTARTED: dict[tuple[str, TriageOptions | None], _Child] = {}
"""Children started by :func:`prestart` on a path, waiting for the app to read it."""


def _child_for(path: str | Path, options: TriageOptions | None) -> _Child:
    """A child triaging ``path``: the prestarted one, an idle one with the same options, or new."""
    with _lock:
        child = _PRESTARTED.pop((str(path), options), None)
        if child is not None:
            return child
        for i, idle in enumerate(_IDLE):
            if idle.options == options and idle.proc.is_alive():
                child = _IDLE.pop(i)
                break
    if child is None:
        child = _Child(options)
    child.send(path)
    return child


def prestart(path: str | Path, options: TriageOptions | None = None) -> None:
    """Start triaging ``path`` now; the next :func:`iter_triage_offloaded` of it reads this child.

    ``minerscope open`` calls this before it imports Textual: the child's imports and
    first block (about two CPU-seconds) then run on the second core while the app's
    own imports and startup run on the first, instead of after them. A prestarted child
    that is never read is a daemon: it ends with the app. Like :func:`prepare`, call it
    before the app runs (while ``sys.stderr`` is the real one).
    """
    key = (str(path), options)
    with _lock:
        if key in _PRESTARTED:
            return
    child = _Child(options)
    child.send(path)
    with _lock:
        _PRESTARTED[key] = child


def close_idle() -> None:
    """End the children waiting for work (a load is over: give their memory back)."""
    with _lock:
        idle = list(_IDLE)
        _IDLE.clear()
    for child in idle:
        child.requests.put(None)
        child.proc.join(timeout=5)
        child.stop()


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
    child = _child_for(path, options)
    reusable = False  # only a child that answered to the end may take the next capture
    try:
        while True:
            if cancel is not None and cancel.is_set():
                return
            try:
                kind, payload = child.out.get(timeout=POLL_S)
            except queue_module.Empty:
                if not child.proc.is_alive() and child.out.empty():
                    raise errors.InternalError(
                        f"triage process exited with code {child.proc.exitcode}"
                    ) from None
                continue
            if kind == "update":
                yield payload
            elif kind == "error":
                reusable = True
                raise _rebuild(*payload)
            else:
                reusable = True
                return
    finally:
        if reusable:
            with _lock:
                _IDLE.append(child)
        else:
            child.stop()
