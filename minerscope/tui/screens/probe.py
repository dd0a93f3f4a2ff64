"""The probe panel: ask a host:port whether it is a pool, watching each dialect attempt.

The probe itself runs in an app worker (:meth:`MinerscopeApp.run_probe`) that calls the
headless prober and posts one message per attempt and one with the verdict; this
screen only shows them and offers the analyst's two answers: confirm the pool, or
dismiss the flow as a false positive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from minerscope.errors import InputError
from minerscope.probe.target import format_target, parse_target
from minerscope.probe.verdict import ProbeAttempt, Verdict
from minerscope.tui.widgets.probe_log import ProbeLog
from minerscope.untrusted import clean

if TYPE_CHECKING:
    from minerscope.tui.app import MinerscopeApp


def verdict_text(verdict: Verdict) -> Text:
    """A verdict as a few readable lines (every peer string cleaned)."""
    text = Text()
    if verdict.is_pool:
        text.append("POOL", style="bold red")
        text.append(f"  {clean(verdict.dialect or '-', 32)}/{clean(str(verdict.transport or '-'), 8)}")
    elif verdict.unreachable:  # not checked: say so, it is no all-clear
        text.append("endpoint unreachable", style="bold yellow")
        text.append(f"  {clean(verdict.unreachable, 120)}")
    else:
        text.append("no pool found", style="bold green")
    text.append(f"  outcome {verdict.outcome}  confidence {verdict.confidence:.2f}")
    text.append(f"  ({len(verdict.attempts)} attempts)", style="dim")
    if verdict.evidence:
        text.append("\n")
        text.append("  ".join(f"{clean(e.key, 40)}={clean(e.value, 120)}" for e in verdict.evidence[:12]))
    if verdict.tls:
        text.append("\ntls: ", style="bold")
        text.append(clean(", ".join(f"{k}={v}" for k, v in verdict.tls.items()), 300))
    return text


class ProbeScreen(Screen[None]):
    """Target input, attempt log, verdict and the confirm/dismiss keys."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+r", "start", "Probe"),
        Binding("c", "confirm", "Confirm pool"),
        Binding("d", "dismiss_fp", "Dismiss FP"),
        Binding("u", "undismiss", "Undismiss", show=False),
        Binding("n", "note", "Note"),
    ]

    DEFAULT_CSS = """
    ProbeScreen #verdict { height: auto; max-height: 8; padding: 0 1; border-top: solid $accent; }
    ProbeScreen #target { height: 1; border: none; padding: 0 1; background: $boost; }
    ProbeScreen ProbeLog { height: 1fr; padding: 0 1; }
    """

    def __init__(self, target: tuple[str, int] | None = None, uid: int | None = None) -> None:
        super().__init__(id="probe")
        self.target = target
        self.uid = uid
        self.verdict: Verdict | None = None
        self.running = False

    @property
    def ms_app(self) -> MinerscopeApp:
        return cast("MinerscopeApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        value = format_target(*self.target) if self.target else ""
        yield Input(value=value, placeholder="host:port, then enter", id="target")
        yield ProbeLog(id="log")
        yield Static(Text("no verdict yet", style="dim"), id="verdict")
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        if self.target is not None:
            self.query_one(ProbeLog).focus()
            self.action_start()
        else:
            self.query_one("#target", Input).focus()

    @property
    def log_widget(self) -> ProbeLog:
        return self.query_one(ProbeLog)

    @on(Input.Submitted, "#target")
    def target_submitted(self, event: Input.Submitted) -> None:
        self.action_start()

    def action_start(self) -> None:
        try:
            self.target = parse_target(self.query_one("#target", Input).value)
        except InputError as exc:
            self.log_widget.add_line(str(exc), style="red")
            return
        if self.running:
            self.log_widget.add_line("a probe is already running", style="yellow")
            return
        self.verdict = None
        self.ms_app.run_probe_for_screen(self, self.target)
        self.log_widget.focus()

    def probe_started(self) -> None:
        """The app started the probe of :attr:`target` (at once, or once the analyst agreed)."""
        assert self.target is not None
        self.running = True
        self.log_widget.add_line(f"probing {clean(format_target(*self.target), 90)} ...", style="bold")
        self.query_one("#verdict", Static).update(Text("probing ...", style="cyan"))

    def probe_not_started(self, reason: str) -> None:
        """Nothing was sent: out of scope and declined, or a denied network."""
        self.running = False
        self.log_widget.add_line(clean(reason, 300), style="yellow")
        self.query_one("#verdict", Static).update(Text(clean(reason, 200), style="yellow"))

    def add_attempt(self, attempt: ProbeAttempt) -> None:
        self.log_widget.add_attempt(attempt)

    def show_verdict(self, verdict: Verdict) -> None:
        self.running = False
        self.verdict = verdict
        self.query_one("#verdict", Static).update(verdict_text(verdict))

    def show_error(self, error: str) -> None:
        self.running = False
        self.log_widget.add_line(error, style="bold red")
        self.query_one("#verdict", Static).update(Text(clean(error, 200), style="red"))

    def action_confirm(self) -> None:
        if self.target is None:
            return
        self.ms_app.confirm_pool(self.target, self.verdict)

    def action_dismiss_fp(self) -> None:
        if self.target is None:
            return
        self.ms_app.dismiss_target(self.target, self.uid)

    def action_undismiss(self) -> None:
        if self.target is None:
            return
        self.ms_app.undismiss_target(self.target)

    def action_note(self) -> None:
        if self.target is None:
            return
        self.ms_app.note_for_target(self.target)
