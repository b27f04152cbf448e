"""People: who may enter (list with search/paging/active filter, create, read, update, delete)."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from admin_api.auth import actor, viewer_allowed
from admin_api.errors import bad_request, conflict, not_found
from admin_api.state import db
from admin_api.validation import (
    PersonCreate,
    PersonUpdate,
    parse_body,
    query_bool,
    query_int,
    query_text,
)
from appliance import store

bp = Blueprint("people", __name__)

PUBLIC_FIELDS = (
    "id", "name", "external_id", "active", "valid_from", "valid_until", "schedule_id", "notes",
    "face_count", "created_at", "updated_at",
)


def person_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in PUBLIC_FIELDS}


def load_person(person_id: str) -> dict[str, Any]:
    try:
        return store.get_person(db(), person_id)
    except store.NotFound as exc:
        raise not_found(str(exc)) from None


def _check_schedule(schedule_id: str | None) -> None:
    if schedule_id is None:
        return
    try:
        store.get_schedule(db(), schedule_id)
    except store.NotFound:
        raise bad_request(f"schedule_id: no schedule with id {schedule_id}") from None


def _unique_violation(exc: sqlite3.IntegrityError) -> Exception:
    if "external_id" in str(exc):
        return conflict("another person already has this external_id")
    return exc


@bp.get("/people")
@viewer_allowed
def list_people() -> Response:
    limit = query_int("limit", 50, low=1, high=500)
    offset = query_int("offset", 0, low=0, high=10**9)
    rows, total = store.list_persons(
        db(), search=query_text("search"), active=query_bool("active"), limit=limit,
        offset=offset,
    )
    return jsonify(
        {"items": [person_json(r) for r in rows], "total": total, "limit": limit,
         "offset": offset}
    )


@bp.post("/people")
def create_person() -> tuple[Response, int, dict[str, str]]:
    body = parse_body(PersonCreate)
    body.check_dates()
    _check_schedule(body.schedule_id)
    conn = db()
    try:
        with conn.conn:
            pid = store.create_person(conn, **body.model_dump())
            store.audit(conn, actor(), "person.create", pid, body.model_dump())
    except sqlite3.IntegrityError as exc:
        raise _unique_violation(exc) from None
    location = url_for("people.get_person", person_id=pid)
    return jsonify(person_json(store.get_person(conn, pid))), 201, {"Location": location}


@bp.get("/people/<person_id>")
@viewer_allowed
def get_person(person_id: str) -> Response:
    return jsonify(person_json(load_person(person_id)))


@bp.patch("/people/<person_id>")
def update_person(person_id: str) -> Response:
    body = parse_body(PersonUpdate)
    current = load_person(person_id)
    changes = body.model_dump(exclude_unset=True)
    body.check_dates(current)
    if "schedule_id" in changes:
        _check_schedule(changes["schedule_id"])
    if not changes:
        return jsonify(person_json(current))
    conn = db()
    try:
        row = store.update_person(
            conn, person_id, audit_entry=(actor(), "person.update", changes), **changes
        )
    except store.NotFound as exc:  # deleted meanwhile
        raise not_found(str(exc)) from None
    except sqlite3.IntegrityError as exc:
        raise _unique_violation(exc) from None
    return jsonify(person_json(row))


@bp.delete("/people/<person_id>")
def delete_person(person_id: str) -> Response:
    conn = db()
    try:
        faces = store.delete_person(conn, person_id, audit_entry=(actor(), "person.delete", None))
    except store.NotFound as exc:
        raise not_found(str(exc)) from None
    return jsonify({"id": person_id, "deleted": True, "faces_deleted": faces})
