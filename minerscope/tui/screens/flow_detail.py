"""One flow in full: why the model scored it, what the handshake said, what the analyst found.

Everything shown is computed before the screen is built (the row, the series, the
case-file history), so composing it never touches the pipeline or the network. Strings
from the capture and from stored notes are rendered as ``Text`` via ``clean``.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from minerscope.probe.target import format_target
from minerscope.tui.series import FlowSeries
from minerscope.tui.session import badges, coin_probs, parse_json_list, proxy_target, server_name
from minerscope.tui.textfmt import clean_lines
from minerscope.tui.widgets.feature_sparklines import FeatureSparklines
from minerscope.unscored import unscored
from minerscope.untrusted import clean


def _kv(pairs: list[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in pairs:
        table.add_row(Text(key), Text(clean(value if value not in (None, "") else "-", 200)))
    return table


def header_text(row: dict[str, Any]) -> Text:
    """``client -> server:port (name)`` line of a flow."""
    name = server_name(row)
    text = Text()
    # host:port as the note dialog and the probe panel write it: [v6]:port
    text.append(clean(format_target(str(row.get("src") or ""), row.get("sport") or 0), 60))
    text.append(" -> ")
    text.append(clean(format_target(str(row.get("dst") or ""), row.get("dport") or 0), 60), style="bold")
    if row.get("proxy_host"):  # the flow's server is a proxy: say where its tunnel led
        text.append(" (proxy) => ")
        text.append(clean(proxy_target(row), 90), style="bold")
    if name:
        text.append("  ")
        text.append(clean(name, 80), style="bold cyan")
    return text


def score_table(row: dict[str, Any]) -> Table:
    """Score, verdicts and the coin distribution."""
    probs = coin_probs(row.get("coin_probs"))
    dist = "  ".join(f"{clean(c, 8)} {p:.2f}" for c, p in sorted(probs.items(), key=lambda kv: -kv[1]))
    p = row.get("p_mining")
    p_text: object
    if unscored(row):  # no window held the messages the model learnt from
        p_text, no_coin = "not scored: too few messages in every window", "not estimated: not scored"
    else:  # scoring leaves the coin out for flows it calls clearly benign (classify.COIN_FLOOR)
        p_text, no_coin = (f"{p:.3f}" if isinstance(p, float) else p), "not estimated: clearly benign"
    return _kv(
        [
            ("p_mining", p_text),
            ("verdict", row.get("verdict")),
            ("stage 1", row.get("stage1")),
            ("coin", row.get("coin") or (None if probs else no_coin)),
            ("coin probs", dist),
            ("window", row.get("window")),
            ("model", row.get("model")),
        ]
    )


def features_table(row: dict[str, Any]) -> Table | Text:
    """Top feature contributions behind the score, with the feature values."""
    feats = parse_json_list(row.get("top_features"))
    if not feats:
        return Text("no feature contributions recorded", style="dim")
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("feature")
    table.add_column("value", justify="right")
    table.add_column("contribution", justify="right")
    table.add_column("")
    peak = max((abs(float(f.get("contribution") or 0.0)) for f in feats), default=1.0) or 1.0
    for feat in feats:
        contrib = float(feat.get("contribution") or 0.0)
        value = feat.get("value")
        bar = "█" * max(1, round(10 * abs(contrib) / peak))
        table.add_row(
            Text(clean(feat.get("name"), 48)),
            Text(f"{value:.4g}" if isinstance(value, int | float) else clean(value, 20)),
            Text(f"{contrib:+.3f}"),
            Text(bar, style="red" if contrib > 0 else "green"),
        )
    return table


def handshake_table(row: dict[str, Any]) -> Table:
    """TLS, DNS and HTTP metadata of the flow."""
    # (a proxy's target only for a flow to a proxy: most flows have none)
    proxy = [("proxy target", proxy_target(row))] if row.get("proxy_host") else []
    return _kv(
        [
            ("tls", row.get("tls_version") if row.get("is_tls") else "no"),
            ("sni", row.get("sni")),
            ("alpn", row.get("alpn")),
            ("ja4", row.get("ja4")),
            ("ja3", row.get("ja3")),
            ("dns names", row.get("dns_names")),
            ("http host", row.get("http_host")),
            ("ws path", row.get("ws_path")),
            *proxy,
            ("end", row.get("end_reason")),
        ]
    )


def stage0_text(row: dict[str, Any]) -> Text:
    """Stage-0 evidence, one item per line."""
    items = parse_json_list(row.get("stage0"))
    if not items:
        return Text("none", style="dim")
    out = Text()
    labels = badges(row.get("stage0"))
    if labels:
        out.append(" ".join(labels) + "\n", style="bold magenta")
    for item in items:
        out.append(clean(", ".join(f"{k}={v}" for k, v in item.items()), 300) + "\n")
    return out


def history_text(history: list[str] | None) -> Text:
    """Past probes and notes for the endpoint (None: the case file is unavailable)."""
    if history is None:
        return Text("case file not available yet", style="yellow")
    if not history:
        return Text("no probes or notes yet", style="dim")
    return Text("\n".join(clean_lines(line, 400) for line in history))


class FlowDetailScreen(Screen[None]):
    """Detail of one flow, pushed over the flow table."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("p", "probe", "Probe"),
        Binding("n", "note", "Note"),
        Binding("d", "dismiss_fp", "Dismiss FP"),
        Binding("u", "undismiss", "Undismiss", show=False),
    ]

    DEFAULT_CSS = """
    FlowDetailScreen .section { text-style: bold; color: $accent; margin-top: 1; }
    FlowDetailScreen VerticalScroll { padding: 0 1; }
    """

    def __init__(
        self,
        uid: int,
        row: dict[str, Any],
        series: FlowSeries | None,
        history: list[str] | None,
        *,
        capture: str = "",
    ):
        super().__init__(id="detail")
        self.uid = uid
        self.row = row
        self.capture = capture
        self.series = series
        self.history = history

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll(id="detail-body"):
            yield Static(header_text(self.row), id="detail-title")
            if self.capture:
                yield Static(Text(self.capture, style="dim"), id="detail-capture")
            yield Static("Score", classes="section")
            yield Static(score_table(self.row), id="score")
            yield Static("Why: top feature contributions", classes="section")
            yield Static(features_table(self.row), id="features")
            yield Static("Stage 0 evidence", classes="section")
            yield Static(stage0_text(self.row), id="stage0")
            yield Static("Handshake", classes="section")
            yield Static(handshake_table(self.row), id="handshake")
            yield Static("Over the flow's life", classes="section")
            if self.series is not None:
                yield FeatureSparklines(self.series, id="sparklines")
            else:
                yield Static(Text("no per-packet arrays kept for this flow", style="dim"))
            yield Static("Probes and notes for this endpoint", classes="section")
            yield Static(history_text(self.history), id="history")
        yield Footer(compact=True)  # every key fits in 80 columns

    def action_probe(self) -> None:
        from minerscope.tui.app import MinerscopeApp

        assert isinstance(self.app, MinerscopeApp)
        self.app.start_probe_for(self.uid)

    def action_note(self) -> None:
        from minerscope.tui.app import MinerscopeApp

        assert isinstance(self.app, MinerscopeApp)
        self.app.note_for_uid(self.uid)

    def action_dismiss_fp(self) -> None:
        from minerscope.tui.app import MinerscopeApp

        assert isinstance(self.app, MinerscopeApp)
        self.app.dismiss_uid(self.uid)

    def action_undismiss(self) -> None:
        from minerscope.tui.app import MinerscopeApp

        assert isinstance(self.app, MinerscopeApp)
        self.app.undismiss_uid(self.uid)

    def set_history(self, history: list[str] | None) -> None:
        self.history = history
        self.query_one("#history", Static).update(history_text(history))
