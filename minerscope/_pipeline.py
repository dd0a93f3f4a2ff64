"""Implementation of :mod:`minerscope.triage` (kept apart so ``triage`` stays a light import).

Per block of the capture: the assembler returns the flows that ended, those get DNS
names learned so far, stage-0 evidence, and stage-1 scores, and leave as one
:class:`~minerscope.triage.TriageUpdate`. Flows still open stay in the assembler, so
memory follows live flows, not file size.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from minerscope.capture.pcap import CaptureReader
from minerscope.flows.assemble import FlowAssembler, fill_dns_names
from minerscope.flows.records import FlowTable
from minerscope.model.artifact import Model, load_model
from minerscope.model.classify import score
from minerscope.prefilter.blacklist import Blacklist
from minerscope.prefilter.stage0 import apply_stage0
from minerscope.triage import TriageOptions, TriageUpdate

ROW_EXTRA_SCHEMA: dict[str, Any] = {
    "p_mining": pl.Float64,
    "stage1": pl.Utf8,
    "verdict": pl.Utf8,
    "coin": pl.Utf8,
    "coin_probs": pl.Utf8,
    "top_features": pl.Utf8,
    "window": pl.Int32,
    "window_start": pl.Float64,
    "window_end": pl.Float64,
    "model": pl.Utf8,
}
"""Columns triage adds to the flow summary (JSON objects are JSON text)."""


def build_blacklist(options: TriageOptions) -> Blacklist:
    """Indicators from the given files, plus the case file's living blacklist when one is set."""
    blacklist = Blacklist.from_files(options.blacklist_files)
    if options.db_path is not None:
        from minerscope.store import load_blacklist

        for indicator in load_blacklist(options.db_path).indicators():
            blacklist.add(indicator)
    return blacklist


def score_rows(
    table: FlowTable, model: Model, blacklist: Blacklist | None, id_offset: int = 0
) -> pl.DataFrame:
    """Stage 0 + stage 1 for a table of finished flows -> rows (summary + verdict columns).

    ``flow_id`` in the rows (and in ``table.summary``) is shifted by ``id_offset`` so
    ids stay unique across the updates of one capture.
    """
    apply_stage0(table, blacklist)
    scores = score(table, model)
    coin_json = [json.dumps(c, separators=(",", ":")) if c else "{}" for c in scores["coin_probs"].to_list()]
    top_json = [json.dumps(t or [], separators=(",", ":")) for t in scores["top_features"].to_list()]
    extra = scores.select(
        "flow_id", "p_mining", "stage1", "coin", "window", "window_start", "window_end"
    ).with_columns(
        pl.Series("coin_probs", coin_json, pl.Utf8),
        pl.Series("top_features", top_json, pl.Utf8),
        pl.lit(model.name).alias("model"),
    )
    rows = table.summary.join(extra, on="flow_id", how="left")
    rows = rows.with_columns(
        pl.when((pl.col("stage0") != "") | (pl.col("stage1") == "mining"))
        .then(pl.lit("mining"))
        .otherwise(pl.lit("benign"))
        .alias("verdict")
    )
    if id_offset:
        rows = rows.with_columns(pl.col("flow_id") + id_offset)
        table.summary = table.summary.with_columns(pl.col("flow_id") + id_offset)
    return rows.select(*table.summary.columns, *ROW_EXTRA_SCHEMA)


def run(path: Path, options: TriageOptions, cancel: threading.Event | None) -> Iterator[TriageUpdate]:
    """Yield triage updates for one capture (see :func:`minerscope.triage.iter_triage`)."""
    model = load_model(options.model)
    blacklist = build_blacklist(options)
    total = path.stat().st_size if path.is_file() else 0
    reader = CaptureReader(path)
    assembler = FlowAssembler(
        idle_timeout=options.idle_timeout, active_timeout=options.active_timeout, capture=path.name
    )
    scored = 0
    try:
        for batch in reader.batches():
            if cancel is not None and cancel.is_set():
                break
            finished = assembler.feed(batch)
            update = TriageUpdate(
                path=str(path),
                bytes_read=reader.report.bytes_read,
                bytes_total=total,
                packets=reader.report.packets,
                flows_scored=scored,
            )
            if len(finished):
                fill_dns_names(finished, assembler.dns_names)
                update.rows = score_rows(finished, model, blacklist, scored)
                update.table = finished
                scored += len(finished)
                update.flows_scored = scored
            yield update
        finished = assembler.finish()
    finally:
        reader.close()
    last = TriageUpdate(
        path=str(path),
        bytes_read=reader.report.bytes_read,
        bytes_total=total,
        packets=reader.report.packets,
        flows_scored=scored,
        done=True,
        report=reader.report,
    )
    if len(finished):
        fill_dns_names(finished, assembler.dns_names)
        last.rows = score_rows(finished, model, blacklist, scored)
        last.table = finished
        last.flows_scored = scored + len(finished)
    if cancel is not None and cancel.is_set():
        reader.report.complete = False
        reader.report.warning = reader.report.warning or f"{path}: cancelled before the end"
    yield last
