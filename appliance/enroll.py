"""Enrolment: turn photos into stored face embeddings, refusing anything not clearly one face.

Used by the CLI and the admin API alike (and through the API by the console and its bulk
enrolment), so that enrolment behaves the same everywhere:

- Every photo is checked on its own: a real image within the size limits, exactly one face, large
  and sharp enough, not someone else's face.
- The same photo twice (same bytes, or an embedding practically identical to one the person
  already has, as a re-saved or resized copy gives) is skipped with a note, never stored again:
  enrolling the same folder twice changes nothing.
- Accepted photos of one call are stored together with the person in one transaction; a call in
  which no photo is accepted stores nothing, so nobody is left with no face because every photo
  was refused (callers that create the person first remove it again: see
  :func:`keep_new_person`).
- One verdict per call (:func:`verdict`) and one exit code per verdict (:data:`EXIT_CODES`).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sqlite_utils
from loguru import logger
from PIL import Image, UnidentifiedImageError

from appliance import store
from appliance.boxes import box_height
from appliance.private import write_private
from appliance.settings import Settings

if TYPE_CHECKING:
    from appliance.faces import FaceEngine

# appliance.faces loads the face models at import: it is imported where a face is analysed, so
# that the API and the console can use this module's rules without loading them.

#: Faces smaller than this (pixels, box height) are refused at enrolment: a gallery built from
#: small faces matches poorly. Live frames accept smaller faces (FACEGATE_MIN_FACE_PX).
ENROL_MIN_FACE_PX = 80
#: Pillow refuses to decode images above this many pixels (decompression bombs).
MAX_IMAGE_PIXELS = 40_000_000
#: Photos are searched for faces at most this large (speed); encoding uses the full photo.
DETECT_MAX_SIDE = 1024
#: Two faces closer than this are the same photo (a re-saved or resized copy measures up to about
#: 0.1; two different photos of one person 0.33 or more on the fixtures: bench_duplicates.py).
DUPLICATE_DISTANCE = 0.15
#: A photo skipped because the person already has it: not a refusal.
DUPLICATE = "duplicate"

#: What one enrolment call came to, and the exit code the CLI gives for it (documented in the
#: README): every photo accepted (or already enrolled), none accepted, some refused.
ALL_ACCEPTED, NONE_ACCEPTED, SOME_REFUSED = "all_accepted", "none_accepted", "some_refused"
EXIT_CODES = {ALL_ACCEPTED: 0, NONE_ACCEPTED: 1, SOME_REFUSED: 3}

REFUSAL_MESSAGES = {
    "not_an_image": "not a readable image",
    "too_large": "file is larger than the upload limit",
    "decompression_bomb": "image has too many pixels (possible decompression bomb)",
    "no_face": "no face found",
    "several_faces": "more than one face found",
    "face_too_small": "face is too small",
    "face_too_blurry": "face is too blurred",
    "matches_other_person": "face matches another enrolled person",
    DUPLICATE: "already enrolled for this person, skipped",
}


class PhotoRefused(ValueError):
    """A photo that cannot be enrolled; ``code`` is one of REFUSAL_MESSAGES' keys."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(REFUSAL_MESSAGES[code] + (f" ({detail})" if detail else ""))


@dataclass
class PhotoResult:
    source: str
    accepted: bool
    code: str | None = None
    message: str = ""
    face_id: str | None = None
    quality: float | None = None

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "accepted": self.accepted,
            "code": self.code,
            "message": self.message,
            "face_id": self.face_id,
            "quality": self.quality,
        }


@dataclass
class EnrolResult:
    person_id: str | None
    created: bool
    results: list[PhotoResult] = field(default_factory=list)

    @property
    def enrolled(self) -> int:
        return sum(r.accepted for r in self.results)

    @property
    def verdict(self) -> str:
        return verdict(self.results)


def verdict(results: Sequence[PhotoResult]) -> str:
    """ALL_ACCEPTED, NONE_ACCEPTED or SOME_REFUSED for one call's photo results.

    A photo the person already had counts as accepted: enrolling a folder again is a success.
    """
    refused = sum(1 for r in results if not r.accepted and r.code != DUPLICATE)
    if not refused:
        return ALL_ACCEPTED if results else NONE_ACCEPTED
    return NONE_ACCEPTED if refused == len(results) else SOME_REFUSED


def keep_new_person(created_here: bool, results: Sequence[PhotoResult]) -> bool:
    """Whether a person created just for these photos stays: not if no face came of them."""
    return not created_here or any(r.accepted or r.code == DUPLICATE for r in results)


def _skip(res: PhotoResult, detail: str) -> None:
    res.accepted, res.code, res.quality = False, DUPLICATE, None
    res.message = str(PhotoRefused(DUPLICATE, detail))
    logger.info("enrolment skipped {}: {}", res.source, res.message)


def _skip_duplicates(
    db: sqlite_utils.Database,
    accepted: list[tuple[PhotoResult, np.ndarray, bytes]],
    existing: dict | None,
) -> list[tuple[PhotoResult, np.ndarray, bytes]]:
    """Drop photos the person already has, or that this call already holds, with a note."""
    from appliance.faces import MODEL_NAME

    known: list[tuple[np.ndarray, str]] = []
    if existing is not None:
        for row in db.query(
            "SELECT embedding FROM faces WHERE person_id = ? AND model = ?",
            [existing["id"], MODEL_NAME],
        ):
            known.append((store.blob_to_embedding(row["embedding"]), "an enrolled face"))
    seen: dict[str, str] = {}
    kept = []
    for res, embedding, data in accepted:
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            _skip(res, f"same file as {Path(seen[digest]).name}")
            continue
        close = [w for v, w in known if float(np.linalg.norm(v - embedding)) < DUPLICATE_DISTANCE]
        if close:
            _skip(res, f"practically identical to {close[0]}")
            continue
        seen[digest] = res.source
        known.append((embedding, Path(res.source).name))
        kept.append((res, embedding, data))
    return kept


def load_photo(data: bytes, source: str, max_bytes: int | None = None) -> np.ndarray:
    """Decode an upload or file into an RGB array, refusing non-images and decompression bombs."""
    if max_bytes is not None and len(data) > max_bytes:
        raise PhotoRefused("too_large", f"{len(data)} bytes > {max_bytes}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        old_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_IMAGE_PIXELS:
                    raise PhotoRefused("decompression_bomb", f"{im.width}x{im.height}")
                im.load()  # a truncated file fails here, not later
                rgb = im.convert("RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoRefused("decompression_bomb") from exc
        except UnidentifiedImageError as exc:
            raise PhotoRefused("not_an_image", "unknown image format") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise PhotoRefused("not_an_image", f"damaged or truncated: {exc}"[:160]) from exc
        finally:
            Image.MAX_IMAGE_PIXELS = old_limit
    return np.asarray(rgb)


def analyse_photo(
    engine: FaceEngine, rgb: np.ndarray, settings: Settings
) -> tuple[np.ndarray, float]:
    """Return (embedding, sharpness) of the one face in ``rgb``, or raise PhotoRefused."""
    from appliance.faces import sharpness

    # Upsampling once finds small background faces too, so a group photo is not enrolled.
    boxes = engine.detect(rgb, upsample=1, max_side=DETECT_MAX_SIDE)
    if not boxes:
        raise PhotoRefused("no_face")
    if len(boxes) > 1:
        raise PhotoRefused("several_faces", f"{len(boxes)} faces")
    box = boxes[0]
    size = box_height(box)
    if size < ENROL_MIN_FACE_PX:
        raise PhotoRefused("face_too_small", f"{size:.0f} px < {ENROL_MIN_FACE_PX} px")
    sharp = sharpness(rgb, box)
    if sharp < settings.min_sharpness:
        raise PhotoRefused("face_too_blurry", f"sharpness {sharp:.0f} < {settings.min_sharpness}")
    (embedding,) = engine.encode(rgb, [box])
    return embedding, sharp


def _refuse_lookalikes(
    db: sqlite_utils.Database,
    settings: Settings,
    accepted: list[tuple[PhotoResult, np.ndarray, bytes]],
    existing: dict | None,
) -> list[tuple[PhotoResult, np.ndarray, bytes]]:
    """Refuse faces that already match someone else under the threshold.

    Two people in the gallery with one face would each block the other at the door (the vote
    needs a margin to the next person), and it usually means the same person was enrolled twice.
    """
    from appliance.faces import MODEL_NAME
    from appliance.match import Gallery

    gallery = Gallery(store.load_gallery_rows(db, MODEL_NAME))
    own = existing["id"] if existing else None
    kept = []
    for res, embedding, data in accepted:
        if gallery.face_count:
            for pid, dist in zip(
                gallery.person_ids_in_order, gallery.person_distances(embedding), strict=True
            ):
                if pid != own and dist < settings.match_threshold:
                    other = gallery.persons.get(pid, {}).get("name") or pid
                    res.accepted, res.code = False, "matches_other_person"
                    res.message = str(
                        PhotoRefused("matches_other_person", f"{other}, distance {dist:.2f}")
                    )
                    res.quality = None
                    logger.info("enrolment refused {}: {}", res.source, res.message)
                    break
        if res.accepted:
            kept.append((res, embedding, data))
    return kept


def enrol(
    db: sqlite_utils.Database,
    engine: FaceEngine,
    settings: Settings,
    photos: Sequence[tuple[str, bytes]],
    *,
    name: str | None = None,
    external_id: str | None = None,
    person_id: str | None = None,
    actor: str = "cli",
) -> EnrolResult:
    """Enrol ``photos`` ((source name, bytes) pairs) for a new or existing person.

    The person is ``person_id`` if given, else the one with ``external_id`` if it exists, else a
    new person called ``name``. Nothing is written when no photo is accepted.
    """
    results, accepted = _check_photos(engine, settings, photos)
    existing = None
    if person_id:
        existing = store.get_person(db, person_id)
    elif external_id:
        existing = store.find_person_by_external_id(db, external_id)
    if accepted:
        accepted = _skip_duplicates(db, accepted, existing)
    if accepted:
        accepted = _refuse_lookalikes(db, settings, accepted, existing)
    if not accepted:
        return EnrolResult(existing["id"] if existing else None, False, results)
    if existing is None and not name:
        raise ValueError("a name is needed to enrol a new person")
    pid, created = _store_faces(db, settings, accepted, existing, name, external_id, actor)
    logger.bind(person_id=pid).info(
        "enrolled {} face(s) for person {} ({} refused)",
        len(accepted),
        pid,
        len(results) - len(accepted),
    )
    return EnrolResult(pid, created, results)


def _check_photos(
    engine: FaceEngine, settings: Settings, photos: Sequence[tuple[str, bytes]]
) -> tuple[list[PhotoResult], list[tuple[PhotoResult, np.ndarray, bytes]]]:
    """Every photo's result, and the accepted ones with their embedding and bytes."""
    max_bytes = int(settings.api_max_upload_mb * 1024 * 1024)
    results: list[PhotoResult] = []
    accepted: list[tuple[PhotoResult, np.ndarray, bytes]] = []
    for source, data in photos:
        try:
            rgb = load_photo(data, source, max_bytes)
            embedding, quality = analyse_photo(engine, rgb, settings)
        except PhotoRefused as exc:
            logger.info("enrolment refused {}: {}", source, exc)
            results.append(PhotoResult(source, False, exc.code, str(exc)))
            continue
        res = PhotoResult(source, True, None, "accepted", quality=round(quality, 1))
        results.append(res)
        accepted.append((res, embedding, data))
    return results, accepted


def _store_faces(
    db: sqlite_utils.Database,
    settings: Settings,
    accepted: list[tuple[PhotoResult, np.ndarray, bytes]],
    existing: dict | None,
    name: str | None,
    external_id: str | None,
    actor: str,
) -> tuple[str, bool]:
    """Store the person (if new) and the accepted faces in one transaction: (person id, created).

    Photos written before a failure are removed again.
    """
    from appliance.faces import MODEL_NAME

    written_photos: list[Path] = []
    try:
        with db.conn:
            if existing is None:
                pid = store.create_person(db, name, external_id=external_id)
                created = True
            else:
                pid = existing["id"]
                created = False
                db.execute(
                    "UPDATE persons SET dirty = 1, updated_at = ? WHERE id = ?",
                    [store.to_iso(store.utc_now()), pid],
                )
            for res, embedding, data in accepted:
                face_id = store.new_id()
                photo_path = None
                if settings.store_enrol_photos:
                    path = settings.photo_dir / f"{face_id}{Path(res.source).suffix or '.jpg'}"
                    write_private(path, data)
                    written_photos.append(path)
                    photo_path = str(path)
                res.face_id = store.add_face(
                    db,
                    pid,
                    embedding,
                    model=MODEL_NAME,
                    quality=res.quality,
                    photo_path=photo_path,
                    face_id=face_id,
                )
            store.audit(
                db,
                actor,
                "enrol",
                pid,
                {"faces": [r.face_id for r, _, _ in accepted], "created": created},
            )
    except Exception:
        for path in written_photos:
            path.unlink(missing_ok=True)
        raise
    return pid, created
