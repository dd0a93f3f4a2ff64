"""Typed messages from the workstation's background workers to its widgets.

Workers are thin (see the style guide): each calls one headless function and posts
these; handlers on the app update the session and the screens. Progress arrives at a
high rate on big captures, so :class:`LoadProgress` implements ``can_replace``: Textual
drops a queued progress message when a newer one for the same capture arrives, and the
UI never falls behind the reader. Messages that carry data (:class:`FlowsArrived`,
:class:`ProbeAttemptSeen`) are never replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    import polars as pl

    from minerscope.flows.records import FlowTable
    from minerscope.probe.verdict import ProbeAttempt, Verdict


class LoadProgress(Message):
    """How far the reader is through one capture."""

    def __init__(
        self,
        path: str,
        bytes_read: int,
        bytes_total: int,
        packets: int,
        flows: int,
        open_flows: int | None = None,
        dropped: int = 0,
    ) -> None:
        super().__init__()
        self.path = path
        self.bytes_read = bytes_read
        self.bytes_total = bytes_total
        self.packets = packets
        self.flows = flows
        self.open_flows = open_flows  # live: flows the assembler holds
        self.dropped = dropped  # live: packets the kernel dropped so far

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LoadProgress) and message.path == self.path


class FlowsArrived(Message):
    """Newly scored flows of capture number ``capture_id`` (append them)."""

    def __init__(self, path: str, rows: pl.DataFrame, table: FlowTable | None, capture_id: int = 0) -> None:
        super().__init__()
        self.path = path
        self.rows = rows
        self.table = table
        self.capture_id = capture_id


class LoadFinished(Message):
    """A capture is read (``warning`` says what was damaged or left out, if anything;
    ``damaged``: the reader stopped at damage before the end)."""

    def __init__(
        self, path: str, *, cancelled: bool = False, warning: str = "", damaged: bool = False
    ) -> None:
        super().__init__()
        self.path = path
        self.cancelled = cancelled
        self.warning = warning
        self.damaged = damaged


class LoadFailed(Message):
    """A capture could not be loaded at all; ``error`` is one line for the analyst."""

    def __init__(self, path: str, error: str) -> None:
        super().__init__()
        self.path = path
        self.error = error


class ProbeAttemptSeen(Message):
    """One dialect attempt of a running probe (whatever the prober reported)."""

    def __init__(self, target: tuple[str, int], attempt: ProbeAttempt) -> None:
        super().__init__()
        self.target = target
        self.attempt = attempt


class ProbeFinished(Message):
    """A probe's verdict."""

    def __init__(self, target: tuple[str, int], verdict: Verdict) -> None:
        super().__init__()
        self.target = target
        self.verdict = verdict


class ProbeFailed(Message):
    """A probe could not run (scope refused, bad target); ``error`` is one line."""

    def __init__(self, target: tuple[str, int], error: str) -> None:
        super().__init__()
        self.target = target
        self.error = error


class CaseChanged(Message):
    """The case file changed (note added, pool confirmed, flow dismissed): refresh views."""
