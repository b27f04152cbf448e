"""``make demo``: the whole product on this machine in one command, on a simulated door.

Enrols the fixture people (or one sub-folder per person from ``--people DIR``), creates an
admin token, then starts the admin API, the kiosk on the fixture clip (looping) and the console,
in that order, and prints the console's address and the token. Ctrl-C stops all three (SIGTERM
each, then waits); if one of them stops by itself, the others are stopped too.

Everything goes into its own data folder (``./demo-data`` unless ``--data DIR``), so a demo never
touches a real door's store; the relay is simulated (FACEGATE_PIN_FACTORY=mock).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python scripts/demo.py` puts only scripts/ on the path
    sys.path.insert(0, str(ROOT))
PY = sys.executable
STOP_WAIT_S = 15.0


def fixtures_root() -> Path:
    """``$FACEGATE_FIXTURES`` or ``../shared/fixtures`` beside the checkout (as the tests)."""
    override = os.environ.get("FACEGATE_FIXTURES")
    return Path(override) if override else (ROOT.parent / "shared" / "fixtures").resolve()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--people",
        type=Path,
        help="one sub-folder of photos per person (default: the fixture people)",
    )
    p.add_argument("--source", help="what the kiosk watches (default: the fixture clip, looping)")
    p.add_argument("--data", type=Path, default=ROOT / "demo-data", help="the demo's data folder")
    return p


def _env(data: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FACEGATE_DATA_DIR=str(data),
        FACEGATE_PIN_FACTORY="mock",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _wait_for(url: str, proc: subprocess.Popen, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the {what} stopped at start-up (exit {proc.returncode})")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"demo: the {what} did not answer at {url} within {timeout:.0f} s")


def _demo_token(settings) -> str:
    """A new admin token named demo-<time>; the earlier demos' tokens are revoked."""
    from admin_api import auth
    from appliance import store

    db = store.open_db(settings.db_path)
    try:
        for row in auth.list_tokens(db):
            if row["name"].startswith("demo-") and not row["revoked_at"]:
                auth.revoke_token(db, row["id"])
        return auth.create_token(db, f"demo-{int(time.time())}", "admin")[1]
    finally:
        db.conn.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    fixtures = fixtures_root()
    people = args.people or fixtures / "people"
    source = args.source or str(fixtures / "video" / "short_hamilton_clip.mp4")
    if not people.is_dir():
        print(
            f"demo: no photos at {people}: name a folder with --people DIR (one sub-folder "
            "per person) or set FACEGATE_FIXTURES",
            file=sys.stderr,
        )
        return 2
    env = _env(args.data.resolve())
    from appliance.settings import SettingsError, load_settings

    try:
        settings = load_settings(data_dir=args.data.resolve(), pin_factory="mock")
    except SettingsError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2

    _step(f"1/4 enrolling the people in {people} (data folder {args.data})")
    enrolled = subprocess.run(
        [PY, "-m", "appliance", "enroll-folder", str(people)], env=env, cwd=ROOT
    )
    if enrolled.returncode == 1:
        print("demo: nobody could be enrolled; see the table above", file=sys.stderr)
        return 1

    _step("2/4 creating an admin token for the console")
    token = _demo_token(settings)

    _step("3/4 starting the admin API, the kiosk and the console")
    procs: dict[str, subprocess.Popen] = {}
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def start(name: str, cmd: list[str]) -> subprocess.Popen:
        # a session of its own: Ctrl-C reaches the demo only, which stops each in turn
        procs[name] = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)
        return procs[name]

    try:
        api = start("admin API", [PY, "-m", "admin_api"])
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        _wait_for(f"{api_url}/api/v1/health", api, "admin API")
        start("kiosk", [PY, "-m", "appliance", "run", "--source", source])
        console = start("console", [PY, "-m", "admin_ui"])
        console_url = f"http://127.0.0.1:{settings.ui_port}"
        _wait_for(f"{console_url}/_stcore/health", console, "console")
        _step("4/4 ready")
        print(
            f"""
  Console:      {console_url}
  Admin token:  {token}
  Admin API:    {api_url}/api/v1/  (its OpenAPI document: {api_url}/api/v1/openapi.json)
  Kiosk:        watching {source} on a simulated door; data in {args.data}

Open the console, paste the token, and watch the Door page. Ctrl-C stops everything.
""",
            flush=True,
        )
        while not stop.wait(0.5):
            ended = [n for n, p in procs.items() if p.poll() is not None]
            if ended:
                print(
                    f"demo: the {ended[0]} stopped (exit {procs[ended[0]].returncode}); "
                    "stopping the rest",
                    file=sys.stderr,
                )
                return 1
        return 0
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        _stop_all(procs)


def _stop_all(procs: dict[str, subprocess.Popen]) -> None:
    """SIGTERM each (console first, API last), wait, then kill whatever is left."""
    for name in reversed(list(procs)):
        proc = procs[name]
        if proc.poll() is None:
            print(f"demo: stopping the {name}", flush=True)
            proc.terminate()
    deadline = time.monotonic() + STOP_WAIT_S
    for name, proc in procs.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"demo: the {name} did not stop in time: killed", file=sys.stderr)
            proc.kill()
            proc.wait()
    print("demo: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
