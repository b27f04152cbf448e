"""The console's unlock: one request that the API accepts at once, then the command followed."""

from __future__ import annotations

import pytest

from admin_ui.client import AdminApi, ApiRefused
from appliance import store
from tests.api.test_door import appliance_answering
from tests.ui.conftest import ConsoleApi


def test_unlock_follows_the_command_until_the_appliance_has_done_it(
    console_api: ConsoleApi,
) -> None:
    client = AdminApi(console_api.url, console_api.admin_token)
    with appliance_answering(console_api, "done", "unlocked") as seen:
        command = client.unlock(poll_s=0.05)
    assert command["status"] == "done" and command["result"] == "unlocked"
    assert [c["id"] for c in seen] == [command["command_id"]]


def test_a_failed_unlock_says_why(console_api: ConsoleApi) -> None:
    client = AdminApi(console_api.url, console_api.admin_token)
    with appliance_answering(console_api, "failed", "door controller in alarm"):
        with pytest.raises(ApiRefused) as exc:
            client.unlock(poll_s=0.05)
    assert exc.value.code == "unlock_failed" and "door controller in alarm" in exc.value.message


def test_an_unanswered_unlock_is_cancelled_and_never_runs_late(console_api: ConsoleApi) -> None:
    client = AdminApi(console_api.url, console_api.admin_token)
    with pytest.raises(ApiRefused) as exc:
        client.unlock(poll_s=0.1)
    assert exc.value.code == "appliance_not_answering" and "did not answer" in exc.value.message
    db = store.open_db(console_api.settings.db_path, migrate_schema=False)
    try:
        assert store.get_command(db, exc.value.extra["command_id"])["status"] == "expired"
    finally:
        db.conn.close()
