"""``minerscope live``: capture on an interface and print one JSONL record per verdict as it appears.

Library first: the work is :func:`minerscope.live.iter_live`; this module prints its
rows as ``scan --format jsonl`` records (one line each, flushed, so a pipe sees every
verdict at once), turns SIGINT/SIGTERM into a clean stop that still scores the flows
left open, and, with ``--probe``, hands the endpoints stage 1 flags to a background
thread running stage 2 (:mod:`minerscope.stage2`) so probing never stalls the capture.
When a probe finishes, the latest record of that endpoint is printed again with its
``probe`` field filled; later records of the endpoint carry it too.

``--tui`` shows the same stream in the workstation instead (Textual imported only then).
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from minerscope import errors
from minerscope.cli.common import (
    ExitCode,
    blacklist_option,
    bpf_option,
    fail,
    idle_timeout_option,
    model_option,
    probe_timeout_option,
    progress_note,
    progress_wanted,
    reading_status,
    seconds,
    stderr_progress,
)
from minerscope.cli.output import row_to_record, write_jsonl
from minerscope.untrusted import clean

Endpoint = tuple[str, int]

MAX_REMEMBERED = 10_000
"""Security limit: endpoints whose latest record is kept for reprinting with its probe outcome."""
STORE_EVERY_S = 2.0
"""Seconds between writes of finished flows to the case file during a live capture."""
SLOW_START_S = 3.0
"""Seconds before the capture opens after which a line says why it is taking long."""


class _Prober:
    """Stage 2 on a worker thread: endpoints in, (endpoint, ProbeSummary) out."""

    def __init__(self, options: Any, db_path: Path | None) -> None:
        self.options = options
        self.db_path = db_path
        self.todo: queue.Queue[Endpoint | None] = queue.Queue()
        self.done: queue.Queue[tuple[Endpoint, Any]] = queue.Queue()
        self.asked: set[Endpoint] = set()
        self.pending = 0
        self.thread = threading.Thread(target=self._work, name="minerscope-live-probe", daemon=True)
        self.thread.start()

    def ask(self, endpoint: Endpoint) -> None:
        if endpoint not in self.asked:
            self.asked.add(endpoint)
            self.pending += 1
            self.todo.put(endpoint)

    def _work(self) -> None:
        from minerscope.stage2 import ProbeSummary, probe_endpoints

        while (endpoint := self.todo.get()) is not None:
            try:
                outcome = probe_endpoints([endpoint], self.options, db_path=self.db_path)
                summary = outcome.get(endpoint) or ProbeSummary.skipped("no verdict")
            except errors.MinerscopeError as exc:
                summary = ProbeSummary.skipped(str(exc))
            self.done.put((endpoint, summary))

    def results(self, timeout: float | None = None) -> list[tuple[Endpoint, Any]]:
        out: list[tuple[Endpoint, Any]] = []
        try:
            if timeout is not None and self.pending:
                out.append(self.done.get(timeout=timeout))
            while True:
                out.append(self.done.get_nowait())
        except queue.Empty:
            pass
        self.pending -= len(out)
        return out

    def stop(self) -> None:
        self.todo.put(None)


@click.command(name="live")
@click.option(
    "-i",
    "--interface",
    required=True,
    metavar="IFACE",
    help="Network interface to capture on (any: all of them); - (or a FIFO's path): a pcap stream piped in.",
)
@bpf_option
@click.option("--duration", "duration_s", type=seconds(), default=None, help="Stop after this many seconds.")
@click.option(
    "--count", "max_packets", type=click.IntRange(min=1), default=None, help="Stop after N packets."
)
@click.option(
    "--window",
    "window_s",
    type=seconds(),
    default=300.0,
    show_default=True,
    help="Feature window (seconds): flows are cut and scored each time one closes.",
)
@idle_timeout_option
@model_option
@blacklist_option("Indicator file (plain list, hosts file or CSV) for stage 0; repeatable.")
@click.option("--only-suspicious", is_flag=True, help="Print only records whose verdict is mining.")
@click.option("--promisc", is_flag=True, help="Put the interface in promiscuous mode.")
@click.option(
    "--probe",
    "do_probe",
    is_flag=True,
    help="Stage 2: probe endpoints stage 1 flags, in the background (sends traffic).",
)
@click.option(
    "--scope",
    "scope_allow",
    multiple=True,
    metavar="CIDR",
    help="Networks --probe (and, with --tui, the probe key without asking) may contact (repeatable). "
    "Default: loopback only.",
)
@click.option(
    "--deny", "scope_deny", multiple=True, metavar="CIDR", help="Networks --probe must never contact."
)
@probe_timeout_option
@click.option("--no-store", is_flag=True, help="Do not record the session's flows in the case file.")
@click.option("--tui", is_flag=True, help="Show the live flows in the analyst workstation instead.")
@click.option("--quiet", "-q", is_flag=True, help="No status lines on stderr.")
@click.pass_context
def live(
    ctx: click.Context,
    interface: str,
    bpf: str | None,
    duration_s: float | None,
    max_packets: int | None,
    window_s: float,
    idle_timeout: float,
    model: str | None,
    blacklists: Sequence[str],
    only_suspicious: bool,
    promisc: bool,
    do_probe: bool,
    scope_allow: Sequence[str],
    scope_deny: Sequence[str],
    probe_timeout: float,
    no_store: bool,
    tui: bool,
    quiet: bool,
) -> None:
    """Capture on IFACE (or read a capture piped in: -i -) and print one JSONL record per
    verdict, as verdicts appear.

    Records have the fields of ``scan --format jsonl``. A flow gets a record each time
    one of its feature windows closes (``--window``) and when it ends; records of one
    connection share src, sport, dst, dport. Ctrl-C (or SIGTERM, --duration, --count)
    stops the capture; flows still open are then scored and printed (Ctrl-C twice: at once).

    Needs root or CAP_NET_RAW (e.g. ``sudo setcap cap_net_raw,cap_net_admin+eip
    $(readlink -f .venv/bin/python)``); without it, exits 4 with one line saying so.
    Exits 3 when the kernel dropped packets. ``-i any`` captures on every interface.

    ``-i -`` reads a pcap/pcapng stream from standard input instead (``-i PATH``: from a
    FIFO), as it arrives, e.g. from a sensor: ``ssh SENSOR tcpdump -U -w - 'not port 22'
    | minerscope live -i -`` (no privilege needed here; the stream's end ends the session;
    exits 3 when it was cut inside a record).

    The case file's blacklist feeds stage 0, and the session's scored flows are recorded
    there as capture ``live:IFACE`` (every couple of seconds; not with --no-store); with
    --probe, verdicts are recorded there too and confirmed pools join the blacklist (the
    probe's own connections are captured too when they pass the filter).
    """
    from rich.progress import TextColumn

    from minerscope.capture.live import LiveCapture, capture_source
    from minerscope.flows.records import server_endpoint
    from minerscope.live import LiveOptions, iter_live
    from minerscope.store import default_db_path
    from minerscope.triage import TriageOptions, live_status

    db = (ctx.find_root().obj or {}).get("db")
    db_path = Path(db) if db else default_db_path()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    options = TriageOptions(
        model=model,
        blacklist_files=tuple(Path(b) for b in blacklists),
        db_path=db_path,
        idle_timeout=idle_timeout,
        window_s=window_s,
    )
    live_options = LiveOptions(
        interface=interface, bpf=bpf, promisc=promisc, duration_s=duration_s, max_packets=max_packets
    )
    try:  # what records, status lines and the case file call it (stdin for -)
        source = capture_source(interface, bpf=bpf, promisc=promisc)
    except errors.InputError as exc:
        fail(exc)
    label = source.name
    streamed = not isinstance(source, LiveCapture)
    if tui:
        if do_probe:  # not silently ignored: the workstation probes on the analyst's key
            raise click.UsageError("--probe is for the headless stream; in the workstation press p on a flow")
        from minerscope.probe.scope import Scope

        try:  # --scope/--deny: where the workstation's p probes without asking, and never
            probe_scope = Scope.for_capture(scope_allow, scope_deny)
        except errors.InputError as exc:
            fail(exc)
        recorded = None if no_store else (db_path, label, streamed)
        _run_tui(live_options, options, db_path, probe_scope, recorded)
        ctx.exit(int(ExitCode.OK))

    prober = None
    skip: set[Endpoint] = set()
    if do_probe:
        from minerscope.probe.runner import ProbeOptions
        from minerscope.probe.scope import Scope
        from minerscope.store import open_store

        try:
            scope = Scope.for_capture(scope_allow, scope_deny)
        except errors.InputError as exc:
            fail(exc)
        try:
            with open_store(db_path) as store:
                skip = {(h, p) for h, p, _status in store.endpoint_status()}
        except errors.StoreError as exc:
            fail(exc)
        prober = _Prober(ProbeOptions(scope=scope, total_deadline=probe_timeout), db_path)

    cancel = threading.Event()
    opening = threading.Event()  # set while the capture opens: nothing is captured yet

    def stop(*_: object) -> None:
        if opening.is_set():  # (a FIFO waiting for its writer blocks in open: one Ctrl-C ends it)
            raise _StoppedWhileOpening
        if cancel.is_set():  # asked twice: stop now, without scoring what is open
            raise KeyboardInterrupt
        cancel.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = ExitCode.OK
    try:
        case = None if no_store else _CaseWriter(db_path, label)
    except errors.StoreError as exc:
        fail(exc)
    latest: dict[Endpoint, dict[str, Any]] = {}
    probed: dict[Endpoint, dict[str, Any]] = {}

    def emit(records: list[dict[str, Any]]) -> None:
        if only_suspicious:
            records = [r for r in records if r.get("verdict") == "mining"]
        if records:
            write_jsonl(records)

    def collect_probes(timeout: float | None = None) -> None:
        if prober is None:
            return
        again = []
        for endpoint, summary in prober.results(timeout):
            probed[endpoint] = summary.to_json()
            record = latest.get(endpoint)
            if record is not None:
                again.append({**record, "probe": probed[endpoint]})
        emit(again)

    announced = False
    # The packet kernels compile before the ring opens; on a machine's first run that takes
    # tens of seconds, which deserves a word rather than silence.
    slow = "a machine's first run compiles the packet code; up to a minute"
    preparing = threading.Timer(
        SLOW_START_S,
        lambda: click.echo(
            f"minerscope: waiting for the stream's first bytes on {clean(label)} (or: {slow})"
            if streamed
            else f"minerscope: preparing the capture ({slow})",
            err=True,
        ),
    )
    preparing.daemon = True
    if not quiet:
        preparing.start()
    # one transient status line on a terminal (packets, flows held open, kernel drops),
    # not while the records stream onto that same terminal
    bar = (
        stderr_progress(TextColumn("{task.description}"))
        if progress_wanted(quiet, results_stream=True)
        else None
    )
    task = bar.add_task("", total=None) if bar is not None else None
    try:
        opening.set()
        for update in iter_live(interface, options, cancel=cancel, live=live_options):
            opening.clear()
            preparing.cancel()
            if not announced and not quiet:
                announced = True
                where = f" (filter: {bpf})" if bpf else ""
                doing = "reading the stream on" if streamed else "capturing on"
                progress_note(f"{doing} {clean(label)}{where}; Ctrl-C stops")
                if bar is not None:
                    bar.start()
            if bar is not None and task is not None:
                state = live_status(update.packets, update.open_flows, update.dropped)
                probes = f" · {len(probed):,} endpoints probed" if prober is not None else ""
                line = f"{label}: {state} · {update.flows_scored:,} scored{probes}"
                bar.update(task, description=clean(line))
            if case is not None:
                case.add_update(update, streamed=streamed)
            records: list[dict[str, Any]] = []
            if update.rows is not None:
                for row in update.rows.iter_rows(named=True):
                    record = row_to_record(row)
                    endpoint = server_endpoint(record)
                    if endpoint in probed:
                        record["probe"] = probed[endpoint]
                    if prober is not None:  # kept to reprint once the endpoint's probe is done
                        latest.pop(endpoint, None)
                        latest[endpoint] = record
                        if len(latest) > MAX_REMEMBERED:
                            latest.pop(next(iter(latest)))
                    records.append(record)
            emit(records)
            if prober is not None:
                from minerscope.stage2 import suspicious_endpoints

                for endpoint in suspicious_endpoints(records):
                    if endpoint not in skip:
                        prober.ask(endpoint)
                collect_probes()
            if update.done and update.report is not None:
                status = reading_status(
                    update.report.complete, update.report.warning, f"{label}: packets were lost"
                )
    except _StoppedWhileOpening:
        if not quiet:
            progress_note(f"stopped before {clean(label)} delivered a packet: nothing to score")
    except errors.MinerscopeError as exc:
        fail(exc)
    finally:
        opening.clear()
        preparing.cancel()
        if bar is not None:
            bar.stop()
        if case is not None:
            case.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if prober is not None:
        # finish the probes already asked for (each is bounded by --probe-timeout) unless interrupted again
        cancel.clear()
        signal.signal(signal.SIGINT, lambda *_: cancel.set())
        try:
            while prober.pending and not cancel.is_set():
                collect_probes(timeout=0.25)
        finally:
            signal.signal(signal.SIGINT, previous[signal.SIGINT])
            prober.stop()
    sys.stdout.flush()
    ctx.exit(int(status))


class _StoppedWhileOpening(Exception):
    """Ctrl-C or SIGTERM before the capture was open: there is nothing to score, so the
    session ends at once (the stream's open may be blocked waiting for a writer)."""


class _CaseWriter:
    """Records a live session's scored flows in the case file, as ``scan`` does for a file.

    The session is one capture (``live:IFACE``); rows are written in batches at most every
    :data:`STORE_EVERY_S` (and at the end), so a busy link costs a transaction per batch,
    not per finished flow.
    """

    def __init__(self, db_path: Path, interface: str) -> None:
        from minerscope.store import open_store

        self._store = open_store(db_path)
        self._interface = interface
        self._started = time.time()
        self._capture_id: int | None = None
        self._pending: list[Any] = []
        self._flushed = time.monotonic()
        self._packets = 0
        self._reading: tuple[bool, str, int | None] | None = None

    def add(
        self, rows: Any, *, packets: int, final: bool, reading: tuple[bool, str, int | None] | None = None
    ) -> None:
        """Take a batch of rows; ``reading`` (at the end): complete, damage line, packets dropped
        by the kernel (an interface) or by the sensor (a stream's pcapng statistics)."""
        if rows is not None and rows.height:
            self._pending.append(rows)
        self._packets = packets
        self._reading = reading or self._reading
        if final or time.monotonic() - self._flushed >= STORE_EVERY_S:
            self.flush(final=final)

    def add_update(self, update: Any, *, streamed: bool) -> None:
        """Take one of the live pipeline's updates (:func:`minerscope.live.iter_live`); the
        last carries what the session's reading found: a stream's damage and its sensor's
        drops (pcapng statistics), or the kernel's drops on an interface."""
        reading = None
        if update.done and update.report is not None:
            report = update.report
            dropped = report.capture_dropped if streamed else update.dropped
            reading = (report.complete, report.damage or "", dropped)
        self.add(update.rows, packets=update.packets, final=update.done, reading=reading)

    def flush(self, *, final: bool = False) -> None:
        """Write the rows waiting; at the end (``final``) the session's reading and packet
        count too, rows or not: a session whose flows were all written earlier (or that had
        none) ended with an empty ``read`` in ``case show``, its damage and drops lost."""
        import polars as pl

        self._flushed = time.monotonic()
        if not self._pending and not final:
            return
        rows = pl.concat(self._pending, how="diagonal_relaxed") if self._pending else None
        self._pending.clear()
        if self._capture_id is None:
            self._capture_id = self._store.add_live_capture(self._interface, started=self._started)
        if rows is not None:
            self._store.record_flows(self._capture_id, rows)
        complete, damage, dropped = self._reading or (None, "", None)
        self._store.update_capture(
            self._capture_id,
            packets=self._packets,
            first_ts=None if rows is None else rows["first_seen"].min(),
            last_ts=None if rows is None else rows["last_seen"].max(),
            complete=complete,
            damage=damage,
            sensor_dropped=dropped,
        )

    def close(self) -> None:
        try:
            self.flush(final=True)
        finally:
            self._store.close()


def _recording(loader: Any, db_path: Path, label: str, streamed: bool) -> Any:
    """``loader`` (the workstation's: :func:`minerscope.live.iter_live`) with every update
    also recorded in the case file, as the headless session records them (``live --tui``
    left no capture in the case file: only its probes and notes)."""

    def run(*args: Any, **kwargs: Any) -> Iterator[Any]:
        case = _CaseWriter(db_path, label)  # (its connection belongs to the loader's thread)
        try:
            for update in loader(*args, **kwargs):
                case.add_update(update, streamed=streamed)
                yield update
        finally:
            case.close()

    return run


def _run_tui(
    live_options: Any,
    options: Any,
    db_path: Path,
    probe_scope: Any = None,
    recorded: tuple[Path, str, bool] | None = None,
) -> None:
    """The workstation, fed by the live pipeline (checked first, so errors print as one
    line); ``recorded``: (case file, capture label, a stream?) to record the session in."""
    from functools import partial

    from minerscope.capture.live import LiveCapture, capture_source
    from minerscope.live import iter_live

    try:
        if live_options.interface == "-":
            raise errors.InputError(
                "-i -: the workstation reads its keys from standard input; give the stream a FIFO "
                "(mkfifo /tmp/tap; ssh SENSOR tcpdump -U -w - > /tmp/tap & minerscope live --tui -i /tmp/tap)"
            )
        capture = capture_source(live_options.interface, bpf=live_options.bpf, promisc=live_options.promisc)
        if isinstance(capture, LiveCapture):
            with capture:
                pass  # privileges, interface and filter, before the screen takes over the terminal
        else:
            capture.check()  # (opening a FIFO to look would take the writer's first bytes)
    except errors.MinerscopeError as exc:
        fail(exc)
    from minerscope.cli.tui_cmd import run_workstation  # the CLI's one door into Textual

    run_workstation(
        [Path(live_options.interface)],
        db_path=db_path,
        options=options,
        loader=partial(iter_live, live=live_options)
        if recorded is None
        else _recording(partial(iter_live, live=live_options), *recorded),
        probe_scope=probe_scope,
    )
