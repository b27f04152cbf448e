"""Threshold choice from gallery geometry and probe sweeps, on hand-made embeddings."""

from __future__ import annotations

import numpy as np

from appliance import thresholds
from appliance.calibrate import report
from appliance.store import GalleryRows


def _rows(points: dict[str, list[list[float]]]) -> GalleryRows:
    ids, emb = [], []
    for pid, faces in points.items():
        for f in faces:
            ids.append(pid)
            emb.append(f)
    persons = {pid: {"id": pid, "name": pid.upper(), "external_id": pid} for pid in points}
    return GalleryRows(ids, np.asarray(emb, dtype=np.float32), persons, 1)


# three people on a line: a and b are look-alikes (0.5 apart), c is far away
ROWS = _rows({"a": [[0, 0], [0.2, 0]], "b": [[0.7, 0]], "c": [[5, 0]]})


def test_geometry_names_the_nearest_person_and_the_lookalike_pair():
    geo = {
        g.person_id: g
        for g in thresholds.gallery_geometry(
            thresholds.group_faces(ROWS.person_ids, ROWS.embeddings)
        )
    }
    assert geo["a"].nearest_id == "b" and abs(geo["a"].nearest_distance - 0.5) < 1e-6
    assert abs(geo["a"].spread - 0.2) < 1e-6 and geo["b"].spread == 0.0
    assert geo["c"].nearest_id == "b"
    pairs = thresholds.lookalike_pairs(list(geo.values()), 0.55 + 0.08)
    assert [(a, b) for a, b, _ in pairs] == [("a", "b")]


def test_per_person_threshold_is_stricter_only_for_crowded_people():
    geo = thresholds.gallery_geometry(thresholds.group_faces(ROWS.person_ids, ROWS.embeddings))
    per = thresholds.person_thresholds(geo, 0.55, factor=0.8)
    assert abs(per["a"] - 0.4) < 1e-6 and abs(per["b"] - 0.4) < 1e-6
    assert per["c"] == 0.55


def test_sweep_recommends_the_threshold_that_keeps_strangers_out():
    # genuine probes of a at 0.1 and 0.3; a stranger at 0.35 from c (and far from the rest)
    probes = {"a": [np.array([0.1, 0.0]), np.array([-0.3, 0.0])]}
    strangers = [np.array([5.0, 0.35])]
    rep = report(ROWS, threshold=0.55, margin=0.08, probes=probes, strangers=strangers)
    assert rep.recommended_threshold == 0.34  # 0.35 would let the stranger in as C
    by_t = {r["threshold"]: r for r in rep.sweep}
    assert by_t[0.55]["stranger_accepts"] == 1 and by_t[0.34]["false_accepts"] == 0
    assert by_t[0.34]["genuine_accepted"] == 2
    assert rep.lookalikes == [{"a": "A", "b": "B", "distance": 0.5}]


def test_advice_asks_for_more_photos_and_flags_a_wide_spread():
    rows = _rows({"a": [[0, 0], [0.7, 0], [0.1, 0]], "b": [[5, 0]]})
    rep = report(rows, threshold=0.55, margin=0.08)
    advice = {p["person_id"]: p["advice"] for p in rep.persons}
    assert advice["a"] == "check that every photo is this person"
    assert advice["b"] == "enrol 2 more photo(s)"


def test_no_safe_threshold_is_said_plainly():
    probes = {"a": [np.array([0.1, 0.0])]}
    strangers = [np.array([5.0, 0.0])]  # on c's only face: accepted at any threshold
    rep = report(ROWS, threshold=0.55, margin=0.08, probes=probes, strangers=strangers)
    assert rep.recommended_threshold is None
    assert "no threshold" in rep.recommendation


def test_cohort_ratio_is_low_only_when_one_person_stands_out():
    lone = [0.4, 0.9, 1.0, 1.1]  # close to one person, far from the rest
    crowded = [0.4, 0.45, 0.5, 0.5]  # close to everyone: a stranger in a dense region
    r = thresholds.cohort_ratio(np.array([lone, crowded]), k=3)
    assert r[0] < 0.45 < 0.8 < r[1]


def test_gallery_match_refuses_a_face_near_many_people_with_the_cohort_ratio():
    from appliance.match import Gallery

    # seven people on a ring of radius 0.6 around the origin
    angles = np.arange(7) * 2 * np.pi / 7
    gallery = Gallery(
        _rows({f"p{i}": [[0.6 * np.cos(a), 0.6 * np.sin(a)]] for i, a in enumerate(angles)})
    )
    crowded = np.array([0.1, 0.0])  # 0.5 from p0, 0.54-0.7 from the others: near everyone
    m = gallery.match(crowded, 0.55, max_ratio=0.7)
    assert m.best_person_id == "p0" and m.person_id is None and m.ratio > 0.7
    assert gallery.match(crowded, 0.55).person_id == "p0"  # ratio off: let in as p0
    close = np.array([0.55, 0.0])  # right on p0, far from the rest
    assert gallery.match(close, 0.55, max_ratio=0.7).person_id == "p0"


def test_background_cohort_makes_the_ratio_mean_the_same_in_a_two_person_gallery():
    from appliance.match import Gallery

    # two people 1.0 apart; a genuine face 0.5 from p0 is 0.5/0.5 = 1.0 of the one "other"
    rows = _rows({"p0": [[0.0, 0.0]], "p1": [[1.0, 0.0]]})
    face = np.array([0.5, 0.0])
    assert Gallery(rows).match(face, 0.55, max_ratio=0.7).person_id is None
    # five people not enrolled, far on the other side: p0 stands out from a real cohort
    background = np.array([[-1.5, y] for y in (-1.0, -0.5, 0.0, 0.5, 1.0)], dtype=np.float32)
    m = Gallery(rows, background).match(face, 0.55, max_ratio=0.7)
    assert m.person_id == "p0" and m.ratio < 0.7


def test_background_cohort_refuses_a_face_near_many_strangers_with_one_person_enrolled():
    from appliance.match import Gallery

    rows = _rows({"p0": [[0.0, 0.0]]})
    crowded = np.array([0.3, 0.3])  # 0.42 from p0, as close to five people nobody enrolled
    angles = np.arange(5) * 2 * np.pi / 5
    background = crowded + 0.45 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert Gallery(rows).match(crowded, 0.55, max_ratio=0.7).person_id == "p0"  # no cohort
    m = Gallery(rows, background.astype(np.float32)).match(crowded, 0.55, max_ratio=0.7)
    assert m.best_person_id == "p0" and m.person_id is None and m.ratio > 0.7
    # 1 still turns the ratio off, though a background can push it past 1
    assert Gallery(rows, background.astype(np.float32)).match(crowded, 0.55).person_id == "p0"


def test_bench_cohort_ratio_with_background_is_the_doors():
    from appliance.match import Gallery

    rng = np.random.default_rng(3)
    pts = rng.normal(size=(9, 2)).astype(np.float32)
    rows = _rows({f"p{i}": [p.tolist()] for i, p in enumerate(pts)})
    background = rng.normal(size=(6, 2)).astype(np.float32)
    gallery = Gallery(rows, background)
    probes = rng.normal(size=(20, 2)).astype(np.float32)
    per_person = np.stack([gallery.person_distances(q) for q in probes])
    bg = thresholds.background_distances(probes, background)
    expected = thresholds.cohort_ratio(per_person, background=bg)
    got = [gallery.match(q, 0.55, max_ratio=0.7).ratio for q in probes]
    assert np.allclose(got, expected, atol=1e-5)


def test_calibrate_counts_with_the_background_cohort_as_the_door_does():
    probes = {"a": [np.array([0.1, 0.0]), np.array([-0.3, 0.0])]}
    stranger = np.array([5.0, 0.35])  # 0.35 from C, and as near five people not enrolled
    angles = np.arange(5) * 2 * np.pi / 5
    background = stranger + 0.4 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    kwargs = dict(threshold=0.55, margin=0.08, max_ratio=0.7, probes=probes, strangers=[stranger])
    alone = report(ROWS, **kwargs)
    assert alone.recommended_threshold == 0.34  # C's one other is far: the ratio lets it in
    rep = report(ROWS, background=background.astype(np.float32), **kwargs)
    by_t = {r["threshold"]: r for r in rep.sweep}
    assert by_t[0.55]["false_accepts"] == 0 and by_t[0.55]["genuine_accepted"] == 2
