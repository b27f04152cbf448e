"""scripts/install.sh into a temporary root, the units' hardening and their validity."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

UNITS = sorted((REPO_ROOT / "systemd").glob("facegate-*.service"))
MAX_EXPOSURE = 3.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)"
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="install.sh creates users and chowns: needs root"
)


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_exposure_is_at_most_3(unit):
    r = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(unit)], capture_output=True, text=True
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    exposure = float(m.group(1))
    print(f"{unit.name}: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, r.stdout


@needs_analyze
def test_units_verify(tmp_path):
    # ExecStart must name an executable that exists here: point it at this venv's python
    for f in [*UNITS, REPO_ROOT / "systemd" / "facegate.target"]:
        text = f.read_text().replace("/opt/facegate/.venv/bin/python", sys.executable)
        (tmp_path / f.name).write_text(text)
    files = sorted(str(p) for p in tmp_path.iterdir())
    r = subprocess.run([ANALYZE, "verify", *files], capture_output=True, text=True)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_only_the_appliance_sees_devices_and_the_console_not_the_store():
    text = {u.name: u.read_text() for u in UNITS}
    assert "DevicePolicy=closed" in text["facegate-appliance.service"]
    assert "PrivateDevices=yes" not in text["facegate-appliance.service"]
    for name in ("facegate-api.service", "facegate-sync.service", "facegate-ui.service"):
        assert "PrivateDevices=yes" in text[name], name
    for name in ("facegate-api.service", "facegate-ui.service"):
        assert "IPAddressAllow=localhost" in text[name] and "IPAddressDeny=any" in text[name]
    ui = text["facegate-ui.service"]
    assert "User=facegate-ui" in ui and "InaccessiblePaths=-/var/lib/facegate" in ui
    for name, t in text.items():
        for line in (
            "ProtectSystem=strict",
            "UMask=0077",
            "CapabilityBoundingSet=\n",
            "SystemCallFilter=@system-service",
            "RestrictNamespaces=yes",
        ):
            assert line in t, (name, line)


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        shutil.copy(f"/etc/{name}", root / "etc" / name)
    with open(root / "etc" / "group") as fh:
        has_gpio = any(line.startswith("gpio:") for line in fh)
    if not has_gpio:  # as on Raspberry Pi OS
        with open(root / "etc" / "group", "a") as fh:
            fh.write("gpio:x:993:\n")
    return root


def _ids(root: Path, name: str, db: str = "passwd") -> int:
    for line in (root / "etc" / db).read_text().splitlines():
        if line.split(":")[0] == name:
            return int(line.split(":")[2])
    raise AssertionError(f"{name} not in {db}")


def _members(root: Path, group: str) -> set[str]:
    for line in (root / "etc" / "group").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == group:
            return set(filter(None, parts[3].split(",")))
    return set()


def _install(root: Path, *extra: str) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [
            "bash",
            str(REPO_ROOT / "scripts" / "install.sh"),
            "--root",
            str(root),
            "--no-pip",
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@needs_root
def test_install_into_a_temp_root_then_upgrade_then_uninstall(tmp_path):
    root = _root(tmp_path)
    r = _install(root)
    assert "SKIPPED starting" in r.stdout  # no systemd running here / --root: said clearly
    assert "http://127.0.0.1:8501" in r.stdout and "facegate enroll" in r.stdout

    fg, ui = _ids(root, "facegate"), _ids(root, "facegate-ui")
    assert {"facegate"} <= _members(root, "video") and {"facegate"} <= _members(root, "gpio")
    assert "facegate-ui" not in _members(root, "video") | _members(root, "gpio")

    app = root / "opt" / "facegate"
    for p in [app, app / "appliance" / "store" / "db.py", app / ".venv" / "bin"]:
        assert p.stat().st_uid == 0 and not _mode(p) & 0o022, p  # root's, read-only to others
    assert not (app / "tests").exists() and not (app / ".git").exists()
    data = root / "var" / "lib" / "facegate"
    assert data.stat().st_uid == fg and _mode(data) == 0o700
    ui_home = root / "var" / "lib" / "facegate-ui"
    assert ui_home.stat().st_uid == ui and _mode(ui_home) == 0o700
    env = root / "etc" / "facegate" / "facegate.env"
    assert env.stat().st_uid == 0 and _mode(env) == 0o600
    assert "FACEGATE_DATA_DIR=/var/lib/facegate\n" in env.read_text()
    units = root / "etc" / "systemd" / "system"
    for name in ("facegate-appliance.service", "facegate-ui.service", "facegate.target"):
        assert _mode(units / name) == 0o644
    if shutil.which("systemctl"):
        assert (units / "facegate.target.wants" / "facegate-appliance.service").is_symlink()
        assert (units / "multi-user.target.wants" / "facegate.target").is_symlink()
    wrapper = root / "usr" / "local" / "bin" / "facegate"
    assert _mode(wrapper) == 0o755 and "--reuid=facegate" in wrapper.read_text()

    # an admin's settings and the store survive a re-run; stale code does not
    env.write_text(env.read_text() + "FACEGATE_DOOR_NAME=back-door\n")
    (data / "facegate.db").write_bytes(b"the store")
    (app / "appliance" / "stale.py").write_text("old")
    r = _install(root)
    assert "keeping" in r.stdout
    assert "FACEGATE_DOOR_NAME=back-door" in env.read_text() and _mode(env) == 0o600
    assert (data / "facegate.db").read_bytes() == b"the store"
    assert not (app / "appliance" / "stale.py").exists()

    un = REPO_ROOT / "scripts" / "uninstall.sh"
    r = subprocess.run(["bash", str(un), "--root", str(root)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not app.exists() and not (units / "facegate-appliance.service").exists()
    assert (data / "facegate.db").exists() and env.exists()  # kept unless told
    r = subprocess.run(
        ["bash", str(un), "--root", str(root), "--purge"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert not data.exists() and not env.exists()
    assert "facegate:" not in (root / "etc" / "passwd").read_text()
