"""Retention: what the kiosk keeps, for how long, and what it stops writing when the disk fills.

A door is installed once and left alone for months: without this the entry log, the face crops
and the log file grow until the SD card is full. A daily job (run by the kiosk's housekeeper, or
by hand with ``python -m appliance prune``) deletes

- events older than ``FACEGATE_EVENTS_KEEP_DAYS`` — only once sync pushed them when sync is
  configured (an unsynced event is the only copy of that entry);
- snapshots (face crops) older than ``FACEGATE_SNAPSHOTS_KEEP_DAYS``;
- the live-view JPEG once older than ``FACEGATE_LIVE_FRAME_KEEP_SECONDS`` (a camera that stopped
  must not leave the last person at the door on disk).

The decisions of what is due are pure functions of ``now``; the deletions are thin.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlite_utils
from loguru import logger

from appliance import store
from appliance.settings import Settings

#: How often the retention job runs.
RETENTION_INTERVAL = timedelta(days=1)
#: Rows deleted per transaction, so the door's event writer never waits long for the lock.
DELETE_BATCH = 2000
STATE_KEY = "retention_last_run"


@dataclass
class RetentionReport:
    events_deleted: int = 0
    events_kept_unsynced: int = 0
    snapshots_deleted: int = 0
    live_frame_deleted: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


# --- pure decisions --------------------------------------------------------------------------


def cutoff(now: datetime, keep_days: int) -> datetime | None:
    """The oldest time still kept, or None when ``keep_days`` is 0 (keep everything)."""
    return None if keep_days <= 0 else now - timedelta(days=keep_days)


def due(last_run: str | None, now: datetime, interval: timedelta = RETENTION_INTERVAL) -> bool:
    """True when the job never ran, ran ``interval`` ago or more, or its last run is in the future
    (the clock was wrong then, e.g. a Pi without RTC before NTP)."""
    if not last_run:
        return True
    try:
        last = store.parse_iso(last_run)
    except ValueError:
        return True
    return now - last >= interval or last > now


def snapshots_allowed(free_mb: float, min_free_mb: int) -> bool:
    """Snapshots are optional; the entry log is not: stop the optional writes on a filling disk."""
    return free_mb >= min_free_mb


def disk_free_mb(path: Path) -> float:
    """Free space (for unprivileged writers) on the file system holding ``path``."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / 1_000_000


# --- deletions -------------------------------------------------------------------------------


def prune_events(
    db: sqlite_utils.Database, now: datetime, keep_days: int, *, require_synced: bool
) -> tuple[int, int]:
    """Delete events older than ``keep_days`` (and their snapshots); returns (deleted, kept
    because not yet synced)."""
    limit = cutoff(now, keep_days)
    if limit is None:
        return 0, 0
    before = store.to_iso(limit)
    synced_clause = "AND synced = 1" if require_synced else ""
    deleted = 0
    while True:
        with db.conn:
            rows = db.execute(
                f"SELECT rowid, snapshot_path FROM events WHERE ts < ? {synced_clause} LIMIT ?",
                [before, DELETE_BATCH],
            ).fetchall()
            if not rows:
                break
            db.conn.executemany("DELETE FROM events WHERE rowid = ?", [(r[0],) for r in rows])
        for _, snap in rows:
            if snap:
                Path(snap).unlink(missing_ok=True)
        deleted += len(rows)
    kept = 0
    if require_synced:
        kept = db.execute(
            "SELECT count(*) FROM events WHERE ts < ? AND synced = 0", [before]
        ).fetchone()[0]
    return deleted, kept


def prune_snapshots(snapshot_dir: Path, now: datetime, keep_days: int) -> int:
    """Delete snapshot JPEGs whose file time is older than ``keep_days``."""
    limit = cutoff(now, keep_days)
    if limit is None or not snapshot_dir.is_dir():
        return 0
    n = 0
    for entry in os.scandir(snapshot_dir):
        if entry.is_file() and entry.stat().st_mtime < limit.timestamp():
            Path(entry.path).unlink(missing_ok=True)
            n += 1
    return n


def prune_live_frame(run_dir: Path, now: datetime, keep_seconds: int) -> bool:
    """Delete the live-view JPEG when nothing replaced it for ``keep_seconds``."""
    path = run_dir / "latest.jpg"
    try:
        age = now.timestamp() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > keep_seconds:
        path.unlink(missing_ok=True)
        return True
    return False


def run_retention(db: sqlite_utils.Database, settings: Settings, now: datetime) -> RetentionReport:
    """Apply every retention setting once; record the run so the daily job knows when it ran."""
    report = RetentionReport()
    report.events_deleted, report.events_kept_unsynced = prune_events(
        db, now, settings.events_keep_days, require_synced=settings.sync_configured
    )
    report.snapshots_deleted = prune_snapshots(
        settings.snapshot_dir, now, settings.snapshots_keep_days
    )
    report.live_frame_deleted = prune_live_frame(
        settings.run_dir, now, settings.live_frame_keep_seconds
    )
    store.set_state(db, STATE_KEY, store.to_iso(now))
    log = logger.bind(**report.as_dict())
    if report.events_kept_unsynced:
        log.warning(
            "{} event(s) past retention kept because sync has not pushed them yet",
            report.events_kept_unsynced,
        )
    log.info(
        "retention: {} event(s), {} snapshot(s) deleted",
        report.events_deleted,
        report.snapshots_deleted,
    )
    return report


def maybe_run(
    db: sqlite_utils.Database, settings: Settings, now: datetime
) -> RetentionReport | None:
    """Run the retention job when a day has passed since its last run (any process may call)."""
    if not due(store.get_state(db, STATE_KEY), now):
        return None
    return run_retention(db, settings, now)
