"""Sync decisions as pure functions: what to send, how to read what came back, who wins.

Nothing here touches SQLite or the network, so every rule is unit-tested with plain values.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

from appliance.policy import validate_windows
from appliance.redact import redact  # noqa: F401  (re-exported)
from appliance.store import EMBEDDING_DIM, parse_iso, to_iso


class MalformedRow(ValueError):
    """A row that cannot be sent or applied as it is; the message says why."""


# --- events going up ------------------------------------------------------------------------

EVENT_FIELDS = (
    "id",
    "ts",
    "door",
    "kind",
    "person_id",
    "person_name",
    "distance",
    "reason",
    "track_id",
)


def event_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON the centre receives for one local event; raise MalformedRow if none can be made.

    Only what JSON cannot carry is refused here (a NaN distance would make the whole request
    invalid JSON); everything else is left for the server to judge row by row.
    """
    out = {k: row.get(k) for k in EVENT_FIELDS}
    dist = out["distance"]
    if dist is not None:
        if not isinstance(dist, (int, float)) or not math.isfinite(dist):
            raise MalformedRow(f"distance {dist!r} is not a finite number")
    details = row.get("details")
    if isinstance(details, str) and details:
        try:
            details = json.loads(details)
        except ValueError:
            details = {"text": details}  # keep what the door wrote; the log must not lose it
    if details is not None:
        try:
            json.dumps(details, allow_nan=False)
        except ValueError as exc:
            raise MalformedRow(f"details cannot be sent as JSON: {exc}") from None
    out["details"] = details
    return out


def plan_event_batch(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Split a batch into payloads to send and rows refused locally (id -> reason)."""
    payloads, refused = [], {}
    for row in rows:
        try:
            payloads.append(event_payload(row))
        except MalformedRow as exc:
            refused[row["id"]] = str(exc)
    return payloads, refused


def confirmed_ids(sent: list[dict[str, Any]], reply: Any) -> tuple[list[str], dict[str, str]]:
    """From push_events' reply: ids stored (new or already there) and ids refused (-> reason).

    A reply that does not say what happened to the batch confirms nothing.
    """
    if not isinstance(reply, dict) or not isinstance(reply.get("rejected"), list):
        raise MalformedRow(f"unexpected push_events reply: {str(reply)[:200]}")
    if reply.get("received") != len(sent):
        raise MalformedRow(f"server received {reply.get('received')} of {len(sent)} events")
    refused = {
        str(r.get("id")): str(r.get("error")) for r in reply["rejected"] if isinstance(r, dict)
    }
    return [e["id"] for e in sent if str(e["id"]) not in refused], refused


# --- people going up ------------------------------------------------------------------------


def person_payload(
    person: dict[str, Any], faces: list[dict[str, Any]], embeddings: dict[str, list[float]]
) -> dict[str, Any]:
    """One locally changed person (with all its faces) as push_people expects it."""
    return {
        "id": person["id"],
        "name": person["name"],
        "external_id": person["external_id"],
        "active": bool(person["active"]),
        "valid_from": person["valid_from"],
        "valid_until": person["valid_until"],
        "schedule_id": person["schedule_id"],
        "notes": person["notes"],
        "deleted": bool(person["deleted"]),
        "base_version": person["central_version"],
        "faces": []
        if person["deleted"]
        else [
            {
                "id": f["id"],
                "embedding": embeddings[f["id"]],
                "model": f["model"],
                "quality": f["quality"],
            }
            for f in faces
        ],
    }


# --- rows coming down -----------------------------------------------------------------------


@dataclass(frozen=True)
class CentralPerson:
    id: str
    name: str
    external_id: str | None
    active: bool
    valid_from: str | None
    valid_until: str | None
    schedule_id: str | None
    notes: str | None
    deleted: bool  # deleted centrally, or no longer allowed at this door's site


@dataclass(frozen=True)
class CentralFace:
    id: str
    person_id: str
    embedding: list[float] | None  # None when deleted
    model: str
    quality: float | None
    deleted: bool


@dataclass(frozen=True)
class CentralSchedule:
    id: str
    name: str
    windows: list[dict[str, Any]]
    deleted: bool


def _uuid(value: Any, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError):
        raise MalformedRow(f"{what} {value!r} is not a uuid") from None


def _opt_text(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise MalformedRow(f"{what} must be text, not {value!r}")


def _opt_time(value: Any, what: str) -> str | None:
    if value is None:
        return None
    try:
        return to_iso(parse_iso(str(value)))
    except ValueError:
        raise MalformedRow(f"{what} {value!r} is not a timestamp") from None


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise MalformedRow(f"{what} must be true or false, not {value!r}")


def parse_person(row: Any) -> CentralPerson:
    if not isinstance(row, dict):
        raise MalformedRow("person row is not an object")
    deleted = _bool(row.get("deleted", False), "deleted")
    pid = _uuid(row.get("id"), "person id")
    if deleted:
        return CentralPerson(pid, "", None, False, None, None, None, None, True)
    name = row.get("name")
    if not isinstance(name, str) or not name.strip():
        raise MalformedRow("a person needs a name")
    person = CentralPerson(
        id=pid,
        name=name,
        external_id=_opt_text(row.get("external_id"), "external_id"),
        active=_bool(row.get("active", True), "active"),
        valid_from=_opt_time(row.get("valid_from"), "valid_from"),
        valid_until=_opt_time(row.get("valid_until"), "valid_until"),
        schedule_id=(
            _uuid(row["schedule_id"], "schedule_id") if row.get("schedule_id") is not None else None
        ),
        notes=_opt_text(row.get("notes"), "notes"),
        deleted=False,
    )
    if person.valid_from and person.valid_until and person.valid_from > person.valid_until:
        raise MalformedRow("valid_from is after valid_until")
    return person


def parse_face(row: Any) -> CentralFace:
    if not isinstance(row, dict):
        raise MalformedRow("face row is not an object")
    fid = _uuid(row.get("id"), "face id")
    pid = _uuid(row.get("person_id"), "person id")
    deleted = _bool(row.get("deleted", False), "deleted")
    model = row.get("model")
    if deleted:
        return CentralFace(fid, pid, None, str(model or ""), None, True)
    if not isinstance(model, str) or not model:
        raise MalformedRow("a face needs a model name")
    emb = row.get("embedding")
    if not isinstance(emb, list) or len(emb) != EMBEDDING_DIM:
        size = len(emb) if isinstance(emb, list) else type(emb).__name__
        raise MalformedRow(f"embedding must be {EMBEDDING_DIM} numbers, got {size}")
    if not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in emb
    ):
        raise MalformedRow("embedding holds a value that is not a finite number")
    quality = row.get("quality")
    if quality is not None and not isinstance(quality, (int, float)):
        raise MalformedRow(f"quality {quality!r} is not a number")
    return CentralFace(fid, pid, [float(v) for v in emb], model, quality, False)


def parse_schedule(row: Any) -> CentralSchedule:
    if not isinstance(row, dict):
        raise MalformedRow("schedule row is not an object")
    sid = _uuid(row.get("id"), "schedule id")
    deleted = _bool(row.get("deleted", False), "deleted")
    name = row.get("name")
    if not isinstance(name, str) or not name.strip():
        raise MalformedRow("a schedule needs a name")
    try:
        windows = validate_windows(row.get("windows"))
    except ValueError as exc:
        raise MalformedRow(f"schedule windows: {exc}") from None
    return CentralSchedule(sid, name, windows, deleted)


def parse_page(reply: Any, after: int) -> tuple[list[dict[str, Any]], int, bool]:
    """Check a pull_changes reply's envelope: (changes, next cursor, more pages)."""
    if not isinstance(reply, dict) or not isinstance(reply.get("changes"), list):
        raise MalformedRow(f"unexpected pull_changes reply: {str(reply)[:200]}")
    nxt = reply.get("next")
    if not isinstance(nxt, int) or nxt < after:
        raise MalformedRow(f"pull_changes cursor went from {after} to {nxt!r}")
    return reply["changes"], nxt, bool(reply.get("more"))


# --- who wins -------------------------------------------------------------------------------


class PersonAction(Enum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    IGNORE = "ignore"  # a deletion of someone this door never had
    KEEP_LOCAL = "keep_local"  # our own push coming back, with newer local edits on top


@dataclass(frozen=True)
class LocalPerson:
    dirty: bool
    central_version: int | None


def decide_person(
    local: LocalPerson | None, change_no: int, central_deleted: bool
) -> tuple[PersonAction, bool]:
    """What to do with a person row from the centre, and whether it overrode a local change.

    The central copy wins: a person changed both here (dirty) and centrally is overwritten by
    the central copy and the conflict is reported. The one exception is the echo of this door's
    own push (same change number as recorded when the push was confirmed): newer local edits on
    top of it are kept and go up next.
    """
    if local is None:
        return (PersonAction.IGNORE if central_deleted else PersonAction.INSERT), False
    if local.dirty and local.central_version == change_no:
        return PersonAction.KEEP_LOCAL, False
    action = PersonAction.DELETE if central_deleted else PersonAction.UPDATE
    return action, local.dirty


# --- heartbeat ------------------------------------------------------------------------------


# --- retries --------------------------------------------------------------------------------


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: half fixed, half random, so doors never retry in step."""
    ceiling = min(cap, base * (2**attempt))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
