"""The door controller on gpiozero's MockFactory: real gpiozero devices, mock pins.

Pin histories (``MockPin.states``) are the ground truth: they record every level the controller
put on a pin. Door contact and exit button are driven like the switches would (to ground when
closed/pressed). Timing rules run on a fake clock (``FakeClock``, then ``door.check_time()``), so
a busy machine cannot make them flaky; one test checks that the driver thread keeps real time.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from appliance.settings import load_settings
from hardware.door import DoorController, DoorControllerError

RELAY, CONTACT, EXIT, LED_PIN, BUZZER = "GPIO17", "GPIO22", "GPIO23", "GPIO24", "GPIO25"
PULSE = 0.2


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def levels(pin: MockPin) -> list[bool]:
    return [s.state for s in pin.states]


def after(door: DoorController, clock: FakeClock, seconds: float) -> None:
    """Let ``seconds`` of door time pass; the pins have followed when this returns."""
    clock.advance(seconds)
    door.check_time()


class Recorder:
    """The ``emit`` callback: remembers door events and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []
        self._changed = threading.Condition()

    def __call__(self, kind: str, fields: dict) -> None:
        with self._changed:
            self.events.append((kind, fields))
            self._changed.notify_all()

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]

    def wait_for(self, kind: str, timeout: float = 2.0) -> dict:
        with self._changed:
            ok = self._changed.wait_for(lambda: kind in self.kinds, timeout)
        assert ok, f"no {kind} event within {timeout} s; got {self.kinds}"
        return next(f for k, f in self.events if k == kind)


@pytest.fixture
def factory() -> MockFactory:
    f = MockFactory(pin_class=MockPin)
    yield f
    f.reset()


@pytest.fixture
def events() -> Recorder:
    return Recorder()


def door_settings(data_dir, **overrides):
    values = dict(
        data_dir=data_dir,
        pin_factory="mock",
        relay_pin=RELAY,
        unlock_seconds=PULSE,
        held_open_seconds=5.0,
    )
    values.update(overrides)
    return load_settings(**values)


def fitted(data_dir, **overrides):
    """Settings with every optional part fitted."""
    return door_settings(
        data_dir,
        door_contact_pin=CONTACT,
        exit_button_pin=EXIT,
        led_pin=LED_PIN,
        buzzer_pin=BUZZER,
        **overrides,
    )


def wait_until(predicate, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_grant_pulses_the_relay_for_unlock_seconds(data_dir, factory, events):
    clock = FakeClock()
    settings = door_settings(data_dir, led_pin=LED_PIN)
    with DoorController(settings, events, factory, clock=clock) as door:
        relay, led = factory.pin(RELAY), factory.pin(LED_PIN)
        assert relay.state is False and door.status()["locked"]
        relay.clear_states()
        door.grant("person-1")
        assert relay.state is True and led.state is True  # before grant() returned
        assert door.status()["locked"] is False and door.status()["relay_energised"] is True
        after(door, clock, PULSE - 0.001)
        assert relay.state is True and not door.status()["locked"]
        after(door, clock, 0.002)
        assert levels(relay) == [False, True, False]
        assert led.state is False
        assert door.status() == {
            "locked": True,
            "door_open": None,
            "alarm": None,
            "simulated": True,
            "relay_energised": False,
            "fault": None,
        }
    assert events.events == []  # a grant is the caller's event, not a door event


def test_the_driver_thread_relocks_on_real_time(data_dir, factory, events):
    with DoorController(door_settings(data_dir), events, factory) as door:
        relay = factory.pin(RELAY)
        relay.clear_states()
        door.grant("person-1")
        wait_until(lambda: door.status()["locked"], timeout=5.0)
        assert levels(relay) == [False, True, False]
        # never early; how late depends on how busy the machine is
        assert relay.states[-1].timestamp >= PULSE - 0.01


def test_second_grant_during_a_pulse_extends_it(data_dir, factory, events):
    clock = FakeClock()
    with DoorController(door_settings(data_dir), events, factory, clock=clock) as door:
        relay = factory.pin(RELAY)
        relay.clear_states()
        door.grant("a")
        after(door, clock, 0.1)
        door.grant("b")
        after(door, clock, PULSE - 0.001)  # past the first pulse's end: still open
        assert relay.state is True
        after(door, clock, 0.002)
        assert levels(relay) == [False, True, False]


def test_active_low_relay_is_driven_low_to_energise(data_dir, factory, events):
    clock = FakeClock()
    settings = door_settings(data_dir, relay_active_high=False)
    with DoorController(settings, events, factory, clock=clock) as door:
        relay = factory.pin(RELAY)
        assert relay.state is True  # idle: high = de-energised
        relay.clear_states()
        door.grant()
        assert relay.state is False
        after(door, clock, PULSE + 0.001)
        assert levels(relay) == [True, False, True]
    assert relay.state is True  # stopped: de-energised


def test_fail_safe_maglock_is_held_energised_released_to_unlock_and_on_stop(
    data_dir, factory, events
):
    clock = FakeClock()
    settings = door_settings(data_dir, lock_type="fail_safe")
    door = DoorController(settings, events, factory, clock=clock)
    relay = factory.pin(RELAY)
    # Opened de-energised, then armed: the maglock holds the door.
    assert [s.state for s in relay.states] == [False, True]
    assert door.status()["locked"] and door.status()["relay_energised"]
    relay.clear_states()
    door.grant()
    assert relay.state is False and door.status()["locked"] is False
    after(door, clock, PULSE + 0.001)
    assert door.status()["locked"]
    assert levels(relay) == [True, False, True]
    door.close()
    # Stopped: released, so nobody is trapped; status says the door is not locked.
    assert relay.state is False
    assert door.status()["locked"] is False and door.status()["relay_energised"] is False


def test_door_forced_open_then_closed(data_dir, factory, events):
    with DoorController(fitted(data_dir), events, factory) as door:
        contact, buzzer = factory.pin(CONTACT), factory.pin(BUZZER)
        contact.drive_low()  # door shut
        assert door.status()["door_open"] is False
        contact.drive_high()  # opened with no grant
        events.wait_for("door_forced")
        assert door.status()["alarm"] == "forced" and door.status()["door_open"] is True
        assert buzzer.state is True and factory.pin(RELAY).state is False
        contact.drive_low()
        closed = events.wait_for("door_closed")
        assert closed["alarm"] == "forced"
        assert door.status()["alarm"] is None and buzzer.state is False
    assert events.kinds == ["door_forced", "door_closed"]


def test_door_held_open_after_an_authorised_opening(data_dir, factory, events):
    clock = FakeClock()
    settings = fitted(data_dir, held_open_seconds=0.3)
    with DoorController(settings, events, factory, clock=clock) as door:
        contact, buzzer = factory.pin(CONTACT), factory.pin(BUZZER)
        contact.drive_low()
        door.grant("p")
        contact.drive_high()  # the person walks through
        after(door, clock, 0.299)
        assert door.status()["alarm"] is None and buzzer.state is False
        after(door, clock, 0.002)
        held = events.wait_for("door_held_open")
        assert held == {"open_seconds": 0.301, "allowed_seconds": 0.3}
        assert door.status()["alarm"] == "held_open" and buzzer.state is True
        contact.drive_low()
        assert events.wait_for("door_closed")["alarm"] == "held_open"
        assert buzzer.state is False
    assert events.kinds == ["door_held_open", "door_closed"]  # never "forced"


def test_exit_button_unlocks_without_a_person_and_opening_is_not_forced(data_dir, factory, events):
    with DoorController(fitted(data_dir), events, factory) as door:
        contact, button, relay = factory.pin(CONTACT), factory.pin(EXIT), factory.pin(RELAY)
        contact.drive_low()
        button.drive_low()  # pressed
        events.wait_for("exit_request")
        assert relay.state is True and door.status()["locked"] is False
        button.drive_high()
        contact.drive_high()
        contact.drive_low()
        wait_until(lambda: door.status()["locked"])
    assert events.kinds == ["exit_request"]


def test_door_found_open_at_start_is_not_forced(data_dir, factory, events):
    # The contact pin is pulled up (door open) until the test drives it: no forced alarm.
    with DoorController(fitted(data_dir), events, factory) as door:
        assert door.status()["door_open"] is True and door.status()["alarm"] is None
        factory.pin(CONTACT).drive_low()
        assert door.status()["door_open"] is False
    assert events.events == []


@pytest.mark.parametrize(("buzzer_pin", "feedback_pin"), [(BUZZER, BUZZER), (None, LED_PIN)])
def test_deny_beeps_or_flashes_and_leaves_the_relay_alone(
    data_dir, factory, events, buzzer_pin, feedback_pin
):
    clock = FakeClock()
    settings = door_settings(data_dir, led_pin=LED_PIN, buzzer_pin=buzzer_pin)
    with DoorController(settings, events, factory, clock=clock) as door:
        pin = factory.pin(feedback_pin)
        pin.clear_states()
        door.deny()
        after(door, clock, 0.299)
        assert pin.state is True
        after(door, clock, 0.002)
        assert levels(pin) == [False, True, False]
        assert [s.state for s in factory.pin(RELAY).states] == [False]


@pytest.mark.parametrize("lock_type", ["fail_secure", "fail_safe"])
def test_exception_inside_with_block_leaves_relay_de_energised(
    data_dir, factory, events, lock_type
):
    with pytest.raises(RuntimeError, match="camera crashed"):
        with DoorController(door_settings(data_dir, lock_type=lock_type), events, factory) as d:
            d.grant("p")
            raise RuntimeError("camera crashed")
    assert factory.pin(RELAY).state is False
    assert d.status()["relay_energised"] is False


def test_close_mid_pulse_relocks_at_once_and_is_idempotent(data_dir, factory, events):
    door = DoorController(fitted(data_dir), events, factory)
    relay = factory.pin(RELAY)
    door.grant("p")
    door.close()
    assert relay.state is False and factory.pin(LED_PIN).state is False
    door.close()
    assert not any(t.name == "door-controller" for t in threading.enumerate())
    with pytest.raises(DoorControllerError, match="closed"):
        door.grant("late")
    factory.pin(CONTACT).drive_high()  # pins released: nobody listens any more
    assert events.events == []
    # Every pin was released, so a new controller can take them again.
    DoorController(fitted(data_dir), events, factory).close()


def test_pending_events_are_delivered_before_close_returns(data_dir, factory, events):
    door = DoorController(fitted(data_dir), events, factory)
    factory.pin(CONTACT).drive_low()
    factory.pin(CONTACT).drive_high()
    door.close()
    assert events.kinds == ["door_forced"]


def test_a_failing_emit_is_logged_and_the_door_carries_on(data_dir, factory):
    calls = []

    def broken_emit(kind, fields):
        calls.append(kind)
        raise OSError("event store unavailable")

    with DoorController(fitted(data_dir), broken_emit, factory) as door:
        contact = factory.pin(CONTACT)
        contact.drive_low()
        contact.drive_high()
        wait_until(lambda: calls == ["door_forced"])
        door.grant("p")
        assert factory.pin(RELAY).state is True
        wait_until(lambda: door.status()["locked"])
        contact.drive_low()
        wait_until(lambda: calls == ["door_forced", "door_closed"])


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"led_pin": "GPIO99"}, "FACEGATE_LED_PIN"),
        ({"buzzer_pin": RELAY}, "FACEGATE_BUZZER_PIN"),  # already the relay
        ({"relay_pin": "not-a-pin"}, "FACEGATE_RELAY_PIN"),
    ],
)
def test_bad_pin_setting_names_the_setting_and_releases_what_was_opened(
    data_dir, factory, events, overrides, setting
):
    with pytest.raises(DoorControllerError, match=setting):
        DoorController(door_settings(data_dir, **overrides), events, factory)
    DoorController(door_settings(data_dir), events, factory).close()  # pins free again
    assert factory.pin(RELAY).state is False


class BrokenPin(MockPin):
    """A pin whose driver starts failing when told to (a flaky HAT, a lost gpiochip)."""

    broken = False

    def _set_state(self, value):
        if self.broken:
            raise OSError("gpiochip write failed")
        super()._set_state(value)


def test_a_pin_failure_leaves_the_relay_de_energised_and_refuses_grants(data_dir, factory, events):
    led = factory.pin(LED_PIN, pin_class=BrokenPin)
    settings = door_settings(data_dir, led_pin=LED_PIN, lock_type="fail_safe")
    with DoorController(settings, events, factory) as door:
        assert factory.pin(RELAY).state is True  # maglock held
        led.broken = True
        with pytest.raises(DoorControllerError, match="gpiochip write failed"):
            door.grant("p")
        assert factory.pin(RELAY).state is False
        assert "OSError" in door.status()["fault"]
        with pytest.raises(DoorControllerError, match="failed"):
            door.grant("p")
        assert "gpiochip write failed" in events.wait_for("door_fault")["error"]


def test_interpreter_exit_without_close_still_releases_the_relay(data_dir):
    code = (
        "from gpiozero.pins.mock import MockFactory, MockPin\n"
        "from appliance.settings import load_settings\n"
        "from hardware.door import DoorController\n"
        "import atexit\n"
        "f = MockFactory(pin_class=MockPin)\n"
        "atexit.register(lambda: print('relay at exit:', f.pin('GPIO17').state))\n"  # runs last
        f"s = load_settings(data_dir={str(data_dir)!r}, pin_factory='mock', unlock_seconds=30)\n"
        "door = DoorController(s, lambda k, x: None, f)\n"
        "door.grant('p')\n"
        "assert f.pin('GPIO17').state is True\n"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "door controller stopped; relay de-energised (fail_secure)" in done.stderr
    assert done.stdout.strip() == "relay at exit: False"


def test_prompt_flashes_for_a_liveness_challenge_without_moving_the_lock(data_dir, factory, events):
    settings = door_settings(data_dir, led_pin=LED_PIN)
    with DoorController(settings, events, factory) as door:
        led = factory.pin(LED_PIN)
        led.clear_states()
        door.prompt()
        wait_until(lambda: led.state is False and len(led.states) == 3)
        assert [s.state for s in led.states] == [False, True, False]
        assert [s.state for s in factory.pin(RELAY).states] == [False]
