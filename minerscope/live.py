"""The live pipeline: interface -> packet batches -> flows -> stage 0 -> stage 1, as verdicts appear.

The same pipeline as a capture file, fed by :class:`~minerscope.capture.live.LiveCapture`
instead of the file reader: the flow assembler, stage 0 and the scorer are
:mod:`minerscope._pipeline`'s, and the updates are :class:`~minerscope.triage.TriageUpdate`
objects, so the ``live`` command prints them like ``scan`` and the workstation shows them
like a capture being loaded.

Windows. A mining connection lasts hours; waiting for it to end is useless to someone
watching a link. So every flow is cut when its feature window closes (the assembler's
active timeout set to the window length): each piece is one window, scored on its own
as soon as the next packet (or, on a quiet link, the clock) shows the window is over,
and printed. A flow's later pieces inherit the cleartext its first piece saw (TLS
ClientHello fields, HTTP host, the first payload bytes stage 0 reads for plaintext
Stratum), so a pool's SNI and a Stratum login stay attached to every window of the
session, not only the first.

Time. The assembler's clock is capture time, which packets move; on a quiet link (or
behind a narrow filter) a flow that went idle or closed, or whose window ran out, would
wait for the next packet. So when the ring is empty, every :data:`ADVANCE_S` the
assembler is told the wall-clock time (:meth:`~minerscope.flows.assemble.FlowAssembler.advance`,
a little in the past: see :data:`ADVANCE_LAG_NS`) and hands out what ended by then.
The model loads, and every kernel (packet path and scoring) compiles, before the ring
opens: scoring runs in the loop that drains the ring, and a kernel compiling on its
first window would stall it long enough for the ring to overflow.

Stopping. ``duration_s``, ``max_packets`` and the ``cancel`` event end the capture;
then every flow still open is closed (``end_reason`` ``eof``), scored and returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minerscope.capture.live import LiveCapture, PipeCapture, capture_source
from minerscope.capture.packets import PacketBatch, ReadReport
from minerscope.triage import TriageOptions, TriageUpdate, load_triage_stack

if TYPE_CHECKING:  # the pipeline's heavy imports wait until the privilege check
    from minerscope.flows.records import FlowTable
    from minerscope.model.artifact import Model
    from minerscope.prefilter.blacklist import Blacklist

POLL_S = 0.25
"""Longest wait for packets before the loop checks its stop conditions again."""
PROGRESS_S = 1.0
"""Seconds between progress-only updates (updates with rows are never held back)."""
ADVANCE_S = 1.0
"""On a quiet link, how often capture time is moved on (so idle flows and ended windows come out)."""
ADVANCE_LAG_NS = 200_000_000
"""Capture time is moved to this far before now: packets in a ring block not yet handed over
(at most ``BLOCK_TIMEOUT_MS`` old) stay newer than the clock."""
MAX_CONVERSATIONS = 50_000
"""Security limit: conversations whose first-window cleartext is remembered for later windows."""
CARRY_PREFIX_BYTES = 2048
"""Payload bytes per direction remembered of a first window (a Stratum login fits; 200 MB at most)."""

_META = (
    "is_tls", "tls_version", "sni", "alpn", "ja4", "ja3", "http_host", "ws_path", "proxy_host", "proxy_port",
)  # fmt: skip
"""The assembler's ``METADATA_COLUMNS`` (not imported: it would load the pipeline before the
privilege check)."""


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """Where and how long to capture.

    Attributes:
        interface: network interface name (``lo``, ``eth0`` ...).
        bpf: tcpdump-style capture filter compiled by libpcap (None: every packet).
        promisc: put the interface in promiscuous mode.
        duration_s: stop after this many seconds (None: until cancelled).
        max_packets: stop after this many packets (None: no limit).
    """

    interface: str
    bpf: str | None = None
    promisc: bool = False
    duration_s: float | None = None
    max_packets: int | None = None


ConversationKey = tuple[int, str, int, str, int, int]


@dataclass(slots=True)
class _Conversations:
    """The cleartext of each conversation's first window, for its later windows.

    A flow the assembler cut at the window boundary (``end_reason`` ``active``) continues
    in the next piece, which starts mid-stream: no ClientHello, no login. This fills the
    metadata columns and payload prefixes of such continuation pieces from the first.
    """

    known: dict[ConversationKey, tuple[dict[str, Any], tuple[bytes, bytes] | None]] = field(
        default_factory=dict
    )

    def carry(self, table: FlowTable) -> FlowTable:
        """Fill continuation pieces of ``table`` in place and remember the ones that continue."""
        if not len(table):
            return table
        cols = ["proto", "src", "sport", "dst", "dport", "vlan", "end_reason", *_META]
        rows = table.summary.select(cols).to_dicts()
        # a list: a continuation piece takes its conversation's first bytes in place
        prefixes = None if table.payload_prefixes is None else list(table.payload_prefixes)
        meta_cols: dict[str, list[Any]] = {name: [r[name] for r in rows] for name in _META}
        changed = False
        for i, row in enumerate(rows):
            key: ConversationKey = (
                int(row["proto"]), str(row["src"]), int(row["sport"]),
                str(row["dst"]), int(row["dport"]), int(row["vlan"]),
            )  # fmt: skip
            # the old assembler may name the client of a continuation piece differently
            swapped: ConversationKey = (key[0], key[3], key[4], key[1], key[2], key[5])
            first = self.known.pop(key, None) or self.known.pop(swapped, None)
            prefix: tuple[bytes, bytes] | None = None
            if prefixes is not None:
                c2s, s2c = prefixes[i]
                prefix = (c2s[:CARRY_PREFIX_BYTES], s2c[:CARRY_PREFIX_BYTES])
            if first is not None:
                first_meta, first_prefix = first
                for name in _META:
                    if not meta_cols[name][i] and first_meta[name]:
                        meta_cols[name][i] = first_meta[name]
                        changed = True
                # a first window that closed before any payload (the TCP handshake alone) has
                # nothing to lend: this piece keeps its own bytes and lends them on
                if first_prefix is not None and any(first_prefix) and prefixes is not None:
                    prefixes[i] = prefix = first_prefix
                    table.payload_prefixes = prefixes
            if row["end_reason"] == "active":
                while len(self.known) >= MAX_CONVERSATIONS:
                    self.known.pop(next(iter(self.known)))
                self.known[key] = ({name: meta_cols[name][i] for name in _META}, prefix)
        if changed:
            import polars as pl

            table.summary = table.summary.with_columns(
                pl.Series(name, meta_cols[name], dtype=table.summary.schema[name]) for name in _META
            )
        return table


def iter_live(
    source: str | Path,
    options: TriageOptions | None = None,
    *,
    cancel: threading.Event | None = None,
    live: LiveOptions | None = None,
) -> Iterator[TriageUpdate]:
    """Capture on an interface and yield updates as flows end or windows close.

    The signature matches :func:`minerscope.triage.iter_triage` (``source`` is the
    interface name), so the workstation can take it as its loader. The first update
    has no rows: it says the capture is open. The last has ``done`` set and a
    ``report`` whose ``complete`` is False when the kernel dropped packets (or a stream
    piped in was cut inside a record).

    Args:
        source: interface name, or ``-`` / a FIFO's path for a capture piped in (used when
            ``live`` is None or names none).
        options: model, blacklist, timeouts; ``window_s`` is where flows are cut.
        cancel: set it to stop the capture (open flows are still scored).
        live: capture settings (filter, duration, packet count).

    Raises:
        minerscope.errors.CapturePrivilegeError: no root / CAP_NET_RAW.
        minerscope.errors.CaptureError: no such interface / unsupported link type.
        minerscope.errors.InputError: the capture filter does not compile.
        minerscope.errors.ModelError: the model cannot be loaded.
    """
    options = options or TriageOptions()
    live = live or LiveOptions(str(source))
    capture = capture_source(live.interface or str(source), bpf=live.bpf, promisc=live.promisc)
    capture.check()  # first: a missing privilege is reported before the model loads

    from minerscope.warmup import compile_kernels

    # Loaded and compiled before the ring exists: a kernel compiling on its first packet
    # or window (tens of seconds on a machine's first run) would let the ring overflow.
    # The model loads in well under a second (scoring needs no xgboost).
    scoring = load_scoring(options)
    compile_kernels(scoring[0])
    if cancel is not None and cancel.is_set():
        return
    capture.open()
    try:
        yield from _run(capture, options, live, cancel, scoring)
    finally:
        capture.close()


def load_scoring(options: TriageOptions) -> tuple[Model, Blacklist]:
    """The model and the blacklist a live session scores with."""
    from minerscope._pipeline import build_blacklist
    from minerscope.model.artifact import load_model

    load_triage_stack()  # before the model's first kernel: cached kernels, no compiler set-up
    return load_model(options.model), build_blacklist(options)


def _run(
    capture: LiveCapture | PipeCapture,
    options: TriageOptions,
    live: LiveOptions,
    cancel: threading.Event | None,
    scoring: tuple[Model, Blacklist],
) -> Iterator[TriageUpdate]:
    from minerscope._pipeline import score_rows
    from minerscope.flows.assemble import FlowAssembler, fill_dns_names

    interface = capture.name
    assembler = FlowAssembler(
        idle_timeout=options.idle_timeout, active_timeout=options.window_s, capture=interface
    )
    conversations = _Conversations()
    report = ReadReport(path=interface, file_format="live")
    model, blacklist = scoring
    scored = 0
    # the held-flow count walks the whole flow table: at most once per PROGRESS_S, not on
    # every batch that ends flows (many a second on a busy link)
    held, held_at = 0, -PROGRESS_S

    def update(finished: FlowTable | None, *, done: bool = False) -> TriageUpdate:
        nonlocal scored, held, held_at
        now = time.monotonic()
        if done or now - held_at >= PROGRESS_S:
            held, held_at = assembler.open_flows, now
        out = TriageUpdate(
            path=interface,
            bytes_read=report.bytes_read,
            bytes_total=0,
            packets=report.packets,
            flows_scored=scored,
            done=done,
            report=report if done else None,
            open_flows=held,
            dropped=capture.kernel_stats().dropped,
        )
        if finished is not None and len(finished):
            fill_dns_names(finished, assembler.dns_names)
            conversations.carry(finished)
            out.rows = score_rows(finished, model, blacklist, scored)
            out.table = finished
            scored += len(finished)
            out.flows_scored = scored
        return out

    yield update(None)
    started = time.monotonic()
    deadline = None if live.duration_s is None else started + live.duration_s
    last_progress = last_advance = started
    while True:
        if (cancel is not None and cancel.is_set()) or capture.ended:
            break
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if live.max_packets is not None and report.packets >= live.max_packets:
            break
        wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - now))
        batch = capture.read(wait)
        if live.max_packets is not None and report.packets + len(batch.packets) > live.max_packets:
            batch = PacketBatch(batch.packets[: live.max_packets - report.packets], batch.data, batch.source)
        if not len(batch.packets):
            if now - last_advance >= ADVANCE_S:
                # Nothing arrived (the ring is drained): tell the assembler the time, so
                # flows that went quiet and windows that ran out end now, not at the next packet.
                last_advance = now
                finished = assembler.advance(capture.now_ns() - ADVANCE_LAG_NS)
                if len(finished):
                    last_progress = now
                    yield update(finished)
                    continue
            if now - last_progress >= PROGRESS_S:
                last_progress = now
                yield update(None)
            continue
        _count(report, batch)
        finished = assembler.feed(batch)
        if len(finished) or now - last_progress >= PROGRESS_S:
            last_progress = now
            yield update(finished)
    capture.finish_report(report)
    yield update(assembler.finish(), done=True)


def _count(report: ReadReport, batch: PacketBatch) -> None:
    rows = batch.packets
    n = int(rows.shape[0])
    ip = int((rows["ip_version"] != 0).sum())
    report.packets += n
    report.ip_packets += ip
    report.non_ip_packets += n - ip
    report.fragments += int(rows["frag"].sum())
    report.bytes_read += int(rows["wire_len"].sum())
