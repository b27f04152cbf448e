"""The annotated live frame the console shows: the newest processed frame with a box and a name
tag per face, written as ``run/latest.jpg`` with its time in ``run/latest.json``.

The frame loop offers each processed frame (cheap: a reference under a lock); the housekeeper
draws and writes it at most :data:`LIVE_VIEW_MIN_S` apart, so the loop never waits on JPEG work.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from appliance.pipeline import FrameReport
from appliance.private import write_private
from appliance.timeutil import to_iso, utc_now

LIVE_VIEW_MIN_S = 0.25  # the annotated JPEG is replaced at most 4 times a second


class LiveView:
    """The newest processed frame and its labels, written to ``run_dir`` on request."""

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir
        self._live: tuple[np.ndarray, FrameReport] | None = None
        self._lock = threading.Lock()
        self._written: tuple[np.ndarray, FrameReport] | None = None
        self._last_write = 0.0

    def offer(self, bgr: np.ndarray, report: FrameReport) -> None:
        """Called by the frame loop for every processed frame; keeps only the newest."""
        with self._lock:
            self._live = (bgr, report)

    def write_due(self, now: float) -> None:
        """Write the newest frame if the last write is :data:`LIVE_VIEW_MIN_S` old (monotonic)."""
        if now - self._last_write >= LIVE_VIEW_MIN_S:
            self.write()
            self._last_write = now

    def write(self) -> None:
        """Draw and write the newest frame, unless it is the one written last."""
        with self._lock:
            live = self._live
        if live is None or live is self._written:
            return
        self._written = live
        bgr, report = live
        img = bgr.copy()
        for (top, right, bottom, left), label, state in report.labels:
            colour = (0, 200, 0) if state else (0, 0, 230) if state is False else (0, 200, 230)
            cv2.rectangle(img, (left, top), (right, bottom), colour, 2)
            _draw_label(img, label, left, top, colour)
        ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            return
        # when the frame was taken (give or take one housekeeping round), so that the console
        # shows its real age; written first, so a frame is never older than its stamp says
        stamp = {"ts": to_iso(utc_now()), "pid": os.getpid()}
        write_private(self._run_dir / "latest.json", json.dumps(stamp).encode())
        # owner-only (faces); replaced atomically: readers never see half a JPEG
        write_private(self._run_dir / "latest.jpg", jpg.tobytes())

    def discard(self) -> None:
        """A camera frame shows whoever stood at the door: never keep it after the kiosk stops."""
        (self._run_dir / "latest.jpg").unlink(missing_ok=True)


def _draw_label(img: np.ndarray, label: str, left: int, top: int, colour: tuple) -> None:
    """The name on a filled tag above the box: readable on any background, at any distance."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.6, img.shape[1] / 900)  # the same size on screen, whatever the resolution
    thick = max(1, round(scale * 1.5))
    (w, h), base = cv2.getTextSize(label, font, scale, thick)
    y0 = max(0, top - h - base - 6)
    cv2.rectangle(img, (left - 1, y0), (left + w + 8, y0 + h + base + 6), colour, cv2.FILLED)
    ink = (0, 0, 0) if sum(colour) > 300 else (255, 255, 255)
    cv2.putText(img, label, (left + 4, y0 + h + 3), font, scale, ink, thick, cv2.LINE_AA)
