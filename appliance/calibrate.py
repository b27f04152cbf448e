"""``python -m appliance calibrate``: how safe is the threshold for the people of this building?

From the enrolled gallery alone: each person's spread (their own faces' largest distance), their
nearest other person and the distance, and the look-alike pairs under threshold + margin. With
probe photos of enrolled people (one sub-folder per person, named by external id or name) and
photos of people who are not enrolled: the false accepts and genuine accepts over a range of
thresholds, and the setting with zero false accepts and the best genuine rate.

It only reports: it never changes a setting. :func:`report` is pure (embeddings in, report out);
:func:`embed_folder` is the I/O at the edge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from loguru import logger

from appliance import thresholds
from appliance.image_files import is_image_file
from appliance.store import GalleryRows

#: Fewer enrolled photos than this and a person is advised to enrol more: with 3 photos per
#: person, a strict threshold keeps strangers out at a far better genuine rate (README).
ADVISED_PHOTOS = 3
#: Two photos of one person further apart than this (dlib's own same-person limit) may not be
#: the same person.
SPREAD_LIMIT = 0.6


@dataclass
class CalibrationReport:
    threshold: float
    margin: float
    persons: list[dict]
    lookalikes: list[dict]
    sweep: list[dict] = field(default_factory=list)
    unmatched_probe_folders: list[str] = field(default_factory=list)
    recommended_threshold: float | None = None
    recommendation: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def report(
    rows: GalleryRows,
    *,
    threshold: float,
    margin: float,
    max_ratio: float = 1.0,
    background: np.ndarray | None = None,
    probes: dict[str, list[np.ndarray]] | None = None,
    strangers: list[np.ndarray] | None = None,
    grid: list[float] | None = None,
) -> CalibrationReport:
    """The calibration report of a gallery; ``probes`` maps a person id to probe embeddings."""
    faces = thresholds.group_faces(rows.person_ids, rows.embeddings)
    geometry = thresholds.gallery_geometry(faces)

    def name(pid: str | None) -> str | None:
        if pid is None:
            return None
        return (rows.persons.get(pid) or {}).get("name") or pid

    persons = [
        {
            "person_id": g.person_id,
            "name": name(g.person_id),
            "faces": g.faces,
            "spread": round(g.spread, 4),
            "nearest_person": name(g.nearest_id),
            "nearest_distance": None if g.nearest_id is None else round(g.nearest_distance, 4),
            "advice": _advice(g),
        }
        for g in geometry
    ]
    looks = [
        {"a": name(a), "b": name(b), "distance": round(d, 4)}
        for a, b, d in thresholds.lookalike_pairs(geometry, threshold + margin)
    ]
    rep = CalibrationReport(threshold, margin, persons, looks)
    nearest = [g.nearest_distance for g in geometry if g.nearest_id is not None]

    if probes is not None or strangers is not None:
        _sweep(rep, faces, probes or {}, list(strangers or []), margin, max_ratio, grid, background)
    elif nearest:
        limit = min(nearest) - margin
        rep.recommendation = (
            "give --probes and --strangers to measure false accepts; from the gallery alone: "
            f"the closest two enrolled people are {min(nearest):.2f} apart, so a threshold over "
            f"{limit:.2f} lets a photo of one be near enough to both to be refused as ambiguous"
        )
    else:
        rep.recommendation = "give --probes and --strangers to measure false accepts"
    return rep


def _sweep(
    rep: CalibrationReport,
    faces: dict[str, np.ndarray],
    probes: dict[str, list[np.ndarray]],
    strangers: list[np.ndarray],
    margin: float,
    max_ratio: float,
    grid: list[float] | None,
    background: np.ndarray | None = None,
) -> None:
    """Fill ``rep``'s sweep and recommendation from the probe and stranger photos."""
    order = list(faces)
    index = {pid: i for i, pid in enumerate(order)}

    def dist_matrix(embs: list[np.ndarray]) -> np.ndarray:
        if not embs:
            return np.zeros((0, len(order)))
        q = np.stack(embs).astype(np.float64)
        return np.stack([thresholds._pairwise(q, faces[pid]).min(axis=1) for pid in order], axis=1)

    gen_embs, truth = [], []
    for pid, embs in probes.items():
        gen_embs += embs
        truth += [index[pid]] * len(embs)
    gen_m, str_m = dist_matrix(gen_embs), dist_matrix(strangers)
    gen, strg = thresholds.decisions(gen_m), thresholds.decisions(str_m)
    dim = next(iter(faces.values())).shape[1]
    gen_bg = thresholds.background_distances(np.reshape(gen_embs, (-1, dim)), background)
    str_bg = thresholds.background_distances(np.reshape(strangers, (-1, dim)), background)
    off = max_ratio >= 1.0  # with a background the ratio can pass 1
    also = (
        off | (thresholds.cohort_ratio(gen_m, background=gen_bg) <= max_ratio),
        off | (thresholds.cohort_ratio(str_m, background=str_bg) <= max_ratio),
    )
    rows_ = thresholds.sweep(
        gen, np.asarray(truth), strg, margin, grid or thresholds.default_grid(), also
    )
    rep.sweep = [r.as_dict() for r in rows_]
    best = thresholds.best_safe(rows_)
    if best is None:
        rep.recommendation = (
            "no threshold in the range keeps false accepts at zero on these photos: "
            "enrol better photos, remove look-alike pairs, or do not rely on dlib alone"
        )
        return
    rep.recommended_threshold = best.threshold
    n_str = best.strangers
    rep.recommendation = (
        f"threshold {best.threshold:.2f}: 0 false accepts on {best.genuine} genuine and "
        f"{n_str} stranger photo(s), {100 * best.tar:.0f}% of genuine photos accepted"
        + (
            " (no stranger photos given: false accepts counted between enrolled people "
            "only; add --strangers)"
            if not n_str
            else ""
        )
    )


def _advice(g: thresholds.PersonGeometry) -> str:
    notes = []
    if g.faces < ADVISED_PHOTOS:
        notes.append(f"enrol {ADVISED_PHOTOS - g.faces} more photo(s)")
    if g.spread > SPREAD_LIMIT:
        notes.append("check that every photo is this person")
    return "; ".join(notes)


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder``, sub-folders included, in sorted order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))


def embed_folder(engine, folder: Path) -> list[np.ndarray]:
    """The largest face of each photo under ``folder`` (photos without a face are skipped)."""
    from appliance.enroll import PhotoRefused, load_photo

    out = []
    for path in image_files(folder):
        try:
            rgb = load_photo(path.read_bytes(), str(path))
        except (OSError, PhotoRefused) as exc:
            logger.warning("calibrate: skipped {}: {}", path, exc)
            continue
        boxes = engine.detect(rgb, upsample=1, max_side=1024)
        if not boxes:
            logger.warning("calibrate: no face in {}", path)
            continue
        box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        out.append(engine.encode(rgb, [box])[0])
    return out


def probe_folders(rows: GalleryRows, root: Path) -> tuple[dict[str, Path], list[str]]:
    """Sub-folders of ``root`` matched to persons by external id, else by name."""
    by_key: dict[str, str] = {}
    for pid, p in rows.persons.items():
        if p.get("name"):
            by_key.setdefault(str(p["name"]), pid)
    for pid, p in rows.persons.items():
        if p.get("external_id"):
            by_key[str(p["external_id"])] = pid
    matched, unmatched = {}, []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        pid = by_key.get(d.name)
        if pid is None:
            unmatched.append(d.name)
        else:
            matched[pid] = d
    return matched, unmatched
