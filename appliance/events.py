"""The event writer: decisions and door alarms go through a queue into the entry log (SQLite).

The door loop never waits on the disk. Rows are written in small batches; when a write fails
(disk full, a locked or broken database) the rows stay queued, the failure is logged, and the
writer retries with backoff — a decision is never dropped silently. ``close()`` flushes.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from loguru import logger

from appliance import store
from appliance.private import write_private


class EventWriter(threading.Thread):
    def __init__(
        self,
        db_path: Path,
        door: str,
        *,
        snapshot_dir: Path | None = None,
        batch: int = 100,
        min_free_mb: int = 0,
    ) -> None:
        super().__init__(name="event-writer", daemon=True)
        self.db_path = db_path
        self.door = door
        self.snapshot_dir = snapshot_dir
        self.batch = batch
        self.min_free_mb = min_free_mb
        self.snapshots_paused = False  # the disk fell under min_free_mb: no more face crops
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._pending: list[dict[str, Any]] = []
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None

    def emit(self, kind: str, *, crop: np.ndarray | None = None, **fields: Any) -> str:
        """Queue one event; returns its id (a uuid made here, so sync can push it idempotently)."""
        event = {
            "id": store.new_id(),
            "ts": store.to_iso(store.utc_now()),
            "door": self.door,
            "kind": kind,
            **fields,
        }
        if crop is not None and self.snapshot_dir is not None:
            event["_crop"] = crop
        self._q.put(event)
        logger.bind(
            door=self.door,
            track=fields.get("track_id"),
            person_id=fields.get("person_id"),
            event_id=event["id"],
        ).info("{} {}", kind, fields.get("reason") or "")  # the id, not the name: erasable
        return event["id"]

    def _save_snapshot(self, event: dict[str, Any]) -> None:
        crop = event.pop("_crop", None)
        if crop is None or self.snapshot_dir is None:
            return
        if not self._room_for_snapshot():
            return
        try:
            ok, jpg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if ok:  # a face: owner-only, like the store
                path = write_private(self.snapshot_dir / f"{event['id']}.jpg", jpg.tobytes())
                event["snapshot_path"] = str(path)
        except (OSError, cv2.error) as exc:  # a snapshot is optional; the event is not
            logger.warning("snapshot for event {} not saved: {}", event["id"], exc)

    def _room_for_snapshot(self) -> bool:
        """False while the disk is under ``min_free_mb``; the first time, an event says so."""
        from appliance.retention import disk_free_mb, snapshots_allowed

        try:
            free = disk_free_mb(self.snapshot_dir or self.db_path.parent)
        except OSError:
            return True  # cannot tell: let the write itself fail (it is optional)
        allowed = snapshots_allowed(free, self.min_free_mb)
        if not allowed and not self.snapshots_paused:
            self.snapshots_paused = True
            logger.bind(free_mb=round(free), min_free_mb=self.min_free_mb).warning(
                "disk nearly full: snapshots stop until space is freed; decisions go on"
            )
            self._pending.append(
                {
                    "id": store.new_id(),
                    "ts": store.to_iso(store.utc_now()),
                    "door": self.door,
                    "kind": "snapshots_paused",
                    "reason": "disk_low",
                    "details": {"free_mb": round(free), "min_free_mb": self.min_free_mb},
                }
            )
        elif allowed and self.snapshots_paused:
            self.snapshots_paused = False
            logger.bind(free_mb=round(free)).info("disk has room again: snapshots resume")
        return allowed

    def _take(self, item: dict[str, Any] | None) -> bool:
        """Move one queued item to the pending batch; False for the stop marker."""
        if item is None:
            return False
        self._save_snapshot(item)
        self._pending.append(item)
        return True

    def run(self) -> None:
        db = None  # opened on first write, and reopened after a failure (full disk, I/O error)
        backoff = 0.0  # seconds to wait before the next write attempt after a failure
        next_try = 0.0
        stopping = False
        try:
            while True:
                wait = None
                if self._pending:
                    wait = max(0.0, next_try - time.monotonic())
                try:
                    if not self._take(self._q.get(timeout=wait)):
                        stopping = True
                    while not stopping:  # drain whatever is already queued
                        if not self._take(self._q.get_nowait()):
                            stopping = True
                except queue.Empty:
                    pass
                if self._pending and time.monotonic() >= next_try:
                    try:
                        if db is None:
                            db = store.open_db(self.db_path, migrate_schema=False)
                        for i in range(0, len(self._pending), self.batch):
                            store.insert_events(db, self._pending[i : i + self.batch])
                        self.written += len(self._pending)
                        self._pending.clear()
                        if backoff:
                            logger.info("entry log writable again; all kept events written")
                        backoff = 0.0
                        self.last_error = None
                    except Exception as exc:  # disk full, I/O error: keep the rows, retry
                        error = f"{type(exc).__name__}: {exc}"
                        if error != self.last_error:
                            logger.error(
                                "entry log write failed ({}); {} event(s) kept, retrying",
                                error,
                                len(self._pending),
                            )
                        # the error first: whoever sees the failure counted can read it
                        self.last_error = error
                        self.failures += 1
                        if db is not None:
                            db.conn.close()
                            db = None
                        if stopping:
                            break
                        backoff = min(5.0, max(0.2, backoff * 2))
                        next_try = time.monotonic() + backoff
                        continue
                if stopping and not self._pending:
                    break
        finally:
            if self._pending:
                logger.error("{} event(s) could not be written before stop", len(self._pending))
            if db is not None:
                db.conn.close()

    def close(self, timeout: float = 10.0) -> None:
        """Flush everything queued and stop."""
        self._q.put(None)
        self.join(timeout)
