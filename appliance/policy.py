"""Access policy: may this (recognised) person enter now? A pure function of person and clock.

Validity dates are UTC instants; weekly schedules are in the door's local time zone. A schedule
window is ``{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}`` with 0 = Monday; ``end`` may be
"24:00", and an ``end`` before ``start`` runs past midnight into the next day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.timeutil import parse_iso

GRANTED = "access_granted"
DENIED = "access_denied"


@dataclass(frozen=True)
class Decision:
    granted: bool
    reason: str | None  # None when granted; else disabled, not_yet_valid, expired, ...

    @property
    def kind(self) -> str:
        return GRANTED if self.granted else DENIED


def _minutes(text: str) -> int:
    hh, mm = text.split(":")
    h, m = int(hh), int(mm)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m != 0):
        raise ValueError(f"bad time of day {text!r}")
    return h * 60 + m


def validate_windows(windows: Any) -> list[dict[str, Any]]:
    """Check a schedule's windows and return them normalised; ValueError says what is wrong."""
    if not isinstance(windows, list):
        raise ValueError("windows must be a list")
    out = []
    for i, w in enumerate(windows):
        if not isinstance(w, Mapping) or set(w) != {"days", "start", "end"}:
            raise ValueError(f"window {i}: needs exactly days, start and end")
        days = w["days"]
        if (
            not isinstance(days, list)
            or not days
            or not all(isinstance(d, int) and 0 <= d <= 6 for d in days)
        ):
            raise ValueError(f"window {i}: days must be a non-empty list of 0 (Mon) .. 6 (Sun)")
        try:
            start, end = _minutes(str(w["start"])), _minutes(str(w["end"]))
        except ValueError as exc:
            raise ValueError(f"window {i}: {exc}") from None
        if start == end or start == 24 * 60:
            raise ValueError(f"window {i}: start and end must differ and start before 24:00")
        out.append({"days": sorted(set(days)), "start": w["start"], "end": w["end"]})
    return out


def in_schedule(windows: Sequence[Mapping[str, Any]], local: datetime) -> bool:
    """Is the local wall-clock time inside any window (windows past midnight included)?"""
    minute = local.hour * 60 + local.minute
    today = local.weekday()
    yesterday = (today - 1) % 7
    for w in windows:
        start, end = _minutes(w["start"]), _minutes(w["end"])
        if start < end:
            if today in w["days"] and start <= minute < end:
                return True
        else:  # runs past midnight: [start, 24:00) on its day, [00:00, end) the next day
            if today in w["days"] and minute >= start:
                return True
            if yesterday in w["days"] and minute < end:
                return True
    return False


def decide(
    person: Mapping[str, Any],
    now: datetime,
    tz: ZoneInfo,
    since_last_grant: float | None = None,
    cooldown: float = 0.0,
) -> Decision:
    """Decide for a recognised person at ``now`` (aware UTC datetime).

    ``person`` carries active, valid_from, valid_until (ISO text or None) and schedule_windows
    (None = no schedule = any time). ``since_last_grant`` is the seconds since this person was
    last let in, on a monotonic clock (the caller's frame time: an NTP step on a Pi with no RTC
    must neither block nor repeat a grant). Within ``cooldown`` seconds the reason is
    "cooldown": the door is already open for them; the caller does not log it again.
    """
    if not person.get("active", False):
        return Decision(False, "disabled")
    if person.get("valid_from") and now < parse_iso(person["valid_from"]):
        return Decision(False, "not_yet_valid")
    if person.get("valid_until") and now >= parse_iso(person["valid_until"]):
        return Decision(False, "expired")
    windows = person.get("schedule_windows")
    if windows is not None and not in_schedule(windows, now.astimezone(tz)):
        return Decision(False, "outside_schedule")
    if since_last_grant is not None and 0 <= since_last_grant < cooldown:
        return Decision(False, "cooldown")
    return Decision(True, None)
