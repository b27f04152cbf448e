"""The door state machine with a given clock: no pins, no threads, no sleeping."""

from __future__ import annotations

import pytest

from hardware import door_state as ds

T = ds.DoorTimings(unlock_seconds=3.0, held_open_seconds=30.0, buzzer_fitted=True)


def kinds(step: ds.Step) -> list[str]:
    return [r.kind for r in step.reports]


def closed_door(now: float = 0.0, timings: ds.DoorTimings = T) -> ds.Step:
    return ds.start(now, door_open=False, timings=timings)


def test_starts_locked_quiet_and_with_nothing_to_wait_for():
    step = closed_door()
    assert step.state.locked and step.state.alarm is None
    assert step.outputs == ds.Outputs(unlocked=False, led_on=False, buzzer_on=False)
    assert step.next_deadline is None and step.reports == ()


def test_grant_unlocks_for_exactly_the_pulse_then_relocks():
    step = ds.unlock(closed_door().state, 10.0, T, "grant")
    assert step.outputs.unlocked and step.outputs.led_on
    assert step.next_deadline == 13.0
    assert ds.tick(step.state, 12.99, T).outputs.unlocked
    after = ds.tick(step.state, 13.0, T)
    assert not after.outputs.unlocked and not after.outputs.led_on
    assert after.next_deadline is None and after.reports == ()


def test_second_grant_extends_the_pulse_and_never_shortens_it():
    first = ds.unlock(closed_door().state, 10.0, T, "grant")
    second = ds.unlock(first.state, 12.0, T, "remote")
    assert second.next_deadline == 15.0
    longer = ds.DoorTimings(unlock_seconds=10.0, held_open_seconds=30.0)
    long_pulse = ds.unlock(closed_door().state, 0.0, longer, "grant")
    assert ds.unlock(long_pulse.state, 1.0, T, "grant").next_deadline == 10.0


def test_door_opened_while_locked_is_forced_until_it_closes():
    forced = ds.door_moved(closed_door().state, 5.0, T, is_open=True)
    assert kinds(forced) == ["door_forced"]
    assert forced.state.alarm == "forced" and forced.outputs.buzzer_on
    assert not forced.outputs.unlocked
    again = ds.door_moved(forced.state, 5.5, T, is_open=True)
    assert again.reports == ()  # a repeated reading is not a second forcing
    # A forced door left open is not also reported as held open: one alarm per opening.
    assert ds.tick(forced.state, 100.0, T).reports == ()
    closed = ds.door_moved(forced.state, 9.0, T, is_open=False)
    assert kinds(closed) == ["door_closed"]
    assert closed.reports[0].fields == {"alarm": "forced", "open_seconds": 4.0}
    assert closed.state.alarm is None and not closed.outputs.buzzer_on


def test_opening_during_a_pulse_is_authorised_and_stays_so_after_relock():
    granted = ds.unlock(closed_door().state, 0.0, T, "grant")
    opened = ds.door_moved(granted.state, 1.0, T, is_open=True)
    assert opened.reports == () and opened.state.alarm is None
    relocked = ds.tick(opened.state, 3.0, T)
    assert relocked.state.locked and relocked.reports == ()
    assert relocked.next_deadline == 31.0  # held-open timer runs from the opening
    shut = ds.door_moved(relocked.state, 4.0, T, is_open=False)
    assert shut.reports == ()  # closing without an alarm is not an event
    reopened = ds.door_moved(shut.state, 5.0, T, is_open=True)
    assert kinds(reopened) == ["door_forced"]


def test_held_open_is_raised_once_at_the_deadline_and_cleared_by_closing():
    opened = ds.door_moved(ds.unlock(closed_door().state, 0.0, T, "grant").state, 1.0, T, True)
    assert ds.tick(opened.state, 30.9, T).reports == ()
    held = ds.tick(opened.state, 31.0, T)
    assert kinds(held) == ["door_held_open"]
    assert held.reports[0].fields == {"open_seconds": 30.0, "allowed_seconds": 30.0}
    assert held.outputs.buzzer_on and held.next_deadline is None
    assert ds.tick(held.state, 60.0, T).reports == ()
    # A grant does not silence the alarm: only the door closing does.
    assert ds.unlock(held.state, 61.0, T, "grant").state.alarm == "held_open"
    closed = ds.door_moved(held.state, 62.0, T, is_open=False)
    assert kinds(closed) == ["door_closed"]
    assert closed.reports[0].fields["alarm"] == "held_open"
    assert not closed.outputs.buzzer_on


def test_held_open_is_reported_even_when_nothing_woke_the_machine_exactly_on_time():
    opened = ds.door_moved(ds.unlock(closed_door().state, 0.0, T, "grant").state, 1.0, T, True)
    late = ds.door_moved(opened.state, 40.0, T, is_open=False)
    assert kinds(late) == ["door_held_open", "door_closed"]


def test_exit_button_unlocks_and_reports_an_exit_request():
    step = ds.unlock(closed_door().state, 0.0, T, "exit")
    assert kinds(step) == ["exit_request"] and step.outputs.unlocked
    assert ds.door_moved(step.state, 1.0, T, is_open=True).reports == ()


def test_door_found_open_at_start_is_not_forced_but_is_timed():
    step = ds.start(100.0, door_open=True, timings=T)
    assert step.reports == () and step.state.alarm is None
    assert step.next_deadline == 130.0
    assert kinds(ds.tick(step.state, 130.0, T)) == ["door_held_open"]


def test_no_contact_fitted_means_no_door_alarms():
    step = ds.start(0.0, door_open=None, timings=T)
    assert step.state.door_open is None
    assert ds.tick(step.state, 1000.0, T).reports == ()


@pytest.mark.parametrize("buzzer_fitted", [True, False])
def test_deny_beeps_or_flashes_briefly_and_leaves_the_lock_alone(buzzer_fitted):
    timings = ds.DoorTimings(3.0, 30.0, buzzer_fitted=buzzer_fitted)
    step = ds.deny(closed_door(timings=timings).state, 0.0, timings)
    assert step.state.locked and step.reports == ()
    assert step.outputs.buzzer_on is buzzer_fitted
    assert step.outputs.led_on is not buzzer_fitted
    assert step.next_deadline == timings.deny_feedback_seconds
    quiet = ds.tick(step.state, timings.deny_feedback_seconds, timings)
    assert not quiet.outputs.buzzer_on and not quiet.outputs.led_on


def test_deny_beep_ending_does_not_silence_an_alarm():
    forced = ds.door_moved(closed_door().state, 0.0, T, is_open=True)
    beeped = ds.deny(forced.state, 1.0, T)
    assert ds.tick(beeped.state, 2.0, T).outputs.buzzer_on


def test_next_deadline_is_the_earliest_pending_one():
    granted = ds.unlock(closed_door().state, 0.0, T, "grant")
    denied = ds.deny(granted.state, 1.0, T)
    assert denied.next_deadline == pytest.approx(1.0 + ds.DENY_FEEDBACK_SECONDS)
    assert ds.tick(denied.state, 2.0, T).next_deadline == 3.0


@pytest.mark.parametrize(
    ("lock_type", "unlocked", "energised"),
    [
        ("fail_secure", False, False),  # strike: idle de-energised = locked
        ("fail_secure", True, True),  # energise to unlock
        ("fail_safe", False, True),  # maglock: energised holds the door
        ("fail_safe", True, False),  # release to unlock
    ],
)
def test_relay_polarity_per_lock_type(lock_type, unlocked, energised):
    assert ds.relay_energised(lock_type, unlocked) is energised
