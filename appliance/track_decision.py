"""What the door decides for one tracked face, as pure functions of (state, input, now).

No models, no camera, no clock: the pipeline (appliance/pipeline.py) calls :func:`encoded` with
each new match of a track's face, then :func:`decide` once per frame with the frame time ``now``
(seconds, monotonic: the frame's stream time), the wall clock for the policy and the track's
liveness verdict. Each returns a :class:`Step`: the track's next state, and what to do about it.

Rules:

- Vote: a track decides on a person when ``votes_needed`` of its last ``votes_window``
  encodings name them, each under the threshold with ``match_margin`` to the runner-up
  (appliance/vote.py). An agreed vote stands while the face in view stays that person, even if
  later frames of it are poorer. One encoding decides alone when it is a strong match
  (``strong_threshold``, with the margin and the matcher's cohort ratio, nobody else named in
  the window): liveness is still required.
- Identity following: when an encoding names someone else (another person, or clearly nobody the
  track was: not a blurred or turned frame of them, see :data:`SAME_FACE_SLACK`), the track's
  evidence starts over: the vote, its time, and the liveness window (``restart_liveness``); a
  track granted to one person decides anew for the next.
- Unknown: a face whose full window of encodings matched nobody, in view for
  :data:`UNKNOWN_AFTER_S`, is denied ``unknown_face`` (one rule, :func:`appliance.vote.is_unknown`).
- Hold: while the door holds grants (``hold``, e.g. ``gallery_stale``), an agreed vote is denied
  with that reason.
- Liveness: an agreed vote waits for "live"; "spoof", or "unsure" for ``liveness_timeout_s``
  (appliance.liveness.UNSURE_TIMEOUT_S) after the vote agreed, denies ``liveness_failed`` and
  the track is never let in. While unsure, the liveness check's challenge (strict mode: turn
  your head) is shown once.
- Policy and cooldown: the person's validity, schedule and cooldown (appliance/policy.py). A grant
  within the cooldown of the same person's last one (another track of them) is silent: no second
  pulse, no second log row.
- One decision per track: one grant per track, and a denial is logged again only when its reason
  changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from appliance import policy
from appliance.match import Match
from appliance.vote import VoteResult, is_unknown, vote

#: A frame that matches nobody but is within this of the track's person is a poor view of them
#: (blur, a turn), not another face; further away, the track's evidence starts over.
SAME_FACE_SLACK = 0.15
#: The identity of a track whose face matches no enrolled person.
OTHER_FACE = "<someone else>"
#: A face is logged as unknown only after this long in view with every recent encoding failing:
#: the first frames of someone walking up (small, blurred, turned) must not deny them.
UNKNOWN_AFTER_S = 1.0
#: Matches a track keeps (the vote reads the last ``votes_window`` of them).
KEPT_MATCHES = 16

GRANTED = "granted"  # the value of ``TrackState.logged`` once the track was let in


@dataclass(frozen=True)
class Rules:
    """The settings the decision reads (see appliance/settings.py for each)."""

    votes_needed: int
    votes_window: int
    match_threshold: float
    match_margin: float
    cooldown_seconds: float
    tz: ZoneInfo
    #: an agreed vote whose liveness stays "unsure" this long (s) is denied
    liveness_timeout_s: float
    #: one encoding this close (with the margin) is a vote on its own; 0: off (appliance/vote.py)
    strong_threshold: float = 0.0

    @classmethod
    def from_settings(cls, s: Any, *, liveness_timeout_s: float) -> Rules:
        return cls(
            s.votes_needed,
            s.votes_window,
            s.match_threshold,
            s.match_margin,
            s.cooldown_seconds,
            s.tz,
            liveness_timeout_s,
            s.strong_match_threshold,
        )


@dataclass(frozen=True)
class TrackState:
    """What one track has seen and said so far."""

    first_seen: float
    matches: tuple[Match, ...] = ()  # the most recent last, at most KEPT_MATCHES
    identity: str | None = None  # the person the track's recent encodings name, or OTHER_FACE
    voted: VoteResult | None = None  # the agreed vote, kept while the identity stays
    voted_at: float | None = None  # when the vote agreed for the face in view (liveness timer)
    #: the decision logged for this track: a denial reason or GRANTED; a new one is logged only
    #: when it changes, so a face in view does not flood the entry log
    logged: str | None = None
    granted_person: str | None = None
    spoofed: bool = False  # liveness said "photo or screen": never granted
    challenge: str | None = None  # the liveness challenge asked of this face ("turn_head")

    @property
    def pending(self) -> bool:
        """Nothing logged yet: still deciding, or agreed and waiting for liveness."""
        return self.logged is None

    @property
    def needs_liveness(self) -> bool:
        """Liveness is observed until the track is let in."""
        return self.granted_person is None


@dataclass(frozen=True)
class Liveness:
    """The liveness check's word on a track (``None`` in its place: liveness off)."""

    state: Literal["live", "spoof", "unsure"]
    detail: str = ""
    challenge: str | None = None  # what the check would ask of the face now, if anything


@dataclass(frozen=True)
class Context:
    """What the whole door knows at this frame, the same for every track."""

    now: float  # frame time, seconds on a monotonic clock
    wall: datetime  # aware UTC wall clock, for validity dates and schedules
    persons: Mapping[str, Mapping[str, Any]]  # the gallery's persons by id
    last_grant: Mapping[str, float]  # person id -> frame time of their last grant
    hold: str | None = None  # when set, nobody is let in: the denial reason


@dataclass(frozen=True)
class Decision:
    """One decision for the entry log (and, when granted, for the relay)."""

    granted: bool
    reason: str | None  # None when granted
    person: Mapping[str, Any] | None
    distance: float | None
    detail: str | None = None  # why liveness failed, for the debug log

    @property
    def kind(self) -> str:
        return policy.GRANTED if self.granted else policy.DENIED


@dataclass(frozen=True)
class Step:
    state: TrackState
    decision: Decision | None = None
    prompt: str | None = None  # a liveness challenge to show at the door now
    restart_liveness: bool = False  # the face became someone else: drop its liveness evidence


def gallery_changed(state: TrackState) -> TrackState:
    """A new gallery: the track votes again against it (its identity and decisions stand)."""
    return replace(state, matches=())


def encoded(state: TrackState, match: Match, rules: Rules) -> Step:
    """Add a new encoding's match; start the evidence afresh when the face is someone else.

    Liveness evidence belongs to one face: a live face that walks up and then holds a photo of an
    enrolled person over itself must not lend the photo its motion, and a photo held up until the
    vote agrees must not be granted on the motion of the face that replaces it.
    """
    matches = (*state.matches, match)[-KEPT_MATCHES:]
    state = replace(state, matches=matches)
    if match.person_id is not None:
        new = match.person_id
    elif (
        match.best_person_id is not None
        and match.best_person_id == (state.identity or match.best_person_id)
        and match.distance <= rules.match_threshold + SAME_FACE_SLACK
    ):
        return Step(state)  # a poor frame of the same face (blur, a turn): not someone else
    else:
        new = OTHER_FACE
    if new == state.identity:
        return Step(state)
    # encodings that named nobody before the first identity were someone else's face (or a
    # blur): their motion is not evidence for the identity that now appears
    restart = state.identity is not None or any(m.person_id is None for m in matches[:-1])
    state = replace(state, identity=new, voted=None, voted_at=None)
    if state.granted_person is not None and state.granted_person != new:
        state = replace(state, granted_person=None, logged=None)
    return Step(state, restart_liveness=restart)


def decide(state: TrackState, ctx: Context, liveness: Liveness | None, rules: Rules) -> Step:
    """The track's decision at ``ctx.now``, if any; ``liveness`` is None when liveness is off."""
    if not state.matches:
        return Step(state)
    result = vote(
        state.matches,
        needed=rules.votes_needed,
        window=rules.votes_window,
        margin=rules.match_margin,
        strong=rules.strong_threshold,
    )
    if result.person_id is not None:
        state = replace(state, voted=result)
    elif state.voted is not None and state.voted.person_id == state.identity:
        # the vote agreed for the face still in view (later frames of it may be poorer, a small
        # face turning away): it stands until the face becomes someone else
        result = state.voted
    if result.person_id is None:
        return _unknown(state, ctx.now, rules)
    if state.granted_person == result.person_id:
        return Step(state)  # let in already: one pulse and one log row per track
    if state.identity != result.person_id:
        return Step(state)  # the face in view now is not the one the votes were for
    person = ctx.persons.get(result.person_id)
    if person is None:  # removed between gallery build and now
        return Step(state)
    if state.voted_at is None:
        state = replace(state, voted_at=ctx.now)
    if state.spoofed:
        return Step(state)  # a track caught presenting a photo or screen is never let in
    if ctx.hold is not None:
        return _deny(state, ctx.hold, person, result.distance)
    if liveness is not None and liveness.state != "live":
        return _not_live(state, ctx.now, rules, liveness, person, result.distance)
    return _apply_policy(state, ctx, rules, person, result)


def _unknown(state: TrackState, now: float, rules: Rules) -> Step:
    if (
        is_unknown(state.matches, window=rules.votes_window, margin=rules.match_margin)
        and now - state.first_seen >= UNKNOWN_AFTER_S
    ):
        window = state.matches[-rules.votes_window :]
        return _deny(state, "unknown_face", None, min(m.distance for m in window))
    return Step(state)


def _not_live(
    state: TrackState,
    now: float,
    rules: Rules,
    liveness: Liveness,
    person: Mapping[str, Any],
    distance: float,
) -> Step:
    assert state.voted_at is not None
    if liveness.state == "spoof" or now - state.voted_at > rules.liveness_timeout_s:
        state = replace(state, spoofed=True)
        return _deny(state, "liveness_failed", person, distance, liveness.detail)
    if state.challenge is None and liveness.challenge is not None:
        # strict mode asks for a head turn when a still face leaves it unsure: shown once
        return Step(replace(state, challenge=liveness.challenge), prompt=liveness.challenge)
    return Step(state)


def _apply_policy(
    state: TrackState,
    ctx: Context,
    rules: Rules,
    person: Mapping[str, Any],
    result: VoteResult,
) -> Step:
    pid = result.person_id
    assert pid is not None
    last = ctx.last_grant.get(pid)
    since = None if last is None else ctx.now - last
    verdict = policy.decide(person, ctx.wall, rules.tz, since, rules.cooldown_seconds)
    if verdict.reason == "cooldown":
        # let in moments ago (another track of the same person): no second pulse, no log row
        return Step(replace(state, granted_person=pid, logged=GRANTED))
    if verdict.granted:
        state = replace(state, granted_person=pid, logged=GRANTED)
        return Step(state, Decision(True, None, person, result.distance))
    return _deny(state, verdict.reason or "denied", person, result.distance)


def _deny(
    state: TrackState,
    reason: str,
    person: Mapping[str, Any] | None,
    distance: float,
    detail: str | None = None,
) -> Step:
    if state.logged in (reason, GRANTED):
        return Step(state)  # said once for this track
    state = replace(state, logged=reason)
    dist = None if distance == float("inf") else distance
    return Step(state, Decision(False, reason, person, dist, detail or None))


def judge_still(match: Match, ctx: Context, rules: Rules) -> Decision:
    """What the door would decide for a face that showed this match steadily and was live.

    For ``identify`` on a photo: the same rules as a track at the door that saw the face for
    :data:`UNKNOWN_AFTER_S` with every encoding alike (no cooldown, no liveness: a photo cannot
    show it). Never ``None``: an agreed vote is granted or denied, anything else is unknown.
    """
    state = TrackState(first_seen=ctx.now - UNKNOWN_AFTER_S)
    for _ in range(rules.votes_window):
        state = encoded(state, match, rules).state
    still = replace(ctx, last_grant={}, hold=None)
    decision = decide(state, still, None, replace(rules, cooldown_seconds=0.0)).decision
    if decision is None:  # the vote agreed on someone the gallery no longer has
        return Decision(False, "unknown_face", None, match.distance)
    return decision
