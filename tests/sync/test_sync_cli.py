"""``python -m sync``: run, once, status and provision, as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from appliance import store
from sync.client import CentralClient
from tests.supabase_gateway import free_port
from tests.sync.central import unique

REPO = Path(__file__).resolve().parents[2]


def _base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(PYTHONPATH=str(REPO), FACEGATE_DATA_DIR=str(data_dir), FACEGATE_PIN_FACTORY="mock")
    return env


def run_sync(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _wait_for(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_without_settings_sync_says_so_and_exits_cleanly(tmp_path):
    env = _base_env(tmp_path / "data")
    done = run_sync(env=env)
    assert done.returncode == 0
    assert "sync not configured" in done.stdout
    once = run_sync("once", env=env)
    assert once.returncode != 0 and "sync not configured" in once.stdout
    status = run_sync("status", env=env)
    assert status.returncode == 0 and "not configured" in status.stdout


def test_once_and_status(gateway_central, make_door, face_vectors):
    door = make_door(gateway_central)
    gateway_central.add_person(door.site, "Obama", [face_vectors.obama], face_vectors.model)
    store.insert_events(door.db, [{"door": door.name, "kind": "deny_unknown"} for _ in range(7)])
    store.insert_events(door.db, [{"door": door.name, "kind": "Not A Kind!"}])

    done = run_sync("once", env=door.subprocess_env())
    assert done.returncode == 0, done.stderr  # a quarantined row is reported, not a failure
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["pull"]["applied"] == 2 and report["push_events"]["sent"] == 7
    assert report["push_events"]["refused"] == 1

    status = run_sync("status", env=door.subprocess_env())
    assert status.returncode == 0
    assert "state:         ok" in status.stdout
    assert "backlog:       0 events" in status.stdout
    assert "quarantined:   1 push" in status.stdout and "push event" in status.stdout
    as_json = json.loads(run_sync("status", "--json", env=door.subprocess_env()).stdout)
    assert as_json["pull_cursor"] > 0 and as_json["last_error"] is None


def test_once_fails_with_a_non_zero_exit_when_the_centre_is_unreachable(make_door, gateway_central):
    door = make_door(gateway_central)
    env = door.subprocess_env()
    env["FACEGATE_SUPABASE_URL"] = f"http://127.0.0.1:{free_port()}"  # nobody listens
    store.insert_events(door.db, [{"door": door.name, "kind": "grant"}])

    done = run_sync("once", "--attempts", "1", env=env)

    assert done.returncode == 1
    assert "sync failed" in done.stderr and "Transient" in done.stderr
    status = run_sync("status", env=env).stdout
    assert "backlog:       1 events" in status and "Connection refused" in status
    assert "last success:  never" in status and "state:         error" in status


def test_provision_prints_a_working_env(gateway, tmp_path):
    env = _base_env(tmp_path / "admin")
    env.update(FACEGATE_SUPABASE_URL=gateway.url, FACEGATE_SUPABASE_ANON_KEY=gateway.anon_key)
    missing = run_sync("provision", "--site", "HQ", "--door", "Front", env=env)
    assert missing.returncode == 2 and "FACEGATE_SUPABASE_SERVICE_ROLE_KEY" in missing.stderr

    env["FACEGATE_SUPABASE_SERVICE_ROLE_KEY"] = gateway.service_role_key
    site, door = unique("Main site"), "Front door"
    done = run_sync("provision", "--site", site, "--door", door, env=env)
    assert done.returncode == 0, done.stderr
    lines = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if line and not line.startswith("#")
    )
    assert set(lines) == {
        "FACEGATE_SUPABASE_URL",
        "FACEGATE_SUPABASE_ANON_KEY",
        "FACEGATE_DEVICE_EMAIL",
        "FACEGATE_DEVICE_PASSWORD",
        "FACEGATE_DOOR_NAME",
    }
    assert gateway.service_role_key not in done.stdout  # the door never gets the service key
    client = CentralClient(
        lines["FACEGATE_SUPABASE_URL"],
        lines["FACEGATE_SUPABASE_ANON_KEY"],
        lines["FACEGATE_DEVICE_EMAIL"],
        lines["FACEGATE_DEVICE_PASSWORD"],
    )
    try:
        assert client.call("pull_changes", {"after": 0})["changes"] == []
    finally:
        client.close()

    again = run_sync(
        "provision",
        "--site",
        site,
        "--door",
        door,
        "--email",
        f"{uuid.uuid4().hex}@doors.facegate.local",
        env=env,
    )
    assert again.returncode == 1 and "already provisioned" in again.stderr


def test_the_loop_syncs_both_ways_and_stops_cleanly_on_sigterm(
    gateway_central, make_door, face_vectors
):
    door = make_door(gateway_central)
    env = door.subprocess_env()
    env.update(
        FACEGATE_SYNC_PULL_SECONDS="0.3",
        FACEGATE_SYNC_PUSH_SECONDS="0.2",
        FACEGATE_SYNC_HEARTBEAT_SECONDS="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_for(lambda: (store.get_status(door.db, "sync") or {}).get("state") == "ok")
        pid = gateway_central.add_person(
            door.site, "Obama", [face_vectors.obama], face_vectors.model
        )
        assert _wait_for(
            lambda: (
                door.db.execute("SELECT count(*) FROM faces WHERE person_id = ?", [pid]).fetchone()[
                    0
                ]
                == 1
            )
        )
        store.insert_events(door.db, [{"door": door.name, "kind": "grant", "person_id": pid}])
        assert _wait_for(
            lambda: (
                door.db.execute("SELECT count(*) FROM events WHERE synced = 0").fetchone()[0] == 0
            )
        )
        device = gateway_central.device_id(door.email)
        assert len(gateway_central.event_ids(device)) == 1
        assert _wait_for(
            lambda: gateway_central.sql(
                "select 1 from device_heartbeats where device_id = %s", [device]
            )
        )

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert store.get_status(door.db, "sync")["state"] == "stopped"
