"""The lab's labels CSV: one row per flow, naming its 5-tuple and what it is.

Why per flow and keyed by the 5-tuple (plus start time): downstream code (training,
evaluation) assembles flows from the pcap itself and must join them to labels without
trusting packet order; the client/server orientation is explicit so direction-aware
features can be checked. ``label`` uses the vocabulary of the real-capture manifests
(``miner`` / ``benign``) so lab and real data mix without translation.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from minerscope.errors import InputError

LABEL_MINER = "miner"
LABEL_BENIGN = "benign"


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One flow of a lab capture."""

    flow_id: int
    proto: str  # tcp / udp
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    ip_version: int
    vlan: int
    label: str  # miner / benign
    coin: str  # btc, ltc, xmr, etc, ethw, rvn, zec; empty for benign
    dialect: str  # stratum1, stratum1-zcash, stratum1-kawpow, ethstratum1, ethproxy, monero, browser-ws, http-jsonrpc, or the benign app protocol
    transport: str  # tcp, tls1.2, tls1.3, ws, wss1.2, wss1.3, http, udp
    scenario: str  # pool, pool-tls, solo, browser, proxy-upstream, proxy-downstream, login-refused, dns, or the benign kind
    session_id: str
    miner_class: str
    server_name: str  # SNI / DNS name used, if any
    start_ns: int
    end_ns: int
    packets: int
    bytes: int


COLUMNS = tuple(f.name for f in fields(LabelRow))
_INT = {f.name for f in fields(LabelRow) if f.type in ("int", int)}


def write_labels(path: Path, rows: list[LabelRow]) -> None:
    """Write ``rows`` (already in flow order) as CSV with a header."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))


def read_labels(path: Path) -> list[LabelRow]:
    """Read a lab labels CSV; a bad row raises :class:`InputError` naming line and field."""
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read labels: {exc.strerror}") from exc
    rows: list[LabelRow] = []
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: not a lab labels CSV: missing column(s) {', '.join(missing)}")
        for lineno, raw in enumerate(reader, start=2):
            values: dict[str, object] = {}
            for name in COLUMNS:
                cell = raw[name]
                if name in _INT:
                    try:
                        values[name] = int(cell)
                    except (TypeError, ValueError):
                        raise InputError(
                            f"{path}: line {lineno}: field {name!r} is not an integer: {cell!r}"
                        ) from None
                else:
                    values[name] = cell or ""
            rows.append(LabelRow(**values))  # type: ignore[arg-type]
    return rows
