"""`python -m appliance notify-test` and `python -m notify status` as an admin runs them."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT, run_cli
from tests.notify.servers import SmtpServer, free_port


def test_notify_test_prints_each_answer_with_urls_masked(tmp_path):
    dead = free_port()
    with SmtpServer() as smtp:
        urls = (
            f"{smtp.url()} mailto://user:hunter22@127.0.0.1:{dead}"
            "?from=a@example.com&to=b@example.com"
        )
        done = run_cli(
            "notify-test",
            env={"FACEGATE_DATA_DIR": str(tmp_path / "data"), "FACEGATE_NOTIFY_URLS": urls},
        )
        assert done.returncode == 1, done.stderr  # one URL failed
        lines = done.stdout.splitlines()
        assert lines[0].startswith("OK   mailto://***: ")
        assert lines[1].startswith("FAIL mailto://***@127.0.0.1")
        assert "hunter22" not in done.stdout + done.stderr
        assert len(smtp.messages) == 1


def test_notify_test_without_urls_says_what_to_set(tmp_path):
    done = run_cli("notify-test", env={"FACEGATE_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 2 and "FACEGATE_NOTIFY_URLS" in done.stdout


def test_notify_process_exits_cleanly_when_nothing_is_configured(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(PYTHONPATH=str(REPO_ROOT), FACEGATE_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [sys.executable, "-m", "notify"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "nothing configured" in done.stdout
    status = subprocess.run(
        [sys.executable, "-m", "notify", "status"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and "notification URLs: none" in status.stdout


def test_the_notify_process_sends_and_stops_on_sigterm(tmp_path):
    """`python -m notify` as systemd runs it: an event written by the door reaches the webhook;
    SIGTERM stops it cleanly and its status says so."""
    import signal
    import time

    from appliance import store
    from appliance.settings import load_settings
    from tests.notify.servers import HttpReceiver
    from tests.notify.test_outbox import write_events

    with HttpReceiver() as hook:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
        env.update(
            PYTHONPATH=str(REPO_ROOT),
            FACEGATE_DATA_DIR=str(tmp_path / "data"),
            FACEGATE_WEBHOOK_URL=f"http://127.0.0.1:{hook.port}/in",
            FACEGATE_WEBHOOK_SECRET="k",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "notify"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            db = store.open_db(tmp_path / "data" / "facegate.db")
            deadline = time.monotonic() + 60
            while not db.execute("SELECT count(*) FROM outbox_channels").fetchone()[0]:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
            settings = load_settings(data_dir=tmp_path / "data")
            [eid] = write_events(settings, [("door_forced", {})])
            while not hook.requests:
                assert time.monotonic() < deadline, "the webhook got nothing"
                time.sleep(0.1)
            assert hook.json(0)["id"] == eid
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "notify stopped" in err
        assert store.get_status(db, "notify")["running"] is False


def test_a_url_apprise_does_not_know_stops_start_up_naming_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        FACEGATE_DATA_DIR=str(tmp_path / "data"),
        FACEGATE_NOTIFY_URLS="json://127.0.0.1:9/ok nosuchservice://token-XYZ-123@host",
    )
    done = subprocess.run(
        [sys.executable, "-m", "notify"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "FACEGATE_NOTIFY_URLS: entry 2 (nosuchservice://***@host)" in done.stderr
    assert "token-XYZ-123" not in done.stderr
