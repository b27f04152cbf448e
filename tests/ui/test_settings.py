"""The console's own settings, and that the console imports nothing of the door."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from admin_ui.settings import ConsoleSettingsError, load_console_settings
from tests.ui.conftest import clean_env

ROOT = Path(__file__).resolve().parents[2]
DOOR_PACKAGES = {"appliance", "admin_api", "notify", "sync", "hardware"}


def test_reads_its_few_settings_and_ignores_the_doors(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UI_PORT", "API_MAX_UPLOAD_MB"):
        monkeypatch.delenv(f"FACEGATE_{name}", raising=False)
    monkeypatch.setenv("FACEGATE_UI_API_URL", "http://door1.example:8080")
    monkeypatch.setenv("FACEGATE_DOOR_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("FACEGATE_MATCH_THRESHOLD", "0.5")  # the door's: not the console's business
    s = load_console_settings(_env_file=None)
    assert s.ui_api_url == "http://door1.example:8080" and s.tz.key == "Europe/Berlin"
    assert s.ui_port == 8501 and s.api_max_upload_mb == 10.0


def test_a_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_DOOR_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("FACEGATE_UI_PORT", "99999")
    with pytest.raises(ConsoleSettingsError) as exc:
        load_console_settings(_env_file=None)
    assert "FACEGATE_DOOR_TIMEZONE: unknown time zone 'Mars/Olympus'" in str(exc.value)
    assert "FACEGATE_UI_PORT" in str(exc.value)


def _console_modules() -> list[str]:
    # app.py and the pages are Streamlit scripts (they draw when imported): checked by source
    return [
        f"admin_ui.{p.stem}"
        for p in sorted((ROOT / "admin_ui").glob("*.py"))
        if p.stem not in ("app", "__init__")
    ]


def test_the_console_loads_nothing_of_the_door() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {_console_modules()!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(DOOR_PACKAGES)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=clean_env(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_no_console_source_imports_the_door() -> None:
    for path in sorted((ROOT / "admin_ui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            door = [n for n in names if n.split(".")[0] in DOOR_PACKAGES]
            assert not door, f"{path.relative_to(ROOT)}:{node.lineno} imports {door}"
