"""The door's session: expired tokens, refused refreshes and wrong credentials."""

from __future__ import annotations

import pytest

from appliance import store
from sync.client import AuthFailed
from tests.supabase_gateway import Fault

TOKEN = "/auth/v1/token"


def _expire_tokens_server_side(gateway) -> None:
    """Move the server's clock past every token issued so far (the door's clock disagrees)."""
    gateway.clock_offset += gateway.access_token_seconds + gateway.clock_skew_seconds + 5


def test_an_expired_token_is_refreshed_and_the_call_retried(gateway, gateway_central, make_door):
    door = make_door(gateway_central)
    door.engine.heartbeat()
    tokens, expired = gateway.calls[TOKEN], gateway.calls["status:401"]
    _expire_tokens_server_side(gateway)

    door.engine.heartbeat()

    assert gateway.calls["status:401"] == expired + 1  # PGRST303 once...
    assert gateway.calls[TOKEN] == tokens + 1  # ...one refresh, then the retry succeeded
    assert store.get_status(door.db, "sync")["state"] == "ok"


def test_a_token_about_to_expire_is_refreshed_before_the_call(gateway, gateway_central, make_door):
    gateway.access_token_seconds = 5  # inside supabase-py's 10 s refresh margin
    door = make_door(gateway_central)
    door.engine.heartbeat()
    tokens, expired = gateway.calls[TOKEN], gateway.calls["status:401"]
    door.engine.heartbeat()
    assert gateway.calls[TOKEN] == tokens + 1
    assert gateway.calls["status:401"] == expired


def test_a_lost_refresh_reply_ends_in_a_fresh_sign_in(gateway, gateway_central, make_door):
    door = make_door(gateway_central)
    door.engine.heartbeat()
    _expire_tokens_server_side(gateway)
    # the refresh is processed but its reply lost: the retried refresh token is "Already Used"
    gateway.inject(Fault("drop_after", path=TOKEN))
    tokens, refused = gateway.calls[TOKEN], gateway.calls["status:400"]

    door.engine.heartbeat()

    assert store.get_status(door.db, "sync")["state"] == "ok"
    assert gateway.calls["status:400"] == refused + 1  # the reused refresh token, refused
    assert gateway.calls[TOKEN] == tokens + 3  # lost refresh, refused reuse, password sign-in


def test_revoked_sessions_sign_in_again(gateway, gateway_central, make_door):
    door = make_door(gateway_central)
    door.engine.heartbeat()
    gateway.revoke_all_sessions()
    _expire_tokens_server_side(gateway)
    door.engine.heartbeat()
    assert store.get_status(door.db, "sync")["state"] == "ok"


def test_wrong_credentials_fail_clearly(gateway_central, make_door):
    door = make_door(gateway_central)
    door.client._password = "not the password"
    with pytest.raises(AuthFailed, match="refused"):
        door.engine.heartbeat()
    err = store.get_status(door.db, "sync")["last_error"]
    assert err["step"] == "heartbeat" and "AuthFailed" in err["message"]
