"""Notifications through the API (admin only): masked configuration, a real test send over SMTP,
and the outbox's recent sends."""

from __future__ import annotations

import pytest

from admin_api.app import create_app
from admin_api.auth import create_token
from admin_api.server import ApiServer
from appliance import store
from tests.api.conftest import ApiClient, make_settings
from tests.api.test_auth import assert_error
from tests.notify.servers import SmtpServer


@pytest.fixture
def notify_api(tmp_path):
    with SmtpServer() as smtp:
        settings = make_settings(
            tmp_path / "data",
            notify_urls=f"{smtp.url()} tgram://123456789:SECRETtokenSECRET/-100123",
            webhook_url="https://hooks.example.com/in?key=SECRETkey",
            webhook_secret="s3cret",
        )
        app = create_app(settings)
        server = ApiServer(app, settings, host="127.0.0.1", port=0).start()
        db = store.open_db(settings.db_path)
        admin = ApiClient(server.url + "/api/v1", create_token(db, "a", "admin")[1])
        viewer = ApiClient(server.url + "/api/v1", create_token(db, "v", "viewer")[1])
        try:
            yield admin, viewer, smtp, db
        finally:
            server.stop()
            app.extensions["facegate"].close()
            db.conn.close()


def test_config_is_masked_and_admin_only(notify_api):
    admin, viewer, _, _ = notify_api
    assert_error(viewer.get("/notifications"), 403, "forbidden")
    resp = admin.get("/notifications")
    assert resp.status_code == 200
    assert "SECRET" not in resp.text and "s3cret" not in resp.text
    body = resp.json()
    assert body["notify_urls"] == ["mailto://***", "tgram://***"]
    assert body["webhook_url"] == "https://***" and "door_forced" in body["notify_on"]


def test_test_send_reaches_smtp_and_reports_each_url(notify_api):
    admin, viewer, smtp, db = notify_api
    assert_error(viewer.post("/notifications/test"), 403, "forbidden")
    results = admin.post("/notifications/test").json()["results"]
    assert [(r["url"], r["ok"]) for r in results] == [
        ("mailto://***", True),
        ("tgram://***", False),
    ]
    assert "SECRET" not in str(results)
    assert smtp.messages[0]["Subject"] == "[Facegate] Test message - front-door"
    assert store.list_audit(db, actor="a")[0]["action"] == "notifications.test"


def test_recent_lists_sends(notify_api):
    admin, viewer, _, db = notify_api
    assert_error(viewer.get("/notifications/recent"), 403, "forbidden")
    assert admin.get("/notifications/recent").json()["items"] == []
