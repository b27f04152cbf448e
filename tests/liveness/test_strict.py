"""The strict liveness check: screen cue on the face crop, and a challenge when unsure."""

from __future__ import annotations

import numpy as np

from appliance.liveness import TURN_HEAD, MotionLiveness, StrictLiveness, screen_score
from tests.liveness.test_motion import MAX_DELAY_S, first, replay


def test_video_replay_on_a_phone_passes_motion_but_not_strict(screen_replay):
    # A replayed video moves non-rigidly: the motion check alone is fooled (documented gap) ...
    assert first(replay(screen_replay, MotionLiveness()), "live") is not None
    # ... the colour moire of the phone's pixel grid is what strict refuses.
    states = replay(screen_replay, StrictLiveness())
    assert first(states, "live") is None
    assert states[-1][1].state == "spoof" and "screen" in states[-1][1].detail


def test_real_face_is_live_with_strict_within_half_a_second(lin_sequence):
    states = replay(lin_sequence, StrictLiveness())
    live_at = first(states, "live")
    assert live_at is not None and live_at - lin_sequence.t[0] <= MAX_DELAY_S
    assert first(states, "spoof") is None


def test_photo_held_up_is_never_live_with_strict(attacks):
    for name in ("rigid_small", "perspective_large"):
        assert first(replay(attacks(name), StrictLiveness()), "live") is None


def test_a_still_face_is_asked_to_turn_its_head(lin_sequence):
    check = StrictLiveness()
    rng = np.random.default_rng(0)
    still = lin_sequence.landmarks[0]
    t0 = lin_sequence.t[0]
    for k in range(40):  # 1.3 s of a face that does not move at all
        jitter = rng.normal(0, 0.3, still.shape).astype(np.float32)
        check.observe(1, t0 + k / 30, still + jitter, lin_sequence.crops[0])
    assert check.verdict(1).state == "unsure"
    assert check.challenge(1) == TURN_HEAD
    # once the face moves as a live one does, the challenge is over
    for t, lm, crop in zip(lin_sequence.t, lin_sequence.landmarks, lin_sequence.crops):
        check.observe(1, t + 2.0, lm, crop)
    assert check.verdict(1).state == "live"
    assert check.challenge(1) is None
    assert MotionLiveness().challenge(1) is None


def test_screen_score_ignores_crops_it_cannot_judge(lin_sequence):
    assert screen_score(np.zeros((10, 10, 3), np.uint8)) is None
    assert screen_score(np.full((80, 80, 3), 128, np.uint8)) is None  # flat: nothing to judge
    assert 0.0 < screen_score(lin_sequence.crops[10]) < 0.4
