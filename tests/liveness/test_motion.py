"""The motion liveness check on real landmarks: a photo held up never passes, a real face does."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.liveness import (
    AlwaysLive,
    LivenessVerdict,
    MotionLiveness,
    MotionParams,
    homography_residual,
    make_liveness,
)
from tests.liveness.attacks import FaceSequence
from tests.liveness.conftest import ATTACKS

#: The issue's limit: liveness may delay the first grant by at most 0.5 s of video.
MAX_DELAY_S = 0.5


def replay(seq: FaceSequence, check=None) -> list[tuple[float, LivenessVerdict]]:
    """Feed a face track to a liveness check frame by frame; the verdict after each frame."""
    check = check or MotionLiveness()
    out = []
    for t, lm, crop in zip(seq.t, seq.landmarks, seq.crops):
        check.observe(7, t, lm, crop)
        out.append((t, check.verdict(7)))
    return out


def first(states, state: str) -> float | None:
    return next((t for t, v in states if v.state == state), None)


@pytest.mark.parametrize("detect_every", [1, 2, 5, 10])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_photo_held_up_is_never_live(attacks, name, detect_every):
    seq = attacks(name).every(detect_every)
    assert len(seq) >= 0.8 * ATTACKS[name].n_frames / detect_every, "attack face not tracked"
    states = replay(seq)
    live = [(round(t - seq.t[0], 2), v) for t, v in states if v.state == "live"]
    assert not live, f"{name}: photo judged live: {live[:3]}"
    # The hand moved the photo rigidly for 2.5 s: it is called out, not left unsure (a slow CPU,
    # 3 frames a second, sees it called out as late as 2.1 s).
    spoof_at = first(states, "spoof")
    limit = 2.0 + 0.1 * detect_every / 5
    assert spoof_at is not None and spoof_at - seq.t[0] <= limit, states[-1][1]


@pytest.mark.parametrize("detect_every", [1, 2])
def test_real_face_is_live_within_half_a_second(lin_sequence, detect_every):
    seq = lin_sequence.every(detect_every)
    states = replay(seq)
    live_at = first(states, "live")
    assert live_at is not None, states[-1][1]
    assert live_at - seq.t[0] <= MAX_DELAY_S, f"live only after {live_at - seq.t[0]:.2f} s"
    assert first(states, "spoof") is None
    # And it stays live while he talks: the vote may take a while to agree.
    later = [v.state for t, v in states if t - seq.t[0] > MAX_DELAY_S]
    assert later.count("live") >= 0.8 * len(later)


@pytest.mark.parametrize("every", [5, 10, 12, 15])
def test_real_face_is_live_from_the_few_frames_a_slow_cpu_gives(lin_sequence, every):
    """6 to 2 frames a second (a Pi's share of a core): the evidence is judged over time, so
    the talking face is live once min_frames frames of it were seen, or min_frames_slow when
    they span slow_span_s; at 2 frames a second five frames never fit the window."""
    seq = lin_sequence.every(every)
    states = replay(seq)
    live_at = first(states, "live")
    frame_s = seq.t[1] - seq.t[0]
    p = MotionParams()
    needed = min(p.min_frames, max(p.min_frames_slow, int(p.slow_span_s / frame_s) + 1))
    assert live_at is not None, states[-1][1]
    assert live_at - seq.t[0] <= (needed + 1) * frame_s, live_at - seq.t[0]
    assert first(states, "spoof") is None


@pytest.mark.parametrize("every", [12, 15])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_photo_held_up_is_never_live_at_two_frames_a_second(attacks, name, every):
    """Frames 0.4-0.5 s apart (15 % of a core): three frames decide, and none of the prints
    passes (every pair of the three must bend; a print's pairs stay near 1x jitter)."""
    seq = attacks(name).every(every)
    live = [round(t - seq.t[0], 2) for t, v in replay(seq) if v.state == "live"]
    assert not live, f"{name}: photo judged live at {live[:3]}"


def test_no_face_of_the_clip_is_called_a_spoof(clip_sequences):
    for seq in clip_sequences:
        states = replay(seq)
        assert first(states, "spoof") is None, (seq.frame_idx[0], states[-1][1])


def test_homography_explains_a_tilted_photo_but_not_an_opened_mouth(lin_landmarks):
    lm = lin_landmarks.astype(np.float64)
    tilt = np.array([[0.9, 0.12, 30.0], [-0.08, 1.05, -12.0], [4e-4, -2e-4, 1.0]])
    moved = np.c_[lm, np.ones(68)] @ tilt.T
    moved = moved[:, :2] / moved[:, 2:]
    assert homography_residual(lm, moved) < 1e-3
    talking = moved.copy()
    talking[57:60] += (0.0, 6.0)  # lower lip drops
    talking[65:68] += (0.0, 6.0)
    assert homography_residual(lm, talking) > 2.0


def test_verdict_needs_frames_and_forget_drops_the_track(lin_sequence):
    check = MotionLiveness()
    assert check.verdict(1).state == "unsure"
    check.observe(1, lin_sequence.t[0], lin_sequence.landmarks[0], None)
    assert check.verdict(1).state == "unsure"
    replay(lin_sequence, check)
    assert check.verdict(7).state == "live"
    check.forget(7)
    assert check.verdict(7).state == "unsure"


def test_time_going_back_restarts_the_track(lin_sequence):
    check = MotionLiveness()
    replay(lin_sequence, check)
    check.observe(7, lin_sequence.t[-1], lin_sequence.landmarks[-1], None)  # same frame again
    assert check.verdict(7).state == "live"
    check.observe(7, 0.0, lin_sequence.landmarks[0], None)
    assert check.verdict(7).state == "unsure"


@pytest.mark.parametrize("bad", [np.zeros((5, 2)), np.full((68, 2), np.nan)])
def test_bad_landmarks_are_refused_with_a_clear_error(bad):
    with pytest.raises(ValueError, match="landmarks"):
        MotionLiveness().observe(1, 0.0, bad, None)


def test_modes_from_settings(settings):
    assert isinstance(make_liveness(settings.model_copy(update={"liveness": "off"})), AlwaysLive)
    assert make_liveness(settings.model_copy(update={"liveness": "off"})).verdict(3).state == "live"
    assert isinstance(make_liveness(settings), MotionLiveness)  # the default
    with pytest.raises(ValueError, match="liveness"):
        make_liveness("sometimes")
