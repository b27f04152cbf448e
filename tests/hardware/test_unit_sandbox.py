"""The appliance unit's sandbox does not break the code it runs.

- lgpio (the Pi 5's GPIO back-end) creates its notification FIFO ``.lgd-nfy*`` in the working
  directory when it is imported; under ``ProtectSystem=strict`` ``/opt/facegate`` is read-only, so
  without ``LG_WD`` pointing at a writable place the lgpio factory fails to start, in the kiosk and
  in the ``ExecStartPre`` safe command alike (and a failing ExecStartPre keeps the door down).
- ``MemoryDenyWriteExecute=yes``: the kernel's own W^X switch (``PR_SET_MDWE``, the same rule the
  unit's seccomp filter enforces) set in a child process, which then makes a ctypes callback (libffi
  closure), runs dlib's face encoder on a real photo and the safe command.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.hardware.test_safe import clean_env, unit_service_section

UNIT = REPO_ROOT / "systemd" / "facegate-appliance.service"


def test_lgpio_gets_a_writable_working_directory_under_the_read_only_system():
    service = unit_service_section(UNIT)
    assert service["ProtectSystem"] == ["strict"]  # /opt/facegate is read-only in the unit
    env = dict(v.split("=", 1) for line in service.get("Environment", []) for v in line.split())
    lg_wd = env.get("LG_WD")
    assert lg_wd, "lgpio would try to create .lgd-nfy* in the read-only WorkingDirectory"
    assert lg_wd == "/tmp" and service["PrivateTmp"] == ["yes"]  # writable, and the unit's own


PROBE = r"""
import ctypes, mmap, runpy, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    print("NO-MDWE"); sys.exit(0)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("W^X NOT ENFORCED"); sys.exit(3)
except OSError:
    pass
cb = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)
assert cb(41) == 42
import face_recognition, numpy
from threadpoolctl import threadpool_limits
with threadpool_limits(1):
    image = face_recognition.load_image_file(sys.argv[1])
    encodings = face_recognition.face_encodings(image)
assert len(encodings) == 1 and encodings[0].shape == (128,), len(encodings)
print("FACES-OK")
sys.argv = ["hardware", "safe"]
runpy.run_module("hardware", run_name="__main__")
"""


def test_kiosk_code_runs_with_memory_deny_write_execute(tmp_path, fixtures_dir):
    photo = fixtures_dir / "people" / "barack_obama"
    photo = sorted(p for p in photo.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[0]
    r = subprocess.run(
        [sys.executable, "-c", PROBE, str(photo)],
        cwd=REPO_ROOT,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "NO-MDWE" in r.stdout:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")
    assert "FACES-OK" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr  # the safe command drove the relay
    assert "relay GPIO17: de-energised" in r.stdout


def test_the_docker_appliance_also_gets_a_writable_lgpio_directory():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    appliance = compose["services"]["appliance"]
    assert appliance["read_only"] is True and "/tmp" in appliance["tmpfs"]
    assert appliance["environment"]["LG_WD"] == "/tmp"
    assert appliance["environment"]["FACEGATE_DATA_DIR"] == "/data"  # not lost by the override


def test_the_docker_appliance_drives_the_relay_safe_before_every_start(tmp_path):
    """Docker has no ExecStartPre: the container's command runs the safe command, then the kiosk
    (exec, so SIGTERM reaches the kiosk itself). Run the command line for real with mock pins."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    command = compose["services"]["appliance"]["command"]
    assert command[:2] == ["sh", "-c"]
    script = command[2]
    assert script.index("python -m hardware safe") < script.index("exec python -m appliance run")
    assert "notify" in compose["services"]  # the outbox sender runs in Docker too
    safe_part = script.split(";")[0].replace("python", sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(
        FACEGATE_PIN_FACTORY="mock", FACEGATE_DATA_DIR=str(tmp_path), PYTHONPATH=str(REPO_ROOT)
    )
    r = subprocess.run(
        ["sh", "-c", safe_part], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "de-energised" in r.stdout


REVISION_PROBE = r"""
import sys
from gpiozero.exc import PinUnknownPi
from gpiozero.pins.local import get_pi_revision
try:
    print("revision", get_pi_revision())
except PinUnknownPi:
    print("not a Pi, but gpiozero could look")  # this machine: /proc/cpuinfo has no Revision
except OSError as exc:
    print("gpiozero cannot identify the board:", exc)
    sys.exit(1)
"""


def test_gpiozero_can_identify_the_board_under_the_units_proc(tmp_path):
    """gpiozero's real factories (lgpio, RPi.GPIO) look the board up in /proc/device-tree or
    /proc/cpuinfo before they hand out any pin; ``ProcSubset=pid`` hides both, so not even the
    safe command could drive the relay. /proc is mounted here with the unit's options."""
    service = unit_service_section(UNIT)
    options = []
    if service.get("ProcSubset") == ["pid"]:
        options.append("subset=pid")
    if service.get("ProtectProc") == ["invisible"]:
        options.append("hidepid=invisible")
    mount = "mount -t proc " + (f"-o {','.join(options)} " if options else "") + "proc /proc"
    r = subprocess.run(
        [
            "unshare",
            "-m",
            "-p",
            "-f",
            "sh",
            "-c",
            f'{mount} && exec "$0" -c "$1"',
            sys.executable,
            REVISION_PROBE,
        ],
        cwd=REPO_ROOT,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if r.returncode != 0 and "cannot identify" not in r.stdout:
        pytest.skip(f"cannot mount a private /proc here: {r.stderr.strip()[:200]}")
    assert r.returncode == 0, r.stdout + r.stderr
