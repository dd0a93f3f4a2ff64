"""The :class:`Store` every front end uses, and :func:`open_store`, the only way to get one.

``Store`` is the sum of the domain mixins (cases and notes, flows and allowlist, probes,
pools, blacklist) plus the endpoint views the TUI needs: what the analyst decided about a
``host:port`` (:meth:`Store.endpoint_status`) and its history of probes, notes and
actions (:meth:`Store.endpoint_history`).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from minerscope.errors import StoreError
from minerscope.store.cases import CaseOps, capture_identity
from minerscope.store.db import (
    BUSY_TIMEOUT_S,
    StoreBase,
    connect,
    integrity_check,
    refuse_non_sqlite,
)
from minerscope.store.flows import FlowOps
from minerscope.store.migrations import migrate
from minerscope.store.pools import endpoint_text
from minerscope.store.probes import ProbeOps
from minerscope.timetext import time_order, utc_text
from minerscope.userdirs import default_db_path

if TYPE_CHECKING:  # polars is only needed by callers that already hold a frame
    import polars as pl


class Store(CaseOps, FlowOps, ProbeOps):
    """One open case file. Use as a context manager or call :meth:`close`."""

    def __enter__(self) -> Store:
        return self

    def record_capture(
        self,
        path: Path | str,
        summary: pl.DataFrame,
        *,
        model_version: str | None = None,
        case_id: int | None = None,
        packets: int | None = None,
        first_ts: float | None = None,
        last_ts: float | None = None,
        sha256: str | None = None,
        size: int | None = None,
        complete: bool | None = None,
        damage: str = "",
        sensor_dropped: int | None = None,
    ) -> tuple[int, dict[int, int]]:
        """Register a capture and store its flows and scores in one transaction.

        What :meth:`add_capture` then :meth:`record_flows` do, but the capture row, its
        reading and its flows become visible together or not at all (a stop in between
        leaves no trace of the capture). The file is hashed before the write lock is taken.

        Returns:
            (capture id, ``flow_id`` of the summary -> row id in ``flows``).
        """
        sha256, size = capture_identity(Path(path), sha256, size)  # before the write lock
        with self.transaction():
            capture_id = self.add_capture(
                path,
                case_id=case_id,
                packets=packets,
                first_ts=first_ts,
                last_ts=last_ts,
                sha256=sha256,
                size=size,
                complete=complete,
                damage=damage,
                sensor_dropped=sensor_dropped,
                flows_follow=False,
            )
            mapping = (
                self.record_flows(capture_id, summary, model_version=model_version) if summary.height else {}
            )
        return capture_id, mapping

    def endpoint_status(self) -> list[tuple[str, int, str]]:
        """(host, port, ``confirmed`` | ``dismissed``) for every endpoint the analyst decided on.

        A dismissal with port 0 is reported with port 0 (every port of that host).
        """
        out: list[tuple[str, int, str]] = [
            (str(r["host"]), int(r["port"]), "confirmed")
            for r in self.rows(
                "SELECT host, port FROM pools p WHERE NOT EXISTS (SELECT 1 FROM allowlist a"
                " WHERE a.enabled = 1 AND a.host = p.host AND a.port IN (0, p.port)) ORDER BY id"
            )
        ]
        out += [(str(r["host"]), int(r["port"]), "dismissed") for r in self.list_allowlist()]
        return out

    def endpoint_history(self, host: str, port: int) -> list[str]:
        """Lines describing what happened to ``host:port``, oldest first (for a detail pane).

        Strings are stored as given; front ends pass them through ``untrusted.clean``.
        """
        ref = endpoint_text(host, port)
        events: list[tuple[float, str]] = []
        for p in self.rows(
            "SELECT probed_at, dialect, transport, outcome, confidence FROM probes WHERE host = ? AND port = ?",
            (host, port),
        ):
            events.append(
                (
                    p["probed_at"],
                    f"probe: {p['outcome']} {p['dialect'] or '-'}/{p['transport'] or '-'}"
                    f" confidence {_two_places(p['confidence'])}",
                )
            )
        for a in self.rows(
            "SELECT at, actor, action FROM audit WHERE target_kind = 'endpoint' AND target_ref = ?"
            " AND action != 'add_note'",
            (ref,),
        ):
            events.append((a["at"], f"{a['action']} by {a['actor']}"))
        pool_ids = [
            str(r["id"]) for r in self.rows("SELECT id FROM pools WHERE host = ? AND port = ?", (host, port))
        ]
        for n in self.rows(
            "SELECT created_at, text FROM notes WHERE (target_kind = 'endpoint' AND target_ref = ?)"
            " OR (target_kind = 'pool' AND target_ref IN (SELECT value FROM json_each(?)))",
            (ref, _json_list(pool_ids)),
        ):
            events.append((n["created_at"], f"note: {n['text']}"))
        events.sort(key=lambda e: time_order(e[0]))
        return [f"{utc_text(at, ' ')} {text}" for at, text in events]


def _two_places(value: object) -> str:
    """A stored number with two decimals (what an imported case file holds instead, as text)."""
    return f"{value:.2f}" if isinstance(value, int | float) else str(value)


def _json_list(items: list[str]) -> str:
    return json.dumps(items)


def open_store(
    path: Path | str | None = None,
    *,
    actor: str | None = None,
    check: bool = True,
    busy_timeout: float = BUSY_TIMEOUT_S,
) -> Store:
    """Open (creating if needed) and migrate the case file; the one entry point to the store.

    A file created here starts with its ``default`` case (id 1), so ``case note case 1``
    works on a fresh file as it does after a scan.

    Args:
        path: the case file; None: ``$MINERSCOPE_DB`` or the user data directory.
        actor: the name written into the audit trail (default: the login name).
        check: run ``PRAGMA quick_check`` on open (a fast structural check).
        busy_timeout: seconds a write waits for another process's transaction.

    Raises:
        StoreError: not SQLite, damaged, from a newer minerscope, another application's
            database, or not writable. The message is one line naming the file.
    """
    db_path = Path(path) if path is not None else default_db_path()
    if db_path.is_dir():
        raise StoreError(f"{db_path}: is a directory, not a case file")
    if not db_path.exists():
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{db_path}: cannot create case file directory: {exc.strerror or exc}") from None
    conn = connect(db_path, timeout=busy_timeout)
    try:
        refuse_non_sqlite(conn, db_path)
        if check:
            integrity_check(conn, db_path)
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = FULL")  # a committed note survives power loss too
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA cache_size = -32768")  # 32 MiB: bulk flow upserts stay in memory
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{db_path}: cannot use case file: {exc}") from None
        created = "v1_initial_schema" in migrate(conn, db_path)
    except BaseException:
        conn.close()
        raise
    store = Store(db_path, conn, actor=actor)
    if created:  # a new file has its default case from the start, as after any scan
        try:
            store.default_case_id()
        except BaseException:
            store.close()
            raise
    return store


__all__ = ["Store", "StoreBase", "open_store"]
