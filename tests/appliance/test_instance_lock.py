"""One kiosk per data folder: a second kiosk on the same folder stops at once, naming the first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from appliance import instance_lock
from appliance.backup import BackupError, backup, restore
from appliance.camera import SourceError
from appliance.kiosk import Kiosk
from appliance.settings import load_settings
from tests.conftest import REPO_ROOT, run_cli, start_cli


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_second_kiosk_on_the_same_data_folder_stops_at_once(tmp_path, clip_path):
    data = tmp_path / "data"
    env = {
        "FACEGATE_DATA_DIR": str(data),
        "FACEGATE_PIN_FACTORY": "mock",
        "FACEGATE_LIVENESS": "off",
    }
    first = start_cli("run", "--source", str(clip_path), env=env)
    lock = data / instance_lock.LOCK_NAME
    try:
        _wait(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), timeout=60)
        started = time.monotonic()
        second = run_cli(
            "run",
            "--source",
            str(clip_path),
            env={"FACEGATE_DATA_DIR": str(data), "FACEGATE_PIN_FACTORY": "mock"},
            timeout=60,
        )
        took = time.monotonic() - started
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr and "already running" in second.stderr
        assert took < 15  # at once: it never loaded the face models nor touched the relay
        assert first.poll() is None  # the first kiosk carries on
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            _, err = first.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            first.kill()
            _, err = first.communicate()
    assert first.returncode == 0
    assert "store migrated" not in err  # setting up a new store is not news (DEBUG)
    # the lock goes with the process: the next kiosk takes it without any clean-up
    handle = instance_lock.acquire(data)
    try:
        assert lock.read_text().strip() == str(os.getpid())
    finally:
        handle.close()


def test_lock_names_its_holder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from appliance import instance_lock as l; "
            f"h = l.acquire(pathlib.Path({str(tmp_path)!r})); print('held', flush=True); "
            "sys.stdin.read()",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        try:
            instance_lock.acquire(tmp_path)
        except instance_lock.DataFolderBusy as exc:
            assert exc.pid == holder.pid
            assert f"pid {holder.pid}" in str(exc)
        else:
            raise AssertionError("a second holder got the lock")
    finally:
        holder.stdin.close()
        holder.wait(10)


def _relay_left_energised() -> tuple[MockFactory, MockPin]:
    """A pin factory whose GPIO17 (the relay) is driven high, as a killed kiosk leaves it."""
    factory = MockFactory(pin_class=MockPin)
    pin = factory.pin(17)
    pin.function = "output"
    pin.state = True
    return factory, pin


def _finish(kiosk: Kiosk) -> None:
    """Stop a constructed kiosk the way a stopped one ends: it starts, sees stop, shuts down."""
    kiosk.stop()
    assert kiosk.run() == 0


def test_a_second_kiosk_on_one_folder_fails_before_it_drives_the_relay(tmp_path, clip_path, engine):
    settings = load_settings(data_dir=tmp_path / "data", liveness="off")

    def kiosk(factory: MockFactory) -> Kiosk:
        return Kiosk(
            settings, source=str(clip_path), pin_factory=factory, engine=engine, liveness=None
        )

    first = kiosk(MockFactory(pin_class=MockPin))
    factory, relay = _relay_left_energised()
    with pytest.raises(instance_lock.DataFolderBusy, match=f"pid {os.getpid()}"):
        kiosk(factory)
    assert relay.state is True  # the second never opened the door controller
    # restore refuses while the kiosk runs, naming it
    saved = backup(settings.db_path, tmp_path / "saved.db").path
    with pytest.raises(BackupError, match=f"the kiosk \\(pid {os.getpid()}"):
        restore(saved, settings.db_path)
    _finish(first)
    # the lock went with the first kiosk's run: the next one starts and drives the relay safe
    third = kiosk(factory)
    assert relay.state is False
    _finish(third)


def test_a_kiosk_that_fails_to_start_releases_the_lock(tmp_path, engine):
    settings = load_settings(data_dir=tmp_path / "data", liveness="off")
    with pytest.raises(SourceError):
        Kiosk(settings, source=str(tmp_path), engine=engine, liveness=None)  # no images there
    instance_lock.check_free(settings.data_dir)  # raises if the failed start still held it


def test_sigterm_during_start_up_stops_cleanly_and_frees_the_folder(tmp_path, clip_path):
    """systemd may stop the kiosk while its models load: exit 0, lock released, never killed."""
    data = tmp_path / "data"
    env = {
        "FACEGATE_DATA_DIR": str(data),
        "FACEGATE_PIN_FACTORY": "mock",
        "FACEGATE_LIVENESS": "motion",
    }
    proc = start_cli("run", "--source", str(clip_path), env=env)
    lock = data / instance_lock.LOCK_NAME
    try:
        # the lock is the first thing taken; the models load after it
        _wait(lambda: lock.exists() and lock.read_text().strip() == str(proc.pid), timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    instance_lock.check_free(data)  # raises DataFolderBusy if anything still held it
