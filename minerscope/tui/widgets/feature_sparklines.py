"""Sparklines of one flow's message sizes, gaps and volume, client->server above server->client.

The numbers come from :func:`minerscope.tui.series.flow_series`; this widget only lays
them out. Each sparkline spans its series' minimum to maximum, and its label says both.
Mining flows show a tell-tale rhythm here: small periodic submits from the
client, job pushes from the pool at block/vardiff cadence.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from minerscope.tui.series import FlowSeries


def _number(value: float) -> str:
    """Whole numbers (bytes) in full, with thousands separators; others to four digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def range_text(data: list[float]) -> str:
    """What a sparkline's bars span: Textual scales each one from the series' minimum to
    its maximum, so both are stated (a flat series says ``flat``: its bars are all alike,
    not zero, and 275..276 bytes would otherwise look like a tall swing)."""
    if not data:
        return f"n={len(data)}"
    low, high = min(data), max(data)
    if low == high:
        return f"n={len(data)}, flat at {_number(high)}"
    return f"n={len(data)}, min={_number(low)} max={_number(high)}"


def _row(label: str, data: list[float], colour: str) -> ComposeResult:
    yield Label(f"{label}  ({range_text(data)})", classes="spark-label")
    if data:
        yield Sparkline(data, min_color="#333333", max_color=colour, classes="spark")
    else:
        yield Label("  no data", classes="spark-empty")


class FeatureSparklines(Vertical):
    """Six sparklines (three series x two directions) for one flow."""

    DEFAULT_CSS = """
    FeatureSparklines { height: auto; }
    FeatureSparklines .spark { height: 2; margin: 0 0 0 2; }
    FeatureSparklines .spark-label { color: $text-muted; }
    """

    def __init__(self, series: FlowSeries, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.series = series

    def compose(self) -> ComposeResult:
        s = self.series
        yield from _row("message bytes  client->server", s.c2s_msg_bytes, "#e5c07b")
        yield from _row("message bytes  server->client", s.s2c_msg_bytes, "#61afef")
        yield from _row("inter-arrival s  client->server", s.c2s_iat_s, "#e5c07b")
        yield from _row("inter-arrival s  server->client", s.s2c_iat_s, "#61afef")
        yield from _row(f"bytes per {s.bin_seconds:.3g}s bin  client->server", s.c2s_bytes_per_bin, "#e5c07b")
        yield from _row(f"bytes per {s.bin_seconds:.3g}s bin  server->client", s.s2c_bytes_per_bin, "#61afef")
