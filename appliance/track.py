"""A small IoU tracker: one track per face in view, so each person is encoded once, not per frame.

Tracks carry what the vote and liveness need: recent matches, when the track was last encoded,
and what has already been logged for it (an unknown face is denied once per track).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from appliance.faces import Box
from appliance.match import Match
from appliance.vote import VoteResult


def iou(a: Box, b: Box) -> float:
    top, right = max(a[0], b[0]), min(a[1], b[1])
    bottom, left = min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    if inter == 0:
        return 0.0
    area_a = (a[1] - a[3]) * (a[2] - a[0])
    area_b = (b[1] - b[3]) * (b[2] - b[0])
    return inter / float(area_a + area_b - inter)


@dataclass
class Track:
    id: int
    box: Box
    first_seen: float
    last_seen: float
    matches: deque[Match] = field(default_factory=lambda: deque(maxlen=16))
    last_encoded: float | None = None
    #: the decision logged for this track: reason (denial) or "granted"; a new one is logged only
    #: when it changes, so a face in view does not flood the entry log
    logged: str | None = None
    granted_person: str | None = None
    voted_at: float | None = None  # when the vote first agreed (liveness timeout starts here)
    identity: str | None = None  # the person the track's recent encodings name
    voted: VoteResult | None = None  # the agreed vote, kept while the identity stays
    spoofed: bool = False  # liveness said "photo or screen": never granted
    challenge: str | None = None  # a liveness challenge asked of this face ("turn_head")
    challenge_shown: bool = False
    hits: int = 1

    def matches_before_identity(self) -> bool:
        """True when encodings that named nobody came before the first identity.

        Such frames were someone else's face (or a blur) — their motion is not evidence for the
        identity that now appears.
        """
        return any(m.person_id is None for m in list(self.matches)[:-1])


class Tracker:
    """Greedy IoU association of detections to tracks; tracks unseen for ``max_age`` s end.

    On a slow CPU frames come seconds apart at worst: a track also survives ``gaps_kept``
    typical gaps between the frames the tracker is given, so skipped frames do not end it.
    """

    def __init__(self, min_iou: float = 0.3, max_age: float = 1.0, gaps_kept: int = 3) -> None:
        self.min_iou = min_iou
        self.max_age = max_age
        self.gaps_kept = gaps_kept
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)
        self._last_t: float | None = None
        self._gap = 0.0  # smoothed time between frames

    def update(
        self, boxes: list[Box], t: float, *, create: bool = True
    ) -> tuple[list[tuple[Track, Box]], list[Track]]:
        """Associate this frame's boxes; return (track, box) pairs and the tracks that ended.

        Boxes found only by looking around known tracks (``create=False``) never start a track:
        two tracks re-finding the same face must not breed a third.
        """
        pairs = sorted(
            (
                (iou(tr.box, box), tid, bi)
                for tid, tr in self.tracks.items()
                for bi, box in enumerate(boxes)
            ),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        out: list[tuple[Track, Box]] = []
        for score, tid, bi in pairs:
            if score < self.min_iou:
                break
            if tid in used_tracks or bi in used_boxes:
                continue
            tr = self.tracks[tid]
            tr.box, tr.last_seen = boxes[bi], t
            tr.hits += 1
            used_tracks.add(tid)
            used_boxes.add(bi)
            out.append((tr, boxes[bi]))
        for bi, box in enumerate(boxes):
            if create and bi not in used_boxes:
                tr = Track(next(self._ids), box, t, t)
                self.tracks[tr.id] = tr
                out.append((tr, box))
        if self._last_t is not None and t > self._last_t:
            gap = t - self._last_t
            self._gap = gap if self._gap == 0.0 else 0.8 * self._gap + 0.2 * gap
        self._last_t = t
        max_age = max(self.max_age, self.gaps_kept * self._gap)
        ended = [tr for tr in self.tracks.values() if t - tr.last_seen > max_age]
        for tr in ended:
            del self.tracks[tr.id]
        return out, ended

    def active(self) -> list[Track]:
        return list(self.tracks.values())
