"""How often to search the whole frame, from what a search costs on this machine right now.

A full-frame HOG pass is the one expensive step of a frame (about 0.1 s of a fast core at 640 px
with upsampling; on a Pi, or a share of a core, several times that). While a face is tracked it
is re-found every frame in a small window around its box, so the whole frame only has to be
searched for *new* faces. Searching it every few frames whatever it costs is what breaks on a
slow CPU: each pass is a long hole in the tracked face's frames, and the liveness check and the
vote starve. So while something is tracked, full passes are spaced so that they take at most
``duty`` of the wall time, measured on the passes themselves; with nothing tracked, the frame
count alone paces them (a face walking up is found as soon as possible).

Pure: the caller passes ``now`` (a monotonic clock) and the measured cost of each pass.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DetectCadence:
    """Decides, frame by frame, whether this frame gets a full-frame search."""

    every_frames: int  # at most one full pass per this many processed frames (setting)
    duty: float = 0.25  # while tracking: full passes take at most this share of the wall time
    max_interval_s: float = 1.5  # ... and still happen at least this often (new faces)
    cost_s: float = 0.0  # smoothed wall time of one full pass, measured
    _frames_since: int = 10**9
    _last_at: float | None = None

    def due(self, now: float, tracking: bool) -> bool:
        """True when this frame should search the whole frame; counts the frame."""
        self._frames_since += 1
        if self._frames_since < self.every_frames:
            return False
        if not tracking or self._last_at is None:
            return True
        since = now - self._last_at
        spacing = min(self.max_interval_s, self.cost_s * (1.0 - self.duty) / self.duty)
        return since >= spacing

    def done(self, started: float, finished: float) -> None:
        """Record a full pass that ran from ``started`` to ``finished`` (monotonic seconds)."""
        cost = max(0.0, finished - started)
        self.cost_s = cost if self.cost_s == 0.0 else 0.7 * self.cost_s + 0.3 * cost
        self._frames_since = 0
        self._last_at = finished


@dataclass
class Pace:
    """Spacing of a repeated check (re-encoding a face whose vote agreed) so that it takes at most
    ``duty`` of the wall time, from its own measured cost per face."""

    duty: float = 0.25
    cost_s: float = 0.0  # smoothed wall time per face

    @property
    def interval_s(self) -> float:
        return self.cost_s * (1.0 - self.duty) / self.duty

    def done(self, started: float, finished: float, faces: int = 1) -> None:
        cost = max(0.0, finished - started) / max(1, faces)
        self.cost_s = cost if self.cost_s == 0.0 else 0.7 * self.cost_s + 0.3 * cost


def encode_due(
    since_ms: float | None,
    *,
    pending: bool,
    paced: bool,
    live: bool,
    pending_ms: float,
    paced_ms: float,
    decided_ms: float,
) -> bool:
    """Whether a tracked face is encoded on this frame; ``since_ms`` since its last encoding.

    Never encoded: now. Decided (``pending`` False): every ``decided_ms``. Deciding: every
    ``pending_ms``, the votes come first. Once its vote agreed and it waits for liveness
    (``paced``), the liveness frames (cheap) matter more than more encodings (a face's worth of
    CPU each): these are spaced to ``paced_ms`` (:class:`Pace`), but the frame that would let the
    face in (``live``) is always encoded, so the face let in is the one voted for (not a photo
    dropped to show a live face behind it).
    """
    if since_ms is None:
        return True
    if not pending:
        return since_ms >= decided_ms
    if since_ms < pending_ms:
        return False
    return not paced or live or since_ms >= paced_ms
