"""Schedules: weekly time windows in the door's time zone, assigned to people by schedule_id."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from admin_api.auth import actor, viewer_allowed
from admin_api.errors import conflict, not_found
from admin_api.state import db
from admin_api.validation import ScheduleCreate, ScheduleUpdate, parse_body
from appliance import store

bp = Blueprint("schedules", __name__)


def schedule_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "name", "windows", "created_at", "updated_at")}


def _load(schedule_id: str) -> dict[str, Any]:
    try:
        return store.get_schedule(db(), schedule_id)
    except store.NotFound as exc:
        raise not_found(str(exc)) from None


def _name_taken(exc: sqlite3.IntegrityError) -> Exception:
    return conflict("a schedule with this name exists") if "name" in str(exc) else exc


@bp.get("/schedules")
@viewer_allowed
def list_schedules() -> Response:
    return jsonify({"items": [schedule_json(r) for r in store.list_schedules(db())]})


@bp.post("/schedules")
def create_schedule() -> tuple[Response, int, dict[str, str]]:
    body = parse_body(ScheduleCreate)
    windows = body.windows_json()
    conn = db()
    try:
        with conn.conn:
            sid = store.create_schedule(conn, body.name, windows)
            store.audit(conn, actor(), "schedule.create", sid, {"name": body.name,
                                                                "windows": windows})
    except sqlite3.IntegrityError as exc:
        raise _name_taken(exc) from None
    location = url_for("schedules.get_schedule", schedule_id=sid)
    return jsonify(schedule_json(store.get_schedule(conn, sid))), 201, {"Location": location}


@bp.get("/schedules/<schedule_id>")
@viewer_allowed
def get_schedule(schedule_id: str) -> Response:
    return jsonify(schedule_json(_load(schedule_id)))


@bp.patch("/schedules/<schedule_id>")
def update_schedule(schedule_id: str) -> Response:
    body = parse_body(ScheduleUpdate)
    windows = body.windows_json()
    _load(schedule_id)
    conn = db()
    try:
        details = body.model_dump(exclude_unset=True) | ({"windows": windows} if windows else {})
        row = store.update_schedule(
            conn, schedule_id, name=body.name, windows=windows,
            audit_entry=(actor(), "schedule.update", details),
        )
    except store.NotFound as exc:
        raise not_found(str(exc)) from None
    except sqlite3.IntegrityError as exc:
        raise _name_taken(exc) from None
    return jsonify(schedule_json(row))


@bp.delete("/schedules/<schedule_id>")
def delete_schedule(schedule_id: str) -> Response:
    conn = db()
    try:
        store.delete_schedule(conn, schedule_id, audit_entry=(actor(), "schedule.delete", None))
    except store.NotFound as exc:
        raise not_found(str(exc)) from None
    except store.InUse as exc:
        raise conflict(f"{exc}; assign them another schedule first") from None
    return jsonify({"id": schedule_id, "deleted": True})
