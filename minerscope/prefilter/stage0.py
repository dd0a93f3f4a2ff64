"""Stage 0: evidence that needs no model — blacklist hits and plaintext Stratum.

Stage 0 *adds evidence*, it does not decide: every flow still goes through stage 1,
and the verdict combines both (a blacklist can be stale, a pool can move). The result
is a JSON list per flow in the ``stage0`` column, one object per piece of evidence::

    {"kind": "blacklist", "indicator": "*.pool.example", "field": "sni",
     "value": "eu.pool.example", "source": "list.txt:3"}
    {"kind": "stratum", "dialect": "monero", "coin_family": "xmr", "method": "login"}

Stratum recognition lives in :mod:`minerscope.prefilter.stratum`, which reuses the
probe's dialect parsers, so stage 0 and stage 2 agree on what a dialect looks like.

Cost: a capture has tens of thousands of flows and almost none can yield evidence, so
:func:`apply_stage0` first picks candidates column-wise (names and addresses only when
the blacklist has indicators of that kind) and with
:func:`~minerscope.prefilter.stratum.may_be_stratum` (a C-level byte scan, no parsing),
and builds a row and runs the full recogniser only for those. Tests assert the column
equals :func:`flow_evidence` applied to every flow (``tests/prefilter/test_stage0_fast.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from minerscope.capture.proxyreq import tunnelled
from minerscope.flows.prefixes import PayloadPrefixes
from minerscope.flows.records import FlowTable
from minerscope.prefilter._kernels import line_brace
from minerscope.prefilter.blacklist import Blacklist, BlacklistHit, IndicatorError, parse_indicator
from minerscope.prefilter.stratum import CHECK_FIRST, detect_stratum, may_be_stratum
from minerscope.probe.target import format_target

StratumDetector = Callable[[bytes, bytes], Any]


def stratum_detector() -> StratumDetector:
    """The plaintext Stratum recogniser stage 0 applies to non-TLS flows.

    Only to flows :func:`~minerscope.prefilter.stratum.may_be_stratum` lets through: that
    prefilter mirrors ``detect_stratum``, so a different recogniser needs it widened.
    """
    return detect_stratum


def _stratum_object(evidence: Any) -> dict[str, Any]:
    """The stage-0 JSON object for the ``StratumEvidence`` that ``detect_stratum`` returned."""
    get = (
        evidence.get
        if isinstance(evidence, dict)
        else lambda name, default=None: getattr(evidence, name, default)
    )
    methods = get("methods") or ()
    if isinstance(methods, str):
        methods = (methods,)
    out: dict[str, Any] = {
        "kind": "stratum",
        "dialect": str(get("dialect", "") or ""),
        "coin_family": str(get("coin_family", None) or get("family", "") or ""),
        "method": str(get("method", None) or (methods[0] if methods else "")),
        "methods": [str(m) for m in methods],
    }
    for name in ("framing", "confidence"):
        value = get(name)
        if isinstance(value, str | int | float):
            out[name] = value
    return out


def _address_authority(value: str) -> tuple[str, int | None] | None:
    """``(address, port)`` when an HTTP host (``1.2.3.4:3333``, ``[v6]:443``) is an IP
    address rather than a name; else None."""
    try:
        ind = parse_indicator(value)
    except IndicatorError:
        return None
    return (ind.value, ind.port) if ind.kind in ("ip", "ip_port") else None


def flow_evidence(
    row: dict[str, Any],
    blacklist: Blacklist | None,
    prefix: tuple[bytes, bytes] | None,
    detector: StratumDetector | None,
) -> list[dict[str, Any]]:
    """Stage-0 evidence for one flow summary row (see the module docstring for the shape)."""
    items: list[dict[str, Any]] = []
    proxy_host = row.get("proxy_host") or ""
    if blacklist is not None and len(blacklist):
        names: dict[str, list[str]] = {
            "sni": [row["sni"]] if row.get("sni") else [],
            "dns": [n for n in (row.get("dns_names") or "").split(",") if n],
            "http_host": [row["http_host"].rsplit(":", 1)[0]] if row.get("http_host") else [],
            "proxy": [proxy_host] if proxy_host else [],  # the tunnel's target, through a proxy
        }
        hits = blacklist.match_flow(row.get("dst") or "", row.get("dport"), names)
        # (through a forward proxy the Host header names the target, which proxy_host holds)
        forward = None if proxy_host else _address_authority(row.get("http_host") or "")
        if forward is not None and (ind := blacklist.match_ip(*forward)) is not None:
            hits.append(BlacklistHit(ind, "http_host", row["http_host"]))
        proxy_port = int(row.get("proxy_port") or 0)
        if proxy_host and (ind := blacklist.match_ip(proxy_host, proxy_port)) is not None:
            hits.append(BlacklistHit(ind, "proxy", format_target(proxy_host, proxy_port)))
        for hit in hits:
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
        if proxy_host and (tunnel := tunnelled(c2s, s2c)) is not None:
            _, c2s, s2c = tunnel  # Stratum starts after the proxy's request and reply
        if c2s or s2c:
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
    summary = table.summary
    candidates = _candidates(summary, blacklist, prefixes)
    values = [""] * n
    if candidates.size:
        columns = ["dst", "dport", "sni", "dns_names", "http_host", "proxy_host", "proxy_port", "is_tls"]
        rows = summary.select(columns)[candidates].iter_rows(named=True)
        for i, row in zip(candidates.tolist(), rows, strict=True):
            items = flow_evidence(row, blacklist, prefixes[i] if prefixes is not None else None, detector)
            if items:
                values[i] = json.dumps(items, separators=(",", ":"))
    table.summary = summary.with_columns(pl.Series("stage0", values, dtype=pl.Utf8))
    return table


def _candidates(
    summary: pl.DataFrame, blacklist: Blacklist | None, prefixes: Sequence[tuple[bytes, bytes]] | None
) -> npt.NDArray[np.int64]:
    """Indices of the flows that can yield evidence; every other flow's ``stage0`` is "".

    Most flows have no name, an unlisted server and no plaintext payload that could be
    Stratum (or are TLS): deciding that per column and with
    :func:`~minerscope.prefilter.stratum.may_be_stratum` (empty payloads are never
    candidates: it needs a frame byte or a ``{``), instead of building and matching a dict
    and parsing lines per flow, keeps stage 0 negligible next to the model on captures
    with millions of flows.
    """
    n = summary.height
    mask = np.zeros(n, dtype=bool)
    if blacklist is not None and len(blacklist):
        if blacklist.has_addresses:
            listed = blacklist.listed_addresses(summary.get_column("dst").unique().to_list())
            if listed:
                mask |= summary.get_column("dst").is_in(list(listed)).fill_null(False).to_numpy()
        # an HTTP host or a proxy's target may name a listed address as well as a listed name
        fields = (
            ("sni", "dns_names", "http_host", "proxy_host")
            if blacklist.has_names
            else ("http_host", "proxy_host")
        )
        if blacklist.has_names or blacklist.has_addresses:
            named = pl.lit(False)
            for name in fields:
                if name in summary.columns:
                    named = named | (pl.col(name).fill_null("") != "")
            mask |= summary.select(named.alias("named")).get_column("named").to_numpy()
    if prefixes is not None:
        tls = summary.get_column("is_tls").fill_null(False).to_numpy().astype(bool)
        mask[_stratum_candidates(PayloadPrefixes.of(prefixes), np.flatnonzero(~tls))] = True
        if "proxy_host" in summary.columns:  # a proxy's request hides the tunnel's first line
            mask |= (summary.get_column("proxy_host").fill_null("") != "").to_numpy() & ~tls
    return np.flatnonzero(mask)


_CHECK_FIRST_CODES = np.frombuffer(CHECK_FIRST, np.uint8)


def _stratum_candidates(prefixes: PayloadPrefixes, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The ``rows`` for which :func:`~minerscope.prefilter.stratum.may_be_stratum` holds.

    It decides most flows by their first bytes: where one is in ``CHECK_FIRST`` the
    Python checks run on that flow's bytes; for every other flow the answer is whether a
    line of either direction starts with ``{``, one compiled pass over the buffer.
    """
    first = np.stack([prefixes.first_bytes(0)[rows], prefixes.first_bytes(1)[rows]])
    close = np.isin(first, _CHECK_FIRST_CODES).any(axis=0)
    near = [i for i in rows[close].tolist() if may_be_stratum(*prefixes[i])]
    far = rows[~close]
    far = far[line_brace(prefixes.data, prefixes.spans, far)]
    return np.concatenate([np.asarray(near, np.int64), far])
