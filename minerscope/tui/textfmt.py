"""Analyst text made safe for the screen while keeping its line breaks.

:func:`minerscope.untrusted.clean` makes a string one inert line: every control
character, newline included, becomes a visible escape. That is right for what comes
from a capture or a peer, where a newline can forge a line of its own; a note the
analyst wrote with line breaks should read as written, so each line is cleaned on its
own (markup stays literal, other control characters stay escaped) and they are joined
again with real newlines, under one cap for the whole text.
"""

from __future__ import annotations

from minerscope.untrusted import clean


def clean_lines(value: object, max_chars: int = 512) -> str:
    """``value`` as inert text whose newlines are kept; at most ``max_chars`` characters
    (the cut marked with an ellipsis, as :func:`clean` marks it)."""
    if value is None:
        return ""
    text = str(value)[: max_chars * 4]  # bound the work on huge text, as clean does
    lines = [clean(line, max_chars) for line in text.split("\n")]
    joined = "\n".join(lines)
    if len(joined) > max_chars:
        joined = joined[: max(0, max_chars - 1)] + "…"
    return joined
