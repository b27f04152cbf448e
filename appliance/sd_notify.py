"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``) in a few lines, no dependency.

The service manager passes a datagram socket in ``NOTIFY_SOCKET``; the appliance sends
``READY=1`` once it is deciding, ``WATCHDOG=1`` while its frame loop is alive (see
``appliance.kiosk``), ``STATUS=...`` for ``systemctl status`` and ``STOPPING=1`` when it stops.
Without ``NOTIFY_SOCKET`` (a terminal, the tests) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from loguru import logger

#: Pet the watchdog at most this often: far inside any sensible WatchdogSec, and a frame loop at
#: 30 fps does not send 30 datagrams a second.
PET_INTERVAL_S = 1.0


class Notifier:
    """Sends notify messages to ``address`` (default: ``$NOTIFY_SOCKET``); never raises."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.enabled = bool(address)
        # "@name" is a socket in the abstract namespace (a leading NUL byte)
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._last_pet: float | None = None
        self._warned = False

    def notify(self, *lines: str) -> None:
        """Send one message of ``KEY=value`` lines (e.g. ``"READY=1", "STATUS=deciding"``)."""
        if not self.enabled:
            return
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto("\n".join(lines).encode(), self._address)
            except OSError as exc:
                # systemd will notice the silence (watchdog); say why once, then keep trying
                if not self._warned:
                    logger.warning("systemd notify to {} failed: {}", self._address, exc)
                    self._warned = True

    def pet(self, now: float | None = None) -> None:
        """``WATCHDOG=1``, at most once per :data:`PET_INTERVAL_S` (``now``: monotonic seconds)."""
        if not self.enabled:
            return
        now = time.monotonic() if now is None else now
        if self._last_pet is not None and now - self._last_pet < PET_INTERVAL_S:
            return
        self._last_pet = now
        self.notify("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
