"""Implementation of :mod:`minerscope.triage` (kept apart so ``triage`` stays a light import).

Per block of the capture: the assembler returns the flows that ended, those get DNS
names learned so far, stage-0 evidence, and stage-1 scores, and leave as one
:class:`~minerscope.triage.TriageUpdate`. Flows still open stay in the assembler, so
memory follows live flows, not file size.

The glue here is columnar on purpose: at a million packets per second a Python loop per
flow (JSON-encoding its coin probabilities and top features, say) costs as much as the
model, so the JSON columns are built from the score arrays column-wise, once per block,
spelled as Python's ``json`` spells them (what lets the JSONL writer copy them through).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from minerscope.capture.pcap import CaptureReader
from minerscope.flows.assemble import FlowAssembler
from minerscope.flows.records import FlowTable
from minerscope.model.artifact import METADATA_FILE, Model, load_model, resolve_model_path
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
"""Columns triage adds to the flow summary (JSON objects are JSON text: ``coin_probs`` and
``top_features`` spelled exactly as :func:`minerscope.cli.output.json_line` spells their
values, see :func:`_json_columns`)."""


MAX_BLOCK_FLOWS = 8_192
"""Flows scored together at most: bounds the feature and explanation matrices."""
MAX_BLOCK_PACKETS = 1 << 18
"""Packets of the flows scored together at most (one larger flow is scored alone)."""

_MODEL_CACHE: OrderedDict[tuple[object, ...], Model] = OrderedDict()
_MODEL_CACHE_SIZE = 4
_MODEL_LOCK = threading.Lock()


def cached_model(name: str | Path | None) -> Model:
    """:func:`load_model`, once per process per model version.

    A worker scanning a directory triages capture after capture; loading and verifying
    the boosters each time costs about as much as triaging a small capture. The key
    includes the folder's and sidecar's inode, size and mtime, so a retrained model
    (``save_model`` swaps the folder in atomically) is loaded afresh.
    """
    folder = resolve_model_path(name)
    try:
        fst = folder.stat()
        mst = (folder / METADATA_FILE).stat()
        key: tuple[object, ...] = (str(folder), fst.st_ino, mst.st_ino, mst.st_size, mst.st_mtime_ns)
    except OSError:
        return load_model(name)  # let the loader say what is missing
    with _MODEL_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is not None:
            _MODEL_CACHE.move_to_end(key)
            return model
    model = load_model(folder)
    with _MODEL_LOCK:
        _MODEL_CACHE[key] = model
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
    return model


def _json_columns() -> list[pl.Expr]:
    """``coin_probs`` (JSON object, ``{}`` when absent) and ``top_features`` (JSON list).

    :func:`score` already wrote them as compact JSON text, as Python's ``json`` spells
    it (non-finite numbers as ``null``: the output is strict JSON, which has no NaN), so
    the JSONL writer passes them through without parsing them again.
    """
    return [pl.col("coin_probs").fill_null("{}"), pl.col("top_features").fill_null("[]")]


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
    scores = score(table, model, json_text=True)
    extra = scores.select(
        "flow_id",
        "p_mining",
        "stage1",
        "coin",
        "window",
        "window_start",
        "window_end",
        *_json_columns(),
        pl.lit(model.name).alias("model"),
    )
    if extra["flow_id"].equals(table.summary["flow_id"]):  # score keeps the table's order: no join
        rows = pl.concat([table.summary, extra.drop("flow_id")], how="horizontal")
    else:
        rows = table.summary.join(extra, on="flow_id", how="left", maintain_order="left")
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


def split_table(
    table: FlowTable, max_packets: int | None = None, max_flows: int | None = None
) -> Iterator[FlowTable]:
    """``table`` as consecutive blocks of at most ``max_flows`` flows and ``max_packets``
    packets (defaults :data:`MAX_BLOCK_FLOWS`, :data:`MAX_BLOCK_PACKETS`; a single larger
    flow is a block of its own); ``flow_id`` restarts at 0 in each.

    Flows that never go idle all end at once when the capture ends, so the last block
    of a long capture can hold most of its flows; scoring it whole would make peak memory
    follow the capture's size. The arrays are sliced as views, not copied.
    """
    max_packets = MAX_BLOCK_PACKETS if max_packets is None else max_packets
    max_flows = MAX_BLOCK_FLOWS if max_flows is None else max_flows
    n = len(table)
    offs = table.pkt_offsets
    if n <= max_flows and int(offs[-1]) <= max_packets:
        yield table
        return
    start = 0
    while start < n:
        end = int(np.searchsorted(offs, offs[start] + max_packets, side="right")) - 1
        end = min(max(end, start + 1), start + max_flows, n)
        yield _slice(table, start, end)
        start = end


def _slice(table: FlowTable, start: int, end: int) -> FlowTable:
    p0, p1 = int(table.pkt_offsets[start]), int(table.pkt_offsets[end])
    m0, m1 = int(table.msg_offsets[start]), int(table.msg_offsets[end])
    summary = table.summary.slice(start, end - start)
    return FlowTable(
        summary=summary.with_columns(pl.int_range(0, summary.height, dtype=pl.Int64).alias("flow_id")),
        pkt_offsets=table.pkt_offsets[start : end + 1] - p0,
        pkt_ts=table.pkt_ts[p0:p1],
        pkt_size=table.pkt_size[p0:p1],
        pkt_payload_len=table.pkt_payload_len[p0:p1],
        pkt_dir=table.pkt_dir[p0:p1],
        pkt_flags=table.pkt_flags[p0:p1],
        msg_offsets=table.msg_offsets[start : end + 1] - m0,
        msg_ts=table.msg_ts[m0:m1],
        msg_len=table.msg_len[m0:m1],
        msg_dir=table.msg_dir[m0:m1],
        msg_type=table.msg_type[m0:m1],
        payload_prefixes=None if table.payload_prefixes is None else table.payload_prefixes[start:end],
    )


def run(path: Path, options: TriageOptions, cancel: threading.Event | None) -> Iterator[TriageUpdate]:
    """Yield triage updates for one capture (see :func:`minerscope.triage.iter_triage`).

    One update per block read (with the flows that ended in it, if any), more when a
    block's finished flows are scored in several parts (see :func:`split_table`).
    """
    model = cached_model(options.model)
    blacklist = build_blacklist(options)
    total = path.stat().st_size if path.is_file() else 0
    reader = CaptureReader(path, bpf=options.bpf)
    assembler = FlowAssembler(
        idle_timeout=options.idle_timeout, active_timeout=options.active_timeout, capture=path.name
    )
    scored = 0

    def progress(**extra: Any) -> TriageUpdate:
        return TriageUpdate(
            path=str(path),
            bytes_read=reader.report.bytes_read,
            bytes_total=total,
            packets=reader.report.packets,
            flows_scored=scored,
            **extra,
        )

    try:
        for batch in reader.batches():
            if cancel is not None and cancel.is_set():
                break
            finished = assembler.feed(batch)
            if not len(finished):
                yield progress()
                continue
            for part in split_table(finished):
                rows = score_rows(part, model, blacklist, scored)
                scored += len(part)
                yield progress(rows=rows, table=part)
        finished = assembler.finish()
    finally:
        reader.close()
    parts = list(split_table(finished)) if len(finished) else []
    for i, part in enumerate(parts):
        rows = score_rows(part, model, blacklist, scored)
        scored += len(part)
        if i < len(parts) - 1:
            yield progress(rows=rows, table=part)
        else:
            last = progress(rows=rows, table=part, done=True, report=reader.report)
    if not parts:
        last = progress(done=True, report=reader.report)
    if cancel is not None and cancel.is_set():
        reader.report.complete = False
        reader.report.warning = reader.report.warning or f"{path}: cancelled before the end"
    yield last
