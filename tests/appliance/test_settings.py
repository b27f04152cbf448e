"""Settings: validated at start-up, errors name the setting, .env.example stays in step."""

from __future__ import annotations

import re

import pytest

from appliance.settings import Settings, SettingsError, load_settings
from tests.conftest import REPO_ROOT


def _example_entries() -> dict[str, str]:
    text = (REPO_ROOT / ".env.example").read_text()
    return dict(re.findall(r"^#? ?(FACEGATE_[A-Z0-9_]+)=(.*)$", text, flags=re.M))


def test_env_example_lists_every_setting_and_nothing_else():
    entries = _example_entries()
    expected = {f"FACEGATE_{n.upper()}" for n in Settings.model_fields}
    assert set(entries) == expected


def test_env_example_defaults_are_the_real_defaults():
    from scripts.gen_env_example import render

    assert (REPO_ROOT / ".env.example").read_text() == render(), (
        "run `python scripts/gen_env_example.py`"
    )


def test_every_setting_has_a_description():
    assert all(f.description for f in Settings.model_fields.values())


@pytest.mark.parametrize(
    "env, name",
    [
        ({"FACEGATE_DOOR_TIMEZONE": "Mars/Olympus"}, "FACEGATE_DOOR_TIMEZONE"),
        ({"FACEGATE_MATCH_THRESHOLD": "abc"}, "FACEGATE_MATCH_THRESHOLD"),
        ({"FACEGATE_UNLOCK_SECONDS": "-1"}, "FACEGATE_UNLOCK_SECONDS"),
        ({"FACEGATE_LOCK_TYPE": "open"}, "FACEGATE_LOCK_TYPE"),
        ({"FACEGATE_LIVENESS": "maybe"}, "FACEGATE_LIVENESS"),
    ],
)
def test_bad_value_names_the_setting(monkeypatch, env, name):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_votes_cannot_exceed_window(monkeypatch):
    monkeypatch.setenv("FACEGATE_VOTES_NEEDED", "5")
    monkeypatch.setenv("FACEGATE_VOTES_WINDOW", "3")
    with pytest.raises(SettingsError, match=r"VOTES_NEEDED \(5\) must not exceed FACEGATE_VOTES"):
        load_settings()


def test_dotenv_file_is_read_and_typos_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FACEGATE_DOOR_NAME=side-door\nFACEGATE_UNLOCK_SECONDS=5\n")
    s = load_settings()
    assert s.door_name == "side-door" and s.unlock_seconds == 5.0
    (tmp_path / ".env").write_text("FACEGATE_DOOR_NAEM=typo\n")
    with pytest.raises(SettingsError, match="FACEGATE_DOOR_NAEM: not a Facegate setting"):
        load_settings()


def test_sync_is_off_until_configured():
    assert load_settings().sync_configured is False
    s = load_settings(
        supabase_url="https://x.supabase.co",
        supabase_anon_key="k",
        device_email="door@example.com",
        device_password="p",
    )
    assert s.sync_configured


def test_a_typo_in_an_environment_variable_is_refused(monkeypatch):
    monkeypatch.setenv("FACEGATE_LOCK_TYP", "fail_safe")
    with pytest.raises(SettingsError, match="FACEGATE_LOCK_TYP: not a Facegate setting"):
        load_settings()


def test_admin_and_test_variables_are_not_typos(monkeypatch):
    monkeypatch.setenv("FACEGATE_SUPABASE_SERVICE_ROLE_KEY", "admin-only")
    monkeypatch.setenv("FACEGATE_TEST_SUPABASE_URL", "https://example.supabase.co")
    assert load_settings().door_name == "front-door"


def test_a_blank_optional_setting_means_unset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FACEGATE_LOG_FILE=\nFACEGATE_DOOR_CONTACT_PIN=\n")
    s = load_settings()
    assert s.log_file is None and s.door_contact_pin is None
