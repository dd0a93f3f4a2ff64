"""Labelled training data: captures + labels -> :class:`~minerscope.model.train.LabelledFlows`.

Three input shapes, all ending as one flow table and one label row per flow:

* a **manifest folder** (or its ``MANIFEST.csv``) in the format of
  ``../shared/datasets/real`` (``path,label,coin,...`` with ``miner``/``benign`` and an
  optional ``FLOW_LABELS.csv`` naming pool endpoints inside mixed captures) or of
  ``../shared/datasets/lab-real`` (``mining``/``benign``, ``server_endpoint``);
* a **labels CSV** naming flows by 5-tuple (the lab's format: ``client_ip, client_port,
  server_ip, server_port, proto, label, coin, session_id[, start_ns]``; ``src/sport/
  dst/dport`` and ``session`` are accepted too) with a ``capture`` column or next to a
  capture of the same stem (``x.pcapng`` + ``x.labels.csv``/``x.csv``/``labels.csv``);
* a **capture file** with such a labels CSV beside it.

Labels are per flow: ``label`` 1 mining / 0 benign / -1 not labelled (excluded from
training); ``coin`` lower case without decorations (``"XMR (regtest)"`` -> ``xmr``);
``group`` the unit of the train/test split (capture file, or lab session); ``source``
the data set (``cj-sniffer``, ``ndpi``, ``lab-real``, ``lab``...) for per-source metrics.
A flow that appears in two files (one ETH session of CJ-Sniffer does) merges the two
files' groups, so it cannot sit on both sides of the split.

Parsing of manifests and label files is :mod:`minerscope.lab.datasets`'s (one parser
for the lab and the model); this module only joins those labels to assembled flows.

Captures are read through a *reader* (path -> FlowTable); the default is the package's
pcap reader + flow assembler, and tests or tools may pass another.

Nothing is left out without a word: :func:`load_data` names in its recipe every capture
the default reader found damaged (``damaged``: the reader's own line, "damaged at byte N
... kept the K packets before it", the flows cover what came before), every capture whose
labels CSV names none of its flows (``unmatched``: a wrong capture paired with the
labels), and every manifest capture that could not be decoded at all (``skipped``). The
CLI prints each as a warning and exits 3 (partial input), as ``flows`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.errors import CaptureError, InputError
from minerscope.flows.records import FlowTable
from minerscope.lab import datasets as labdata
from minerscope.lab.labels import LABEL_MINER
from minerscope.model.train import LabelledFlows

Reader = Callable[[Path], FlowTable]

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
LABEL_SCHEMA = {"label": pl.Int8, "coin": pl.Utf8, "group": pl.Utf8, "source": pl.Utf8}


def default_reader(path: Path) -> FlowTable:
    """Read a capture with the package's reader and assemble its flows.

    Raises:
        minerscope.errors.CaptureError: the file is not a readable capture.
        InputError: this build has no capture reader.
    """
    try:
        from minerscope.capture import pcap
        from minerscope.flows.assemble import assemble
    except ImportError as exc:  # the reader lands separately; say so instead of failing obscurely
        raise InputError(f"cannot read {path}: the capture reader is not available ({exc})") from None
    read = getattr(pcap, "iter_batches", None) or getattr(pcap, "read_batches", None)
    if read is None:
        raise InputError(f"cannot read {path}: minerscope.capture.pcap has no batch reader")
    return assemble(read(path), capture=path.name)


def reporting_reader(damaged: list[str], notes: list[str]) -> Reader:
    """The default reader, also keeping what the capture reader reported.

    ``damaged`` receives the reader's warning line of each capture it could not read to
    its end; ``notes`` the warning of a capture read whole that still left packets out
    (a link type that is not decoded, say).
    """

    def read(path: Path) -> FlowTable:
        try:
            from minerscope.capture import pcap
            from minerscope.flows.assemble import assemble
        except ImportError as exc:
            raise InputError(f"cannot read {path}: the capture reader is not available ({exc})") from None
        batches, report = pcap.read_capture(path)
        table = assemble(batches, capture=path.name)
        if not report.complete:
            damaged.append(report.warning or f"{path}: {report.damage or 'damaged'}")
        elif report.warning:
            notes.append(report.warning)
        return table

    return read


def normalise_coin(value: str | None) -> str | None:
    """``"XMR (regtest)"`` -> ``"xmr"``; empty/None -> None."""
    return labdata.norm_coin(value) or None


def _is_capture(path: Path) -> bool:
    return path.name.lower().endswith(CAPTURE_SUFFIXES)


def _frame(
    labels: npt.NDArray[np.int8], coins: list[str | None], groups: list[str], source: str
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "label": labels,
            "coin": pl.Series(coins, dtype=pl.Utf8),
            "group": groups,
            "source": [source] * len(groups),
        },
        schema=LABEL_SCHEMA,
    )


def load_manifest(
    manifest: str | Path, *, reader: Reader | None = None, skipped: list[str] | None = None
) -> list[LabelledFlows]:
    """Load every capture a MANIFEST.csv lists (non-capture rows are skipped).

    The manifest and its FLOW_LABELS.csv are parsed by :func:`minerscope.lab.datasets.load_manifest`;
    each flow gets :meth:`~minerscope.lab.datasets.CaptureEntry.flow_label` (an endpoint
    rule matching either end, else benign in a file naming endpoints, else the file label).

    A listed capture the reader cannot decode at all (an unsupported link type, say) is
    left out and named in ``skipped`` (``"path: reason"``) when that list is given;
    without it the :class:`~minerscope.errors.CaptureError` propagates.

    Raises:
        InputError: missing/malformed manifest or label; CaptureError from the reader.
    """
    path = Path(manifest)
    root = path if path.is_dir() else path.parent
    reader = reader or default_reader
    dataset = root.name
    out: list[LabelledFlows] = []
    for entry in labdata.load_manifest(root):
        capture = entry.path
        if not _is_capture(capture):
            continue
        rel = capture.relative_to(root).as_posix() if capture.is_relative_to(root) else str(capture)
        if not capture.is_file():
            raise InputError(f"{root / 'MANIFEST.csv'}: capture {rel!r} does not exist")
        try:
            table = reader(capture)
        except CaptureError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
            continue
        s = table.summary
        labels = np.zeros(len(table), np.int8)
        coins: list[str | None] = []
        ends = zip(
            s["src"].to_list(), s["sport"].to_list(), s["dst"].to_list(), s["dport"].to_list(), strict=True
        )
        for i, (src, sp, dst, dp) in enumerate(ends):
            label, coin = entry.flow_label(src, int(sp), dst, int(dp))
            labels[i] = 1 if label == LABEL_MINER else 0
            coins.append((coin or None) if label == LABEL_MINER else None)
        source = dataset if dataset != "real" else Path(rel).parts[0]
        out.append(LabelledFlows(table, _frame(labels, coins, [f"{dataset}/{rel}"] * len(table), source)))
    return out


def _tuple_key(a: str, ap: int, b: str, bp: int, proto: int | None) -> tuple[Any, ...]:
    ends = sorted([(str(a), int(ap)), (str(b), int(bp))])
    return (*ends[0], *ends[1], proto)


def load_labelled_capture(
    capture: str | Path,
    labels_csv: str | Path,
    *,
    reader: Reader | None = None,
    source: str = "lab",
    rows: Sequence[labdata.FlowLabel] | None = None,
    unmatched: list[str] | None = None,
) -> LabelledFlows:
    """One capture and its per-flow labels CSV (5-tuples; either orientation matches).

    The CSV is parsed by :func:`minerscope.lab.datasets.read_flow_labels` (unless ``rows``
    are given, already parsed). Flows the CSV does not name get label -1 (not used for
    training). When several rows share a 5-tuple, the one whose ``start_ns`` is closest
    to the flow's first packet wins. A CSV with rows that name none of the capture's
    flows (the wrong capture beside it) leaves the whole capture out: that is said in
    ``unmatched`` when the list is given.

    Raises:
        InputError: missing columns or bad label values (naming file and line).
    """
    capture, labels_csv = Path(capture), Path(labels_csv)
    parsed = list(rows) if rows is not None else labdata.read_flow_labels(labels_csv)
    by_tuple: dict[tuple[Any, ...], list[labdata.FlowLabel]] = {}
    for row in parsed:
        key = _tuple_key(row.client_ip, row.client_port, row.server_ip, row.server_port, row.proto)
        by_tuple.setdefault(key, []).append(row)
    table = (reader or default_reader)(capture)
    s = table.summary
    n = len(table)
    labels = np.full(n, -1, np.int8)
    coins: list[str | None] = [None] * n
    groups = [f"{source}:{capture.name}:unlabelled"] * n
    for i, (src, sp, dst, dp, proto, first) in enumerate(
        zip(
            s["src"].to_list(),
            s["sport"].to_list(),
            s["dst"].to_list(),
            s["dport"].to_list(),
            s["proto"].to_list(),
            s["first_seen"].to_list(),
            strict=True,
        )
    ):
        cands = by_tuple.get(_tuple_key(src, sp, dst, dp, proto)) or by_tuple.get(
            _tuple_key(src, sp, dst, dp, None)
        )
        if not cands:
            continue
        best = min(cands, key=lambda c: abs(c.start_ns / 1e9 - first) if c.start_ns is not None else 0.0)
        mining = best.label == LABEL_MINER
        labels[i] = 1 if mining else 0
        coins[i] = (best.coin or None) if mining else None
        groups[i] = f"{source}:{capture.name}:{best.session}"
    if unmatched is not None and parsed and n and not (labels >= 0).any():
        unmatched.append(
            f"no flow of {capture} matches a row of {labels_csv} ({n} flows, {len(parsed)} label rows): "
            "capture left out"
        )
    return LabelledFlows(table, _frame(labels, coins, groups, source))


def _sibling_labels(capture: Path) -> Path | None:
    stem = capture.name
    for suffix in CAPTURE_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for name in (f"{stem}.labels.csv", f"{stem}.csv", "labels.csv"):
        candidate = capture.parent / name
        if candidate.is_file():
            return candidate
    return None


def load_data(
    specs: Sequence[str | Path], *, reader: Reader | None = None
) -> tuple[list[LabelledFlows], dict[str, Any]]:
    """Load every ``--data`` item (manifest folder/file, labels CSV, or capture with labels).

    Returns:
        The labelled tables (groups of duplicated flows merged) and a recipe dict for
        the model sidecar: the data specs, per-source flow counts, ``skipped`` (manifest
        captures the reader could not decode, with the reason), ``damaged`` (the
        reader's line for each capture it could read only up to damage; default reader
        only), ``unmatched`` (captures whose labels CSV names none of their flows) and
        ``read_notes`` (what a wholly read capture still left out).

    Raises:
        InputError: an item is none of the accepted shapes, or no flow of any item has
            a label (every labels CSV matched none of its capture's flows).
    """
    out: list[LabelledFlows] = []
    skipped: list[str] = []
    damaged: list[str] = []
    read_notes: list[str] = []
    unmatched: list[str] = []
    reader = reader or reporting_reader(damaged, read_notes)
    for spec in specs:
        path = Path(spec)
        if path.is_dir() and (path / "MANIFEST.csv").is_file():
            out.extend(load_manifest(path, reader=reader, skipped=skipped))
        elif path.is_file() and path.name == "MANIFEST.csv":
            out.extend(load_manifest(path, reader=reader, skipped=skipped))
        elif path.is_file() and path.suffix.lower() == ".csv":
            rows = labdata.read_flow_labels(path)
            if rows and rows[0].capture:
                for cap in sorted({r.capture for r in rows}):
                    if not (path.parent / cap).is_file():
                        raise InputError(f"{path}: capture {cap!r} does not exist")
                    sub = [r for r in rows if r.capture == cap]
                    out.append(
                        load_labelled_capture(
                            path.parent / cap, path, reader=reader, rows=sub, unmatched=unmatched
                        )
                    )
            else:
                captures = [p for p in path.parent.iterdir() if _is_capture(p) and _sibling_labels(p) == path]
                if len(captures) != 1:
                    raise InputError(
                        f"{path}: labels CSV without a 'capture' column needs exactly one capture beside it"
                    )
                out.append(
                    load_labelled_capture(captures[0], path, reader=reader, rows=rows, unmatched=unmatched)
                )
        elif path.is_file() and _is_capture(path):
            labels = _sibling_labels(path)
            if labels is None:
                raise InputError(
                    f"{path}: no labels CSV beside this capture (expected {path.stem}.labels.csv)"
                )
            out.append(load_labelled_capture(path, labels, reader=reader, unmatched=unmatched))
        elif path.is_dir():
            captures = sorted(p for p in path.iterdir() if _is_capture(p) and _sibling_labels(p) is not None)
            if not captures:
                raise InputError(f"{path}: no MANIFEST.csv and no labelled captures in this folder")
            out.extend(
                load_labelled_capture(p, _sibling_labels(p) or p, reader=reader, unmatched=unmatched)
                for p in captures
            )
        else:
            raise InputError(f"{path}: not a manifest, a labels CSV or a labelled capture")
    if unmatched and not any(bool((ds.labels["label"] >= 0).any()) for ds in out):
        raise InputError(f"{unmatched[0]}; no labelled flow remains in {', '.join(str(s) for s in specs)}")
    out = merge_duplicate_groups(out)
    counts: dict[str, dict[str, int]] = {}
    for ds in out:
        for source, label, n in ds.labels.group_by(["source", "label"]).len().iter_rows():
            key = {1: "mining", 0: "benign"}.get(label, "unlabelled")
            counts.setdefault(source, {}).setdefault(key, 0)
            counts[source][key] += n
    return out, {
        "data": [str(s) for s in specs],
        "flows_per_source": counts,
        "skipped": skipped,
        "damaged": damaged,
        "unmatched": unmatched,
        "read_notes": read_notes,
    }


def merge_duplicate_groups(datasets: list[LabelledFlows]) -> list[LabelledFlows]:
    """Give one group to captures that share a flow (same 5-tuple and start second)."""
    owner: dict[tuple[Any, ...], str] = {}
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.get(g, g) != g:
            g = parent[g]
        return g

    for ds in datasets:
        s = ds.table.summary
        keys = zip(
            s["proto"].to_list(),
            s["src"].to_list(),
            s["sport"].to_list(),
            s["dst"].to_list(),
            s["dport"].to_list(),
            s["first_seen"].to_list(),
            s["packets"].to_list(),
            ds.labels["group"].to_list(),
            strict=True,
        )
        for proto, src, sp, dst, dp, first, packets, group in keys:
            if packets < 10:
                continue
            key = (proto, src, sp, dst, dp, int(first))
            other = owner.setdefault(key, group)
            a, b = find(other), find(group)
            if a != b:
                parent[max(a, b)] = min(a, b)
    if not parent:
        return datasets
    return [
        dataclasses.replace(
            ds, labels=ds.labels.with_columns(pl.col("group").map_elements(find, return_dtype=pl.Utf8))
        )
        for ds in datasets
    ]
