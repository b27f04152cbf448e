"""One kiosk per data folder: an exclusive lock taken when a kiosk starts, held until it stops.

Two kiosks on one data folder (a `make run` beside the service) would both decide and both drive
the relay. The kiosk takes the lock first of all, before it opens the door controller; `restore`
refuses, and `doctor` reads the camera from the status row instead of reopening it, while it is
held (:func:`check_free`). The lock is ``flock`` on ``<data folder>/kiosk.lock``; the kernel
releases it when the process ends, however it ends, so a crash never leaves a stale lock behind.
The file holds the holder's pid only so that the second kiosk can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_NAME = "kiosk.lock"


class DataFolderBusy(RuntimeError):
    """Another process holds the data folder's kiosk lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path, self.pid = path, pid
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"another kiosk ({holder}) is already running on the data folder {path.parent}; "
            f"stop it first (`systemctl stop facegate` or `kill {pid or '<pid>'}`) - two kiosks "
            "would both decide and both drive the relay"
        )


def _holder(handle: IO[str]) -> int | None:
    handle.seek(0)
    text = handle.read().strip()
    return int(text) if text.isdigit() else None


def acquire(data_dir: Path) -> IO[str]:
    """Take the data folder's kiosk lock or raise :class:`DataFolderBusy` at once (no waiting).

    Keep the returned handle open for as long as the kiosk runs; closing it (or the process
    ending) releases the lock.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    # "a+" neither truncates (the holder's pid stays readable) nor fails when missing
    handle = open(path, "a+", encoding="ascii")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(handle)
        handle.close()
        raise DataFolderBusy(path, pid) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def check_free(data_dir: Path) -> None:
    """Raise :class:`DataFolderBusy` (naming the holder) when a kiosk runs on ``data_dir``.

    For `restore` and `doctor`, which must know whether a kiosk is running; creates and changes
    nothing (a missing lock file means no kiosk ever ran here).
    """
    path = Path(data_dir) / LOCK_NAME
    try:
        handle = open(path, encoding="ascii")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with handle:
        try:  # shared: two probes never see each other; a kiosk's exclusive lock refuses it
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataFolderBusy(path, _holder(handle)) from None
