"""People: who may enter (list with search/paging/active filter, create, read, update, delete)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from admin_api.auth import actor, viewer_allowed
from admin_api.errors import bad_request
from admin_api.models import (
    Deleted,
    PeopleQuery,
    Person,
    PersonCreate,
    PersonPage,
    PersonUpdate,
    dump,
)
from admin_api.openapi import doc
from admin_api.state import db
from admin_api.validation import parse_body, parse_query
from appliance import store

bp = Blueprint("people", __name__)


def person_json(row: dict[str, Any]) -> dict[str, Any]:
    return dump(Person, row)


def load_person(person_id: str) -> dict[str, Any]:
    return store.get_person(db(), person_id)


def _check_schedule(schedule_id: str | None) -> None:
    if schedule_id is None:
        return
    try:
        store.get_schedule(db(), schedule_id)
    except store.NotFound:  # the body names a schedule that is not there: bad input, not 404
        raise bad_request(f"schedule_id: no schedule with id {schedule_id}") from None


@bp.get("/people")
@viewer_allowed
@doc("List people (search, active filter, paging)", "people", PersonPage, query=PeopleQuery)
def list_people() -> Response:
    q = parse_query(PeopleQuery)
    rows, total = store.list_persons(
        db(), search=q.search, active=q.active, limit=q.limit, offset=q.offset
    )
    return jsonify(
        {
            "items": [person_json(r) for r in rows],
            "total": total,
            "limit": q.limit,
            "offset": q.offset,
        }
    )


@bp.post("/people")
@doc("Create a person", "people", Person, status=201, body=PersonCreate, errors=(409,))
def create_person() -> tuple[Response, int, dict[str, str]]:
    body = parse_body(PersonCreate)
    body.check_dates()
    _check_schedule(body.schedule_id)
    conn = db()
    with conn.conn:
        pid = store.create_person(conn, **body.model_dump())
        store.audit(conn, actor(), "person.create", pid, body.model_dump())
    location = url_for("people.get_person", person_id=pid)
    return jsonify(person_json(store.get_person(conn, pid))), 201, {"Location": location}


@bp.get("/people/<person_id>")
@viewer_allowed
@doc("Read a person", "people", Person, errors=(404,))
def get_person(person_id: str) -> Response:
    return jsonify(person_json(load_person(person_id)))


@bp.patch("/people/<person_id>")
@doc(
    "Update a person (only the fields sent)", "people", Person, body=PersonUpdate, errors=(404, 409)
)
def update_person(person_id: str) -> Response:
    body = parse_body(PersonUpdate)
    current = load_person(person_id)
    changes = body.model_dump(exclude_unset=True)
    body.check_dates(current)
    if "schedule_id" in changes:
        _check_schedule(changes["schedule_id"])
    if not changes:
        return jsonify(person_json(current))
    row = store.update_person(
        db(), person_id, audit_entry=(actor(), "person.update", changes), **changes
    )
    return jsonify(person_json(row))


@bp.delete("/people/<person_id>")
@doc("Delete a person and really delete their faces", "people", Deleted, errors=(404,))
def delete_person(person_id: str) -> Response:
    faces = store.delete_person(db(), person_id, audit_entry=(actor(), "person.delete", None))
    return jsonify({"id": person_id, "deleted": True, "faces_deleted": faces})
