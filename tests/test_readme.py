"""The README stays true: every command, setting and make target it promises exists, and back."""

from __future__ import annotations

import re

from appliance.cli import build_parser
from appliance.settings import Settings
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_every_cli_command_is_in_the_readme():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        assert f"python -m appliance {name}" in README, name


def test_every_setting_is_in_the_readme_and_no_stale_one():
    documented = set(re.findall(r"FACEGATE_[A-Z0-9_]+", README))
    settings = {f"FACEGATE_{n.upper()}" for n in Settings.model_fields}
    assert settings <= documented
    # not settings of the kiosk: the tests' fixture folder, the admin's service-role key (never on
    # a door), and the optional real-Supabase test project
    not_settings = {"FACEGATE_FIXTURES", "FACEGATE_SUPABASE_SERVICE_ROLE_KEY"}
    extra = {
        name
        for name in documented - settings - not_settings
        if not name.startswith("FACEGATE_TEST_")
    }
    assert not extra, f"README names settings that do not exist: {sorted(extra)}"


def test_the_two_commands_exist_and_ci_runs_the_test_one():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make run" in README and "make test" in README
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
