"""``scan -jN``: triage captures in N processes, the parent being one of them.

A fresh process pays about 0.6 CPU s before its first packet (0.9 when these choices
were measured): importing polars, numba and the
pipeline, loading some thirty numba kernels from the on-disk cache on their first call
and reading the model (xgboost is not imported: scoring walks the trees itself). The
choices, measured on 4 captures of 250k and of 1M packets on 2 cores:

* The parent triages too, and only N-1 workers are spawned: N busy processes on N cores,
  not N workers plus a parent that wants CPU for its own imports and the output (about
  0.3 CPU s less per run). The workers start before the parent loads the pipeline, so
  the start-ups run side by side, one per core. ``-j1`` is plain serial, as before. One
  start-up S stays on the critical path: K captures of c CPU s take about S + K*c/N.
* ``spawn``, not ``fork`` or a ``forkserver`` preloaded with the pipeline. Importing
  polars starts threads (jemalloc's background threads, an out-of-core cleanup thread),
  and the kernels load only by running triage, which starts
  polars' thread pool: forking such a process can deadlock the child. What is thread-free
  and safe to preload, numpy and numba, is ~0.15 s of the 0.9. And a fork server saves
  CPU, not wall time: its own start-up sits on the critical path before any worker can
  fork, just as a spawned worker's start-up does, while here that start-up runs beside
  the parent's. ``spawn`` also behaves the same on Linux and macOS.
* Work is handed out one capture at a time, as a worker becomes free (a done-callback
  submits the next), and the parent takes the next capture only when the one it must
  print next is not ready: nobody queues captures an idle process could have taken, and
  the parent's output never waits behind its own backlog.
* Results come back in input order, so the output is a serial run's. At most ``2 * N``
  captures are claimed and not yet handed back, so finished results waiting behind a slow
  capture cannot pile up in the parent.

A worker that dies (killed, out of memory) breaks the pool: the captures the pool held
(one per worker) are each reported as an :class:`~minerscope.errors.InternalError`
outcome (exit status 1), and the parent triages the captures nobody had claimed yet.

This module imports nothing heavy: a spawned worker imports it to find
:func:`triage_one` before its first capture.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from minerscope import errors


class Outcome(NamedTuple):
    """One capture's triage, as it crosses back from a worker."""

    path: str
    rows: Any  # the scored rows (a polars frame), None on error
    complete: bool
    warning: str | None
    error: str | None  # "Class:message"
    packets: int  # packets in the file (kept by ``--bpf`` or not)
    stream: tuple[str, int] | None = None  # a stream's (SHA-256, size), hashed as it was read
    damage: str | None = None  # the reader's "damaged at byte N: why" (None: whole)
    sensor_dropped: int | None = None  # what the capture says its sensor dropped (None: nothing)


Work = Callable[[str, Any], Outcome]
"""Triage one capture: ``(path, options) -> Outcome``; must be importable by a worker."""


_working = False
"""Whether this worker process is inside a capture's work (not idle, not handing back)."""


def quiet_interrupt() -> None:
    """A worker's Ctrl-C: abort the capture it works on, and nothing else.

    The terminal sends SIGINT to the whole process group. Left to Python's default, each
    worker printed a KeyboardInterrupt traceback, and one interrupted while handing its
    result back left half a message in the pool's result pipe: the parent's pool thread
    then waited for the rest forever (seen: ``scan -j2`` hung after Ctrl-C). Now the
    interrupt raises only inside :func:`_guarded` work, whose exception goes back whole
    like any result; idle or sending, a worker ignores it and the parent's pool shutdown
    ends it in order."""
    import signal

    from minerscope.cli import settle_sigint

    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a shell's background job
    settle_sigint(signal.SIG_IGN if ignored else _on_interrupt)


def _on_interrupt(_signum: int, _frame: object) -> None:
    if _working:
        raise KeyboardInterrupt


def _guarded(work: Work, path: str, options: Any) -> Outcome:
    """``work(path, options)`` in a worker, interruptible (see :func:`quiet_interrupt`)."""
    global _working
    _working = True
    try:
        return work(path, options)
    except Exception as exc:
        # numba re-raises an interrupt that lands in a kernel as SystemError, and pickling
        # the exception back to the parent drops its context: send the interrupt itself
        from minerscope.cli import interrupted

        if interrupted(exc):
            raise KeyboardInterrupt from None
        raise
    finally:
        _working = False


def triage_one(path: str, options: Any, on_update: Callable[[Any], None] | None = None) -> Outcome:
    """Triage one capture, in the parent or a worker; input errors become the outcome's error.

    ``on_update`` (the parent only: a progress display) sees every
    :class:`~minerscope.triage.TriageUpdate`."""
    from minerscope.triage import load_triage_stack, triage_rows

    load_triage_stack()

    try:
        rows, report = triage_rows(path, options, on_update=on_update)
    except errors.MinerscopeError as exc:
        return Outcome(path, None, False, None, f"{type(exc).__name__}:{exc}", 0)
    stream = None if report.sha256 is None else (report.sha256, report.size)
    return Outcome(
        path,
        rows,
        report.complete,
        report.warning,
        None,
        report.packets + report.filtered,
        stream,
        report.damage,
        report.capture_dropped,
    )


def triage_in_order(
    paths: Sequence[str], options: Any, jobs: int, work: Work = triage_one, local_work: Work | None = None
) -> Iterator[Outcome]:
    """``work(path, options)`` for every path, in ``jobs`` processes; yields in input order.

    The parent's own share runs ``local_work`` instead when given (the same work with a
    progress display attached, which cannot cross to a worker process)."""
    jobs = min(jobs, len(paths))
    local = local_work or work
    if jobs <= 1:
        for path in paths:
            yield local(path, options)
        return
    pool = ProcessPoolExecutor(
        max_workers=jobs - 1, mp_context=multiprocessing.get_context("spawn"), initializer=quiet_interrupt
    )
    dispatch = _Dispatch(paths, options, work, pool, capacity=jobs - 1, window=2 * jobs, local=local)
    try:
        dispatch.top_up()  # the workers start now, before the parent imports the pipeline
        yield from dispatch.results()
    finally:
        dispatch.close()
        pool.shutdown(wait=True, cancel_futures=True)


class _Dispatch:
    """Claims captures in input order for the pool and the parent; returns results in that order.

    ``slots`` holds, per claimed and not yet yielded index, the pool's future or the
    parent's outcome. Claims and slot updates happen under one lock, because the pool's
    done-callbacks claim from its manager thread.
    """

    def __init__(
        self,
        paths: Sequence[str],
        options: Any,
        work: Work,
        pool: ProcessPoolExecutor,
        capacity: int,
        window: int,
        local: Work,
    ) -> None:
        self.paths = paths
        self.options = options
        self.work = work
        self.local = local  # what the parent runs itself
        self.pool: ProcessPoolExecutor | None = pool
        self.capacity = capacity  # captures in the pool at once: one per worker
        self.window = window
        self.lock = threading.RLock()  # a callback can run inside submit's caller
        self.slots: dict[int, Future[Outcome] | Outcome] = {}
        self.claimed = 0  # captures 0 .. claimed-1 belong to someone
        self.yielded = 0
        self.busy = 0  # futures submitted and not done
        self.closed = False

    def _claim(self) -> int | None:
        """Index of the next unclaimed capture, if the window allows one more (lock held)."""
        if self.closed or self.claimed >= len(self.paths) or self.claimed - self.yielded >= self.window:
            return None
        self.claimed += 1
        return self.claimed - 1

    def top_up(self) -> None:
        """Give each free worker its next capture."""
        with self.lock:
            while self.pool is not None and self.busy < self.capacity:
                index = self._claim()
                if index is None:
                    return
                try:
                    future = self.pool.submit(_guarded, self.work, self.paths[index], self.options)
                except (BrokenProcessPool, RuntimeError):  # broken, or shut down under us
                    self.claimed -= 1
                    self.pool = None
                    return
                self.busy += 1
                self.slots[index] = future
                future.add_done_callback(self._done)

    def _done(self, _future: Future[Outcome]) -> None:
        with self.lock:
            self.busy -= 1
        self.top_up()

    def results(self) -> Iterator[Outcome]:
        while self.yielded < len(self.paths):
            with self.lock:
                head = self.slots.get(self.yielded)
            if isinstance(head, Future) and not head.done():
                with self.lock:
                    index = self._claim()
                if index is not None:  # the next capture is not ready: take one meanwhile
                    outcome = self.local(self.paths[index], self.options)
                    with self.lock:
                        self.slots[index] = outcome
                    continue
            if head is None:  # nobody holds it (the pool broke): the parent does it
                with self.lock:
                    index = self._claim()
                assert index == self.yielded, (index, self.yielded)
                head = self.local(self.paths[index], self.options)
            outcome = self._outcome(self.yielded, head)
            with self.lock:
                self.slots.pop(self.yielded, None)
                self.yielded += 1
            self.top_up()  # the window moved on
            yield outcome

    def _outcome(self, index: int, head: Future[Outcome] | Outcome) -> Outcome:
        """The head's outcome, waiting for its worker; a dead worker's capture fails alone."""
        if not isinstance(head, Future):
            return head
        try:
            return head.result()
        except BrokenProcessPool:
            with self.lock:
                self.pool = None
            path = self.paths[index]
            message = f"{path}: the worker process triaging it ended unexpectedly (killed, or out of memory?)"
            return Outcome(path, None, False, None, f"{errors.InternalError.__name__}:{message}", 0)

    def close(self) -> None:
        """No more claims: done-callbacks that fire during shutdown submit nothing."""
        with self.lock:
            self.closed = True
