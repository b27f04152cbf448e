"""The door controller: gpiozero devices wired to the pure state machine in ``door_state``.

Safe states of the lock relay (``FACEGATE_LOCK_TYPE``):

- ``fail_secure`` (electric strike, bolt): energising the relay UNLOCKS. Idle = de-energised =
  locked; a grant energises it for ``unlock_seconds``. When the controller stops, fails or a
  ``with`` block exits on an exception, the relay is de-energised: the door stays LOCKED.
- ``fail_safe`` (maglock): energising the relay HOLDS the door locked. Idle = energised; a grant
  de-energises it for ``unlock_seconds``. When the controller stops, fails or a ``with`` block
  exits on an exception, the relay is de-energised: the door is RELEASED so nobody is trapped
  inside (what fire codes expect of a maglock, and what a power cut does anyway). A kiosk that is
  not running leaves a maglocked door open; that is the price of fail-safe.

So "safe" on stop means the same thing for both: relay de-energised (written before the pin is
released). A process that dies without running Python (SIGKILL, OOM, segfault) leaves the pin
where it was; ``python -m hardware safe`` (``hardware.safe``), run by systemd after every stop,
drives it to this same state. At start every device is opened with the relay de-energised and
only then is the lock armed (a maglock energised), so a bad pin setting never leaves the relay
half-driven.

Wiring assumed: door contact and exit button switch the pin to ground (internal pull-up); the
contact is closed when the door is shut. LED and buzzer are active-high. Both inputs are
``DigitalInputDevice`` rather than ``Button``: a Button keeps a "held" thread that makes closing it
wait up to a second while the contact is closed, and the door has no use for "held".

Threads: ``grant``/``deny``/pin callbacks change the state at once under one lock (the relay moves
before ``grant`` returns); one driver thread waits on a condition until the next deadline (pulse
end, held-open) and delivers door events to ``emit`` in order. ``emit`` is called only from that
thread and must not block for long; an exception in it is logged and the door carries on.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from gpiozero import LED, Buzzer, Device, DigitalInputDevice, Factory, OutputDevice
from loguru import logger

from hardware import door_state
from hardware.door_state import DoorState, DoorTimings, Outputs, Report, Step
from hardware.pins import is_simulated, make_pin_factory

Emit = Callable[[str, dict], None]


class DoorControllerError(RuntimeError):
    """The door controller cannot do what was asked (bad pin, closed, or failed)."""


class DoorController:
    """Relay pulse, door contact, exit button, LED and buzzer of one door.

    ``settings`` is an ``appliance.settings.Settings``; ``emit(kind, fields)`` receives
    ``door_forced``, ``door_held_open``, ``door_closed`` (after an alarm), ``exit_request`` and,
    if driving the pins fails, ``door_fault`` (``{"error": ...}``; the relay is then released).
    ``pin_factory`` defaults to the one ``settings.pin_factory`` names (and is then closed with
    the controller); tests pass a ``MockFactory`` they keep.
    """

    def __init__(
        self,
        settings: Any,
        emit: Emit,
        pin_factory: Factory | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock or time.monotonic  # tests pass a fake one and call check_time()
        self._emit = emit
        self._log = logger.bind(door=settings.door_name)
        self._lock_type: door_state.LockType = settings.lock_type
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._outbox: deque[Report] = deque()
        self._closing = False
        self._closed = False
        self._fault: str | None = None
        self._devices: list[Device] = []
        self._relay_energised = False
        self._applied: Outputs | None = None
        self._thread: threading.Thread | None = None
        self._relay: OutputDevice | None = None
        self._contact: DigitalInputDevice | None = None
        self._exit: DigitalInputDevice | None = None
        self._led: LED | None = None
        self._buzzer: Buzzer | None = None
        self._state = DoorState()
        self._deadline: float | None = None

        self._owns_factory = pin_factory is None
        self._factory = (
            make_pin_factory(settings.pin_factory) if pin_factory is None else pin_factory
        )
        self.simulated = is_simulated(self._factory)
        try:
            self._open_devices(settings)
            self._timings = DoorTimings(
                unlock_seconds=settings.unlock_seconds,
                held_open_seconds=settings.held_open_seconds,
                buzzer_fitted=self._buzzer is not None,
            )
            self._start()
        except BaseException:
            self.close()
            raise
        self._log_ready(settings)

    def _open_devices(self, settings: Any) -> None:
        """Open every configured device with its output off: the relay de-energised."""
        self._relay = self._open(
            "relay_pin",
            lambda pin: OutputDevice(
                pin,
                active_high=settings.relay_active_high,
                initial_value=False,
                pin_factory=self._factory,
            ),
        )
        self._contact = self._open_optional(
            "door_contact_pin",
            lambda pin: DigitalInputDevice(pin, pull_up=True, pin_factory=self._factory),
        )
        self._exit = self._open_optional(
            "exit_button_pin",
            lambda pin: DigitalInputDevice(
                pin, pull_up=True, bounce_time=0.05, pin_factory=self._factory
            ),
        )
        self._led = self._open_optional("led_pin", lambda pin: LED(pin, pin_factory=self._factory))
        self._buzzer = self._open_optional(
            "buzzer_pin", lambda pin: Buzzer(pin, pin_factory=self._factory)
        )

    def _start(self) -> None:
        """Hook the inputs, arm the lock from the first reading and start the driver thread."""
        # Hooks and the first reading of the contact under one lock, so no edge is lost
        # between them and none is taken for a forced door before the state exists.
        with self._lock:
            if self._contact is not None:
                self._contact.when_activated = lambda: self._door_moved(False)
                self._contact.when_deactivated = lambda: self._door_moved(True)
            if self._exit is not None:
                self._exit.when_activated = self._exit_pressed
            self._commit(door_state.start(self._clock(), self._door_open_now(), self._timings))
        self._thread = threading.Thread(target=self._run, name="door-controller", daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def _log_ready(self, settings: Any) -> None:
        self._log.info(
            "door controller ready: lock={} relay={} ({}), contact={}, exit={}, led={}, "
            "buzzer={}{}",
            self._lock_type,
            settings.relay_pin,
            "active-high" if settings.relay_active_high else "active-low",
            settings.door_contact_pin,
            settings.exit_button_pin,
            settings.led_pin,
            settings.buzzer_pin,
            " [SIMULATED]" if self.simulated else "",
        )

    # --- public API -------------------------------------------------------------------------

    def grant(self, person_id: str | None = None) -> None:
        """Unlock for ``unlock_seconds`` (extends a running pulse). Returns at once."""
        self._log.info("unlock pulse: access granted to {}", person_id or "?")
        self._input(lambda s, now: door_state.unlock(s, now, self._timings, "grant"))

    def remote_unlock(self, requested_by: str) -> None:
        """An admin's "unlock now": the same pulse as a grant."""
        self._log.info("unlock pulse: remote unlock requested by {}", requested_by)
        self._input(lambda s, now: door_state.unlock(s, now, self._timings, "remote"))

    def deny(self) -> None:
        """A short beep (or LED flash without a buzzer); the lock does not move."""
        self._input(lambda s, now: door_state.deny(s, now, self._timings))

    def prompt(self) -> None:
        """Ask the person at the door to act (a liveness challenge: "turn your head").

        The door has no display of its own: the prompt is the same short LED flash / beep a
        denial gives, while the kiosk's screen (the annotated live view) says what to do.
        """
        self._input(lambda s, now: door_state.deny(s, now, self._timings))

    def check_time(self) -> None:
        """Let the door's time pass now: end pulses and beeps, raise held-open, when due.

        The driver thread does this by itself at each deadline; a test that drives the door on a
        fake ``clock`` calls it after moving the clock, so the pins have changed when it returns.
        """
        self._input(lambda s, now: door_state.tick(s, now, self._timings))

    def status(self) -> dict:
        """What the door is doing now, as the relay and the contact actually are."""
        with self._lock:
            energised = self._relay_energised
            stopped = self._closed or self._closing
            return {
                "locked": energised if self._lock_type == "fail_safe" else not energised,
                "door_open": None if stopped else self._state.door_open,
                "alarm": None if stopped else self._state.alarm,
                "simulated": self.simulated,
                "relay_energised": energised,
                "fault": self._fault,
            }

    def close(self) -> None:
        """Relay de-energised (its safe state, see module docstring), devices closed. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closing = True
            self._release_relay()
            self._wake.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
            if thread.is_alive():
                self._log.error("door driver thread did not stop within 5 s")
        for device in reversed(self._devices):
            try:
                device.close()
            except Exception:
                self._log.exception("closing {} failed", device)
        if self._owns_factory:
            try:
                self._factory.close()
            except Exception:
                self._log.exception("closing the pin factory failed")
        with self._lock:
            self._closed = True
        self._log.info("door controller stopped; relay de-energised ({})", self._lock_type)

    def __enter__(self) -> DoorController:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._log.opt(exception=exc).error("door controller stopping after an exception")
        self.close()

    # --- wiring -----------------------------------------------------------------------------

    def _open(self, setting: str, make: Callable[[str], Device]) -> Device:
        pin = getattr(self._settings, setting)
        try:
            device = make(pin)
        except Exception as exc:
            raise DoorControllerError(f"FACEGATE_{setting.upper()}={pin!r}: {exc}") from exc
        self._devices.append(device)
        return device

    def _open_optional(self, setting: str, make: Callable[[str], Device]) -> Any:
        return self._open(setting, make) if getattr(self._settings, setting) else None

    def _door_open_now(self) -> bool | None:
        return None if self._contact is None else not self._contact.is_active

    def _door_moved(self, is_open: bool) -> None:
        self._from_pin(lambda s, now: door_state.door_moved(s, now, self._timings, is_open))

    def _exit_pressed(self) -> None:
        self._log.info("unlock pulse: exit button")
        self._from_pin(lambda s, now: door_state.unlock(s, now, self._timings, "exit"))

    def _from_pin(self, transition: Callable[[DoorState, float], Step]) -> None:
        """A pin callback (gpiozero's thread): nobody up that stack could handle an error."""
        try:
            self._input(transition)
        except DoorControllerError as exc:
            # Closed or failed: the relay is already released and the cause already logged.
            self._log.debug("pin event ignored: {}", exc)

    def _input(self, transition: Callable[[DoorState, float], Step]) -> None:
        with self._lock:
            if self._closing or self._closed:
                raise DoorControllerError("the door controller is closed")
            if self._fault is not None:
                raise DoorControllerError(f"the door controller failed: {self._fault}")
            try:
                self._commit(transition(self._state, self._clock()))
            except Exception as exc:
                self._fail(exc)
                raise DoorControllerError(f"the door controller failed: {self._fault}") from exc
            finally:
                self._wake.notify_all()

    def _commit(self, step: Step) -> None:
        """Take a step's state, queue its reports and drive the pins (caller holds the lock)."""
        self._state = step.state
        self._deadline = step.next_deadline
        self._outbox.extend(step.reports)
        self._apply(step.outputs)

    def _apply(self, outputs: Outputs) -> None:
        before = self._applied
        if before is None or outputs.unlocked != before.unlocked:
            energised = door_state.relay_energised(self._lock_type, outputs.unlocked)
            self._relay.value = energised
            self._relay_energised = energised
        if self._led is not None and (before is None or outputs.led_on != before.led_on):
            self._led.value = outputs.led_on
        if self._buzzer is not None and (before is None or outputs.buzzer_on != before.buzzer_on):
            self._buzzer.value = outputs.buzzer_on
        self._applied = outputs

    def _release_relay(self) -> None:
        """De-energise the relay and silence the outputs; never raises (caller holds the lock)."""
        for device in (self._relay, self._led, self._buzzer):
            if device is None:
                continue
            try:
                device.off()
            except Exception:
                self._log.exception("could not switch off {}", device)
        self._relay_energised = False

    # --- driver thread ----------------------------------------------------------------------

    def _run(self) -> None:
        """Wait for the next deadline or a wake-up; advance time; deliver reports in order."""
        while True:
            with self._lock:
                while not self._closing and not self._outbox and not self._due():
                    timeout = None if self._deadline is None else self._deadline - self._clock()
                    self._wake.wait(timeout)
                stopping = self._closing
                if not stopping and self._fault is None and self._due():
                    try:
                        self._commit(door_state.tick(self._state, self._clock(), self._timings))
                    except Exception as exc:
                        self._fail(exc)
                        stopping = True
                reports = list(self._outbox)
                self._outbox.clear()
            for report in reports:
                self._deliver(report)
            if stopping:
                return

    def _due(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def _fail(self, exc: Exception) -> None:
        """An unexpected error while driving the door: relay to its safe state, refuse work.

        Reported as a ``door_fault`` event too: with a maglock the door now stands released.
        """
        self._fault = f"{type(exc).__name__}: {exc}"
        self._deadline = None  # nothing more to time: the driver thread only delivers and stops
        self._outbox.append(Report("door_fault", {"error": self._fault}))
        self._log.opt(exception=exc).critical(
            "door controller failed; relay de-energised ({}), grants refused", self._lock_type
        )
        self._release_relay()

    def _deliver(self, report: Report) -> None:
        self._log.info("door event {} {}", report.kind, report.fields)
        try:
            self._emit(report.kind, dict(report.fields))
        except Exception:
            self._log.exception("emit({!r}) failed; the door carries on", report.kind)


def _close_at_exit(ref: weakref.ref[DoorController]) -> None:
    """Interpreter exit without close(): still put the relay in its safe state first.

    Registered after gpiozero's own exit hook, so it runs before gpiozero releases the pins.
    """
    door = ref()
    if door is not None:
        door.close()
