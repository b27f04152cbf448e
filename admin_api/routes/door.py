"""The door: status (from the appliance's status row), manual unlock, and the live frame.

The API never touches GPIO. An unlock is a row in the commands table that the appliance polls;
the request waits up to UNLOCK_WAIT_S for the appliance to mark it done or failed:

- done -> 200 with the appliance's result;
- failed -> 502 ``unlock_failed`` with the appliance's result;
- no answer -> 504 ``appliance_not_answering``, and the command is marked expired so that an
  appliance that comes back later never opens the door for a request nobody waits for any more.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, current_app, jsonify

from admin_api.auth import actor, viewer_allowed
from admin_api.errors import ApiError, not_found
from admin_api.state import db, state
from appliance import store
from appliance.redact import redact

bp = Blueprint("door", __name__)

UNLOCK_WAIT_S = 3.0
POLL_S = 0.05
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
def unlock() -> Response:
    conn = db()
    who = actor()
    command_id = store.enqueue_command(conn, "unlock", {}, requested_by=who)
    with conn.conn:
        store.audit(conn, who, "door.unlock", str(command_id))
    wait_s = current_app.config.get("UNLOCK_WAIT_S", UNLOCK_WAIT_S)
    deadline = time.monotonic() + wait_s
    command = store.get_command(conn, command_id)
    # the appliance is another process: polling its answer in the shared store is the only way
    # "running": the appliance claimed it and is pulsing the relay right now
    while command["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(POLL_S)
        command = store.get_command(conn, command_id)
    if command["status"] == "pending" and store.expire_command(conn, command_id):
        raise ApiError(
            504,
            "appliance_not_answering",
            f"the appliance did not answer within {wait_s:.0f} s; the unlock was cancelled",
            extra={"command_id": command_id},
        )
    command = store.get_command(conn, command_id)
    while command["status"] == "running" and time.monotonic() < deadline + wait_s:
        time.sleep(POLL_S)  # claimed just as we gave up: it is being carried out, wait for it
        command = store.get_command(conn, command_id)
    if command["status"] == "done":
        return jsonify({"command_id": command_id, "status": "done", "result": command["result"]})
    raise ApiError(
        502,
        "unlock_failed",
        f"the appliance could not unlock: {command['result'] or 'no reason'}",
        extra={"command_id": command_id, "status": command["status"]},
    )


@bp.get("/door/frame")
@viewer_allowed
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
