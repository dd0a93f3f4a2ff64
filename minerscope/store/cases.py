"""Cases, the captures loaded into them, and analyst notes.

A *case* groups the captures of one investigation. Most analysts work in one case, so every
operation that needs a case and is given none uses the ``default`` case, created on first
use. Captures are identified by the SHA-256 of their bytes: loading the same file again
(even renamed or moved) returns the existing capture instead of a duplicate.

Notes attach to a case, a flow, a pool, a probe or an *endpoint* (``host:port``, what the
TUI shows); ``target_ref`` is the id (or the endpoint text) as a string so one table serves
all kinds. Adding and editing a note are analyst actions and go to the audit trail.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

from minerscope.capture.discover import is_stream
from minerscope.errors import StoreError
from minerscope.store.blacklist import POOL_DISMISSED_SQL
from minerscope.store.db import StoreBase
from minerscope.untrusted import is_decimal, path_text

NOTE_TARGETS = ("case", "flow", "pool", "probe", "endpoint")
_NOTE_TABLES = {"flow": "flows", "pool": "pools", "probe": "probes"}
"""Note targets that must exist (constant table names, never input)."""
MAX_NOTE_CHARS = 100_000
"""Notes longer than this are refused (a size limit, not a display limit)."""
_HASH_CHUNK = 1 << 20
FLOWS_PENDING = "flows not recorded yet (scan running or stopped)"
"""``captures.damage`` of a capture whose reading waits for its flows (``complete`` NULL)."""


def file_sha256(path: Path, cancel: threading.Event | None = None) -> tuple[str, int]:
    """(hex SHA-256, size in bytes) of a file, read in 1 MiB chunks.

    Raises:
        OSError: the file cannot be read; ``InterruptedError`` when ``cancel`` is set
            (checked between chunks, so a background hash stops within one chunk).
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            if cancel is not None and cancel.is_set():
                raise InterruptedError(f"{path}: hashing cancelled")
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _endpoint_ref(text: str) -> str:
    """``host:port`` in one spelling (IPv6 bracketed), whichever way the caller wrote it."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not is_decimal(port) or not host:
        raise StoreError(f"an endpoint note needs HOST:PORT, got {text[:80]!r}")
    host = host.strip("[]")
    return f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"


_LIST_CASES = (
    "SELECT c.*,"
    " (SELECT count(*) FROM captures WHERE case_id = c.id) AS captures,"
    " (SELECT count(*) FROM notes WHERE case_id = c.id) AS notes,"
    f" (SELECT count(*) FROM pools p WHERE p.case_id = c.id AND NOT {POOL_DISMISSED_SQL}) AS pools"
    " FROM cases c ORDER BY c.id"
)
"""Every case with its capture, note and confirmed (not dismissed) pool counts."""


def capture_identity(path: Path, sha256: str | None, size: int | None) -> tuple[str, int]:
    """A capture's (SHA-256, size): what is given, the rest read from the file.

    Raises:
        StoreError: the file cannot be read, or it is a stream given without its hash (a
            pipe is read once, by its reader, which hashes it on the way).
    """
    try:
        if sha256 is not None and size is not None:
            return sha256, size
        if sha256 is None:
            if is_stream(path):
                raise StoreError(f"{path}: a stream can be read only once: its reader must hash it")
            return file_sha256(path)
        return sha256, path.stat().st_size
    except OSError as exc:
        raise StoreError(f"{path}: cannot read capture: {exc.strerror or exc}") from None


class CaseOps(StoreBase):
    """Cases, captures and notes."""

    # ---- cases -------------------------------------------------------------------------
    def add_case(self, name: str, description: str = "") -> int:
        """Create a case (or return the id of the case already called ``name``)."""
        name = name.strip()
        if not name:
            raise StoreError("a case needs a non-empty name")
        with self.transaction():
            existing = self.scalar("SELECT id FROM cases WHERE name = ?", (name,))
            if existing is not None:
                return int(existing)
            now = time.time()
            cur = self.conn.execute(
                "INSERT INTO cases (name, description, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (name, description, now, now),
            )
            case_id = int(cur.lastrowid or 0)
            self._audit("create_case", "case", str(case_id), {"name": name}, case_id=case_id)
        return case_id

    def get_case(self, case_id: int) -> dict[str, Any]:
        """One case as a dict; StoreError if there is none with that id."""
        found = self.rows("SELECT * FROM cases WHERE id = ?", (case_id,))
        if not found:
            raise StoreError(f"{self.path}: no case with id {case_id}")
        return found[0]

    def list_cases(self) -> list[dict[str, Any]]:
        """All cases with capture, note and (confirmed, not dismissed) pool counts, oldest first."""
        return self.rows(_LIST_CASES)

    def set_case_status(self, case_id: int, status: str) -> None:
        """Open or close a case (an audited analyst action)."""
        if status not in ("open", "closed"):
            raise StoreError(f"case status must be open or closed, not {status!r}")
        with self.transaction():
            self.get_case(case_id)
            self.conn.execute(
                "UPDATE cases SET status = ?, updated_at = ? WHERE id = ?", (status, time.time(), case_id)
            )
            self._audit("set_status", "case", str(case_id), {"status": status}, case_id=case_id)

    # ---- captures ------------------------------------------------------------------------
    def add_capture(
        self,
        path: Path | str,
        *,
        case_id: int | None = None,
        packets: int | None = None,
        first_ts: float | None = None,
        last_ts: float | None = None,
        sha256: str | None = None,
        size: int | None = None,
        complete: bool | None = None,
        damage: str = "",
        sensor_dropped: int | None = None,
        flows_follow: bool | None = None,
    ) -> int:
        """Register a capture file; idempotent by content hash.

        Loading a file whose SHA-256 is already known returns the existing id (and fills in
        the packet count / time range if they were unknown), so re-loading never duplicates.

        Args:
            path: the capture file (hashed here unless ``sha256`` is given).
            case_id: the case it belongs to (None: the default case).
            packets, first_ts, last_ts: what the reader reported, when known.
            sha256: a precomputed hash (the file is then only stat'ed).
            size: its size in bytes, with ``sha256`` (then nothing is read: a pipe's
                reader hashed it, and the pipe holds nothing any more).
            complete, damage, sensor_dropped: what reading it found: read to its end or
                not, where and why it is damaged (the reader's one line, '' when whole),
                what the capturing system says it dropped (None: the file says nothing).
            flows_follow: the caller records this capture's flows next (:meth:`record_flows`).
                Then the reading is held back: the row says :data:`FLOWS_PENDING` (``complete``
                NULL) until ``record_flows`` writes the flows and the reading in one
                transaction, so neither a reader meanwhile (an ``export case`` during a scan)
                nor a file left by a scan stopped in between sees a capture read ``whole``
                with none of its flows. None: inferred from the time range, which a caller
                has exactly when it holds flows (``scan`` passes none for a capture without
                flows). :meth:`~minerscope.store.api.Store.record_capture` does both in one call.

        Raises:
            StoreError: the file cannot be read, or it is a stream given without its hash.
        """
        path = Path(path)
        stream = is_stream(path)
        sha256, size = capture_identity(path, sha256, size)
        case = self._case_or_default(case_id)
        if flows_follow is None:
            flows_follow = first_ts is not None or last_ts is not None
        hold = flows_follow and complete is not None
        reading: tuple[bool | None, str, int | None] = (complete, damage, sensor_dropped)
        if hold:  # written with the flows (record_flows); until then the row says so
            complete, damage, sensor_dropped = None, FLOWS_PENDING, None
        with self.transaction():
            existing = self.scalar("SELECT id FROM captures WHERE sha256 = ?", (sha256,))
            if existing is not None:
                self.conn.execute(
                    "UPDATE captures SET packets = coalesce(packets, ?), first_ts = coalesce(first_ts, ?),"
                    " last_ts = coalesce(last_ts, ?), complete = coalesce(complete, ?),"
                    " damage = CASE WHEN complete IS NULL THEN ? ELSE damage END,"
                    " sensor_dropped = coalesce(sensor_dropped, ?) WHERE id = ?",
                    (packets, first_ts, last_ts, complete, damage, sensor_dropped, existing),
                )
                capture_id = int(existing)
            else:
                cur = self.conn.execute(
                    "INSERT INTO captures (case_id, path, size, sha256, packets, first_ts, last_ts, added_at,"
                    " complete, damage, sensor_dropped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    # (a stream's resolved path names a pipe that is gone: keep the name it was given)
                    (
                        case,
                        path_text(str(path if stream else path.resolve())),  # (not UTF-8: \xNN)
                        size,
                        sha256,
                        packets,
                        first_ts,
                        last_ts,
                        time.time(),
                        complete,
                        damage,
                        sensor_dropped,
                    ),
                )
                capture_id = int(cur.lastrowid or 0)
        if hold:
            self._pending_readings[capture_id] = reading
        return capture_id

    def add_live_capture(self, interface: str, *, started: float, case_id: int | None = None) -> int:
        """Register a live capture session (``path`` ``live:IFACE``, size 0).

        A live session has no file to hash, so its identity is the interface and the start
        time; :meth:`update_capture` fills in packets and time range as it runs.
        """
        identity = hashlib.sha256(f"live\0{interface}\0{started!r}".encode()).hexdigest()
        case = self._case_or_default(case_id)
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO captures (case_id, path, size, sha256, packets, first_ts, last_ts, added_at)"
                " VALUES (?, ?, 0, ?, 0, NULL, NULL, ?)",
                (case, f"live:{interface}", f"live:{identity}", time.time()),
            )
            return int(cur.lastrowid or 0)

    def update_capture(
        self,
        capture_id: int,
        *,
        packets: int,
        first_ts: float | None,
        last_ts: float | None,
        complete: bool | None = None,
        damage: str = "",
        sensor_dropped: int | None = None,
    ) -> None:
        """Set a capture's packet count and widen its time range (a live session as it runs);
        at its end, what the reading found (as :meth:`add_capture` takes it)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE captures SET packets = ?, first_ts = min(coalesce(first_ts, ?), coalesce(?, first_ts)),"
                " last_ts = max(coalesce(last_ts, ?), coalesce(?, last_ts)), complete = coalesce(?, complete),"
                " damage = CASE WHEN ? IS NULL THEN damage ELSE ? END,"
                " sensor_dropped = coalesce(?, sensor_dropped) WHERE id = ?",
                (
                    packets,
                    first_ts,
                    first_ts,
                    last_ts,
                    last_ts,
                    complete,
                    complete,
                    damage,
                    sensor_dropped,
                    capture_id,
                ),
            )

    def list_captures(self, case_id: int | None = None) -> list[dict[str, Any]]:
        """Captures (of one case, or all), with their flow counts."""
        sql = "SELECT c.*, (SELECT count(*) FROM flows WHERE capture_id = c.id) AS flows FROM captures c"
        if case_id is None:
            return self.rows(sql + " ORDER BY c.id")
        return self.rows(sql + " WHERE c.case_id = ? ORDER BY c.id", (case_id,))

    # ---- notes ---------------------------------------------------------------------------
    def add_note(
        self, target_kind: str, target_id: int | str, text: str, *, case_id: int | None = None
    ) -> int:
        """Attach a note to a case, flow, pool, probe or endpoint (``host:port``); returns its id.

        For ``target_kind == "case"`` an empty ``target_id`` means the default case.
        """
        if target_kind not in NOTE_TARGETS:
            raise StoreError(f"a note attaches to one of {', '.join(NOTE_TARGETS)}, not {target_kind!r}")
        if not text.strip():
            raise StoreError("a note needs some text")
        if len(text) > MAX_NOTE_CHARS:
            raise StoreError(f"note too long: {len(text)} characters (limit {MAX_NOTE_CHARS})")
        if target_kind == "case":
            case_id = self._case_or_default(int(target_id) if str(target_id).strip() else case_id)
            target_id = case_id
        else:
            case_id = self._case_or_default(case_id)
        ref = _endpoint_ref(str(target_id)) if target_kind == "endpoint" else str(target_id)
        with self.transaction():
            table = _NOTE_TABLES.get(target_kind)
            if table is not None and self.scalar(f"SELECT 1 FROM {table} WHERE id = ?", (ref,)) is None:
                raise StoreError(f"{self.path}: no {target_kind} with id {ref[:40]}")
            now = time.time()
            cur = self.conn.execute(
                "INSERT INTO notes (case_id, target_kind, target_ref, text, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (case_id, target_kind, ref, text, now, now),
            )
            note_id = int(cur.lastrowid or 0)
            self._audit(
                "add_note", target_kind, ref, {"note_id": note_id, "chars": len(text)}, case_id=case_id
            )
        return note_id

    def edit_note(self, note_id: int, text: str) -> None:
        """Replace a note's text; the old text is kept in the audit trail."""
        if not text.strip():
            raise StoreError("a note needs some text")
        if len(text) > MAX_NOTE_CHARS:
            raise StoreError(f"note too long: {len(text)} characters (limit {MAX_NOTE_CHARS})")
        with self.transaction():
            found = self.rows("SELECT * FROM notes WHERE id = ?", (note_id,))
            if not found:
                raise StoreError(f"{self.path}: no note with id {note_id}")
            old = found[0]
            self.conn.execute(
                "UPDATE notes SET text = ?, updated_at = ? WHERE id = ?", (text, time.time(), note_id)
            )
            self._audit(
                "edit_note",
                str(old["target_kind"]),
                str(old["target_ref"]),
                {"note_id": note_id, "old_text": old["text"]},
                case_id=old["case_id"],
            )

    def list_notes(
        self,
        target_kind: str | None = None,
        target_id: int | str | None = None,
        *,
        case_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Notes, oldest first, filtered by target and/or case."""
        clauses: list[str] = []
        params: list[Any] = []
        if target_kind is not None:
            clauses.append("target_kind = ?")
            params.append(target_kind)
        if target_id is not None:
            clauses.append("target_ref = ?")
            params.append(_endpoint_ref(str(target_id)) if target_kind == "endpoint" else str(target_id))
        if case_id is not None:
            clauses.append("case_id = ?")
            params.append(case_id)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return self.rows("SELECT * FROM notes" + where + " ORDER BY id", tuple(params))
