"""Retention: old events (once synced), old snapshots and a stale live frame are deleted daily;
snapshots stop on a filling disk while decisions go on; the log file rotates compressed."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
from loguru import logger

from appliance import retention, store
from appliance.events import EventWriter
from appliance.logs import configure_logging
from appliance.settings import load_settings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _event(days_ago: float, synced: int, snapshot: str | None = None) -> dict:
    return {
        "ts": store.to_iso(NOW - timedelta(days=days_ago)),
        "door": "front-door",
        "kind": "access_denied",
        "reason": "unknown_face",
        "synced": synced,
        "snapshot_path": snapshot,
    }


def test_due_once_a_day_and_after_a_clock_jump():
    assert retention.due(None, NOW)
    assert not retention.due(store.to_iso(NOW - timedelta(hours=23)), NOW)
    assert retention.due(store.to_iso(NOW - timedelta(hours=24)), NOW)
    assert retention.due(store.to_iso(NOW + timedelta(days=400)), NOW)  # clock was wrong then
    assert retention.cutoff(NOW, 0) is None


def test_old_events_go_only_once_synced_when_sync_is_configured(tmp_path):
    db = store.open_db(tmp_path / "facegate.db")
    snap = tmp_path / "snap.jpg"
    snap.write_bytes(b"jpeg")
    store.insert_events(
        db,
        [_event(100, 1, str(snap)), _event(100, 0), _event(10, 1), _event(89.9, 0)],
    )
    deleted, kept = retention.prune_events(db, NOW, 90, require_synced=True)
    assert (deleted, kept) == (1, 1)
    assert not snap.exists()  # the deleted event's face crop went with it
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    # without sync there is nothing to wait for
    assert retention.prune_events(db, NOW, 90, require_synced=False) == (1, 0)
    assert retention.prune_events(db, NOW, 0, require_synced=False) == (0, 0)  # 0 = keep all


def test_run_retention_uses_the_settings_and_records_the_run(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", snapshots_keep_days=7)
    db = store.open_db(settings.db_path)
    store.insert_events(db, [_event(91, 0), _event(1, 0)])
    settings.snapshot_dir.mkdir(parents=True)
    old, new = settings.snapshot_dir / "old.jpg", settings.snapshot_dir / "new.jpg"
    for p in (old, new):
        p.write_bytes(b"jpeg")
    eight_days = (NOW - timedelta(days=8)).timestamp()
    os.utime(old, (eight_days, eight_days))
    os.utime(new, (NOW.timestamp(), NOW.timestamp()))
    settings.run_dir.mkdir(parents=True)
    live = settings.run_dir / "latest.jpg"
    live.write_bytes(b"jpeg")
    stale = NOW.timestamp() - settings.live_frame_keep_seconds - 1
    os.utime(live, (stale, stale))

    report = retention.maybe_run(db, settings, NOW)
    assert report is not None
    assert report.events_deleted == 1  # sync is not configured: age alone decides
    assert report.snapshots_deleted == 1 and not old.exists() and new.exists()
    assert report.live_frame_deleted and not live.exists()
    assert retention.maybe_run(db, settings, NOW + timedelta(hours=1)) is None  # daily
    assert retention.maybe_run(db, settings, NOW + timedelta(days=1)) is not None


def test_snapshots_stop_on_a_filling_disk_and_an_event_says_so_once(tmp_path):
    db_path = tmp_path / "facegate.db"
    store.open_db(db_path).conn.close()
    snaps = tmp_path / "snapshots"
    writer = EventWriter(db_path, "door-1", snapshot_dir=snaps, min_free_mb=10**12)
    writer.start()
    crop = np.zeros((40, 40, 3), np.uint8)
    for _ in range(3):
        writer.emit("access_granted", person_name="ada", crop=crop)
    writer.close()
    db = store.open_db(db_path)
    kinds = [r[0] for r in db.execute("SELECT kind FROM events ORDER BY ts")]
    assert kinds.count("access_granted") == 3  # every decision is in the log
    assert kinds.count("snapshots_paused") == 1  # said once
    assert not snaps.exists() or not any(snaps.iterdir())

    writer = EventWriter(db_path, "door-1", snapshot_dir=snaps, min_free_mb=0)
    writer.start()
    writer.emit("access_granted", person_name="ada", crop=crop)
    writer.close()
    assert len(list(snaps.iterdir())) == 1  # room again: snapshots are written


def test_log_file_rotates_and_is_compressed(tmp_path):
    log = tmp_path / "logs" / "facegate.log"
    settings = load_settings(data_dir=tmp_path, log_file=log, log_rotate_mb=1, log_keep_files=2)
    configure_logging(settings)
    try:
        for i in range(9000):
            logger.info("line {} {}", i, "x" * 200)
        logger.complete()  # the enqueued lines, the rotations and compressions are done
    finally:
        logger.remove()
    gz = sorted(log.parent.glob("*.gz"))
    assert gz, list(log.parent.iterdir())
    assert len(gz) <= 2  # older ones are deleted
    assert log.exists() and log.stat().st_size < 1_100_000
