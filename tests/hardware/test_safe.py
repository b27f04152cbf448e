"""``python -m hardware safe`` and the appliance unit that runs it around every life of the kiosk.

A Pi's GPIO line keeps its last level when the process driving it dies; MockFactory pins die with
their process, so the crash tests check what the safe command does and that the unit runs it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from appliance import store
from appliance.settings import load_settings
from hardware.safe import drive_safe
from tests.conftest import REPO_ROOT

UNIT = REPO_ROOT / "systemd" / "facegate-appliance.service"
INSTALLED_PYTHON = "/opt/facegate/.venv/bin/python"
RELAY_LINE = re.compile(r"^relay GPIO17: de-energised, pin (low|high) \(active-(high|low)\); (\S+)")


def clean_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        FACEGATE_DATA_DIR=str(tmp_path / "data"),
        FACEGATE_PIN_FACTORY="mock",
        FACEGATE_LIVENESS="off",
    )
    env.pop("NOTIFY_SOCKET", None)
    env.update({f"FACEGATE_{k.upper()}": v for k, v in settings.items()})
    return env


def run_safe(env: dict[str, str], argv: list[str] | None = None) -> subprocess.CompletedProcess:
    argv = argv or [sys.executable, "-m", "hardware", "safe"]
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("lock_type", "active_high", "level", "door"),
    [
        ("fail_secure", "true", "low", "LOCKED"),
        ("fail_secure", "false", "high", "LOCKED"),
        ("fail_safe", "true", "low", "RELEASED"),
        ("fail_safe", "false", "high", "RELEASED"),
    ],
)
def test_safe_command_de_energises_the_relay_at_the_right_level(
    tmp_path, lock_type, active_high, level, door
):
    env = clean_env(
        tmp_path, lock_type=lock_type, relay_active_high=active_high, buzzer_pin="GPIO25"
    )
    r = run_safe(env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    m = RELAY_LINE.match(lines[0])
    assert m, r.stdout
    assert m.group(1) == level  # read back from the pin after driving it
    assert m.group(3) == lock_type and door in lines[0]
    assert "buzzer GPIO25: off" in lines
    assert "SIMULATED" in r.stdout  # mock pins never pass for a real door


def test_safe_command_survives_an_unrelated_bad_setting(tmp_path):
    """A typo elsewhere must not stop systemd from making the relay safe after a crash."""
    env = clean_env(tmp_path, relay_active_high="false", match_threshold="high")
    env["FACEGATE_LOCK_TYP"] = "fail_safe"  # a typo: not a setting
    r = run_safe(env)
    assert r.returncode == 0, r.stderr
    assert "pin high (active-low)" in r.stdout
    assert "FACEGATE_LOCK_TYP:" in r.stderr  # but the bad setting is named


def test_safe_command_fails_loudly_when_it_cannot_drive_the_relay(tmp_path):
    r = run_safe(clean_env(tmp_path, pin_factory="gpiod"))
    assert r.returncode == 2
    assert "relay could not be made safe" in r.stderr and "FACEGATE_PIN_FACTORY" in r.stderr
    r = run_safe(clean_env(tmp_path, relay_pin="GPIO99"))
    assert r.returncode == 2 and "GPIO99" in r.stderr


@pytest.mark.parametrize("lock_type", ["fail_secure", "fail_safe"])
@pytest.mark.parametrize("active_high", [True, False])
def test_drive_safe_resets_a_relay_a_dead_process_left_energised(tmp_path, lock_type, active_high):
    settings = load_settings(
        data_dir=tmp_path,
        pin_factory="mock",
        lock_type=lock_type,
        relay_active_high=active_high,
        buzzer_pin="GPIO25",
        led_pin="GPIO24",
    )
    factory = MockFactory(pin_class=MockPin)
    try:
        # what a killed kiosk leaves: relay energised (a grant, or a maglock held), buzzer on
        for number, level in ((17, active_high), (25, True), (24, True)):
            pin = factory.pin(number)
            pin.function = "output"
            pin.state = level
        report = drive_safe(settings, pin_factory=factory)
        assert factory.pin(17).state is (not active_high)  # de-energised
        assert factory.pin(25).state is False and factory.pin(24).state is False
        assert report.relay_energised is False and not report.failures
        assert report.simulated
    finally:
        factory.reset()


def unit_service_section(path: Path = UNIT) -> dict[str, list[str]]:
    """The [Service] keys of a unit file (a key may repeat, as ExecStartPre may)."""
    keys: dict[str, list[str]] = {}
    section = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service":
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def test_unit_resets_the_relay_around_every_life_and_watches_the_frame_loop():
    service = unit_service_section()
    safe = [INSTALLED_PYTHON, "-m", "hardware", "safe"]
    assert [shlex.split(v) for v in service["ExecStartPre"]] == [safe]
    assert [shlex.split(v) for v in service["ExecStopPost"]] == [safe]
    assert shlex.split(service["ExecStart"][0])[0] == INSTALLED_PYTHON  # the same venv
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    watchdog = service["WatchdogSec"]
    assert len(watchdog) == 1 and 5 <= int(watchdog[0]) <= 30
    assert service["Restart"] == ["always"]


def test_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # the installed paths and user do not exist here: point them at this checkout
    text = UNIT.read_text().replace(INSTALLED_PYTHON, sys.executable)
    text = text.replace("/opt/facegate", str(REPO_ROOT))
    text = re.sub(r"^(User|Group)=.*$", r"\1=root", text, flags=re.M)
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and "Failed to" in r.stderr and "bus" in r.stderr.lower():
        pytest.skip(f"systemd-analyze cannot run here: {r.stderr.strip()}")
    assert r.returncode == 0 and UNIT.name not in r.stderr, r.stderr


def _wait(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_sigkill_with_the_relay_on_then_the_units_stop_command_makes_it_safe(tmp_path):
    env = clean_env(tmp_path, unlock_seconds="60", camera_source="rtsp://127.0.0.1:9/none")
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        settings = load_settings(data_dir=tmp_path / "data")
        _wait(settings.db_path.exists)
        db = store.open_db(settings.db_path)
        _wait(lambda: store.get_status(db, "appliance"))
        store.enqueue_command(db, "unlock", requested_by="test")
        _wait(lambda: store.get_status(db, "appliance").get("relay_energised"))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # nothing in the dead process got to release the relay or say it stopped
    last = store.get_status(db, "appliance")
    assert last["relay_energised"] is True and last["running"] is True
    assert "relay de-energised" not in err
    # what systemd runs next: the unit's ExecStopPost, as written there
    argv = shlex.split(unit_service_section()["ExecStopPost"][0])
    argv[0] = sys.executable if argv[0] == INSTALLED_PYTHON else argv[0]
    r = run_safe(env, argv)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("relay GPIO17: de-energised, pin low (active-high)")


def test_readme_documents_the_safe_command_and_the_unit_lines():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "python -m hardware safe" in readme
    for key, values in unit_service_section().items():
        if key in ("Type", "NotifyAccess", "ExecStartPre", "ExecStopPost", "WatchdogSec"):
            assert f"{key}={values[0]}" in readme, key
