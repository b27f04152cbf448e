"""The kiosk: camera thread -> pipeline -> door controller and entry log, until stopped.

Threads: the camera reader (newest frame only), the event writer (queue -> SQLite), and a
housekeeper that once every half second loads a new gallery when the store's version moved
(:mod:`appliance.gallery_feed`), carries out admin commands (:mod:`appliance.commands`),
publishes the status row (:mod:`appliance.kiosk_status`), checks alerts and writes the annotated
live frame (:mod:`appliance.live_view`). The frame loop itself runs on the caller's thread. One
stop event ends them all; the relay goes to its safe state on every way out.

Life cycle: the data folder's kiosk lock (:mod:`appliance.instance_lock`) is taken first, so a
second kiosk on the same folder stops before it touches the relay; then the door controller is
opened (before the camera is checked and the models load) and closed after everything that could
command it, so the relay is driven to its safe state by every start, even one that fails early,
and the door contact and exit button work while models load and while the camera is missing or
reconnecting. Under systemd (``Type=notify``) the kiosk says ``READY=1`` once it is deciding and
pets the watchdog only while frames flow or the camera reader is alive and reconnecting; a hung
loop stops petting and systemd kills it.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from loguru import logger

from appliance import gallery_feed, instance_lock, kiosk_status, retention, store
from appliance.alerts import Alert, AlertWatch, disk_usage
from appliance.camera import CameraReader, FrameSlot, SourceError, parse_source
from appliance.commands import CommandRunner
from appliance.events import EventWriter
from appliance.faces import FaceEngine
from appliance.gallery_feed import GalleryFeed
from appliance.health import HealthSampler
from appliance.live_view import LiveView
from appliance.liveness import LivenessCheck
from appliance.match import use_one_blas_thread
from appliance.pipeline import Outcome, Pipeline
from appliance.sd_notify import Notifier
from appliance.settings import Settings
from appliance.startup import check_source, make_engine, make_liveness_check
from hardware.door import DoorController, DoorControllerError
from hardware.pins import PinFactoryError

HOUSEKEEPING_S = 0.5
RETENTION_CHECK_S = 60.0  # is the daily retention job due? is the live frame stale?
#: Frames in a row that may fail before the kiosk gives up (and systemd restarts it).
MAX_FRAME_FAILURES = 50


class Kiosk:
    """One door's kiosk on one data folder; raises DataFolderBusy if another kiosk runs there."""

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
        # first of all: a second kiosk on this data folder must not even drive the relay safe
        self._instance_lock = instance_lock.acquire(settings.data_dir)
        try:
            self._open(source, fast, once, pin_factory, engine, liveness)
        except BaseException:
            self._instance_lock.close()
            raise
        self.slot = FrameSlot(keep_all=fast, backlog_s=settings.catch_up_s)
        self._last_t: float | None = None  # frame time of the frame last decided
        self.reader = CameraReader(self.spec, self.slot, self.stop_event, fast=fast, once=once)
        self.gallery = GalleryFeed(self.pipeline, settings.match_background_cohort)
        self.commands = CommandRunner(self.door, self.writer, self.gallery)
        self.live_view = LiveView(settings.run_dir)
        self.frame_rate = kiosk_status.FrameRate()
        #: when set (e.g. "gallery_stale": the store could not be re-read), nobody is let in
        self.hold_reason: str | None = None
        self.last_decision: dict[str, Any] | None = None
        self.outcomes: list[Outcome] = []  # every decision of this run (for --once summaries)
        self.started_at = store.to_iso(store.utc_now())
        self._health = HealthSampler(settings.data_dir)
        self._housekeeper = threading.Thread(target=self._housekeep, name="housekeeper")
        self.alerts = AlertWatch(settings)

    # --- life cycle --------------------------------------------------------------------------

    def _open(self, source, fast, once, pin_factory, engine, liveness) -> None:
        """The door, then the source, models and store; the door is closed if any of them fail."""
        settings = self.s
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
        try:
            self._start()
            self._frame_loop()
            return 0
        except (PinFactoryError, DoorControllerError) as exc:
            logger.error("door hardware failed: {}", exc)
            return 2
        except Exception:
            logger.exception("kiosk failed; the door goes to its safe state")
            return 1
        finally:
            self._shut_down()

    def _start(self) -> None:
        self.gallery.refresh(self.db)  # unreadable at start: an empty gallery admits nobody
        self.gallery.swap()
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

    def _shut_down(self) -> None:
        self.notifier.notify("STOPPING=1")
        self.stop_event.set()
        # the housekeeper may be carrying out an unlock: let it finish before the door closes
        if self._housekeeper.is_alive():
            self._housekeeper.join(5)
        if self.reader.is_alive():
            self.reader.join(5)
        if self.spec.finite:
            self.live_view.write()  # the last frame of a file or folder the admin gave us
        else:
            self.live_view.discard()
        # The door closes after everything that could command it; only the status row and
        # the event log, which record its final state and events, outlive it.
        if self.door is not None:
            self.door.close()
        kiosk_status.publish(self.db, self.status, stopped=True)
        if self.writer.ident is not None:  # started
            self.writer.close()
        self.db.conn.close()
        self.notifier.close()
        self._instance_lock.close()  # the next kiosk may start
        self._log_stopped()

    def _log_stopped(self) -> None:
        st = self.pipeline.stats
        logger.info(
            "door {} stopped: {} frames skipped late, {} frames read, {} given to the "
            "pipeline, {} processed, {} full detections, {} encodings; {} frames taken from "
            "the backlog while catching up, {} never given to the pipeline",
            self.s.door_name,
            self.reader.frames_skipped,
            self.reader.frames_read,
            st["frames"],
            st["processed"],
            st["detections"],
            st["encodings"],
            self.slot.caught_up,
            self.slot.dropped,
        )

    # --- the frame loop ----------------------------------------------------------------------

    def _frame_loop(self) -> None:
        failures = 0
        first = True
        while not self.stop_event.is_set():
            # while a new face is being decided: the frames the pipeline fell behind on, in
            # order, from the one after the frame last decided; else the newest
            step = self.pipeline.catch_up_step()
            after = None if step is None else self._last_t
            frame = self.slot.get(timeout=0.5, after=after, step_s=step or 0.0)
            if frame is None:
                if self.slot.closed:
                    break
                self._check_health()
                self.gallery.swap()  # no camera frames: keep the status true all the same
                if self.reader.is_alive() and not self.reader.healthy:
                    self.notifier.pet()  # honestly reconnecting; a stuck read is not
                continue
            self._check_health()
            if first:
                first = False
                logger.info("deciding: first frame {} (t={:.3f} s)", frame.index, frame.t)
            try:
                self._decide(frame)
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

    def _decide(self, frame) -> None:
        """One frame through the pipeline; its decisions to the door and the entry log."""
        self._last_t = frame.t
        self.gallery.swap()
        report = self.pipeline.process(frame.bgr, frame.t, hold=self.hold_reason)
        logger.trace(
            "frame {} t={:.3f}: processed {}, full search {}, encoded {}, {}",
            frame.index,
            frame.t,
            report.processed,
            report.detected,
            report.encoded,
            [label for _, label, _ in report.labels],
        )
        if report.processed:
            self.frame_rate.tick()
            self.live_view.offer(frame.bgr, report)
        for outcome in report.outcomes:
            self._act(outcome)
        for track_id, challenge in report.prompts:
            logger.bind(track=track_id).info("liveness challenge: {}", challenge)
            if self.door is not None:
                self.door.prompt()

    def _check_health(self) -> None:
        """Hold every grant while the gallery may be stale; stop when the housekeeper died."""
        if not self._housekeeper.is_alive() and not self.stop_event.is_set():
            raise RuntimeError("housekeeper thread died: no gallery reloads, commands or status")
        reason = self.gallery.hold_reason(time.monotonic())
        if reason != self.hold_reason:
            if reason:
                logger.error(
                    "the store changed but has not been readable for {:.1f} s: nobody is let in "
                    "until it is",
                    gallery_feed.GALLERY_STALE_S,
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

    # --- housekeeping ------------------------------------------------------------------------

    def _housekeep(self) -> None:
        db = None
        last_retention = -RETENTION_CHECK_S
        try:
            while not self.stop_event.wait(HOUSEKEEPING_S):
                try:
                    if db is None:
                        db = store.open_db(self.s.db_path, migrate_schema=False)
                    self.gallery.refresh(db)
                    self.commands.run_pending(db)
                    kiosk_status.publish(db, self.status)
                    self._check_alerts(db)
                    self.live_view.write_due(time.monotonic())
                    if time.monotonic() - last_retention >= RETENTION_CHECK_S:
                        last_retention = time.monotonic()
                        self._retention(db)
                except Exception:  # a housekeeping hiccup must not take the door down
                    logger.exception("housekeeping failed; retrying")
                    if db is None:
                        self.gallery.mark_unreadable()  # cannot even open the store
        finally:
            if db is not None:
                db.conn.close()

    def _retention(self, db) -> None:
        retention.maybe_run(db, self.s, store.utc_now())  # daily
        retention.prune_live_frame(self.s.run_dir, store.utc_now(), self.s.live_frame_keep_seconds)

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

    def status(self) -> dict[str, Any]:
        """The ``appliance`` status row: door, camera, health, gallery, last decision."""
        fps, last_frame_at = self.frame_rate.read()
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
