"""``python -m appliance doctor``: is this door fit to be left alone on a wall?

Two halves, kept apart so the judgement is testable without the hardware:

- ``gather_*`` functions read facts (camera, pins, store, clock, models, API, sync, units) into
  plain dicts; they never change anything the door depends on (the relay is toggled only on
  gpiozero mock pins, a running kiosk's camera is read from its status row, not reopened);
- ``check_*`` functions are pure: facts in, one :class:`Check` (OK / WARN / FAIL, what was found,
  what to do) out.

Exit status 1 when any check FAILs.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance.settings import Settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"
#: A status row older than this means its process is not running (it writes twice a second).
STATUS_FRESH_S = 10.0
WAL_WARN_MB = 64
MIN_FPS = 3.0
UNITS = (
    "facegate-appliance.service",
    "facegate-api.service",
    "facegate-sync.service",
    "facegate-ui.service",
)


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


# --- pure checks -----------------------------------------------------------------------------


def check_camera(f: dict[str, Any]) -> Check:
    where = "(read from the running kiosk)" if f.get("from_kiosk") else "(opened by doctor)"
    if not f.get("opened"):
        return Check(
            "camera",
            FAIL,
            f"{f.get('source')} does not open {where}: {f.get('error') or 'no frame'}",
            "check the cable and FACEGATE_CAMERA_SOURCE; `ls /dev/video*`; the service user "
            "needs the video group",
        )
    size = f"{f.get('width')}x{f.get('height')}" if f.get("width") else "size unknown"
    fps = f.get("fps")
    detail = f"{f.get('source')} {size}, {fps if fps is not None else '?'} fps {where}"
    if fps is not None and fps < MIN_FPS:
        return Check(
            "camera",
            WARN,
            detail,
            f"under {MIN_FPS:g} fps faces are missed: lower FACEGATE_DETECT_WIDTH or the "
            "camera's resolution",
        )
    return Check("camera", OK, detail)


def check_pins(f: dict[str, Any]) -> Check:
    detail = f"factory {f['factory']} ({f['why']})"
    if not f.get("relay_ok"):
        return Check(
            "pins",
            FAIL,
            f"{detail}; relay {f.get('relay_pin')} did not toggle in mock: {f.get('error')}",
            "fix FACEGATE_RELAY_PIN (a name such as GPIO17)",
        )
    detail += f"; relay {f['relay_pin']} toggles in mock and returns to safe"
    if f["factory"] == "mock" and f.get("on_pi"):
        return Check(
            "pins",
            WARN,
            detail,
            "this is a Pi but the door is simulated: set FACEGATE_PIN_FACTORY=auto",
        )
    if f["factory"] == "mock":
        return Check("pins", WARN, detail, "no GPIO here: the door is simulated, nothing unlocks")
    return Check("pins", OK, detail)


def check_store(f: dict[str, Any]) -> Check:
    if f.get("error"):
        return Check("store", FAIL, f["error"], "check FACEGATE_DATA_DIR and its owner")
    detail = (
        f"integrity {f['integrity']}, schema {f['schema']}/{f['schema_known']}, "
        f"{f['free_mb']:.0f} MB free, WAL {f['wal_mb']:.1f} MB"
    )
    if f["integrity"] != "ok":
        return Check(
            "store", FAIL, detail, "restore the last backup: python -m appliance restore FILE"
        )
    if f["schema"] > f["schema_known"]:
        return Check("store", FAIL, detail, "the store is newer than the software: upgrade")
    if f["free_mb"] < f["min_free_mb"]:
        return Check(
            "store",
            WARN,
            detail,
            f"under FACEGATE_MIN_FREE_MB ({f['min_free_mb']}): snapshots are paused; free space "
            "or lower FACEGATE_EVENTS_KEEP_DAYS / FACEGATE_SNAPSHOTS_KEEP_DAYS",
        )
    if f["wal_mb"] > WAL_WARN_MB:
        return Check(
            "store", WARN, detail, "a reader holds the WAL open: restart facegate-api/sync"
        )
    if f["schema"] < f["schema_known"]:
        return Check("store", WARN, detail, "migrations pending: they run when the kiosk starts")
    return Check("store", OK, detail)


def check_clock(f: dict[str, Any]) -> Check:
    if f.get("ntp") is None:
        return Check(
            "clock",
            WARN,
            f"cannot tell whether the clock is synchronised ({f.get('why')})",
            "make sure NTP runs: schedules and tokens depend on the time",
        )
    if not f["ntp"]:
        return Check(
            "clock",
            FAIL,
            "not NTP-synchronised",
            "sudo timedatectl set-ntp true; check the network reaches an NTP server",
        )
    return Check("clock", OK, "NTP-synchronised")


def check_models(f: dict[str, Any]) -> Check:
    missing = [name for name, ok in f["files"].items() if not ok]
    if f.get("error") or missing:
        return Check(
            "face models",
            FAIL,
            f.get("error") or f"missing: {', '.join(missing)}",
            "pip install -r requirements-nodeps.txt --no-deps (face_recognition_models)",
        )
    return Check("face models", OK, f"{len(f['files'])} model files present")


def check_liveness(mode: str) -> Check:
    if mode == "off":
        return Check(
            "liveness",
            WARN,
            "off: a printed photo of an enrolled person opens the door",
            "set FACEGATE_LIVENESS=motion (or strict)",
        )
    return Check("liveness", OK, mode)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api(f: dict[str, Any]) -> Check:
    where = f"{f['host']}:{f['port']}"
    if not f.get("reachable"):
        return Check(
            "api",
            WARN if not f.get("systemd") else FAIL,
            f"{where} does not answer /api/v1/health ({f.get('error')})",
            "sudo systemctl start facegate-api (or `make api`)",
        )
    if _loopback(f["host"]):
        return Check("api", OK, f"{where} answers, loopback only")
    if f.get("behind_tls"):
        return Check("api", OK, f"{where} answers, behind a TLS proxy")
    return Check(
        "api",
        WARN,
        f"{where} answers on a non-loopback address without TLS: tokens cross the network in clear",
        "bind FACEGATE_API_HOST=127.0.0.1, or put a TLS proxy in front and set "
        "FACEGATE_API_BEHIND_TLS=true",
    )


def check_sync(f: dict[str, Any], now: datetime) -> Check:
    if not f.get("configured"):
        return Check("sync", OK, "not configured (this door works alone)")
    parts = [f"backlog {f.get('backlog', '?')}"]
    last = f.get("last_success")
    if last:
        age_h = (now - datetime.fromisoformat(last)).total_seconds() / 3600
        parts.append(f"last success {age_h:.1f} h ago")
    else:
        parts.append("never succeeded")
    detail = ", ".join(parts)
    if not f.get("reachable"):
        return Check(
            "sync",
            FAIL,
            f"{f.get('url')} unreachable ({f.get('error')}); {detail}",
            "check the network and FACEGATE_SUPABASE_URL; events wait in the backlog",
        )
    if not last or (now - datetime.fromisoformat(last)).total_seconds() > 3600:
        return Check(
            "sync", WARN, detail, "see `python -m sync status` and journalctl -u facegate-sync"
        )
    return Check("sync", OK, detail)


def check_units(f: dict[str, Any]) -> Check:
    if not f.get("systemd"):
        return Check("units", OK, "systemd not running here: units not checked")
    bad = {u: s for u, s in f["states"].items() if s not in ("active", "inactive")}
    off = [u for u, s in f["states"].items() if s == "inactive"]
    detail = ", ".join(
        f"{u.removeprefix('facegate-').removesuffix('.service')}={s}"
        for u, s in f["states"].items()
    )
    if bad:
        return Check(
            "units", FAIL, detail, f"journalctl -u {next(iter(bad))} -n 50; systemctl restart it"
        )
    if off:
        return Check("units", WARN, detail, "sudo systemctl start facegate.target")
    return Check("units", OK, detail)


def worst(checks: list[Check]) -> str:
    statuses = {c.status for c in checks}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else OK


# --- gathering facts -------------------------------------------------------------------------


def _fresh_status(db, component: str, now: datetime) -> dict[str, Any] | None:
    from appliance import store

    row = store.get_status(db, component)
    if not row:
        return None
    age = (now - store.parse_iso(row["updated_at"])).total_seconds()
    return row if age <= STATUS_FRESH_S and row.get("running", True) else None


def _silent_kiosk(settings: Settings) -> dict[str, Any] | None:
    """A kiosk holds the data folder's lock but wrote no fresh status (starting, or hung): its
    camera is busy, so it is reported from here rather than reopened."""
    from appliance import instance_lock

    try:
        instance_lock.check_free(settings.data_dir)
    except instance_lock.DataFolderBusy as busy:
        return {
            "camera_source": settings.camera_source,
            "camera_ok": False,
            "camera_error": f"the kiosk (pid {busy.pid or 'unknown'}) is running but has "
            f"published no status for {STATUS_FRESH_S:g} s (starting, or hung)",
        }
    return None


def gather_camera(settings: Settings, kiosk_status: dict | None, seconds: float = 2.0) -> dict:
    if kiosk_status is not None:
        return {
            "from_kiosk": True,
            "source": kiosk_status.get("camera_source"),
            "opened": bool(kiosk_status.get("camera_ok")),
            "error": kiosk_status.get("camera_error"),
            "fps": kiosk_status.get("fps"),
        }
    import cv2

    from appliance.camera import parse_source

    spec = parse_source(settings.camera_source)
    cap = cv2.VideoCapture(spec.target if isinstance(spec.target, int) else str(spec.target))
    from appliance.redact import redact

    # the report is pasted into support tickets: never the camera's password
    facts: dict[str, Any] = {"source": redact(str(spec.target)), "opened": False}
    try:
        if not cap.isOpened():
            facts["error"] = "cannot open"
            return facts
        frames, shape, start = 0, None, time.monotonic()
        while time.monotonic() - start < seconds:
            ok, frame = cap.read()
            if not ok:
                break
            frames += 1
            shape = frame.shape
        elapsed = time.monotonic() - start
        facts["opened"] = frames > 0
        if shape is not None:
            facts["height"], facts["width"] = shape[0], shape[1]
        # a file is read as fast as it decodes: that is the decoder's rate, still a useful figure
        facts["fps"] = round(frames / elapsed, 1) if frames and elapsed > 0 else None
    finally:
        cap.release()
    return facts


def gather_pins(settings: Settings) -> dict:
    from gpiozero import DigitalOutputDevice
    from gpiozero.pins.mock import MockFactory, MockPin

    from hardware.pins import running_on_raspberry_pi

    on_pi = running_on_raspberry_pi()
    choice = settings.pin_factory.strip().lower()
    if choice == "auto":
        factory = "real (lgpio first)" if on_pi else "mock"
        why = "auto: this is a Raspberry Pi" if on_pi else "auto: this machine is not a Pi"
    else:
        factory, why = choice, f"FACEGATE_PIN_FACTORY={choice}"
    facts = {"factory": factory, "why": why, "on_pi": on_pi, "relay_pin": settings.relay_pin}
    mock = MockFactory(pin_class=MockPin)
    try:
        relay = DigitalOutputDevice(
            settings.relay_pin, active_high=settings.relay_active_high, pin_factory=mock
        )
        relay.on()
        energised = relay.value == 1
        relay.off()
        facts["relay_ok"] = energised and relay.value == 0
        relay.close()
    except Exception as exc:  # a bad pin name: reported as the check's finding
        facts["relay_ok"], facts["error"] = False, str(exc)
    finally:
        mock.close()
    return facts


def gather_store(settings: Settings) -> dict:
    from appliance.migrations import MIGRATIONS
    from appliance.retention import disk_free_mb

    path = settings.db_path
    facts: dict[str, Any] = {"schema_known": len(MIGRATIONS), "min_free_mb": settings.min_free_mb}
    if not path.exists():
        return {**facts, "error": f"no store at {path} (the kiosk creates it on first start)"}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            facts["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            facts["schema"] = int(row[0]) if row else 0
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return {**facts, "error": f"{path}: {exc}"}
    wal = Path(f"{path}-wal")
    facts["wal_mb"] = wal.stat().st_size / 1e6 if wal.exists() else 0.0
    facts["free_mb"] = disk_free_mb(path.parent)
    return facts


def gather_clock() -> dict:
    if not shutil.which("timedatectl"):
        return {"ntp": None, "why": "no timedatectl"}
    try:
        r = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ntp": None, "why": str(exc)}
    if r.returncode != 0:
        why = (r.stderr.strip() or "timedatectl failed").splitlines()[0]
        return {"ntp": None, "why": why}
    return {"ntp": r.stdout.strip() == "yes"}


def gather_models() -> dict:
    try:
        import face_recognition_models as m
    except ImportError as exc:
        return {"files": {}, "error": f"face_recognition_models not installed: {exc}"}
    files = {
        "face landmarks (68)": m.pose_predictor_model_location(),
        "face landmarks (5)": m.pose_predictor_five_point_model_location(),
        "face encoder": m.face_recognition_model_location(),
    }
    return {
        "files": {k: Path(v).is_file() and Path(v).stat().st_size > 0 for k, v in files.items()}
    }


def _http_get(url: str, timeout: float = 3.0) -> tuple[bool, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (our own URLs)
            return resp.status < 500, None
    except urllib.error.HTTPError as exc:
        return exc.code < 500, None  # it answered
    except (urllib.error.URLError, OSError) as exc:
        return False, str(getattr(exc, "reason", exc))


def gather_api(settings: Settings) -> dict:
    host = settings.api_host
    connect = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in connect:
        connect = f"[{connect}]"
    ok, err = _http_get(f"http://{connect}:{settings.api_port}/api/v1/health")
    return {
        "host": host,
        "port": settings.api_port,
        "reachable": ok,
        "error": err,
        "behind_tls": settings.api_behind_tls,
        "systemd": Path("/run/systemd/system").is_dir(),
    }


def gather_sync(settings: Settings, db) -> dict:
    if not settings.sync_configured:
        return {"configured": False}
    from appliance import store

    status = store.get_status(db, "sync") or {}
    backlog = db.execute(
        "SELECT count(*) FROM events WHERE synced = 0 AND sync_error IS NULL"
    ).fetchone()[0]
    url = str(settings.supabase_url).rstrip("/")
    ok, err = _http_get(f"{url}/auth/v1/health")
    return {
        "configured": True,
        "url": url,
        "reachable": ok,
        "error": err,
        "backlog": backlog,
        "last_success": status.get("last_success"),
    }


def gather_units() -> dict:
    if not Path("/run/systemd/system").is_dir():
        return {"systemd": False}
    states = {}
    for unit in UNITS:
        r = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True)
        states[unit] = r.stdout.strip() or "unknown"
    return {"systemd": True, "states": states}


def run_checks(settings: Settings, camera_seconds: float = 2.0) -> list[Check]:
    """Gather every fact and judge it; the order is the order of the printed table."""
    from appliance import store

    now = store.utc_now()
    checks: list[Check] = []
    db = None
    kiosk = None
    if settings.db_path.exists():
        try:
            db = store.open_db(settings.db_path, migrate_schema=False)
            kiosk = _fresh_status(db, "appliance", now)
        except sqlite3.Error:
            db = None
    kiosk = kiosk or _silent_kiosk(settings)
    checks.append(check_camera(gather_camera(settings, kiosk, camera_seconds)))
    checks.append(check_pins(gather_pins(settings)))
    checks.append(check_store(gather_store(settings)))
    checks.append(check_clock(gather_clock()))
    checks.append(check_models(gather_models()))
    checks.append(check_liveness(settings.liveness))
    checks.append(check_api(gather_api(settings)))
    if db is not None:
        checks.append(check_sync(gather_sync(settings, db), now))
        db.conn.close()
    else:
        checks.append(check_sync({"configured": settings.sync_configured}, now))
    checks.append(check_units(gather_units()))
    return checks


def render(checks: list[Check]) -> str:
    name_w = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:4}  {c.name:{name_w}}  {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"{'':4}  {'':{name_w}}  -> {c.fix}")
    lines.append(f"overall: {worst(checks)}")
    return "\n".join(lines)


def as_json(checks: list[Check]) -> str:
    return json.dumps({"overall": worst(checks), "checks": [asdict(c) for c in checks]}, indent=2)


def main(settings: Settings, *, json_out: bool = False, camera_seconds: float = 2.0) -> int:
    checks = run_checks(settings, camera_seconds)
    print(as_json(checks) if json_out else render(checks))
    return 1 if worst(checks) == FAIL else 0
