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

Captures are read through a *reader* (path -> FlowTable); the default is the package's
pcap reader + flow assembler, and tests or tools may pass another.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from minerscope.errors import CaptureError, InputError
from minerscope.flows.records import FlowTable
from minerscope.model.train import LabelledFlows

Reader = Callable[[Path], FlowTable]

MINING_WORDS = frozenset({"miner", "mining", "1", "true"})
BENIGN_WORDS = frozenset({"benign", "0", "false"})
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")


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


def normalise_coin(value: str | None) -> str | None:
    """``"XMR (regtest)"`` -> ``"xmr"``; empty/None -> None."""
    if value is None:
        return None
    text = re.sub(r"\(.*?\)", "", str(value)).strip().lower()
    return text or None


def _label_value(text: str, where: str) -> int:
    word = (text or "").strip().lower()
    if word in MINING_WORDS:
        return 1
    if word in BENIGN_WORDS:
        return 0
    raise InputError(f"{where}: label {text!r} is neither miner/mining nor benign")


def _is_capture(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(CAPTURE_SUFFIXES)


def _endpoint(text: str) -> tuple[str, int] | None:
    text = (text or "").strip()
    if not text or text == "*" or ":" not in text:
        return None
    host, _, port = text.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def load_manifest(
    manifest: str | Path, *, reader: Reader | None = None, skipped: list[str] | None = None
) -> list[LabelledFlows]:
    """Load every capture a MANIFEST.csv lists (non-capture rows are skipped).

    A listed capture the reader cannot decode at all (an unsupported link type, say) is
    left out and named in ``skipped`` (``"path: reason"``) when that list is given;
    without it the :class:`~minerscope.errors.CaptureError` propagates.

    Raises:
        InputError: missing/malformed manifest or label; CaptureError from the reader.
    """
    path = Path(manifest)
    if path.is_dir():
        path = path / "MANIFEST.csv"
    root = path.parent
    rows = _read_csv(path, required=("path", "label"))
    reader = reader or default_reader
    flow_rules = _flow_labels(root / "FLOW_LABELS.csv")
    dataset = root.name
    out: list[LabelledFlows] = []
    for lineno, row in rows:
        rel = row["path"]
        capture = root / rel
        if not _is_capture(capture):
            continue
        if not capture.is_file():
            raise InputError(f"{path}: line {lineno}: capture {rel!r} does not exist")
        label = _label_value(row["label"], f"{path}: line {lineno}")
        coin = normalise_coin(row.get("coin"))
        if coin and ";" in coin:
            coin = None  # mixed file: the per-flow rules name the coins
        try:
            table = reader(capture)
        except CaptureError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
            continue
        n = len(table)
        labels = np.full(n, label, np.int8)
        coins: list[str | None] = [coin if label == 1 else None] * n
        endpoints = flow_rules.get(rel, [])
        own = _endpoint(row.get("server_endpoint", ""))
        if own is not None:
            endpoints = [*endpoints, (own, label, coin)]
        if endpoints:
            # the file mixes traffic: only the named endpoints carry the file's label
            labels[:] = 0
            coins = [None] * n
            for i, ends in enumerate(_flow_ends(table)):
                for ep, ep_label, ep_coin in endpoints:
                    if ep in ends:
                        labels[i] = ep_label
                        coins[i] = ep_coin if ep_label == 1 else None
        source = dataset if dataset != "real" else Path(rel).parts[0]
        out.append(
            LabelledFlows(
                table,
                pl.DataFrame(
                    {
                        "label": labels,
                        "coin": pl.Series(coins, dtype=pl.Utf8),
                        "group": [f"{dataset}/{rel}"] * n,
                        "source": [source] * n,
                    },
                    schema={"label": pl.Int8, "coin": pl.Utf8, "group": pl.Utf8, "source": pl.Utf8},
                ),
            )
        )
    return out


def _flow_labels(path: Path) -> dict[str, list[tuple[tuple[str, int], int, str | None]]]:
    """FLOW_LABELS.csv: capture path -> [(server endpoint, label, coin)] (wildcards dropped)."""
    if not path.is_file():
        return {}
    rules: dict[str, list[tuple[tuple[str, int], int, str | None]]] = {}
    for lineno, row in _read_csv(path, required=("path", "server_endpoint", "label")):
        ep = _endpoint(row["server_endpoint"])
        if ep is None or "*" in row["path"]:
            continue
        label = _label_value(row["label"], f"{path}: line {lineno}")
        rules.setdefault(row["path"], []).append((ep, label, normalise_coin(row.get("coin"))))
    return rules


def _flow_ends(table: FlowTable) -> list[set[tuple[str, int]]]:
    s = table.summary
    return [
        {(src, int(sp)), (dst, int(dp))}
        for src, sp, dst, dp in zip(
            s["src"].to_list(), s["sport"].to_list(), s["dst"].to_list(), s["dport"].to_list(), strict=True
        )
    ]


_ALIASES = {
    "client_ip": ("client_ip", "src", "src_ip", "saddr"),
    "client_port": ("client_port", "sport", "src_port"),
    "server_ip": ("server_ip", "dst", "dst_ip", "daddr"),
    "server_port": ("server_port", "dport", "dst_port"),
    "session": ("session_id", "session", "group"),
}


def load_labelled_capture(
    capture: str | Path, labels_csv: str | Path, *, reader: Reader | None = None, source: str = "lab"
) -> LabelledFlows:
    """One capture and its per-flow labels CSV (5-tuples; either orientation matches).

    Flows the CSV does not name get label -1 (not used for training). When several rows
    share a 5-tuple, the one whose ``start_ns`` is closest to the flow's first packet wins.

    Raises:
        InputError: missing columns or bad label values (naming file and line).
    """
    capture, labels_csv = Path(capture), Path(labels_csv)
    rows = _read_csv(labels_csv, required=("label",))
    header = set(rows[0][1]) if rows else set()
    cols = {k: next((a for a in names if a in header), None) for k, names in _ALIASES.items()}
    lacking = [k for k in ("client_ip", "client_port", "server_ip", "server_port") if cols[k] is None]
    if rows and lacking:
        raise InputError(f"{labels_csv}: labels CSV lacks 5-tuple column(s) {', '.join(lacking)}")
    by_tuple: dict[tuple[Any, ...], list[tuple[float | None, int, str | None, str]]] = {}
    for lineno, row in rows:
        where = f"{labels_csv}: line {lineno}"
        try:
            cport = int(row[cols["client_port"] or ""])
            sport = int(row[cols["server_port"] or ""])
        except ValueError:
            raise InputError(f"{where}: port is not an integer") from None
        proto = _proto(row.get("proto", ""))
        start = float(row["start_ns"]) / 1e9 if row.get("start_ns") else None
        key = _tuple_key(row[cols["client_ip"] or ""], cport, row[cols["server_ip"] or ""], sport, proto)
        session = row.get(cols["session"] or "", "") or f"line{lineno}"
        by_tuple.setdefault(key, []).append(
            (start, _label_value(row["label"], where), normalise_coin(row.get("coin")), session)
        )
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
        best = min(cands, key=lambda c: abs(c[0] - first) if c[0] is not None else 0.0)
        labels[i] = best[1]
        coins[i] = best[2] if best[1] == 1 else None
        groups[i] = f"{source}:{capture.name}:{best[3]}"
    return LabelledFlows(
        table,
        pl.DataFrame(
            {
                "label": labels,
                "coin": pl.Series(coins, dtype=pl.Utf8),
                "group": groups,
                "source": [source] * n,
            },
            schema={"label": pl.Int8, "coin": pl.Utf8, "group": pl.Utf8, "source": pl.Utf8},
        ),
    )


def _proto(text: str | int | None) -> int | None:
    t = str(text or "").strip().lower()
    if not t:
        return None
    return {"tcp": 6, "udp": 17}.get(t) or (int(t) if t.isdigit() else None)


def _tuple_key(a: str, ap: int, b: str, bp: int, proto: int | None) -> tuple[Any, ...]:
    ends = sorted([(str(a), int(ap)), (str(b), int(bp))])
    return (*ends[0], *ends[1], proto)


def _read_csv(path: Path, *, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        return [
            (i, {k: (v or "") for k, v in row.items() if k is not None}) for i, row in enumerate(reader, 2)
        ]


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
        the model sidecar (the data specs, per-source flow counts, and ``skipped``:
        manifest captures the reader could not decode, with the reason).

    Raises:
        InputError: an item is none of the accepted shapes.
    """
    out: list[LabelledFlows] = []
    skipped: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir() and (path / "MANIFEST.csv").is_file():
            out.extend(load_manifest(path, reader=reader, skipped=skipped))
        elif path.is_file() and path.name == "MANIFEST.csv":
            out.extend(load_manifest(path, reader=reader, skipped=skipped))
        elif path.is_file() and path.suffix.lower() == ".csv":
            rows = _read_csv(path, required=("label",))
            if rows and "capture" in rows[0][1]:
                for cap in sorted({r["capture"] for _, r in rows}):
                    sub = [r for _, r in rows if r["capture"] == cap]
                    out.append(_from_rows(path, path.parent / cap, sub, reader))
            else:
                captures = [p for p in path.parent.iterdir() if _is_capture(p) and _sibling_labels(p) == path]
                if len(captures) != 1:
                    raise InputError(
                        f"{path}: labels CSV without a 'capture' column needs exactly one capture beside it"
                    )
                out.append(load_labelled_capture(captures[0], path, reader=reader))
        elif path.is_file() and _is_capture(path):
            labels = _sibling_labels(path)
            if labels is None:
                raise InputError(
                    f"{path}: no labels CSV beside this capture (expected {path.stem}.labels.csv)"
                )
            out.append(load_labelled_capture(path, labels, reader=reader))
        elif path.is_dir():
            captures = sorted(p for p in path.iterdir() if _is_capture(p) and _sibling_labels(p) is not None)
            if not captures:
                raise InputError(f"{path}: no MANIFEST.csv and no labelled captures in this folder")
            out.extend(load_labelled_capture(p, _sibling_labels(p) or p, reader=reader) for p in captures)
        else:
            raise InputError(f"{path}: not a manifest, a labels CSV or a labelled capture")
    out = merge_duplicate_groups(out)
    counts: dict[str, dict[str, int]] = {}
    for ds in out:
        for source, label, n in ds.labels.group_by(["source", "label"]).len().iter_rows():
            key = {1: "mining", 0: "benign"}.get(label, "unlabelled")
            counts.setdefault(source, {}).setdefault(key, 0)
            counts[source][key] += n
    return out, {"data": [str(s) for s in specs], "flows_per_source": counts, "skipped": skipped}


def _from_rows(
    csv_path: Path, capture: Path, rows: list[dict[str, str]], reader: Reader | None
) -> LabelledFlows:
    import tempfile

    # reuse the single-capture path by writing this capture's rows to a temporary CSV
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "labels.csv"
        with sub.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        if not capture.is_file():
            raise InputError(f"{csv_path}: capture {capture.name!r} does not exist")
        return load_labelled_capture(capture, sub, reader=reader)


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
        LabelledFlows(
            ds.table, ds.labels.with_columns(pl.col("group").map_elements(find, return_dtype=pl.Utf8))
        )
        for ds in datasets
    ]
