"""One kiosk per data folder: a second kiosk on the same folder stops at once, naming the first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from appliance import instance_lock
from tests.conftest import REPO_ROOT, run_cli


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_second_kiosk_on_the_same_data_folder_stops_at_once(tmp_path, clip_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        FACEGATE_DATA_DIR=str(data),
        FACEGATE_PIN_FACTORY="mock",
        FACEGATE_LIVENESS="off",
    )
    first = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--source", str(clip_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
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
