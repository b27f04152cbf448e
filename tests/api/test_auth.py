"""Tokens and roles: no token -> 401, viewer -> read only, revoked -> 401, failures -> 429."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import pytest
from loguru import logger

from admin_api.app import create_app
from admin_api.auth import FailureLimiter, required_role
from admin_api.server import ApiServer, exposure_warning, is_loopback
from appliance import store
from tests.api.conftest import REPO_ROOT, Api, ApiClient, make_settings


def routes(api: Api) -> list[tuple[str, str, str]]:
    """(method, path with dummy ids, least role) of every API route."""
    out = []
    for rule in api.app.url_map.iter_rules():
        path = re.sub(r"<int:[^>]+>", "0", rule.rule)  # no id 0: SQLite counts from 1
        path = re.sub(r"<[^>]+>", "no-such-id", path).removeprefix("/api/v1")
        role = required_role(api.app.view_functions[rule.endpoint]) or "public"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, path, role))
    return out


def assert_error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    err = resp.json()["error"]
    assert set(err) >= {"code", "message"} and err["message"]
    if code:
        assert err["code"] == code
    return err


def test_health_answers_without_a_token(api: Api) -> None:
    resp = api.client().get("/health")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_every_other_route_needs_a_token(api: Api) -> None:
    anonymous, wrong = api.client(), api.client("fg_not-a-real-token")
    checked = 0
    for method, path, role in routes(api):
        if role == "public":
            continue
        resp = anonymous.request(method, path)
        assert_error(resp, 401, "unauthorized")
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert_error(wrong.request(method, path), 401, "unauthorized")
        checked += 1
    assert checked >= 20


def test_a_viewer_reads_but_cannot_change_anything(api: Api) -> None:
    version_before = store.gallery_version(api.db)
    audit_before = api.db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    admin_only = 0
    for method, path, role in routes(api):
        resp = api.viewer.request(method, path, json={"name": "Mallory"})
        if role == "admin":
            assert_error(resp, 403, "forbidden")
            admin_only += 1
        elif role == "viewer":
            assert resp.status_code not in (401, 403), (method, path, resp.text)
    assert admin_only >= 10
    assert store.gallery_version(api.db) == version_before
    assert api.db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audit_before
    assert api.viewer.get("/people").status_code == 200
    assert api.viewer.get("/events").status_code == 200
    assert api.viewer.get("/door/status").status_code == 200


def test_tokens_are_stored_only_as_hashes(api: Api) -> None:
    token = api.token("hash-check", "viewer")
    rows = list(api.db.query("SELECT * FROM api_tokens WHERE name = 'hash-check'"))
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(v) for v in rows[0].values())


def _cli(api: Api, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(FACEGATE_DATA_DIR=str(api.settings.data_dir), PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "admin_api", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=api.settings.data_dir,
    )


def test_token_cli_creates_lists_and_revokes(api: Api) -> None:
    created = _cli(api, "token", "create", "--role", "admin", "--name", "cli-admin")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("fg_")
    client = api.client(token)
    assert client.get("/audit").status_code == 200

    listed = _cli(api, "token", "list")
    assert listed.returncode == 0 and "cli-admin" in listed.stdout and token not in listed.stdout
    assert listed.stdout.split()[:5] == ["id", "role", "name", "state", "last"]  # a header row

    again = _cli(api, "token", "create", "--role", "viewer", "--name", "cli-admin")
    assert again.returncode == 1 and "exists" in again.stderr

    revoked = _cli(api, "token", "revoke", "cli-admin")
    assert revoked.returncode == 0, revoked.stderr
    assert_error(client.get("/people"), 401, "unauthorized")
    assert "revoked" in _cli(api, "token", "list").stdout

    assert _cli(api, "token", "revoke", "cli-admin").returncode == 1
    bad_role = _cli(api, "token", "create", "--role", "root", "--name", "x")
    assert bad_role.returncode == 2


def test_failed_authentications_are_rate_limited_per_address(tmp_path) -> None:
    settings = make_settings(tmp_path / "data")
    app = create_app(settings)  # the production limiter: 10 failures a minute
    server = ApiServer(app, settings, host="127.0.0.1", port=0).start()
    try:
        db = store.open_db(settings.db_path)
        from admin_api.auth import create_token

        good = create_token(db, "good", "admin")[1]
        viewer = create_token(db, "viewer", "viewer")[1]
        url = server.url + "/api/v1"
        for _ in range(10):
            assert_error(ApiClient(url, "fg_guess").get("/people"), 401)
        for _ in range(3):  # further guesses are refused, and keep the address throttled
            limited = ApiClient(url, "fg_guess").get("/people")
            assert_error(limited, 429, "too_many_failures")
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert_error(ApiClient(url).get("/people"), 429)  # no token either
        # the admins and the console on the same address are not locked out by the guesser
        assert ApiClient(url, good).get("/people").status_code == 200
        assert ApiClient(url, viewer).get("/events").status_code == 200
        assert_error(ApiClient(url, viewer).post("/people", json={"name": "x"}), 403)
        assert_error(ApiClient(url, "fg_guess").get("/people"), 429)
        assert ApiClient(url).get("/health").status_code == 200
        db.conn.close()
    finally:
        server.stop()
        app.extensions["facegate"].close()


def test_failure_limiter_window_slides() -> None:
    limiter = FailureLimiter(limit=2, window_s=10)
    limiter.record_failure("a", 0.0)
    limiter.record_failure("a", 4.0)
    assert limiter.retry_after("a", 5.0) == pytest.approx(5.0)
    assert limiter.retry_after("b", 5.0) == 0  # per address
    assert limiter.retry_after("a", 10.5) == 0  # the first failure left the window


def test_failure_limiter_keeps_only_the_last_failures_of_an_address() -> None:
    limiter = FailureLimiter(limit=3, window_s=10)
    for t in range(1000):
        limiter.record_failure("a", t / 1000)
    assert len(limiter._failures["a"]) == 3  # a guesser cannot grow it without bound
    assert limiter.retry_after("a", 1.0) == pytest.approx(10.0 - 0.003, abs=0.01)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("192.168.1.20", False),
        ("::", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_start_up_warns_when_reachable_from_the_network_without_tls(tmp_path) -> None:
    exposed = make_settings(tmp_path / "a", api_host="0.0.0.0")
    assert "TLS" in exposure_warning(exposed)
    assert (
        exposure_warning(make_settings(tmp_path / "b", api_host="0.0.0.0", api_behind_tls=True))
        is None
    )
    assert exposure_warning(make_settings(tmp_path / "c")) is None  # 127.0.0.1 by default

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    try:
        server = ApiServer(create_app(exposed), exposed, port=0)
        server.stop()
    finally:
        logger.remove(sink)
    assert any("0.0.0.0" in m and "TLS" in m for m in messages)


def test_last_use_is_recorded(api: Api) -> None:
    token = api.token("last-use", "viewer")
    assert api.client(token).head("/people").status_code == 200
    row = api.db.execute("SELECT last_used_at FROM api_tokens WHERE name = 'last-use'").fetchone()
    assert row[0] is not None


def test_json_bodies_over_the_limit_are_413(api: Api) -> None:
    limit = int(api.settings.api_max_upload_mb * 1024 * 1024)
    resp = api.admin.post(
        "/people", data=b"{" + b" " * limit + b"}", headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 413)


def test_behind_a_local_tls_proxy_the_limit_applies_to_the_forwarded_address(tmp_path) -> None:
    settings = make_settings(tmp_path / "data", api_behind_tls=True)
    app = create_app(settings)
    app.extensions["facegate"].limiter = FailureLimiter(limit=2, window_s=60)
    server = ApiServer(app, settings, host="127.0.0.1", port=0).start()
    try:
        url = server.url + "/api/v1"

        def attempt(client_address: str):
            return ApiClient(url, "fg_guess").get(
                "/people", headers={"X-Forwarded-For": client_address}
            )

        assert attempt("203.0.113.7").status_code == 401
        assert attempt("203.0.113.7").status_code == 401
        assert_error(attempt("203.0.113.7"), 429)
        assert attempt("198.51.100.9").status_code == 401  # someone else is not blocked
    finally:
        server.stop()
        app.extensions["facegate"].close()


def test_me_says_who_is_calling(api: Api) -> None:
    admin = api.admin.get("/me")
    viewer = api.viewer.get("/me")
    assert admin.status_code == 200 and admin.json()["role"] == "admin"
    assert viewer.status_code == 200 and viewer.json()["role"] == "viewer"
    assert admin.json()["name"] != viewer.json()["name"]
    assert_error(api.client().get("/me"), 401, "unauthorized")


def test_a_taken_port_is_a_clear_error(api: Api) -> None:
    import subprocess
    import sys
    from urllib.parse import urlparse

    from tests.conftest import REPO_ROOT

    port = urlparse(api.url).port
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO_ROOT),
        "FACEGATE_DATA_DIR": str(api.settings.data_dir),
        "FACEGATE_API_PORT": str(port),
    }
    r = subprocess.run(
        [sys.executable, "-m", "admin_api"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
