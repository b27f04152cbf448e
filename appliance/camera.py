"""Frame sources: cameras, device paths, stream URLs, video files and folders of images.

A :class:`CameraReader` thread reads the source and hands frames to the pipeline through a
:class:`FrameSlot`. Live, the slot keeps only the newest frame (a slow pipeline never sees stale
video); with ``fast`` it hands over every frame and the reader waits for the pipeline (tests and
benchmarks). A video file plays at its own frame rate unless ``fast``. Live sources that fail or
end are reopened with exponential backoff until stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from loguru import logger

from appliance.image_files import is_image_file
from appliance.redact import redact

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mjpeg", ".mjpg"}


class SourceError(RuntimeError):
    """The source cannot be opened or named; the message says how to name a working one."""


@dataclass(frozen=True)
class Frame:
    index: int  # frame number since the source (re)started
    t: float  # seconds: video time for files and folders, monotonic clock for live sources
    bgr: np.ndarray


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "camera", "stream", "file", "images"
    target: str | int
    fps: float | None = None  # folders of images: nominal frame rate

    @property
    def finite(self) -> bool:
        return self.kind in ("file", "images")

    @property
    def shown(self) -> str:
        """The source as logs and status rows show it: a password in a URL is masked."""
        return redact(str(self.target))


def parse_source(text: str) -> SourceSpec:
    """Classify a source string: camera index, /dev path, URL, video file or image folder."""
    text = text.strip()
    if text.isdigit():
        return SourceSpec("camera", int(text))
    if "://" in text:
        return SourceSpec("stream", text)
    path = Path(text)
    if text.startswith("/dev/"):
        return SourceSpec("camera", text)
    if path.is_dir():
        return SourceSpec("images", str(path), fps=10.0)
    if path.is_file():
        return SourceSpec("file", str(path))
    if path.suffix or "/" in text:  # meant as a file or folder: say plainly what is wrong
        raise SourceError(
            f"camera source {text}: file not found; name an existing video file or folder of "
            "images, a camera (0, /dev/video0) or a stream URL with --source or "
            "FACEGATE_CAMERA_SOURCE"
        )
    raise SourceError(
        f"camera source {text!r} is not a camera index, device, URL, video file or folder; "
        "name one with --source or FACEGATE_CAMERA_SOURCE (e.g. 0, /dev/video0, "
        "rtsp://host/stream, clip.mp4, a folder of JPEGs)"
    )


def iter_images(folder: Path) -> Iterator[np.ndarray]:
    for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            logger.warning("skipping unreadable image {}", path)
            continue
        yield img


class FrameSlot:
    """Hands frames from the reader to the pipeline; see the module docstring for the two modes."""

    def __init__(self, keep_all: bool) -> None:
        self._keep_all = keep_all
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame, stop: threading.Event) -> bool:
        """Offer a frame; in keep-all mode wait until the previous one was taken."""
        with self._cond:
            if self._keep_all:
                while self._frame is not None and not stop.is_set() and not self._closed:
                    self._cond.wait(0.5)
                if stop.is_set() or self._closed:
                    return False
            elif self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> Frame | None:
        """The next frame, or None after ``timeout`` seconds or once closed and drained."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed and self._frame is None


class CameraReader(threading.Thread):
    """Reads a source into a FrameSlot until stopped (or until a finite source ends)."""

    def __init__(
        self,
        spec: SourceSpec,
        slot: FrameSlot,
        stop: threading.Event,
        *,
        fast: bool = False,
        once: bool = True,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__(name="camera", daemon=True)
        self.spec, self.slot, self.stop_event = spec, slot, stop
        self.fast, self.once, self.max_backoff = fast, once, max_backoff
        self.healthy = False
        self.last_error: str | None = None
        self.frames_read = 0
        self.frames_skipped = 0  # a file played at real speed: frames already late, not decoded
        self.source_fps: float | None = None
        # a file or folder replayed (no --once) continues its clock: time never runs backwards
        self._t_base = 0.0
        self._t_end = 0.0

    def run(self) -> None:
        backoff = 0.5
        try:
            while not self.stop_event.is_set():
                produced = self._read_once()
                if self.stop_event.is_set():
                    break
                if self.spec.finite and self.once:
                    logger.info("source {} ended", self.spec.shown)
                    break
                if self.spec.finite and produced:
                    logger.info("source {} ended; playing it again", self.spec.shown)
                    continue  # a file or folder without --once loops, as a demo would
                if produced:
                    backoff = 0.5
                self.healthy = False
                logger.warning(
                    "camera source {} unavailable ({}); retrying in {:.1f} s",
                    self.spec.shown,
                    self.last_error or "ended",
                    backoff,
                )
                if self.stop_event.wait(backoff):
                    break
                backoff = min(self.max_backoff, backoff * 2)
        except Exception as exc:  # the reader must never die silently
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.exception("camera reader crashed")
        finally:
            self.healthy = False
            self.slot.close()

    def _read_once(self) -> bool:
        """Read the source until it ends or fails; True if any frame was produced."""
        if self.spec.kind == "images":
            return self._read_images()
        cap = cv2.VideoCapture(self.spec.target)
        try:
            if not cap.isOpened():
                self.last_error = "cannot open"
                return False
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.source_fps = fps if fps and 1 <= fps <= 240 else None
            pace = self.spec.kind == "file" and not self.fast and self.source_fps
            logger.info(
                "source {} opened ({} fps{})",
                self.spec.target,
                self.source_fps or "unknown",
                ", real speed" if pace else "",
            )
            start = time.monotonic()
            index = 0
            produced = False
            while not self.stop_event.is_set():
                # grab() takes the frame off the stream; retrieve() converts it to a picture,
                # which a frame played too late (a starved CPU) never needs
                ok = cap.grab()
                bgr = None
                if self.spec.finite:
                    t = index / (self.source_fps or 30.0)
                    if ok and pace and time.monotonic() - (start + t) > 1.0 / self.source_fps:
                        # more than a frame behind the clip's own clock: skip by time, as a
                        # camera would have shown the next frame by now
                        self.frames_skipped += 1
                        index += 1
                        self._t_end = self._t_base + t
                        continue
                    if ok and pace and self.stop_event.wait(max(0.0, start + t - time.monotonic())):
                        return produced
                    t = self._t_base + t
                else:
                    t = time.monotonic()
                if ok:
                    ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    self.last_error = "end of stream" if self.spec.finite else "read failed"
                    if self.spec.finite and produced:
                        self._t_base = self._t_end + 1.0 / (self.source_fps or 30.0)
                    return produced
                if self.spec.finite:
                    self._t_end = t
                self.healthy = True
                self.last_error = None
                produced = True
                self.frames_read += 1
                if not self.slot.put(Frame(index, t, bgr), self.stop_event):
                    return produced
                index += 1
            return produced
        finally:
            cap.release()

    def _read_images(self) -> bool:
        fps = self.spec.fps or 10.0
        self.source_fps = fps
        start = time.monotonic()
        produced = False
        for index, bgr in enumerate(iter_images(Path(str(self.spec.target)))):
            t = index / fps
            if not self.fast and self.stop_event.wait(max(0.0, start + t - time.monotonic())):
                return produced
            self._t_end = t = self._t_base + t
            if self.stop_event.is_set():
                return produced
            self.healthy = True
            produced = True
            self.frames_read += 1
            if not self.slot.put(Frame(index, t, bgr), self.stop_event):
                return produced
        self.last_error = "end of folder"
        if produced:
            self._t_base = self._t_end + 1.0 / fps
        return produced
