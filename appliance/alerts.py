"""Alerts the door raises itself, each written to the entry log as an event kind.

- ``unknown_streak``: N unknown faces within M minutes (someone trying again and again);
- ``liveness_attack``: repeated ``liveness_failed`` denials (a photo or screen held up);
- ``camera_down``: no frame for longer than a setting;
- ``disk_low``: the data folder's disk nearly full;
- ``sync_failing``: sync configured but not successful for longer than a setting.

``door_forced`` and ``door_held_open`` are the door controller's own events. The detectors are
pure (they take ``now``); :class:`AlertWatch` holds their little state and raises each alert once
when its condition starts, and again only after the condition cleared. The notify process sends
them like any other event (``FACEGATE_NOTIFY_ON``).
"""

from __future__ import annotations

import shutil
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from appliance.store import parse_iso

UNKNOWN_STREAK = "unknown_streak"
LIVENESS_ATTACK = "liveness_attack"
CAMERA_DOWN = "camera_down"
DISK_LOW = "disk_low"
SYNC_FAILING = "sync_failing"
ALERT_KINDS = (UNKNOWN_STREAK, LIVENESS_ATTACK, CAMERA_DOWN, DISK_LOW, SYNC_FAILING)


@dataclass(frozen=True)
class Alert:
    kind: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


# --- pure detectors ----------------------------------------------------------------------------


class Streak:
    """True when ``count`` observations fall within ``window_s``; then it starts counting again."""

    def __init__(self, count: int, window_s: float) -> None:
        self.count, self.window_s = count, window_s
        self.times: deque[float] = deque()

    def observe(self, now: float) -> bool:
        if self.count <= 0:
            return False
        self.times.append(now)
        while self.times and now - self.times[0] > self.window_s:
            self.times.popleft()
        if len(self.times) >= self.count:
            self.times.clear()  # one alert per streak, not one per face after the Nth
            return True
        return False


def camera_down(down_since: float | None, now: float, limit_s: float) -> bool:
    """No frame since ``down_since`` (monotonic seconds, None = camera fine) for ``limit_s``."""
    return down_since is not None and now - down_since >= limit_s


def disk_low(free_bytes: int, total_bytes: int, min_free_percent: float) -> bool:
    return total_bytes > 0 and 100.0 * free_bytes / total_bytes < min_free_percent


def sync_failing_since(status: dict[str, Any] | None) -> datetime | None:
    """Since when sync has been failing, from its status row; None when it is not failing.

    Failing means: configured, and its last error is newer than its last success. Since: the
    last success, or the first error seen when it never succeeded.
    """
    if not status or status.get("configured") is False or status.get("state") == "off":
        return None
    error = status.get("last_error") or None
    if not error or not error.get("at"):
        return None
    error_at = parse_iso(error["at"])
    success = status.get("last_success")
    if success and parse_iso(success) >= error_at:
        return None
    return parse_iso(success) if success else parse_iso(status.get("first_error_at") or error["at"])


def sync_failing(status: dict[str, Any] | None, now: datetime, limit: timedelta) -> bool:
    since = sync_failing_since(status)
    return since is not None and now - since >= limit


class Latch:
    """Rising edge of a condition: True once when it becomes true, re-armed when it clears."""

    def __init__(self) -> None:
        self.on = False

    def update(self, condition: bool) -> bool:
        rising = condition and not self.on
        self.on = condition
        return rising


# --- the watcher the door runs -----------------------------------------------------------------


class AlertWatch:
    """The state of the detectors for one door; feed it decisions and periodic checks."""

    def __init__(self, settings) -> None:
        self.s = settings
        self.unknown = Streak(settings.alert_unknown_count, settings.alert_unknown_minutes * 60)
        self.liveness = Streak(settings.alert_liveness_count, settings.alert_liveness_minutes * 60)
        self.camera_since: float | None = None
        self.sync_first_error: str | None = None
        self.latches = {k: Latch() for k in (CAMERA_DOWN, DISK_LOW, SYNC_FAILING)}

    def on_decision(self, kind: str, reason: str | None, now: float) -> list[Alert]:
        """A door decision happened at ``now`` (monotonic seconds)."""
        if kind != "access_denied":
            return []
        if reason == "unknown_face" and self.unknown.observe(now):
            return [
                Alert(
                    UNKNOWN_STREAK,
                    "unknown_face",
                    {"count": self.unknown.count, "minutes": self.s.alert_unknown_minutes},
                )
            ]
        if reason == "liveness_failed" and self.liveness.observe(now):
            return [
                Alert(
                    LIVENESS_ATTACK,
                    "liveness_failed",
                    {"count": self.liveness.count, "minutes": self.s.alert_liveness_minutes},
                )
            ]
        return []

    def check(
        self,
        now: float,
        now_wall: datetime,
        *,
        camera_ok: bool,
        disk: tuple[int, int] | None,
        sync_status: dict[str, Any] | None,
    ) -> list[Alert]:
        """The periodic conditions; ``disk`` is (free, total) bytes of the data folder's disk."""
        out = []
        if camera_ok:
            self.camera_since = None
        elif self.camera_since is None:
            self.camera_since = now
        down = camera_down(self.camera_since, now, self.s.alert_camera_down_seconds)
        if self.latches[CAMERA_DOWN].update(down):
            out.append(Alert(CAMERA_DOWN, "no_frames", {"seconds": round(now - self.camera_since)}))
        if disk is not None:
            low = disk_low(disk[0], disk[1], self.s.alert_disk_free_percent)
            if self.latches[DISK_LOW].update(low):
                out.append(
                    Alert(
                        DISK_LOW,
                        "disk_nearly_full",
                        {
                            "free_percent": round(100.0 * disk[0] / disk[1], 1),
                            "free_mb": disk[0] // 2**20,
                        },
                    )
                )
        status = dict(sync_status or {})
        if sync_failing_since(status) is None:
            self.sync_first_error = None
        elif self.sync_first_error is None:
            self.sync_first_error = (status.get("last_error") or {}).get("at")
        status["first_error_at"] = self.sync_first_error
        limit = timedelta(minutes=self.s.alert_sync_failing_minutes)
        if self.latches[SYNC_FAILING].update(sync_failing(status, now_wall, limit)):
            error = status.get("last_error") or {}
            out.append(
                Alert(
                    SYNC_FAILING,
                    str(error.get("step") or "sync"),
                    {
                        "last_success": status.get("last_success") or "never",
                        "error": error.get("message"),
                    },
                )
            )
        return out


def disk_usage(path) -> tuple[int, int] | None:
    """(free, total) bytes of the disk holding ``path``; None when it cannot be read."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.free, usage.total
