"""The recognition pipeline: frame in, door decisions out. No camera, GPIO or SQLite in here.

gate -> detect (downscaled HOG) -> track -> encode (once per track, then every reencode_ms)
-> match -> k-of-n vote -> liveness -> policy. The loop (appliance/loop.py) feeds frames, swaps in
new galleries, and turns the returned outcomes into relay pulses and entry-log rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np
from loguru import logger

from appliance import policy
from appliance.cadence import DetectCadence, Pace
from appliance.faces import Box, FaceEngine, box_height
from appliance.liveness import UNSURE_TIMEOUT_S, LivenessCheck
from appliance.match import Gallery, Match
from appliance.settings import Settings
from appliance.store import GalleryRows
from appliance.track import Track, Tracker
from appliance.vote import vote

#: A track whose vote agreed but whose liveness stays "unsure" this long is denied.
LIVENESS_TIMEOUT_S = UNSURE_TIMEOUT_S
#: A frame that matches nobody but is within this of the track's person is a poor view of them
#: (blur, a turn), not another face; further away, the track's evidence starts over.
SAME_FACE_SLACK = 0.15
#: The identity of a track whose face matches no enrolled person.
OTHER_FACE = "<someone else>"
#: An undecided track is encoded at most this often: consecutive frames at 30 fps are nearly
#: the same picture, so every other one carries the new information at half the cost.
PENDING_ENCODE_MS = 50.0
#: A face is logged as unknown only after this long in view with every recent encoding failing:
#: the first frames of someone walking up (small, blurred, turned) must not deny them.
UNKNOWN_AFTER_S = 1.0


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


def _empty_gallery() -> Gallery:
    return Gallery(GalleryRows([], np.zeros((0, 128), np.float32), {}, -1))


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
    def __init__(
        self,
        settings: Settings,
        engine: FaceEngine,
        *,
        liveness: LivenessCheck | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        from appliance.store import utc_now

        self.s = settings
        self.engine = engine
        self.liveness = liveness  # None: liveness off
        self.clock = clock or utc_now
        self.gallery = _empty_gallery()
        self.tracker = Tracker()
        self.gate = MotionGate(settings.motion_threshold)
        self.last_grant: dict[str, float] = {}  # person id -> frame time of their last grant
        #: when set (e.g. "gallery_stale": the store could not be re-read), nobody is let in
        self.hold_reason: str | None = None
        self.cadence = DetectCadence(settings.detect_every)
        self.encode_pace = Pace()
        self.stats = {"frames": 0, "processed": 0, "detections": 0, "encodings": 0}

    # --- gallery ---------------------------------------------------------------------------

    def set_gallery(self, gallery: Gallery) -> None:
        """Swap in a new gallery (built off the hot path); tracks re-vote against it."""
        old = self.gallery.version
        self.gallery = gallery
        if old != gallery.version:
            for tr in self.tracker.active():
                tr.matches.clear()
                tr.last_encoded = None
            logger.info(
                "gallery version {}: {} persons, {} faces",
                gallery.version,
                gallery.person_count,
                gallery.face_count,
            )

    # --- per frame -------------------------------------------------------------------------

    def _pending(self) -> bool:
        return any(tr.logged is None for tr in self.tracker.active())

    def process(self, bgr: np.ndarray, t: float) -> FrameReport:
        """Run one frame through the pipeline and return what it decided."""
        self.stats["frames"] += 1
        if not self.gate.changed(bgr) and not self._pending():
            return FrameReport(processed=False)
        self.stats["processed"] += 1
        report = FrameReport(processed=True)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        tracks = self.tracker.active()
        full = self.cadence.due(time.monotonic(), tracking=bool(tracks))
        if full:
            # the whole frame, for faces that just came into view
            report.detected = True
            self.stats["detections"] += 1
            started = time.monotonic()
            boxes = self.engine.detect(rgb, upsample=self.s.detect_upsample)
            self.cadence.done(started, time.monotonic())
        elif tracks:
            # only around the faces we already follow: a few ms instead of a full HOG pass
            boxes = [b for b in (self.engine.detect_near(rgb, tr.box) for tr in tracks) if b]
        else:
            boxes = []  # nobody in view: the next full pass is at most detect_every frames away
        pairs, ended = self.tracker.update(boxes, t, create=full)
        for tr in ended:
            if self.liveness is not None:
                self.liveness.forget(tr.id)

        if self.liveness is not None:
            need = [
                (tr, box)
                for tr, box in pairs
                if tr.granted_person is None and box_height(box) >= self.s.min_face_px
            ]
            if need:
                for (tr, box), pts in zip(
                    need, self.engine.landmarks(rgb, [b for _, b in need]), strict=True
                ):
                    self.liveness.observe(tr.id, t, pts, _crop(bgr, box))
        to_encode: list[tuple[Track, Box]] = []
        for tr, box in pairs:
            if box_height(box) < self.s.min_face_px:
                continue
            since_ms = None if tr.last_encoded is None else (t - tr.last_encoded) * 1000.0
            if since_ms is None:
                due = True
            elif tr.logged is None:
                # deciding, or agreed and waiting for liveness. Until the vote agrees, the votes
                # come first. Then the liveness frames (cheap) matter more than more encodings (a
                # face's worth of CPU each): these are spaced to a share of the time the CPU
                # allows, and the frame that would let the face in is always encoded, so the face
                # let in is the one voted for (not a photo dropped to show a live face behind it)
                interval_ms = PENDING_ENCODE_MS
                if self.liveness is not None and tr.voted_at is not None:
                    interval_ms = max(interval_ms, self.encode_pace.interval_s * 1000.0)
                due = since_ms >= interval_ms or (
                    self.liveness is not None
                    and since_ms >= PENDING_ENCODE_MS
                    and self.liveness.verdict(tr.id).state == "live"
                )
            else:  # decided
                due = since_ms >= self.s.reencode_ms
            if due:
                to_encode.append((tr, box))
        if to_encode:
            started = time.monotonic()
            encs = self.engine.encode(rgb, [b for _, b in to_encode])
            self.encode_pace.done(started, time.monotonic(), len(encs))
            report.encoded = len(encs)
            self.stats["encodings"] += len(encs)
            for (tr, _), emb in zip(to_encode, encs, strict=True):
                m = self.gallery.match(emb, self.s.match_threshold)
                tr.matches.append(m)
                tr.last_encoded = t
                self._follow_identity(tr, m)
        for tr, box in pairs:
            out = self._decide(tr, t, bgr)
            if out is not None:
                report.outcomes.append(out)
            if tr.challenge is not None and not tr.challenge_shown:
                tr.challenge_shown = True
                report.prompts.append((tr.id, tr.challenge))
            report.labels.append((box, self._label(tr), self._state(tr)))
        return report

    # --- decisions -------------------------------------------------------------------------

    def _follow_identity(self, tr: Track, m: Match) -> None:
        """Start the track's evidence afresh when the face in it becomes someone else.

        Liveness evidence belongs to one face: a live face that walks up and then holds a photo
        of an enrolled person over itself must not lend the photo its motion, and a photo held
        up until the vote agrees must not be granted on the motion of the face that replaces
        it. So when an encoding names a different person, or is clearly nobody the track was
        (not merely a blurred or turned frame of them), the liveness window restarts, and a track
        granted to one person decides anew for the next.
        """
        if m.person_id is not None:
            new = m.person_id
        elif (
            m.best_person_id is not None
            and m.best_person_id == (tr.identity or m.best_person_id)
            and m.distance <= self.s.match_threshold + SAME_FACE_SLACK
        ):
            return  # a poor frame of the same face (blur, a turn): not someone else
        else:
            new = OTHER_FACE
        if new == tr.identity:
            return
        if tr.identity is not None or tr.matches_before_identity():
            if self.liveness is not None:
                self.liveness.forget(tr.id)
        tr.identity = new
        tr.voted_at = None
        tr.voted = None
        if tr.granted_person is not None and tr.granted_person != new:
            tr.granted_person = None
            tr.logged = None

    def _decide(self, tr: Track, t: float, bgr: np.ndarray) -> Outcome | None:
        if not tr.matches:
            return None
        s = self.s
        result = vote(
            tr.matches, needed=s.votes_needed, window=s.votes_window, margin=s.match_margin
        )
        if result.person_id is not None:
            tr.voted = result
        elif tr.voted is not None and tr.voted.person_id == tr.identity:
            # the vote agreed for the face still in view (later frames of it may be poorer, a
            # small face turning away): it stands until the face becomes someone else
            result = tr.voted
        if result.person_id is None:
            window = list(tr.matches)[-s.votes_window :]
            if (
                len(window) >= s.votes_window
                and result.unknown_votes == len(window)
                and t - tr.first_seen >= UNKNOWN_AFTER_S
            ):
                return self._log(tr, "unknown_face", None, min(m.distance for m in window), t, bgr)
            return None

        if tr.granted_person == result.person_id:
            return None  # let in already: one pulse and one log row per track
        if tr.identity != result.person_id:
            return None  # the face in view now is not the one the votes were for
        person = self.gallery.persons.get(result.person_id)
        if person is None:  # removed between gallery build and now
            return None
        if tr.voted_at is None:
            tr.voted_at = t
        if tr.spoofed:
            return None  # a track caught presenting a photo or screen is never let in
        if self.hold_reason is not None:
            return self._log(tr, self.hold_reason, person, result.distance, t, bgr)
        if self.liveness is not None:
            verdict = self.liveness.verdict(tr.id)
            if verdict.state == "spoof" or (
                verdict.state == "unsure" and t - tr.voted_at > LIVENESS_TIMEOUT_S
            ):
                tr.spoofed = True
                return self._log(
                    tr,
                    "liveness_failed",
                    person,
                    result.distance,
                    t,
                    bgr,
                    detail=getattr(verdict, "detail", None),
                )
            if verdict.state != "live":
                # strict mode asks for a head turn when a still face leaves it unsure
                ask = getattr(self.liveness, "challenge", None)
                if tr.challenge is None and ask is not None:
                    tr.challenge = ask(tr.id)
                return None

        last = self.last_grant.get(result.person_id)
        decision = policy.decide(
            person, self.clock(), s.tz, None if last is None else t - last, s.cooldown_seconds
        )
        if decision.reason == "cooldown":
            # let in moments ago (another track of the same person): no second pulse, no log row
            tr.granted_person = result.person_id
            tr.logged = "granted"
            return None
        if decision.granted:
            self.last_grant[result.person_id] = t
            tr.granted_person = result.person_id
            tr.logged = "granted"
            return Outcome(
                policy.GRANTED,
                None,
                tr.id,
                person["id"],
                person["name"],
                result.distance,
                t,
                tr.box,
                _crop(bgr, tr.box),
            )
        return self._log(tr, decision.reason or "denied", person, result.distance, t, bgr)

    def _log(
        self,
        tr: Track,
        reason: str,
        person: dict | None,
        distance: float,
        t: float,
        bgr: np.ndarray,
        detail: str | None = None,
    ) -> Outcome | None:
        if tr.logged == reason or tr.logged == "granted":
            return None  # said once for this track
        tr.logged = reason
        if detail:
            logger.bind(track=tr.id).debug("liveness: {}", detail)
        return Outcome(
            policy.DENIED,
            reason,
            tr.id,
            person["id"] if person else None,
            person["name"] if person else None,
            None if distance == float("inf") else distance,
            t,
            tr.box,
            _crop(bgr, tr.box),
        )

    # --- annotation ------------------------------------------------------------------------

    def _label(self, tr: Track) -> str:
        if tr.granted_person:
            p = self.gallery.persons.get(tr.granted_person)
            return p["name"] if p else "granted"
        if tr.logged:
            return tr.logged.replace("_", " ")
        if tr.challenge == "turn_head":
            return "please turn your head"
        return "..."

    @staticmethod
    def _state(tr: Track) -> bool | None:
        if tr.granted_person:
            return True
        return False if tr.logged else None


def _crop(bgr: np.ndarray, box: Box, pad: float = 0.25) -> np.ndarray:
    top, right, bottom, left = box
    h, w = bottom - top, right - left
    y0, y1 = max(0, int(top - pad * h)), min(bgr.shape[0], int(bottom + pad * h))
    x0, x1 = max(0, int(left - pad * w)), min(bgr.shape[1], int(right + pad * w))
    return bgr[y0:y1, x0:x1].copy()
