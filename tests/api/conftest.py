"""The admin API under a real waitress server on a free port, with a temporary data folder.

One server (and one enrolled gallery) per session keeps these tests fast; tests that need their
own limits (the failure limiter) start a second, small server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlite_utils
from flask import Flask

from admin_api.app import create_app
from admin_api.auth import FailureLimiter, create_token
from admin_api.server import ApiServer
from appliance import store
from appliance.settings import Settings, load_settings
from tests.conftest import REPO_ROOT  # noqa: F401 (re-exported for the CLI tests)


class ApiClient(requests.Session):
    """requests with a base URL and, optionally, a bearer token."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        super().__init__()
        self.base_url = base_url
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, url: str, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", 30)
        return super().request(method, self.base_url + url, *args, **kwargs)


@dataclass
class Api:
    url: str  # http://127.0.0.1:PORT
    app: Flask
    settings: Settings
    db: sqlite_utils.Database  # the test's own connection: plays the appliance's part
    admin_token: str
    viewer_token: str

    def client(self, token: str | None = None) -> ApiClient:
        return ApiClient(self.url + "/api/v1", token)

    @property
    def admin(self) -> ApiClient:
        return self.client(self.admin_token)

    @property
    def viewer(self) -> ApiClient:
        return self.client(self.viewer_token)

    def token(self, name: str, role: str) -> str:
        return create_token(self.db, name, role)[1]


def make_settings(data_dir: Path, **overrides) -> Settings:
    """Settings from arguments only: no .env, no FACEGATE_* variables of the developer."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("FACEGATE_")}
    for key in saved:
        if key != "FACEGATE_FIXTURES":
            del os.environ[key]
    try:
        return load_settings(_env_file=None, data_dir=data_dir, pin_factory="mock", **overrides)
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("api_data")
    settings = make_settings(data_dir)
    app = create_app(settings)
    # failures from the 401 tests must not lock the session's client out; the limiter has its
    # own server in test_auth.py
    app.extensions["facegate"].limiter = FailureLimiter(limit=100_000)
    server = ApiServer(app, settings, host="127.0.0.1", port=0).start()
    db = store.open_db(settings.db_path)
    admin = create_token(db, "test-admin", "admin")[1]
    viewer = create_token(db, "test-viewer", "viewer")[1]
    try:
        yield Api(server.url, app, settings, db, admin, viewer)
    finally:
        server.stop()
        app.extensions["facegate"].close()
        db.conn.close()


@pytest.fixture(scope="session")
def enrolled(api: Api, people_dir: Path) -> dict[str, str]:
    """Every fixture person created and enrolled through the API: folder name -> person id."""
    ids = {}
    admin = api.admin
    for folder in sorted(p for p in people_dir.iterdir() if p.is_dir()):
        resp = admin.post(
            "/people",
            json={
                "name": folder.name.replace("_", " ").title(),
                "external_id": f"fixture-{folder.name}",
            },
        )
        assert resp.status_code == 201, resp.text
        pid = resp.json()["id"]
        photos = [
            ("photos", (p.name, p.read_bytes(), "image/jpeg"))
            for p in sorted(folder.iterdir())
            if p.is_file()
        ]
        resp = admin.post(f"/people/{pid}/faces", files=photos)
        assert resp.status_code == 201, resp.text
        assert resp.json()["enrolled"] == len(photos), resp.text
        ids[folder.name] = pid
    return ids
