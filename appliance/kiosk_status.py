"""The kiosk's health as others see it: the frame rate it decides at, and the ``appliance`` status
row (door, camera, gallery, last decision, ...) that the API, the console and ``doctor`` read.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from loguru import logger

from appliance import store

FPS_WINDOW_S = 5.0  # the frame rate shown is over the last few seconds


class FrameRate:
    """Processed frames per second over the last :data:`FPS_WINDOW_S`, safe across threads."""

    def __init__(self) -> None:
        self._times: deque[float] = deque(maxlen=60)
        self._lock = threading.Lock()
        self._last_frame_at: datetime | None = None

    def tick(self) -> None:
        """The frame loop processed a frame now."""
        with self._lock:
            self._times.append(time.monotonic())
            self._last_frame_at = store.utc_now()

    def read(self) -> tuple[float, datetime | None]:
        """``(frames per second, wall time of the last processed frame)``."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._times if now - t <= FPS_WINDOW_S]
            last_frame_at = self._last_frame_at
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
        return fps, last_frame_at


def publish(db, make_status: Callable[[], dict[str, Any]], *, stopped: bool = False) -> None:
    """Build and write the status row; a failure is logged, never raised (the door goes on)."""
    try:
        status = make_status()
        if stopped:
            status["running"] = False
        store.put_status(db, "appliance", status)
    except Exception as exc:
        logger.warning("status not published: {}", exc)
