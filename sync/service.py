"""The long-running sync process: an apscheduler loop beside the door, stopped by one event.

Pull every ``sync_pull_seconds`` (people go up right after, so the centre-wins rule sees the
freshest central copy), push events every ``sync_push_seconds`` and send a heartbeat every
``sync_heartbeat_seconds``. Jobs never overlap (one engine lock, max_instances=1); a failed job
is logged and recorded in the status, and simply runs again at its next time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from loguru import logger

from appliance.settings import Settings
from sync.engine import SyncEngine


def _guarded(name: str, work: Callable[[], object]) -> Callable[[], None]:
    def job() -> None:
        try:
            work()
        except Exception as exc:  # already logged with context and recorded by the engine
            logger.debug("sync job {} ended with {}", name, type(exc).__name__)

    return job


def build_scheduler(engine: SyncEngine, settings: Settings) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        executors={"default": {"type": "threadpool", "max_workers": 2}},
    )
    now = datetime.now(UTC)

    def pull_then_push_people() -> None:
        engine.pull()
        engine.push_people()

    jobs = [
        ("pull", pull_then_push_people, settings.sync_pull_seconds),
        ("push_events", engine.push_events, settings.sync_push_seconds),
        ("heartbeat", engine.heartbeat, settings.sync_heartbeat_seconds),
    ]
    for name, work, seconds in jobs:
        scheduler.add_job(
            _guarded(name, work), "interval", seconds=seconds, next_run_time=now, id=name
        )
    return scheduler


def run_service(engine: SyncEngine, settings: Settings, stop: threading.Event) -> None:
    """Run the schedule until ``stop`` is set, then wait for the running job to finish."""
    scheduler = build_scheduler(engine, settings)
    scheduler.start()
    logger.info(
        "sync running: pull every {} s, push every {} s, heartbeat every {} s",
        settings.sync_pull_seconds,
        settings.sync_push_seconds,
        settings.sync_heartbeat_seconds,
    )
    stop.wait()
    logger.info("sync stopping")
    engine.stop.set()  # interrupts backoff waits and batch loops
    scheduler.shutdown(wait=True)
    engine.mark_stopped()
    logger.info("sync stopped")
