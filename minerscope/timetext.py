"""Stored times as UTC text, whatever the case file holds.

A case file is input like any other: ``case import`` merges a colleague's, and SQLite keeps
whatever a REAL column is given. A time far out of the calendar (an expiry of 1e300
seconds), NaN, or text in that column used to stop ``blacklist list`` and the exports with
a traceback at the first such row. Here it is shown as the value it is, marked, and the
listing goes on.
"""

from __future__ import annotations

import datetime as dt
import math

from minerscope.untrusted import clean

NOT_A_TIME = "(not a time)"


def utc_text(ts: object, sep: str = "T") -> str:
    """Epoch seconds ``ts`` as ``YYYY-MM-DD{sep}HH:MM:SSZ`` (UTC; fractions cut); "" for None.

    A value that is no representable time is returned as its (inert, shortened) text
    followed by :data:`NOT_A_TIME`.
    """
    if ts is None:
        return ""
    try:
        if isinstance(ts, str | bytes | bool):
            raise TypeError("not a number")
        moment = dt.datetime.fromtimestamp(float(ts), tz=dt.UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return f"{clean(ts, 40)} {NOT_A_TIME}"
    return moment.isoformat(sep=sep, timespec="seconds").replace("+00:00", "Z")


def time_order(ts: object) -> tuple[int, float]:
    """A sort key that orders times and puts what is no time (None, NaN, text) last."""
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
        return (0, float(ts))
    return (1, 0.0)
