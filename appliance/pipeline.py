"""The recognition pipeline: frame in, door decisions out. No camera, GPIO or SQLite in here.

gate -> detect (downscaled HOG) -> track -> encode (once per track, then every reencode_ms)
-> match -> liveness -> the track's decision (appliance/track_decision.py: vote, identity,
liveness wait, policy). The kiosk (appliance/kiosk.py) feeds frames, swaps in new galleries, and
turns the returned outcomes into relay pulses and entry-log rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np
from loguru import logger

from appliance import policy, track_decision
from appliance.boxes import Box, box_height
from appliance.cadence import DetectCadence, Pace, encode_due
from appliance.faces import FaceEngine
from appliance.liveness import UNSURE_TIMEOUT_S, LivenessCheck
from appliance.match import Gallery, GalleryRows
from appliance.settings import Settings
from appliance.timeutil import utc_now
from appliance.track import Track, Tracker
from appliance.track_decision import Context, Liveness, Rules

#: An undecided track is encoded at most this often: consecutive frames at 30 fps are nearly
#: the same picture, so every other one carries the new information at half the cost. Once
#: its vote agreed and it waits for liveness, re-encodings are paced by their cost (cadence.py).
PENDING_ENCODE_MS = 50.0
#: Catching up on missed frames (appliance/camera.py FrameSlot) helps a face's first moments in
#: view: its first good frames may be gone before a slow CPU has encoded one. A face still
#: undecided after this long (frame time) is followed on the newest frames again.
CATCH_UP_TRACK_S = 1.5
#: Catching up, one frame per this much frame time: frames closer together show almost the same
#: face (a liveness pair needs 0.12 s between its frames) ...
CATCH_UP_STEP_S = 0.1
#: ... or this much after a frame that matched nobody
CATCH_UP_POOR_STEP_S = 0.3


@dataclass(frozen=True)
class Outcome:
    """One decision for the entry log (and, when granted, for the relay)."""

    kind: str  # access_granted | access_denied
    reason: str | None  # None when granted
    track_id: int
    person_id: str | None
    person_name: str | None
    distance: float | None
    t: float  # frame time
    box: Box
    crop: np.ndarray | None = field(default=None, repr=False)  # BGR face crop, for snapshots
    voted_at: float | None = None  # frame time the track's vote agreed (its liveness wait began)

    @property
    def granted(self) -> bool:
        return self.kind == policy.GRANTED


@dataclass
class FrameReport:
    """What one frame did, for stats and the annotated live view."""

    processed: bool
    detected: bool = False
    encoded: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    #: liveness challenges to show at the door now: (track id, challenge, e.g. "turn_head")
    prompts: list[tuple[int, str]] = field(default_factory=list)
    labels: list[tuple[Box, str, bool | None]] = field(default_factory=list)


class MotionGate:
    """Skips frames that did not change: a tiny grayscale thumbnail compared with the last one."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._last: np.ndarray | None = None

    def changed(self, bgr: np.ndarray) -> bool:
        thumb = cv2.resize(
            cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (64, 36), interpolation=cv2.INTER_AREA
        )
        thumb = thumb.astype(np.int16)
        if self._last is None:
            self._last = thumb
            return True
        diff = float(np.mean(np.abs(thumb - self._last)))
        if diff < self.threshold:
            return False
        self._last = thumb
        return True


class Pipeline:
    """Wiring: detect, track, encode, observe liveness, ask track_decision, report outcomes."""

    def __init__(
        self,
        settings: Settings,
        engine: FaceEngine,
        *,
        liveness: LivenessCheck | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.s = settings
        self.rules = Rules.from_settings(settings, liveness_timeout_s=UNSURE_TIMEOUT_S)
        self.engine = engine
        self.liveness = liveness  # None: liveness off
        self.clock = clock or utc_now
        self.gallery = Gallery(GalleryRows.empty())
        self.tracker = Tracker()
        self.gate = MotionGate(settings.motion_threshold)
        self.last_grant: dict[str, float] = {}  # person id -> frame time of their last grant
        self.cadence = DetectCadence(settings.detect_every)
        self.encode_pace = Pace()
        #: this frame's landmarks and crop per track, as given to the liveness check
        self._observed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._prev_bgr: np.ndarray | None = None  # the last frame liveness looked at
        self.stats = {"frames": 0, "processed": 0, "detections": 0, "encodings": 0}

    # --- gallery ---------------------------------------------------------------------------

    def set_gallery(self, gallery: Gallery) -> None:
        """Swap in a new gallery (built off the hot path); tracks re-vote against it."""
        old = self.gallery.version
        self.gallery = gallery
        if old != gallery.version:
            for tr in self.tracker.active():
                tr.state = track_decision.gallery_changed(tr.state)
                tr.last_encoded = None
            logger.info(
                "gallery version {}: {} persons, {} faces",
                gallery.version,
                gallery.person_count,
                gallery.face_count,
            )

    def reset(self) -> None:
        """Drop every track (after a failed frame): nothing half-decided is carried on."""
        for tr in self.tracker.active():
            if self.liveness is not None:
                self.liveness.forget(tr.id)
        self.tracker.tracks.clear()

    # --- per frame -------------------------------------------------------------------------

    @property
    def deciding(self) -> bool:
        """A face in view is still being decided (voting, or waiting for liveness)."""
        return any(tr.state.pending for tr in self.tracker.active())

    def _catching_up(self) -> list[Track]:
        return [
            tr
            for tr in self.tracker.active()
            if tr.state.pending
            and box_height(tr.box) >= self.s.min_face_px
            and tr.last_seen - tr.first_seen < CATCH_UP_TRACK_S
        ]

    def catch_up_step(self) -> float | None:
        """How far (frame time) to step through missed frames, or None when they are not worth
        working through (see :attr:`catching_up`): :data:`CATCH_UP_STEP_S` after a frame whose
        encoding named someone (its neighbours show the face as well), or before the first
        encoding; :data:`CATCH_UP_POOR_STEP_S` after one that named nobody (poor frames come in
        runs: a turned or blurred face; move on towards the present)."""
        tracks = self._catching_up()
        if not tracks:
            return None
        poor = all(tr.state.matches and tr.state.matches[-1].person_id is None for tr in tracks)
        return CATCH_UP_POOR_STEP_S if poor else CATCH_UP_STEP_S

    @property
    def catching_up(self) -> bool:
        """Whether the frames the pipeline fell behind on are still worth working through: a
        face in view is being decided, large enough to encode, and has been in view (frame
        time) for less than :data:`CATCH_UP_TRACK_S`. A face that cannot be decided (too small,
        a vote that never agrees) must not keep the whole door behind the present."""
        return bool(self._catching_up())

    def process(self, bgr: np.ndarray, t: float, *, hold: str | None = None) -> FrameReport:
        """Run one frame (frame time ``t``, monotonic seconds) and return what it decided.

        ``hold`` (e.g. "gallery_stale": the store could not be re-read) lets nobody in: a face
        the vote agrees on is denied with that reason.
        """
        self.stats["frames"] += 1
        if not self.gate.changed(bgr) and not self.deciding:
            return FrameReport(processed=False)
        self.stats["processed"] += 1
        report = FrameReport(processed=True)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        pairs = self._track(rgb, t, report)
        if self.liveness is not None:
            # before encoding: a face whose liveness turns "live" on this frame is encoded on it
            self._observe_liveness(rgb, bgr, pairs, t)
        self._encode(rgb, pairs, t, report)
        ctx = Context(t, self.clock(), self.gallery.persons, self.last_grant, hold)
        for tr, box in pairs:
            self._decide(tr, ctx, bgr, report)
            report.labels.append((box, self._label(tr), self._state(tr)))
        return report

    def _track(self, rgb: np.ndarray, t: float, report: FrameReport) -> list[tuple[Track, Box]]:
        """Find this frame's faces and follow them: (track, box) pairs of the faces in view."""
        tracks = self.tracker.active()
        owners: list[int] = []
        full = self.cadence.due(time.monotonic(), tracking=bool(tracks))
        if full:
            # the whole frame, for faces that just came into view (spaced by its cost while
            # something is tracked: appliance/cadence.py)
            report.detected = True
            self.stats["detections"] += 1
            started = time.monotonic()
            boxes = self.engine.detect(rgb, upsample=self.s.detect_upsample)
            self.cadence.done(started, time.monotonic())
        elif tracks:
            # only around the faces we already follow: a few ms instead of a full HOG pass
            near = [(tr.id, self.engine.detect_near(rgb, tr.box)) for tr in tracks]
            boxes = [b for _, b in near if b]
            owners = [tid for tid, b in near if b]
        else:
            boxes = []  # nobody in view: the next full pass is at most detect_every frames away
        # the tracker's max age stretches with the gaps between the frames it is given; a face
        # re-found around its own track stays that track however far it moved between frames
        pairs, ended = self.tracker.update(boxes, t, create=full, owners=owners)
        for tr in ended:
            if self.liveness is not None:
                self.liveness.forget(tr.id)
        return pairs

    def _encode_due(self, tr: Track, t: float) -> bool:
        since_ms = None if tr.last_encoded is None else (t - tr.last_encoded) * 1000.0
        # agreed and waiting for liveness: re-encodings are paced (liveness frames matter more)
        paced = self.liveness is not None and tr.state.pending and tr.state.voted_at is not None
        live = paced and self.liveness.verdict(tr.id).state == "live"  # type: ignore[union-attr]
        return encode_due(
            since_ms,
            pending=tr.state.pending,
            paced=paced,
            live=live,
            pending_ms=PENDING_ENCODE_MS,
            paced_ms=self.encode_pace.interval_s * 1000.0,
            decided_ms=self.s.reencode_ms,
        )

    def _encode(
        self, rgb: np.ndarray, pairs: list[tuple[Track, Box]], t: float, report: FrameReport
    ) -> None:
        """Encode the faces that are due and give each track its new match."""
        due = [
            (tr, box)
            for tr, box in pairs
            if box_height(box) >= self.s.min_face_px and self._encode_due(tr, t)
        ]
        if not due:
            return
        started = time.monotonic()
        encs = self.engine.encode(rgb, [b for _, b in due])
        self.encode_pace.done(started, time.monotonic(), len(encs))
        report.encoded = len(encs)
        self.stats["encodings"] += len(encs)
        for (tr, _), emb in zip(due, encs, strict=True):
            m = self.gallery.match(emb, self.s.match_threshold, self.s.match_cohort_ratio)
            tr.last_encoded = t
            step = track_decision.encoded(tr.state, m, self.rules)
            tr.state = step.state
            if step.restart_liveness and self.liveness is not None:
                self.liveness.forget(tr.id)
                seen = self._observed.get(tr.id)
                if seen is not None:
                    # this frame is the face the new identity was encoded from: its landmarks
                    # are the first evidence for it (a slow CPU gets few such frames)
                    self.liveness.observe(tr.id, t, *seen)

    def _observe_liveness(
        self, rgb: np.ndarray, bgr: np.ndarray, pairs: list[tuple[Track, Box]], t: float
    ) -> None:
        assert self.liveness is not None
        need = [
            (tr, box)
            for tr, box in pairs
            if tr.state.needs_liveness and box_height(box) >= self.s.min_face_px
        ]
        self._observed = {}
        prev, self._prev_bgr = self._prev_bgr, bgr
        # a face whose pixels did not change at all since the last frame (a frozen source, a
        # still picture replayed) shows no motion: only the detector's box drifts on it, and
        # landmarks placed from a drifting box must not count as a face bending
        need = [(tr, box) for tr, box in need if not _frozen(prev, bgr, box)]
        if need:
            for (tr, box), pts in zip(
                need, self.engine.landmarks(rgb, [b for _, b in need]), strict=True
            ):
                crop = _crop(bgr, box)
                self.liveness.observe(tr.id, t, pts, crop)
                self._observed[tr.id] = (pts, crop)

    # --- decisions -------------------------------------------------------------------------

    def _liveness_of(self, tr: Track) -> Liveness | None:
        """The liveness check's word on the track, for track_decision (None: liveness off)."""
        if self.liveness is None:
            return None
        verdict = self.liveness.verdict(tr.id)
        challenge = None
        ask = getattr(self.liveness, "challenge", None)
        if verdict.state == "unsure" and tr.state.challenge is None and ask is not None:
            challenge = ask(tr.id)
        return Liveness(verdict.state, getattr(verdict, "detail", ""), challenge)

    def _decide(self, tr: Track, ctx: Context, bgr: np.ndarray, report: FrameReport) -> None:
        if not tr.state.matches:
            return  # nothing to decide on yet (and no liveness verdict to compute)
        step = track_decision.decide(tr.state, ctx, self._liveness_of(tr), self.rules)
        tr.state = step.state
        if step.prompt is not None:
            report.prompts.append((tr.id, step.prompt))
        d = step.decision
        if d is None:
            return
        if d.granted and d.person is not None:
            self.last_grant[d.person["id"]] = ctx.now
        if d.detail:
            logger.bind(track=tr.id).debug("liveness: {}", d.detail)
        report.outcomes.append(
            Outcome(
                d.kind,
                d.reason,
                tr.id,
                d.person["id"] if d.person else None,
                d.person["name"] if d.person else None,
                d.distance,
                ctx.now,
                tr.box,
                _crop(bgr, tr.box),
                tr.state.voted_at,
            )
        )

    # --- annotation ------------------------------------------------------------------------

    def _label(self, tr: Track) -> str:
        st = tr.state
        if st.granted_person:
            p = self.gallery.persons.get(st.granted_person)
            return p["name"] if p else "granted"
        if st.logged:
            return st.logged.replace("_", " ")
        if st.challenge == "turn_head":
            return "please turn your head"
        return "..."

    @staticmethod
    def _state(tr: Track) -> bool | None:
        if tr.state.granted_person:
            return True
        return False if tr.state.logged else None


def _frozen(prev: np.ndarray | None, bgr: np.ndarray, box: Box) -> bool:
    """True when the face region of ``bgr`` is bit-identical to the same region of ``prev``: a
    camera's own noise never repeats a picture exactly."""
    if prev is None or prev.shape != bgr.shape:
        return False
    top, right, bottom, left = box
    region = (slice(max(0, top), max(0, bottom)), slice(max(0, left), max(0, right)))
    return bool(np.array_equal(prev[region], bgr[region]))


def _crop(bgr: np.ndarray, box: Box, pad: float = 0.25) -> np.ndarray:
    top, right, bottom, left = box
    h, w = bottom - top, right - left
    y0, y1 = max(0, int(top - pad * h)), min(bgr.shape[0], int(bottom + pad * h))
    x0, x1 = max(0, int(left - pad * w)), min(bgr.shape[1], int(right + pad * w))
    return bgr[y0:y1, x0:x1].copy()
