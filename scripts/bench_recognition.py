#!/usr/bin/env python3
"""Recognition on labelled faces: does the door keep strangers out, and let its people in?

Each SET is a folder with one sub-folder per identity. Identities are split (sorted, every
second one) into enrolled and never-enrolled people; the enrolled ones go through the real
enrolment (``appliance.enroll.enrol``, look-alike refusal included) with their first
``--enrol-photos`` photos, into a temporary store. Every other photo is a probe:

- single photos: genuine accepts, accepts as the wrong enrolled person, strangers accepted, at the
  operating point (settings' threshold and margin) and over a range of thresholds; the genuine
  rate (TAR) at zero false accepts;
- sequences: consecutive photos of one person fed, 4 at a time, to the door's vote (2 of 4, with
  the margin) as the frames of an approach: doors opened for the right person, the wrong one, or
  for a stranger;
- the strong single vote (``--strong``, settings' ``strong_match_threshold`` by default): a
  single photo accepted on its own at that stricter distance (with the margin and cohort ratio),
  since the door grants a live face on one such encoding; and the approach replayed with it;
- per group when the set has a ``groups.csv`` (identity,group), and per photo condition when
  the file names are conditions shared by the identities (Yale: leftlight, glasses, ...).

Strategies compared: one global threshold, and per-person thresholds from the gallery geometry
(``appliance.thresholds.person_thresholds``). Photos smaller than ``--min-side`` are upscaled
first (old academic sets are 92x112; a door camera sees the face larger).

    python scripts/bench_recognition.py /work/data/faces/yale /work/data/faces/orl ...

The face engine is the one the settings describe (``FACEGATE_DETECTOR=blazeface`` detects the
enrolment and probe photos with BlazeFace; probe embeddings are cached per detector).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np
from bench_common import REPO, fixtures_root, table, write_results
from loguru import logger
from PIL import Image

from appliance import store, thresholds
from appliance.enroll import enrol, load_photo
from appliance.faces import MODEL_NAME, FaceEngine
from appliance.image_files import is_image_file
from appliance.match import Gallery, Match, background_cohort
from appliance.settings import load_settings
from appliance.startup import make_engine
from appliance.vote import vote

CACHE = Path.home() / ".cache" / "facegate" / "bench_recognition"


def identities(root: Path) -> dict[str, list[Path]]:
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.iterdir() if is_image_file(f) or not f.suffix)
        files = [f for f in files if f.is_file()]
        if files:
            out[d.name] = files
    return out


def photo_bytes(path: Path, min_side: int) -> bytes:
    """The photo as bytes, upscaled (PNG) when its shorter side is under ``min_side``."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        if min(im.size) >= min_side and im.format in ("JPEG", "PNG"):
            return data
        scale = max(1.0, min_side / min(im.size))
        rgb = im.convert("RGB").resize(
            (round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC
        )
    buf = io.BytesIO()
    rgb.save(buf, "PNG")
    return buf.getvalue()


def probe_embedding(engine: FaceEngine, data: bytes) -> np.ndarray | None:
    """As the door sees a face: the largest face found, encoded; None when no face."""
    rgb = load_photo(data, "probe")
    boxes = engine.detect(rgb, upsample=1, max_side=1024)
    if not boxes:
        return None
    box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    return engine.encode(rgb, [box])[0]


def cached_embeddings(engine, files: list[Path], min_side: int) -> dict[Path, np.ndarray | None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    out = {}
    kind = engine.cfg.kind
    for f in files:
        # HOG's entries keep the key they had before the detector was a setting
        tag = f"{f.resolve()}|{f.stat().st_size}|{min_side}" + ("" if kind == "hog" else f"|{kind}")
        key = hashlib.sha1(tag.encode()).hexdigest()
        cf = CACHE / f"{key}.npy"
        if cf.exists():
            arr = np.load(cf)
            out[f] = arr if arr.size else None
            continue
        emb = probe_embedding(engine, photo_bytes(f, min_side))
        np.save(cf, emb if emb is not None else np.zeros(0, dtype=np.float32))
        out[f] = emb
    return out


def read_groups(root: Path) -> dict[str, str]:
    path = root / "groups.csv"
    if not path.is_file():
        return {}
    with path.open() as fh:
        return {r[0]: r[1] for r in csv.reader(fh) if len(r) >= 2 and r[0] != "identity"}


def condition_of(path: Path, ids: dict[str, list[Path]]) -> str | None:
    """A photo's condition when the set names photos by condition (shared non-numeric stems)."""
    stem = path.stem
    if stem.isdigit() or stem.startswith("img"):
        return None
    shared = sum(any(f.stem == stem for f in files) for files in ids.values())
    return stem if shared >= 2 else None


def run_set(root: Path, engine: FaceEngine, args, enrol_engine: FaceEngine | None = None) -> dict:
    ids = identities(root)
    names = list(ids)
    enrolled = names[0 :: args.every]
    strangers = [n for n in names if n not in enrolled]
    settings = load_settings(data_dir=Path(tempfile.mkdtemp()) / "data")
    threshold = args.threshold if args.threshold is not None else settings.match_threshold
    margin = args.margin if args.margin is not None else settings.match_margin
    ratio = args.ratio if args.ratio is not None else settings.match_cohort_ratio
    use_bg = (
        settings.match_background_cohort if args.background is None else args.background == "on"
    )
    bg = background_cohort(use_bg)
    strong = args.strong if args.strong is not None else settings.strong_match_threshold
    update = {"match_threshold": threshold, "match_margin": margin}
    if args.min_sharpness is not None:  # upscaled academic photos are soft
        update["min_sharpness"] = args.min_sharpness
    settings = settings.model_copy(update=update)
    db = store.open_db(settings.db_path)

    # enrolment through the real path: one store, people in turn, look-alikes refused
    lookalike_refusals, other_refusals, enrolled_ok = [], [], []
    enrol_files: dict[str, list[Path]] = {}
    for name in enrolled:
        files = ids[name][: args.enrol_photos]
        enrol_files[name] = files
        res = enrol(
            db,
            enrol_engine or engine,
            settings,
            [(str(f), photo_bytes(f, args.min_side)) for f in files],
            name=name,
            external_id=name,
        )
        for r in res.results:
            if r.code == "matches_other_person":
                lookalike_refusals.append({"identity": name, "photo": r.source, "why": r.message})
            elif not r.accepted:
                other_refusals.append({"identity": name, "photo": r.source, "why": r.message})
        if res.enrolled:
            enrolled_ok.append(name)
    rows = store.load_gallery_rows(db, MODEL_NAME)
    db.conn.close()
    gallery = Gallery(rows)
    ext = {pid: p["external_id"] for pid, p in gallery.persons.items()}
    order = [ext[pid] for pid in gallery.person_ids_in_order]  # identity names, gallery order
    index = {n: i for i, n in enumerate(order)}
    if not order:
        raise SystemExit(f"{root}: nobody could be enrolled: {other_refusals[:3]}")
    geometry = thresholds.gallery_geometry(thresholds.group_faces(rows.person_ids, rows.embeddings))

    # probes: everything not used to enrol; people refused at enrolment are strangers here
    probe_files = {n: [f for f in ids[n] if f not in enrol_files.get(n, [])] for n in names}
    embs = cached_embeddings(engine, [f for fs in probe_files.values() for f in fs], args.min_side)
    no_face = sum(e is None for e in embs.values())

    def bg_matrix(kept: list[Path], background: np.ndarray | None = bg) -> np.ndarray:
        """Distances of the kept probes to the background cohort ((m, 0) when off)."""
        e = np.stack([embs[f] for f in kept]) if kept else np.zeros((0, 128))
        return thresholds.background_distances(e, background)

    def matrix(files: list[Path]) -> tuple[np.ndarray, list[Path]]:
        kept = [f for f in files if embs[f] is not None]
        if not kept:
            return np.zeros((0, len(order))), kept
        return np.stack([gallery.person_distances(embs[f]) for f in kept]), kept

    gen_rows, gen_truth, gen_files, str_rows, str_files = [], [], [], [], []
    for n in names:
        m, kept = matrix(probe_files[n])
        if n in index:
            gen_rows.append(m)
            gen_truth += [index[n]] * len(kept)
            gen_files += kept
        else:
            str_rows.append(m)
            str_files += kept
    P = len(order)
    gen = thresholds.decisions(np.vstack(gen_rows) if gen_rows else np.zeros((0, P)))
    strg = thresholds.decisions(np.vstack(str_rows) if str_rows else np.zeros((0, P)))
    truth = np.asarray(gen_truth, dtype=np.int64)

    gen_m = np.vstack(gen_rows) if gen_rows else np.zeros((0, P))
    str_m = np.vstack(str_rows) if str_rows else np.zeros((0, P))
    gen_bg, str_bg = bg_matrix(gen_files), bg_matrix(str_files)

    def cohort_ok_at(r: float, with_bg: bool = True) -> tuple[np.ndarray, np.ndarray]:
        gb, sb = (gen_bg, str_bg) if with_bg else (None, None)
        if r >= 1.0:  # off (with a background the ratio can pass 1)
            return np.ones(len(gen_m), bool), np.ones(len(str_m), bool)
        return (
            thresholds.cohort_ratio(gen_m, background=gb) <= r,
            thresholds.cohort_ratio(str_m, background=sb) <= r,
        )

    cohort_ok = cohort_ok_at(ratio)
    grid = thresholds.default_grid()
    sweep = thresholds.sweep(gen, truth, strg, margin, grid, cohort_ok)
    safe = thresholds.best_safe(sweep)
    op = thresholds.evaluate(gen, truth, strg, threshold, margin, threshold, also=cohort_ok)

    # per-person thresholds from the gallery geometry, at the same base threshold
    strategies = {
        f"default (cohort {ratio})": op,
        f"cohort {ratio}, no background": thresholds.evaluate(
            gen, truth, strg, threshold, margin, threshold, also=cohort_ok_at(ratio, False)
        ),
        "threshold only": thresholds.evaluate(gen, truth, strg, threshold, margin, threshold),
    }
    pp_thresholds = {}
    for factor in args.factors:
        per = thresholds.person_thresholds(geometry, threshold, factor=factor)
        vec = np.array([per[pid] for pid in gallery.person_ids_in_order])
        pp_thresholds[factor] = vec
        strategies[f"per-person x{factor}"] = thresholds.evaluate(
            gen, truth, strg, vec, margin, threshold
        )
    # the strong single vote: one photo decides alone at the stricter distance (margin, cohort)
    strong_name = f"strong single vote <= {strong} (cohort {ratio})"
    if strong > 0:
        strategies[strong_name] = thresholds.evaluate(
            gen, truth, strg, strong, margin, strong, also=cohort_ok
        )
    # cohort normalisation: the other enrolled people are the cohort (single photos only)
    for r_try in args.cohort:
        strategies[f"cohort ratio {r_try}"] = thresholds.evaluate(
            gen,
            truth,
            strg,
            threshold,
            margin,
            threshold,
            also=cohort_ok_at(r_try),
        )

    # the door's decision over an approach: windows of 4 consecutive photos through the vote
    def door(
        files: list[Path],
        thr: np.ndarray | float,
        max_ratio: float,
        with_bg: bool,
        strong: float = 0.0,
    ) -> list[str | None]:
        m, kept = matrix(files)
        if not len(kept):
            return []
        dec = thresholds.decisions(m)
        ratios = thresholds.cohort_ratio(m, background=bg_matrix(kept) if with_bg else None)
        acc_t = np.asarray(thr, dtype=np.float64)
        matches = []
        for i in range(len(kept)):
            b = int(dec.best[i])
            t = float(acc_t[b]) if acc_t.ndim == 1 else float(acc_t)
            dist, mar = float(dec.distance[i]), float(dec.margin[i])
            ok = dist <= t and (max_ratio >= 1.0 or ratios[i] <= max_ratio)
            matches.append(Match(order[b] if ok else None, dist, mar, order[b], float(ratios[i])))
        out = []
        for start in range(0, max(1, len(matches) - 3)):
            window = matches[start : start + 4]
            res = vote(window, needed=2, window=4, margin=margin, strong=strong)
            out.append(res.person_id)
        return out

    def sequences(thr, max_ratio: float = 1.0, with_bg: bool = True, strong: float = 0.0) -> dict:
        s = {"genuine": 0, "granted_right": 0, "granted_wrong": 0, "strangers": 0, "stranger_in": 0}
        for n in names:
            for who in door(probe_files[n], thr, max_ratio, with_bg, strong):
                if n in index:
                    s["genuine"] += 1
                    s["granted_right"] += who == n
                    s["granted_wrong"] += who is not None and who != n
                else:
                    s["strangers"] += 1
                    s["stranger_in"] += who is not None
        return s

    seq = {
        f"default (cohort {ratio})": sequences(threshold, ratio),
        f"cohort {ratio}, no background": sequences(threshold, ratio, with_bg=False),
        "threshold only": sequences(threshold),
    }
    if strong > 0:
        seq[strong_name] = sequences(threshold, ratio, strong=strong)
    for factor, vec in pp_thresholds.items():
        seq[f"per-person x{factor}"] = sequences(vec)
    for r_try in args.cohort:
        seq[f"cohort ratio {r_try}"] = sequences(threshold, r_try)

    # per group / condition at the operating point
    labels = read_groups(root)
    breakdown: dict[str, dict[str, int]] = {}
    ga = thresholds.accepted(gen, threshold, margin) & cohort_ok[0]
    sa = thresholds.accepted(strg, threshold, margin) & cohort_ok[1]

    def key_of(f: Path) -> str | None:
        ident = f.parent.name
        if labels:
            return labels.get(ident)
        return condition_of(f, ids)

    for i, f in enumerate(gen_files):
        k = key_of(f)
        if k is None:
            continue
        b = breakdown.setdefault(k, {"genuine": 0, "accepted": 0, "strangers": 0, "false": 0})
        b["genuine"] += 1
        b["accepted"] += bool(ga[i] and gen.best[i] == truth[i])
        b["false"] += bool(ga[i] and gen.best[i] != truth[i])
    for i, f in enumerate(str_files):
        k = key_of(f)
        if k is None:
            continue
        b = breakdown.setdefault(k, {"genuine": 0, "accepted": 0, "strangers": 0, "false": 0})
        b["strangers"] += 1
        b["false"] += bool(sa[i])

    # the closest strangers: who they were taken for, at what distance and margin
    near = np.argsort(strg.distance)[:5] if len(strg.distance) else []
    str_ratio = thresholds.cohort_ratio(str_m, background=str_bg)
    closest = [
        {
            "stranger": str_files[i].parent.name + "/" + str_files[i].name,
            "taken_for": order[int(strg.best[i])],
            "distance": round(float(strg.distance[i]), 3),
            "margin": round(float(strg.margin[i]), 3),
            "ratio": round(float(str_ratio[i]), 3),
        }
        for i in near
    ]
    let_in = [
        {
            "stranger": str_files[i].parent.name + "/" + str_files[i].name,
            "taken_for": order[int(strg.best[i])],
            "distance": round(float(strg.distance[i]), 3),
            "ratio": round(float(str_ratio[i]), 3),
        }
        for i in np.flatnonzero(sa)
    ]
    return {
        "set": str(root),
        "detector": engine.cfg.kind,
        "enrol_detector": (enrol_engine or engine).cfg.kind,
        "identities": len(names),
        "enrolled": enrolled,
        "enrolled_ok": len(enrolled_ok),
        "strangers": strangers,
        "photos": sum(len(v) for v in ids.values()),
        "probes_without_face": no_face,
        "threshold": threshold,
        "margin": margin,
        "cohort_ratio": ratio,
        "background_cohort": int(bg.shape[0]) if bg is not None else 0,
        "strong_threshold": strong,
        "lookalike_refusals": lookalike_refusals,
        "other_refusals": other_refusals,
        "operating_point": op.as_dict(),
        "strategies": {k: v.as_dict() for k, v in strategies.items()},
        "zero_far": safe.as_dict() if safe else None,
        "sweep": [r.as_dict() for r in sweep],
        "sequences": seq,
        "breakdown": breakdown,
        "closest_strangers": closest,
        "strangers_let_in": let_in,
        "geometry": [
            {
                "identity": ext[g.person_id],
                "faces": g.faces,
                "nearest": ext.get(g.nearest_id) if g.nearest_id else None,
                "distance": round(g.nearest_distance, 3),
            }
            for g in geometry
        ],
    }


def pct(a: int, n: int) -> str:
    return f"{a}/{n} ({100 * a / n:.0f}%)" if n else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="*", type=Path, help="labelled folders (default: fixtures)")
    ap.add_argument("--every", type=int, default=2, help="enrol every N-th identity (2)")
    ap.add_argument("--enrol-photos", type=int, default=1, help="photos enrolled per person (1)")
    ap.add_argument("--threshold", type=float, help="operating threshold (settings' default)")
    ap.add_argument("--margin", type=float, help="margin (settings' default)")
    ap.add_argument("--ratio", type=float, help="cohort ratio limit (settings' default; 1 = off)")
    ap.add_argument(
        "--background", choices=["on", "off"], help="background cohort (settings' default)"
    )
    ap.add_argument("--min-side", type=int, default=400, help="upscale photos smaller than this")
    ap.add_argument(
        "--min-sharpness", type=float, help="enrolment sharpness floor (settings' default)"
    )
    ap.add_argument(
        "--factors", type=float, nargs="*", default=[], help="per-person threshold factors to try"
    )
    ap.add_argument(
        "--cohort", type=float, nargs="*", default=[], help="more cohort ratio limits to try"
    )
    ap.add_argument(
        "--strong", type=float, help="strong single-vote distance (settings' default; 0 = off)"
    )
    ap.add_argument(
        "--enrol-detector",
        choices=["hog", "blazeface"],
        help="detector for the enrolment photos (the settings' FACEGATE_DETECTOR)",
    )
    ap.add_argument("--name", default="bench_recognition", help="results file name")
    args = ap.parse_args()
    logger.remove()
    sets = args.sets or [fixtures_root() / "people"]
    settings = load_settings(data_dir=Path(tempfile.mkdtemp()) / "data")
    engine = make_engine(settings)
    enrol_engine = None
    if args.enrol_detector and args.enrol_detector != engine.cfg.kind:
        enrol_engine = make_engine(settings.model_copy(update={"detector": args.enrol_detector}))
    print(f"detector: {engine.cfg.kind}, enrolment: {(enrol_engine or engine).cfg.kind}")
    results = []
    for root in sets:
        print(f"== {root}")
        r = run_set(root, engine, args, enrol_engine)
        results.append(r)
        op, z = r["operating_point"], r["zero_far"]
        print(
            f"{r['identities']} identities ({len(r['enrolled'])} enrolled, "
            f"{len(r['strangers'])} strangers), {r['photos']} photos, "
            f"{r['probes_without_face']} probes without a face, "
            f"{len(r['lookalike_refusals'])} look-alike refusal(s) at enrolment"
        )
        rows = []
        for name, s in r["strategies"].items():
            q = r["sequences"].get(name)
            if q is None:  # the vote is only replayed for threshold strategies
                q = {"granted_right": 0, "genuine": 0, "granted_wrong": "-", "stranger_in": "-"}
                q["strangers"] = "-"
            rows.append(
                [
                    name,
                    pct(s["genuine_accepted"], s["genuine"]),
                    s["wrong_person"],
                    f"{s['stranger_accepts']}/{s['strangers']}",
                    pct(q["granted_right"], q["genuine"]),
                    q["granted_wrong"],
                    f"{q['stranger_in']}/{q['strangers']}",
                ]
            )
        print(
            table(
                rows,
                [
                    f"t={r['threshold']} m={r['margin']}",
                    "genuine accepted",
                    "wrong person",
                    "strangers in",
                    "door: right person",
                    "door: wrong",
                    "door: stranger",
                ],
            )
        )
        print(
            "zero false accepts up to threshold "
            + (f"{z['threshold']}: TAR {pct(z['genuine_accepted'], z['genuine'])}" if z else "none")
            + f"; at the operating point TAR {pct(op['genuine_accepted'], op['genuine'])}, "
            f"{op['false_accepts']} false accept(s)"
        )
        if r["breakdown"]:
            print(
                table(
                    [
                        [k, pct(b["accepted"], b["genuine"]), b["false"], b["strangers"]]
                        for k, b in sorted(r["breakdown"].items())
                    ],
                    ["group/condition", "genuine accepted", "false accepts", "stranger probes"],
                )
            )
        for c in r["closest_strangers"][:3]:
            print(
                f"  closest stranger {c['stranger']} -> {c['taken_for']} "
                f"d={c['distance']} margin={c['margin']}"
            )
    path = write_results(args.name, {"sets": results})
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
