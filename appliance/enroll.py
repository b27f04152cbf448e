"""Enrolment: turn photos into stored face embeddings, refusing anything not clearly one face.

Used by the CLI and the admin API alike. Every photo is checked on its own: a real image within
the size limits, exactly one face, large and sharp enough. Accepted photos of one call are stored
together with the person in one transaction; a call in which no photo is accepted stores nothing.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlite_utils
from loguru import logger
from PIL import Image, UnidentifiedImageError

from appliance import store
from appliance.boxes import box_height
from appliance.faces import MODEL_NAME, FaceEngine, sharpness
from appliance.private import write_private
from appliance.settings import Settings

#: Faces smaller than this (pixels, box height) are refused at enrolment: a gallery built from
#: small faces matches poorly. Live frames accept smaller faces (FACEGATE_MIN_FACE_PX).
ENROL_MIN_FACE_PX = 80
#: Pillow refuses to decode images above this many pixels (decompression bombs).
MAX_IMAGE_PIXELS = 40_000_000
#: Photos are searched for faces at most this large (speed); encoding uses the full photo.
DETECT_MAX_SIDE = 1024

REFUSAL_MESSAGES = {
    "not_an_image": "not a readable image",
    "too_large": "file is larger than the upload limit",
    "decompression_bomb": "image has too many pixels (possible decompression bomb)",
    "no_face": "no face found",
    "several_faces": "more than one face found",
    "face_too_small": "face is too small",
    "face_too_blurry": "face is too blurred",
    "matches_other_person": "face matches another enrolled person",
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

    existing = None
    if person_id:
        existing = store.get_person(db, person_id)
    elif external_id:
        existing = store.find_person_by_external_id(db, external_id)
    if accepted:
        accepted = _refuse_lookalikes(db, settings, accepted, existing)
    if not accepted:
        return EnrolResult(existing["id"] if existing else None, False, results)
    if existing is None and not name:
        raise ValueError("a name is needed to enrol a new person")

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
    logger.bind(person_id=pid).info(
        "enrolled {} face(s) for person {} ({} refused)",
        len(accepted),
        pid,
        len(results) - len(accepted),
    )
    return EnrolResult(pid, created, results)
