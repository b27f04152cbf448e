"""The kiosk: camera thread -> pipeline -> door controller and entry log, until stopped.

Threads: the camera reader (newest frame only), the event writer (queue -> SQLite), and a
housekeeper that once every half second swaps in a new gallery when the store's version moved,
carries out admin commands (unlock), publishes the health row and the annotated live frame.
The frame loop itself runs on the caller's thread. One stop event ends them all; the relay goes
to its safe state on every way out.

Life cycle: the door controller is opened first (before the camera is checked and the models
load) and closed after everything that could command it, so the relay is driven to its safe
state by every start, even one that fails early, and the door contact and exit button work while
models load and while the camera is missing or reconnecting. Under systemd (``Type=notify``) the
kiosk says ``READY=1`` once it is deciding and pets the watchdog only while frames flow or the
camera reader is alive and reconnecting; a hung loop stops petting and systemd kills it.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from loguru import logger

from appliance import retention, store
from appliance.alerts import Alert, AlertWatch, disk_usage
from appliance.camera import (
    IMAGE_SUFFIXES,
    CameraReader,
    FrameSlot,
    SourceError,
    SourceSpec,
    parse_source,
)
from appliance.events import EventWriter
from appliance.faces import MODEL_NAME, DetectorConfig, FaceEngine
from appliance.health import HealthSampler
from appliance.liveness import LivenessCheck
from appliance.match import Gallery, background_cohort, use_one_blas_thread
from appliance.pipeline import FrameReport, Outcome, Pipeline
from appliance.private import write_private
from appliance.sd_notify import Notifier
from appliance.settings import Settings
from hardware.door import DoorController, DoorControllerError
from hardware.pins import PinFactoryError

HOUSEKEEPING_S = 0.5
RETENTION_CHECK_S = 60.0  # is the daily retention job due? is the live frame stale?
LIVE_VIEW_MIN_S = 0.25  # the annotated JPEG is replaced at most 4 times a second
COMMAND_MAX_AGE_S = 30.0  # an unlock asked for longer ago than this is not carried out
#: The store changed but could not be re-read for this long: stop letting anyone in, because
#: a revoked person would still be in the old gallery.
GALLERY_STALE_S = 10.0
#: Frames in a row that may fail before the kiosk gives up (and systemd restarts it).
MAX_FRAME_FAILURES = 50


def make_engine(settings: Settings) -> FaceEngine:
    return FaceEngine(
        DetectorConfig(width=settings.detect_width, upsample=settings.detect_upsample)
    )


def make_liveness_check(settings: Settings) -> LivenessCheck | None:
    if settings.liveness == "off":
        return None
    from appliance.liveness import make_liveness

    return make_liveness(settings)


def check_source(spec: SourceSpec) -> None:
    """Fail fast, with a clear message, on a source that can never give a frame."""
    if spec.kind == "file":
        cap = cv2.VideoCapture(str(spec.target))
        try:
            readable = cap.isOpened() and cap.read()[0]
        finally:
            cap.release()
        if not readable:
            raise SourceError(
                f"{spec.target} is not a video file this machine can decode; name a video file, "
                "a folder of images, a camera (0, /dev/videoN) or a stream URL with --source"
            )
    if spec.kind == "images" and not any(
        p.suffix.lower() in IMAGE_SUFFIXES for p in Path(str(spec.target)).iterdir()
    ):
        raise SourceError(f"the folder {spec.target} holds no images (.jpg, .png, ...)")
    if spec.kind == "camera" and isinstance(spec.target, str) and not Path(spec.target).exists():
        found = ", ".join(sorted(glob.glob("/dev/video*"))) or "none"
        raise SourceError(
            f"no camera at {spec.target}: no such device (cameras on this machine: {found}); "
            "check the cable, or name another source with --source or FACEGATE_CAMERA_SOURCE"
        )
    if spec.kind == "camera" and isinstance(spec.target, int):
        if not glob.glob("/dev/video*"):
            raise SourceError(
                f"no camera found (camera index {spec.target}, no /dev/video* device). Connect a "
                'camera, or name a source: `make run ARGS="--source clip.mp4"` or '
                "`python -m appliance run --source clip.mp4` (a video file, a folder of images, "
                "/dev/videoN or an rtsp:// URL), or set FACEGATE_CAMERA_SOURCE in .env"
            )


class Kiosk:
    def __init__(
        self,
        settings: Settings,
        *,
        source: str | None = None,
        fast: bool = False,
        once: bool = False,
        pin_factory: Any = None,
        engine: FaceEngine | None = None,
        liveness: LivenessCheck | None | str = "settings",
    ) -> None:
        use_one_blas_thread()
        self.s = settings
        self.notifier = Notifier()  # systemd's NOTIFY_SOCKET; a no-op without it
        # Door events (an exit button pressed while models load) queue here until run() starts
        # the writer; making it opens nothing.
        self.writer = EventWriter(
            settings.db_path,
            settings.door_name,
            snapshot_dir=settings.snapshot_dir if settings.store_event_snapshots else None,
            min_free_mb=settings.min_free_mb,
        )
        # The door first: the relay is driven safe (whatever a killed predecessor left on the
        # pin) and the contact and exit button work before anything slow or fallible happens.
        self.door: DoorController | None = DoorController(
            settings, self._door_event, pin_factory=pin_factory
        )
        try:
            self.spec = parse_source(source if source is not None else settings.camera_source)
            self._check_source()
            self.fast, self.once = fast, once
            self.stop_event = threading.Event()
            self.engine = engine or make_engine(settings)
            live = make_liveness_check(settings) if liveness == "settings" else liveness
            self.pipeline = Pipeline(settings, self.engine, liveness=live)  # type: ignore[arg-type]
            self.db = store.open_db(settings.db_path)
        except BaseException:
            self.door.close()
            raise
        self.slot = FrameSlot(keep_all=fast)
        self.reader = CameraReader(self.spec, self.slot, self.stop_event, fast=fast, once=once)
        self._next_gallery: Gallery | None = None
        self._gallery_lock = threading.Lock()
        self._live: tuple[np.ndarray, FrameReport] | None = None
        self._live_lock = threading.Lock()
        self._live_written: tuple[np.ndarray, FrameReport] | None = None
        self._fps_times: deque[float] = deque(maxlen=60)
        self._fps_lock = threading.Lock()
        self._gallery_error_since: float | None = None
        #: when set (e.g. "gallery_stale": the store could not be re-read), nobody is let in
        self.hold_reason: str | None = None
        self.last_decision: dict[str, Any] | None = None
        self.outcomes: list[Outcome] = []  # every decision of this run (for --once summaries)
        self.started_at = store.to_iso(store.utc_now())
        self._lock_file = None
        self._last_frame_at = None
        self._health = HealthSampler(settings.data_dir)
        self._housekeeper = threading.Thread(target=self._housekeep, name="housekeeper")
        self.alerts = AlertWatch(settings)

    # --- life cycle --------------------------------------------------------------------------

    def _check_source(self) -> None:
        """At a terminal a missing camera is an error; a door in service waits for one instead,
        so its exit button and contact keep working (systemd restarting it would not)."""
        try:
            check_source(self.spec)
        except SourceError as exc:
            if not (self.notifier.enabled and self.spec.kind == "camera"):
                raise
            logger.error("{}; waiting for the camera, the door controller keeps running", exc)

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            logger.info("signal {} received: stopping", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> int:
        """Run until stopped (or the end of a finite source with ``once``); returns exit status."""
        self._hold_kiosk_lock()
        try:
            self._refresh_gallery(self.db)  # unreadable at start: an empty gallery admits nobody
            self._swap_gallery()
            self.writer.start()
            self.reader.start()
            self._housekeeper.start()
            logger.info(
                "door {} running: source {} ({}), gallery {} persons, liveness {}",
                self.s.door_name,
                self.spec.shown,
                self.spec.kind,
                self.pipeline.gallery.person_count,
                self.s.liveness,
            )
            self.notifier.notify("READY=1", f"STATUS=door {self.s.door_name} deciding")
            if self.pipeline.gallery.person_count == 0:  # repeated on the console's Door page
                logger.warning(
                    "nobody is enrolled: the door lets nobody in (python -m appliance enroll ...)"
                )
            self._frame_loop()
            return 0
        except (PinFactoryError, DoorControllerError) as exc:
            logger.error("door hardware failed: {}", exc)
            return 2
        except Exception:
            logger.exception("kiosk failed; the door goes to its safe state")
            return 1
        finally:
            self.notifier.notify("STOPPING=1")
            self.stop_event.set()
            # the housekeeper may be carrying out an unlock: let it finish before the door closes
            if self._housekeeper.is_alive():
                self._housekeeper.join(5)
            if self.reader.is_alive():
                self.reader.join(5)
            if self.spec.finite:
                self._write_live_view()  # the last frame of a file or folder the admin gave us
            else:
                # a camera frame shows whoever stood at the door: never keep it after we stop
                (self.s.run_dir / "latest.jpg").unlink(missing_ok=True)
            # The door closes after everything that could command it; only the status row and
            # the event log, which record its final state and events, outlive it.
            if self.door is not None:
                self.door.close()
            self._publish_status(stopped=True)
            if self.writer.ident is not None:  # started
                self.writer.close()
            self.db.conn.close()
            self.notifier.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the lock
            logger.info("door {} stopped", self.s.door_name)

    def _hold_kiosk_lock(self) -> None:
        """Hold ``run/appliance.lock`` while running: `restore` refuses while it is held."""
        from appliance.backup import KIOSK_LOCK

        self.s.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.s.run_dir / KIOSK_LOCK, "a")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("another kiosk holds {}: two doors on one store?", KIOSK_LOCK)

    # --- the frame loop ----------------------------------------------------------------------

    def _frame_loop(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            frame = self.slot.get(timeout=0.5)
            if frame is None:
                if self.slot.closed:
                    break
                self._check_health()
                self._swap_gallery()  # no camera frames: keep the status true all the same
                if self.reader.is_alive() and not self.reader.healthy:
                    self.notifier.pet()  # honestly reconnecting; a stuck read is not
                continue
            self._check_health()
            try:
                self._swap_gallery()
                report = self.pipeline.process(frame.bgr, frame.t, hold=self.hold_reason)
                if report.processed:
                    with self._fps_lock:
                        self._fps_times.append(time.monotonic())
                        self._last_frame_at = store.utc_now()
                    with self._live_lock:
                        self._live = (frame.bgr, report)
                for outcome in report.outcomes:
                    self._act(outcome)
                for track_id, challenge in report.prompts:
                    logger.bind(track=track_id).info("liveness challenge: {}", challenge)
                    if self.door is not None:
                        self.door.prompt()
                failures = 0
                self.notifier.pet()
            except DoorControllerError:
                raise  # the door itself failed: stop, so systemd restarts us
            except Exception:
                # one bad frame (a decoder glitch, a malformed row) must not take the door down;
                # the tracks start over so nothing half-decided is carried on
                failures += 1
                logger.exception("frame {} failed ({} in a row)", frame.index, failures)
                self.pipeline.reset()
                if failures >= MAX_FRAME_FAILURES:
                    raise
                self.notifier.pet()  # the loop is alive; MAX_FRAME_FAILURES ends a bad run

    def _check_health(self) -> None:
        """Hold every grant while the gallery may be stale; stop when the housekeeper died."""
        if not self._housekeeper.is_alive() and not self.stop_event.is_set():
            raise RuntimeError("housekeeper thread died: no gallery reloads, commands or status")
        since = self._gallery_error_since
        stale = since is not None and time.monotonic() - since >= GALLERY_STALE_S
        reason = "gallery_stale" if stale else None
        if reason != self.hold_reason:
            if reason:
                logger.error(
                    "the store changed but has not been readable for {:.1f} s: nobody is let in "
                    "until it is",
                    GALLERY_STALE_S,
                )
            else:
                logger.info("gallery readable again: grants resume")
            self.hold_reason = reason

    def _act(self, o: Outcome) -> None:
        """Open the door (or signal a denial) and log the decision."""
        assert self.door is not None
        if o.granted:  # the log names the person, not only their uuid
            self.door.grant(f"{o.person_name} ({o.person_id})" if o.person_name else o.person_id)
        else:
            self.door.deny()
        self.outcomes.append(o)
        self.writer.emit(
            o.kind,
            person_id=o.person_id,
            person_name=o.person_name,
            distance=None if o.distance is None else round(o.distance, 4),
            reason=o.reason,
            track_id=o.track_id,
            crop=o.crop,
        )
        self._raise_alerts(self.alerts.on_decision(o.kind, o.reason, time.monotonic()))
        self.last_decision = {
            "ts": store.to_iso(store.utc_now()),
            "kind": o.kind,
            "reason": o.reason,
            # the id only: the status row is rewritten every few seconds, and a name in it
            # would outlive the person's erasure in the write-ahead log (the API adds the name)
            "person_id": o.person_id,
            "distance": None if o.distance is None else round(o.distance, 4),
        }

    def _door_event(self, kind: str, fields: dict) -> None:
        self.writer.emit(kind, details=fields or None)

    def _raise_alerts(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.writer.emit(alert.kind, reason=alert.reason, details=alert.details or None)

    def _check_alerts(self, db) -> None:
        """Camera, disk and sync conditions (appliance/alerts.py), from the housekeeper."""
        self._raise_alerts(
            self.alerts.check(
                time.monotonic(),
                store.utc_now(),
                camera_ok=self.reader.healthy,
                disk=disk_usage(self.s.data_dir),
                sync_status=store.get_status(db, "sync"),
            )
        )

    # --- gallery -----------------------------------------------------------------------------

    def _load_gallery(self, force: bool = False, db=None) -> None:
        db = db or self.db
        version = store.gallery_version(db)
        current = self._next_gallery or self.pipeline.gallery
        if not force and version == current.version:
            return
        gallery = Gallery(
            store.load_gallery_rows(db, MODEL_NAME),
            background_cohort(self.s.match_background_cohort),
        )
        with self._gallery_lock:
            self._next_gallery = gallery

    def _swap_gallery(self) -> None:
        with self._gallery_lock:
            nxt, self._next_gallery = self._next_gallery, None
        if nxt is not None:
            self.pipeline.set_gallery(nxt)

    # --- housekeeping ------------------------------------------------------------------------

    def _refresh_gallery(self, db) -> None:
        try:
            self._load_gallery(db=db)
        except Exception:
            if self._gallery_error_since is None:
                self._gallery_error_since = time.monotonic()
            logger.exception("gallery reload failed; the door keeps the last one for now")
        else:
            self._gallery_error_since = None

    def _housekeep(self) -> None:
        db = None
        last_frame_write = 0.0
        last_retention = -RETENTION_CHECK_S
        try:
            while not self.stop_event.wait(HOUSEKEEPING_S):
                try:
                    if db is None:
                        db = store.open_db(self.s.db_path, migrate_schema=False)
                    self._refresh_gallery(db)
                    self._run_commands(db)
                    self._publish_status(db=db)
                    self._check_alerts(db)
                    if time.monotonic() - last_frame_write >= LIVE_VIEW_MIN_S:
                        self._write_live_view()
                        last_frame_write = time.monotonic()
                    if time.monotonic() - last_retention >= RETENTION_CHECK_S:
                        last_retention = time.monotonic()
                        retention.maybe_run(db, self.s, store.utc_now())  # daily
                        retention.prune_live_frame(
                            self.s.run_dir, store.utc_now(), self.s.live_frame_keep_seconds
                        )
                except Exception:  # a housekeeping hiccup must not take the door down
                    logger.exception("housekeeping failed; retrying")
                    if self._gallery_error_since is None and db is None:
                        self._gallery_error_since = time.monotonic()  # cannot even open it
        finally:
            if db is not None:
                db.conn.close()

    def _run_commands(self, db) -> None:
        for cmd in store.pending_commands(db):
            age = (store.utc_now() - store.parse_iso(cmd["created_at"])).total_seconds()
            log = logger.bind(command=cmd["id"], requested_by=cmd["requested_by"])
            if not store.claim_command(db, cmd["id"]):
                continue  # expired by the API meanwhile
            if age > COMMAND_MAX_AGE_S:
                store.finish_command(db, cmd["id"], "expired", "too old to carry out")
                log.warning("command {} expired before it was carried out", cmd["kind"])
                continue
            if cmd["kind"] == "unlock":
                try:
                    if self.door is None:
                        raise DoorControllerError("the door controller is not running")
                    self.door.remote_unlock(cmd["requested_by"] or "admin")
                except DoorControllerError as exc:
                    store.finish_command(db, cmd["id"], "failed", str(exc))
                    log.error("remote unlock failed: {}", exc)
                    continue
                self.writer.emit(
                    "remote_unlock", reason="admin", details={"requested_by": cmd["requested_by"]}
                )
                store.finish_command(db, cmd["id"], "done", "unlocked")
                log.info("remote unlock carried out")
            elif cmd["kind"] == "reload":
                self._load_gallery(force=True, db=db)
                store.finish_command(db, cmd["id"], "done", "reloaded")
            else:
                store.finish_command(db, cmd["id"], "failed", f"unknown command {cmd['kind']!r}")

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._fps_lock:
            recent = [t for t in self._fps_times if now - t <= 5.0]
            last_frame_at = self._last_frame_at
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
        gallery = self.pipeline.gallery
        door = self.door.status() if self.door is not None else {}
        return {
            "door": self.s.door_name,
            **door,
            "camera_ok": self.reader.healthy,
            "camera_error": self.reader.last_error,
            "camera_source": self.spec.shown,
            "fps": round(fps, 1),
            "last_frame_at": store.to_iso(last_frame_at) if last_frame_at else None,
            **self._health.get(),  # cpu_temp_c, disk_free_mb, throttled (Pi)
            "gallery_version": gallery.version,
            "gallery_persons": gallery.person_count,
            "gallery_faces": gallery.face_count,
            "liveness": self.s.liveness,
            "hold_reason": self.hold_reason,
            "last_decision": self.last_decision,
            "events_written": self.writer.written,
            "event_write_error": self.writer.last_error,
            "started_at": self.started_at,
            "running": not self.stop_event.is_set(),
        }

    def _publish_status(self, db=None, stopped: bool = False) -> None:
        try:
            status = self.status()
            if stopped:
                status["running"] = False
            store.put_status(db or self.db, "appliance", status)
        except Exception as exc:
            logger.warning("status not published: {}", exc)

    def _write_live_view(self) -> None:
        with self._live_lock:
            live = self._live
        if live is None or live is self._live_written:
            return
        self._live_written = live
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
        stamp = {"ts": store.to_iso(store.utc_now()), "pid": os.getpid()}
        write_private(self.s.run_dir / "latest.json", json.dumps(stamp).encode())
        # owner-only (faces); replaced atomically: readers never see half a JPEG
        write_private(self.s.run_dir / "latest.jpg", jpg.tobytes())


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


def summary(outcomes: list[Outcome]) -> str:
    return json.dumps(
        [
            {"t": round(o.t, 3), "kind": o.kind, "person": o.person_name, "reason": o.reason}
            for o in outcomes
        ]
    )
