"""Choosing the gpiozero pin factory from ``FACEGATE_PIN_FACTORY``.

A door that is silently simulated never opens and nobody knows why, so:

- ``mock`` simulates on purpose and says so with a loud WARNING;
- ``auto`` simulates only on a machine that is not a Raspberry Pi (gpiozero's pin names and real
  factories are Pi-specific; many x86 boards have ``/dev/gpiochip*`` too, which is why the test is
  the board model, not the device node). On a Pi, ``auto`` takes the first real factory that
  starts (lgpio, then rpigpio, then pigpio) and raises :class:`PinFactoryError` if none does;
- a named real factory (``lgpio``, ``rpigpio``, ``pigpio``, ``native``) that fails to start
  raises :class:`PinFactoryError` naming the setting; it never falls back to simulation.

Nothing here opens a pin at import time; importing this module on a laptop is safe.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory, MockPin
from loguru import logger

SETTING = "FACEGATE_PIN_FACTORY"

# name -> "module:Class", the same entry points gpiozero itself uses.
REAL_FACTORIES: dict[str, str] = {
    "lgpio": "gpiozero.pins.lgpio:LGPIOFactory",
    "rpigpio": "gpiozero.pins.rpigpio:RPiGPIOFactory",
    "pigpio": "gpiozero.pins.pigpio:PiGPIOFactory",
    "native": "gpiozero.pins.native:NativeFactory",
}
# What ``auto`` tries on a Pi, in order. ``native`` is left out: gpiozero itself calls it an
# experimental fallback (and it does not drive a Pi 5's RP1 pins), so it must be asked for by name.
AUTO_ORDER = ("lgpio", "rpigpio", "pigpio")
CHOICES = ("auto", "mock", *REAL_FACTORIES)


class PinFactoryError(RuntimeError):
    """The configured pin factory cannot start; the message names ``FACEGATE_PIN_FACTORY``."""


def running_on_raspberry_pi() -> bool:
    """True when the board reports itself as a Raspberry Pi (device tree or /proc/cpuinfo)."""
    for path in (Path("/proc/device-tree/model"), Path("/sys/firmware/devicetree/base/model")):
        try:
            if b"Raspberry Pi" in path.read_bytes():
                return True
        except OSError:
            continue
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(line.startswith("Model") and "Raspberry Pi" in line for line in cpuinfo.splitlines())


def make_pin_factory(name: str, *, on_raspberry_pi: bool | None = None) -> Factory:
    """Build the pin factory the setting names (see the module docstring for the rules).

    ``on_raspberry_pi`` overrides the board detection (for tests); ``None`` detects it.
    """
    choice = name.strip().lower()
    if choice == "mock":
        return _simulated(f"{SETTING}=mock")
    if choice == "auto":
        pi = running_on_raspberry_pi() if on_raspberry_pi is None else on_raspberry_pi
        if not pi:
            return _simulated(f"{SETTING}=auto and this machine is not a Raspberry Pi")
        return _first_real_factory()
    if choice in REAL_FACTORIES:
        try:
            factory = _start(choice)
        except Exception as exc:
            raise PinFactoryError(
                f"{SETTING}={name!r}: the {choice} pin factory failed to start: {exc}. "
                f"Fix the GPIO set-up, or set {SETTING}=mock to simulate the door on purpose."
            ) from exc
        logger.info("door GPIO uses the real {} pin factory", choice)
        return factory
    raise PinFactoryError(f"{SETTING}={name!r} is not one of: {', '.join(CHOICES)}")


def is_simulated(factory: Factory) -> bool:
    """True when pins are gpiozero mocks, i.e. nothing physical moves."""
    return isinstance(factory, MockFactory)


def _start(choice: str) -> Factory:
    module_name, class_name = REAL_FACTORIES[choice].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)()


def _first_real_factory() -> Factory:
    failures = []
    for choice in AUTO_ORDER:
        try:
            factory = _start(choice)
        except Exception as exc:
            failures.append(f"{choice}: {exc}")
            continue
        logger.info("door GPIO uses the real {} pin factory ({}=auto)", choice, SETTING)
        return factory
    raise PinFactoryError(
        f"{SETTING}=auto: this is a Raspberry Pi but no GPIO pin factory started "
        f"({'; '.join(failures)}). Install lgpio into the virtualenv (pip install lgpio), "
        f"or set {SETTING}=mock to simulate the door on purpose."
    )


def _simulated(why: str) -> MockFactory:
    # Plain MockPin, not MockPWMPin: nothing here needs PWM, and MockPWMPin drives a pin to 0 when
    # it is closed, which would show an active-low relay energising on shutdown -- the opposite of
    # what real hardware does when the line is released.
    logger.warning(
        "SIMULATED DOOR: GPIO pins are gpiozero mocks ({}). No relay, lock, contact or button "
        "is connected; the door will NOT physically unlock.",
        why,
    )
    return MockFactory(pin_class=MockPin)
