"""One sync step at a time: pull people down, push people and events up, send a heartbeat.

The engine glues the pure rules (:mod:`sync.plan`), the local store (:mod:`sync.local`) and the
central client (:mod:`sync.client`). Transient failures are retried with exponential backoff and
jitter (waiting on the stop event, so shutdown is immediate); what happened is written to the
``sync`` row of device_status, which ``python -m sync status`` and the admin API show.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from loguru import logger

from appliance.settings import Settings
from appliance.store import gallery_version, get_status, parse_iso, put_status, to_iso, utc_now
from sync import local, plan
from sync.client import CentralClient, Refused, SyncError, Transient

#: Persons per push_people call.
PEOPLE_PAGE = 100

#: Server error codes that judge the data (a bad row), not the door or the connection.
_DATA_ERROR_PREFIXES = ("22", "23", "PGRST102", "P0001")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 60.0


class Stopping(SyncError):
    """The stop event was set while waiting to retry."""


class SyncEngine:
    """Sync steps over one local store and one central client; steps never run concurrently."""

    def __init__(
        self,
        settings: Settings,
        db: sqlite_utils.Database,
        client: CentralClient,
        *,
        stop: threading.Event | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        progress_every: int = 20,
    ) -> None:
        self.settings = settings
        self.db = db
        self.client = client
        self.stop = stop or threading.Event()
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self.progress_every = progress_every
        self._lock = threading.Lock()
        self._answered = 0  # successful calls to the centre, so far
        previous = get_status(db, "sync") or {}
        previous.pop("updated_at", None)
        self.status: dict[str, Any] = {**previous, "configured": True}

    # --- plumbing -------------------------------------------------------------------------------

    def _call(self, fn: str, params: dict[str, Any]) -> Any:
        """One RPC, retried on transient failure with backoff and jitter."""
        for attempt in range(self.retry.attempts):
            try:
                reply = self.client.call(fn, params)
                self._answered += 1
                return reply
            except Transient as exc:
                if attempt + 1 >= self.retry.attempts:
                    raise
                delay = plan.backoff_delay(
                    attempt, self.retry.base_seconds, self.retry.cap_seconds, self.rng
                )
                logger.warning(
                    "{} failed ({}); retry {}/{} in {:.2f} s",
                    fn,
                    exc,
                    attempt + 1,
                    self.retry.attempts - 1,
                    delay,
                )
                if self.stop.wait(delay):
                    raise Stopping(f"stopped while waiting to retry {fn}") from exc
        raise AssertionError("unreachable")

    def _step(self, name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            started = time.monotonic()
            answered = self._answered
            try:
                report = work()
            except Exception as exc:
                self.status["last_error"] = {
                    "at": to_iso(utc_now()),
                    "step": name,
                    "message": f"{type(exc).__name__}: {exc}",
                }
                self.status["state"] = "error"
                logger.error("sync {} failed: {}: {}", name, type(exc).__name__, exc)
                self._save_status()
                raise
            report["seconds"] = round(time.monotonic() - started, 3)
            now = to_iso(utc_now())
            self.status[f"last_{name}"] = {"at": now, **report}
            if self._answered > answered:  # a step with nothing to send proves nothing
                self.status["last_success"] = now
                self.status["state"] = "ok"
            self._save_status()
            return report

    def mark_stopped(self) -> None:
        with self._lock:
            self.status["state"] = "stopped"
            self._save_status()

    def _save_status(self) -> None:
        self.status["pull_cursor"] = local.pull_cursor(self.db)
        self.status["backlog"] = local.backlog(self.db)
        self.status["quarantined"] = local.quarantined(self.db)
        put_status(self.db, "sync", self.status)

    # --- pull -----------------------------------------------------------------------------------

    def pull(self) -> dict[str, Any]:
        """Everything after the stored cursor, page by page, one local transaction per page."""
        return self._step("pull", self._pull)

    def _pull(self) -> dict[str, Any]:
        cursor = local.pull_cursor(self.db)
        totals = {"pages": 0, "applied": 0, "deleted": 0, "conflicts": 0, "malformed": 0}
        started = time.monotonic()
        while not self.stop.is_set():
            reply = self._call(
                "pull_changes", {"after": cursor, "lim": self.settings.sync_batch_size}
            )
            try:
                changes, nxt, more = plan.parse_page(reply, cursor)
            except plan.MalformedRow as exc:
                raise Refused(f"pull_changes: {exc}") from exc
            stats = local.apply_page(self.db, changes, nxt)
            totals["pages"] += 1
            for key in ("applied", "deleted", "conflicts", "malformed"):
                totals[key] += getattr(stats, key)
            cursor = nxt
            if totals["pages"] % self.progress_every == 0:
                logger.info(
                    "pull: {} pages, {} rows applied, cursor {} ({:.0f} rows/s)",
                    totals["pages"],
                    totals["applied"],
                    cursor,
                    totals["applied"] / max(time.monotonic() - started, 1e-6),
                )
            if not more or not changes:
                break
        totals["cursor"] = cursor
        if totals["applied"] or totals["deleted"]:
            logger.info(
                "pull: {} rows applied, {} deleted, {} conflicts, {} malformed; cursor {}",
                totals["applied"],
                totals["deleted"],
                totals["conflicts"],
                totals["malformed"],
                cursor,
            )
        return totals

    # --- push people ----------------------------------------------------------------------------

    def push_people(self) -> dict[str, Any]:
        """Persons enrolled or changed at this door go up; the centre wins conflicts."""
        return self._step("push_people", self._push_people)

    def _push_people(self) -> dict[str, Any]:
        totals = {"accepted": 0, "conflicts": 0, "refused": 0}
        after: tuple[str, str] | None = None  # page by (updated_at, id), not "not seen yet"
        while not self.stop.is_set():
            persons = local.people_to_push(self.db, PEOPLE_PAGE, after)
            if not persons:
                break
            after = (persons[-1]["updated_at"], persons[-1]["id"])
            payloads, versions = [], {}
            for person in persons:
                faces, embeddings = local.faces_of(self.db, person["id"])
                payloads.append(plan.person_payload(person, faces, embeddings))
                versions[person["id"]] = {
                    "updated_at": person["updated_at"],
                    "deleted": bool(person["deleted"]),
                    "faces": [f["id"] for f in faces],
                    "base_version": person["central_version"],
                }
            reply = self._call(
                "push_people", {"people": payloads, "known_through": local.pull_cursor(self.db)}
            )
            if not isinstance(reply, dict):
                raise Refused(f"unexpected push_people reply: {str(reply)[:200]}")
            counts = local.record_people_outcome(self.db, payloads, versions, reply)
            for key, n in counts.items():
                totals[key] += n
        return totals

    # --- push events ----------------------------------------------------------------------------

    def push_events(self) -> dict[str, Any]:
        """Drain the outbox in batches; an event is marked synced only once the centre has it."""
        return self._step("push_events", self._push_events)

    def _push_events(self) -> dict[str, Any]:
        pending = local.backlog(self.db)
        totals = {"sent": 0, "refused": 0, "batches": 0}
        after = 0
        started = time.monotonic()
        while not self.stop.is_set():
            rows = local.next_events(self.db, after, self.settings.sync_batch_size)
            if not rows:
                break
            after = rows[-1]["_rowid"]
            payloads, refused = plan.plan_event_batch(rows)
            synced: list[str] = []
            if payloads:
                ok, refused_remote = self._send_events(payloads)
                synced += ok
                refused.update(refused_remote)
            by_id = {r["id"]: {k: v for k, v in r.items() if k != "_rowid"} for r in rows}
            local.record_event_outcome(self.db, synced, refused, by_id)
            for event_id, reason in refused.items():
                logger.error("event {} quarantined: {}", event_id, reason)
            totals["sent"] += len(synced)
            totals["refused"] += len(refused)
            totals["batches"] += 1
            if pending > self.settings.sync_batch_size and (
                totals["batches"] % self.progress_every == 0
            ):
                elapsed = max(time.monotonic() - started, 1e-6)
                logger.info(
                    "backlog: {}/{} events sent ({:.0f}/s)",
                    totals["sent"],
                    pending,
                    totals["sent"] / elapsed,
                )
        if totals["sent"] or totals["refused"]:
            logger.info("pushed {} events ({} quarantined)", totals["sent"], totals["refused"])
        return totals

    def _send_events(self, payloads: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
        """Send a batch; if the server refuses the request as a whole over its data, split it
        until the offending rows are alone, so one bad row never blocks the others."""
        try:
            reply = self._call("push_events", {"events": payloads})
        except Refused as exc:
            if not str(exc.code or "").startswith(_DATA_ERROR_PREFIXES):
                raise
            if len(payloads) == 1:
                return [], {str(payloads[0]["id"]): str(exc)}
            half = len(payloads) // 2
            ok_a, bad_a = self._send_events(payloads[:half])
            ok_b, bad_b = self._send_events(payloads[half:])
            return ok_a + ok_b, {**bad_a, **bad_b}
        try:
            return plan.confirmed_ids(payloads, reply)
        except plan.MalformedRow as exc:
            raise Refused(f"push_events: {exc}") from exc

    # --- heartbeat ------------------------------------------------------------------------------

    def heartbeat(self) -> dict[str, Any]:
        return self._step("heartbeat", self._heartbeat)

    def _heartbeat(self) -> dict[str, Any]:
        appliance = get_status(self.db, "appliance")
        status = {
            "door": self.settings.door_name,
            "backlog": local.backlog(self.db),
            "pull_cursor": local.pull_cursor(self.db),
            "gallery_version": gallery_version(self.db),
            "quarantined": local.quarantined(self.db),
            "last_error": self.status.get("last_error"),
            "appliance": appliance,
            "sent_at": to_iso(utc_now()),
        }
        reply = self._call("heartbeat", {"status": plan.redact(status)})
        report: dict[str, Any] = {}
        server_time = reply.get("server_time") if isinstance(reply, dict) else None
        if isinstance(server_time, str):
            try:
                offset = (parse_iso(server_time) - utc_now()).total_seconds()
            except ValueError:
                offset = None
            if offset is not None:
                report["clock_offset_seconds"] = round(offset, 1)
                if abs(offset) > 60:
                    logger.warning("the door's clock is {:.0f} s off the server's", -offset)
        return report

    # --- a whole cycle --------------------------------------------------------------------------

    def run_cycle(self) -> dict[str, Any]:
        """Pull, push people, push events, heartbeat; every step runs even if one fails, and
        the first failure is raised at the end."""
        reports: dict[str, Any] = {}
        first_error: Exception | None = None
        steps = (
            ("pull", self.pull),
            ("push_people", self.push_people),
            ("push_events", self.push_events),
            ("heartbeat", self.heartbeat),
        )
        for name, step in steps:
            if self.stop.is_set():
                break
            try:
                reports[name] = step()
            except Exception as exc:  # recorded in the status by _step; keep going
                reports[name] = {"error": str(exc)}
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return reports
