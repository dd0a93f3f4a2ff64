"""Stage 0: evidence that needs no model — blacklist hits and plaintext Stratum.

Stage 0 *adds evidence*, it does not decide: every flow still goes through stage 1,
and the verdict combines both (a blacklist can be stale, a pool can move). The result
is a JSON list per flow in the ``stage0`` column, one object per piece of evidence::

    {"kind": "blacklist", "indicator": "*.pool.example", "field": "sni",
     "value": "eu.pool.example", "source": "list.txt:3"}
    {"kind": "stratum", "dialect": "monero", "coin_family": "xmr", "method": "login"}

Stratum recognition lives in :mod:`minerscope.prefilter.stratum` (the dialect
helper's module). It is looked up when this module runs, so stage 0 works — with
blacklist evidence only — in a build where that module is absent.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from minerscope.flows.records import FlowTable
from minerscope.prefilter.blacklist import Blacklist

StratumDetector = Callable[[bytes, bytes], Any]


def stratum_detector() -> StratumDetector | None:
    """``minerscope.prefilter.stratum.detect_stratum`` when that module exists, else None."""
    try:
        module = importlib.import_module("minerscope.prefilter.stratum")
    except ModuleNotFoundError as exc:
        if exc.name != "minerscope.prefilter.stratum":
            raise
        return None
    detector = getattr(module, "detect_stratum", None)
    return detector if callable(detector) else None


def _stratum_object(evidence: Any) -> dict[str, Any]:
    """The stage-0 JSON object for whatever evidence record ``detect_stratum`` returned."""
    if dataclasses.is_dataclass(evidence) and not isinstance(evidence, type):
        fields = dataclasses.asdict(evidence)
    elif isinstance(evidence, dict):
        fields = dict(evidence)
    else:
        fields = {name: getattr(evidence, name, None) for name in ("dialect", "coin_family", "method")}
    out: dict[str, Any] = {"kind": "stratum"}
    for key, value in fields.items():
        if key == "kind":
            continue
        out[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    return out


def _may_be_stratum(c2s: bytes, s2c: bytes) -> bool:
    """Cheap filter before the dialect parsers: Stratum is JSON text, so a ``{`` appears early."""
    return b"{" in c2s[:64] or b"{" in s2c[:64]


def flow_evidence(
    row: dict[str, Any],
    blacklist: Blacklist | None,
    prefix: tuple[bytes, bytes] | None,
    detector: StratumDetector | None,
) -> list[dict[str, Any]]:
    """Stage-0 evidence for one flow summary row (see the module docstring for the shape)."""
    items: list[dict[str, Any]] = []
    if blacklist is not None and len(blacklist):
        names: dict[str, list[str]] = {
            "sni": [row["sni"]] if row.get("sni") else [],
            "dns": [n for n in (row.get("dns_names") or "").split(",") if n],
            "http_host": [row["http_host"].rsplit(":", 1)[0]] if row.get("http_host") else [],
        }
        for hit in blacklist.match_flow(row.get("dst") or "", row.get("dport"), names):
            items.append(
                {
                    "kind": "blacklist",
                    "indicator": str(hit.indicator),
                    "field": hit.field,
                    "value": hit.value,
                    "source": hit.indicator.source,
                }
            )
    if detector is not None and prefix is not None and not row.get("is_tls"):
        c2s, s2c = prefix
        if (c2s or s2c) and _may_be_stratum(c2s, s2c):
            evidence = detector(c2s, s2c)
            if evidence is not None:
                items.append(_stratum_object(evidence))
    return items


def apply_stage0(
    table: FlowTable,
    blacklist: Blacklist | None,
    payload_prefixes: Sequence[tuple[bytes, bytes]] | None = None,
) -> FlowTable:
    """Fill the ``stage0`` column of ``table`` with JSON evidence lists (``""`` when none).

    Args:
        table: flows from the assembler.
        blacklist: indicators to match (None: no blacklist evidence).
        payload_prefixes: per flow (client->server, server->client) first payload bytes;
            default ``table.payload_prefixes``. Without them only the blacklist applies.

    Returns:
        The same table object with its summary's ``stage0`` column replaced.
    """
    n = len(table)
    if n == 0:
        return table
    prefixes = payload_prefixes if payload_prefixes is not None else table.payload_prefixes
    if prefixes is not None and len(prefixes) != n:
        raise ValueError(f"payload_prefixes has {len(prefixes)} entries for {n} flows")
    detector = stratum_detector() if prefixes is not None else None
    columns = ["dst", "dport", "sni", "dns_names", "http_host", "is_tls"]
    values: list[str] = []
    for i, row in enumerate(table.summary.select(columns).iter_rows(named=True)):
        items = flow_evidence(row, blacklist, prefixes[i] if prefixes is not None else None, detector)
        values.append(json.dumps(items, separators=(",", ":")) if items else "")
    table.summary = table.summary.with_columns(pl.Series("stage0", values, dtype=pl.Utf8))
    return table
