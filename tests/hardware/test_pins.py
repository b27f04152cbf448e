"""Choosing the pin factory: simulation only on purpose, and always loudly."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from loguru import logger

from appliance.settings import load_settings
from hardware.door import DoorController
from hardware.pins import PinFactoryError, make_pin_factory, running_on_raspberry_pi

ON_PI = running_on_raspberry_pi()
REAL_LIBS = [m for m in ("lgpio", "RPi", "pigpio") if importlib.util.find_spec(m)]


@pytest.fixture
def warnings_logged():
    messages: list[str] = []
    handler = logger.add(messages.append, level="WARNING", format="{level} {message}")
    yield messages
    logger.remove(handler)


def test_mock_is_simulated_and_says_so_loudly(warnings_logged):
    factory = make_pin_factory("mock")
    assert isinstance(factory, MockFactory)
    assert len(warnings_logged) == 1
    assert warnings_logged[0].startswith("WARNING SIMULATED DOOR")
    assert "FACEGATE_PIN_FACTORY=mock" in warnings_logged[0]


def test_auto_simulates_only_off_a_raspberry_pi_and_says_so(warnings_logged):
    assert isinstance(make_pin_factory("auto", on_raspberry_pi=False), MockFactory)
    assert "SIMULATED DOOR" in warnings_logged[0] and "not a Raspberry Pi" in warnings_logged[0]


@pytest.mark.skipif(bool(REAL_LIBS), reason="a real GPIO library is installed here")
def test_auto_on_a_pi_without_a_working_factory_is_an_error_not_a_simulation(warnings_logged):
    with pytest.raises(PinFactoryError, match="FACEGATE_PIN_FACTORY=auto") as err:
        make_pin_factory("auto", on_raspberry_pi=True)
    assert "lgpio" in str(err.value) and "FACEGATE_PIN_FACTORY=mock" in str(err.value)
    assert warnings_logged == []


@pytest.mark.skipif(ON_PI, reason="the native factory starts on a Raspberry Pi")
def test_a_real_factory_that_cannot_start_names_the_setting(warnings_logged):
    with pytest.raises(PinFactoryError, match="FACEGATE_PIN_FACTORY='native'"):
        make_pin_factory("native")
    assert warnings_logged == []  # never a quiet fallback to simulation


@pytest.mark.skipif("lgpio" in REAL_LIBS, reason="lgpio is installed here")
def test_door_controller_refuses_to_start_on_a_broken_real_factory(data_dir):
    settings = load_settings(data_dir=data_dir, pin_factory="lgpio")
    with pytest.raises(PinFactoryError, match="FACEGATE_PIN_FACTORY='lgpio'"):
        DoorController(settings, lambda kind, fields: None)


def test_unknown_factory_name_lists_the_choices():
    with pytest.raises(PinFactoryError, match="FACEGATE_PIN_FACTORY='gpiod'.*auto, mock, lgpio"):
        make_pin_factory("gpiod")


def test_controller_from_settings_alone_is_simulated_and_closes_its_factory(data_dir):
    door = DoorController(load_settings(data_dir=data_dir, pin_factory="mock"), lambda k, f: None)
    assert door.status()["simulated"] is True
    door.grant()
    assert door.status()["relay_energised"] is True
    door.close()
    assert door.status()["relay_energised"] is False


def test_importing_the_hardware_package_opens_no_gpio():
    code = (
        "import gpiozero, hardware.door, hardware.pins, hardware.door_state\n"
        "assert gpiozero.Device.pin_factory is None, gpiozero.Device.pin_factory\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
