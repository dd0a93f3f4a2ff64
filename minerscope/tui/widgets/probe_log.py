"""The probe log: each dialect attempt as it happens, with the server's reply made inert.

A probed server is hostile by assumption. Its reply is shown only as a
``rich.text.Text`` built from :func:`minerscope.untrusted.clean` output (control
characters and escape sequences become visible ``\\x1b`` escapes, and Rich markup stays
literal because no markup parser ever sees it).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from minerscope.probe.verdict import ProbeAttempt
from minerscope.untrusted import clean

REPLY_CHARS = 300
"""How much of a reply one log line shows."""


def attempt_text(attempt: ProbeAttempt) -> Text:
    """One attempt as log lines: dialect/transport, timing, outcome, request, escaped reply."""
    line = Text()
    line.append(f"{clean(attempt.dialect, 32)}/{clean(str(attempt.transport), 8)}", style="bold")
    line.append(f"  {attempt.elapsed_s * 1000:.0f} ms", style="cyan")
    result = attempt.result
    if result is not None:
        outcome = f"{result.outcome} {result.confidence:.2f}"
        line.append(f"  {outcome}", style="bold red" if result.is_pool else "")
        if result.reason:
            line.append(f"  {clean(result.reason, 160)}", style="dim")
    if attempt.error:
        line.append(f"  {clean(attempt.error, 160)}", style="red")
    if attempt.request_excerpt:
        line.append("\n    > ", style="dim")
        line.append(clean(attempt.request_excerpt, REPLY_CHARS), style="dim")
    if attempt.reply_excerpt:
        line.append("\n    < ", style="green")
        line.append(clean(attempt.reply_excerpt, REPLY_CHARS))
    return line


class ProbeLog(RichLog):
    """A scrolling log of probe attempts (never parses markup)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, highlight=False, wrap=True, **kwargs)

    def add_attempt(self, attempt: ProbeAttempt) -> None:
        self.write(attempt_text(attempt))

    def add_line(self, text: str, style: str = "") -> None:
        self.write(Text(text, style=style))
