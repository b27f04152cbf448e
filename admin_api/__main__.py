"""``python -m admin_api``: serve the API; ``token create|list|revoke``: manage API tokens.

python -m admin_api                                  # serve on FACEGATE_API_HOST:PORT
python -m admin_api token create --role admin --name NAME   # prints the token once
python -m admin_api token list
python -m admin_api token revoke NAME_OR_ID
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from loguru import logger

from admin_api import auth
from appliance import store
from appliance.logs import configure_logging
from appliance.settings import SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m admin_api", description="Serve the Facegate admin API; manage its tokens."
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the API (the default)")
    token = sub.add_parser("token", help="manage API tokens").add_subparsers(
        dest="token_command", required=True
    )
    create = token.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", choices=auth.ROLES, required=True)
    create.add_argument("--name", required=True, help="who uses it; the audit log's actor")
    token.add_parser("list", help="list tokens (never the tokens themselves)")
    revoke = token.add_parser("revoke", help="revoke a token by id or name")
    revoke.add_argument("token", metavar="NAME_OR_ID")
    return parser


def _serve(settings) -> int:
    from admin_api.app import create_app
    from admin_api.server import ApiServer

    # waitress warns on every queued request under load: noise, not news, on a small kiosk
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        server = ApiServer(create_app(settings), settings)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(
            f"error: cannot listen on {settings.api_host}:{settings.api_port}: {exc.strerror}. "
            "Is the admin API already running? Choose another with FACEGATE_API_PORT.",
            file=sys.stderr,
        )
        return 2
    stopping = threading.Event()

    def _stop(signum, _frame) -> None:
        if not stopping.is_set():
            stopping.set()
            logger.info("signal {}: stopping the admin API", signum)
            threading.Thread(target=server.stop, name="api-stop").start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.serve_forever()
    return 0


def _token(settings, args: argparse.Namespace) -> int:
    db = store.open_db(settings.db_path)
    try:
        if args.token_command == "create":
            info, token = auth.create_token(db, args.name, args.role)
            print(f"created {info.role} token {info.name!r} (id {info.id}); it is shown only once:")
            print(token)
        elif args.token_command == "list":
            rows = auth.list_tokens(db)
            if not rows:
                print(
                    "no tokens; create one with: python -m admin_api token create "
                    "--role admin --name NAME"
                )
            else:
                width = max(len(str(r["id"])) for r in rows)
                print(f"{'id':<{width}}  {'role':<6}  {'name':<24}  {'state':<40}  last used")
            for r in rows:
                state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "live"
                print(
                    f"{r['id']:<{width}}  {r['role']:<6}  {r['name']:<24}  {state:<40}  "
                    f"{r['last_used_at'] or 'never'}"
                )
        else:
            info = auth.revoke_token(db, args.token)
            print(f"revoked {info.role} token {info.name!r} (id {info.id})")
    except auth.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.conn.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings)
    if args.command == "token":
        return _token(settings, args)
    return _serve(settings)


if __name__ == "__main__":
    sys.exit(main())
