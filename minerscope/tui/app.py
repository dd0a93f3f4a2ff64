"""MinerscopeApp: the analyst workstation's shell, its thin workers and their handlers.

The shape follows harlequin: every slow thing (reading and scoring a capture, probing a
pool) is a ``@work`` method that calls *one* headless function (:func:`iter_triage`,
:func:`probe_target`) and posts typed messages from :mod:`minerscope.tui.messages`;
the ``on_*`` handlers update the :class:`~minerscope.tui.session.Session` and the
screens. The case file is written through the headless store in handlers (single small
SQLite transactions). No pipeline, protocol or SQL logic lives here.

Parts built by other modules may be missing from a build (the prober, the case store);
the app then says "not available yet" where they would act, and never fakes a result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import WorkerState, get_current_worker

from minerscope.errors import MinerscopeError
from minerscope.flows.records import server_endpoint, server_endpoint_exprs
from minerscope.probe.target import format_target
from minerscope.timetext import utc_text
from minerscope.triage import live_status
from minerscope.tui.messages import (
    CaseChanged,
    FlowsArrived,
    LoadFailed,
    LoadFinished,
    LoadProgress,
    ProbeAttemptSeen,
    ProbeFailed,
    ProbeFinished,
)
from minerscope.tui.screens.cases import (
    AskScreen,
    ExportRequest,
    ExportScreen,
    HelpScreen,
    NoteEditor,
    NoteRequest,
    PoolsScreen,
    QuitScreen,
)
from minerscope.tui.screens.columns import ColumnsScreen
from minerscope.tui.screens.flow_detail import FlowDetailScreen
from minerscope.tui.screens.flows import SORTABLE, FlowsScreen
from minerscope.tui.screens.probe import ProbeScreen
from minerscope.tui.series import flow_series
from minerscope.tui.session import Session, server_name
from minerscope.tui.widgets.flow_table import CATALOGUE
from minerscope.untrusted import clean

if TYPE_CHECKING:
    from minerscope.probe.scope import Scope
    from minerscope.probe.verdict import Verdict
    from minerscope.triage import TriageOptions, TriageUpdate

Loader = Callable[..., Iterator["TriageUpdate"]]
"""``iter_triage``'s signature: (path, options, *, cancel) -> updates."""

REFRESH_S = 0.3
"""Longest delay between new rows arriving and the table showing them."""
SLOW_START_S = 4.0
"""Seconds without a first progress report after which the status line says why (a
machine's first run compiles the pipeline's kernels in the triage process: ~20 s)."""


class MinerscopeApp(App[None]):
    """The workstation. ``captures`` are loaded one after the other into one table."""

    CSS_PATH = "app.tcss"
    TITLE = "minerscope"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark,f1", "help", "Help"),
    ]

    def __init__(
        self,
        captures: Sequence[Path],
        *,
        db_path: Path | None = None,
        options: TriageOptions | None = None,
        loader: Loader | None = None,
        probe_options: Any = None,
        probe_scope: Scope | None = None,
    ) -> None:
        """``probe_scope``: where ``p`` probes without asking (``--scope``/``--deny``; None:
        loopback, as ``scan --probe``); see :mod:`minerscope.tui.probe_scope`.
        ``probe_options``: the prober's other knobs (its ``scope`` is replaced per probe)."""
        super().__init__()
        self.captures = [Path(c) for c in captures]
        self.db_path = db_path
        self.options = options
        self._loader = loader
        if loader is None:
            from minerscope.tui.offload import prepare

            prepare()
        self.probe_options = probe_options
        if probe_scope is None:
            from minerscope.probe.scope import LOOPBACK

            probe_scope = LOOPBACK
        self.probe_scope = probe_scope
        self.probe_ids: dict[tuple[str, int], int] = {}
        self.session = Session()
        self.cancel_event = threading.Event()
        self.flows_screen = FlowsScreen()
        self.store: Any = None
        self.store_error = ""
        self.loads_done = 0
        # a line per capture that was cancelled, damaged, left packets out or could not load
        self.load_problems: list[str] = []
        self.progress_seen = False
        self.last_error = ""
        self._dirty = False
        names = ", ".join(clean(c.name, 60) for c in self.captures) or "no capture"
        bpf = options.bpf if options is not None else None
        self.sub_title = f"{names} · filter: {clean(bpf, 80)}" if bpf else names  # why flows are missing

    # ---- lifecycle ---------------------------------------------------------------
    def on_mount(self) -> None:
        self.push_screen(self.flows_screen)
        self._open_store()
        self.set_interval(REFRESH_S, self._flush_rows)
        if self.captures:
            self.load_captures(list(self.captures))
            self.set_timer(SLOW_START_S, self._explain_slow_start)

    def _explain_slow_start(self) -> None:
        """Still nothing from the first capture: say what takes the time, not a blank line."""
        if not self.progress_seen and not self.loads_done:
            self.flows_screen.set_progress(
                "preparing: a machine's first run compiles the pipeline (up to a minute) · x cancels"
            )

    def _open_store(self) -> None:
        if self.db_path is None:
            self.store_error = "no case file selected"
            return
        from minerscope.store import open_store

        try:
            self.store = open_store(self.db_path)
        except MinerscopeError as exc:
            self.store_error = clean(str(exc), 300)
            self.notify(self.store_error, severity="error", timeout=10)
            return
        self._load_annotations()

    def _load_annotations(self) -> None:
        """Copy confirmed pools and dismissed endpoints from the case file into the session."""
        if self.store is None:
            return
        self.session.replace_analyst(self.store.endpoint_status())
        self._dirty = True

    def on_unmount(self) -> None:
        self.cancel_event.set()
        close = getattr(self.store, "close", None)
        if callable(close):
            close()

    # ---- loading -----------------------------------------------------------------
    @work(thread=True, group="load", exit_on_error=False)
    def load_captures(self, paths: list[Path]) -> None:
        """Stream each capture through the headless pipeline, posting rows and progress.

        The pipeline runs in a child process (:mod:`minerscope.tui.offload`); this thread
        only waits on its queue, so the event loop keeps the GIL for the UI.
        """
        worker = get_current_worker()
        loader = self._loader
        finish: Any = None
        if loader is None:
            from minerscope.tui import offload

            # the child that serves these captures gives its memory back when they are done
            loader, finish = offload.iter_triage_offloaded, offload.close_idle
        try:
            self._load_each(worker, loader, paths)
        finally:
            if finish is not None:
                finish()

    def _load_each(self, worker: Any, loader: Any, paths: list[Path]) -> None:
        for capture_id, path in enumerate(paths):
            name = clean(path.name, 80)
            try:
                for update in loader(path, self.options, cancel=self.cancel_event):
                    if update.rows is not None and update.rows.height:
                        self.post_message(FlowsArrived(name, update.rows, update.table, capture_id))
                    self.post_message(
                        LoadProgress(
                            name,
                            update.bytes_read,
                            update.bytes_total,
                            update.packets,
                            update.flows_scored,
                            update.open_flows,
                            update.dropped,
                        )
                    )
                    if update.done:
                        report = update.report
                        warning = (report.warning or "") if report is not None else ""
                        # the status line names the capture already: not its full path again
                        warning = clean(warning.replace(f"{path}: ", ""), 300)
                        damaged = report is not None and not report.complete
                        self.post_message(LoadFinished(name, warning=warning, damaged=damaged))
                    if worker.is_cancelled or self.cancel_event.is_set():
                        self.post_message(LoadFinished(name, cancelled=True))
                        return
            except MinerscopeError as exc:
                self.post_message(LoadFailed(name, clean(str(exc), 300)))
            except Exception as exc:  # a bug: say so on screen instead of dying silently
                self.post_message(
                    LoadFailed(name, clean(f"internal error: {type(exc).__name__}: {exc}", 300))
                )

    def on_flows_arrived(self, message: FlowsArrived) -> None:
        first = self.session.count == 0
        self.session.add_chunk(message.rows, message.table, message.capture_id)
        self._dirty = True
        if first:  # the first rows go on screen at once; later ones batch up per tick
            self._flush_rows()

    def on_load_progress(self, message: LoadProgress) -> None:
        self.progress_seen = True
        if not message.bytes_total:  # a live interface (minerscope live --tui): no end to measure
            status = live_status(message.packets, message.open_flows, message.dropped)
            self.flows_screen.set_progress(f"capturing · {status} · x stops", message.path)
            return
        pct = 100.0 * message.bytes_read / message.bytes_total if message.bytes_total else 0.0
        # the file's name, last: at 80 columns a full path would push the flow count off the line
        self.flows_screen.set_progress(
            f"loading {pct:.0f}% · {message.packets:,} pkts · x cancels", Path(message.path).name
        )

    def on_load_finished(self, message: LoadFinished) -> None:
        self.loads_done += 1
        self._flush_rows()
        if message.cancelled:
            self.load_problems.append(f"{message.path}: loading cancelled")
        elif message.warning:
            self.load_problems.append(f"{message.path}: {message.warning}")
            title = "capture damaged" if message.damaged else "packets left out"
            self.notify(message.warning, title=title, severity="warning", markup=False)
        self._show_load_problems()

    def _show_load_problems(self) -> None:
        """The status line keeps the latest capture problem, and how many others there were:
        a clean capture loaded after a damaged one must not wipe out that it was damaged."""
        if not self.load_problems:
            self.flows_screen.set_progress("")
            return
        others = len(self.load_problems) - 1  # said first: a long problem line is cut at the right
        more = f"{others} more capture problem{'s' if others > 1 else ''} · " if others else ""
        self.flows_screen.set_progress(more + self.load_problems[-1])

    def on_load_failed(self, message: LoadFailed) -> None:
        self.last_error = message.error
        self.load_problems.append(f"cannot load {message.path}: {message.error}")
        self._show_load_problems()
        self.notify(message.error, title="cannot load capture", severity="error", timeout=15, markup=False)

    def _flush_rows(self) -> None:
        if self._dirty and self.flows_screen.is_mounted:
            self._dirty = False
            self.flows_screen.refresh_table()

    def action_cancel_load(self) -> None:
        if not self._group_busy("load"):
            self.notify("nothing is loading")
            return
        self.cancel_event.set()
        for worker in self.workers:
            if worker.group == "load":
                worker.cancel()

    def _group_busy(self, group: str) -> bool:
        return any(
            w.group == group and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers
        )

    # ---- flows -------------------------------------------------------------------
    def open_flow(self, uid: int) -> None:
        row = self.session.row(uid)
        located = self.session.table_for(uid)
        series = flow_series(*located) if located is not None else None
        history = self._history(*server_endpoint(row))
        self.push_screen(FlowDetailScreen(uid, row, series, history, capture=self.capture_label(row)))

    def capture_label(self, row: dict[str, Any]) -> str:
        """Which opened capture a flow is from: its file, numbered when several are open."""
        capture_id = int(row.get("capture_id") or 0)
        name = self.captures[capture_id].name if capture_id < len(self.captures) else str(row.get("capture"))
        label = clean(name, 80)
        if len(self.captures) > 1:
            label += f" (capture {capture_id + 1} of {len(self.captures)})"
        return f"{label} · flow {row.get('flow_id')}"

    def _selected_uid(self) -> int | None:
        if isinstance(self.screen, FlowDetailScreen):
            return self.screen.uid
        if isinstance(self.screen, FlowsScreen):
            return self.screen.table.selected_uid()
        return None

    def _endpoint(self, uid: int) -> tuple[str, int]:
        """The selected flow's server endpoint: what is probed, confirmed or dismissed."""
        return server_endpoint(self.session.row(uid))

    # ---- probing -----------------------------------------------------------------
    def action_probe_selected(self) -> None:
        uid = self._selected_uid()
        if uid is None:
            self.notify("no flow selected")
            return
        self.start_probe_for(uid)

    def start_probe_for(self, uid: int) -> None:
        self.push_screen(ProbeScreen(self._endpoint(uid), uid))

    def action_probe_any(self) -> None:
        self.push_screen(ProbeScreen())

    def run_probe_for_screen(self, screen: ProbeScreen, target: tuple[str, int]) -> None:
        """Probe ``target`` for ``screen`` if the probe scope allows it; outside the scope
        only once the analyst says yes; never inside ``--deny`` (the screen says why)."""
        from minerscope.tui.probe_scope import ProbeAction, decide_probe

        decision = decide_probe(self.probe_scope, *target)
        if decision.action is ProbeAction.REFUSE or decision.scope is None:
            screen.probe_not_started(decision.message)
            self.notify(clean(decision.message, 300), title="not probed", severity="warning", markup=False)
            return
        scope = decision.scope
        if decision.action is ProbeAction.PROBE:
            self._start_probe(screen, target, scope)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._start_probe(screen, target, scope)
            else:
                screen.probe_not_started("not probed: outside the probe scope (declined)")

        self.push_screen(AskScreen(clean(decision.message, 400), yes="Probe", no="Cancel"), answer)

    def _start_probe(self, screen: ProbeScreen, target: tuple[str, int], scope: Scope) -> None:
        screen.probe_started()
        self.session.set_probe(target[0], target[1], "probing")
        self._dirty = True
        self.run_probe(target, scope)

    @work(group="probe", exit_on_error=False)
    async def run_probe(self, target: tuple[str, int], scope: Scope) -> None:
        """Probe one target with the headless prober, posting each attempt and the verdict.

        The prober is asyncio, so this worker runs on the app's loop and never blocks it.
        ``scope`` is the one :func:`~minerscope.tui.probe_scope.decide_probe` chose; the
        prober checks every address against it again (and a name's resolved addresses).
        """
        import dataclasses

        from minerscope.probe.runner import ProbeOptions, probe_target

        def seen(tgt: tuple[str, int], attempt: Any) -> None:
            self.post_message(ProbeAttemptSeen(target, attempt))

        options = dataclasses.replace(self.probe_options or ProbeOptions(), scope=scope)
        try:
            verdict = await probe_target(target[0], target[1], options=options, on_attempt=seen)
        except MinerscopeError as exc:
            self.post_message(ProbeFailed(target, clean(str(exc), 300)))
            return
        self.post_message(ProbeFinished(target, verdict))

    def _probe_screens(self, target: tuple[str, int]) -> Iterable[ProbeScreen]:
        for screen in self.screen_stack:
            if isinstance(screen, ProbeScreen) and screen.target == target:
                yield screen

    def on_probe_attempt_seen(self, message: ProbeAttemptSeen) -> None:
        for screen in self._probe_screens(message.target):
            screen.add_attempt(message.attempt)

    def on_probe_finished(self, message: ProbeFinished) -> None:
        host, port = message.target
        verdict = message.verdict
        # "down" (the table's probe column is 7 wide): nothing answered, which is no all-clear
        status = "pool" if verdict.is_pool else "down" if verdict.unreachable else "no pool"
        self.session.set_probe(host, port, status)
        self._dirty = True
        for screen in self._probe_screens(message.target):
            screen.show_verdict(message.verdict)
        if self.store is not None:
            try:
                self.probe_ids[message.target] = self.store.record_probe(
                    message.verdict, host=host, port=port
                )
            except MinerscopeError as exc:
                self.notify(clean(str(exc), 300), title="probe not saved", severity="error", markup=False)
            self._load_annotations()

    def on_probe_failed(self, message: ProbeFailed) -> None:
        host, port = message.target
        self.session.set_probe(host, port, "error")
        self._dirty = True
        for screen in self._probe_screens(message.target):
            screen.show_error(message.error)

    # ---- case file -----------------------------------------------------------------
    def _need_store(self) -> bool:
        if self.store is None:
            self.notify(self.store_error or "no case file", severity="warning", markup=False)
            return False
        return True

    def _store_write(self, write: Callable[[], object]) -> bool:
        try:
            write()
        except MinerscopeError as exc:
            self.notify(clean(str(exc), 300), title="not saved", severity="error", markup=False)
            return False
        return True

    def _confirmed_pool(self, host: str, port: int) -> dict[str, Any] | None:
        """The case file's pool at ``host:port`` while it stands confirmed (not dismissed)."""
        pool: dict[str, Any] | None = self.store.get_pool(host, port)
        if pool is None or pool["dismissed"]:  # (the store's own rule: a dismissal covers it)
            return None
        return pool

    def confirm_pool(self, target: tuple[str, int], verdict: Verdict | None) -> None:
        """The analyst confirms ``target`` as a pool (recorded as theirs, never as the
        probe's); a pool already confirmed, by a probe or by hand, is said to be so."""
        if not self._need_store():
            return
        host, port = target
        shown = clean(format_target(host, port), 90)
        try:
            existing = self._confirmed_pool(host, port)
        except MinerscopeError as exc:
            self.notify(clean(str(exc), 300), title="not confirmed", severity="error", markup=False)
            return
        if existing is not None:
            self.notify(f"{shown} is already confirmed: {confirmation_text(existing)}", markup=False)
            return
        # a pool verdict of this session backs the analyst's word: its dialect and probe go along
        backed = verdict is not None and verdict.is_pool
        try:
            self.store.confirm_pool(
                host,
                port,
                how="analyst",
                names=self._names_for(host, port),
                dialect=verdict.dialect if backed and verdict is not None else None,
                transport=str(verdict.transport)
                if backed and verdict is not None and verdict.transport
                else None,
                probe_id=self.probe_ids.get(target) if backed else None,
            )
        except MinerscopeError as exc:
            self.notify(clean(str(exc), 300), title="not confirmed", severity="error", markup=False)
            return
        self._load_annotations()
        self._dirty = True
        self.notify(f"pool {shown} confirmed", markup=False)
        self.post_message(CaseChanged())

    def dismiss_target(self, target: tuple[str, int], uid: int | None) -> None:
        """Dismiss ``target`` as a false positive; a confirmed pool only once the analyst
        agrees (dismissing it switches its blacklist indicators off)."""
        if not self._need_store():
            return
        host, port = target
        try:
            pool = self._confirmed_pool(host, port)
        except MinerscopeError as exc:
            self.notify(clean(str(exc), 300), title="not dismissed", severity="error", markup=False)
            return
        if pool is None:
            self._dismiss(target)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._dismiss(target)
            else:
                self.notify("not dismissed")

        question = (
            f"{clean(format_target(host, port), 90)} is a confirmed pool "
            f"({confirmation_text(pool)}). Dismiss it as a false positive? Its blacklist "
            "indicators are switched off (u undismisses)."
        )
        self.push_screen(AskScreen(question, yes="Dismiss", no="Keep", id="ask-dismiss"), answer)

    def _dismiss(self, target: tuple[str, int]) -> None:
        host, port = target
        try:
            self.store.dismiss_endpoint(host, port, reason="analyst: false positive")
        except MinerscopeError as exc:
            self.notify(clean(str(exc), 300), title="not dismissed", severity="error", markup=False)
            return
        self._case_written(f"{clean(format_target(host, port), 90)} dismissed as a false positive")

    def undismiss_target(self, target: tuple[str, int]) -> None:
        """Lift the dismissal of ``target`` (the store's undismiss, as ``case undismiss``); a
        dismissal of every port of its host (``case dismiss --any-port``) only when asked."""
        if not self._need_store():
            return
        host, port = target
        shown = clean(format_target(host, port), 90)
        try:
            lifted = self.store.undismiss_endpoint(host, port)
            host_wide = not lifted and any(
                int(a["port"]) == 0 and str(a["host"]) == host.strip("[]")
                for a in self.store.list_allowlist()
            )
        except MinerscopeError as exc:
            self.notify(clean(str(exc), 300), title="not undismissed", severity="error", markup=False)
            return
        if lifted:
            self._case_written(f"{shown}: dismissal lifted")
        elif not host_wide:
            self.notify(f"{shown} is not dismissed", markup=False)
        else:

            def answer(yes: bool | None) -> None:
                if not yes:
                    return
                if self._store_write(lambda: self.store.undismiss_endpoint(host, 0)):
                    self._case_written(f"dismissal of every port of {clean(host, 80)} lifted")

            question = (
                f"every port of {clean(host, 80)} is dismissed, not only {shown}. "
                "Lift the dismissal of every port?"
            )
            self.push_screen(AskScreen(question, yes="Lift", no="Keep", id="ask-undismiss"), answer)

    def _case_written(self, said: str) -> None:
        """After an analyst decision reached the case file: reload it, say so, refresh views."""
        self._load_annotations()
        self._dirty = True
        self.notify(said, markup=False)
        self.post_message(CaseChanged())

    def dismiss_uid(self, uid: int) -> None:
        self.dismiss_target(self._endpoint(uid), uid)

    def action_dismiss_selected(self) -> None:
        uid = self._selected_uid()
        if uid is not None:
            self.dismiss_uid(uid)

    def undismiss_uid(self, uid: int) -> None:
        self.undismiss_target(self._endpoint(uid))

    def action_undismiss_selected(self) -> None:
        uid = self._selected_uid()
        if uid is None:
            self.notify("no flow selected")
            return
        self.undismiss_uid(uid)

    def _names_for(self, host: str, port: int) -> list[str]:
        rows = self.session.rows
        if "dst" not in rows.columns:
            return []

        server_host, server_port = server_endpoint_exprs(rows.columns)
        hits = rows.filter((server_host == host) & (server_port == port)).head(50)
        return sorted({n for n in (server_name(r) for r in hits.iter_rows(named=True)) if n})

    def _history(self, host: str, port: int) -> list[str] | None:
        if self.store is None:
            return None
        history: list[str] = self.store.endpoint_history(host, port)
        return history

    def note_for_uid(self, uid: int) -> None:
        host, port = self._endpoint(uid)
        self.note_for_target((host, port))

    def note_for_target(self, target: tuple[str, int]) -> None:
        if not self._need_store():
            return
        host, port = target
        from minerscope.store.pools import endpoint_text

        subject = endpoint_text(host, port)
        existing = self._history(host, port) or []

        def save(text: str | None) -> None:
            if text:
                if self._store_write(lambda: self.store.add_note("endpoint", subject, text)):
                    self.notify("note saved")
                self.post_message(CaseChanged())

        self.push_screen(NoteEditor(NoteRequest("endpoint", subject), existing), save)

    def note_for_pool(self, pool: dict[str, Any]) -> None:
        """Attach a note to a confirmed pool (``pool`` is a row of :class:`PoolsScreen`)."""
        if not self._need_store():
            return
        pool_id = pool["id"]
        subject = f"{pool['host']}:{pool['port']}"

        def save(text: str | None) -> None:
            if text and self._store_write(lambda: self.store.add_note("pool", pool_id, text)):
                self.notify("pool note saved")
                self.post_message(CaseChanged())

        self.push_screen(NoteEditor(NoteRequest("pool", subject)), save)

    def action_note_selected(self) -> None:
        uid = self._selected_uid()
        if uid is None:
            self.action_note_case()
            return
        self.note_for_uid(uid)

    def action_note_case(self) -> None:
        if not self._need_store():
            return

        def save(text: str | None) -> None:
            if text:
                if self._store_write(lambda: self.store.add_note("case", "", text)):
                    self.notify("case note saved")
                self.post_message(CaseChanged())

        self.push_screen(NoteEditor(NoteRequest("case", "this case")), save)

    def on_case_changed(self, message: CaseChanged) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, FlowDetailScreen):
                screen.set_history(self._history(*server_endpoint(screen.row)))
            elif isinstance(screen, PoolsScreen) and self.store is not None:
                try:
                    screen.show(*store_overview(self.store))
                except MinerscopeError as exc:
                    self.notify(clean(str(exc), 300), title="case file", severity="error", markup=False)

    def action_show_pools(self) -> None:
        if self.store is None:
            self.push_screen(PoolsScreen(None, None, None))
            return
        pools, blacklist, notes = store_overview(self.store)
        self.push_screen(PoolsScreen(pools, blacklist, notes))

    def action_export(self) -> None:
        if not self._need_store():
            return

        self.push_screen(ExportScreen(str(Path.cwd())), self._export_chosen)

    def _export_chosen(self, request: ExportRequest | None, *, overwrite: bool = False) -> None:
        """Write the export the analyst chose; an existing file only once they agree to
        replace it (no: the dialog comes back with their choice, to pick another name)."""
        if request is None:
            return
        shown = clean(request.path, 200)
        try:
            count = export_to(self.store, request.fmt, Path(request.path), overwrite=overwrite)
        except FileExistsError:

            def answer(yes: bool | None) -> None:
                if yes:
                    self._export_chosen(request, overwrite=True)
                else:
                    self.notify("not exported: the file was kept", markup=False)
                    self.push_screen(ExportScreen(str(Path.cwd()), again=request), self._export_chosen)

            question = f"{shown} exists. Overwrite it?"
            self.push_screen(AskScreen(question, yes="Overwrite", no="Keep", id="ask-overwrite"), answer)
            return
        except (MinerscopeError, OSError) as exc:
            self.notify(clean(str(exc), 300), title="export failed", severity="error", markup=False)
            return
        self.notify(f"exported {count} rows to {shown}", markup=False)

    # ---- help, palette, quit ---------------------------------------------------------
    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Keys per screen, read from the bindings themselves so the help cannot drift, and
        what each column says (from the column catalogue, for the same reason)."""
        sections: list[tuple[str, list[tuple[str, str]]]] = []
        for title, cls in (
            ("Everywhere", MinerscopeApp),
            ("Flow table", FlowsScreen),
            ("Flow detail", FlowDetailScreen),
            ("Probe panel", ProbeScreen),
            ("Pools and blacklist", PoolsScreen),
            ("Note editor", NoteEditor),
            ("Export dialog", ExportScreen),
            ("Column chooser", ColumnsScreen),
        ):
            keys = [
                (b.key.replace("question_mark", "?").replace(",", ", "), b.description)
                for b in cls.BINDINGS
                if isinstance(b, Binding)
            ]
            sections.append((title, keys))
        sections[1][1].append(("enter", "Open the selected flow"))
        sections[1][1].append(("up/down, j/k", "Move; pgup/pgdn, home/end jump"))
        sections[1][1].append(("left/right", "Scroll to the columns off screen"))
        sections[1][1].append(("tab", "Move between the filter bar and the table"))
        sections[1][1].append(("click header", "Sort by that column (again: reverse)"))
        sections[-1][1].append(("space", "Show or hide the highlighted column"))
        sections[0][1].append(("ctrl+p", "Command palette"))
        legend = [(c.label, c.meaning) for c in CATALOGUE.values()]
        legend.append(("btc, xmr ...", "the coin model's probability for each coin (C shows or hides them)"))
        legend.append(("(data column)", "any other column of the loaded data, as it is (C lists them)"))
        sections.append(("What the columns say (C chooses them)", legend))
        return sections

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help: list keys", "Every key of every screen", self.action_help)
        yield SystemCommand(
            "Probe selected flow", "Probe the server of the selected flow", self.action_probe_selected
        )
        yield SystemCommand("Probe host:port", "Probe any host:port", self.action_probe_any)
        yield SystemCommand(
            "Note on selected flow", "Attach a note to its endpoint", self.action_note_selected
        )
        yield SystemCommand("Case note", "Attach a note to the case", self.action_note_case)
        yield SystemCommand("Dismiss selected flow", "Mark it a false positive", self.action_dismiss_selected)
        yield SystemCommand(
            "Undismiss selected flow", "Lift its endpoint's dismissal", self.action_undismiss_selected
        )
        yield SystemCommand(
            "Pools and blacklist", "Confirmed pools, indicators, case notes", self.action_show_pools
        )
        yield SystemCommand("Export", "Confirmed pools CSV or blacklist formats", self.action_export)
        yield SystemCommand(
            "Cancel loading", "Stop reading the capture (keeps rows so far)", self.action_cancel_load
        )
        flows = self.flows_screen
        yield SystemCommand("Filter flows", "Focus the filter bar", flows.action_focus_filter)
        yield SystemCommand(
            "Columns", "Choose and order the flow table's columns (kept)", flows.action_choose_columns
        )
        yield SystemCommand("Toggle hide benign", "Hide flows judged benign", flows.action_toggle_benign)
        yield SystemCommand(
            "Toggle hide confirmed", "Hide confirmed/dismissed flows", flows.action_toggle_confirmed
        )
        yield SystemCommand("Sort by suspicion", "The default order", lambda: flows.sort(None))
        yield SystemCommand("Reverse sort", "Flip the sort direction", flows.action_reverse_sort)
        for column, label in SORTABLE:
            yield SystemCommand(f"Sort by {label}", f"Sort all flows by {column}", _sorter(flows, column))
        for coin in self.session.coins:
            yield SystemCommand(
                f"Sort by {coin} probability", "Per-coin probability", _sorter(flows, f"pc_{coin}")
            )

    async def action_quit(self) -> None:
        busy = [
            name
            for name, group in (("A capture load", "load"), ("A probe", "probe"))
            if self._group_busy(group)
        ]
        if not busy:
            self.exit()
            return

        def answer(quit_now: bool | None) -> None:
            if quit_now:
                self.cancel_event.set()
                self.exit()

        self.push_screen(QuitScreen(" and ".join(busy)), answer)


def _sorter(flows: FlowsScreen, column: str) -> Callable[[], None]:
    return lambda: flows.sort(column)


# ---- case-file views (shapes for the screens; the store does the work) --------------------

POOL_COLUMNS = ("id", "host", "port", "names", "coin", "dialect", "transport", "confirmation", "note")
INDICATOR_COLUMNS = ("kind", "value", "port", "source", "enabled")


def confirmation_text(pool: dict[str, Any]) -> str:
    """Who confirmed a pool and when: ``analyst 2026-12-06 10:00:00Z`` (the store keeps how
    it was confirmed, ``probe``, ``analyst`` or ``import``, and the time)."""
    return " ".join(
        t for t in (str(pool.get("confirmed_by") or ""), utc_text(pool.get("confirmed_at"), " ")) if t
    )


def store_overview(store: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Pools, blacklist indicators and case notes as rows for :class:`PoolsScreen`."""
    pools = [
        {
            k: (", ".join(v) if isinstance(v, list) else "" if v is None else str(v))
            for k, v in ((c, confirmation_text(p) if c == "confirmation" else p.get(c)) for c in POOL_COLUMNS)
        }
        for p in store.list_pools()
    ]
    indicators = [
        {c: "" if r.get(c) is None else str(r.get(c)) for c in INDICATOR_COLUMNS}
        for r in store.list_indicators()
    ]
    notes = [str(n["text"]) for n in store.list_notes(target_kind="case")]
    return pools, indicators, notes


def export_to(store: Any, fmt: str, path: Path, *, overwrite: bool = False) -> int:
    """Write one export format to ``path``; returns the records written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False (checked as the file is
            created, so a file appearing meanwhile is not overwritten either).
    """
    from minerscope.store import export

    with path.open("w" if overwrite else "x", encoding="utf-8", newline="") as out:
        if fmt == "pools-csv":
            count = export.write_pools_csv(store, out)
        elif fmt == "pools-json":
            count = export.write_pools_json(store, out)
        else:
            count = export.write_blacklist(store, out, fmt.removeprefix("blacklist-"))
    return int(count.written)
