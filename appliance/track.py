"""A small IoU tracker: one track per face in view, so each person is encoded once, not per frame.

Tracks carry where the face is, when it was last encoded, and its decision state (recent matches,
identity, what has been logged for it: appliance/track_decision.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from appliance.boxes import Box, box_height, iou
from appliance.track_decision import TrackState


@dataclass
class Track:
    """One face in view: where it is, when it was last encoded, and its decision state."""

    id: int
    box: Box
    first_seen: float
    last_seen: float
    last_encoded: float | None = None
    state: TrackState = field(init=False)  # see appliance/track_decision.py

    def __post_init__(self) -> None:
        self.state = TrackState(first_seen=self.first_seen)


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
        self,
        boxes: list[Box],
        t: float,
        *,
        create: bool = True,
        owners: list[int] | None = None,
    ) -> tuple[list[tuple[Track, Box]], list[Track]]:
        """Associate this frame's boxes; return (track, box) pairs and the tracks that ended.

        Boxes found only by looking around known tracks (``create=False``) never start a track:
        two tracks re-finding the same face must not breed a third. ``owners`` (parallel to
        ``boxes``) names the track each box was searched for. A face that moved too far for IoU
        between two frames a slow CPU processed 0.3-0.5 s apart stays its track while it is
        :func:`nearby` (a full pass's box: the nearest track left without one; a box searched
        for a track: only that track), instead of starting a second track on the same face.
        """
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        out: list[tuple[Track, Box]] = []
        by_overlap = sorted(
            (
                (iou(tr.box, box), tid, bi)
                for tid, tr in self.tracks.items()
                for bi, box in enumerate(boxes)
            ),
            reverse=True,
        )
        self._claim(
            [(-s, tid, bi) for s, tid, bi in by_overlap if s >= self.min_iou],
            boxes,
            t,
            used_tracks,
            used_boxes,
            out,
        )
        # then faces that moved too far for IoU between two frames far apart but are still
        # :func:`nearby`: a box searched for a track (``owners``) only for that track, a box of a
        # full pass for the nearest track left without a box
        far = []
        for bi, box in enumerate(boxes):
            if bi in used_boxes:
                continue
            for tid in [owners[bi]] if owners else list(self.tracks):
                tr = self.tracks.get(tid)
                if tr is not None and tid not in used_tracks and nearby(tr.box, box):
                    far.append((_centre_distance(tr.box, box), tid, bi))
        self._claim(sorted(far), boxes, t, used_tracks, used_boxes, out)
        for bi, box in enumerate(boxes):
            if create and bi not in used_boxes:
                tr = Track(next(self._ids), box, t, t)
                self.tracks[tr.id] = tr
                out.append((tr, box))
        return out, self._end_stale(t)

    def _claim(self, ranked, boxes, t, used_tracks, used_boxes, out) -> None:
        """Give boxes to tracks best first (``ranked``: (cost, track id, box index)), one each."""
        for _, tid, bi in ranked:
            if tid in used_tracks or bi in used_boxes:
                continue
            tr = self.tracks[tid]
            tr.box, tr.last_seen = boxes[bi], t
            used_tracks.add(tid)
            used_boxes.add(bi)
            out.append((tr, boxes[bi]))

    def _end_stale(self, t: float) -> list[Track]:
        """End the tracks unseen for longer than max_age (stretched by the typical frame gap)."""
        if self._last_t is not None and t > self._last_t:
            gap = t - self._last_t
            self._gap = gap if self._gap == 0.0 else 0.8 * self._gap + 0.2 * gap
        self._last_t = t
        max_age = max(self.max_age, self.gaps_kept * self._gap)
        ended = [tr for tr in self.tracks.values() if t - tr.last_seen > max_age]
        for tr in ended:
            del self.tracks[tr.id]
        return ended

    def active(self) -> list[Track]:
        return list(self.tracks.values())


def nearby(old: Box, new: Box) -> bool:
    """The same face re-found after a long gap: its centre moved at most one face height and its
    size changed by less than half (what detect_near's window around ``old`` can return)."""
    h_old, h_new = max(1, box_height(old)), max(1, box_height(new))
    return 2 / 3 <= h_new / h_old <= 1.5 and _centre_distance(old, new) <= h_old


def _centre_distance(a: Box, b: Box) -> float:
    dy = (a[0] + a[2] - b[0] - b[2]) / 2
    dx = (a[1] + a[3] - b[1] - b[3]) / 2
    return (dy * dy + dx * dx) ** 0.5
