"""The ``facegate`` command reads /etc/facegate/facegate.env the way systemd does: values are
data, never shell (a camera URL's ``&`` or a password's ``$`` reach the program unchanged, and
nothing in the file runs as root)."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO_ROOT


def _wrapper(tmp_path, env_file):
    text = (REPO_ROOT / "scripts" / "install.sh").read_text()
    body = re.search(r'usr/local/bin/facegate" <<\'EOF\'\n(.*?)\nEOF\n', text, re.S).group(1)
    assert "/etc/facegate/facegate.env" in body and "exec setpriv" in body
    body = body.replace("/etc/facegate/facegate.env", str(env_file))
    body = body.replace("cd /opt/facegate", f"cd {tmp_path}")
    body = re.sub(r"exec setpriv .*?\"\$@\"", "exec env", body, flags=re.S)
    script = tmp_path / "facegate"
    script.write_text(body)
    return script


def test_settings_reach_the_command_as_written_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    env_file = tmp_path / "facegate.env"
    env_file.write_text(
        "# a comment\n"
        "FACEGATE_CAMERA_SOURCE=http://cam.lan/snap.cgi?user=admin&pwd=pa$$w0rd;x\n"
        f"FACEGATE_DOOR_NAME=$(touch {marker})\n"
        'FACEGATE_DOOR_TIMEZONE="Europe/Berlin"\n'
        "\n"
        "FACEGATE_LOG_LEVEL=INFO\n"
    )
    r = subprocess.run(
        ["sh", str(_wrapper(tmp_path, env_file))], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert env["FACEGATE_CAMERA_SOURCE"] == "http://cam.lan/snap.cgi?user=admin&pwd=pa$$w0rd;x"
    assert env["FACEGATE_DOOR_NAME"] == f"$(touch {marker})"
    assert env["FACEGATE_DOOR_TIMEZONE"] == "Europe/Berlin"  # quotes dropped, as systemd does
    assert env["FACEGATE_LOG_LEVEL"] == "INFO"
    assert not marker.exists()
