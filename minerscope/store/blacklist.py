"""The blacklist as stored: indicators of known pools, with source, expiry and an on/off switch.

Parsing indicator *text* (plain lists, hosts files, CSV) belongs to
:mod:`minerscope.prefilter.blacklist`, and so does matching flows against indicators; this
module only keeps them. It accepts anything shaped like that module's ``Indicator``
(``kind``, ``value``, ``port``, ``source``) and hands the stage-0 pre-filter a ready
``Blacklist`` built from the enabled, unexpired rows (:meth:`BlacklistOps.load_blacklist`).

Values are checked once more on the way in (an IP must parse, a domain must be plain
LDH labels), because exports turn them into Zeek and Suricata files where a stray quote or
semicolon would be an injection. Adding an indicator that exists re-enables it instead of
duplicating it (``UNIQUE (kind, value, port)``, port 0 meaning any port).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from minerscope.errors import InputError, StoreError
from minerscope.prefilter.blacklist import Blacklist, Indicator, parse_indicator, read_indicator_file
from minerscope.store.db import StoreBase

KINDS = ("ip", "ip_port", "domain", "domain_suffix")


class IndicatorLike(Protocol):
    """What :mod:`minerscope.prefilter.blacklist` calls an ``Indicator``."""

    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def port(self) -> int | None: ...
    @property
    def source(self) -> str: ...


def normalise_indicator(kind: str, value: str, port: int | None) -> tuple[str, str, int]:
    """Validate one indicator and return its stored form ``(kind, value, port)``.

    The value is re-parsed by the pre-filter's :func:`parse_indicator`, so the store holds
    exactly what stage 0 would accept: canonical IPs, lower-case LDH names without a
    trailing dot; port 0 means "any port" (``ip_port`` needs a real one).

    Raises:
        StoreError: unknown kind, or a value that does not parse as that kind.
    """
    if kind not in KINDS:
        raise StoreError(f"indicator kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "ip_port" and not (port is not None and 0 < int(port) < 65536):
        raise StoreError(f"an ip_port indicator needs a port in 1..65535, not {port!r}")
    raw = str(value).strip()
    if kind == "ip_port":
        raw = raw.strip("[]")
    try:
        parsed = parse_indicator(indicator_text(kind, raw, int(port or 0)))
    except InputError as exc:
        raise StoreError(str(exc)) from None
    if parsed.kind != kind:
        raise StoreError(f"not a valid {kind} indicator: {raw[:80]!r}")
    return parsed.kind, parsed.value, int(parsed.port or 0)


def indicator_text(kind: str, value: str, port: int) -> str:
    """The plain-list form of a stored indicator: ``1.2.3.4``, ``1.2.3.4:3333``, ``[::1]:3333``,
    ``pool.example``, ``*.example``."""
    if kind == "ip_port":
        host = f"[{value}]" if ":" in value else value
        return f"{host}:{port}"
    if kind == "domain_suffix":
        return f"*.{value}"
    return value


POOL_DISMISSED_SQL = (
    "EXISTS (SELECT 1 FROM allowlist a WHERE a.enabled = 1 AND a.host = p.host AND a.port IN (0, p.port))"
)
"""SQL predicate over ``pools p``: a dismissal covers the pool's endpoint, so it is not confirmed."""


def switch_off_for_dismissal(conn: sqlite3.Connection, entry_id: int, host: str, port: int) -> int:
    """Switch off the enabled indicators of the pools a dismissal covers, marked with it.

    Call inside a transaction. Returns how many were switched off (indicators already off
    are left alone: they are not the dismissal's to switch back on).
    """
    return conn.execute(
        "UPDATE indicators SET enabled = 0, dismissed_by = ? WHERE enabled = 1 AND pool_id IN"
        " (SELECT id FROM pools WHERE host = ? AND (? = 0 OR port = ?))",
        (entry_id, host, port, port),
    ).rowcount


def release_dismissal(conn: sqlite3.Connection, entry_id: int) -> int:
    """Switch back on what the (now lifted) dismissal ``entry_id`` switched off.

    An indicator whose pool another active dismissal still covers stays off and passes to
    that dismissal. Call inside a transaction, after the entry was disabled. Returns how
    many indicators were switched on.
    """
    held = [r[0] for r in conn.execute("SELECT id FROM indicators WHERE dismissed_by = ?", (entry_id,))]
    if not held:
        return 0
    ids = json.dumps(held)
    conn.execute(
        "UPDATE indicators SET dismissed_by = (SELECT a.id FROM allowlist a JOIN pools p"
        " ON p.id = indicators.pool_id WHERE a.enabled = 1 AND a.host = p.host AND a.port IN (0, p.port)"
        " ORDER BY a.id LIMIT 1) WHERE id IN (SELECT value FROM json_each(?))",
        (ids,),
    )
    return conn.execute(
        "UPDATE indicators SET enabled = 1 WHERE dismissed_by IS NULL AND id IN (SELECT value FROM json_each(?))",
        (ids,),
    ).rowcount


class BlacklistOps(StoreBase):
    """Store-side blacklist operations."""

    def _upsert_indicator(
        self,
        kind: str,
        value: str,
        port: int | None,
        *,
        source: str,
        expires_at: float | None = None,
        pool_id: int | None = None,
        enabled: bool = True,
    ) -> tuple[int, bool]:
        """Insert or re-enable one indicator inside the caller's transaction: (id, created).

        ``enabled`` False (a switched-off line of an imported export) inserts it switched
        off and leaves an existing one as it is.
        """
        kind, value, port_num = normalise_indicator(kind, value, port)
        row = self.conn.execute(
            "SELECT id FROM indicators WHERE kind = ? AND value = ? AND port = ?", (kind, value, port_num)
        ).fetchone()
        if row is not None and not enabled:
            return int(row[0]), False
        if row is not None:
            self.conn.execute(
                "UPDATE indicators SET enabled = 1, dismissed_by = NULL, expires_at = ?,"
                " pool_id = coalesce(?, pool_id) WHERE id = ?",
                (expires_at, pool_id, row[0]),
            )
            return int(row[0]), False
        cur = self.conn.execute(
            "INSERT INTO indicators (kind, value, port, source, added_at, expires_at, enabled, pool_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, value, port_num, source, time.time(), expires_at, 1 if enabled else 0, pool_id),
        )
        return int(cur.lastrowid or 0), True

    def add_indicator(
        self,
        kind: str,
        value: str,
        port: int | None = None,
        *,
        source: str = "analyst",
        expires_at: float | None = None,
    ) -> int:
        """Add (or re-enable) one indicator; an audited analyst action. Returns its id."""
        with self.transaction():
            ind_id, created = self._upsert_indicator(kind, value, port, source=source, expires_at=expires_at)
            self._audit(
                "blacklist_add",
                "indicator",
                str(ind_id),
                {"kind": kind, "value": value, "port": port, "created": created, "source": source},
            )
        return ind_id

    def add_indicators(
        self,
        indicators: Iterable[IndicatorLike],
        *,
        source: str | None = None,
        expires_at: float | None = None,
        label: str | None = None,
    ) -> tuple[int, int]:
        """Add many indicators in one transaction; returns (added, already present).

        ``source`` overrides each indicator's own source (e.g. the imported file's name), and
        ``expires_at`` its own expiry; an indicator carrying ``enabled`` False is added
        switched off (see :meth:`_upsert_indicator`). ``label`` names the batch in the audit
        trail (default: ``source``).
        """
        added = existing = 0
        with self.transaction():
            for ind in indicators:
                _, created = self._upsert_indicator(
                    ind.kind,
                    ind.value,
                    ind.port,
                    source=source or ind.source,
                    expires_at=expires_at if expires_at is not None else getattr(ind, "expires_at", None),
                    enabled=bool(getattr(ind, "enabled", True)),
                )
                if created:
                    added += 1
                else:
                    existing += 1
            self._audit(
                "blacklist_import",
                "indicator",
                label or source or "",
                {"added": added, "existing": existing},
            )
        return added, existing

    def import_indicators(
        self, path: Path, *, source: str | None = None, expires_at: float | None = None
    ) -> tuple[int, int]:
        """Read an indicator file and add its indicators (see :meth:`add_indicators`).

        Plain lists, hosts files, CSV and Zeek Intel files. minerscope's own CSV and Zeek
        exports come back exactly: kind, value, port, and (CSV) switch and expiry; their
        per-line source is kept unless ``source`` is given, and a line without one gets
        ``file:<name>`` as every line of the other formats does.

        Raises:
            InputError: the file cannot be read or a line is not an indicator (the
                pre-filter's parser names the line).
        """
        parsed = read_indicator_file(Path(path))
        default = source or f"file:{Path(path).name}"
        if source is not None or not parsed.carries_sources:
            return self.add_indicators(parsed.indicators, source=default, expires_at=expires_at)
        own = [dataclasses.replace(ind, source=ind.source or default) for ind in parsed.indicators]
        return self.add_indicators(own, expires_at=expires_at, label=default)

    def set_indicator_enabled(self, indicator_id: int, enabled: bool) -> None:
        """Switch an indicator on or off (audited)."""
        with self.transaction():
            cur = self.conn.execute(  # the analyst's own choice: no dismissal owns it any more
                "UPDATE indicators SET enabled = ?, dismissed_by = NULL WHERE id = ?",
                (1 if enabled else 0, indicator_id),
            )
            if cur.rowcount == 0:
                raise StoreError(f"{self.path}: no indicator with id {indicator_id}")
            self._audit(
                "blacklist_enable" if enabled else "blacklist_disable", "indicator", str(indicator_id)
            )

    def list_indicators(self, *, active_only: bool = False, now: float | None = None) -> list[dict[str, Any]]:
        """Indicators, oldest first; ``active_only`` keeps enabled, unexpired ones.

        Each row carries an extra ``text`` column: the plain-list form of the indicator.
        """
        if active_only:
            rows = self.rows(
                "SELECT * FROM indicators WHERE enabled = 1 AND (expires_at IS NULL OR expires_at > ?)"
                " ORDER BY id",
                (time.time() if now is None else now,),
            )
        else:
            rows = self.rows("SELECT * FROM indicators ORDER BY id")
        for row in rows:
            row["text"] = indicator_text(row["kind"], row["value"], row["port"])
        return rows

    def add_indicator_texts(
        self, texts: Iterable[str], *, source: str = "analyst", expires_at: float | None = None
    ) -> tuple[int, int]:
        """Parse indicators written as text (``1.2.3.4:3333``, ``*.pool.example`` ...) and add them.

        Raises:
            InputError: a text is not an indicator (nothing is added then).
        """
        parsed = [parse_indicator(t, source) for t in texts]
        return self.add_indicators(parsed, source=source, expires_at=expires_at)

    def load_blacklist(self, *, now: float | None = None) -> Blacklist:
        """The stage-0 pre-filter's ``Blacklist`` built from the active indicators of this file."""
        return Blacklist(
            [
                Indicator(
                    kind=row["kind"],
                    value=row["value"],
                    port=row["port"] or None,
                    source=row["source"],
                )
                for row in self.list_indicators(active_only=True, now=now)
            ]
        )


def load_blacklist(db: BlacklistOps | Path | str | None = None, *, now: float | None = None) -> Blacklist:
    """The stage-0 ``Blacklist`` of a case file: an open store, a path, or None for the default file."""
    if isinstance(db, BlacklistOps):
        return db.load_blacklist(now=now)
    from minerscope.store.api import open_store  # deferred: api imports this module

    with open_store(db) as store:
        return store.load_blacklist(now=now)
