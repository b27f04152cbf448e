"""Every rule of a track's decision, as pure functions with a given clock (no models, no video)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from appliance.match import Match
from appliance.track_decision import (
    OTHER_FACE,
    SAME_FACE_SLACK,
    UNKNOWN_AFTER_S,
    Context,
    Liveness,
    Rules,
    Step,
    TrackState,
    decide,
    encoded,
    gallery_changed,
    judge_still,
)

RULES = Rules(
    votes_needed=2,
    votes_window=4,
    match_threshold=0.55,
    match_margin=0.08,
    cooldown_seconds=5.0,
    tz=ZoneInfo("UTC"),
    liveness_timeout_s=3.0,
)
WALL = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ANN = {"id": "ann", "name": "Ann", "active": True, "schedule_windows": None}
BOB = {"id": "bob", "name": "Bob", "active": True, "schedule_windows": None}
PERSONS = {"ann": ANN, "bob": BOB}

A = Match("ann", 0.40, 0.20, "ann")
B = Match("bob", 0.42, 0.20, "bob")
A_BLURRED = Match(None, 0.55 + SAME_FACE_SLACK - 0.01, 0.20, "ann")  # over the threshold, near
A_NO_MARGIN = Match("ann", 0.40, 0.01, "ann")
NOBODY = Match(None, 0.80, 0.05, "ann")
LIVE = Liveness("live", "moves like a face")
UNSURE = Liveness("unsure", "3 frames compared, 5 needed")


def ctx(now: float, **kw) -> Context:
    return Context(now, WALL, kw.pop("persons", PERSONS), kw.pop("last_grant", {}), **kw)


def feed(state: TrackState, *matches: Match) -> TrackState:
    for m in matches:
        state = encoded(state, m, RULES).state
    return state


def new(*matches: Match, first_seen: float = 0.0) -> TrackState:
    return feed(TrackState(first_seen=first_seen), *matches)


def at(state: TrackState, now: float, liveness: Liveness | None = None, **kw) -> Step:
    return decide(state, ctx(now, **kw), liveness, RULES)


# --- the vote ----------------------------------------------------------------------------------


def test_one_encoding_does_not_decide_two_of_four_do():
    assert at(new(A), 0.1).decision is None
    step = at(new(A, A), 0.2)
    assert step.decision is not None and step.decision.granted
    assert step.decision.person is ANN and step.decision.distance == 0.40
    assert step.decision.kind == "access_granted"


def test_two_of_four_with_poorer_frames_between():
    assert at(new(A, NOBODY, A), 0.3).decision.granted


def test_votes_that_left_the_window_do_not_count():
    # the two votes for Ann are five and four encodings ago: only the last four count
    state = new(A, A, A_BLURRED, A_BLURRED, A_BLURRED)
    assert state.identity == "ann"
    assert at(state, 0.5, LIVE).decision is None


def test_matches_without_margin_never_agree():
    step = at(new(A_NO_MARGIN, A_NO_MARGIN, A_NO_MARGIN), 0.5)
    assert step.decision is None


def test_two_people_tied_do_not_decide():
    assert at(new(A, B, A, B), 0.5).decision is None


def test_an_agreed_vote_stands_while_the_face_stays_the_same():
    state = at(new(A, A), 0.2, UNSURE).state  # agreed, waiting for liveness
    state = feed(state, A_BLURRED, A_BLURRED, A_BLURRED)  # poorer frames of the same face
    step = at(state, 0.6, LIVE)
    assert step.decision is not None and step.decision.granted


# --- the strong single vote ------------------------------------------------------------------

STRONG = replace(RULES, strong_threshold=0.35)
A_STRONG = Match("ann", 0.30, 0.20, "ann")
A_STRONG_NO_MARGIN = Match("ann", 0.30, 0.01, "ann")
B_STRONG = Match("bob", 0.30, 0.20, "bob")
#: under the strong distance but refused by the matcher's cohort ratio: no vote at all
A_STRONG_CROWDED = Match(None, 0.30, 0.20, "ann", ratio=0.9)


def strong_at(state: TrackState, now: float, liveness: Liveness | None) -> Step:
    return decide(state, ctx(now), liveness, STRONG)


def strong_new(*matches: Match) -> TrackState:
    state = TrackState(first_seen=0.0)
    for m in matches:
        state = encoded(state, m, STRONG).state
    return state


def test_one_strong_encoding_grants_a_live_face():
    step = strong_at(strong_new(A_STRONG), 0.1, LIVE)
    assert step.decision is not None and step.decision.granted
    assert step.decision.person is ANN and step.decision.distance == 0.30


def test_one_strong_encoding_still_waits_for_liveness():
    step = strong_at(strong_new(A_STRONG), 0.1, UNSURE)
    assert step.decision is None and step.state.voted_at == 0.1
    step = strong_at(step.state, 0.1 + RULES.liveness_timeout_s + 0.01, UNSURE)
    assert step.decision is not None and step.decision.reason == "liveness_failed"
    assert strong_at(strong_new(A_STRONG), 0.1, Liveness("spoof")).decision.reason == (
        "liveness_failed"
    )


def test_one_ordinary_encoding_still_needs_a_second():
    assert strong_at(strong_new(A), 0.1, LIVE).decision is None  # 0.40: under the threshold only
    assert strong_at(strong_new(A, A), 0.2, LIVE).decision.granted


def test_a_strong_distance_without_margin_or_cohort_is_no_vote():
    assert strong_at(strong_new(A_STRONG_NO_MARGIN), 0.1, LIVE).decision is None
    assert strong_at(strong_new(A_STRONG_CROWDED), 0.1, LIVE).decision is None


def test_a_strong_match_contradicted_in_the_window_does_not_decide():
    # Bob named confidently in the same window: a strong match for Ann is not enough on its own
    state = strong_new(B, A_STRONG)
    assert state.identity == "ann"
    assert strong_at(state, 0.2, LIVE).decision is None


def test_the_strong_rule_is_off_by_default_in_the_rules():
    assert at(new(A_STRONG), 0.1, LIVE).decision is None


def test_two_strong_matches_for_different_people_decide_nothing():
    # Ann strongly, then Bob strongly in the same track: neither is let in on one encoding
    state = strong_new(A_STRONG, B_STRONG)
    assert state.identity == "bob"
    assert strong_at(state, 0.2, LIVE).decision is None


# --- identity following ------------------------------------------------------------------------


def test_first_identity_keeps_liveness_evidence():
    step = encoded(TrackState(first_seen=0.0), A, RULES)
    assert step.state.identity == "ann" and not step.restart_liveness


def test_identity_after_nobody_restarts_liveness():
    state = new(NOBODY)
    assert state.identity == OTHER_FACE
    step = encoded(state, A, RULES)
    assert step.state.identity == "ann" and step.restart_liveness


def test_a_poor_frame_of_the_same_face_is_not_someone_else():
    state = new(A, A)
    step = encoded(state, A_BLURRED, RULES)
    assert step.state.identity == "ann" and not step.restart_liveness


def test_switching_person_restarts_vote_time_and_liveness():
    state = at(new(A, A), 0.2, UNSURE).state
    assert state.voted_at == 0.2 and state.voted is not None
    step = encoded(state, B, RULES)
    assert step.restart_liveness
    assert step.state.identity == "bob"
    assert step.state.voted is None and step.state.voted_at is None


def test_votes_for_someone_no_longer_in_view_do_not_grant():
    # two votes for Ann, then Bob's face: the vote still names Ann, but she is gone
    state = new(A, A, B)
    assert state.identity == "bob"
    assert at(state, 0.3, LIVE).decision is None


def test_a_granted_track_decides_anew_for_the_next_person():
    state = at(new(A, A), 0.2).state
    assert state.granted_person == "ann"
    state = feed(state, B, B, B)
    assert state.granted_person is None and state.logged is None
    step = at(state, 0.5)
    assert step.decision.granted and step.decision.person is BOB


def test_a_new_gallery_clears_the_matches_only():
    state = at(new(A, A), 0.2).state
    fresh = gallery_changed(state)
    assert fresh.matches == () and fresh.granted_person == "ann" and fresh.identity == "ann"
    assert at(fresh, 0.3).decision is None


# --- one decision per track --------------------------------------------------------------------


def test_one_grant_per_track():
    state = new(A, A)
    step = at(state, 0.2)
    assert step.decision.granted
    state = step.state
    for i in range(20):  # the person stands there: more frames, no second grant
        state = feed(state, A)
        step = at(state, 0.3 + i * 0.1)
        assert step.decision is None
        state = step.state


def test_a_denial_is_logged_once_per_reason():
    disabled = {"ann": {**ANN, "active": False}}
    step = at(new(A, A), 0.2, persons=disabled)
    assert step.decision.reason == "disabled" and not step.decision.granted
    step = at(feed(step.state, A), 0.3, persons=disabled)
    assert step.decision is None
    step = at(feed(step.state, A), 0.4, persons=disabled, hold="gallery_stale")
    assert step.decision.reason == "gallery_stale"


def test_a_person_removed_from_the_gallery_is_not_decided():
    assert at(new(A, A), 0.2, persons={}).decision is None


# --- unknown faces -----------------------------------------------------------------------------


def test_unknown_only_after_a_second_with_a_full_window():
    state = new(NOBODY, NOBODY, NOBODY, NOBODY)
    assert at(state, UNKNOWN_AFTER_S - 0.01).decision is None
    step = at(state, UNKNOWN_AFTER_S)
    assert step.decision.reason == "unknown_face" and step.decision.person is None
    assert step.decision.distance == 0.80
    assert at(feed(step.state, NOBODY), 2.0).decision is None  # said once


def test_not_unknown_while_the_window_is_not_full():
    assert at(new(NOBODY, NOBODY, NOBODY), 5.0).decision is None


def test_one_confident_match_in_the_window_is_not_unknown():
    assert at(new(NOBODY, NOBODY, NOBODY, A), 5.0).decision is None


def test_matches_without_margin_count_as_unknown():
    state = new(A_NO_MARGIN, A_NO_MARGIN, A_NO_MARGIN, A_NO_MARGIN)
    assert at(state, 1.5).decision.reason == "unknown_face"


def test_unknown_distance_of_an_empty_gallery_is_none():
    inf = Match(None, float("inf"), float("inf"), None)
    assert at(new(inf, inf, inf, inf), 1.5).decision.distance is None


# --- liveness ----------------------------------------------------------------------------------


def test_an_agreed_vote_waits_for_live():
    step = at(new(A, A), 0.2, UNSURE)
    assert step.decision is None and step.state.voted_at == 0.2
    step = at(feed(step.state, A), 1.0, LIVE)
    assert step.decision.granted


def test_unsure_past_the_timeout_fails_and_the_track_is_never_let_in():
    state = at(new(A, A), 0.2, UNSURE).state
    assert at(state, 0.2 + RULES.liveness_timeout_s, UNSURE).decision is None
    step = at(state, 0.21 + RULES.liveness_timeout_s, UNSURE)
    assert step.decision.reason == "liveness_failed" and step.decision.person is ANN
    assert step.decision.detail == UNSURE.detail
    assert at(feed(step.state, A), 4.0, LIVE).decision is None


def test_spoof_fails_at_once():
    step = at(new(A, A), 0.2, Liveness("spoof", "rigid motion"))
    assert step.decision.reason == "liveness_failed" and step.state.spoofed


def test_the_liveness_timer_starts_again_for_the_next_face():
    state = at(new(A, A), 0.2, UNSURE).state
    state = at(feed(state, B, B, B), 2.5, UNSURE).state  # Bob replaces Ann: his vote agrees
    assert state.voted_at == 2.5
    assert at(state, 4.0, UNSURE).decision is None  # Ann's 3 s would have run out by now


def test_a_challenge_is_shown_once():
    ask = Liveness("unsure", "still face", challenge="turn_head")
    step = at(new(A, A), 0.2, ask)
    assert step.prompt == "turn_head" and step.state.challenge == "turn_head"
    assert at(feed(step.state, A), 0.3, ask).prompt is None


# --- hold and policy ---------------------------------------------------------------------------


def test_a_hold_denies_with_its_reason_then_grants_once_lifted():
    step = at(new(A, A), 0.2, hold="gallery_stale")
    assert step.decision.reason == "gallery_stale" and step.decision.person is ANN
    step = at(feed(step.state, A), 0.3)
    assert step.decision.granted


def test_cooldown_is_silent_and_counts_as_let_in():
    step = at(new(A, A), 10.0, last_grant={"ann": 6.0})  # another track of Ann, 4 s ago
    assert step.decision is None and step.state.granted_person == "ann"
    step = at(new(A, A), 11.0, last_grant={"ann": 6.0})  # 5 s later: a new entry
    assert step.decision.granted


def test_policy_reasons_come_from_the_policy():
    later = {"ann": {**ANN, "valid_from": "2027-01-01T00:00:00Z"}}
    assert at(new(A, A), 0.2, persons=later).decision.reason == "not_yet_valid"


# --- identify: the same rules for a still photo ------------------------------------------------


def test_judge_still_uses_the_door_rules():
    now = ctx(0.0, last_grant={"ann": 0.0}, hold="gallery_stale")  # neither applies to a photo
    assert judge_still(A, now, RULES).granted
    assert judge_still(A_NO_MARGIN, now, RULES).reason == "unknown_face"
    assert judge_still(NOBODY, now, RULES).reason == "unknown_face"
    disabled = replace(now, persons={"ann": {**ANN, "active": False}})
    assert judge_still(A, disabled, RULES).reason == "disabled"
    assert judge_still(A, replace(now, persons={}), RULES).reason == "unknown_face"
