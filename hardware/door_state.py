"""The door's state machine, as pure functions of (state, input, now).

No GPIO, no threads, no clock: every function takes ``now`` (seconds on a monotonic clock) and
returns a :class:`Step` -- the next state, the events to report to the entry log, the outputs the
pins should show, and the next moment something happens on its own (``next_deadline``), so the
driver thread can sleep on a condition until then instead of polling.

Rules:

- The door is locked unless an unlock pulse is running. A grant, a remote unlock or the exit
  button starts a pulse of ``unlock_seconds``; another one during a pulse extends it to
  ``now + unlock_seconds`` (never shortens it). The exit button also reports ``exit_request``.
- Door contact opening while locked = ``door_forced`` (opening during a pulse is authorised; a
  door already open when the pulse ends is not forced, it is just open).
- Door open for ``held_open_seconds`` (whoever opened it) = ``door_held_open``, unless the door is
  already in a forced alarm (one alarm per opening; forced is the stronger one).
- Door closing while an alarm is raised = ``door_closed`` and the alarm clears. A door that is
  found open at start-up is timed for held-open but not called forced (nobody saw it open).
- Outputs: unlocked while a pulse runs; LED on while unlocked; buzzer on during an alarm. A denial
  gives a short beep on the buzzer, or a short LED flash when no buzzer is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Alarm = Literal["forced", "held_open"]
UnlockReason = Literal["grant", "remote", "exit"]
LockType = Literal["fail_secure", "fail_safe"]

DENY_FEEDBACK_SECONDS = 0.3


@dataclass(frozen=True)
class DoorTimings:
    unlock_seconds: float
    held_open_seconds: float
    buzzer_fitted: bool = False
    deny_feedback_seconds: float = DENY_FEEDBACK_SECONDS


@dataclass(frozen=True)
class DoorState:
    unlocked_until: float | None = None  # end of the running unlock pulse, None = locked
    door_open: bool | None = None  # None = no door contact fitted
    opened_at: float | None = None
    alarm: Alarm | None = None
    feedback_until: float | None = None  # end of a denial beep/flash

    @property
    def locked(self) -> bool:
        return self.unlocked_until is None


@dataclass(frozen=True)
class Outputs:
    unlocked: bool
    led_on: bool
    buzzer_on: bool


@dataclass(frozen=True)
class Report:
    """One door event for the entry log: ``kind`` plus extra details."""

    kind: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    state: DoorState
    reports: tuple[Report, ...]
    outputs: Outputs
    next_deadline: float | None


def relay_energised(lock_type: LockType, unlocked: bool) -> bool:
    """Relay coil level for a lock state while the controller runs.

    fail_secure (electric strike): energise to unlock, so idle = de-energised = locked.
    fail_safe (maglock): energised holds the door shut, so idle = energised, unlock = release.
    When the controller stops (or crashes) the relay is always de-energised: see hardware.door.
    """
    return unlocked if lock_type == "fail_secure" else not unlocked


def start(now: float, door_open: bool | None, timings: DoorTimings) -> Step:
    """The state at start-up: locked, no alarm; a door already open starts its held-open timer."""
    state = DoorState(door_open=door_open, opened_at=now if door_open else None)
    return _finish(state, [], now, timings)


def tick(state: DoorState, now: float, timings: DoorTimings) -> Step:
    """Let time pass: end pulses and beeps whose time is up, raise held-open when it is due."""
    state, reports = _expire(state, now, timings)
    return _finish(state, reports, now, timings)


def unlock(state: DoorState, now: float, timings: DoorTimings, reason: UnlockReason) -> Step:
    """Start (or extend) an unlock pulse; the exit button also reports ``exit_request``."""
    state, reports = _expire(state, now, timings)
    until = now + timings.unlock_seconds
    if state.unlocked_until is not None:
        until = max(until, state.unlocked_until)
    state = replace(state, unlocked_until=until)
    if reason == "exit":
        reports.append(Report("exit_request", {}))
    return _finish(state, reports, now, timings)


def door_moved(state: DoorState, now: float, timings: DoorTimings, is_open: bool) -> Step:
    """The door contact changed (repeats of the same position are ignored)."""
    state, reports = _expire(state, now, timings)
    if is_open and not state.door_open:
        state = replace(state, door_open=True, opened_at=now)
        if state.locked and state.alarm is None:
            state = replace(state, alarm="forced")
            reports.append(Report("door_forced", {}))
    elif not is_open and state.door_open is not False:
        opened_at = state.opened_at
        if state.alarm is not None:
            open_seconds = round(now - opened_at, 3) if opened_at is not None else None
            reports.append(
                Report("door_closed", {"alarm": state.alarm, "open_seconds": open_seconds})
            )
        state = replace(state, door_open=False, opened_at=None, alarm=None)
    return _finish(state, reports, now, timings)


def deny(state: DoorState, now: float, timings: DoorTimings) -> Step:
    """A refused person: a short beep (or LED flash); the lock does not move."""
    state, reports = _expire(state, now, timings)
    state = replace(state, feedback_until=now + timings.deny_feedback_seconds)
    return _finish(state, reports, now, timings)


def _expire(state: DoorState, now: float, timings: DoorTimings) -> tuple[DoorState, list[Report]]:
    reports: list[Report] = []
    if state.unlocked_until is not None and now >= state.unlocked_until:
        state = replace(state, unlocked_until=None)
    if state.feedback_until is not None and now >= state.feedback_until:
        state = replace(state, feedback_until=None)
    due = _held_open_due(state, timings)
    if due is not None and now >= due:
        state = replace(state, alarm="held_open")
        reports.append(
            Report(
                "door_held_open",
                {
                    "open_seconds": round(now - state.opened_at, 3),
                    "allowed_seconds": timings.held_open_seconds,
                },
            )
        )
    return state, reports


def _held_open_due(state: DoorState, timings: DoorTimings) -> float | None:
    if state.door_open and state.alarm is None and state.opened_at is not None:
        return state.opened_at + timings.held_open_seconds
    return None


def _finish(state: DoorState, reports: list[Report], now: float, timings: DoorTimings) -> Step:
    unlocked = not state.locked
    feedback = state.feedback_until is not None
    outputs = Outputs(
        unlocked=unlocked,
        led_on=unlocked or (feedback and not timings.buzzer_fitted),
        buzzer_on=state.alarm is not None or (feedback and timings.buzzer_fitted),
    )
    deadlines = [
        d
        for d in (state.unlocked_until, state.feedback_until, _held_open_due(state, timings))
        if d is not None
    ]
    return Step(state, tuple(reports), outputs, min(deadlines) if deadlines else None)
