"""The door: status (from the appliance's status row), manual unlock, and the live frame.

The API never touches GPIO. An unlock is a row in the commands table that the appliance polls.
``POST /door/unlock`` answers at once (202) with the command; the client polls
``GET /door/commands/<id>`` until its status is final (no request holds a server thread):

- done: the appliance unlocked, ``result`` is its answer;
- failed: the appliance tried and could not, ``result`` says why;
- expired: nobody took it within UNLOCK_WAIT_S; a poll marks it so, and an appliance that comes
  back later never opens the door for a request the admin was told had failed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, url_for

from admin_api.auth import actor, viewer_allowed
from admin_api.errors import not_found
from admin_api.models import JPEG, Command, DoorStatus, dump
from admin_api.openapi import doc
from admin_api.state import db, state
from appliance import store
from appliance.redact import redact

bp = Blueprint("door", __name__)

#: A pending unlock that the appliance has not taken after this long is expired by the next poll.
UNLOCK_WAIT_S = 3.0
NOT_ANSWERING = "the appliance did not answer within {:.0f} s; the unlock was cancelled"
#: The appliance refreshes its status row every second or so; older than this = not running.
STATUS_STALE_S = 10.0


def _age_s(updated_at: str | None) -> float | None:
    if not updated_at:
        return None
    return (store.utc_now() - store.parse_iso(updated_at)) / timedelta(seconds=1)


def _with_person_name(conn, appliance: dict | None) -> dict | None:
    """The status row names the last person by id; show their name while they exist."""
    last = (appliance or {}).get("last_decision")
    if not isinstance(last, dict) or not last.get("person_id"):
        return appliance
    try:
        name = store.get_person(conn, str(last["person_id"]))["name"]
    except store.NotFound:  # removed since: erased, no name
        name = None
    return {**appliance, "last_decision": {**last, "person_name": name}}


@bp.get("/door/status")
@viewer_allowed
@doc(
    "Door and appliance status (lock, contact, camera, fps, gallery, last decision, sync)",
    "door",
    DoorStatus,
)
def door_status() -> Response:
    conn = db()
    appliance = store.get_status(conn, "appliance")
    age = _age_s(appliance.get("updated_at")) if appliance else None
    return jsonify(
        {
            "door": state().settings.door_name,
            # a fresh row from a running appliance; it writes running=false when it stops
            "appliance_online": age is not None
            and age <= STATUS_STALE_S
            and appliance.get("running", True) is not False,
            "status_age_s": None if age is None else round(age, 1),
            "appliance": redact(_with_person_name(conn, appliance)),
            "sync": redact(store.get_status(conn, "sync")),
            "gallery_version": store.gallery_version(conn),
        }
    )


@bp.post("/door/unlock")
@doc(
    "Unlock the door once, through the appliance: poll the command it answers with",
    "door",
    Command,
    status=202,
)
def unlock() -> tuple[Response, int, dict[str, str]]:
    conn = db()
    who = actor()
    command_id = store.enqueue_command(conn, "unlock", {}, requested_by=who)
    with conn.conn:
        store.audit(conn, who, "door.unlock", str(command_id))
    location = url_for("door.get_command", command_id=command_id)
    return jsonify(_command_json(store.get_command(conn, command_id))), 202, {"Location": location}


@bp.get("/door/commands/<int:command_id>")
@doc(
    "A command's progress: pending, running, then done, failed or expired",
    "door",
    Command,
    errors=(404,),
)
def get_command(command_id: int) -> Response:
    if command_id >= 2**63:  # beyond SQLite's integers: no such row
        raise not_found(f"no command {command_id}")
    conn = db()
    command = store.get_command(conn, command_id)
    wait_s = current_app.config.get("UNLOCK_WAIT_S", UNLOCK_WAIT_S)
    if command["status"] == "pending" and _age_s(command["created_at"]) > wait_s:
        # nobody took it in time: expire it, so an appliance that comes back later never opens
        # the door for a request the admin was told had failed
        if store.expire_command(conn, command_id):
            store.finish_command(conn, command_id, "expired", NOT_ANSWERING.format(wait_s))
        command = store.get_command(conn, command_id)
    return jsonify(_command_json(command))


def _command_json(row: dict[str, Any]) -> dict[str, Any]:
    return dump(Command, {**row, "command_id": row["id"]})


@bp.get("/door/frame")
@viewer_allowed
@doc(
    "The latest annotated camera frame",
    "door",
    JPEG,
    errors=(404,),
    description="JPEG; the X-Frame-Time header says when the appliance took it",
    headers={"X-Frame-Time": "when the appliance took the frame (UTC, ISO 8601)"},
)
def latest_frame() -> Response:
    path = state().settings.run_dir / "latest.jpg"
    try:
        # the appliance replaces the file atomically: one read gets one whole frame
        data = path.read_bytes()
    except FileNotFoundError:
        raise not_found("no live frame: the appliance is not running or has no camera") from None
    return Response(
        data,
        mimetype="image/jpeg",
        headers={"Cache-Control": "no-store", "X-Frame-Time": _frame_time(path)},
    )


def _frame_time(path) -> str:
    """When the appliance took the frame (UTC, ISO 8601): its stamp, else the file's time."""
    try:
        stamp = json.loads(path.with_suffix(".json").read_text())["ts"]
        store.parse_iso(stamp)
        return stamp
    except (OSError, ValueError, KeyError, TypeError):
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return ""
        return store.to_iso(datetime.fromtimestamp(mtime, UTC))
