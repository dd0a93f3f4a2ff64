"""Sparklines of one flow's message sizes, gaps and volume, client->server above server->client.

The numbers come from :func:`minerscope.tui.series.flow_series`; this widget only lays
them out. Mining flows show a tell-tale rhythm here: small periodic submits from the
client, job pushes from the pool at block/vardiff cadence.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from minerscope.tui.series import FlowSeries


def _row(label: str, data: list[float], colour: str) -> ComposeResult:
    peak = max(data) if data else 0.0
    yield Label(f"{label}  (n={len(data)}, max={peak:,.3g})", classes="spark-label")
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
