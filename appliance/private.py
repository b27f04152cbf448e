"""Files that hold faces or secrets (snapshots, enrolment photos, the live frame, the log):
created owner-only (0600, folders 0700) whatever the process umask, so another user of the
machine never reads them, not even for the moment between creating and chmod-ing a file.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) owner-only if missing; an existing folder is left as is."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def open_private(path: str | os.PathLike, flags: int) -> int:
    """An ``opener`` for :func:`open` (and loguru's file sink) creating files as 0600."""
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # a file that existed before keeps its mode otherwise
    return fd


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` as 0600, atomically: readers see the old file or the new one."""
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", opener=open_private) as f:
        f.write(data)
    os.replace(tmp, path)
    return path
