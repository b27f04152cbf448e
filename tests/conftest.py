"""Shared test fixtures: the real face fixtures, temporary data folders and settings.

The face models load once per session (face_recognition loads them at import); enrolled galleries
that several tests read are session-scoped too, so the suite stays within its time budget.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def fixtures_root() -> Path:
    """``../shared/fixtures`` beside the repository, or ``$FACEGATE_FIXTURES``."""
    override = os.environ.get("FACEGATE_FIXTURES")
    return Path(override) if override else (REPO_ROOT.parent / "shared" / "fixtures").resolve()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    root = fixtures_root()
    if not (root / "people").is_dir():
        pytest.fail(f"face fixtures not found at {root}; set FACEGATE_FIXTURES")
    return root


@pytest.fixture(scope="session")
def people_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "people"


@pytest.fixture(scope="session")
def probes_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "probes"


@pytest.fixture(scope="session")
def clip_path(fixtures_dir: Path) -> Path:
    return fixtures_dir / "video" / "short_hamilton_clip.mp4"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env or FACEGATE_* variables by accident."""
    for key in list(os.environ):
        if key.startswith("FACEGATE_") and key not in ("FACEGATE_FIXTURES",):
            if not key.startswith("FACEGATE_TEST_"):
                monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def settings(data_dir: Path):
    from appliance.settings import load_settings

    return load_settings(data_dir=data_dir, pin_factory="mock")


@pytest.fixture(scope="session")
def engine():
    """One FaceEngine (the dlib models) for the whole session.

    Its whole-frame detector is HOG unless ``FACEGATE_TEST_DETECTOR`` names another
    (``FACEGATE_TEST_DETECTOR=blazeface pytest tests/liveness``: the photo attacks as BlazeFace
    finds them); ``FACEGATE_DETECTOR`` itself is cleared for every test."""
    from appliance.faces import DetectorConfig, FaceEngine

    return FaceEngine(DetectorConfig(kind=os.environ.get("FACEGATE_TEST_DETECTOR", "hog")))


def _cli_env(env: dict | None) -> dict[str, str]:
    """This environment without the caller's FACEGATE_* variables (but the fixtures'), plus
    ``env``, with the repository importable."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    if "FACEGATE_FIXTURES" in os.environ:
        full_env["FACEGATE_FIXTURES"] = os.environ["FACEGATE_FIXTURES"]
    full_env["PYTHONPATH"] = str(REPO_ROOT)
    full_env.update(env or {})
    return full_env


def run_cli(*args: str, env: dict | None = None, timeout: float = 300):
    """Run ``python -m appliance ARGS`` from the repository root; returns CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        cwd=REPO_ROOT,
        env=_cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args: str, env: dict | None = None, stdout: int | None = None, **popen):
    """Start ``python -m appliance ARGS`` in the background, environment as :func:`run_cli`;
    stderr is piped (text), stdout discarded unless ``stdout`` says otherwise."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "appliance", *args],
        cwd=REPO_ROOT,
        env=_cli_env(env),
        stdout=subprocess.DEVNULL if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
