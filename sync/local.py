"""The local store's side of sync: read the outbox, apply pulled pages, record the outcome.

Every function here is a short transaction on the shared SQLite file, so the door loop (another
process) never waits long on sync.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlite_utils
from loguru import logger

from appliance.store import (
    audit,
    blob_to_embedding,
    embedding_to_blob,
    erase_person_traces,
    get_state,
    remove_files,
    to_iso,
    truncate_wal,
    utc_now,
)
from sync import plan

CURSOR_KEY = "pull_cursor"


def pull_cursor(db: sqlite_utils.Database) -> int:
    return int(get_state(db, CURSOR_KEY) or 0)


def quarantine(
    db: sqlite_utils.Database,
    direction: str,
    kind: str,
    row_id: str | None,
    error: str,
    payload: Any = None,
) -> None:
    """Keep a refused or malformed row for the admin (no transaction of its own)."""
    db.execute(
        "INSERT INTO sync_quarantine (ts, direction, kind, row_id, error, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            to_iso(utc_now()),
            direction,
            kind,
            row_id,
            error,
            json.dumps(payload, default=str) if payload is not None else None,
        ],
    )


# --- events (the outbox) --------------------------------------------------------------------


def next_events(db: sqlite_utils.Database, after_rowid: int, limit: int) -> list[dict[str, Any]]:
    """The next unsent, unrefused events in insertion order (keyset paging on rowid)."""
    return list(
        db.query(
            "SELECT rowid AS _rowid, * FROM events WHERE synced = 0 AND sync_error IS NULL "
            "AND rowid > ? ORDER BY rowid LIMIT ?",
            [after_rowid, limit],
        )
    )


def record_event_outcome(
    db: sqlite_utils.Database, synced: list[str], refused: dict[str, str], payloads: dict[str, Any]
) -> None:
    """Mark confirmed events synced and refused ones quarantined, in one transaction."""
    with db.conn:
        for start in range(0, len(synced), 500):
            chunk = synced[start : start + 500]
            db.execute(
                f"UPDATE events SET synced = 1 WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )
        for event_id, reason in refused.items():
            db.execute("UPDATE events SET sync_error = ? WHERE id = ?", [reason, event_id])
            quarantine(db, "push", "event", event_id, reason, payloads.get(event_id))


def backlog(db: sqlite_utils.Database) -> int:
    return db.execute(
        "SELECT count(*) FROM events WHERE synced = 0 AND sync_error IS NULL"
    ).fetchone()[0]


def recent_quarantine(db: sqlite_utils.Database, limit: int = 5) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT ts, direction, kind, row_id, error FROM sync_quarantine "
            "ORDER BY id DESC LIMIT ?",
            [limit],
        )
    )


def quarantined(db: sqlite_utils.Database) -> dict[str, int]:
    rows = db.execute(
        "SELECT direction, count(*) FROM sync_quarantine GROUP BY direction"
    ).fetchall()
    return {d: n for d, n in rows}


# --- people going up ------------------------------------------------------------------------


def people_to_push(
    db: sqlite_utils.Database, limit: int, after: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """Persons changed here (or whose faces changed), not refused in their current version.

    Ordered by (updated_at, id); ``after`` is the last (updated_at, id) of the previous page, so
    a push pages through the backlog: rows of an earlier page that are still waiting (a face
    added while their push was in flight) cannot fill every later page and hide the rest.
    """
    cursor = "AND (p.updated_at, p.id) > (?, ?) " if after else ""
    return list(
        db.query(
            "SELECT p.* FROM persons p WHERE (p.dirty = 1 OR EXISTS "
            "(SELECT 1 FROM faces f WHERE f.person_id = p.id AND f.dirty = 1)) "
            "AND (p.sync_refused_at IS NULL OR p.sync_refused_at <> p.updated_at) "
            f"{cursor}ORDER BY p.updated_at, p.id LIMIT ?",
            [*(after or ()), limit],
        )
    )


def faces_of(
    db: sqlite_utils.Database, person_id: str
) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    rows = list(
        db.query(
            "SELECT id, model, quality, embedding FROM faces WHERE person_id = ? ORDER BY id",
            [person_id],
        )
    )
    embeddings = {r["id"]: blob_to_embedding(r["embedding"]).tolist() for r in rows}
    return rows, embeddings


def record_people_outcome(
    db: sqlite_utils.Database,
    sent: list[dict[str, Any]],
    versions: dict[str, dict[str, Any]],
    reply: dict[str, Any],
) -> dict:
    """Apply push_people's reply: confirmed, conflicting (centre wins) and refused persons.

    ``versions`` maps person id -> the local updated_at and face ids that were sent, so a person
    edited again while the push was in flight stays dirty and goes up again.
    """
    counts = {"accepted": 0, "conflicts": 0, "refused": 0}
    with db.conn:
        for item in reply.get("accepted") or []:
            pid = str(item.get("id"))
            sent_v = versions.get(pid)
            if sent_v is None:
                continue
            counts["accepted"] += 1
            _confirm_pushed(db, pid, sent_v, item.get("central_version"))
        for item in reply.get("conflicts") or []:
            counts["conflicts"] += 1
            _drop_conflicting(db, str(item.get("id")), item, versions)
        for item in reply.get("rejected") or []:
            counts["refused"] += 1
            _quarantine_refused(db, str(item.get("id")), item, sent, versions)
    return counts


def _confirm_pushed(
    db: sqlite_utils.Database, pid: str, sent_v: dict[str, Any], central: Any
) -> None:
    """The centre took this person: clean, unless it was edited again while the push flew."""
    if sent_v["deleted"]:
        db.execute(
            "DELETE FROM persons WHERE id = ? AND deleted = 1 AND updated_at = ?",
            [pid, sent_v["updated_at"]],
        )
        return
    cur = db.execute(
        "UPDATE persons SET dirty = 0, central_version = ?, sync_refused_at = NULL "
        "WHERE id = ? AND updated_at = ?",
        [central, pid, sent_v["updated_at"]],
    )
    if cur.rowcount == 0:  # edited meanwhile: keep it dirty, on top of the new version
        db.execute("UPDATE persons SET central_version = ? WHERE id = ?", [central, pid])
    if sent_v["faces"]:
        marks = ",".join("?" * len(sent_v["faces"]))
        db.execute(
            f"UPDATE faces SET dirty = 0 WHERE person_id = ? AND id IN ({marks})",
            [pid, *sent_v["faces"]],
        )


def _drop_conflicting(
    db: sqlite_utils.Database,
    pid: str,
    item: dict[str, Any],
    versions: dict[str, dict[str, Any]],
) -> None:
    # The centre wins: drop the local change; the next pull brings the central copy.
    db.execute("UPDATE persons SET dirty = 0 WHERE id = ?", [pid])
    db.execute("UPDATE faces SET dirty = 0 WHERE person_id = ?", [pid])
    audit(
        db,
        "sync",
        "sync_conflict",
        pid,
        {
            "rule": "central wins",
            "central_version": item.get("central_version"),
            "local_base_version": (versions.get(pid) or {}).get("base_version"),
        },
    )
    logger.warning("person {} changed here and centrally: the central copy wins", pid)


def _quarantine_refused(
    db: sqlite_utils.Database,
    pid: str,
    item: dict[str, Any],
    sent: list[dict[str, Any]],
    versions: dict[str, dict[str, Any]],
) -> None:
    sent_v = versions.get(pid) or {}
    db.execute("UPDATE persons SET sync_refused_at = updated_at WHERE id = ?", [pid])
    payload = next((p for p in sent if p["id"] == pid), None)
    if payload:
        payload = {**payload, "faces": [f["id"] for f in payload["faces"]]}
    quarantine(db, "push", "person", pid, str(item.get("error")), payload)
    logger.bind(person=pid, version=sent_v.get("updated_at")).error(
        "the centre refused person {}: {}", pid, item.get("error")
    )


# --- pulled pages ---------------------------------------------------------------------------


@dataclass
class PageStats:
    applied: int = 0
    deleted: int = 0
    conflicts: int = 0
    malformed: int = 0
    kept_local: int = 0
    photos: list[str] = field(default_factory=list)


def apply_page(db: sqlite_utils.Database, changes: list[Any], next_cursor: int) -> PageStats:
    """Apply one page in one transaction and move the cursor in that same transaction.

    A crash before the commit leaves both the rows and the cursor as they were; after it, both
    moved. A malformed row is quarantined and skipped; the rest of the page still applies.
    """
    stats = PageStats()
    with db.conn:
        if not db.conn.in_transaction:
            db.execute("BEGIN IMMEDIATE")  # so that a row's RELEASE never commits the page
        for change in changes:
            kind = change.get("kind") if isinstance(change, dict) else None
            row = change.get("row") if isinstance(change, dict) else None
            db.execute("SAVEPOINT sync_row")  # a row applies entirely or not at all
            try:
                change_no = change["change_no"]
                if not isinstance(change_no, int):
                    raise plan.MalformedRow(f"change_no {change_no!r} is not a number")
                if kind == "person":
                    _apply_person(db, plan.parse_person(row), change_no, stats)
                elif kind == "face":
                    _apply_face(db, plan.parse_face(row), change_no, stats)
                elif kind == "schedule":
                    _apply_schedule(db, plan.parse_schedule(row), change_no, stats)
                else:
                    raise plan.MalformedRow(f"unknown change kind {kind!r}")
                db.execute("RELEASE sync_row")
            except (
                plan.MalformedRow,
                KeyError,
                TypeError,
                ValueError,
                sqlite3.IntegrityError,
            ) as exc:
                db.execute("ROLLBACK TO sync_row")
                db.execute("RELEASE sync_row")
                stats.malformed += 1
                row_id = row.get("id") if isinstance(row, dict) else None
                quarantine(db, "pull", str(kind), str(row_id) if row_id else None, str(exc), change)
                logger.bind(
                    row_id=row_id,
                    change=change.get("change_no") if isinstance(change, dict) else None,
                ).error("skipped a malformed {} row from the centre: {}", kind, exc)
        db.execute(
            "INSERT INTO sync_state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [CURSOR_KEY, str(next_cursor)],
        )
    remove_files(stats.photos)  # after the commit: the rows that named them are gone
    if stats.deleted:
        truncate_wal(db)  # the deleted rows' old page images leave the write-ahead log
    return stats


def _ensure_schedule(db: sqlite_utils.Database, schedule_id: str) -> None:
    """A person may arrive before its schedule: hold its place with a schedule that never
    opens (deny is the safe default) until the real one arrives."""
    now = to_iso(utc_now())
    db.execute(
        "INSERT OR IGNORE INTO schedules (id, name, windows, created_at, updated_at, deleted, "
        "dirty) VALUES (?, ?, '[]', ?, ?, 0, 0)",
        [schedule_id, f"pending {schedule_id}", now, now],
    )


def _apply_person(
    db: sqlite_utils.Database, p: plan.CentralPerson, change_no: int, stats: PageStats
) -> None:
    row = db.execute("SELECT dirty, central_version FROM persons WHERE id = ?", [p.id]).fetchone()
    local = plan.LocalPerson(bool(row[0]), row[1]) if row else None
    action, conflict = plan.decide_person(local, change_no, p.deleted)
    if conflict:
        stats.conflicts += 1
        audit(
            db,
            "sync",
            "sync_conflict",
            p.id,
            {
                "rule": "central wins",
                "central_version": change_no,
                "local_base_version": local.central_version if local else None,
                "central_deleted": p.deleted,
            },
        )
        logger.warning("person {} changed here and centrally: the central copy wins", p.id)
    if action is plan.PersonAction.IGNORE:
        return
    if action is plan.PersonAction.KEEP_LOCAL:
        stats.kept_local += 1
        return
    if action is plan.PersonAction.DELETE:
        # erased, not just unlisted: photos, event names and snapshots, audit details
        stats.photos += erase_person_traces(db, p.id)
        db.execute("DELETE FROM persons WHERE id = ?", [p.id])  # faces go with it (cascade)
        stats.deleted += 1
        return
    if p.schedule_id:
        _ensure_schedule(db, p.schedule_id)
    if p.external_id and _take_external_id(db, p):
        stats.conflicts += 1
    _upsert_person(db, p, change_no)
    stats.applied += 1


def _take_external_id(db: sqlite_utils.Database, p: plan.CentralPerson) -> bool:
    """The centre wins the external id too: a local holder loses it (audited). Whether one did."""
    clash = db.execute(
        "SELECT id FROM persons WHERE external_id = ? AND id <> ?", [p.external_id, p.id]
    ).fetchone()
    if not clash:
        return False
    db.execute(
        "UPDATE persons SET external_id = NULL, dirty = 1, updated_at = ? WHERE id = ?",
        [to_iso(utc_now()), clash[0]],
    )
    audit(
        db,
        "sync",
        "sync_conflict",
        clash[0],
        {"rule": "central wins", "external_id": p.external_id, "central_person": p.id},
    )
    return True


def _upsert_person(db: sqlite_utils.Database, p: plan.CentralPerson, change_no: int) -> None:
    now = to_iso(utc_now())
    db.execute(
        "INSERT INTO persons (id, name, external_id, active, valid_from, valid_until, "
        "schedule_id, notes, created_at, updated_at, deleted, dirty, central_version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?) ON CONFLICT(id) DO UPDATE SET "
        "name = excluded.name, external_id = excluded.external_id, active = excluded.active, "
        "valid_from = excluded.valid_from, valid_until = excluded.valid_until, "
        "schedule_id = excluded.schedule_id, notes = excluded.notes, "
        "updated_at = excluded.updated_at, deleted = 0, dirty = 0, "
        "central_version = excluded.central_version, sync_refused_at = NULL",
        [
            p.id,
            p.name,
            p.external_id,
            int(p.active),
            p.valid_from,
            p.valid_until,
            p.schedule_id,
            p.notes,
            now,
            now,
            change_no,
        ],
    )


def _apply_face(
    db: sqlite_utils.Database, f: plan.CentralFace, change_no: int, stats: PageStats
) -> None:
    existing = db.execute(
        "SELECT person_id, model, embedding, photo_path FROM faces WHERE id = ?", [f.id]
    ).fetchone()
    if f.deleted:
        if existing:
            if existing[3]:
                stats.photos.append(existing[3])
            db.execute("DELETE FROM faces WHERE id = ?", [f.id])
            stats.deleted += 1
        return
    person = db.execute("SELECT deleted FROM persons WHERE id = ?", [f.person_id]).fetchone()
    if person is None or person[0]:
        # The person is gone here (deleted at the door, push pending): nothing to attach to.
        logger.info("face {} skipped: person {} is not at this door", f.id, f.person_id)
        return
    blob = embedding_to_blob(np.asarray(f.embedding, dtype=np.float32))
    if existing and existing[0] == f.person_id and existing[1] == f.model and existing[2] == blob:
        db.execute(
            "UPDATE faces SET dirty = 0, central_version = ? WHERE id = ?", [change_no, f.id]
        )
        return
    if existing:
        db.execute("DELETE FROM faces WHERE id = ?", [f.id])
    db.execute(
        "INSERT INTO faces (id, person_id, embedding, model, quality, photo_path, created_at, "
        "dirty, central_version) VALUES (?, ?, ?, ?, ?, NULL, ?, 0, ?)",
        [f.id, f.person_id, blob, f.model, f.quality, to_iso(utc_now()), change_no],
    )
    stats.applied += 1


def _apply_schedule(
    db: sqlite_utils.Database, s: plan.CentralSchedule, change_no: int, stats: PageStats
) -> None:
    now = to_iso(utc_now())
    if s.deleted:
        users = db.execute(
            "SELECT count(*) FROM persons WHERE schedule_id = ? AND deleted = 0", [s.id]
        ).fetchone()[0]
        if users:
            # Still assigned here: a schedule that never opens, never "no schedule" (any hour).
            db.execute(
                "UPDATE schedules SET windows = '[]', name = ?, dirty = 0, "
                "central_version = ?, updated_at = ? WHERE id = ?",
                [f"deleted {s.id}", change_no, now, s.id],
            )
        else:
            db.execute("DELETE FROM schedules WHERE id = ?", [s.id])
        stats.deleted += 1
        return
    name = s.name
    clash = db.execute(
        "SELECT 1 FROM schedules WHERE name = ? AND id <> ?", [name, s.id]
    ).fetchone()
    if clash:
        name = f"{s.name} [{s.id[:8]}]"
    db.execute(
        "INSERT INTO schedules (id, name, windows, created_at, updated_at, deleted, dirty, "
        "central_version) VALUES (?, ?, ?, ?, ?, 0, 0, ?) ON CONFLICT(id) DO UPDATE SET "
        "name = excluded.name, windows = excluded.windows, updated_at = excluded.updated_at, "
        "deleted = 0, dirty = 0, central_version = excluded.central_version",
        [s.id, name, json.dumps(s.windows), now, now, change_no],
    )
    stats.applied += 1
