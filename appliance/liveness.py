"""Liveness: refuse a photo (or a still image on a screen) held up to the camera.

A plain RGB camera cannot prove that a face is alive, but it can refuse the common cheap attack.
A printed photo is a plane: however it is moved, tilted or held, every landmark of its face
follows one homography of the landmarks in any other frame, up to the landmark model's jitter. A
live face does not: speaking, blinking and turning the head (parallax between nose, eyes and jaw)
bend the landmark geometry in ways no homography explains.

``motion`` fits a homography between the 68 dlib landmarks of pairs of frames of a track, takes
the residual that is left, and compares it with the jitter the landmark model shows on a rigid
photo of the same size. ``strict`` adds a cue from the face crop (the colour moire of a screen's
pixel grid) and asks for a challenge (head turn) when the motion evidence stays unsure. ``off``
says "live".

What this does not cover: a video of the person replayed on a screen (it moves non-rigidly; the
strict screen cue catches only part of such replays), 3-D masks, and a photo bent on purpose
while it is held up. Decision logic only, no I/O: the pipeline calls
:meth:`LivenessCheck.observe` for every processed frame and asks :meth:`verdict` before it grants.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

import cv2
import numpy as np
from loguru import logger

LivenessState = Literal["live", "spoof", "unsure"]

#: The pipeline denies with ``liveness_failed`` when a track has stayed "unsure" this long (s).
UNSURE_TIMEOUT_S = 3.0

#: dlib 68-point indices: eyes for the inter-ocular distance; the jaw line is left out of the
#: fit because it is the least stable part of the model (it follows weak edges, and on a photo it
#: jitters in proportion to the face size).
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
FIT_POINTS = np.r_[17:68]  # brows, nose, eyes, mouth


@dataclass(frozen=True)
class LivenessVerdict:
    """A track's liveness state, with the evidence behind it.

    ``score`` is the non-rigidity of the track's recent landmarks in multiples of the landmark
    jitter a rigid photo shows at that face size: about 1 for a photo, 1.5-3 for a talking face.
    """

    state: LivenessState
    score: float
    detail: str


class LivenessCheck(Protocol):
    """What the pipeline calls: observe every processed frame of a track, ask before granting."""

    def observe(
        self, track_id: int, t: float, landmarks: np.ndarray, face_bgr: np.ndarray | None
    ) -> None: ...

    def verdict(self, track_id: int) -> LivenessVerdict: ...

    def forget(self, track_id: int) -> None: ...

    def challenge(self, track_id: int) -> str | None: ...


# --- pure geometry -------------------------------------------------------------------------------


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres, in pixels."""
    return float(np.linalg.norm(landmarks[RIGHT_EYE].mean(0) - landmarks[LEFT_EYE].mean(0)))


def expected_jitter_px(iod: float) -> float:
    """90th-percentile landmark residual (px) between two frames of a rigid photo.

    Measured on the attack videos of tests/liveness (photos moved and tilted by hand, JPEG,
    sensor noise, motion blur): about 0.9 px at 20 px between the eyes, 1.2 px at 57 px. Most of
    it is pixel-level noise, so it grows slowly with the face size.
    """
    return 0.75 + 0.008 * iod


def homography_residual(src: np.ndarray, dst: np.ndarray) -> float | None:
    """90th percentile (px) of what a least-squares homography src -> dst leaves unexplained.

    ``None`` when no homography fits (degenerate landmarks).
    """
    a = src[FIT_POINTS].astype(np.float64)
    b = dst[FIT_POINTS].astype(np.float64)
    hmat, _ = cv2.findHomography(a, b, 0)
    if hmat is None or not np.all(np.isfinite(hmat)):
        return None
    fitted = cv2.perspectiveTransform(a[None], hmat)[0]
    return float(np.percentile(np.linalg.norm(fitted - b, axis=1), 90))


def _validated(landmarks: np.ndarray) -> np.ndarray:
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.shape != (68, 2):
        raise ValueError(f"liveness needs dlib's 68 landmarks as a (68, 2) array, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("landmarks contain NaN or infinite values")
    return arr


# --- motion check -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionParams:
    """Tuning of the motion check; defaults measured on the fixture clip and the attack videos."""

    window_s: float = 0.6  # "live" needs non-rigid evidence this recent ...
    #: ... or, when a slow CPU gives fewer frames, as recent as the last ``min_frames`` frames,
    #: up to this: the evidence is judged over time, not over a count of frames per second
    max_window_s: float = 1.5
    min_gap_s: float = 0.12  # frame pairs closer than this show too little change
    min_frames: int = 5  # frames in the window needed before any verdict ...
    #: ... or this many when they span ``slow_span_s``: on a slow CPU frames come 0.2-0.4 s
    #: apart, and three frames that far apart show more motion than five a frame apart (every
    #: pair of them must then bend, see :func:`window_score`)
    min_frames_slow: int = 3
    slow_span_s: float = 0.5
    live_score: float = 1.4  # median pair residual, in jitter units, to call a face live
    spoof_after_s: float = 1.5  # a rigid track observed this long is called a spoof ...
    spoof_score: float = 1.15  # ... if its residual stayed under this ...
    spoof_motion: float = 0.15  # ... while it moved at least this much (inter-ocular units)
    stale_s: float = 30.0  # tracks not observed this long are dropped (a missed forget())


@dataclass
class _Pair:
    t_ref: float
    t: float
    score: float  # residual / expected jitter
    moved: float  # mean landmark displacement / inter-ocular distance


@dataclass
class _Track:
    frames: deque = field(default_factory=deque)  # (t, landmarks, iod)
    pairs: deque = field(default_factory=deque)  # _Pair, oldest first
    first_t: float = 0.0
    last_t: float = 0.0


def window_score(pairs: list[_Pair]) -> float:
    """Median pair score, leaving out whichever single frame argues most for "live".

    One odd frame (a sharp frame among blurred ones, a detector box of another size) shifts the
    landmarks of every pair it is in; it must not be enough to call a photo live.
    """
    scores = np.array([p.score for p in pairs])
    refs = np.array([p.t_ref for p in pairs])
    ts = np.array([p.t for p in pairs])
    best = float(np.median(scores))
    for f in np.union1d(refs, ts):
        rest = scores[(refs != f) & (ts != f)]
        if rest.size:
            best = min(best, float(np.median(rest)))
    return best


class MotionLiveness:
    """Non-rigid landmark motion over the recent frames of each track (see the module doc)."""

    def __init__(self, params: MotionParams | None = None) -> None:
        self.p = params or MotionParams()
        self._tracks: dict[int, _Track] = {}

    def observe(
        self, track_id: int, t: float, landmarks: np.ndarray, face_bgr: np.ndarray | None = None
    ) -> None:
        lm = _validated(landmarks)
        track = self._tracks.get(track_id)
        if track is not None and t == track.last_t and track.frames:
            return  # the same frame twice: nothing new
        if track is not None and t < track.last_t:
            logger.warning(
                "liveness: track {} time went back ({} -> {}); starting it again",
                track_id,
                track.last_t,
                t,
            )
            track = None
        if track is None:
            track = self._tracks[track_id] = _Track(first_t=t, last_t=t)
        self._drop_stale(t)
        iod = inter_ocular(lm)
        if iod < 4.0:
            return  # collapsed landmarks: no geometry to measure
        horizon = max(self.p.max_window_s, self.p.spoof_after_s)
        # the frames this one joins: the last min_frames (with it) however slowly they came
        window = self._window([f[0] for f in track.frames] + [t], t)
        for t_ref, ref, ref_iod in track.frames:
            if t - t_ref < self.p.min_gap_s or t - t_ref > window:
                continue
            residual = homography_residual(ref, lm)
            if residual is None:
                continue
            mean_iod = (iod + ref_iod) / 2
            moved = float(np.linalg.norm(lm - ref, axis=1).mean()) / mean_iod
            track.pairs.append(_Pair(t_ref, t, residual / expected_jitter_px(mean_iod), moved))
        track.frames.append((t, lm, iod))
        track.last_t = t
        while track.frames and track.frames[0][0] < t - self.p.max_window_s:
            track.frames.popleft()
        while track.pairs and track.pairs[0].t_ref < t - horizon:
            track.pairs.popleft()

    def verdict(self, track_id: int) -> LivenessVerdict:
        track = self._tracks.get(track_id)
        if track is None:
            return LivenessVerdict("unsure", 0.0, "no frames of this track yet")
        now = track.last_t
        window = self._window([f[0] for f in track.frames], now)
        recent = [p for p in track.pairs if p.t_ref >= now - window]
        times = {p.t_ref for p in recent} | {p.t for p in recent}
        n_frames = len(times)
        spread = max(times) - min(times) >= self.p.slow_span_s if times else False
        needed = self.p.min_frames_slow if spread else self.p.min_frames
        if n_frames < needed:
            return LivenessVerdict("unsure", 0.0, f"{n_frames} frames compared, {needed} needed")
        score = window_score(recent)
        if score >= self.p.live_score:
            return LivenessVerdict(
                "live", score, f"non-rigid landmarks: {score:.2f}x jitter over {len(recent)} pairs"
            )
        long = [p for p in track.pairs if p.t_ref >= now - self.p.spoof_after_s]
        observed = now - track.first_t
        if observed >= self.p.spoof_after_s and long:
            long_score = float(np.median([p.score for p in long]))
            moved = max(p.moved for p in long)
            if long_score < self.p.spoof_score and moved >= self.p.spoof_motion:
                return LivenessVerdict(
                    "spoof",
                    long_score,
                    f"rigid motion: moved {moved:.2f} eye distances, residual "
                    f"{long_score:.2f}x jitter over {observed:.1f} s",
                )
        return LivenessVerdict(
            "unsure", score, f"non-rigid evidence {score:.2f}x jitter, {self.p.live_score} needed"
        )

    def _window(self, times: list[float], now: float) -> float:
        """Seconds back that the evidence may reach: ``window_s`` at a full frame rate, longer
        (up to ``max_window_s``) when the last ``min_frames`` frames came more slowly."""
        n = self.p.min_frames
        span = now - times[-n] if len(times) >= n else self.p.max_window_s
        return max(self.p.window_s, min(self.p.max_window_s, span))

    def forget(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def challenge(self, track_id: int) -> str | None:
        """``motion`` never asks for a challenge (see :class:`StrictLiveness`)."""
        return None

    def observed_for(self, track_id: int) -> float:
        """Seconds of stream time between the track's first and last observed frame."""
        track = self._tracks.get(track_id)
        return 0.0 if track is None else track.last_t - track.first_t

    def _drop_stale(self, now: float) -> None:
        stale = [k for k, tr in self._tracks.items() if tr.last_t < now - self.p.stale_s]
        for k in stale:
            del self._tracks[k]


class AlwaysLive:
    """Liveness ``off``: every face counts as live (the door trusts recognition alone)."""

    def observe(
        self, track_id: int, t: float, landmarks: np.ndarray, face_bgr: np.ndarray | None = None
    ) -> None:
        return None

    def verdict(self, track_id: int) -> LivenessVerdict:
        return LivenessVerdict("live", 0.0, "liveness check off")

    def forget(self, track_id: int) -> None:
        return None

    def challenge(self, track_id: int) -> str | None:
        return None


# --- strict: screen cues and a challenge --------------------------------------------------------

#: The challenge the door can show / signal (LED blinks, display says "please turn your head").
TURN_HEAD = "turn_head"


def screen_score(face_bgr: np.ndarray) -> float | None:
    """Fine colour texture relative to fine brightness texture of a face crop.

    A phone or monitor filmed by a camera shows its red/green/blue sub-pixel grid as colour moire:
    fine detail in the colour channels. Skin, in a camera's own (chroma-subsampled) pictures, has
    its fine detail almost only in brightness. A weak cue (an out-of-focus real face scores
    0.3-0.4, a phone replay 0.3-1.1 depending on the frame): it catches strong moire only.
    ``None`` for crops too small or too flat to judge.
    """
    if face_bgr is None or face_bgr.ndim != 3 or min(face_bgr.shape[:2]) < 24:
        return None
    # The middle half of the crop: skin (eyes, nose, cheeks), not hair, collar or background
    h, w = face_bgr.shape[:2]
    inner = face_bgr[h // 4 : h - h // 4, w // 4 : w - w // 4]
    ycc = cv2.cvtColor(inner, cv2.COLOR_BGR2YCrCb).astype(np.float32)

    def fine(channel: np.ndarray) -> float:
        return float(np.mean(np.abs(channel - cv2.GaussianBlur(channel, (0, 0), 2.0))))

    luma = fine(ycc[..., 0])
    if luma < 1.0:
        return None  # a flat (dark, over-exposed or blurred) crop says nothing
    return (fine(ycc[..., 1]) + fine(ycc[..., 2])) / luma


@dataclass(frozen=True)
class StrictParams:
    screen_limit: float = 0.40  # 75th percentile of a track's screen scores above this: a screen
    min_crops: int = 3  # crops judged before "live"
    crop_window_s: float = 5.0  # screen evidence adds up over the whole presentation
    challenge_after_s: float = 1.0  # unsure this long: ask for a head turn


class StrictLiveness:
    """``motion`` plus a screen check on the face crops, and a challenge when unsure.

    The screen check is what stops a video of the person replayed on a phone: it moves
    non-rigidly, so the motion check alone passes it. When the motion evidence stays unsure for
    ``challenge_after_s`` (someone standing very still), :meth:`challenge` returns
    :data:`TURN_HEAD`: the door blinks its LED / asks to turn the head, and the turn (parallax
    between nose, eyes and jaw) is the non-rigid evidence the motion check needs.
    """

    def __init__(
        self, motion: MotionParams | None = None, params: StrictParams | None = None
    ) -> None:
        self.motion = MotionLiveness(motion)
        self.p = params or StrictParams()
        self._scores: dict[int, deque] = {}

    def observe(
        self, track_id: int, t: float, landmarks: np.ndarray, face_bgr: np.ndarray | None = None
    ) -> None:
        self.motion.observe(track_id, t, landmarks, face_bgr)
        scores = self._scores.setdefault(track_id, deque())
        if scores and t <= scores[-1][0]:
            scores.clear()
        score = screen_score(face_bgr) if face_bgr is not None else None
        if score is not None:
            scores.append((t, score))
        while scores and scores[0][0] < t - self.p.crop_window_s:
            scores.popleft()
        for k in [k for k in self._scores if k not in self.motion._tracks]:
            del self._scores[k]  # dropped as stale by the motion check

    def verdict(self, track_id: int) -> LivenessVerdict:
        motion = self.motion.verdict(track_id)
        scores = [s for _, s in self._scores.get(track_id, ())]
        if len(scores) >= self.p.min_crops:
            # moire comes and goes as the phone moves: judge the track by its upper quartile
            screen = float(np.percentile(scores, 75))
            if screen > self.p.screen_limit:
                return LivenessVerdict(
                    "spoof", motion.score, f"screen-like colour moire {screen:.2f} in the crop"
                )
        elif motion.state == "live":
            needed = self.p.min_crops
            return LivenessVerdict(
                "unsure", motion.score, f"{len(scores)} face crops judged, {needed} needed"
            )
        return motion

    def forget(self, track_id: int) -> None:
        self.motion.forget(track_id)
        self._scores.pop(track_id, None)

    def challenge(self, track_id: int) -> str | None:
        """:data:`TURN_HEAD` when the track has been unsure too long, else ``None``."""
        if self.verdict(track_id).state != "unsure":
            return None
        if self.motion.observed_for(track_id) < self.p.challenge_after_s:
            return None
        return TURN_HEAD


def make_liveness(settings) -> LivenessCheck:
    """The liveness check the settings ask for: ``off``, ``motion`` or ``strict``."""
    mode = getattr(settings, "liveness", settings)
    if mode == "off":
        return AlwaysLive()
    if mode == "motion":
        return MotionLiveness()
    if mode == "strict":
        return StrictLiveness()
    raise ValueError(f"unknown liveness mode {mode!r} (off, motion or strict)")
