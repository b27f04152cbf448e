"""``python -m sync``: the sync process and its admin commands.

python -m sync [run]        the apscheduler loop (exits cleanly when sync is not configured)
python -m sync once         one full cycle; exit status 1 on failure
python -m sync status       cursors, backlog, quarantine, last success and last error
python -m sync provision --site SITE --door NAME
                            (admin) create a door's Auth user and device row, print its .env
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from loguru import logger

from appliance.logs import configure_logging
from appliance.settings import Settings, SettingsError, load_settings
from appliance.store import get_status, open_db, put_status

_SYNC_SETTINGS = ("supabase_url", "supabase_anon_key", "device_email", "device_password")


def not_configured(settings: Settings) -> str:
    """Say which of the door's sync settings are still missing."""
    missing = [f"FACEGATE_{n.upper()}" for n in _SYNC_SETTINGS if not getattr(settings, n)]
    return (
        f"sync not configured: set {', '.join(missing)} "
        "(`python -m sync provision` prints them for a door)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sync", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the sync loop (the default)")
    once = sub.add_parser("once", help="run one full cycle and exit (non-zero on failure)")
    once.add_argument("--attempts", type=int, default=5, help="tries per request (default 5)")
    status = sub.add_parser("status", help="print the sync status of this door")
    status.add_argument("--json", action="store_true", help="print it as JSON")
    prov = sub.add_parser(
        "provision",
        help="(admin) provision a door; needs "
        "FACEGATE_SUPABASE_SERVICE_ROLE_KEY in the environment",
    )
    prov.add_argument("--site", required=True, help="site name (created if new)")
    prov.add_argument("--door", required=True, help="the door's name")
    prov.add_argument("--email", help="the door's Auth e-mail (default: derived from the names)")
    prov.add_argument("--url", help="project URL (default: FACEGATE_SUPABASE_URL)")
    prov.add_argument("--anon-key", help="public anon key (default: FACEGATE_SUPABASE_ANON_KEY)")
    return parser


def _engine(settings: Settings, stop: threading.Event, attempts: int = 5):
    from sync.client import CentralClient
    from sync.engine import RetryPolicy, SyncEngine

    client = CentralClient(
        str(settings.supabase_url),
        settings.supabase_anon_key.get_secret_value(),
        str(settings.device_email),
        settings.device_password.get_secret_value(),
    )
    db = open_db(settings.db_path)
    return SyncEngine(settings, db, client, stop=stop, retry=RetryPolicy(attempts=attempts))


def cmd_run(settings: Settings) -> int:
    if not settings.sync_configured:
        print(not_configured(settings))
        put_status(open_db(settings.db_path), "sync", {"configured": False, "state": "off"})
        return 0
    from sync.service import run_service

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    engine = _engine(settings, stop)
    try:
        run_service(engine, settings, stop)
    finally:
        engine.client.close()
    return 0


def cmd_once(settings: Settings, attempts: int) -> int:
    if not settings.sync_configured:
        print(not_configured(settings))
        return 2
    stop = threading.Event()
    engine = _engine(settings, stop, attempts=max(1, attempts))
    try:
        report = engine.run_cycle()
    except Exception as exc:
        print(f"sync failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.client.close()
    print(json.dumps(report, default=str))
    return 0


def status_lines(settings: Settings) -> tuple[dict, list[str]]:
    from sync import local

    db = open_db(settings.db_path)
    saved = get_status(db, "sync") or {}
    live = {
        "configured": settings.sync_configured,
        "supabase_url": settings.supabase_url,
        "state": saved.get("state", "never run"),
        "pull_cursor": local.pull_cursor(db),
        "backlog": local.backlog(db),
        "quarantined": local.quarantined(db),
        "last_success": saved.get("last_success"),
        "last_error": saved.get("last_error"),
        "updated_at": saved.get("updated_at"),
        "recent_quarantine": local.recent_quarantine(db),
    }
    err = live["last_error"]
    lines = [
        f"sync:          {'configured' if live['configured'] else 'not configured'}"
        + (f" ({live['supabase_url']})" if live["supabase_url"] else ""),
        f"state:         {live['state']}",
        f"pull cursor:   {live['pull_cursor']}",
        f"backlog:       {live['backlog']} events not yet sent",
        "quarantined:   "
        + (", ".join(f"{n} {d}" for d, n in live["quarantined"].items()) or "none"),
        f"last success:  {live['last_success'] or 'never'}",
        "last error:    " + (f"{err['at']} {err['step']}: {err['message']}" if err else "none"),
    ]
    for q in live["recent_quarantine"]:
        lines.append(
            f"  quarantined  {q['ts']} {q['direction']} {q['kind']} {q['row_id']}: {q['error']}"
        )
    return live, lines


def cmd_status(settings: Settings, as_json: bool) -> int:
    live, lines = status_lines(settings)
    print(json.dumps(live, default=str, indent=2) if as_json else "\n".join(lines))
    return 0


def cmd_provision(settings: Settings, args: argparse.Namespace) -> int:
    from sync.provision import SERVICE_KEY_ENV, ProvisionError, provision_door

    service_key = os.environ.get(SERVICE_KEY_ENV)
    url = args.url or settings.supabase_url
    anon = args.anon_key or (
        settings.supabase_anon_key.get_secret_value() if settings.supabase_anon_key else None
    )
    missing = [
        name
        for name, value in (
            (SERVICE_KEY_ENV, service_key),
            ("--url or FACEGATE_SUPABASE_URL", url),
            ("--anon-key or FACEGATE_SUPABASE_ANON_KEY", anon),
        )
        if not value
    ]
    if missing:
        print("provision needs: " + ", ".join(missing), file=sys.stderr)
        return 2
    try:
        lines = provision_door(url, anon, service_key, args.site, args.door, email=args.email)
    except ProvisionError as exc:
        print(f"provision failed: {exc}", file=sys.stderr)
        return 1
    print(f"# .env for door {args.door!r} at site {args.site!r} (keep it secret)")
    for key, value in lines.items():
        print(f"{key}={value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings)
    command = args.command or "run"
    logger.configure(extra={"door": settings.door_name, "process": "sync"})
    if command == "run":
        return cmd_run(settings)
    if command == "once":
        return cmd_once(settings, args.attempts)
    if command == "status":
        return cmd_status(settings, args.json)
    return cmd_provision(settings, args)


if __name__ == "__main__":
    sys.exit(main())
