"""Schedules: weekly time windows in the door's time zone, assigned to people by schedule_id."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from admin_api.auth import actor, viewer_allowed
from admin_api.models import Deleted, Schedule, ScheduleCreate, ScheduleList, ScheduleUpdate, dump
from admin_api.openapi import doc
from admin_api.state import db
from admin_api.validation import parse_body
from appliance import store

bp = Blueprint("schedules", __name__)


def schedule_json(row: dict[str, Any]) -> dict[str, Any]:
    return dump(Schedule, row)


@bp.get("/schedules")
@viewer_allowed
@doc("List schedules", "schedules", ScheduleList)
def list_schedules() -> Response:
    return jsonify({"items": [schedule_json(r) for r in store.list_schedules(db())]})


@bp.post("/schedules")
@doc("Create a schedule", "schedules", Schedule, status=201, body=ScheduleCreate, errors=(409,))
def create_schedule() -> tuple[Response, int, dict[str, str]]:
    body = parse_body(ScheduleCreate)
    windows = [w.model_dump() for w in body.windows]
    conn = db()
    with conn.conn:
        sid = store.create_schedule(conn, body.name, windows)
        store.audit(conn, actor(), "schedule.create", sid, {"name": body.name, "windows": windows})
    location = url_for("schedules.get_schedule", schedule_id=sid)
    return jsonify(schedule_json(store.get_schedule(conn, sid))), 201, {"Location": location}


@bp.get("/schedules/<schedule_id>")
@viewer_allowed
@doc("Read a schedule", "schedules", Schedule, errors=(404,))
def get_schedule(schedule_id: str) -> Response:
    return jsonify(schedule_json(store.get_schedule(db(), schedule_id)))


@bp.patch("/schedules/<schedule_id>")
@doc("Update a schedule", "schedules", Schedule, body=ScheduleUpdate, errors=(404, 409))
def update_schedule(schedule_id: str) -> Response:
    body = parse_body(ScheduleUpdate)
    windows = None if body.windows is None else [w.model_dump() for w in body.windows]
    conn = db()
    store.get_schedule(conn, schedule_id)
    details = body.model_dump(exclude_unset=True) | ({"windows": windows} if windows else {})
    row = store.update_schedule(
        conn,
        schedule_id,
        name=body.name,
        windows=windows,
        audit_entry=(actor(), "schedule.update", details),
    )
    return jsonify(schedule_json(row))


@bp.delete("/schedules/<schedule_id>")
@doc("Delete a schedule no person uses (409 otherwise)", "schedules", Deleted, errors=(404, 409))
def delete_schedule(schedule_id: str) -> Response:
    store.delete_schedule(db(), schedule_id, audit_entry=(actor(), "schedule.delete", None))
    return jsonify({"id": schedule_id, "deleted": True})
