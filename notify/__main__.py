"""``python -m notify``: the outbox sender (notifications, webhook, MQTT).

python -m notify [run]     send until stopped (SIGTERM); exits 0 when nothing is configured
python -m notify status    channels (URLs masked), outbox counts, recent sends and failures
python -m notify test      send a test message to every notification URL, print each answer
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from loguru import logger

from appliance.logs import configure_logging
from appliance.settings import SettingsError, load_settings
from appliance.store import open_db, utc_now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notify", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the sender (the default)")
    st = sub.add_parser("status", help="configuration (masked) and the outbox")
    st.add_argument("--json", action="store_true")
    sub.add_parser("test", help="send a test message to every notification URL")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings)
    logger.configure(extra={"door": settings.door_name, "process": "notify"})
    from notify import admin

    if args.command == "status":
        info = admin.status(settings, open_db(settings.db_path))
        print(json.dumps(info, indent=2, default=str) if args.json else admin.status_text(info))
        return 0
    if args.command == "test":
        return admin.print_test(settings)
    from notify.service import ConfigError, Sender, build_channels

    try:
        channels = build_channels(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    db = open_db(settings.db_path)
    sender = Sender(settings, db, channels)
    if not channels:
        sender.start(utc_now())
        print(
            "notify: nothing configured (FACEGATE_NOTIFY_URLS, FACEGATE_WEBHOOK_URL, "
            "FACEGATE_MQTT_URL); exiting"
        )
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        sender.run(stop)
    finally:
        sender.close()
        db.conn.close()
        logger.info("notify stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
