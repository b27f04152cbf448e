"""Load run of the admin API: listing events and people under concurrent clients while the
appliance writes events into the same SQLite file.

    .venv/bin/python scripts/bench_api.py [--events 100000] [--clients 8] [--seconds 20]

The API runs as its own process (``python -m admin_api``, waitress), as on the kiosk; the clients
and the event writer run here. Prints p50/p95/p99 per request kind and the error count, and writes
scripts/results/bench_api.json. Target: zero errors, p95 under 50 ms for a page of 100 events with
100k events stored.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from admin_api.auth import create_token  # noqa: E402
from appliance import store  # noqa: E402
from appliance.faces import MODEL_NAME  # noqa: E402

KINDS = ["access_granted", "access_denied", "unknown_face", "door_forced", "remote_unlock"]
RESULTS = REPO / "scripts" / "results" / "bench_api.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(db, n_events: int, n_people: int) -> list[str]:
    """People with faces and ``n_events`` events spread over the last 90 days."""
    rng = np.random.default_rng(7)
    pids = []
    with db.conn:
        for i in range(n_people):
            pid = store.create_person(db, f"Person {i:05d}", external_id=f"emp-{i:05d}")
            for _ in range(2):
                store.add_face(
                    db, pid, rng.standard_normal(128).astype(np.float32), model=MODEL_NAME
                )
            pids.append(pid)
    start = datetime.now(UTC) - timedelta(days=90)
    step = timedelta(days=90) / max(1, n_events)
    batch = 5000
    for first in range(0, n_events, batch):
        rows = []
        for i in range(first, min(n_events, first + batch)):
            granted = i % 3 == 0
            rows.append(
                {
                    "ts": store.to_iso(start + step * i),
                    "door": "front-door",
                    "kind": KINDS[i % len(KINDS)],
                    "person_id": pids[i % len(pids)] if granted else None,
                    "person_name": f"Person {i % len(pids):05d}" if granted else None,
                    "distance": 0.35,
                    "reason": None if granted else "unknown",
                    "details": {"votes": 3},
                }
            )
        store.insert_events(db, rows)
        print(f"\r  seeded {min(n_events, first + batch):>7}/{n_events} events", end="", flush=True)
    print()
    return pids


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--people", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument(
        "--writer-per-s",
        type=float,
        default=20.0,
        help="events per second the fake appliance writes (in batches of 2)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench_api_")
    data_dir = Path(tmp.name)
    db = store.open_db(data_dir / "facegate.db")
    t0 = time.perf_counter()
    print(f"seeding {args.events} events and {args.people} people in {data_dir}")
    seed(db, args.events, args.people)
    seed_s = time.perf_counter() - t0
    token = create_token(db, "bench", "viewer")[1]

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(
        FACEGATE_DATA_DIR=str(data_dir),
        FACEGATE_API_PORT=str(port),
        FACEGATE_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    server = subprocess.Popen([sys.executable, "-m", "admin_api"], env=env, cwd=data_dir)
    base = f"http://127.0.0.1:{port}/api/v1"
    for _ in range(100):
        try:
            if requests.get(base + "/health", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        server.terminate()
        raise SystemExit("the API did not start")

    stop = threading.Event()
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    error_samples: list[str] = []
    lock = threading.Lock()
    writer_stats = {"written": 0, "errors": 0}

    def writer() -> None:
        wdb = store.open_db(data_dir / "facegate.db", migrate_schema=False)
        interval = 2 / args.writer_per_s
        while not stop.wait(interval):
            try:
                store.insert_events(
                    wdb, [{"door": "front-door", "kind": "access_denied", "reason": "unknown"}] * 2
                )
                writer_stats["written"] += 2
            except Exception as exc:  # noqa: BLE001 - counted and reported
                writer_stats["errors"] += 1
                error_samples.append(f"writer: {exc}")
        wdb.conn.close()

    requests_mix = [
        ("events page 1", "/events", lambda r: {"limit": 100}),
        (
            "events deep page",
            "/events",
            lambda r: {
                "limit": 100,
                "offset": r.randrange(0, max(1, min(5000, args.events - 100))),
            },
        ),
        ("events by kind", "/events", lambda r: {"limit": 100, "kind": r.choice(KINDS)}),
        ("people page", "/people", lambda r: {"limit": 100, "offset": r.randrange(0, 400)}),
    ]
    weights = [4, 2, 2, 2]

    def client(seed_: int) -> None:
        rnd = random.Random(seed_)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        while not stop.is_set():
            name, path, params = rnd.choices(requests_mix, weights)[0]
            t = time.perf_counter()
            try:
                resp = session.get(base + path, params=params(rnd), timeout=10)
                ok = resp.status_code == 200 and len(resp.json()["items"]) > 0
                detail = f"{resp.status_code} {resp.text[:120]}"
            except Exception as exc:  # noqa: BLE001 - counted and reported
                ok, detail = False, repr(exc)
            dt = (time.perf_counter() - t) * 1000
            with lock:
                latencies[name].append(dt)
                if not ok:
                    errors[name] += 1
                    if len(error_samples) < 5:
                        error_samples.append(f"{name}: {detail}")

    threads = [threading.Thread(target=writer, name="writer")]
    threads += [
        threading.Thread(target=client, args=(i,), name=f"client-{i}") for i in range(args.clients)
    ]
    print(
        f"{args.clients} clients for {args.seconds:.0f} s against {base} "
        f"(writer {args.writer_per_s:.0f} events/s)"
    )
    started = time.perf_counter()
    for t in threads:
        t.start()
    try:
        while not stop.wait(min(2.0, max(0.0, started + args.seconds - time.perf_counter()))):
            elapsed = time.perf_counter() - started
            with lock:
                done = sum(len(v) for v in latencies.values())
            print(f"\r  {elapsed:5.1f} s  {done} requests", end="", flush=True)
            if elapsed >= args.seconds:
                break
        print()
    finally:
        stop.set()
        for t in threads:
            t.join()
        server.terminate()
        server.wait(timeout=10)
    wall = time.perf_counter() - started

    rows = []
    for name, _, _ in requests_mix:
        lat = latencies[name]
        rows.append(
            {
                "request": name,
                "count": len(lat),
                "errors": errors[name],
                "p50_ms": round(statistics.median(lat), 1) if lat else None,
                "p95_ms": round(percentile(lat, 95), 1),
                "p99_ms": round(percentile(lat, 99), 1),
                "max_ms": round(max(lat), 1) if lat else None,
            }
        )
    everything = [x for v in latencies.values() for x in v]
    total = {
        "request": "all",
        "count": len(everything),
        "errors": sum(errors.values()),
        "p50_ms": round(statistics.median(everything), 1),
        "p95_ms": round(percentile(everything, 95), 1),
        "p99_ms": round(percentile(everything, 99), 1),
        "max_ms": round(max(everything), 1),
    }
    print(
        f"\n{'request':<18}{'count':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}"
    )
    for r in [*rows, total]:
        print(
            f"{r['request']:<18}{r['count']:>8}{r['errors']:>8}{r['p50_ms']:>9}"
            f"{r['p95_ms']:>9}{r['p99_ms']:>9}{r['max_ms']:>9}"
        )
    page1 = rows[0]
    target_met = total["errors"] == 0 and writer_stats["errors"] == 0 and page1["p95_ms"] < 50
    print(
        f"\nthroughput {len(everything) / wall:.0f} req/s; writer wrote "
        f"{writer_stats['written']} events, {writer_stats['errors']} errors"
    )
    print(
        f"target (zero errors, p95 < 50 ms for a page of 100 events): "
        f"{'met' if target_met else 'NOT met'}"
    )
    for sample in error_samples:
        print("  error:", sample)

    result = {
        "when": store.to_iso(store.utc_now()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg": os.getloadavg(),
        },
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seed_seconds": round(seed_s, 1),
        "requests": rows,
        "all": total,
        "throughput_rps": round(len(everything) / wall, 1),
        "writer": writer_stats,
        "error_samples": error_samples,
        "target_met": target_met,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    db.conn.close()
    tmp.cleanup()
    return 0 if target_met else 1


if __name__ == "__main__":
    sys.exit(main())
