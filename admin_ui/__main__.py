"""``python -m admin_ui``: serve the console with Streamlit on 127.0.0.1:FACEGATE_UI_PORT."""

from __future__ import annotations

import sys
from pathlib import Path

from admin_ui.settings import ConsoleSettingsError, load_console_settings

APP = Path(__file__).resolve().parent / "app.py"


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_console_settings()
    except ConsoleSettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from streamlit.web import cli as stcli

    sys.argv = [
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(settings.ui_port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        *(argv if argv is not None else sys.argv[1:]),
    ]
    return int(stcli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
