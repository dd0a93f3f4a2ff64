"""``minerscope scan``: the two-stage pipeline over captures, one record per flow.

Library first: the work is :func:`minerscope.triage.triage_rows` per capture; this
module only fans captures out to worker processes, shows progress on stderr, joins probe
outcomes in, and prints. Without ``--probe`` nothing is sent on the network, so offline
forensics is safe by default.

Many captures run in ``-j`` processes (one per core by default; the parent is one of
them, see :mod:`minerscope.cli.workers`), and results are consumed in input order: output
is identical to a serial run, and the parent holds one capture's rows at a time when it
can stream (JSONL or CSV without ``--probe``), so memory stays bounded however large the
directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from minerscope import errors
from minerscope.capture.discover import is_stream
from minerscope.cli.common import (
    ExitCode,
    active_timeout_option,
    blacklist_option,
    bpf_option,
    captures_with_sample,
    error_line,
    exit_code_for,
    fail,
    idle_timeout_option,
    model_option,
    probe_timeout_option,
    progress_wanted,
    reading_status,
    stderr_progress,
)
from minerscope.cli.output import (
    SCAN_FIELDS,
    frame_to_records,
    write_csv,
    write_csv_frame,
    write_jsonl,
    write_jsonl_frame,
    write_table,
)
from minerscope.cli.workers import Outcome, triage_in_order
from minerscope.untrusted import clean

if TYPE_CHECKING:
    from minerscope.probe.scope import Scope


def _mark_analyst(
    store: Any,
    status: dict[tuple[str, int], str],
    outcome: Outcome,
    sha256: str | None = None,
    *,
    record: bool = True,
    case_id: int | None = None,
) -> Any:
    """Record one capture and its flows in the case file (unless not ``record``); add the
    ``analyst`` column to its rows.

    ``analyst`` is ``dismissed`` (allowlisted endpoint), ``confirmed`` (a confirmed pool),
    or "". ``sha256``: the capture's hash if already known (else the store hashes it); a
    stream's comes with the outcome. The capture row, its reading and its flows are written
    in one transaction: a scan stopped in between leaves no capture that claims to have
    been read whole with none of its flows.
    """
    import polars as pl

    rows = outcome.rows
    if record:
        size = None
        if outcome.stream is not None:  # a pipe: hashed by its reader, there is no file to hash
            sha256, size = outcome.stream
        store.record_capture(
            outcome.path,
            rows,
            case_id=case_id,
            packets=outcome.packets,
            first_ts=rows["first_seen"].min() if rows.height else None,
            last_ts=rows["last_seen"].max() if rows.height else None,
            sha256=sha256,
            size=size,
            complete=outcome.complete,
            damage=outcome.damage or "",
            sensor_dropped=outcome.sensor_dropped,
        )
    if not rows.height:  # a capture without flows: its frame may have no columns to mark
        return rows
    rows = store.mark_dismissed(rows)
    column: pl.Series | pl.Expr
    if status:
        analyst = [
            "dismissed" if dismissed else status.get((dst, dport), "")
            for dst, dport, dismissed in rows.select("dst", "dport", "dismissed").iter_rows()
        ]
        column = pl.Series("analyst", analyst, pl.Utf8)
    else:
        column = pl.when(pl.col("dismissed")).then(pl.lit("dismissed")).otherwise(pl.lit("")).alias("analyst")
    return rows.with_columns(column)


@click.command(name="scan")
@click.argument("captures", nargs=-1, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl", "csv"]),
    default="table",
    show_default=True,
    help="Output format on stdout.",
)
@model_option
@blacklist_option("Indicator file (plain list, hosts file or CSV) for stage 0; repeatable.")
@idle_timeout_option
@active_timeout_option
@bpf_option
@click.option(
    "--jobs",
    "-j",
    default=0,
    type=click.IntRange(min=0),
    help="Worker processes for many captures (default 0: one per core).",
)
@click.option("--only-suspicious", is_flag=True, help="Print only flows whose verdict is mining.")
@click.option(
    "--probe",
    "do_probe",
    is_flag=True,
    help="Stage 2: probe the endpoints stage 1 flags (sends traffic; off by default).",
)
@click.option(
    "--scope",
    "scope_allow",
    multiple=True,
    metavar="CIDR",
    help="Networks --probe may contact (repeatable). Default: loopback only.",
)
@click.option(
    "--deny",
    "scope_deny",
    multiple=True,
    metavar="CIDR",
    help="Networks --probe must never contact, even inside --scope (repeatable).",
)
@probe_timeout_option
@click.option(
    "--case",
    "case_id",
    type=click.IntRange(min=1),
    default=None,
    metavar="ID",
    help="Case (id from `case list`; `case new NAME` makes one) the captures, flows and probes "
    "are recorded in. Default: the default case.",
)
@click.option(
    "--no-store",
    is_flag=True,
    help="Do not record the scan in the case file (an existing one's blacklist and allowlist still apply).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.pass_context
def scan(
    ctx: click.Context,
    captures: Sequence[str],
    fmt: str,
    model: str | None,
    blacklists: Sequence[str],
    idle_timeout: float,
    active_timeout: float | None,
    bpf: str | None,
    jobs: int,
    only_suspicious: bool,
    do_probe: bool,
    scope_allow: Sequence[str],
    scope_deny: Sequence[str],
    probe_timeout: float,
    case_id: int | None,
    no_store: bool,
    quiet: bool,
) -> None:
    """Run stage 0 and stage 1 over CAPTURES (files or directories) and print one record per flow.

    With no CAPTURES (or the word ``sample`` among them) scans the bundled sample capture,
    with its sample blacklist. ``-`` reads a capture piped in (``tcpdump -w - ... | minerscope
    scan -``); a pipe is read once, by this process.
    Every capture, flow and score is recorded in the case file (``--db``; see
    ``--no-store``), whose blacklist feeds stage 0 and whose allowlist marks dismissed
    flows (``analyst`` field).
    JSONL fields: capture, src, sport, dst, dport, proto, first_seen, last_seen, packets,
    bytes, sni, dns_names, proxy_host, proxy_port (a proxy's tunnel target), stage0,
    p_mining, stage1, verdict, coin, coin_probs,
    top_features, window, analyst, probe.

    Without --probe nothing is sent on the network. With it, the distinct endpoints
    stage 1 flags (not confirmed or dismissed already) are probed in every mining
    dialect, inside --scope only (default: loopback), and the outcome is joined into
    each record's ``probe`` field; confirmed pools join the case file's blacklist.
    """
    from minerscope.triage import TriageOptions

    try:
        files, sample_lists = captures_with_sample(captures)
    except errors.InputError as exc:
        fail(exc)
    blacklists = [*blacklists, *(str(b) for b in sample_lists)]
    scope = None
    if do_probe:  # before any work: a mistyped network must not cost a whole triage
        from minerscope.probe.scope import Scope

        try:
            scope = Scope.for_capture(scope_allow, scope_deny)
        except errors.InputError as exc:
            fail(exc)
    paths = [str(p) for p in files]
    from minerscope.userdirs import default_db_path  # (not the store: --no-store need not load it)

    db = (ctx.obj or {}).get("db")
    chosen = Path(db) if db else default_db_path()
    # --no-store writes nothing, but an existing case file's blacklist still feeds stage 0
    # and its allowlist still marks dismissed flows: a batch job must not miss known pools
    case_file = None if no_store and not chosen.exists() else chosen
    db_path = None if no_store else case_file  # where the scan is recorded
    options = TriageOptions(
        model=model,
        blacklist_files=tuple(Path(b) for b in blacklists),
        db_path=case_file,
        idle_timeout=idle_timeout,
        active_timeout=active_timeout,
        bpf=bpf,
    )
    workers = jobs if jobs > 0 else (os.cpu_count() or 1)
    workers = min(workers, len(paths))
    if any(is_stream(p) for p in files):
        workers = 1  # stdin and /dev/fd/N are this process's: a spawned worker cannot read them
    # JSONL and CSV without probing stream capture by capture; a table is sorted and
    # probing joins across captures, so those need every record first.
    streaming = fmt in ("jsonl", "csv") and not do_probe
    show_progress = progress_wanted(quiet, results_stream=streaming)
    status = ExitCode.OK
    records: list[dict[str, Any]] = []
    any_ok = False
    header_written = False
    with ExitStack() as stack:
        store = None
        endpoint_status: dict[tuple[str, int], str] = {}
        hashes: dict[str, Future[tuple[str, int]]] = {}
        if case_file is not None:
            from minerscope.store import open_store

            try:  # a bad case file is one line before any work, not a traceback after it
                store = stack.enter_context(open_store(str(case_file)))
            except errors.StoreError as exc:
                fail(exc)
            if case_id is not None:
                try:  # a mistyped case id is one line before any work
                    store.get_case(case_id)
                except errors.StoreError as exc:
                    fail(exc)
            endpoint_status = {(h, p): st for h, p, st in store.endpoint_status()}
            if db_path is not None:
                hashes = _hash_in_background(stack, paths)
        for outcome in _run(paths, options, workers, show_progress):
            path, rows, complete, warning, error = (
                outcome.path,
                outcome.rows,
                outcome.complete,
                outcome.warning,
                outcome.error,
            )
            if error is not None:
                kind, _, message = error.partition(":")
                error_line(message)
                exc_class = getattr(errors, kind, errors.MinerscopeError)
                status = max(status, exit_code_for(exc_class(message)))
                continue
            any_ok = True
            status = max(
                status,
                reading_status(
                    complete, warning, f"{path}: capture is damaged; results cover what could be read"
                ),
            )
            if store is not None:
                rows = _mark_analyst(
                    store,
                    endpoint_status,
                    outcome,
                    _hash_result(hashes.get(path)),
                    record=db_path is not None,
                    case_id=case_id,
                )
            if streaming:  # column-wise, no record dicts
                if fmt == "jsonl":
                    write_jsonl_frame(_streamed_rows(rows, only_suspicious), SCAN_FIELDS)
                else:
                    write_csv_frame(
                        _streamed_rows(rows, only_suspicious), SCAN_FIELDS, header=not header_written
                    )
                    header_written = True
                continue
            batch = frame_to_records(rows, SCAN_FIELDS)
            for record in batch:
                if record["analyst"] is None:
                    record["analyst"] = ""
            records.extend(batch)
    if not any_ok or streaming:
        ctx.exit(int(status))
    if scope is not None:
        _probe_and_join(records, scope, probe_timeout, db_path, show_progress, case_id)
    if only_suspicious:
        records = [r for r in records if r.get("verdict") == "mining"]
    if fmt == "jsonl":
        write_jsonl(records)
    elif fmt == "csv":
        write_csv(records, fields=SCAN_FIELDS)
    else:
        records.sort(key=lambda r: -(r.get("p_mining") or 0.0))
        write_table(records, title=", ".join(Path(p).name for p in paths))
    ctx.exit(int(status))


def _hash_in_background(stack: ExitStack, paths: list[str]) -> dict[str, Future[tuple[str, int]]]:
    """Start hashing every capture (the case file's identity for it) on one thread.

    Hashing an 800 MB capture costs ~0.4 s; after triage it added that to the wall time of
    every stored scan. ``hashlib`` and file reads release the GIL, so on a thread it runs
    beside triage (or beside the workers) on another core; the CPU time is unchanged.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from minerscope.store.cases import file_sha256

    cancel = threading.Event()
    pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256"))
    # on the way out (Ctrl-C included) stop within one chunk and hash nothing more
    stack.callback(pool.shutdown, cancel_futures=True)
    stack.callback(cancel.set)
    # a stream is hashed by its reader: a second reader here would take its bytes
    return {p: pool.submit(file_sha256, Path(p), cancel) for p in paths if not is_stream(Path(p))}


def _hash_result(future: Future[tuple[str, int]] | None) -> str | None:
    """The hash a background job computed, or None to let the store hash it (and report
    why it cannot)."""
    if future is None:
        return None
    try:
        return future.result()[0]
    except OSError:
        return None


def _streamed_rows(rows: Any, only_suspicious: bool) -> Any:
    """``rows`` as the streamed JSONL and CSV print them: ``analyst`` "" when unset, and only
    mining verdicts with ``--only-suspicious`` (what the record path does per record)."""
    import polars as pl

    if rows.height == 0:
        return rows
    analyst = pl.col("analyst").fill_null("") if "analyst" in rows.columns else pl.lit("")
    rows = rows.with_columns(analyst.alias("analyst"))
    if only_suspicious:
        rows = rows.filter(pl.col("verdict") == "mining") if "verdict" in rows.columns else rows.clear()
    return rows


def _run(paths: list[str], options: Any, workers: int, show_progress: bool) -> Iterator[Outcome]:
    """Triage every path in ``workers`` processes (see :mod:`minerscope.cli.workers`), in
    input order; with ``show_progress``, progress bars on stderr (see :class:`_Progress`)."""
    if not show_progress:
        yield from triage_in_order(paths, options, workers)
        return
    with _Progress(len(paths)) as progress:
        for outcome in triage_in_order(paths, options, workers, local_work=progress.triage_one):
            progress.capture_done()
            yield outcome


class _Progress:
    """Progress on stderr, gone when the scan ends: the capture this process triages (bytes
    read, flows scored) and, when there are several, captures done out of all (a worker
    process's capture shows in that count only: its updates cannot cross).

    On a machine's first run numba compiles the pipeline's kernels before the first block
    (~20 s with the bar at zero): a line says so.
    """

    def __init__(self, captures: int) -> None:
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

        self.bar = stderr_progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
        )
        self.captures = captures
        self.done = 0
        self.count = self.bar.add_task(
            "captures", total=captures, detail=f"0/{captures}", visible=captures > 1
        )
        self.task = self.bar.add_task("", total=None, detail="", visible=False)
        self.current: str | None = None
        self.kernels_checked = False

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def triage_one(self, path: str, options: Any) -> Outcome:
        """:func:`minerscope.cli.workers.triage_one` with this display attached."""
        from minerscope.cli.workers import triage_one

        if not self.kernels_checked:
            self.kernels_checked = True
            from minerscope.triage import load_triage_stack
            from minerscope.warmup import kernels_cached

            load_triage_stack()  # what triage_one does first anyway
            if not kernels_cached():
                self.bar.console.print(
                    "minerscope: first run with this build: compiling the pipeline's kernels "
                    "(about 20 s, once; later runs load them from numba's cache)"
                )
        return triage_one(path, options, on_update=self._update)

    def _update(self, update: Any) -> None:
        from rich.markup import escape

        if update.path != self.current:
            self.current = update.path
            name = escape(clean(Path(update.path).name, 60))  # a file name is untrusted text
            self.bar.reset(self.task, total=update.bytes_total or None, description=name, visible=True)
        mb = update.bytes_read / 1e6
        of = f"/{update.bytes_total / 1e6:,.0f}" if update.bytes_total else ""
        self.bar.update(
            self.task,
            completed=update.bytes_read,
            detail=f"{mb:,.0f}{of} MB, {update.flows_scored:,} flows scored",
        )
        self.bar.refresh()  # one draw per block read (~16 MB), none lost between timer ticks

    def capture_done(self) -> None:
        """One more capture's outcome is in (from this process or a worker)."""
        self.done += 1
        self.bar.update(self.count, completed=self.done, detail=f"{self.done}/{self.captures}")
        self.bar.update(self.task, visible=False)
        self.bar.refresh()
        self.current = None


def _probe_and_join(
    records: list[dict[str, Any]],
    scope: Scope,
    probe_timeout: float,
    db_path: Path | None,
    show_progress: bool,
    case_id: int | None = None,
) -> None:
    """Probe the suspicious endpoints of ``records`` and put each outcome in its ``probe``
    field (verdicts recorded in case ``case_id`` of the case file at ``db_path``)."""
    from minerscope.flows.records import server_endpoint
    from minerscope.probe.runner import ProbeOptions
    from minerscope.stage2 import probe_endpoints, suspicious_endpoints

    endpoints = suspicious_endpoints(records)
    options = ProbeOptions(scope=scope, total_deadline=probe_timeout)
    if show_progress and endpoints:
        with stderr_progress() as progress:
            task = progress.add_task("probes", total=len(endpoints))
            outcome = probe_endpoints(
                endpoints,
                options,
                db_path=db_path,
                case_id=case_id,
                on_verdict=lambda _e, _s: progress.advance(task),
            )
    else:
        outcome = probe_endpoints(endpoints, options, db_path=db_path, case_id=case_id)
    for record in records:
        summary = outcome.get(server_endpoint(record))
        if summary is not None:
            record["probe"] = summary.to_json()
            if summary.is_pool and db_path is not None:
                record["analyst"] = "confirmed"
