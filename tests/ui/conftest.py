"""The console against a real admin API: waitress on a free port, a temporary data folder, the
real face models; the real appliance (a subprocess) makes the entry log's events.

One API (and one appliance run) per session keeps these tests within their time budget. The
browser tests also start the console itself (``python -m admin_ui``) as a subprocess.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageEnhance
from streamlit.testing.v1 import AppTest

from admin_api.app import create_app
from admin_api.auth import FailureLimiter, create_token
from admin_api.server import ApiServer
from appliance import store
from appliance.settings import Settings, load_settings
from tests.conftest import REPO_ROOT

APP = REPO_ROOT / "admin_ui" / "app.py"
PAGES = {
    "Door": "views/door.py",
    "People": "views/people.py",
    "Entry log": "views/entry_log.py",
    "Schedules": "views/schedules.py",
    "Sync": "views/sync.py",
}
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


@dataclass
class ConsoleApi:
    url: str  # http://127.0.0.1:PORT (the console's FACEGATE_UI_API_URL)
    settings: Settings
    admin_token: str
    viewer_token: str

    def http(self, token: str | None = None) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token or self.admin_token}"
        return s

    def get(self, path: str) -> dict:
        resp = self.http().get(f"{self.url}/api/v1{path}", timeout=30)
        resp.raise_for_status()
        return resp.json()

    def person_named(self, name: str) -> dict | None:
        items = self.get(f"/people?search={name}")["items"]
        return next((p for p in items if p["name"] == name), None)


def _settings(data_dir: Path) -> Settings:
    """Settings from arguments only: no .env, no FACEGATE_* variables of the developer."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("FACEGATE_")}
    for key in saved:
        if key != "FACEGATE_FIXTURES":
            del os.environ[key]
    try:
        return load_settings(_env_file=None, data_dir=data_dir, pin_factory="mock")
    finally:
        os.environ.update(saved)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def console_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleApi]:
    data_dir = tmp_path_factory.mktemp("ui_data")
    settings = _settings(data_dir)
    app = create_app(settings)
    app.extensions["facegate"].limiter = FailureLimiter(limit=100_000)  # bad-token tests
    server = ApiServer(app, settings, host="127.0.0.1", port=0).start()
    db = store.open_db(settings.db_path)
    admin = create_token(db, "ui-admin", "admin")[1]
    viewer = create_token(db, "ui-viewer", "viewer")[1]
    db.conn.close()
    try:
        yield ConsoleApi(server.url, settings, admin, viewer)
    finally:
        server.stop()
        app.extensions["facegate"].close()


def run_appliance(
    settings: Settings, probe: Path, tmp: Path, copies: int = 8, flicker: bool = False
) -> None:
    """The real appliance over a folder of ``copies`` of one probe photo, into the API's store.

    One still is not enough for the k-of-n vote, hence copies. Identical copies are skipped by
    the motion gate after the first few; ``flicker`` alternates their brightness so every frame
    is processed and the run lasts long enough for the live view to be written.
    """
    folder = tmp / f"probe_{probe.stem}"
    folder.mkdir(exist_ok=True)
    for i in range(copies):
        target = folder / f"{i:03d}{probe.suffix}"
        if flicker:
            with Image.open(probe) as img:
                ImageEnhance.Brightness(img).enhance(1.0 + 0.08 * (i % 2)).save(target)
        else:
            shutil.copy(probe, target)
    env = clean_env(
        FACEGATE_DATA_DIR=str(settings.data_dir),
        FACEGATE_PIN_FACTORY="mock",
        FACEGATE_LIVENESS="off",
        FACEGATE_STORE_EVENT_SNAPSHOTS="true",
    )
    r = subprocess.run(
        [sys.executable, "-m", "appliance", "run", "--source", str(folder), "--once", "--fast"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.fixture(scope="session")
def kit_entered(
    console_api: ConsoleApi,
    people_dir: Path,
    probes_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict:
    """Kit Harington enrolled (through the API), then seen by the real appliance: one grant."""
    http = console_api.http()
    base = f"{console_api.url}/api/v1"
    person = http.post(
        f"{base}/people", json={"name": "Kit Harington", "external_id": "kit"}, timeout=30
    ).json()
    photos = [
        ("photos", (p.name, p.read_bytes(), "image/jpeg"))
        for p in sorted((people_dir / "kit_harington").iterdir())
    ]
    resp = http.post(f"{base}/people/{person['id']}/faces", files=photos, timeout=120)
    assert resp.status_code == 201, resp.text
    run_appliance(
        console_api.settings,
        probes_dir / "kit_harington__1.jpg",
        tmp_path_factory.mktemp("appliance"),
    )
    return person


@pytest.fixture
def ui_env(console_api: ConsoleApi, monkeypatch: pytest.MonkeyPatch) -> ConsoleApi:
    """The console (AppTest runs it in this process) finds the test API through its setting."""
    monkeypatch.setenv("FACEGATE_UI_API_URL", console_api.url)
    return console_api


def sign_in(token: str) -> AppTest:
    """A fresh console session, signed in with ``token``."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.text_input[0].input(token)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, name: str) -> AppTest:
    at.switch_page(PAGES[name]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# --- the browser ------------------------------------------------------------------------------


@dataclass
class Console:
    url: str
    api: ConsoleApi


@pytest.fixture(scope="session")
def console(console_api: ConsoleApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """``python -m admin_ui`` as a subprocess on a free port, pointed at the test API."""
    port = free_port()
    cwd = tmp_path_factory.mktemp("console")
    log = (cwd / "console.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "admin_ui"],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(FACEGATE_UI_API_URL=console_api.url, FACEGATE_UI_PORT=str(port)),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/_stcore/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "the console did not start:\n" + (cwd / "console.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        yield Console(url, console_api)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
