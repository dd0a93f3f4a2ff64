"""The headless pipeline: capture -> flows -> stage 0 -> features -> model -> ranked rows.

Both front ends (the ``scan`` command and the Textual workstation) call this module and
nothing else of the pipeline, so a verdict is the same wherever it is shown. It streams:
:func:`iter_triage` yields a :class:`TriageUpdate` per block of the capture with the
flows scored so far, which is how the UI fills its table within seconds of opening a big
file and how ``scan`` shows progress. Cancellation is cooperative (a ``threading.Event``
checked between blocks) because the heavy work runs in numpy/numba, not in Python
loops that could be interrupted anywhere.

Row columns (polars, one row per flow): every FLOW_SUMMARY_SCHEMA column, plus
``p_mining`` (float), ``stage1`` (``mining``/``benign``: the classifier alone at the
model's threshold; ``unscored`` when no window of the flow could be scored), ``verdict`` (``mining`` when stage 0 or stage 1 says so, else
``benign``), ``coin`` (most likely coin), ``coin_probs`` (JSON object coin -> probability),
``top_features`` (JSON list of {name, value, contribution}), ``window`` (index of the
most suspicious window, -1 for the whole flow), ``model`` (model name/version).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports stay out of module import time
    import polars as pl

    from minerscope.capture.packets import ReadReport
    from minerscope.flows.records import FlowTable


_settled = False


def load_triage_stack() -> None:
    """Import everything triage needs, then freeze the objects alive now; for processes
    that triage captures (scan workers, the workstation's triage child). Not xgboost:
    scoring walks the trees itself (:mod:`minerscope.model.predict`).

    The imports leave ~74k tracked objects (numba's type system, polars) that live
    as long as the process; without ``gc.freeze`` every full collection a scan triggers walks
    them again (~0.2 CPU s of a 2M-packet scan when numba's registries made them ~140k),
    for garbage that cannot be there. Frozen once per process, on first use, so objects a
    later capture leaves behind stay collectable.
    """
    global _settled
    import minerscope._pipeline  # noqa: F401  (capture, flows, stage 0: numba, polars)
    import minerscope.model.classify  # noqa: F401  (features, scoring)
    from minerscope.numba_registries import load_cached_kernels_without_registries, load_registries

    if not _settled:
        _settled = True
        # cached kernels load without numba's compiler registries (~0.4 CPU s, ~50k
        # objects); where that is not available, the registries load now, without SciPy,
        # so that the freeze covers them (what a 2M-packet scan's full collections walked
        # dropped from ~54k objects to ~3k)
        if not load_cached_kernels_without_registries():
            load_registries()
        gc.freeze()


@dataclass(frozen=True, slots=True)
class TriageOptions:
    """Settings of one triage run.

    Attributes:
        model: model name or path (None: the shipped default).
        blacklist_files: plain/hosts/CSV indicator files for stage 0.
        db_path: case file whose blacklist and allowlist apply (None: none used).
        idle_timeout: seconds of silence that end a flow.
        active_timeout: seconds after which a long flow is cut (None: never).
        window_s: live capture only: seconds after which an open flow is cut and scored
            (file triage scores each flow in the model's own window, ``Model.window_s``).
        bpf: files only: a capture filter in tcpdump syntax; the packets it rejects are
            left out before decoding (a live capture's filter runs in the kernel).
    """

    model: str | None = None
    blacklist_files: tuple[Path, ...] = ()
    db_path: Path | None = None
    idle_timeout: float = 120.0
    active_timeout: float | None = None
    window_s: float = 300.0
    bpf: str | None = None


@dataclass(slots=True)
class TriageUpdate:
    """Progress and partial results after one block of a capture.

    ``rows`` holds only the flows finished since the previous update (append them);
    ``done`` is True on the last update, whose ``report`` says whether the file was
    complete. A live capture also says how many flows it holds open (``open_flows``) and
    how many packets the kernel dropped so far (``dropped``).
    """

    path: str
    bytes_read: int
    bytes_total: int
    packets: int
    flows_scored: int
    rows: pl.DataFrame | None = None
    table: FlowTable | None = None
    done: bool = False
    report: ReadReport | None = None
    open_flows: int | None = None
    dropped: int = 0


def live_status(packets: int, open_flows: int | None, dropped: int) -> str:
    """A live capture's state in one phrase, for the workstation and the headless command:
    packets seen, the flows held open (the memory a long run grows), and kernel drops
    when there were any (the sign the host cannot keep up)."""
    parts = [f"{packets:,} pkts"]
    if open_flows is not None:
        parts.append(f"{open_flows:,} open flow{'' if open_flows == 1 else 's'}")
    if dropped:
        parts.append(f"{dropped:,} dropped")
    return " · ".join(parts)


@dataclass(slots=True)
class TriageResult:
    """Everything one capture produced: the flow table, scored rows and the read report."""

    path: str
    table: FlowTable
    rows: pl.DataFrame
    report: ReadReport
    warnings: list[str] = field(default_factory=list)


def iter_triage(
    path: str | Path,
    options: TriageOptions | None = None,
    *,
    cancel: threading.Event | None = None,
) -> Iterator[TriageUpdate]:
    """Stream a capture through the pipeline, yielding partial results per block.

    Raises:
        minerscope.errors.CaptureError: the file is not a capture / link type unsupported.
        minerscope.errors.ModelError: the model cannot be loaded.
    """
    from minerscope import _pipeline

    yield from _pipeline.run(Path(path), options or TriageOptions(), cancel)


def triage_capture(
    path: str | Path,
    options: TriageOptions | None = None,
    *,
    on_update: Callable[[TriageUpdate], None] | None = None,
    cancel: threading.Event | None = None,
) -> TriageResult:
    """Run the whole pipeline over one capture and return the joined result."""
    import polars as pl

    from minerscope.flows.records import FlowTable

    tables: list[FlowTable] = []
    rows: list[pl.DataFrame] = []
    last: TriageUpdate | None = None
    for update in iter_triage(path, options, cancel=cancel):
        if update.table is not None:
            tables.append(update.table)
        if update.rows is not None:
            rows.append(update.rows)
        if on_update is not None:
            on_update(update)
        last = update
    assert last is not None and last.report is not None
    table = FlowTable.concat(tables)
    joined = pl.concat(rows, how="vertical") if rows else pl.DataFrame()
    if joined.height:
        joined = joined.with_columns(pl.int_range(0, joined.height, dtype=pl.Int64).alias("flow_id"))
    warnings = [last.report.warning] if last.report.warning else []
    return TriageResult(path=str(path), table=table, rows=joined, report=last.report, warnings=warnings)


def triage_rows(
    path: str | Path,
    options: TriageOptions | None = None,
    *,
    cancel: threading.Event | None = None,
    on_update: Callable[[TriageUpdate], None] | None = None,
) -> tuple[pl.DataFrame, ReadReport]:
    """The scored rows of one capture and its read report, without the flow table.

    Same rows as :func:`triage_capture`; for batch callers (``scan``, the distributed
    adapter) that never look at per-packet arrays: each block's flow table is dropped as
    soon as it is scored, so a worker's memory follows the live flows, not the capture.
    ``on_update`` sees every update (progress: bytes read, flows scored).
    """
    import polars as pl

    rows: list[pl.DataFrame] = []
    last: TriageUpdate | None = None
    for update in iter_triage(path, options, cancel=cancel):
        if update.rows is not None:
            rows.append(update.rows)
        if on_update is not None:
            on_update(update)
        last = update
    assert last is not None and last.report is not None
    joined = pl.concat(rows, how="vertical", rechunk=True) if rows else pl.DataFrame()
    if joined.height:
        joined = joined.with_columns(pl.int_range(0, joined.height, dtype=pl.Int64).alias("flow_id"))
    return joined, last.report
