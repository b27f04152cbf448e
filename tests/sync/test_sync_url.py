"""The door's password and tokens (and an admin's service-role key) never travel in clear:
the Supabase URL must be https, except to a loopback host, where the test gateway runs."""

from __future__ import annotations

import pytest

from appliance.settings import SettingsError, load_settings
from sync.provision import ProvisionError, provision_door


@pytest.mark.parametrize(
    "url",
    [
        "http://example.supabase.co",
        "http://10.0.0.5:54321",
        "http://127.0.0.1.nip.io:8000",
        "ftp://example.supabase.co",
        "example.supabase.co",
        "https://",
    ],
)
def test_a_supabase_url_that_is_not_https_stops_start_up(tmp_path, url):
    with pytest.raises(SettingsError) as bad:
        load_settings(data_dir=tmp_path, supabase_url=url)
    assert "FACEGATE_SUPABASE_URL" in str(bad.value) and "https://" in str(bad.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://abc.supabase.co",
        "http://127.0.0.1:54321",
        "http://localhost:8000",
        "http://[::1]:8000",
    ],
)
def test_https_or_a_loopback_gateway_is_accepted(tmp_path, url):
    assert load_settings(data_dir=tmp_path, supabase_url=url).supabase_url == url


def test_provisioning_refuses_to_send_the_service_key_in_clear():
    with pytest.raises(ProvisionError, match="https://"):
        provision_door("http://example.supabase.co", "anon", "service", "site", "door")
