"""``python -m hardware safe``: drive the lock relay (and buzzer, LED) to the safe state and exit.

The safe state is the one :meth:`hardware.door.DoorController.close` leaves: the relay
de-energised, whatever the lock type. For ``fail_secure`` (strike, bolt) that keeps the door
locked; for ``fail_safe`` (maglock) it releases the door, as a power cut would: with no controller
running, nobody serves the exit button, so a dead kiosk must not hold a maglock shut. Which pin
level that is follows ``FACEGATE_RELAY_ACTIVE_HIGH`` (low for an active-high relay, high for an
active-low one).

systemd runs this before the appliance starts and after it stops (``ExecStartPre``,
``ExecStopPost``), so a SIGKILL, an OOM kill, a segfault or a watchdog kill never leaves the
relay where the dead process put it: a Pi's GPIO lines keep their last level when the process
that drove them dies.

The command exits without running gpiozero's own clean-up, which would hand the line back as an
unpulled input (lgpio) and so leave the relay input floating; the line stays driven at the safe
level instead, until the appliance claims it again.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from gpiozero import Factory, OutputDevice
from loguru import logger
from pydantic import ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from hardware.pins import is_simulated, make_pin_factory

#: The settings this command needs; the rest of a door's settings do not matter to it.
DOOR_PIN_SETTINGS = (
    "pin_factory",
    "relay_pin",
    "relay_active_high",
    "lock_type",
    "led_pin",
    "buzzer_pin",
)

EXIT_OK = 0
EXIT_PARTIAL = 1  # the relay is safe, but the buzzer or LED could not be switched off
EXIT_FAILED = 2  # the relay could not be driven: settings, pin factory or relay pin


@dataclass
class SafeReport:
    """What :func:`drive_safe` did, read back from the pins."""

    lock_type: str
    relay_pin: str
    relay_active_high: bool
    relay_level: bool  # the level read back from the relay pin after driving it
    simulated: bool
    switched_off: dict[str, str] = field(default_factory=dict)  # "buzzer" -> "GPIO25"
    failures: dict[str, str] = field(default_factory=dict)  # "buzzer" -> error

    @property
    def relay_energised(self) -> bool:
        return self.relay_level == self.relay_active_high

    def lines(self) -> list[str]:
        door = "LOCKED" if self.lock_type == "fail_secure" else "RELEASED (unlocked)"
        level = "high" if self.relay_level else "low"
        drive = "active-high" if self.relay_active_high else "active-low"
        state = "ENERGISED (not safe)" if self.relay_energised else "de-energised"
        out = [
            f"relay {self.relay_pin}: {state}, pin {level} ({drive}); {self.lock_type} door {door}"
        ]
        out += [f"{name} {pin}: off" for name, pin in self.switched_off.items()]
        out += [f"{name}: could not be switched off: {err}" for name, err in self.failures.items()]
        if self.simulated:
            out.append("SIMULATED: mock pins (FACEGATE_PIN_FACTORY); nothing physical moved")
        return out


def drive_safe(settings: Any, pin_factory: Factory | None = None) -> SafeReport:
    """Drive the relay de-energised and the buzzer and LED off; return what the pins read.

    ``settings`` needs the :data:`DOOR_PIN_SETTINGS`; ``pin_factory`` defaults to the one
    ``settings.pin_factory`` names. Raises on a bad pin factory or relay pin (the relay state is
    then unknown); a buzzer or LED that cannot be driven is reported, not raised.
    """
    factory = make_pin_factory(settings.pin_factory) if pin_factory is None else pin_factory
    # The relay first and alone: nothing else may delay or prevent it.
    relay = OutputDevice(
        settings.relay_pin,
        active_high=settings.relay_active_high,
        initial_value=False,
        pin_factory=factory,
    )
    relay.off()
    report = SafeReport(
        lock_type=settings.lock_type,
        relay_pin=settings.relay_pin,
        relay_active_high=settings.relay_active_high,
        relay_level=bool(relay.pin.state),
        simulated=is_simulated(factory),
    )
    for name in ("buzzer", "led"):
        pin = getattr(settings, f"{name}_pin")
        if not pin:
            continue
        try:
            OutputDevice(pin, initial_value=False, pin_factory=factory).off()  # active-high
        except Exception as exc:
            report.failures[name] = f"{pin}: {exc}"
        else:
            report.switched_off[name] = pin
    return report


def door_pin_settings() -> Any:
    """The door's settings; if some unrelated setting is invalid, only :data:`DOOR_PIN_SETTINGS`.

    A typo elsewhere in ``.env`` must not stop systemd from making the relay safe after a crash.
    Raises ``SettingsError`` when the door pin settings themselves are invalid.
    """
    from appliance.settings import Settings, SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        logger.warning("{}; using only the door's pin settings to make the relay safe", exc)
    # The same fields, defaults and validation as Settings, every other key ignored.
    fields = {
        name: (Settings.model_fields[name].annotation, Settings.model_fields[name])
        for name in DOOR_PIN_SETTINGS
    }

    class _Lenient(BaseSettings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "extra": "ignore"})

    model = create_model("DoorPinSettings", __base__=_Lenient, **fields)
    try:
        values = model()
    except ValidationError as exc:
        problems = "; ".join(
            f"FACEGATE_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"invalid door pin settings: {problems}") from None
    for name in ("led_pin", "buzzer_pin"):
        if isinstance(getattr(values, name), str) and not getattr(values, name).strip():
            setattr(values, name, None)
    return values


def main() -> int:
    """Print what was done; exit 0 (all safe), 1 (relay safe, buzzer/LED not) or 2 (failed)."""
    try:
        settings = door_pin_settings()
        report = drive_safe(settings)
    except Exception as exc:
        print(f"error: the relay could not be made safe: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in report.lines():
        print(line)
    if report.relay_energised:  # a pin that does not read back what was written
        print("error: the relay pin still reads energised", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_PARTIAL if report.failures else EXIT_OK
