"""``make demo``: everything starts, the printed token opens the API, Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import requests

from tests.conftest import REPO_ROOT
from tests.ui.conftest import free_port


def test_demo_starts_everything_and_ctrl_c_stops_it(tmp_path, fixtures_dir):
    api_port, ui_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(
        FACEGATE_FIXTURES=str(fixtures_dir),
        FACEGATE_API_PORT=str(api_port),
        FACEGATE_UI_PORT=str(ui_port),
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "demo.py"), "--data", str(tmp_path / "d")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(out)
        assert "Ctrl-C stops everything" in text, text[-3000:]
        token = re.search(r"Admin token:\s+(\S+)", text).group(1)
        assert f"http://127.0.0.1:{ui_port}" in text
        api = f"http://127.0.0.1:{api_port}/api/v1"
        people = requests.get(
            f"{api}/people", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        assert people["total"] == 6  # the fixture people
        assert requests.get(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=10).ok
        deadline = time.monotonic() + 60  # the kiosk reports in, running
        while time.monotonic() < deadline:
            status = requests.get(
                f"{api}/door/status", timeout=10, headers={"Authorization": f"Bearer {token}"}
            ).json()
            if status["appliance_online"]:
                break
            time.sleep(0.5)
        assert status["appliance_online"]
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, rest[-3000:]
    assert "relay de-energised" in rest and rest.rstrip().endswith("demo: stopped")
    try:
        requests.get(f"{api}/health", timeout=2)
        raise AssertionError("the API still answers after Ctrl-C")
    except requests.ConnectionError:
        pass
