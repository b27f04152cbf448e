"""1:N matching: one matrix product of a probe against the in-memory gallery.

The gallery is a float32 (n, 128) matrix of every enrolled face, sorted by person, rebuilt only
when the store's gallery version changes. A query returns the best person (by their closest face),
the distance, and the margin to the second-best *person* (not face), the quantity the vote needs.

The cohort ratio compares the best distance with the mean distance to the next 5 people. A
gallery of two people has one "next" person, so a fixed background cohort (dlib embeddings of
people who are not enrolled, appliance/data/background_cohort.npy, built by
scripts/build_background_cohort.py) can join the other enrolled people as candidates: the ratio
then means the same thing whatever the size of the gallery.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

BACKGROUND_COHORT_PATH = Path(__file__).resolve().parent / "data" / "background_cohort.npy"
COHORT_SIZE = 5  # people in the cohort the best distance is compared with


def load_background_cohort(path: Path = BACKGROUND_COHORT_PATH) -> np.ndarray:
    """The shipped background cohort, an (m, 128) float32 array; a clear error when unusable."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"background cohort {path} cannot be read: {exc}") from exc
    if arr.ndim != 2 or arr.shape[1] != 128 or not np.isfinite(arr).all():
        raise ValueError(f"background cohort {path}: need finite (m, 128) embeddings, {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


@functools.cache
def _shipped_background() -> np.ndarray:
    return load_background_cohort()


def background_cohort(enabled: bool) -> np.ndarray | None:
    """The shipped background cohort when ``enabled`` (FACEGATE_MATCH_BACKGROUND_COHORT), read
    once per process; pass it to :class:`Gallery`."""
    return _shipped_background() if enabled else None


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
    ratio: float = 0.0  # distance over the mean distance to the next 5 people (0: no cohort)


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

    def __init__(self, rows: GalleryRows, background: np.ndarray | None = None) -> None:
        """``background``: (m, 128) embeddings of people not enrolled, extra cohort candidates."""
        self.version = rows.version
        bg = np.zeros((0, 128), np.float32) if background is None else background
        self._bg = np.ascontiguousarray(bg, dtype=np.float32)
        self._bg_sq = np.einsum("ij,ij->i", self._bg, self._bg)
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

    @property
    def background_size(self) -> int:
        return int(self._bg.shape[0])

    def background_distances(self, embedding: np.ndarray) -> np.ndarray:
        """Distance from the probe to each background-cohort face (empty without a cohort)."""
        q = np.asarray(embedding, dtype=np.float32).reshape(-1)
        d2 = self._bg_sq - 2.0 * (self._bg @ q) + float(q @ q)
        return np.sqrt(np.maximum(d2, 0.0))

    def match(self, embedding: np.ndarray, threshold: float, max_ratio: float = 1.0) -> Match:
        """The best person under ``threshold``, with the margin to the runner-up person.

        ``max_ratio`` (cohort normalisation, see appliance/thresholds.py): the best distance
        must also be at most this fraction of the mean distance to the 5 nearest of the other
        enrolled people and the background cohort; a stranger in a crowded part of dlib's space
        is near many people at once. 1 turns it off.
        """
        if self.face_count == 0:
            return Match(None, float("inf"), float("inf"), None)
        per_person = self.person_distances(embedding)
        if per_person.shape[0] == 1:
            best, dist, margin = 0, float(per_person[0]), float("inf")
            others = per_person[:0]
        else:
            # the best person and the next five, in one O(persons) pass
            k = min(COHORT_SIZE + 1, per_person.shape[0])
            idx = np.argpartition(per_person, k - 1)[:k]
            idx = idx[np.argsort(per_person[idx])]
            best = int(idx[0])
            dist = float(per_person[best])
            margin = float(per_person[idx[1]] - dist)
            others = per_person[idx[1:]]
        if self._bg.shape[0]:
            # at most 5 + m candidates: the background costs one (m, 128) product per query
            others = np.concatenate([others, self.background_distances(embedding)])
            if others.shape[0] > COHORT_SIZE:
                others = np.partition(others, COHORT_SIZE - 1)[:COHORT_SIZE]
        ratio = 0.0
        if others.shape[0]:
            cohort = float(others.mean())
            ratio = dist / cohort if cohort > 0 else 1.0
        best_id = self._person_of_group[best]
        # with a background cohort the ratio can pass 1 (nearer to strangers); 1 is still off
        ok = dist <= threshold and (max_ratio >= 1.0 or ratio <= max_ratio)
        return Match(best_id if ok else None, dist, margin, best_id, ratio)
