"""Who may enter, kept current: a new gallery is read on the housekeeper's thread when the store's
gallery version moves, and swapped into the pipeline by the frame loop between two frames.

When the store changed but cannot be re-read for :data:`GALLERY_STALE_S`, the feed says the
gallery is stale: a revoked person would still be in the old one, so nobody is let in.
"""

from __future__ import annotations

import threading
import time

from loguru import logger

from appliance import store
from appliance.faces import MODEL_NAME
from appliance.match import Gallery, background_cohort
from appliance.pipeline import Pipeline

#: The store changed but could not be re-read for this long: stop letting anyone in, because
#: a revoked person would still be in the old gallery.
GALLERY_STALE_S = 10.0


class GalleryFeed:
    """Loads galleries from the store (any thread) and hands them to one pipeline."""

    def __init__(self, pipeline: Pipeline, background: bool = True) -> None:
        self._pipeline = pipeline
        self._background = background  # FACEGATE_MATCH_BACKGROUND_COHORT
        self._next: Gallery | None = None
        self._lock = threading.Lock()
        self._error_since: float | None = None

    def load(self, db, force: bool = False) -> None:
        """Read the gallery when its version moved (or ``force``); raises when unreadable."""
        version = store.gallery_version(db)
        current = self._next or self._pipeline.gallery
        if not force and version == current.version:
            return
        gallery = Gallery(
            store.load_gallery_rows(db, MODEL_NAME),
            background_cohort(self._background),
        )
        with self._lock:
            self._next = gallery

    def refresh(self, db) -> None:
        """:meth:`load`, remembering since when it fails; the pipeline keeps the last gallery."""
        try:
            self.load(db)
        except Exception:
            self.mark_unreadable()
            logger.exception("gallery reload failed; the door keeps the last one for now")
        else:
            self._error_since = None

    def mark_unreadable(self) -> None:
        """The store could not be read at all (not even opened): the staleness clock starts."""
        if self._error_since is None:
            self._error_since = time.monotonic()

    def swap(self) -> None:
        """On the frame loop's thread: put the newest loaded gallery into the pipeline."""
        with self._lock:
            nxt, self._next = self._next, None
        if nxt is not None:
            self._pipeline.set_gallery(nxt)

    def hold_reason(self, now: float) -> str | None:
        """``"gallery_stale"`` once the store was unreadable for GALLERY_STALE_S (monotonic)."""
        since = self._error_since
        return "gallery_stale" if since is not None and now - since >= GALLERY_STALE_S else None
