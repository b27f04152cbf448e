"""Sync benchmark: drain an event backlog and pull thousands of people through the gateway.

    .venv/bin/python scripts/bench_sync.py [--events 100000] [--people 10000] [--batch 500]

The central side (a throwaway PostgreSQL + the Supabase stand-in gateway from tests/) runs in a
child process, so the door's memory figures are the door's alone: peak RSS growth of this process
while draining backlogs of increasing size (flat = batches, not the whole backlog, in memory).
Target (issue 6): 100k events in under 2 minutes on this machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RESULTS = REPO / "scripts" / "results" / "bench_sync.json"


def central_process(conn, stop) -> None:
    """Child: PostgreSQL + migrations + gateway; sends the URL and keys, runs until stopped."""
    from tests.supabase_gateway import PostgresMissing, central_stack

    try:
        with central_stack() as (_, info):
            conn.send(info)
            stop.wait()
    except PostgresMissing as exc:  # raised before anything started
        conn.send({"error": str(exc)})


class RssSampler:
    """Peak resident memory of this process while a block runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def __enter__(self) -> RssSampler:
        self.start = self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def add_central_people(dsn: str, site: str, n: int) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(
            "insert into persons (id, name, external_id) select gen_random_uuid(), "
            "'Person ' || i, 'bench-' || i from generate_series(1, %s) i",
            [n],
        )
        conn.execute(
            "insert into faces (person_id, embedding, model) select p.id, "
            "array(select (random() - 0.5)::real from generate_series(1, 128) "
            "where p.id is not null), 'dlib_resnet_v1' from persons p "
            "where p.external_id like 'bench-%%'"
        )
        conn.execute(
            "insert into person_sites (person_id, site_id) select p.id, s.id from persons p, "
            "sites s where s.name = %s and p.external_id like 'bench-%%'",
            [site],
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        # what autovacuum does shortly after a bulk import; without statistics the planner
        # picks sorts over the change-number indexes and a page costs seconds, not milliseconds
        conn.execute("analyze")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    from loguru import logger

    from appliance import store
    from appliance.settings import load_settings
    from sync.client import CentralClient
    from sync.engine import SyncEngine
    from sync.provision import provision_door

    logger.remove()
    logger.add(sys.stderr, level="INFO", format="{time:HH:mm:ss} | {message}")

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    proc = ctx.Process(target=central_process, args=(child, stop), daemon=True)
    proc.start()
    info = parent.recv()
    if "error" in info:
        print(info["error"], file=sys.stderr)
        return 2
    results: dict = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "batch": args.batch,
        "drains": [],
    }
    try:
        site = f"bench-{uuid.uuid4().hex[:6]}"
        env = provision_door(info["url"], info["anon"], info["service"], site, "bench-door")
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(
                data_dir=Path(tmp),
                pin_factory="mock",
                door_name="bench-door",
                supabase_url=info["url"],
                supabase_anon_key=info["anon"],
                device_email=env["FACEGATE_DEVICE_EMAIL"],
                device_password=env["FACEGATE_DEVICE_PASSWORD"],
                sync_batch_size=args.batch,
            )
            db = store.open_db(settings.db_path)
            client = CentralClient(
                info["url"],
                info["anon"],
                env["FACEGATE_DEVICE_EMAIL"],
                env["FACEGATE_DEVICE_PASSWORD"],
            )
            engine = SyncEngine(settings, db, client, progress_every=40)
            engine.heartbeat()  # sign in outside the timings

            sizes = sorted({max(1, args.events // 10), args.events})
            for size in sizes:
                for start in range(0, size, 20_000):
                    store.insert_events(
                        db,
                        [
                            {
                                "door": "bench-door",
                                "kind": "grant",
                                "person_id": str(uuid.uuid4()),
                                "person_name": "Someone",
                                "distance": 0.35,
                                "reason": "match",
                                "details": {"votes": 3, "track": i},
                            }
                            for i in range(start, min(size, start + 20_000))
                        ],
                    )
                with RssSampler() as mem:
                    t0 = time.perf_counter()
                    report = engine.push_events()
                    elapsed = time.perf_counter() - t0
                assert report["sent"] == size, report
                results["drains"].append(
                    {
                        "events": size,
                        "seconds": round(elapsed, 2),
                        "events_per_s": round(size / elapsed),
                        "rss_growth_mb": round(mem.growth_mb, 1),
                    }
                )

            add_central_people(info["dsn"], site, args.people)
            with RssSampler() as mem:
                t0 = time.perf_counter()
                pulled = engine.pull()
                elapsed = time.perf_counter() - t0
            faces = db.execute("SELECT count(*) FROM faces").fetchone()[0]
            assert faces == args.people, (faces, pulled)
            results["pull"] = {
                "people": args.people,
                "faces": faces,
                "seconds": round(elapsed, 2),
                "people_per_s": round(args.people / elapsed),
                "rss_growth_mb": round(mem.growth_mb, 1),
            }
            with open("/proc/self/status") as f:
                peak = next(line for line in f if line.startswith("VmHWM"))
            results["peak_rss_mb"] = round(int(peak.split()[1]) / 1024, 1)
            client.close()
    finally:
        stop.set()
        proc.join(30)

    print()
    print(f"{'what':<28}{'count':>10}{'seconds':>10}{'per second':>12}{'RSS growth MB':>15}")
    for d in results["drains"]:
        print(
            f"{'event backlog drain':<28}{d['events']:>10}{d['seconds']:>10}"
            f"{d['events_per_s']:>12}{d['rss_growth_mb']:>15}"
        )
    p = results["pull"]
    print(
        f"{'people pull (1 face each)':<28}{p['people']:>10}{p['seconds']:>10}"
        f"{p['people_per_s']:>12}{p['rss_growth_mb']:>15}"
    )
    print(f"peak RSS of the door process: {results['peak_rss_mb']} MB")
    biggest = results["drains"][-1]
    results["target_100k_under_120s"] = biggest["events"] >= 100_000 and biggest["seconds"] < 120
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
