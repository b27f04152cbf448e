"""Schedules: weekly windows a person may enter in. One in use cannot be deleted."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.store.audit import Audit, record
from appliance.store.db import atomic, new_id
from appliance.store.errors import InUse, NotFound
from appliance.timeutil import to_iso, utc_now


def list_schedules(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every schedule, by name, with its windows decoded."""
    rows = db.query("SELECT * FROM schedules WHERE deleted = 0 ORDER BY name")
    return [{**r, "windows": json.loads(r["windows"])} for r in rows]


def get_schedule(db: sqlite_utils.Database, schedule_id: str) -> dict[str, Any]:
    """One schedule; :class:`NotFound` if absent or deleted."""
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
    """Rename a schedule or replace its windows; it becomes dirty (to be pushed)."""
    get_schedule(db, schedule_id)  # raises NotFound
    changes: dict[str, Any] = {"updated_at": to_iso(utc_now()), "dirty": 1}
    if name is not None:
        changes["name"] = name
    if windows is not None:
        changes["windows"] = json.dumps(windows)
    with atomic(db):
        db["schedules"].update(schedule_id, changes)
        record(db, audit_entry, schedule_id)
    return get_schedule(db, schedule_id)


def delete_schedule(
    db: sqlite_utils.Database, schedule_id: str, *, audit_entry: Audit | None = None
) -> None:
    """Tombstone a schedule no person uses (raise :class:`InUse` otherwise).

    Refused rather than unassigned: a person left without a schedule would be let in at any hour.
    """
    with atomic(db):
        cur = db.execute(
            "UPDATE schedules SET deleted = 1, dirty = 1, name = 'deleted ' || id, "
            "updated_at = ? WHERE id = ? AND deleted = 0 AND NOT EXISTS "
            "(SELECT 1 FROM persons WHERE schedule_id = ? AND deleted = 0)",
            [to_iso(utc_now()), schedule_id, schedule_id],
        )
        if cur.rowcount:
            record(db, audit_entry, schedule_id)
    if cur.rowcount == 0:
        get_schedule(db, schedule_id)  # raises NotFound
        users = db.execute(
            "SELECT count(*) FROM persons WHERE schedule_id = ? AND deleted = 0", [schedule_id]
        ).fetchone()[0]
        raise InUse(f"schedule {schedule_id} is assigned to {users} person(s)")
