"""Ordered schema migrations, so a case file from an older minerscope opens in a newer one.

The schema version is ``PRAGMA user_version``: the number of migrations applied. Each
migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the version bump,
so a crash leaves the file at the previous version, never half-migrated, and two processes
opening an old file at once do not both migrate it (the second re-reads the version under
the write lock and finds nothing to do). A file whose version is higher than
:data:`SCHEMA_VERSION` comes from a newer minerscope and is refused, not guessed at.

Migrations are append-only: never edit a released one, add the next. DDL is written out in
full (not generated) so the schema can be read here in one place:

v1  cases, captures, flows, flow_scores, probes, pools, indicators, notes, audit
v2  allowlist (endpoints dismissed as false positives, applied at query time) + lookup indexes
v3  index flows (capture_id, flow_key): storing a batch reads back only its own keys, so a
    live session's batches cost the same at hour ten as at minute one
v4  flows: an explicit proxy's tunnel target
v5  captures: what reading each one found (whole or where it is damaged, what its sensor
    says it dropped), so a handed-over case file tells how far its evidence goes
v6  indicators: the dismissal (allowlist entry) that switched a pool's indicator off, so
    lifting the dismissal switches back on exactly what it switched off
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from minerscope.errors import StoreError

Migration = Callable[[sqlite3.Connection], None]

_V1 = (
    """CREATE TABLE cases (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE captures (
        id INTEGER PRIMARY KEY,
        case_id INTEGER NOT NULL REFERENCES cases(id),
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        packets INTEGER,
        first_ts REAL,
        last_ts REAL,
        added_at REAL NOT NULL
    )""",
    """CREATE TABLE flows (
        id INTEGER PRIMARY KEY,
        capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
        flow_key INTEGER NOT NULL,
        proto INTEGER NOT NULL,
        ip_version INTEGER,
        src TEXT NOT NULL,
        sport INTEGER NOT NULL,
        dst TEXT NOT NULL,
        dport INTEGER NOT NULL,
        vlan INTEGER NOT NULL DEFAULT 0,
        first_seen REAL NOT NULL,
        last_seen REAL,
        duration REAL,
        packets INTEGER,
        bytes INTEGER,
        c2s_packets INTEGER,
        s2c_packets INTEGER,
        c2s_bytes INTEGER,
        s2c_bytes INTEGER,
        c2s_payload_bytes INTEGER,
        s2c_payload_bytes INTEGER,
        end_reason TEXT,
        is_tls INTEGER,
        tls_version TEXT,
        sni TEXT,
        alpn TEXT,
        ja4 TEXT,
        ja3 TEXT,
        dns_names TEXT,
        http_host TEXT,
        ws_path TEXT,
        stage0 TEXT NOT NULL DEFAULT '',
        UNIQUE (capture_id, proto, src, sport, dst, dport, vlan, first_seen)
    )""",
    "CREATE INDEX flows_dst ON flows (dst, dport)",
    """CREATE TABLE flow_scores (
        flow_id INTEGER NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        p_mining REAL NOT NULL,
        coin TEXT,
        coin_probs TEXT NOT NULL DEFAULT '{}',
        scored_at REAL NOT NULL,
        PRIMARY KEY (flow_id, model)
    )""",
    """CREATE TABLE probes (
        id INTEGER PRIMARY KEY,
        case_id INTEGER REFERENCES cases(id),
        target TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        dialect TEXT,
        transport TEXT,
        outcome TEXT NOT NULL,
        is_pool INTEGER NOT NULL,
        confidence REAL NOT NULL,
        request TEXT NOT NULL DEFAULT '',
        reply TEXT NOT NULL DEFAULT '',
        evidence TEXT NOT NULL DEFAULT '[]',
        record TEXT NOT NULL,
        probed_at REAL NOT NULL
    )""",
    "CREATE INDEX probes_target ON probes (host, port)",
    """CREATE TABLE pools (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        names TEXT NOT NULL DEFAULT '[]',
        coin TEXT,
        dialect TEXT,
        transport TEXT,
        tls INTEGER NOT NULL DEFAULT 0,
        first_seen REAL,
        last_seen REAL,
        confirmed_by TEXT NOT NULL CHECK (confirmed_by IN ('probe', 'analyst', 'import')),
        confirmed_at REAL NOT NULL,
        probe_id INTEGER REFERENCES probes(id),
        case_id INTEGER REFERENCES cases(id),
        evidence TEXT NOT NULL DEFAULT '',
        UNIQUE (host, port)
    )""",
    """CREATE TABLE indicators (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('ip', 'ip_port', 'domain', 'domain_suffix')),
        value TEXT NOT NULL,
        port INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL,
        added_at REAL NOT NULL,
        expires_at REAL,
        enabled INTEGER NOT NULL DEFAULT 1,
        pool_id INTEGER REFERENCES pools(id),
        UNIQUE (kind, value, port)
    )""",
    """CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        case_id INTEGER REFERENCES cases(id),
        target_kind TEXT NOT NULL
            CHECK (target_kind IN ('case', 'flow', 'pool', 'probe', 'endpoint')),
        target_ref TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX notes_target ON notes (target_kind, target_ref)",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        target_ref TEXT NOT NULL,
        case_id INTEGER,
        detail TEXT NOT NULL DEFAULT '{}'
    )""",
)

_V2 = (
    """CREATE TABLE allowlist (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        port INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        source_flow_id INTEGER,
        case_id INTEGER,
        added_at REAL NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        UNIQUE (host, port)
    )""",
    "CREATE INDEX flows_sni ON flows (sni)",
    "CREATE INDEX indicators_value ON indicators (value)",
)

_V3 = ("CREATE INDEX flows_capture_key ON flows (capture_id, flow_key)",)

_V4 = (  # a flow to an explicit proxy: the tunnel's target (HTTP CONNECT, SOCKS)
    "ALTER TABLE flows ADD COLUMN proxy_host TEXT",
    "ALTER TABLE flows ADD COLUMN proxy_port INTEGER",
    # partial: it holds only the (few) proxied flows, so recording the others costs nothing more
    "CREATE INDEX flows_proxy_target ON flows (proxy_host, proxy_port) WHERE proxy_host != ''",
)


_V5 = (  # NULL: not recorded (a file stored before v5, a live session); damage '' when whole
    "ALTER TABLE captures ADD COLUMN complete INTEGER",
    "ALTER TABLE captures ADD COLUMN damage TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE captures ADD COLUMN sensor_dropped INTEGER",
)


_V6 = (  # NULL: on or off by the analyst's own choice, not by a dismissal
    "ALTER TABLE indicators ADD COLUMN dismissed_by INTEGER",  # an allowlist id
)


def _ddl(statements: tuple[str, ...]) -> Migration:
    def apply(conn: sqlite3.Connection) -> None:
        for sql in statements:
            conn.execute(sql)

    return apply


MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("v1_initial_schema", _ddl(_V1)),
    ("v2_allowlist", _ddl(_V2)),
    ("v3_flow_key_index", _ddl(_V3)),
    ("v4_proxy_target", _ddl(_V4)),
    ("v5_capture_reading", _ddl(_V5)),
    ("v6_indicator_dismissed_by", _ddl(_V6)),
)
"""(name, function) in order; migration ``i`` takes the file from version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path, *, target: int = SCHEMA_VERSION) -> list[str]:
    """Bring the file at ``conn`` to schema version ``target``; return the migrations applied.

    Raises:
        StoreError: the file is newer than this code, is some other application's SQLite
            database, or a migration failed (the file stays at its previous version).
    """
    applied: list[str] = []
    version = _user_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: case file has schema version {version}, this minerscope knows up to "
            f"{SCHEMA_VERSION}: upgrade minerscope to open it"
        )
    if version == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise StoreError(
                f"{path}: not a minerscope case file (an SQLite database of another application)"
            )
    while version < target:
        name, step = MIGRATIONS[version]
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{path}: cannot migrate case file: {exc}") from None
        try:
            current = _user_version(conn)  # another process may have migrated meanwhile
            if current != version:
                conn.execute("COMMIT")
                version = current
                continue
            step(conn)
            # PRAGMA takes no parameters; the value is our own integer.
            conn.execute(f"PRAGMA user_version = {version + 1:d}")
            conn.execute(
                "INSERT INTO audit (at, actor, action, target_kind, target_ref, detail)"
                " VALUES (?, 'minerscope', 'migrate', 'schema', ?, '{}')",
                (time.time(), name),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"{path}: migration {name} failed: {exc}") from None
        applied.append(name)
        version += 1
    return applied
