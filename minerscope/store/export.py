"""Exports of confirmed pools and of the blacklist, in the formats other tools read.

Every string that reached the store from a capture or a pool (names, coin, evidence,
notes) is hostile: CSV cells go through :func:`minerscope.untrusted.csv_cell` (no
spreadsheet formula survives); JSON keeps the stored text exactly, ASCII-escaped by the
encoder (nothing a terminal would act on survives, and a JSON reader gets the data back).
Blacklist values were validated on the way in (plain IPs and LDH domain names only), which
is what makes it safe to write them into Zeek and Suricata files; sources and descriptions
are still cleaned and stripped of the formats' separators.

Formats:

* pools: CSV (``POOL_CSV_COLUMNS``) and JSON (a list of objects with the same keys).
* blacklist: ``plain`` (one indicator per line, what ``blacklist import`` reads back),
  ``hosts`` (``0.0.0.0 name``: exact domains only), ``csv``, ``zeek`` (Intel framework:
  ``#fields`` header, ``Intel::ADDR``/``Intel::DOMAIN``, ``meta.source``), ``suricata-iprep``
  (IP reputation list; the categories file comes from :func:`suricata_categories`) and
  ``suricata-rules`` (``dns.query``/``tls.sni`` rules for names, IP rules for addresses,
  stable ``sid`` = base + 2 x indicator id).

Formats that cannot express an indicator (a domain suffix in Zeek Intel, a name in an IP
reputation file) skip it and count it in :attr:`ExportCount.skipped`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from minerscope.errors import StoreError
from minerscope.store.api import Store
from minerscope.timetext import utc_text
from minerscope.untrusted import clean, csv_cell

POOL_CSV_COLUMNS = (
    "host",
    "port",
    "names",
    "coin",
    "dialect",
    "transport",
    "tls",
    "first_seen",
    "last_seen",
    "confirmation",
    "evidence",
    "note",
)
BLACKLIST_CSV_COLUMNS = ("kind", "value", "port", "source", "added", "expires", "enabled")
BLACKLIST_FORMATS = ("plain", "hosts", "csv", "zeek", "suricata-iprep", "suricata-rules")
POOL_FORMATS = ("csv", "json")
_META_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
SURICATA_CATEGORY_ID = 1
SURICATA_CATEGORY = "CoinMiner"
SURICATA_SCORE = 100
DEFAULT_SID_BASE = 9_100_000
"""Suricata sids are base + 2 x indicator id (+1 for the TLS rule of a name): stable across exports."""


@dataclass(frozen=True, slots=True)
class ExportCount:
    """How many records an export wrote, and how many the format could not express."""

    written: int
    skipped: int = 0
    widened: int = 0
    """Indicators written broader than they are (an IP:port as its whole address)."""


def _pool_record(pool: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "host": pool["host"],
        "port": pool["port"],
        "names": list(pool["names"]),
        "coin": pool["coin"] or "",
        "dialect": pool["dialect"] or "",
        "transport": pool["transport"] or "",
        "tls": bool(pool["tls"]),
        "first_seen": utc_text(pool["first_seen"]),
        "last_seen": utc_text(pool["last_seen"]),
        "confirmation": pool["confirmed_by"],
        "evidence": pool["evidence"] or "",
        "note": pool["note"] or "",
    }


def write_pools_csv(store: Store, out: TextIO, *, case_id: int | None = None) -> ExportCount:
    """Confirmed pools as CSV (header ``POOL_CSV_COLUMNS``); every cell formula-neutralised."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(POOL_CSV_COLUMNS)
    pools = store.list_pools(case_id=case_id)
    for pool in pools:
        rec = _pool_record(pool)
        rec["names"] = " ".join(rec["names"])
        rec["tls"] = "yes" if rec["tls"] else "no"
        writer.writerow([csv_cell(rec[c]) for c in POOL_CSV_COLUMNS])
    return ExportCount(len(pools))


def write_pools_json(store: Store, out: TextIO, *, case_id: int | None = None) -> ExportCount:
    """Confirmed pools as a JSON list of objects (keys ``POOL_CSV_COLUMNS``), text exactly as stored.

    JSON carries any string exactly, so names, notes and evidence are not rewritten (the
    CSV's escapes and formula guard would corrupt a reader's data); the encoder escapes what
    JSON must, and writes every non-ASCII character as ``\\uXXXX``, so the output stays inert
    on a terminal (no control, C1 or bidi character reaches it) and decodes to the stored text.
    """
    records = [_pool_record(pool) for pool in store.list_pools(case_id=case_id)]
    json.dump(records, out, indent=2, ensure_ascii=True)
    out.write("\n")
    return ExportCount(len(records))


def _field(text: object) -> str:
    """A value safe inside a tab-separated Zeek field or a quoted Suricata msg."""
    value = clean(text, 200).replace("\\x09", " ").replace('"', "'").replace(";", ",")
    return value or "-"


def _header(fmt: str) -> str:
    return f"minerscope blacklist ({fmt}), generated {utc_text(dt.datetime.now(dt.UTC).timestamp())}"


def write_blacklist(
    store: Store,
    out: TextIO,
    fmt: str,
    *,
    sid_base: int = DEFAULT_SID_BASE,
    include_disabled: bool = False,
) -> ExportCount:
    """Write the active blacklist (enabled and unexpired) in ``fmt`` (one of ``BLACKLIST_FORMATS``)."""
    rows = store.list_indicators(active_only=not include_disabled)
    if fmt == "plain":
        out.write(f"# {_header(fmt)}\n")
        for r in rows:
            out.write(r["text"] + "\n")
        return ExportCount(len(rows))
    if fmt == "hosts":
        out.write(f"# {_header(fmt)}\n")
        names = [r for r in rows if r["kind"] == "domain"]
        for r in names:
            out.write(f"0.0.0.0 {r['value']}\n")
        return ExportCount(len(names), len(rows) - len(names))
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(BLACKLIST_CSV_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    csv_cell(r["kind"]),
                    csv_cell(r["value"]),
                    r["port"] or "",
                    csv_cell(r["source"]),
                    utc_text(r["added_at"]),
                    utc_text(r["expires_at"]),
                    "yes" if r["enabled"] else "no",
                ]
            )
        return ExportCount(len(rows))
    if fmt == "zeek":
        return _zeek(rows, out)
    if fmt == "suricata-iprep":
        ips = [r for r in rows if r["kind"] in ("ip", "ip_port")]
        seen: set[str] = set()
        for r in ips:
            if r["value"] not in seen:
                seen.add(r["value"])
                out.write(f"{r['value']},{SURICATA_CATEGORY_ID},{SURICATA_SCORE}\n")
        # IP reputation has no port: an IP:port indicator stands for its whole address
        widened = sum(1 for r in ips if r["kind"] == "ip_port")
        return ExportCount(len(seen), len(rows) - len(ips), widened)
    if fmt == "suricata-rules":
        return _suricata_rules(rows, out, sid_base)
    raise ValueError(f"unknown blacklist format {fmt!r}")


def suricata_categories() -> str:
    """The Suricata ``reputation-categories-file`` matching ``suricata-iprep`` exports."""
    return f"{SURICATA_CATEGORY_ID},{SURICATA_CATEGORY},Cryptocurrency mining pools (minerscope)\n"


def _zeek(rows: Iterable[Mapping[str, Any]], out: TextIO) -> ExportCount:
    out.write("#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n")
    written = skipped = 0
    for r in rows:
        kind = r["kind"]
        if kind == "domain_suffix":  # Intel::DOMAIN matches whole names only
            skipped += 1
            continue
        itype = "Intel::ADDR" if kind in ("ip", "ip_port") else "Intel::DOMAIN"
        desc = f"mining pool {r['text']}" + (" (port not matched by Intel)" if kind == "ip_port" else "")
        out.write(f"{r['value']}\t{itype}\t{_field(r['source'])}\t{_field(desc)}\n")
        written += 1
    return ExportCount(written, skipped)


def _suricata_rules(rows: Iterable[Mapping[str, Any]], out: TextIO, sid_base: int) -> ExportCount:
    out.write(f"# {_header('suricata-rules')}\n")
    written = 0
    for r in rows:
        sid = sid_base + 2 * int(r["id"])
        kind, value, port = r["kind"], r["value"], int(r["port"] or 0)
        meta = f"metadata:minerscope_source {_META_UNSAFE.sub('_', str(r['source']))[:80] or '-'}; rev:1;"
        if kind in ("ip", "ip_port"):
            proto, dport = ("tcp", str(port)) if kind == "ip_port" else ("ip", "any")
            out.write(
                f'alert {proto} $HOME_NET any -> {value} {dport} (msg:"minerscope coin-miner pool {r["text"]}";'
                f" sid:{sid}; {meta})\n"
            )
            written += 1
            continue
        if kind == "domain":
            match = f'content:"{value}"; nocase; bsize:{len(value)};'
        else:
            match = f'dotprefix; content:".{value}"; nocase; endswith;'
        out.write(
            f'alert dns $HOME_NET any -> any any (msg:"minerscope coin-miner pool DNS query {r["text"]}";'
            f" dns.query; {match} sid:{sid}; {meta})\n"
        )
        out.write(
            f'alert tls $HOME_NET any -> any any (msg:"minerscope coin-miner pool TLS SNI {r["text"]}";'
            f" tls.sni; {match} sid:{sid + 1}; {meta})\n"
        )
        written += 1
    return ExportCount(written)


def export_file(
    store: Store, what: str, fmt: str, path: Path | str, *, sid_base: int = DEFAULT_SID_BASE
) -> ExportCount:
    """Write ``pools`` (csv, json) or ``blacklist`` (``BLACKLIST_FORMATS``) to ``path``.

    The file is written next to its destination and renamed into place only when complete,
    so a failed export never leaves half a file behind.

    Raises:
        StoreError: unknown kind or format, or the file cannot be written.
    """
    target = Path(path)
    if what == "pools" and fmt in POOL_FORMATS:

        def write(out: TextIO) -> ExportCount:
            return (write_pools_csv if fmt == "csv" else write_pools_json)(store, out)
    elif what == "blacklist" and fmt in BLACKLIST_FORMATS:

        def write(out: TextIO) -> ExportCount:
            return write_blacklist(store, out, fmt, sid_base=sid_base)
    else:
        raise StoreError(f"cannot export {what!r} as {fmt!r}")
    tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as out:
            count = write(out)
        os.replace(tmp, target)
    except OSError as exc:
        raise StoreError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return count
