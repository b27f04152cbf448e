"""The console's Notifications page: admins only, honest when nothing is configured."""

from __future__ import annotations

import pytest

from tests.ui.conftest import ConsoleApi, sign_in
from tests.ui.test_console import texts

PAGE = "views/notifications.py"


def test_admin_sees_the_page_and_that_nothing_is_configured(ui_env: ConsoleApi) -> None:
    at = sign_in(ui_env.admin_token)
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    said = texts(at)
    assert "Nothing is configured" in said and "door forced" in said
    assert {m.label for m in at.metric} == {"Waiting in the outbox", "Failed (given up)"}
    assert "Send a test message" not in {b.label for b in at.button}  # no URL to test


def test_a_viewer_has_no_notifications_page(ui_env: ConsoleApi) -> None:
    at = sign_in(ui_env.viewer_token)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)  # not registered for a viewer token
