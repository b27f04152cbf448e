#!/usr/bin/env python3
"""Write .env.example from the settings object: every setting, its default and its meaning.

Run after adding a setting: `python scripts/gen_env_example.py`. tests/appliance/test_settings.py
fails when .env.example and appliance/settings.py disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.settings import Settings  # noqa: E402

HEADER = """\
# Facegate settings. Copy to .env and change what you need; every line shows the default.
# Environment variables with the same names override this file. Unset optional values stay
# commented out. Never commit a .env with real secrets.
"""


def render_default(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render() -> str:
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        key = f"FACEGATE_{name.upper()}"
        lines.append(f"# {field.description}")
        default = render_default(field.default)
        lines.append(f"# {key}=" if field.default is None else f"{key}={default}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / ".env.example"
    target.write_text(render())
    print(f"wrote {target}")
