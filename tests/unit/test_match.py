"""Matching against the in-memory gallery: a pure function of embeddings."""

import numpy as np
import pytest

from appliance.match import Gallery
from appliance.store import GalleryRows


def _rows(per_person: dict[str, list[np.ndarray]]) -> GalleryRows:
    ids, embs = [], []
    for pid, vecs in per_person.items():
        for v in vecs:
            ids.append(pid)
            embs.append(v)
    arr = np.asarray(embs, np.float32) if embs else np.zeros((0, 128), np.float32)
    return GalleryRows(ids, arr, {pid: {"id": pid} for pid in per_person}, 7)


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def test_empty_gallery_matches_nobody():
    m = Gallery(_rows({})).match(_unit(1), 0.5)
    assert m.person_id is None and m.distance == float("inf")


def test_best_person_and_margin_to_second_person_not_second_face():
    a1, a2, b = _unit(1), _unit(2), _unit(3)
    probe = a1 * 0.9 + a2 * 0.1
    g = Gallery(_rows({"b": [b], "a": [a1, a2]}))
    m = g.match(probe, 1.5)
    assert m.person_id == "a"
    d_a = min(np.linalg.norm(probe - a1), np.linalg.norm(probe - a2))
    d_b = np.linalg.norm(probe - b)
    assert m.distance == pytest.approx(d_a, abs=1e-4)
    assert m.margin == pytest.approx(d_b - d_a, abs=1e-4)


def test_over_threshold_is_no_match_but_keeps_nearest():
    g = Gallery(_rows({"a": [_unit(1)]}))
    m = g.match(_unit(2), 0.3)
    assert m.person_id is None and m.best_person_id == "a"
    assert m.margin == float("inf")


def test_interleaved_rows_are_grouped_by_person():
    a, b = _unit(1), _unit(2)
    rows = GalleryRows(["a", "b", "a"], np.asarray([a, b, a * -1], np.float32), {}, 1)
    g = Gallery(rows)
    assert g.person_count == 2 and g.face_count == 3
    assert g.match(b, 0.1).person_id == "b"
    assert g.match(-a, 0.1).person_id == "a"
