"""Persons: who may enter, under which rules. Deleting one erases their traces too."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from appliance.store.audit import Audit, audit, record
from appliance.store.db import atomic, new_id, truncate_wal
from appliance.store.erasure import erase_person_traces, remove_files
from appliance.store.errors import NotFound
from appliance.timeutil import to_iso, utc_now

PERSON_FIELDS = (
    "name",
    "external_id",
    "active",
    "valid_from",
    "valid_until",
    "schedule_id",
    "notes",
)

_WITH_FACE_COUNT = (
    "SELECT p.*, (SELECT count(*) FROM faces f WHERE f.person_id = p.id) AS face_count "
    "FROM persons p "
)


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
    """A person with their face count; :class:`NotFound` if absent or deleted."""
    rows = list(db.query(_WITH_FACE_COUNT + "WHERE p.id = ? AND p.deleted = 0", [person_id]))
    if not rows:
        raise NotFound(f"no person with id {person_id}")
    return _person_row(rows[0])


def find_person_by_external_id(db: sqlite_utils.Database, external_id: str) -> dict | None:
    """The person with this external id (badge, employee number), or None."""
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
        _WITH_FACE_COUNT + f"WHERE {clause} ORDER BY p.name COLLATE NOCASE, p.id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_person_row(r) for r in rows], total


def update_person(
    db: sqlite_utils.Database, person_id: str, *, audit_entry: Audit | None = None, **changes: Any
) -> dict[str, Any]:
    """Change some of :data:`PERSON_FIELDS`; the person becomes dirty (to be pushed)."""
    unknown = set(changes) - set(PERSON_FIELDS)
    if unknown:
        raise ValueError(f"unknown person fields: {', '.join(sorted(unknown))}")
    get_person(db, person_id)  # raises NotFound
    if "active" in changes:
        changes["active"] = int(bool(changes["active"]))
    changes["updated_at"] = to_iso(utc_now())
    changes["dirty"] = 1
    with atomic(db):
        db["persons"].update(person_id, changes)
        record(db, audit_entry, person_id)
    return get_person(db, person_id)


def delete_person(
    db: sqlite_utils.Database, person_id: str, *, audit_entry: Audit | None = None
) -> int:
    """Really delete a person's faces (and photos) and blank the row to a tombstone for sync.

    Returns the number of faces deleted. The tombstone keeps only the id, so the deletion can
    reach the central store; sync purges it once pushed.
    """
    get_person(db, person_id)
    with atomic(db):
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
