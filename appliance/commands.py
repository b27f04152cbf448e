"""Admin commands from the store's ``commands`` table (written by the API): ``unlock`` pulses the
relay, ``reload`` re-reads the gallery. Carried out by the kiosk's housekeeper; each command is
claimed first, so two runners never carry out one twice, and an unlock older than
:data:`COMMAND_MAX_AGE_S` is expired rather than opening the door long after it was asked for.
"""

from __future__ import annotations

from loguru import logger

from appliance import store
from appliance.events import EventWriter
from appliance.gallery_feed import GalleryFeed
from hardware.door import DoorController, DoorControllerError

COMMAND_MAX_AGE_S = 30.0  # an unlock asked for longer ago than this is not carried out


class CommandRunner:
    """Carries out pending commands against one door, its event log and its gallery feed."""

    def __init__(
        self, door: DoorController | None, writer: EventWriter, gallery: GalleryFeed
    ) -> None:
        self._door = door
        self._writer = writer
        self._gallery = gallery

    def run_pending(self, db) -> None:
        """Claim and carry out every pending command, finishing each as done, failed or expired."""
        for cmd in store.pending_commands(db):
            age = (store.utc_now() - store.parse_iso(cmd["created_at"])).total_seconds()
            log = logger.bind(command=cmd["id"], requested_by=cmd["requested_by"])
            if not store.claim_command(db, cmd["id"]):
                continue  # expired by the API meanwhile
            if age > COMMAND_MAX_AGE_S:
                store.finish_command(db, cmd["id"], "expired", "too old to carry out")
                log.warning("command {} expired before it was carried out", cmd["kind"])
                continue
            if cmd["kind"] == "unlock":
                self._unlock(db, cmd, log)
            elif cmd["kind"] == "reload":
                self._gallery.load(db, force=True)
                store.finish_command(db, cmd["id"], "done", "reloaded")
            else:
                store.finish_command(db, cmd["id"], "failed", f"unknown command {cmd['kind']!r}")

    def _unlock(self, db, cmd: dict, log) -> None:
        try:
            if self._door is None:
                raise DoorControllerError("the door controller is not running")
            self._door.remote_unlock(cmd["requested_by"] or "admin")
        except DoorControllerError as exc:
            store.finish_command(db, cmd["id"], "failed", str(exc))
            log.error("remote unlock failed: {}", exc)
            return
        self._writer.emit(
            "remote_unlock", reason="admin", details={"requested_by": cmd["requested_by"]}
        )
        store.finish_command(db, cmd["id"], "done", "unlocked")
        log.info("remote unlock carried out")
