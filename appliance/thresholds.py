"""Where to put the match threshold: gallery geometry, per-person thresholds, threshold sweeps.

Pure functions over embeddings and distance matrices, shared by ``python -m appliance calibrate``
and ``scripts/bench_recognition.py``. Nothing here reads settings or writes anything.

dlib's 128-d embedding does not separate every group of people equally well: on studio photos of
some groups, strangers sit at 0.37-0.5 from one enrolled person, under the usual 0.6 (and the
product's former 0.55). What protects the door is a threshold chosen on the faces of the building,
a margin to the runner-up, and a stricter threshold for a person whose nearest enrolled
neighbour is close (a dense part of the embedding space is where strangers land too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d2 = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def group_faces(person_ids: Sequence[str], embeddings: np.ndarray) -> dict[str, np.ndarray]:
    """Each person's faces as one (k, d) array, persons in sorted order."""
    ids = np.asarray(person_ids)
    emb = np.asarray(embeddings, dtype=np.float32)
    return {str(p): emb[ids == p] for p in sorted(set(ids.tolist()))}


@dataclass(frozen=True)
class PersonGeometry:
    person_id: str
    faces: int
    spread: float  # largest distance between two of the person's own faces (0 with one face)
    nearest_id: str | None  # the closest other person (by their closest pair of faces)
    nearest_distance: float  # inf when alone in the gallery


def gallery_geometry(faces: dict[str, np.ndarray]) -> list[PersonGeometry]:
    """Per person: the spread of their own faces and the nearest other person."""
    ids = list(faces)
    out = []
    for i, pid in enumerate(ids):
        own = faces[pid]
        spread = float(_pairwise(own, own).max()) if len(own) > 1 else 0.0
        best_id, best = None, float("inf")
        for j, other in enumerate(ids):
            if i == j:
                continue
            d = float(_pairwise(own, faces[other]).min())
            if d < best:
                best_id, best = other, d
        out.append(PersonGeometry(pid, len(own), spread, best_id, best))
    return out


def lookalike_pairs(geometry: list[PersonGeometry], limit: float) -> list[tuple[str, str, float]]:
    """Pairs of persons whose closest faces are under ``limit`` (threshold + margin), closest
    first, each pair once: the door may refuse both as ambiguous, or open for the wrong one."""
    seen, out = set(), []
    for g in geometry:
        if g.nearest_id is None or g.nearest_distance >= limit:
            continue
        key = tuple(sorted((g.person_id, g.nearest_id)))
        if key not in seen:
            seen.add(key)
            out.append((key[0], key[1], g.nearest_distance))
    return sorted(out, key=lambda x: x[2])


def person_thresholds(
    geometry: list[PersonGeometry], base: float, *, factor: float, floor: float = 0.3
) -> dict[str, float]:
    """A threshold per person: ``base``, lowered to ``factor`` x the distance to the nearest other
    enrolled person when that is closer (never under ``floor``)."""
    out = {}
    for g in geometry:
        t = base
        if np.isfinite(g.nearest_distance):
            t = min(base, max(floor, factor * g.nearest_distance))
        out[g.person_id] = t
    return out


@dataclass(frozen=True)
class Decisions:
    """Accept/refuse of each probe against a gallery (persons in ``person_ids`` order)."""

    best: np.ndarray  # index of the nearest person per probe
    distance: np.ndarray  # distance to that person
    margin: np.ndarray  # runner-up person's distance minus the best (inf with one person)


def decisions(per_person: np.ndarray) -> Decisions:
    """From an (m probes, P persons) distance matrix: nearest person, distance and margin."""
    d = np.asarray(per_person, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] == 0:
        raise ValueError("need a (probes, persons) matrix with at least one person")
    order = np.argsort(d, axis=1)
    rows = np.arange(d.shape[0])
    best = order[:, 0]
    dist = d[rows, best]
    margin = d[rows, order[:, 1]] - dist if d.shape[1] > 1 else np.full(len(d), np.inf)
    return Decisions(best, dist, margin)


def accepted(dec: Decisions, thresholds: np.ndarray | float, margin: float) -> np.ndarray:
    """Which probes the door would accept (as their nearest person). ``thresholds`` is one value
    or one per person (gallery order)."""
    t = np.asarray(thresholds, dtype=np.float64)
    per_probe = t[dec.best] if t.ndim == 1 else t
    return (dec.distance <= per_probe) & (dec.margin >= margin)


def cohort_ratio(
    per_person: np.ndarray, k: int = 5, background: np.ndarray | None = None
) -> np.ndarray:
    """Score normalisation against a cohort: the best distance over the mean distance to the
    ``k`` nearest of the other enrolled people and (when given, an (m probes, B) matrix) the
    background cohort. A stranger in a crowded part of the embedding space is close to many
    people, so a low ratio means "close to this one person only". 0 when there is no cohort."""
    d = np.sort(np.asarray(per_person, dtype=np.float64), axis=1)
    others = d[:, 1 : 1 + k]
    if background is not None and np.asarray(background).shape[1]:
        others = np.sort(np.hstack([others, np.asarray(background, dtype=np.float64)]), axis=1)
        others = others[:, :k]
    if d.shape[1] == 0 or others.shape[1] == 0:
        return np.zeros(d.shape[0])
    return d[:, 0] / others.mean(axis=1)


def background_distances(embeddings: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """(m probes, B) distances to the background cohort ((m, 0) without one)."""
    emb = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
    if background is None or not len(background):
        return np.zeros((emb.shape[0] if emb.size else 0, 0))
    return _pairwise(emb, background)


@dataclass(frozen=True)
class SweepRow:
    threshold: float
    genuine_accepted: int  # genuine probes accepted as themselves
    genuine: int
    wrong_person: int  # genuine probes accepted as another enrolled person
    stranger_accepts: int  # probes of never-enrolled people accepted as someone
    strangers: int

    @property
    def false_accepts(self) -> int:
        return self.wrong_person + self.stranger_accepts

    @property
    def tar(self) -> float:
        return self.genuine_accepted / self.genuine if self.genuine else float("nan")

    @property
    def far(self) -> float:
        n = self.genuine + self.strangers
        return self.false_accepts / n if n else float("nan")

    def as_dict(self) -> dict:
        return {
            "threshold": round(self.threshold, 3),
            "genuine_accepted": self.genuine_accepted,
            "genuine": self.genuine,
            "tar": round(self.tar, 4) if self.genuine else None,
            "wrong_person": self.wrong_person,
            "stranger_accepts": self.stranger_accepts,
            "strangers": self.strangers,
            "false_accepts": self.false_accepts,
        }


def evaluate(
    genuine: Decisions,
    genuine_truth: np.ndarray,
    strangers: Decisions,
    thresholds: np.ndarray | float,
    margin: float,
    label: float,
    *,
    also: tuple[np.ndarray, np.ndarray] | None = None,
) -> SweepRow:
    """Count accepts at one setting. ``genuine_truth`` is each genuine probe's person index;
    ``also`` is an extra (genuine, strangers) boolean condition for acceptance."""
    ga = accepted(genuine, thresholds, margin)
    right = genuine.best == np.asarray(genuine_truth)
    sa = accepted(strangers, thresholds, margin)
    if also is not None:
        ga, sa = ga & also[0], sa & also[1]
    return SweepRow(
        label,
        int((ga & right).sum()),
        len(genuine.best),
        int((ga & ~right).sum()),
        int(sa.sum()),
        len(strangers.best),
    )


def sweep(
    genuine: Decisions,
    genuine_truth: np.ndarray,
    strangers: Decisions,
    margin: float,
    grid: Sequence[float],
    also: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[SweepRow]:
    """One row per global threshold of ``grid`` (``also``: see :func:`evaluate`)."""
    return [evaluate(genuine, genuine_truth, strangers, t, margin, t, also=also) for t in grid]


def best_safe(rows: Sequence[SweepRow]) -> SweepRow | None:
    """The setting with zero false accepts and the best genuine rate (the highest such threshold
    on ties: more room for a bad frame). None when no setting has zero false accepts."""
    safe = [r for r in rows if r.false_accepts == 0]
    if not safe:
        return None
    return max(safe, key=lambda r: (r.genuine_accepted, r.threshold))


def default_grid(lo: float = 0.30, hi: float = 0.62, step: float = 0.01) -> list[float]:
    n = int(round((hi - lo) / step))
    return [round(lo + i * step, 3) for i in range(n + 1)]
