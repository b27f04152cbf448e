"""1:N matching: one matrix product of a probe against the in-memory gallery.

The gallery is a float32 (n, 128) matrix of every enrolled face, sorted by person, rebuilt only
when the store's gallery version changes. A query returns the best person (by their closest face),
the distance, and the margin to the second-best *person* (not face), the quantity the vote needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits


def use_one_blas_thread() -> None:
    """Match on one BLAS thread: a 100k x 128 product is memory-bound, and BLAS threads that
    fight the camera and encoder threads for 2-4 cores turn a 2 ms query into a 15 ms p95."""
    threadpool_limits(limits=1, user_api="blas")


@dataclass(frozen=True)
class Match:
    person_id: str | None  # None: nobody under the threshold
    distance: float  # distance to the best person's closest face (inf on an empty gallery)
    margin: float  # second-best person's distance minus the best (inf with one person)
    best_person_id: str | None  # the nearest person even when over the threshold
    ratio: float = 0.0  # distance over the mean distance to the next (up to 5) people


@dataclass(frozen=True)
class GalleryRows:
    """Everything the matcher and the policy need, read from the store in one go."""

    person_ids: list[str]  # one per face row
    embeddings: np.ndarray  # (n, 128) float32
    persons: dict[str, dict[str, Any]]  # person id -> person row (with schedule windows)
    version: int

    @classmethod
    def empty(cls) -> GalleryRows:
        """No one enrolled (the pipeline's gallery until the store has been read)."""
        return cls([], np.zeros((0, 128), np.float32), {}, -1)


class Gallery:
    """An immutable snapshot of enrolled faces; build a new one when the version changes."""

    def __init__(self, rows: GalleryRows) -> None:
        self.version = rows.version
        self.persons: dict[str, dict[str, Any]] = rows.persons
        ids = np.asarray(rows.person_ids)
        order = np.argsort(ids, kind="stable")
        self._emb = np.ascontiguousarray(rows.embeddings[order], dtype=np.float32)
        self._sq = np.einsum("ij,ij->i", self._emb, self._emb)
        sorted_ids = ids[order]
        if len(sorted_ids):
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        else:
            starts = np.zeros(0, dtype=np.int64)
        self._starts = starts
        self._person_of_group = [str(sorted_ids[i]) for i in starts]

    @property
    def person_ids_in_order(self) -> list[str]:
        """Person ids in the order of :meth:`person_distances`."""
        return self._person_of_group

    @property
    def face_count(self) -> int:
        return int(self._emb.shape[0])

    @property
    def person_count(self) -> int:
        return len(self._person_of_group)

    def person_distances(self, embedding: np.ndarray) -> np.ndarray:
        """Distance from the probe to each person's closest face (order of ``_person_of_group``)."""
        q = np.asarray(embedding, dtype=np.float32).reshape(-1)
        # |g - q|^2 = |g|^2 - 2 g.q + |q|^2, computed in place over the n faces; the constant
        # |q|^2, the clip and the root only touch the per-person minima
        d2 = self._emb @ q
        d2 *= -2.0
        d2 += self._sq
        per_person = np.minimum.reduceat(d2, self._starts)
        per_person += float(q @ q)
        np.maximum(per_person, 0.0, out=per_person)
        return np.sqrt(per_person, out=per_person)

    def match(self, embedding: np.ndarray, threshold: float, max_ratio: float = 1.0) -> Match:
        """The best person under ``threshold``, with the margin to the runner-up person.

        ``max_ratio`` (cohort normalisation, see appliance/thresholds.py): the best distance
        must also be at most this fraction of the mean distance to the next 5 people; a stranger
        in a crowded part of dlib's space is near many people at once. 1 turns it off.
        """
        if self.face_count == 0:
            return Match(None, float("inf"), float("inf"), None)
        per_person = self.person_distances(embedding)
        ratio = 0.0
        if per_person.shape[0] == 1:
            best, dist, margin = 0, float(per_person[0]), float("inf")
        else:
            # the best person and the next five, in one O(persons) pass
            k = min(6, per_person.shape[0])
            idx = np.argpartition(per_person, k - 1)[:k]
            idx = idx[np.argsort(per_person[idx])]
            best = int(idx[0])
            dist = float(per_person[best])
            margin = float(per_person[idx[1]] - dist)
            cohort = float(per_person[idx[1:]].mean())
            ratio = dist / cohort if cohort > 0 else 1.0
        best_id = self._person_of_group[best]
        ok = dist <= threshold and ratio <= max_ratio
        return Match(best_id if ok else None, dist, margin, best_id, ratio)
