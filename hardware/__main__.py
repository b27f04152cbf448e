"""``python -m hardware safe``: put the door's relay (and buzzer, LED) in the safe state, exit.

See :mod:`hardware.safe`. Run by systemd before the appliance starts and after it stops.
"""

from __future__ import annotations

import argparse
import os
import sys

from hardware.safe import main as safe_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hardware",
        description="Door hardware commands (the settings are the appliance's FACEGATE_*).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "safe",
        help="drive the lock relay de-energised and the buzzer and LED off, then exit "
        "(fail_secure: locked; fail_safe: released)",
    )
    parser.parse_args(argv)
    return safe_main()


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip gpiozero's exit clean-up: it would release the relay line as an unpulled (floating)
    # input; leaving the process this way keeps the line driven at the safe level.
    os._exit(status)
