"""The OpenAPI 3.1 document of the admin API, written out here and served at /api/v1/openapi.json.

Request bodies come from the pydantic models that validate them; a test checks that every Flask
route is in this document and every operation here is a route, and that each operation's
``x-role`` is the role its view really requires.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel

from admin_api import validation as v

P = "/api/v1"
#: appliance.enroll.REFUSAL_MESSAGES' codes (a test keeps them equal; importing enroll here would
#: load the face models in every API process at start-up).
PHOTO_REFUSALS = (
    "not_an_image", "too_large", "decompression_bomb", "no_face", "several_faces",
    "face_too_small", "face_too_blurry", "matches_other_person", "duplicate",
)
JSON = "application/json"


def _strip_null_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip_null_defaults(val) for k, val in node.items()
            if not (k == "default" and val is None)
        }
    if isinstance(node, list):
        return [_strip_null_defaults(x) for x in node]
    return node


def _model_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return _strip_null_defaults(out)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
NUM = {"type": "number"}
TS = {"type": "string", "description": "UTC ISO-8601"}
OBJ = {"type": "object"}

ERRORS = {
    "400": ("BadRequest", "bad input; the message says what is wrong"),
    "401": ("Unauthorized", "no token, or an unknown or revoked one"),
    "403": ("Forbidden", "the token's role may not do this"),
    "404": ("NotFound", "no such item"),
    "409": ("Conflict", "conflicts with existing data (for photos: the face is another "
                        "enrolled person's)"),
    "413": ("TooLarge", "upload larger than FACEGATE_API_MAX_UPLOAD_MB, or image too large"),
    "415": ("NotAnImage", "no uploaded file is a readable image"),
    "422": ("NoUsableFace", "no uploaded photo shows exactly one usable face"),
    "429": ("TooManyFailures", "too many failed authentications from this address"),
    "502": ("UnlockFailed", "the appliance tried and could not unlock"),
    "504": ("ApplianceNotAnswering", "the appliance did not answer in time; cancelled"),
}


def _schemas() -> dict[str, Any]:
    person = {
        "type": "object",
        "required": ["id", "name", "active", "face_count", "created_at", "updated_at"],
        "properties": {
            "id": STR, "name": STR, "external_id": _nullable(STR), "active": BOOL,
            "valid_from": _nullable(TS), "valid_until": _nullable(TS),
            "schedule_id": _nullable(STR), "notes": _nullable(STR), "face_count": INT,
            "created_at": TS, "updated_at": TS,
        },
    }
    photo_result = {
        "type": "object",
        "required": ["source", "accepted", "code", "message"],
        "properties": {
            "source": STR, "accepted": BOOL,
            "code": _nullable({"type": "string", "enum": list(PHOTO_REFUSALS)}),
            "message": STR, "face_id": _nullable(STR), "quality": _nullable(NUM),
        },
    }
    error_body = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": STR, "message": STR,
            "results": {"type": "array", "items": _ref("PhotoResult")},
            "command_id": INT,
        },
    }
    event = {
        "type": "object",
        "required": ["id", "ts", "door", "kind", "synced", "has_snapshot"],
        "properties": {
            "id": STR, "ts": TS, "door": STR, "kind": STR, "person_id": _nullable(STR),
            "person_name": _nullable(STR), "distance": _nullable(NUM), "reason": _nullable(STR),
            "track_id": _nullable(INT), "details": {}, "synced": BOOL, "has_snapshot": BOOL,
        },
    }
    schedule = {
        "type": "object",
        "required": ["id", "name", "windows", "created_at", "updated_at"],
        "properties": {
            "id": STR, "name": STR, "windows": {"type": "array", "items": _ref("Window")},
            "created_at": TS, "updated_at": TS,
        },
    }
    face = {
        "type": "object",
        "required": ["id", "person_id", "model", "created_at", "has_photo"],
        "properties": {
            "id": STR, "person_id": STR, "model": STR, "quality": _nullable(NUM),
            "created_at": TS, "has_photo": BOOL,
        },
    }
    audit = {
        "type": "object",
        "required": ["id", "ts", "actor", "action"],
        "properties": {
            "id": INT, "ts": TS, "actor": STR, "action": STR, "target": _nullable(STR),
            "details": {},
        },
    }
    deleted = {
        "type": "object", "required": ["id", "deleted"],
        "properties": {"id": STR, "deleted": BOOL, "faces_deleted": INT},
    }
    return {
        **_model_schemas(v.PersonCreate, v.PersonUpdate, v.ScheduleCreate, v.ScheduleUpdate),
        "Error": {
            "type": "object", "required": ["error"], "properties": {"error": error_body},
        },
        "Person": person,
        "PersonPage": {
            "type": "object", "required": ["items", "total", "limit", "offset"],
            "properties": {"items": {"type": "array", "items": _ref("Person")}, "total": INT,
                           "limit": INT, "offset": INT},
        },
        "Face": face,
        "FaceList": {"type": "object", "required": ["items"],
                     "properties": {"items": {"type": "array", "items": _ref("Face")}}},
        "PhotoResult": photo_result,
        "EnrolResult": {
            "type": "object", "required": ["person_id", "enrolled", "results"],
            "properties": {"person_id": STR, "enrolled": INT,
                           "results": {"type": "array", "items": _ref("PhotoResult")}},
        },
        "Schedule": schedule,
        "ScheduleList": {"type": "object", "required": ["items"],
                         "properties": {"items": {"type": "array", "items": _ref("Schedule")}}},
        "Event": event,
        "EventPage": {
            "type": "object",
            "required": ["items", "limit", "offset", "next_offset", "next_before"],
            "properties": {"items": {"type": "array", "items": _ref("Event")}, "limit": INT,
                           "offset": INT, "next_offset": _nullable(INT),
                           "next_before": _nullable(STR)},
        },
        "DoorStatus": {
            "type": "object",
            "required": ["door", "appliance_online", "appliance", "sync", "gallery_version"],
            "properties": {
                "door": STR, "appliance_online": BOOL, "status_age_s": _nullable(NUM),
                "appliance": _nullable({
                    "type": "object",
                    "description": "the appliance's health row: locked, door_open, camera_ok, "
                                   "fps, gallery_size, last_decision, updated_at, ...",
                }),
                "sync": _nullable({"type": "object", "description": "sync state, when running"}),
                "gallery_version": INT,
            },
        },
        "UnlockResult": {
            "type": "object", "required": ["command_id", "status"],
            "properties": {"command_id": INT, "status": {"const": "done"},
                           "result": _nullable(STR)},
        },
        "AuditEntry": audit,
        "AuditPage": {
            "type": "object", "required": ["items", "limit", "offset"],
            "properties": {"items": {"type": "array", "items": _ref("AuditEntry")},
                           "limit": INT, "offset": INT},
        },
        "Deleted": deleted,
        "Health": {"type": "object", "required": ["status"], "properties": {"status": STR}},
        "Me": {"type": "object", "required": ["name", "role"], "properties": {
            "name": STR, "role": {"type": "string", "enum": ["admin", "viewer"]}}},
        "NotifyConfig": {"type": "object", "required": ["notify_urls", "notify_on", "outbox"],
                         "properties": {"notify_urls": {"type": "array", "items": STR},
                                        "notify_on": {"type": "array", "items": STR},
                                        "webhook_url": _nullable(STR),
                                        "mqtt_url": _nullable(STR), "outbox": OBJ}},
        "NotifyRecent": {"type": "object", "required": ["items", "limit"],
                         "properties": {"items": {"type": "array", "items": OBJ}, "limit": INT}},
        "NotifyTest": {"type": "object", "required": ["results"], "properties": {
            "results": {"type": "array", "items": {
                "type": "object", "required": ["url", "ok", "answer"],
                "properties": {"url": STR, "ok": BOOL, "answer": STR}}}}},
    }


def _json(schema_name: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(schema_name)}}}


def _op(
    summary: str, tag: str, ok: dict[str, dict], *, role: str | None = "viewer",
    errors: tuple[str, ...] = (), params: list[dict] | None = None, body: dict | None = None,
) -> dict[str, Any]:
    codes = list(errors)
    if role is not None:
        codes = ["401", "429", *(["403"] if role == "admin" else []), *codes]
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "x-role": role or "public",
        "responses": {**ok, **{c: {"$ref": f"#/components/responses/{ERRORS[c][0]}"}
                               for c in sorted(set(codes))}},
    }
    if role is None:
        op["security"] = []
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STR}


def _query(name: str, schema: dict[str, Any], description: str = "", **extra: Any) -> dict:
    out = {"name": name, "in": "query", "required": False, "schema": schema, **extra}
    if description:
        out["description"] = description
    return out


def _paging(max_limit: int, default: int) -> list[dict]:
    return [
        _query("limit", {"type": "integer", "minimum": 1, "maximum": max_limit,
                         "default": default}),
        _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0}),
    ]


def _json_body(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(schema_name)}}}


EVENT_FILTERS = [
    _query("since", {"type": "string", "format": "date-time"}, "events at or after (ISO-8601)"),
    _query("until", {"type": "string", "format": "date-time"}, "events before (ISO-8601)"),
    _query("kind", {"type": "array", "items": {"type": "string", "maxLength": 64}},
           "event kinds (repeat, or comma-separated)", explode=True, style="form"),
    _query("person_id", {"type": "string", "maxLength": 200}),
    _query("door", {"type": "string", "maxLength": 200}),
]
CSV = {"text/csv": {"schema": {"type": "string"}}}


def _paths() -> dict[str, Any]:
    pid, sid, eid, fid = _path("person_id"), _path("schedule_id"), _path("event_id"), _path(
        "face_id")
    admin = {"role": "admin"}
    index = {"get": _op("Where to go: the console, this document, the health check (no token)",
                        "system", {"200": {"description": "links", "content": {JSON: {
                            "schema": OBJ}}}}, role=None)}
    return {
        "/": index,
        f"{P}/": index,
        f"{P}/health": {"get": _op("Liveness check (no token)", "system",
                                   {"200": _json("Health")}, role=None)},
        f"{P}/me": {"get": _op("The calling token's name and role", "system",
                               {"200": _json("Me")})},
        f"{P}/openapi.json": {"get": _op("This document", "system", {"200": {
            "description": "OpenAPI 3.1", "content": {JSON: {"schema": OBJ}}}})},
        f"{P}/audit": {"get": _op(
            "Audit log: who changed what, newest first", "system", {"200": _json("AuditPage")},
            errors=("400",), params=[_query("actor", {"type": "string", "maxLength": 200}),
                                     *_paging(1000, 100)], **admin)},
        f"{P}/people": {
            "get": _op("List people (search, active filter, paging)", "people",
                       {"200": _json("PersonPage")}, errors=("400",), params=[
                           _query("search", {"type": "string", "maxLength": 200},
                                  "part of the name or external id"),
                           _query("active", {"type": "boolean"}), *_paging(500, 50)]),
            "post": _op("Create a person", "people", {"201": _json("Person", "Created")},
                        errors=("400", "409"), body=_json_body("PersonCreate"), **admin),
        },
        f"{P}/people/{{person_id}}": {
            "get": _op("Read a person", "people", {"200": _json("Person")}, errors=("404",),
                       params=[pid]),
            "patch": _op("Update a person (only the fields sent)", "people",
                         {"200": _json("Person")}, errors=("400", "404", "409"), params=[pid],
                         body=_json_body("PersonUpdate"), **admin),
            "delete": _op("Delete a person and really delete their faces", "people",
                          {"200": _json("Deleted")}, errors=("404",), params=[pid], **admin),
        },
        f"{P}/people/{{person_id}}/faces": {
            "get": _op("List a person's faces", "faces", {"200": _json("FaceList")},
                       errors=("404",), params=[pid]),
            "post": _op(
                "Enrol photos (multipart, field 'photos', repeatable)", "faces",
                {"201": _json("EnrolResult", "At least one photo enrolled; per-file results"),
                 "200": _json("EnrolResult", "Nothing new: the person already has these photos "
                                             "(code 'duplicate'); per-file results")},
                errors=("400", "404", "409", "413", "415", "422"), params=[pid], body={
                    "required": True,
                    "content": {"multipart/form-data": {"schema": {
                        "type": "object", "required": ["photos"],
                        "properties": {"photos": {
                            "type": "array", "minItems": 1, "maxItems": 20,
                            "items": {"type": "string", "format": "binary"}}},
                    }}},
                }, **admin),
        },
        f"{P}/people/{{person_id}}/faces/{{face_id}}": {
            "delete": _op("Delete one face", "faces", {"200": _json("Deleted")},
                          errors=("404",), params=[pid, fid], **admin),
        },
        f"{P}/schedules": {
            "get": _op("List schedules", "schedules", {"200": _json("ScheduleList")}),
            "post": _op("Create a schedule", "schedules", {"201": _json("Schedule", "Created")},
                        errors=("400", "409"), body=_json_body("ScheduleCreate"), **admin),
        },
        f"{P}/schedules/{{schedule_id}}": {
            "get": _op("Read a schedule", "schedules", {"200": _json("Schedule")},
                       errors=("404",), params=[sid]),
            "patch": _op("Update a schedule", "schedules", {"200": _json("Schedule")},
                         errors=("400", "404", "409"), params=[sid],
                         body=_json_body("ScheduleUpdate"), **admin),
            "delete": _op("Delete a schedule no person uses (409 otherwise)", "schedules",
                          {"200": _json("Deleted")}, errors=("404", "409"), params=[sid],
                          **admin),
        },
        f"{P}/events": {"get": _op(
            "The entry log, newest first (format=csv: the CSV export)", "events",
            {"200": {"description": "A page of events, or CSV",
                     "content": {JSON: {"schema": _ref("EventPage")}, **CSV}}},
            errors=("400",), params=[*EVENT_FILTERS, *_paging(1000, 100), _query(
                "before", {"type": "string", "maxLength": 64},
                "cursor: the next_before of the previous page (instead of offset)"), _query(
                "format", {"type": "string", "enum": ["json", "csv"]})])},
        f"{P}/events.csv": {"get": _op(
            "CSV export of the entry log (all matching events)", "events",
            {"200": {"description": "CSV", "content": CSV}}, errors=("400",),
            params=EVENT_FILTERS)},
        f"{P}/events/{{event_id}}": {"get": _op(
            "Read an event", "events", {"200": _json("Event")}, errors=("404",), params=[eid])},
        f"{P}/events/{{event_id}}/snapshot": {"get": _op(
            "The face snapshot stored with an event", "events",
            {"200": {"description": "JPEG; the X-Frame-Time header says when the appliance "
                                    "took it (UTC, ISO 8601)",
                     "headers": {"X-Frame-Time": {"schema": {"type": "string",
                                                             "format": "date-time"}}},
                     "content": {"image/jpeg": {"schema": {"type": "string",
                                                           "format": "binary"}}}}},
            errors=("404",), params=[eid])},
        f"{P}/door/status": {"get": _op(
            "Door and appliance status (lock, contact, camera, fps, gallery, last decision, "
            "sync)", "door", {"200": _json("DoorStatus")})},
        f"{P}/door/unlock": {"post": _op(
            "Unlock the door once, through the appliance (waits up to 3 s for its answer)",
            "door", {"200": _json("UnlockResult", "The appliance unlocked the door")},
            errors=("502", "504"), **admin)},
        f"{P}/door/frame": {"get": _op(
            "The latest annotated camera frame", "door",
            {"200": {"description": "JPEG; the X-Frame-Time header says when the appliance "
                                    "took it (UTC, ISO 8601)",
                     "headers": {"X-Frame-Time": {"schema": {"type": "string",
                                                             "format": "date-time"}}},
                     "content": {"image/jpeg": {"schema": {"type": "string",
                                                           "format": "binary"}}}}},
            errors=("404",))},
        # notifications (admin only): secrets masked
        f"{P}/notifications": {"get": _op(
            "Notification, webhook and MQTT settings (masked) and outbox counts",
            "notifications", {"200": _json("NotifyConfig")}, **admin)},
        f"{P}/notifications/recent": {"get": _op(
            "The latest sends and failures, newest first", "notifications",
            {"200": _json("NotifyRecent")}, errors=("400",),
            params=[_query("limit", {"type": "integer", "minimum": 1, "maximum": 500,
                                     "default": 50})], **admin)},
        f"{P}/notifications/test": {"post": _op(
            "Send a test message to every notification URL; one answer per URL",
            "notifications", {"200": _json("NotifyTest")}, **admin)},
    }


@cache
def _spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Facegate admin API",
            "version": "1",
            "description": "Manage the people, schedules and entry log of one Facegate door. "
                           "Bearer tokens: admin (everything) or viewer (read only).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
            "responses": {
                name: {"description": text, "content": {JSON: {"schema": _ref("Error")}}}
                for name, text in ERRORS.values()
            },
        },
    }


def build_spec() -> dict[str, Any]:
    """A fresh copy of the document (callers may modify it)."""
    return copy.deepcopy(_spec())
