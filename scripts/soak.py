#!/usr/bin/env python3
"""Soak: door, API and sync for a set time, killed and restarted at random, the gateway cut.

    python scripts/soak.py --minutes 30            # not part of `make test`

Starts a throwaway PostgreSQL cluster with the central migrations applied unchanged and the
JWT-checking Supabase stand-in gateway (tests/supabase_gateway.py, in a child process), provisions
a door with ``python -m sync provision`` as a user would, enrols the fixture people and runs three
processes on that door: the appliance on the looped fixture clip (mock pins), the admin API
(waitress, kept under load by three reader threads) and ``python -m sync``. Every 20-60 s it
sends SIGTERM or SIGKILL to one of them and starts it again; every 40-100 s it cuts the gateway
(connections refused) for 10-40 s; every 30-70 s an admin adds, renames or deletes a person
centrally. At the end it stops the door and the API, lets sync drain, and checks:

- every local event id exactly once in the central ``access_events`` (none lost, none doubled);
- the people on the door are the site's central people (pulled down, renames and deletions
  applied; the enrolled ones pushed up);
- the relay never energised outside a grant (the door status sampled every 0.5 s: an energised
  relay needs an ``access_granted`` event within the unlock pulse before it; no pulse other than
  a grant in the log) and de-energised after every SIGTERM of the appliance;
- every appliance restart back to deciding (fresh status with frames processed), in seconds;
- RSS of each process over time, "database is locked" lines in any log (must be 0).

It prints the figures and writes them to scripts/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from appliance import policy, store  # noqa: E402

FIXTURES = Path(os.environ.get("FACEGATE_FIXTURES", REPO.parent / "shared" / "fixtures"))
CLIP = FIXTURES / "video" / "short_hamilton_clip.mp4"
SITE, DOOR = "soak-site", "soak-door"
UNLOCK_SECONDS = 3.0


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict, logdir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = logdir / f"{name}.log"
        self.p: subprocess.Popen | None = None

    def start(self) -> None:
        fh = open(self.log, "a")  # noqa: SIM115 (the child keeps it)
        self.p = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=fh, stderr=fh)

    def kill(self, sig: int) -> int:
        assert self.p is not None
        self.p.send_signal(sig)
        return self.p.wait(60)


def central_process(conn) -> None:
    """Child: PostgreSQL + migrations + gateway; obeys "cut", "restore" and "stop"."""
    from tests.supabase_gateway import PostgresMissing, central_stack

    try:
        with central_stack() as (gw, info):
            conn.send(info)
            while True:
                try:
                    cmd = conn.recv()
                except EOFError:
                    break
                if cmd == "cut":
                    gw.stop()  # listening socket closed, open connections cut: refused
                elif cmd == "restore":
                    gw.start()
                else:
                    break
                conn.send(cmd)
    except PostgresMissing as exc:  # raised before anything started
        conn.send({"error": str(exc)})


class CentralPeople:
    """An admin changing people centrally during the soak; remembers what the door should hold."""

    def __init__(self, central, model: str, rng: random.Random) -> None:
        self.central, self.model, self.rng = central, model, rng
        self.np_rng = np.random.default_rng(rng.randrange(2**32))
        self.added: dict[str, str] = {}  # id -> current name
        self.deleted: list[str] = []
        self.changes: list[dict] = []
        self.last_change_wall = store.utc_now()

    def change(self) -> None:
        action = "add"
        if self.added and self.rng.random() < 0.5:
            action = self.rng.choice(["rename", "delete"])
        if action == "add":
            # a face far from everyone in the clip: the door's decisions stay the same
            emb = self.np_rng.normal(0, 0.09, 128).astype(np.float32)
            name = f"soak person {len(self.added) + len(self.deleted) + 1}"
            pid = self.central.add_person(SITE, name, [emb], self.model)
            self.added[pid] = name
        elif action == "rename":
            pid = self.rng.choice(sorted(self.added))
            self.added[pid] = f"{self.added[pid]} (renamed)"
            self.central.update_person(pid, name=self.added[pid])
        else:
            pid = self.rng.choice(sorted(self.added))
            self.central.delete_person(pid)
            del self.added[pid]
            self.deleted.append(pid)
        self.last_change_wall = store.utc_now()
        self.changes.append({"action": action, "person": pid})


def provision(py: str, env: dict, info: dict) -> dict[str, str]:
    """``python -m sync provision``, as the README tells an admin; returns the door's .env."""
    out = subprocess.run(
        [
            py,
            "-m",
            "sync",
            "provision",
            "--site",
            SITE,
            "--door",
            DOOR,
            "--url",
            info["url"],
            "--anon-key",
            info["anon"],
        ],
        cwd=REPO,
        env={**env, "FACEGATE_SUPABASE_SERVICE_ROLE_KEY": info["service"]},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def relay_outside_grant(samples: list[dict], grants: list[str]) -> list[dict]:
    """Status samples with the relay energised and no grant in the unlock pulse before them."""
    times = sorted(store.parse_iso(g) for g in grants)
    bad = []
    for s in samples:
        if not s["energised"]:
            continue
        at = store.parse_iso(s["at"])
        lo, hi = at - timedelta(seconds=UNLOCK_SECONDS + 1.5), at + timedelta(seconds=1)
        if not any(lo <= t <= hi for t in times):
            bad.append(s)
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="facegate-soak-"))
    data = work / "data"
    port = 18000 + rng.randrange(1000)
    py = sys.executable

    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    central_proc = ctx.Process(target=central_process, args=(child_conn,), daemon=True)
    central_proc.start()
    info = parent_conn.recv()
    if "error" in info:
        print(info["error"], file=sys.stderr)
        return 2

    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(
        PYTHONPATH=str(REPO),
        FACEGATE_DATA_DIR=str(data),
        FACEGATE_PIN_FACTORY="mock",
        FACEGATE_LIVENESS="off",
        FACEGATE_API_PORT=str(port),
        FACEGATE_DOOR_NAME=DOOR,
        FACEGATE_UNLOCK_SECONDS=str(UNLOCK_SECONDS),
    )
    env.update(provision(py, env, info))
    env.update(
        FACEGATE_SYNC_PUSH_SECONDS="2",
        FACEGATE_SYNC_PULL_SECONDS="5",
        FACEGATE_SYNC_HEARTBEAT_SECONDS="10",
        FACEGATE_SYNC_BATCH_SIZE="50",
    )
    subprocess.run(
        [py, "-m", "appliance", "enroll-folder", str(FIXTURES / "people")],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [py, "-m", "admin_api", "token", "create", "--role", "viewer", "--name", "soak"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    token = out.strip().splitlines()[-1]

    from tests.sync.central import GatewayCentral

    central = GatewayCentral(
        SimpleNamespace(url=info["url"], anon_key=info["anon"], service_role_key=info["service"]),
        info["dsn"],
    )
    db = store.open_db(data / "facegate.db")
    model = db.execute("SELECT model FROM faces LIMIT 1").fetchone()[0]
    people = CentralPeople(central, model, rng)

    procs = {
        "appliance": Proc(
            "appliance", [py, "-m", "appliance", "run", "--source", str(CLIP)], env, work
        ),
        "api": Proc("api", [py, "-m", "admin_api"], env, work),
        "sync": Proc("sync", [py, "-m", "sync"], env, work),
    }
    for p in procs.values():
        p.start()
    stop = threading.Event()
    api_calls, api_errors = [0], [0]

    def load() -> None:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        while not stop.wait(0.05):
            for path in ("/api/v1/events?limit=50", "/api/v1/door/status", "/api/v1/people"):
                try:
                    r = s.get(f"http://127.0.0.1:{port}{path}", timeout=5)
                    api_calls[0] += 1
                    api_errors[0] += r.status_code >= 500
                except requests.RequestException:
                    api_errors[0] += 1  # includes the seconds the API is down on purpose

    threads = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()

    def deciding_since(t0_iso: str) -> bool:
        st = store.get_status(db, "appliance") or {}
        return st.get("updated_at", "") > t0_iso and st.get("running") and st.get("fps", 0) > 0

    def sync_since(t0_iso: str) -> bool:
        return (store.get_status(db, "sync") or {}).get("updated_at", "") > t0_iso

    def gateway(cmd: str) -> None:
        parent_conn.send(cmd)
        parent_conn.recv()

    relay_samples: list[dict] = []
    last_status_at = ""

    def sample_relay() -> None:
        nonlocal last_status_at
        st = store.get_status(db, "appliance") or {}
        if st.get("updated_at", "") > last_status_at and "relay_energised" in st:
            last_status_at = st["updated_at"]
            relay_samples.append({"at": st["updated_at"], "energised": bool(st["relay_energised"])})

    rss: list[dict] = []
    restarts: list[dict] = []
    cuts: list[dict] = []
    counts: list[int] = []
    t_start = time.monotonic()
    end = t_start + args.minutes * 60
    next_kill = t_start + rng.uniform(20, 60)
    next_cut = t_start + rng.uniform(40, 100)
    next_people = t_start + rng.uniform(15, 40)
    next_sample = t_start
    cut_until: float | None = None
    while time.monotonic() < end:
        now = time.monotonic()
        sample_relay()
        if now >= next_sample:
            rss.append(
                {
                    "t_s": round(now - t_start),
                    **{n: rss_mb(p.p.pid) for n, p in procs.items() if p.p},
                    "gateway": rss_mb(central_proc.pid),
                }
            )
            counts.append(db.execute("SELECT count(*) FROM events").fetchone()[0])
            next_sample = now + 10
        if cut_until is None and now >= next_cut:
            cut_until = now + rng.uniform(10, 40)
            gateway("cut")
            cuts.append({"at_s": round(now - t_start), "seconds": round(cut_until - now, 1)})
            print(f"gateway   cut for {cuts[-1]['seconds']} s")
        elif cut_until is not None and now >= cut_until:
            gateway("restore")
            cut_until = None
            next_cut = time.monotonic() + rng.uniform(40, 100)
            print("gateway   back")
        if now >= next_people and cut_until is None:  # the admin works through the gateway's DB
            people.change()
            next_people = now + rng.uniform(30, 70)
        if now >= next_kill:
            name = rng.choice(list(procs))
            sig = rng.choice([signal.SIGTERM, signal.SIGKILL])
            before = db.execute("SELECT count(*) FROM events").fetchone()[0]
            rc = procs[name].kill(sig)
            sample_relay()
            t0_iso = store.to_iso(store.utc_now())
            t0 = time.monotonic()
            procs[name].start()
            back = None
            while time.monotonic() - t0 < 90:
                if name == "appliance" and deciding_since(t0_iso):
                    back = time.monotonic() - t0
                    break
                if name == "sync" and sync_since(t0_iso):
                    back = time.monotonic() - t0
                    break
                if name == "api":
                    try:
                        requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                        back = time.monotonic() - t0
                        break
                    except requests.RequestException:
                        pass
                time.sleep(0.1)
            after = db.execute("SELECT count(*) FROM events").fetchone()[0]
            restarts.append(
                {
                    "process": name,
                    "signal": sig.name,
                    "exit": rc,
                    "back_s": None if back is None else round(back, 1),
                    "gateway_cut": cut_until is not None,
                    "events_before": before,
                    "events_after": after,
                }
            )
            print(f"{name:9} {sig.name:7} exit {rc:4}  back in {restarts[-1]['back_s']} s")
            next_kill = time.monotonic() + rng.uniform(20, 60)
        time.sleep(0.5)
    if cut_until is not None:
        gateway("restore")
    stop.set()
    for name in ("appliance", "api"):
        procs[name].kill(signal.SIGTERM)

    # Let sync drain the outbox and pull the last central change, then stop it.
    drain_t0 = time.monotonic()
    last_change = store.to_iso(people.last_change_wall)
    drained = False
    while time.monotonic() - drain_t0 < 180:
        st = store.get_status(db, "sync") or {}
        backlog = db.execute(
            "SELECT count(*) FROM events WHERE synced = 0 AND sync_error IS NULL"
        ).fetchone()[0]
        pulled = (st.get("last_pull") or {}).get("at", "") > last_change
        if backlog == 0 and pulled:
            drained = True
            break
        time.sleep(1)
    drain_s = round(time.monotonic() - drain_t0, 1)
    procs["sync"].kill(signal.SIGTERM)

    # --- checks -------------------------------------------------------------------------------
    logs = {n: p.log.read_text(errors="replace") for n, p in procs.items()}
    device_id = central.device_id(env["FACEGATE_DEVICE_EMAIL"])
    local_ids = [r[0] for r in db.execute("SELECT id FROM events WHERE sync_error IS NULL")]
    quarantined = db.execute("SELECT count(*) FROM events WHERE sync_error IS NOT NULL").fetchone()[
        0
    ]
    rows = central.sql(
        "select id::text as id, count(*) as n from access_events where device_id = %s group by id",
        [device_id],
    )
    central_ids = {r["id"]: r["n"] for r in rows}
    lost = sorted(set(local_ids) - set(central_ids))
    extra = sorted(set(central_ids) - set(local_ids))
    central_dupes = sum(n - 1 for n in central_ids.values())
    local_dupes = db.execute("SELECT count(*) - count(DISTINCT id) FROM events").fetchone()[0]

    central_people = {
        str(r["id"]): r["name"]
        for r in central.sql(
            "select p.id, p.name from persons p join person_sites ps on ps.person_id = p.id "
            "join sites s on s.id = ps.site_id "
            "where s.name = %s and not p.deleted and not ps.deleted",
            [SITE],
        )
    }
    local_people = {
        r[0]: r[1] for r in db.execute("SELECT id, name FROM persons WHERE deleted = 0")
    }
    local_faces = {
        r[0]: r[1] for r in db.execute("SELECT person_id, count(*) FROM faces GROUP BY person_id")
    }
    people_ok = (
        local_people == central_people
        and all(local_people.get(pid) == name for pid, name in people.added.items())
        and not any(pid in local_people for pid in people.deleted)
        and all(local_faces.get(pid) == 1 for pid in people.added)
    )

    grants = [r[0] for r in db.execute("SELECT ts FROM events WHERE kind = ?", [policy.GRANTED])]
    bad_relay = relay_outside_grant(relay_samples, grants)
    grant_pulses = logs["appliance"].count("unlock pulse: access granted")
    other_pulses = sum(
        logs["appliance"].count(s) for s in ("unlock pulse: remote", "unlock pulse: exit")
    )
    terms = sum(r["signal"] == "SIGTERM" and r["process"] == "appliance" for r in restarts)
    app_backs = [r["back_s"] for r in restarts if r["process"] == "appliance"]
    result = {
        "minutes": args.minutes,
        "seed": args.seed,
        "kills": len(restarts),
        "kills_by_process": {n: sum(r["process"] == n for r in restarts) for n in procs},
        "gateway_cuts": cuts,
        "restarts": restarts,
        "rss_mb": rss,
        "max_back_to_deciding_s": max((b or 999) for b in app_backs) if app_backs else None,
        "max_back_s": {
            n: max(((r["back_s"] or 999) for r in restarts if r["process"] == n), default=None)
            for n in procs
        },
        "events_local": len(local_ids),
        "events_central": len(central_ids),
        "events_lost": len(lost),
        "events_extra_central": len(extra),
        "duplicates_central": central_dupes,
        "duplicates_local": local_dupes,
        "events_quarantined": quarantined,
        "events_never_decreased": all(b <= a for b, a in zip(counts, counts[1:])),
        "drained": drained,
        "drain_s": drain_s,
        "people_changes": people.changes,
        "people_local": len(local_people),
        "people_central": len(central_people),
        "people_as_expected": people_ok,
        "grants": len(grants),
        "relay_samples": len(relay_samples),
        "relay_energised_samples": sum(s["energised"] for s in relay_samples),
        "relay_energised_outside_grant": len(bad_relay),
        "grant_pulses_logged": grant_pulses,
        "pulses_not_from_a_grant": other_pulses,
        "relay_safe_after_sigterm": logs["appliance"].count("relay de-energised") >= terms,
        "database_locked_lines": sum(t.count("database is locked") for t in logs.values()),
        "api_calls": api_calls[0],
        "api_errors": api_errors[0],
    }
    skip = ("restarts", "rss_mb", "gateway_cuts", "people_changes")
    print(json.dumps({k: v for k, v in result.items() if k not in skip}, indent=2))
    print("RSS (MB) over time, t_s: appliance / api / sync / gateway")
    for r in rss:
        print(
            f"  {r['t_s']:5}: {r.get('appliance')} / {r.get('api')} / {r.get('sync')} / "
            f"{r.get('gateway')}"
        )
    if lost:
        print("lost (first 10):", lost[:10])
    if bad_relay:
        print("relay energised outside a grant (first 10):", bad_relay[:10])
    out_path = REPO / "scripts" / "results" / "soak.json"
    out_path.write_text(json.dumps(result, indent=2))
    print(f"written {out_path} (logs in {work})")
    parent_conn.send("stop")
    central_proc.join(30)
    ok = (
        result["events_never_decreased"]
        and drained
        and not lost
        and not extra
        and not central_dupes
        and not local_dupes
        and people_ok
        and not bad_relay
        and not other_pulses
        and not result["database_locked_lines"]
        and result["relay_safe_after_sigterm"]
        and all(r["back_s"] is not None for r in restarts)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
