"""Numbered schema migrations of the local store, run in order at start-up.

Each migration is a small function recorded in ``meta.schema_version`` once applied. Never edit
a migration that has shipped: add the next one.
"""

from __future__ import annotations

import fcntl
import sqlite3

import sqlite_utils
from loguru import logger

M001_INITIAL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT OR IGNORE INTO meta (key, value) VALUES ('gallery_version', '0');

        CREATE TABLE persons (
            id TEXT PRIMARY KEY,                 -- uuid
            name TEXT NOT NULL,
            external_id TEXT UNIQUE,             -- employee number, badge id, folder name
            active INTEGER NOT NULL DEFAULT 1,
            valid_from TEXT,                     -- UTC ISO-8601 or NULL (no lower bound)
            valid_until TEXT,                    -- UTC ISO-8601 or NULL (no upper bound)
            schedule_id TEXT REFERENCES schedules(id) ON DELETE SET NULL,
            notes TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,  -- tombstone kept until sync pushed it
            dirty INTEGER NOT NULL DEFAULT 1,    -- changed here, not yet pushed
            central_version INTEGER              -- change number last seen from the centre
        );

        CREATE TABLE faces (
            id TEXT PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
            embedding BLOB NOT NULL,             -- float32 x 128, little endian
            model TEXT NOT NULL,
            quality REAL,
            photo_path TEXT,                     -- only when FACEGATE_STORE_ENROL_PHOTOS
            created_at TEXT NOT NULL,
            dirty INTEGER NOT NULL DEFAULT 1,
            central_version INTEGER
        );
        CREATE INDEX faces_person ON faces(person_id);

        CREATE TABLE schedules (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            windows TEXT NOT NULL DEFAULT '[]',  -- JSON list of {"days", "start", "end"}
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            dirty INTEGER NOT NULL DEFAULT 1,
            central_version INTEGER
        );

        CREATE TABLE events (
            id TEXT PRIMARY KEY,                 -- uuid made here: idempotent push
            ts TEXT NOT NULL,                    -- UTC ISO-8601
            door TEXT NOT NULL,
            kind TEXT NOT NULL,
            person_id TEXT,
            person_name TEXT,
            distance REAL,
            reason TEXT,
            track_id INTEGER,
            snapshot_path TEXT,
            details TEXT,                        -- JSON, optional
            synced INTEGER NOT NULL DEFAULT 0,
            sync_error TEXT                      -- set when the centre refused the row
        );
        CREATE INDEX events_ts ON events(ts);
        CREATE INDEX events_unsynced ON events(synced) WHERE synced = 0;
        CREATE INDEX events_person ON events(person_id, ts);

        CREATE TABLE commands (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,                  -- unlock, reload
            args TEXT NOT NULL DEFAULT '{}',
            requested_by TEXT,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',  -- pending, done, failed, expired
            result TEXT,
            done_at TEXT
        );
        CREATE INDEX commands_pending ON commands(status) WHERE status = 'pending';

        CREATE TABLE device_status (
            component TEXT PRIMARY KEY,          -- appliance, sync
            status TEXT NOT NULL,                -- JSON
            updated_at TEXT NOT NULL
        );

        CREATE TABLE api_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
            token_hash TEXT NOT NULL UNIQUE,     -- sha256 of the token; the token is never stored
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        );

        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,                 -- token name, "cli", "sync"
            action TEXT NOT NULL,
            target TEXT,
            details TEXT
        );

        CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT);

        -- Any change to who may enter bumps the gallery version; the appliance polls it about
        -- once a second and rebuilds its in-memory gallery, whoever made the change.
        CREATE TRIGGER persons_ins AFTER INSERT ON persons BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version'; END;
        CREATE TRIGGER persons_upd AFTER UPDATE ON persons BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version'; END;
        CREATE TRIGGER persons_del AFTER DELETE ON persons BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version'; END;
        CREATE TRIGGER faces_ins AFTER INSERT ON faces BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version'; END;
        CREATE TRIGGER faces_del AFTER DELETE ON faces BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version'; END;
        CREATE TRIGGER schedules_upd AFTER UPDATE ON schedules BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version'; END;
        CREATE TRIGGER schedules_del AFTER DELETE ON schedules BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version'; END;
"""

# Sync: rows refused on the way up or malformed on the way down are kept here and reported,
# instead of blocking the rows behind them; a person the centre refused is not re-sent until it
# changes again (sync_refused_at holds the refused version's updated_at).
M002_SYNC_QUARANTINE = """
CREATE TABLE sync_quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('push', 'pull')),
    kind TEXT NOT NULL,                  -- event, person, face, schedule
    row_id TEXT,
    error TEXT NOT NULL,
    payload TEXT                         -- JSON of the refused row, as sent or received
);
CREATE INDEX sync_quarantine_ts ON sync_quarantine(ts);
ALTER TABLE persons ADD COLUMN sync_refused_at TEXT;
"""

M003_EVENT_KIND_INDEX = """
-- the entry log filtered by kind (e.g. only alarms) without scanning every decision
CREATE INDEX IF NOT EXISTS events_kind_ts ON events(kind, ts);
"""

# Notifications, webhooks and MQTT: the notify process declares its channels (and for each the
# event kinds it sends, NULL = every kind) in outbox_channels; a trigger then adds one outbox row
# per channel to every event inserted, inside the event's own transaction, so an event is never
# written without its messages nor the reverse, whoever writes it. Only ids live here: erasing
# an event leaves its outbox rows pointing at nothing, and notify drops them.
M004_OUTBOX = """
CREATE TABLE outbox_channels (
    channel TEXT PRIMARY KEY,            -- notify (Apprise), webhook, mqtt
    kinds TEXT,                          -- ',door_forced,camera_down,' or NULL for every kind
    updated_at TEXT NOT NULL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',  -- pending, sending, sent, summarized, failed, dropped
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,               -- UTC ISO-8601: not before (backoff, rate limit)
    claimed_at TEXT,
    sent_at TEXT,
    last_error TEXT,
    UNIQUE (event_id, channel)
);
CREATE INDEX outbox_due ON outbox(channel, next_at) WHERE status = 'pending';
CREATE INDEX outbox_recent ON outbox(sent_at) WHERE sent_at IS NOT NULL;
CREATE TRIGGER events_outbox AFTER INSERT ON events BEGIN
    INSERT OR IGNORE INTO outbox (event_id, channel, created_at, next_at)
    SELECT NEW.id, c.channel, NEW.ts, NEW.ts FROM outbox_channels c
    WHERE c.kinds IS NULL OR instr(c.kinds, ',' || NEW.kind || ',') > 0;
END;
"""

# The gallery version moves only when what the door matches or decides on changes: a person's
# name, badge, active flag, validity and schedule (or their deletion), a face's embedding,
# model or owner, a schedule's windows (or its deletion). Sync's bookkeeping (dirty = 0,
# central_version, sync_refused_at), updated_at and notes no longer make every door rebuild its
# whole gallery after each confirmed push. IS NOT compares NULLs as values.
M005_GALLERY_VERSION_ON_MATCHING_CHANGES = """
DROP TRIGGER persons_upd;
CREATE TRIGGER persons_upd AFTER UPDATE ON persons
WHEN OLD.name IS NOT NEW.name OR OLD.external_id IS NOT NEW.external_id
    OR OLD.active IS NOT NEW.active OR OLD.valid_from IS NOT NEW.valid_from
    OR OLD.valid_until IS NOT NEW.valid_until OR OLD.schedule_id IS NOT NEW.schedule_id
    OR OLD.deleted IS NOT NEW.deleted
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version';
END;
CREATE TRIGGER faces_upd AFTER UPDATE ON faces
WHEN OLD.embedding IS NOT NEW.embedding OR OLD.model IS NOT NEW.model
    OR OLD.person_id IS NOT NEW.person_id
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version';
END;
DROP TRIGGER schedules_upd;
CREATE TRIGGER schedules_upd AFTER UPDATE ON schedules
WHEN OLD.windows IS NOT NEW.windows OR OLD.deleted IS NOT NEW.deleted
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gallery_version';
END;
"""

#: The SQL scripts, in order; migration N is MIGRATIONS[N - 1].
MIGRATIONS: list[str] = [
    M001_INITIAL,
    M002_SYNC_QUARANTINE,
    M003_EVENT_KIND_INDEX,
    M004_OUTBOX,
    M005_GALLERY_VERSION_ON_MATCHING_CHANGES,
]


def schema_version(db: sqlite_utils.Database) -> int:
    if "meta" not in db.table_names():
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the missing migrations, each in its own transaction; return the schema version.

    The appliance, the admin API and sync may start at the same moment on one file: a lock file
    beside the database makes them migrate one after the other, each re-reading the version.
    """
    path = _db_file(db)
    lock = open(f"{path}.migrate-lock", "a+") if path else None  # noqa: SIM115
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _migrate_locked(db)
    finally:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()


def _db_file(db: sqlite_utils.Database) -> str | None:
    row = db.execute("PRAGMA database_list").fetchone()
    return row[2] if row and row[2] else None  # "" for an in-memory database


def _migrate_locked(db: sqlite_utils.Database) -> int:
    current = schema_version(db)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema {current} is newer than this program knows ({len(MIGRATIONS)}); "
            "upgrade the software before using this data folder"
        )
    for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
        # executescript() commits whatever is pending first and then runs statements one by one,
        # so the explicit BEGIN/COMMIT is what makes one migration all-or-nothing.
        try:
            db.conn.executescript(
                "BEGIN IMMEDIATE;\n"
                + script
                + "\nINSERT INTO meta (key, value) VALUES ('schema_version', '"
                + str(number)
                + "') ON CONFLICT(key) DO UPDATE SET value = excluded.value;\nCOMMIT;"
            )
        except sqlite3.Error:
            if db.conn.in_transaction:
                db.conn.rollback()
            raise
        # a new store runs every migration: that is set-up, not news (DEBUG); an upgrade is INFO
        (logger.info if current else logger.debug)("store migrated to schema {}", number)
    return len(MIGRATIONS)
