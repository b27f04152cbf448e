"""Frame sources: cameras, device paths, stream URLs, video files and folders of images.

A :class:`CameraReader` thread reads the source and hands frames to the pipeline through a
:class:`FrameSlot`. Live, the pipeline gets the newest frame (a slow pipeline never sees stale
video), except while it is deciding about a face: then it may work through a short backlog of
the frames it missed (``FACEGATE_CATCH_UP_S``). With ``fast`` the slot hands over every frame
and the reader waits for the pipeline (tests and benchmarks). A video file plays at its own
frame rate unless ``fast``. Live sources that fail or end are reopened with exponential backoff
until stopped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from math import inf
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


def capture_time(pos_ms: float, now: float, last: float, max_age_s: float = 1.0) -> float:
    """A live frame's time (monotonic seconds): when it was captured, not when it was read.

    A V4L2 camera stamps each buffer with the monotonic clock (OpenCV's ``CAP_PROP_POS_MSEC``).
    Frames that waited in the driver's queue while the pipeline held the interpreter (a dlib
    encoding does) are read in a burst; their own stamps keep them apart, which liveness and
    catching up (FrameSlot) need. A stamp that is not a recent monotonic time (other backends,
    stream time of an RTSP source) or older than ``max_age_s`` is not used: then the time of
    reading is. Never earlier than ``last``, the previous frame's time.
    """
    stamp = pos_ms / 1000.0
    t = stamp if 0.0 <= now - stamp <= max_age_s else now
    return max(t, last)


def iter_images(folder: Path) -> Iterator[np.ndarray]:
    for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            logger.warning("skipping unreadable image {}", path)
            continue
        yield img


#: At most this many bytes of frames wait in a slot's backlog (about 70 frames of 640x360, 7 of
#: 1920x1080): the time limit is the setting, this keeps a large camera from eating the memory.
MAX_BACKLOG_BYTES = 48 * 1024 * 1024


class FrameSlot:
    """Hands frames from the reader to the pipeline; see the module docstring for the modes.

    Live with ``backlog_s`` > 0, the frames of the last ``backlog_s`` seconds (at most
    :data:`MAX_BACKLOG_BYTES`) stay in the slot: a pipeline that is deciding about a face and fell
    behind asks for the next frame after the one it processed (``get(after=...)``) and works
    through the face's own frames in order, instead of jumping to the newest and missing the
    moments that showed the face best. Without ``after`` it gets the newest frame and the older
    ones are dropped.
    """

    def __init__(self, keep_all: bool, backlog_s: float = 0.0) -> None:
        self._keep_all = keep_all
        self._backlog_s = 0.0 if keep_all else max(0.0, backlog_s)
        self._cond = threading.Condition()
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        self._closed = False
        self.dropped = 0  # frames never handed to the pipeline
        self.caught_up = 0  # frames handed over from the backlog (not the newest)

    @property
    def backlog_s(self) -> float:
        """Seconds of frames a pipeline may still ask for (0: only the newest)."""
        return self._backlog_s

    def put(self, frame: Frame, stop: threading.Event) -> bool:
        """Offer a frame; in keep-all mode wait until the previous one was taken."""
        with self._cond:
            if self._keep_all:
                while self._frames and not stop.is_set() and not self._closed:
                    self._cond.wait(0.5)
                if stop.is_set() or self._closed:
                    return False
            self._frames.append(frame)
            self._bytes += frame.bgr.nbytes
            self._trim(frame.t)
            self._cond.notify_all()
            return True

    def _trim(self, newest_t: float) -> None:
        """Drop what no one may ask for: all but the newest, or beyond the backlog's limits."""
        keep_from = newest_t - self._backlog_s
        while len(self._frames) > 1 and (
            self._backlog_s == 0 or self._frames[0].t < keep_from or self._bytes > MAX_BACKLOG_BYTES
        ):
            self._pop_left(dropped=True)

    def _pop_left(self, *, dropped: bool) -> Frame:
        frame = self._frames.popleft()
        self._bytes -= frame.bgr.nbytes
        self.dropped += dropped
        return frame

    def get(
        self, timeout: float, *, after: float | None = None, step_s: float = 0.0
    ) -> Frame | None:
        """The next frame, or None after ``timeout`` seconds or once closed and drained.

        ``after`` (the time of the frame last processed): the first waiting frame at least
        ``step_s`` later, so a pipeline behind the camera works through the backlog in order;
        the newest when none is that late yet. Without it: the newest frame.
        """
        with self._cond:
            if not self._frames and not self._closed:
                self._cond.wait(timeout)
            if not self._frames:
                return None
            # catching up: drop what is before the frame asked for; else all but the newest
            keep_from = after + step_s if after is not None and self._backlog_s > 0 else inf
            while len(self._frames) > 1 and self._frames[0].t < keep_from:
                self._pop_left(dropped=True)
            self.caught_up += len(self._frames) > 1
            frame = self._pop_left(dropped=False)
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed and not self._frames


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
                    if ok and pace and self._skip_late(start, t):
                        index += 1
                        continue
                    if ok and pace and self.stop_event.wait(max(0.0, start + t - time.monotonic())):
                        return produced
                    t = self._t_base + t
                else:
                    pos = cap.get(cv2.CAP_PROP_POS_MSEC) if self.spec.kind == "camera" else 0.0
                    age = 1.0 + self.slot.backlog_s
                    t = capture_time(pos, time.monotonic(), self._t_end, age)
                    self._t_end = t
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

    def _skip_late(self, start: float, t: float) -> bool:
        """A file played at real speed and more than a frame behind its own clock skips the
        frame at ``t``, as a camera would have shown the next one by now; with a backlog, only
        when it is older than the backlog (a pipeline deciding about a face may want it)."""
        fps = self.source_fps or 30.0
        if time.monotonic() - (start + t) <= max(1.0 / fps, self.slot.backlog_s):
            return False
        self.frames_skipped += 1
        self._t_end = self._t_base + t
        return True

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
