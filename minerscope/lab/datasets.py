"""Loaders for labelled captures: real-capture manifests and the lab's own output.

Why one module: training and evaluation (:mod:`minerscope.model`) must mix real captures
(``../shared/datasets/real``, ``lab-real``) with lab output without knowing where each
came from. Everything is reduced to :class:`CaptureEntry` (one capture file: its file
label, coins, source, transport) with per-endpoint labels (:class:`EndpointLabel`), and
:meth:`CaptureEntry.label_for` answers "what is the flow to this server endpoint?".

Formats read:

* ``MANIFEST.csv`` of ``datasets/real`` (``path, source_repo, source_path, source_commit,
  label, coin, transport, packets, bytes, notes``) with its ``FLOW_LABELS.csv`` (``path``
  may be a glob such as ``cj-sniffer/*.pcap``; ``server_endpoint`` ``ip:port`` or ``*``);
* ``MANIFEST.csv`` of ``datasets/lab-real`` (``path, label, coin, transport,
  server_endpoint, ...``), whose ``server_endpoint`` is the labelled endpoint;
* the lab's ``<name>.pcapng`` + ``<name>.labels.csv`` pairs (:mod:`minerscope.lab.labels`);
* any per-flow labels CSV naming flows by 5-tuple (:func:`read_flow_labels`: the lab's
  columns, or ``src/sport/dst/dport`` + ``label`` [+ ``coin``, ``session``, ``start_ns``]).

This is the only parser of these formats: :mod:`minerscope.model.data` turns the entries
into labelled flow tables for training without reading the CSVs itself.

Labels are normalised to ``miner`` / ``benign`` (``mining`` -> ``miner``), coins to
lower-case tickers (``XMR (regtest)`` -> ``xmr``; ``none`` -> empty; several coins as
``zec;eth;xmr``).
"""

from __future__ import annotations

import csv
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from minerscope.errors import InputError
from minerscope.lab.labels import LABEL_BENIGN, LABEL_MINER, LabelRow, read_labels
from minerscope.untrusted import is_decimal

_LABELS = {
    "miner": LABEL_MINER,
    "mining": LABEL_MINER,
    "1": LABEL_MINER,
    "true": LABEL_MINER,
    "benign": LABEL_BENIGN,
    "0": LABEL_BENIGN,
    "false": LABEL_BENIGN,
}


@dataclass(frozen=True, slots=True)
class EndpointLabel:
    """A labelled server endpoint inside a capture (``port`` None = any port, ``ip`` "*" = any)."""

    ip: str
    port: int | None
    label: str
    coin: str = ""
    transport: str = ""
    confidence: str = ""
    notes: str = ""

    def matches(self, ip: str, port: int) -> bool:
        return (self.ip == "*" or self.ip == ip) and (self.port is None or self.port == port)


@dataclass(frozen=True, slots=True)
class CaptureEntry:
    """One labelled capture file."""

    path: Path
    label: str  # miner / benign / mixed (lab captures hold both)
    coin: str
    source: str
    transport: str
    packets: int | None = None
    bytes: int | None = None
    notes: str = ""
    endpoints: tuple[EndpointLabel, ...] = ()
    flows: tuple[LabelRow, ...] = field(default=(), repr=False)  # lab captures: per-flow labels

    def label_for(self, server_ip: str, server_port: int) -> str:
        """Label of the flow to ``server_ip:server_port`` in this capture.

        A matching endpoint label wins; in a capture that names endpoints, other flows are
        ``benign`` (the manifests name every pool endpoint of mixed files); otherwise the
        file label applies.
        """
        for row in self.flows:
            if row.server_ip == server_ip and row.server_port == server_port:
                return row.label
        for ep in self.endpoints:
            if ep.matches(server_ip, server_port):
                return ep.label
        if self.flows or any(ep.ip != "*" for ep in self.endpoints):
            return LABEL_BENIGN
        return self.label

    def flow_label(self, a_ip: str, a_port: int, b_ip: str, b_port: int) -> tuple[str, str]:
        """``(label, coin)`` of a flow between two endpoints, either of which may be the server.

        Captures can start mid-connection, so which end is the server is not known from
        the packets; an endpoint label matching either end applies. A capture naming
        specific endpoints is benign elsewhere; otherwise the file label and coin apply
        (no coin when the file lists several).
        """
        for ep in self.endpoints:
            if ep.ip != "*" and (ep.matches(a_ip, a_port) or ep.matches(b_ip, b_port)):
                return ep.label, ep.coin
        if any(ep.ip != "*" for ep in self.endpoints):
            return LABEL_BENIGN, ""
        for ep in self.endpoints:  # wildcards: every flow of the file
            if ep.matches(a_ip, a_port) or ep.matches(b_ip, b_port):
                return ep.label, ep.coin if ep.label == LABEL_MINER else ""
        return self.label, self.coin if self.label == LABEL_MINER and ";" not in self.coin else ""


def _norm_label(value: str, where: str) -> str:
    label = _LABELS.get(value.strip().lower())
    if label is None:
        raise InputError(f"{where}: unknown label {value!r} (expected miner/mining/benign)")
    return label


def _norm_coin(value: str) -> str:
    value = value.strip().lower()
    if value in ("", "none", "-"):
        return ""
    parts = [re.sub(r"\s*\(.*\)$", "", p.strip()) for p in value.split(";")]
    return ";".join(p for p in parts if p)


def _endpoint(value: str, where: str) -> tuple[str, int | None]:
    value = value.strip()
    if value in ("", "*"):
        return "*", None
    host, sep, port = value.rpartition(":")
    if not sep or not is_decimal(port):
        raise InputError(f"{where}: server_endpoint {value!r} is not ip:port or *")
    return host.strip("[]"), int(port)


def norm_coin(value: str | None) -> str:
    """``"XMR (regtest)"`` -> ``"xmr"``; empty, ``none`` or None -> ``""``."""
    return _norm_coin(value or "")


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc


def load_manifest(root: Path) -> list[CaptureEntry]:
    """Read ``root/MANIFEST.csv`` (+ ``root/FLOW_LABELS.csv`` when present).

    Rows whose file is missing are kept (``path`` still points where it should be) so a
    caller can report them; :func:`existing` filters them out.
    """
    manifest = root / "MANIFEST.csv"
    rows = _read_csv(manifest)
    if not rows:
        raise InputError(f"{manifest}: empty manifest")
    for col in ("path", "label"):
        if col not in rows[0]:
            raise InputError(f"{manifest}: missing column {col!r}")
    flow_rows = _read_csv(root / "FLOW_LABELS.csv") if (root / "FLOW_LABELS.csv").is_file() else []
    entries: list[CaptureEntry] = []
    for lineno, row in enumerate(rows, start=2):
        where = f"{manifest}: line {lineno}"
        rel = row["path"]
        label = _norm_label(row["label"], where)
        coin = _norm_coin(row.get("coin", ""))
        endpoints: list[EndpointLabel] = []
        if row.get("server_endpoint"):
            ip, port = _endpoint(row["server_endpoint"], where)
            endpoints.append(EndpointLabel(ip, port, label, coin, row.get("transport", ""), "high"))
        for fl_no, fl in enumerate(flow_rows, start=2):
            if fnmatch.fnmatch(rel, fl["path"]):
                fwhere = f"{root / 'FLOW_LABELS.csv'}: line {fl_no}"
                ip, port = _endpoint(fl.get("server_endpoint", "*"), fwhere)
                fcoin = coin if "manifest" in fl.get("coin", "").lower() else _norm_coin(fl.get("coin", ""))
                endpoints.append(
                    EndpointLabel(
                        ip,
                        port,
                        _norm_label(fl["label"], fwhere),
                        fcoin,
                        fl.get("transport", ""),
                        fl.get("confidence", ""),
                        fl.get("notes", ""),
                    )
                )
        entries.append(
            CaptureEntry(
                path=root / rel,
                label=label,
                coin=coin,
                source=row.get("source_repo") or root.name,
                transport=row.get("transport", ""),
                packets=_int_or_none(row.get("packets")),
                bytes=_int_or_none(row.get("bytes")),
                notes=row.get("notes", ""),
                endpoints=tuple(endpoints),
            )
        )
    return entries


def load_lab_dir(folder: Path) -> list[CaptureEntry]:
    """Every ``<name>.pcapng`` with a ``<name>.labels.csv`` next to it in ``folder``."""
    entries: list[CaptureEntry] = []
    for labels in sorted(folder.glob("*.labels.csv")):
        capture = labels.with_name(labels.name[: -len(".labels.csv")] + ".pcapng")
        if not capture.is_file():
            raise InputError(f"{labels}: no capture {capture.name} next to it")
        rows = read_labels(labels)
        coins = sorted({r.coin for r in rows if r.coin})
        kinds = {r.label for r in rows if r.scenario != "dns"}
        label = kinds.pop() if len(kinds) == 1 else "mixed"
        entries.append(
            CaptureEntry(
                path=capture,
                label=label,
                coin=";".join(coins),
                source="minerscope-lab",
                transport="mixed",
                packets=sum(r.packets for r in rows),
                bytes=sum(r.bytes for r in rows),
                notes=f"{len(rows)} labelled flows",
                flows=tuple(rows),
            )
        )
    if not entries:
        raise InputError(f"{folder}: no <name>.labels.csv files found")
    return entries


def load_any(folder: Path) -> list[CaptureEntry]:
    """A real/lab-real manifest folder, or a folder of lab output."""
    if (folder / "MANIFEST.csv").is_file():
        return load_manifest(folder)
    return load_lab_dir(folder)


def existing(entries: list[CaptureEntry]) -> list[CaptureEntry]:
    """Only the entries whose capture file is present."""
    return [e for e in entries if e.path.is_file()]


_ALIASES = {
    "client_ip": ("client_ip", "src", "src_ip", "saddr"),
    "client_port": ("client_port", "sport", "src_port"),
    "server_ip": ("server_ip", "dst", "dst_ip", "daddr"),
    "server_port": ("server_port", "dport", "dst_port"),
    "session": ("session_id", "session", "group"),
}


@dataclass(frozen=True, slots=True)
class FlowLabel:
    """One row of a per-flow labels CSV (orientation as written; it may be server-first)."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    proto: int | None  # 6 / 17; None when the CSV does not say
    label: str  # miner / benign
    coin: str  # normalised ticker, "" when none
    session: str  # the CSV's session id, or "line<N>" when it has none
    start_ns: int | None
    capture: str = ""  # the CSV's ``capture`` column, when it has one


def _proto(text: str) -> int | None:
    t = text.strip().lower()
    if not t:
        return None
    return {"tcp": 6, "udp": 17}.get(t) or (int(t) if is_decimal(t) else None)


def read_flow_labels(path: Path) -> list[FlowLabel]:
    """Parse a per-flow labels CSV: the lab's ``<name>.labels.csv`` or a hand-written one.

    Accepted column names: ``client_ip|src|src_ip|saddr``, ``client_port|sport|src_port``,
    ``server_ip|dst|dst_ip|daddr``, ``server_port|dport|dst_port``, ``label``, and optional
    ``proto``, ``coin``, ``session_id|session|group``, ``start_ns``, ``capture``.

    Raises:
        InputError: unreadable file, missing columns, bad port or label (naming file and line).
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            raw = [{k: (v or "") for k, v in row.items() if k is not None} for row in reader]
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if "label" not in header:
        raise InputError(f"{path}: missing column(s) label")
    cols = {k: next((a for a in names if a in header), "") for k, names in _ALIASES.items()}
    lacking = [k for k in ("client_ip", "client_port", "server_ip", "server_port") if not cols[k]]
    if raw and lacking:
        raise InputError(f"{path}: labels CSV lacks 5-tuple column(s) {', '.join(lacking)}")
    out: list[FlowLabel] = []
    for lineno, row in enumerate(raw, start=2):
        where = f"{path}: line {lineno}"
        try:
            cport, sport = int(row[cols["client_port"]]), int(row[cols["server_port"]])
            start = int(float(row["start_ns"])) if row.get("start_ns") else None
        except ValueError:
            raise InputError(f"{where}: port or start_ns is not a number") from None
        out.append(
            FlowLabel(
                client_ip=row[cols["client_ip"]].strip(),
                client_port=cport,
                server_ip=row[cols["server_ip"]].strip(),
                server_port=sport,
                proto=_proto(row.get("proto", "")),
                label=_norm_label(row["label"], where),
                coin=_norm_coin(row.get("coin", "")),
                session=(row.get(cols["session"], "") if cols["session"] else "") or f"line{lineno}",
                start_ns=start,
                capture=row.get("capture", ""),
            )
        )
    return out
