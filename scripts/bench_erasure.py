#!/usr/bin/env python3
"""What erasing a person costs: ``store.delete_person`` (faces zeroed by secure_delete, the
person's events made pseudonymous, the write-ahead log truncated) on a store with a long entry
log, with another connection open as the kiosk's would be.

Prints a table and writes scripts/results/bench_erasure.json.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_common import table, write_results

from appliance import store
from appliance.faces import MODEL_NAME

PERSONS = 1000
EVENTS = 100_000
EVENTS_PER_ERASED = 1000
ERASED = 5


def build(path: Path) -> tuple[list[str], object]:
    import numpy as np

    rng = np.random.default_rng(7)
    db = store.open_db(path)
    with db.conn:
        ids = [store.create_person(db, f"Person {i}") for i in range(PERSONS)]
        for pid in ids:
            for _ in range(2):
                vec = rng.normal(size=128).astype(np.float32)
                store.add_face(db, pid, vec / np.linalg.norm(vec), model=MODEL_NAME)
    erased = ids[:ERASED]
    rows = []
    for i in range(EVENTS):
        pid = erased[i % ERASED] if i < ERASED * EVENTS_PER_ERASED else ids[i % PERSONS]
        rows.append(
            {
                "door": "bench",
                "kind": "access_granted",
                "person_id": pid,
                "person_name": f"name of {pid}",
                "reason": "match",
            }
        )
    for start in range(0, len(rows), 5000):
        store.insert_events(db, rows[start : start + 5000])
    store.truncate_wal(db)
    return erased, db


def main() -> int:
    from loguru import logger

    logger.remove()
    path = Path(tempfile.mkdtemp()) / "data" / "facegate.db"
    erased, db = build(path)
    reader = store.open_db(path, migrate_schema=False)  # the kiosk's connection, idle
    reader.execute("SELECT count(*) FROM events").fetchall()
    wal = path.with_name(path.name + "-wal")
    times, wal_after = [], []
    for pid in erased:
        t0 = time.perf_counter()
        store.delete_person(db, pid)
        times.append((time.perf_counter() - t0) * 1000)
        wal_after.append(wal.stat().st_size if wal.exists() else 0)
    size_mb = path.stat().st_size / 1e6
    rows = [
        ["store", f"{PERSONS} persons, {2 * PERSONS} faces, {EVENTS} events, {size_mb:.1f} MB"],
        ["events of each erased person", EVENTS_PER_ERASED],
        ["delete_person, median ms", f"{statistics.median(times):.1f}"],
        ["delete_person, max ms", f"{max(times):.1f}"],
        ["WAL bytes after each delete", ", ".join(str(b) for b in wal_after)],
    ]
    print(table(rows, ["erasure (another connection open)", "value"]))
    out = write_results(
        "bench_erasure",
        {
            "persons": PERSONS,
            "events": EVENTS,
            "events_per_erased": EVENTS_PER_ERASED,
            "store_mb": round(size_mb, 1),
            "delete_ms": [round(t, 1) for t in times],
            "wal_bytes_after": wal_after,
        },
    )
    print(f"written to {out}")
    reader.conn.close()
    db.conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
