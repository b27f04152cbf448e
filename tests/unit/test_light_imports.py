"""The pure decision modules load without the face models or SQLite (fast tests, light tools)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PURE = [
    "appliance.policy",
    "appliance.match",
    "appliance.vote",
    "appliance.track_decision",
    "appliance.track",
    "appliance.boxes",
    "appliance.timeutil",
]
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["dlib", "face_recognition", "sqlite3", "sqlite_utils", "cv2"]


def test_pure_modules_import_nothing_heavy():
    code = (
        "import sys\n"
        f"for m in {PURE!r}: __import__(m)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", f"pure modules loaded {run.stdout.strip()}"
