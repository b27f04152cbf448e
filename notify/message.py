"""What a notification says: what happened, at which door, when (door's time zone), who."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.store import EVENT_COLUMNS, parse_iso

WHAT = {
    "access_granted": "Access granted",
    "access_denied": "Access denied",
    "remote_unlock": "Door unlocked remotely",
    "door_forced": "DOOR FORCED OPEN",
    "door_held_open": "Door held open",
    "door_closed": "Door closed",
    "unknown_streak": "Repeated unknown faces",
    "liveness_attack": "Possible photo/screen attack (repeated liveness failures)",
    "camera_down": "Camera down",
    "disk_low": "Disk nearly full",
    "sync_failing": "Central sync failing",
    "test": "Test message",
}

#: The fields of an event as the admin API shows them (``GET /api/v1/events``): the webhook and
#: MQTT payloads use the same shape.
EVENT_FIELDS = tuple(c for c in EVENT_COLUMNS if c != "snapshot_path")  # has_snapshot instead


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    """An event row (from the outbox join) in the API's event shape."""
    out = {k: row.get(k) for k in EVENT_FIELDS}
    if isinstance(out["details"], str):
        try:
            out["details"] = json.loads(out["details"])
        except ValueError:
            pass
    out["synced"] = bool(out["synced"])
    out["has_snapshot"] = bool(row.get("snapshot_path"))
    return out


def local_time(ts: str, tz: ZoneInfo) -> str:
    return parse_iso(ts).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def describe(kind: str) -> str:
    return WHAT.get(kind, kind.replace("_", " ").capitalize())


@dataclass
class Message:
    title: str
    body: str
    attachment: Path | None = None


def for_event(row: dict[str, Any], tz: ZoneInfo) -> Message:
    """One event as a message for people; the snapshot is attached when it was kept."""
    door = row.get("door") or "?"
    lines = [f"{describe(row['kind'])} at door {door}.", f"When: {local_time(row['ts'], tz)}"]
    if row.get("person_name"):
        lines.append(f"Who: {row['person_name']}")
    if row.get("reason"):
        lines.append(f"Reason: {row['reason']}")
    details = event_json(row)["details"]
    if isinstance(details, dict):
        lines += [f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in details.items()]
    lines.append(f"Event: {row['id']}")
    snap = row.get("snapshot_path")
    attach = Path(snap) if snap and Path(snap).is_file() else None
    return Message(f"[Facegate] {describe(row['kind'])} - {door}", "\n".join(lines), attach)


def summary(rows: list[dict[str, Any]], tz: ZoneInfo) -> Message:
    """Many events of one kind as one message (the rate limit's summary)."""
    kind, door = rows[0]["kind"], rows[0].get("door") or "?"
    first, last = rows[0]["ts"], rows[-1]["ts"]
    lines = [
        f"{len(rows)} x {describe(kind)} at door {door}",
        f"From {local_time(first, tz)} to {local_time(last, tz)}",
    ]
    who = sorted({r["person_name"] for r in rows if r.get("person_name")})
    if who:
        lines.append("Who: " + ", ".join(who))
    lines.append("(summarised: more than the rate limit allows one by one)")
    return Message(f"[Facegate] {len(rows)} x {describe(kind)} - {door}", "\n".join(lines))


_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$", re.IGNORECASE | re.DOTALL)


def mask_url(url: str) -> str:
    """An Apprise URL safe to show: the scheme, and the host only when credentials precede it.

    Many services carry their token where a host would be (``tgram://TOKEN/CHAT``), so nothing
    else of the URL is shown.
    """
    m = _SCHEME.match(url.strip())
    if not m:
        return "***"
    scheme, rest = m.group(1), m.group(2)
    authority = rest.split("/")[0].split("?")[0]
    if "@" in authority:
        host = authority.rsplit("@", 1)[1]
        return f"{scheme}://***@{host}"
    return f"{scheme}://***"
