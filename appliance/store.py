"""The local store: one SQLite file (WAL) shared by the appliance, the admin API and sync.

Thin repository functions over sqlite-utils. Each process opens its own connection with
:func:`open_db`; transactions are short so that the door loop never waits on an admin or on sync.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils
from loguru import logger

from appliance.match import GalleryRows
from appliance.migrations import migrate
from appliance.redact import redact

# re-exported: the loop, sync and the API read the time helpers from the store
from appliance.timeutil import OutOfRange, parse_iso, to_iso, utc_now  # noqa: F401

EMBEDDING_DIM = 128


def new_id() -> str:
    return str(uuid.uuid4())


# --- connection ------------------------------------------------------------------------------


def open_db(path: Path | str, *, migrate_schema: bool = True) -> sqlite_utils.Database:
    """Open the store with the pragmas every process relies on, migrating it to the current schema.

    WAL lets readers run beside the one writer; the busy timeout makes a writer wait for another
    instead of failing with "database is locked".
    """
    path = Path(path)
    # people's faces (as embeddings) and movements live here: readable by the service user only
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    is_new = not path.exists()
    conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
    if is_new:
        os.chmod(path, 0o600)  # SQLite gives the -wal and -shm files the same mode
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # deleted rows (a removed person's faces and name) are overwritten with zeros, not merely
    # marked free: set here, not left to how the platform's SQLite was built
    conn.execute("PRAGMA secure_delete = ON")
    db = sqlite_utils.Database(conn)
    if migrate_schema:
        migrate(db)
    return db


# --- meta and sync state ---------------------------------------------------------------------


def gallery_version(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'gallery_version'").fetchone()
    return int(row[0]) if row else 0


def get_state(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_state(db: sqlite_utils.Database, key: str, value: str | None) -> None:
    with db.conn:
        db.execute(
            "INSERT INTO sync_state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )


# --- embeddings ------------------------------------------------------------------------------


def embedding_to_blob(vec: np.ndarray) -> bytes:
    arr = np.asarray(vec, dtype="<f4").reshape(-1)
    if arr.shape[0] != EMBEDDING_DIM or not np.all(np.isfinite(arr)):
        raise ValueError(f"an embedding must be {EMBEDDING_DIM} finite floats")
    return arr.tobytes()


def blob_to_embedding(blob: bytes) -> np.ndarray:
    arr = np.frombuffer(blob, dtype="<f4")
    if arr.shape[0] != EMBEDDING_DIM:
        raise ValueError(f"stored embedding has {arr.shape[0]} values, not {EMBEDDING_DIM}")
    return arr


# --- persons and faces -----------------------------------------------------------------------

PERSON_FIELDS = (
    "name",
    "external_id",
    "active",
    "valid_from",
    "valid_until",
    "schedule_id",
    "notes",
)


class NotFound(LookupError):
    pass


#: Who made a change and what to call it in the audit log: (actor, action, details). Passed to
#: the functions that change people and schedules so the audit row is written in the same
#: transaction as the change: there is never a change without its record, nor the reverse.
Audit = tuple[str, str, dict | None]


def _record(db: sqlite_utils.Database, audit_entry: Audit | None, target: str) -> None:
    if audit_entry is not None:
        actor, action, details = audit_entry
        audit(db, actor, action, target, details)


def _person_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["active"] = bool(row["active"])
    return row


def create_person(
    db: sqlite_utils.Database,
    name: str,
    *,
    external_id: str | None = None,
    active: bool = True,
    valid_from: str | None = None,
    valid_until: str | None = None,
    schedule_id: str | None = None,
    notes: str | None = None,
    person_id: str | None = None,
) -> str:
    """Insert a person (no transaction of its own: callers group it with the faces)."""
    now = to_iso(utc_now())
    pid = person_id or new_id()
    db["persons"].insert(
        {
            "id": pid,
            "name": name,
            "external_id": external_id,
            "active": int(active),
            "valid_from": valid_from,
            "valid_until": valid_until,
            "schedule_id": schedule_id,
            "notes": notes,
            "created_at": now,
            "updated_at": now,
            "deleted": 0,
            "dirty": 1,
        }
    )
    return pid


def get_person(db: sqlite_utils.Database, person_id: str) -> dict[str, Any]:
    rows = list(
        db.query(
            "SELECT p.*, (SELECT count(*) FROM faces f WHERE f.person_id = p.id) AS face_count "
            "FROM persons p WHERE p.id = ? AND p.deleted = 0",
            [person_id],
        )
    )
    if not rows:
        raise NotFound(f"no person with id {person_id}")
    return _person_row(rows[0])


def find_person_by_external_id(db: sqlite_utils.Database, external_id: str) -> dict | None:
    rows = list(
        db.query("SELECT id FROM persons WHERE external_id = ? AND deleted = 0", [external_id])
    )
    return get_person(db, rows[0]["id"]) if rows else None


def list_persons(
    db: sqlite_utils.Database,
    *,
    search: str | None = None,
    active: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of persons ordered by name, and the total count matching the filters."""
    where = ["p.deleted = 0"]
    params: list[Any] = []
    if search:
        where.append("(p.name LIKE ? OR p.external_id LIKE ?)")
        params += [f"%{search}%", f"%{search}%"]
    if active is not None:
        where.append("p.active = ?")
        params.append(int(active))
    clause = " AND ".join(where)
    total = db.execute(f"SELECT count(*) FROM persons p WHERE {clause}", params).fetchone()[0]
    rows = db.query(
        "SELECT p.*, (SELECT count(*) FROM faces f WHERE f.person_id = p.id) AS face_count "
        f"FROM persons p WHERE {clause} ORDER BY p.name COLLATE NOCASE, p.id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_person_row(r) for r in rows], total


def update_person(
    db: sqlite_utils.Database, person_id: str, *, audit_entry: Audit | None = None, **changes: Any
) -> dict[str, Any]:
    unknown = set(changes) - set(PERSON_FIELDS)
    if unknown:
        raise ValueError(f"unknown person fields: {', '.join(sorted(unknown))}")
    get_person(db, person_id)  # raises NotFound
    if "active" in changes:
        changes["active"] = int(bool(changes["active"]))
    changes["updated_at"] = to_iso(utc_now())
    changes["dirty"] = 1
    with db.conn:
        db["persons"].update(person_id, changes)
        _record(db, audit_entry, person_id)
    return get_person(db, person_id)


def delete_person(
    db: sqlite_utils.Database, person_id: str, *, audit_entry: Audit | None = None
) -> int:
    """Really delete a person's faces (and photos) and blank the row to a tombstone for sync.

    Returns the number of faces deleted. The tombstone keeps only the id, so the deletion can
    reach the central store; sync purges it once pushed.
    """
    get_person(db, person_id)
    with db.conn:
        files = erase_person_traces(db, person_id)
        n = db.execute("DELETE FROM faces WHERE person_id = ?", [person_id]).rowcount
        db.execute(
            "UPDATE persons SET name = '', external_id = NULL, notes = NULL, active = 0, "
            "deleted = 1, dirty = 1, updated_at = ? WHERE id = ?",
            [to_iso(utc_now()), person_id],
        )
        if audit_entry is not None:
            actor, action, details = audit_entry
            audit(db, actor, action, person_id, {**(details or {}), "faces_deleted": n})
    remove_files(files)
    truncate_wal(db)
    return n


#: Keys of an audit row's details that hold what a person is called or said about them.
PERSONAL_AUDIT_KEYS = ("name", "external_id", "notes")
#: What an erased value reads as in the audit log.
ERASED = "(erased)"


def erase_person_traces(db: sqlite_utils.Database, person_id: str) -> list[str]:
    """Remove a person's name and pictures from the rows that outlive them (no transaction of
    its own: join the deletion's). Returns the files to delete once it commits.

    Their events stay, pseudonymous: the entry log keeps that the door opened for person id X at
    that time (the id is a random uuid that names nobody once the person row is gone), but not
    the name or the face crop. Audit rows about them keep which fields changed, but the name,
    external id and notes they recorded read ``(erased)``; a quarantined sync payload about
    them is dropped.
    """
    files = [
        r[0]
        for r in db.execute(
            "SELECT photo_path FROM faces WHERE person_id = ? AND photo_path IS NOT NULL "
            "UNION ALL SELECT snapshot_path FROM events "
            "WHERE person_id = ? AND snapshot_path IS NOT NULL",
            [person_id, person_id],
        )
    ]
    db.execute(
        "UPDATE events SET person_name = NULL, snapshot_path = NULL WHERE person_id = ? "
        "AND (person_name IS NOT NULL OR snapshot_path IS NOT NULL)",
        [person_id],
    )
    for row_id, details in db.execute(
        "SELECT id, details FROM audit_log WHERE details IS NOT NULL "
        "AND (target = ? OR instr(details, ?) > 0)",  # a sync conflict names them in details
        [person_id, person_id],
    ).fetchall():
        kept = json.loads(details)
        if isinstance(kept, dict) and any(kept.get(k) for k in PERSONAL_AUDIT_KEYS):
            # which fields changed stays on record; what they said does not
            kept = {k: ERASED if k in PERSONAL_AUDIT_KEYS and v else v for k, v in kept.items()}
            db.execute("UPDATE audit_log SET details = ? WHERE id = ?", [json.dumps(kept), row_id])
    db.execute(  # a refused push of the person, or a malformed face of theirs pulled
        "UPDATE sync_quarantine SET payload = NULL "
        "WHERE payload IS NOT NULL AND (row_id = ? OR instr(payload, ?) > 0)",
        [person_id, person_id],
    )
    db.execute(
        "UPDATE device_status SET status = json_set(status, '$.last_decision.person_name', NULL) "
        "WHERE CASE WHEN json_valid(status) "
        "THEN json_extract(status, '$.last_decision.person_id') END = ?",
        [person_id],
    )
    return files


def remove_files(paths: Iterable[str]) -> None:
    """Delete files a committed change no longer refers to (photos, snapshots)."""
    for path in paths:
        Path(path).unlink(missing_ok=True)


def truncate_wal(db: sqlite_utils.Database) -> bool:
    """Copy the write-ahead log into the database and truncate it to zero bytes.

    After an erasure the WAL still holds the old pages (the name, the embeddings) until a
    checkpoint overwrites them; with ``secure_delete`` the database's own copy is zeroed. A
    reader in the middle of a transaction holds the checkpoint back: it waits for it (the busy
    timeout) and, if still blocked, says so in the log and returns False; the next erasure or
    :func:`truncate_wal` finishes the job. Returns True when the WAL is empty.
    """
    if db.conn.in_transaction:  # inside the caller's transaction: its commit comes first
        return False
    busy, log_frames, done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy or log_frames != done:
        logger.bind(frames=log_frames, checkpointed=done).warning(
            "write-ahead log not truncated (a reader was busy): erased data stays in it until "
            "the next checkpoint"
        )
        return False
    return True


def add_face(
    db: sqlite_utils.Database,
    person_id: str,
    embedding: np.ndarray,
    *,
    model: str,
    quality: float | None = None,
    photo_path: str | None = None,
    face_id: str | None = None,
) -> str:
    """Insert one face (no transaction of its own)."""
    fid = face_id or new_id()
    db["faces"].insert(
        {
            "id": fid,
            "person_id": person_id,
            "embedding": embedding_to_blob(embedding),
            "model": model,
            "quality": quality,
            "photo_path": photo_path,
            "created_at": to_iso(utc_now()),
            "dirty": 1,
        }
    )
    return fid


def list_faces(db: sqlite_utils.Database, person_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT id, person_id, model, quality, created_at, photo_path IS NOT NULL AS has_photo "
            "FROM faces WHERE person_id = ? ORDER BY created_at",
            [person_id],
        )
    )


def delete_face(
    db: sqlite_utils.Database, person_id: str, face_id: str, *, audit_entry: Audit | None = None
) -> None:
    row = db.execute(
        "SELECT photo_path FROM faces WHERE id = ? AND person_id = ?", [face_id, person_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"no face {face_id} for person {person_id}")
    with db.conn:
        db.execute("DELETE FROM faces WHERE id = ?", [face_id])  # zeroed: secure_delete
        # the person changed for sync: its set of faces is part of it
        db.execute(
            "UPDATE persons SET dirty = 1, updated_at = ? WHERE id = ?",
            [to_iso(utc_now()), person_id],
        )
        _record(db, audit_entry, person_id)
    if row[0]:
        Path(row[0]).unlink(missing_ok=True)
    truncate_wal(db)  # the embedding's old page image leaves the WAL too


@contextmanager
def _read_snapshot(db: sqlite_utils.Database):
    """One read transaction: in WAL mode every SELECT inside sees the same committed state.

    (sqlite3 begins transactions only before writes, so a plain ``with conn:`` would not.)
    """
    if db.conn.in_transaction:  # already inside the caller's transaction
        yield
        return
    db.conn.execute("BEGIN")
    try:
        yield
    finally:
        db.conn.execute("COMMIT")


def load_gallery_rows(db: sqlite_utils.Database, model: str) -> GalleryRows:
    """Read the faces of every non-deleted person, with their rules, in one read transaction."""
    with _read_snapshot(db):  # version, persons and faces agree
        version = gallery_version(db)
        persons = {}
        for row in db.query(
            "SELECT p.id, p.name, p.external_id, p.active, p.valid_from, p.valid_until, "
            "p.schedule_id, s.windows AS schedule_windows "
            "FROM persons p LEFT JOIN schedules s ON s.id = p.schedule_id AND s.deleted = 0 "
            "WHERE p.deleted = 0"
        ):
            row = dict(row)
            row["active"] = bool(row["active"])
            if row["schedule_windows"]:
                row["schedule_windows"] = json.loads(row["schedule_windows"])
            elif row["schedule_id"]:
                row["schedule_windows"] = []  # schedule gone: no window, never admit (fail closed)
            else:
                row["schedule_windows"] = None  # no schedule: any time
            persons[row["id"]] = row
        ids: list[str] = []
        blobs: list[bytes] = []
        for pid, blob in db.execute(
            "SELECT f.person_id, f.embedding FROM faces f JOIN persons p ON p.id = f.person_id "
            "WHERE p.deleted = 0 AND f.model = ? ORDER BY f.person_id",
            [model],
        ):
            ids.append(pid)
            blobs.append(blob)
    emb = (
        np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, EMBEDDING_DIM).astype(np.float32)
        if blobs
        else np.zeros((0, EMBEDDING_DIM), np.float32)
    )
    return GalleryRows(ids, emb, persons, version)


# --- schedules -------------------------------------------------------------------------------


def list_schedules(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = db.query("SELECT * FROM schedules WHERE deleted = 0 ORDER BY name")
    return [{**r, "windows": json.loads(r["windows"])} for r in rows]


class InUse(ValueError):
    """A row cannot be deleted while others still refer to it."""


def get_schedule(db: sqlite_utils.Database, schedule_id: str) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM schedules WHERE id = ? AND deleted = 0", [schedule_id]))
    if not rows:
        raise NotFound(f"no schedule with id {schedule_id}")
    return {**rows[0], "windows": json.loads(rows[0]["windows"])}


def create_schedule(
    db: sqlite_utils.Database, name: str, windows: list[dict], *, schedule_id: str | None = None
) -> str:
    """Insert a schedule (no transaction of its own); ``windows`` must be validated already."""
    now = to_iso(utc_now())
    sid = schedule_id or new_id()
    db["schedules"].insert(
        {
            "id": sid,
            "name": name,
            "windows": json.dumps(windows),
            "created_at": now,
            "updated_at": now,
            "deleted": 0,
            "dirty": 1,
        }
    )
    return sid


def update_schedule(
    db: sqlite_utils.Database,
    schedule_id: str,
    *,
    name: str | None = None,
    windows: list[dict] | None = None,
    audit_entry: Audit | None = None,
) -> dict[str, Any]:
    get_schedule(db, schedule_id)  # raises NotFound
    changes: dict[str, Any] = {"updated_at": to_iso(utc_now()), "dirty": 1}
    if name is not None:
        changes["name"] = name
    if windows is not None:
        changes["windows"] = json.dumps(windows)
    with db.conn:
        db["schedules"].update(schedule_id, changes)
        _record(db, audit_entry, schedule_id)
    return get_schedule(db, schedule_id)


def delete_schedule(
    db: sqlite_utils.Database, schedule_id: str, *, audit_entry: Audit | None = None
) -> None:
    """Tombstone a schedule no person uses (raise :class:`InUse` otherwise).

    Refused rather than unassigned: a person left without a schedule would be let in at any hour.
    """
    with db.conn:
        cur = db.execute(
            "UPDATE schedules SET deleted = 1, dirty = 1, name = 'deleted ' || id, "
            "updated_at = ? WHERE id = ? AND deleted = 0 AND NOT EXISTS "
            "(SELECT 1 FROM persons WHERE schedule_id = ? AND deleted = 0)",
            [to_iso(utc_now()), schedule_id, schedule_id],
        )
        if cur.rowcount:
            _record(db, audit_entry, schedule_id)
    if cur.rowcount == 0:
        get_schedule(db, schedule_id)  # raises NotFound
        users = db.execute(
            "SELECT count(*) FROM persons WHERE schedule_id = ? AND deleted = 0", [schedule_id]
        ).fetchone()[0]
        raise InUse(f"schedule {schedule_id} is assigned to {users} person(s)")


# --- events ----------------------------------------------------------------------------------

EVENT_COLUMNS = (
    "id",
    "ts",
    "door",
    "kind",
    "person_id",
    "person_name",
    "distance",
    "reason",
    "track_id",
    "snapshot_path",
    "details",
    "synced",
)


def insert_events(db: sqlite_utils.Database, events: Iterable[dict[str, Any]]) -> int:
    """Write a batch of events in one transaction; duplicate ids are ignored."""
    rows = []
    for ev in events:
        row = {k: ev.get(k) for k in EVENT_COLUMNS}
        row["id"] = row["id"] or new_id()
        row["ts"] = row["ts"] or to_iso(utc_now())
        row["synced"] = int(row["synced"] or 0)
        if isinstance(row["details"], (dict, list)):
            row["details"] = json.dumps(row["details"])
        rows.append(row)
    if not rows:
        return 0
    with db.conn:
        db["events"].insert_all(rows, ignore=True)
    return len(rows)


def list_events(
    db: sqlite_utils.Database,
    *,
    since: str | None = None,
    until: str | None = None,
    kinds: Sequence[str] | None = None,
    person_id: str | None = None,
    door: str | None = None,
    limit: int = 100,
    offset: int = 0,
    before: str | None = None,
) -> list[dict[str, Any]]:
    """The entry log, newest first.

    ``before`` (an event id) continues a listing after that event: a cursor that costs the same
    on page 1,000 as on page 1 and does not shift when new events arrive, unlike ``offset``.
    """
    where, params = ["1 = 1"], []
    if before:
        row = db.execute("SELECT ts, id FROM events WHERE id = ?", [before]).fetchone()
        if row is None:
            raise NotFound(f"no event with id {before}")
        where.append("(ts, id) < (?, ?)")
        params += [row[0], row[1]]
    if since:
        where.append("ts >= ?")
        params.append(to_iso(parse_iso(since)))
    if until:
        where.append("ts < ?")
        params.append(to_iso(parse_iso(until)))
    if kinds:
        where.append(f"kind IN ({', '.join('?' * len(kinds))})")
        params += list(kinds)
    if person_id:
        where.append("person_id = ?")
        params.append(person_id)
    if door:
        where.append("door = ?")
        params.append(door)
    rows = db.query(
        f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY ts DESC, id DESC "
        "LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    out = []
    for r in rows:
        r = dict(r)
        r["synced"] = bool(r["synced"])
        r["details"] = json.loads(r["details"]) if r["details"] else None
        out.append(r)
    return out


def get_event(db: sqlite_utils.Database, event_id: str) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM events WHERE id = ?", [event_id]))
    if not rows:
        raise NotFound(f"no event {event_id}")
    row = dict(rows[0])
    row["synced"] = bool(row["synced"])
    row["details"] = json.loads(row["details"]) if row["details"] else None
    return row


# --- commands (admin API -> appliance) -------------------------------------------------------


def enqueue_command(
    db: sqlite_utils.Database, kind: str, args: dict | None = None, requested_by: str | None = None
) -> int:
    with db.conn:
        cur = db.execute(
            "INSERT INTO commands (kind, args, requested_by, created_at) VALUES (?, ?, ?, ?)",
            [kind, json.dumps(args or {}), requested_by, to_iso(utc_now())],
        )
    return int(cur.lastrowid)


def pending_commands(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = db.query("SELECT * FROM commands WHERE status = 'pending' ORDER BY id")
    return [{**r, "args": json.loads(r["args"])} for r in rows]


def finish_command(
    db: sqlite_utils.Database, command_id: int, status: str, result: str | None = None
) -> None:
    with db.conn:
        db.execute(
            "UPDATE commands SET status = ?, result = ?, done_at = ? WHERE id = ?",
            [status, result, to_iso(utc_now()), command_id],
        )


def claim_command(db: sqlite_utils.Database, command_id: int) -> bool:
    """Take a pending command for carrying out; False if it expired (or was taken) meanwhile.

    The admin API expires a command it stopped waiting for; claiming first means an unlock the
    admin was told was cancelled never happens late.
    """
    with db.conn:
        cur = db.execute(
            "UPDATE commands SET status = 'running' WHERE id = ? AND status = 'pending'",
            [command_id],
        )
    return cur.rowcount == 1


def expire_command(db: sqlite_utils.Database, command_id: int) -> bool:
    """Mark a still-pending command expired so it never runs late; False if it was taken."""
    with db.conn:
        cur = db.execute(
            "UPDATE commands SET status = 'expired', done_at = ? "
            "WHERE id = ? AND status = 'pending'",
            [to_iso(utc_now()), command_id],
        )
    return cur.rowcount == 1


def get_command(db: sqlite_utils.Database, command_id: int) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))
    if not rows:
        raise NotFound(f"no command {command_id}")
    return {**rows[0], "args": json.loads(rows[0]["args"])}


# --- device status and audit -----------------------------------------------------------------


def put_status(db: sqlite_utils.Database, component: str, status: dict[str, Any]) -> None:
    """Publish a component's health row; passwords in URLs (a camera's) are masked first."""
    status = redact(status)
    with db.conn:
        db.execute(
            "INSERT INTO device_status (component, status, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(component) DO UPDATE SET status = excluded.status, "
            "updated_at = excluded.updated_at",
            [component, json.dumps(status, default=str), to_iso(utc_now())],
        )


def get_status(db: sqlite_utils.Database, component: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT status, updated_at FROM device_status WHERE component = ?", [component]
    ).fetchone()
    if row is None:
        return None
    return {**json.loads(row[0]), "updated_at": row[1]}


def audit(
    db: sqlite_utils.Database,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict | None = None,
) -> None:
    """Record who changed what (no transaction of its own: join the caller's)."""
    db.execute(
        "INSERT INTO audit_log (ts, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
        [to_iso(utc_now()), actor, action, target, json.dumps(details) if details else None],
    )


def list_audit(
    db: sqlite_utils.Database, *, actor: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """The audit log, newest first."""
    where, params = ("WHERE actor = ?", [actor]) if actor else ("", [])
    rows = db.query(
        f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [{**r, "details": json.loads(r["details"]) if r["details"] else None} for r in rows]
