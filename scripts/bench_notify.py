#!/usr/bin/env python3
"""What the outbox costs the door, and how fast the notify process empties it.

1. The door's write path: batches of events through ``store.insert_events`` (what the event writer
   does) with no channel declared vs. three (e-mail, webhook, MQTT: the trigger adds three outbox
   rows per event in the same transaction). p50/p95 per batch of 10 and events per second.
2. The sender: a backlog of events drained to a local webhook receiver (signed JSON over HTTP),
   messages per second.

    python scripts/bench_notify.py [--events N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench_common import table, write_results

from appliance import store
from appliance.settings import load_settings


def write_path(n: int, channels: dict) -> dict:
    from notify import outbox

    settings = load_settings(data_dir=Path(tempfile.mkdtemp()) / "data")
    db = store.open_db(settings.db_path)
    outbox.configure_channels(db, channels, store.utc_now())
    times = []
    for _ in range(0, n, 10):
        batch = [
            {"kind": "access_denied", "door": "bench", "reason": "unknown_face"} for _i in range(10)
        ]
        t0 = time.perf_counter()
        store.insert_events(db, batch)
        times.append((time.perf_counter() - t0) * 1000)
    rows = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    db.conn.close()
    times.sort()
    return {
        "channels": len(channels),
        "outbox_rows": rows,
        "batch_p50_ms": round(statistics.median(times), 3),
        "batch_p95_ms": round(times[int(len(times) * 0.95)], 3),
        "events_per_s": round(n / (sum(times) / 1000)),
    }


def sender_rate(n: int) -> dict:
    from notify.service import Sender, build_channels

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = load_settings(
        data_dir=Path(tempfile.mkdtemp()) / "data",
        webhook_url=f"http://127.0.0.1:{server.server_address[1]}/in",
        webhook_secret="bench",
    )
    db = store.open_db(settings.db_path)
    sender = Sender(settings, db, build_channels(settings))
    sender.start(store.utc_now())
    store.insert_events(db, [{"kind": "access_granted", "door": "bench"} for _ in range(n)])
    t0 = time.perf_counter()
    while sender.drain(store.utc_now()):
        pass
    elapsed = time.perf_counter() - t0
    sent = db.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
    sender.close()
    server.shutdown()
    return {"messages": sent, "seconds": round(elapsed, 2), "per_s": round(sent / elapsed)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    args = ap.parse_args()
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    paths = [
        write_path(args.events, {}),
        write_path(args.events, {"notify:x": None, "webhook": None, "mqtt": None}),
    ]
    print(
        table(
            [
                [
                    p["channels"],
                    p["outbox_rows"],
                    p["batch_p50_ms"],
                    p["batch_p95_ms"],
                    p["events_per_s"],
                ]
                for p in paths
            ],
            ["channels", "outbox rows", "batch-of-10 p50 ms", "p95 ms", "events/s"],
        )
    )
    rate = sender_rate(min(args.events, 1000))
    print()
    print(
        table(
            [[rate["messages"], rate["seconds"], rate["per_s"]]],
            ["webhook messages", "seconds", "messages/s"],
        )
    )
    path = write_results("bench_notify", {"write_path": paths, "sender_webhook": rate})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
