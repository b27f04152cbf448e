"""Faces: enrol photos for a person (multipart upload, per-file results), list and delete them.

The checks are enrolment's own (appliance.enroll): a real image within the limits, exactly one
usable face. The whole request is refused with 413 from its Content-Length before it is read.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from admin_api.auth import actor, viewer_allowed
from admin_api.errors import ApiError, bad_request, not_found
from admin_api.models import Deleted, EnrolResult, Face, FaceList, dump
from admin_api.openapi import doc
from admin_api.routes.people import load_person
from admin_api.state import db, state
from appliance import store
from appliance.enroll import DUPLICATE

bp = Blueprint("faces", __name__)

#: Most photos accepted in one upload (each costs about a second of face detection).
MAX_PHOTOS = 20
FACE_CODES = {"no_face", "several_faces", "face_too_small", "face_too_blurry"}
SIZE_CODES = {"too_large", "decompression_bomb"}
PHOTOS = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["photos"],
            "properties": {
                "photos": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_PHOTOS,
                    "items": {"type": "string", "format": "binary"},
                }
            },
        }
    }
}


def refusal_status(codes: set[str]) -> tuple[int, str, str]:
    """The status for an upload in which no photo was accepted, from the refusal codes."""
    if codes <= {"not_an_image"}:
        return 415, "not_an_image", "no uploaded file is a readable image"
    if codes <= SIZE_CODES:
        return 413, "image_too_large", "every uploaded image is too large"
    if codes <= {"matches_other_person"}:
        return 409, "matches_other_person", "the face already belongs to another enrolled person"
    return 422, "no_usable_face", "no uploaded photo shows exactly one usable face"


@bp.get("/people/<person_id>/faces")
@viewer_allowed
@doc("List a person's faces", "faces", FaceList, errors=(404,))
def list_faces(person_id: str) -> Response:
    load_person(person_id)
    return jsonify({"items": [dump(Face, f) for f in store.list_faces(db(), person_id)]})


@bp.post("/people/<person_id>/faces")
@doc(
    "Enrol photos (multipart, field 'photos', repeatable); per-file results",
    "faces",
    EnrolResult,
    status=201,
    body=PHOTOS,
    errors=(404, 409, 413, 415, 422),
    description="At least one photo enrolled; per-file results",
    also={
        200: (
            "Nothing new: the person already has these photos (code 'duplicate'); per-file results",
            EnrolResult,
        )
    },
)
def enrol_faces(person_id: str) -> tuple[Response, int]:
    load_person(person_id)
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise bad_request("upload the photos as multipart/form-data in fields named 'photos'")
    files = [f for f in request.files.getlist("photos") if f]
    if not files:
        raise bad_request("no photos: send one or more files in fields named 'photos'")
    if len(files) > MAX_PHOTOS:
        raise bad_request(f"at most {MAX_PHOTOS} photos per upload")
    photos = [(f.filename or f"photo{i + 1}", f.read()) for i, f in enumerate(files)]
    st = state()
    with st.engine_lock:
        from appliance.enroll import enrol

        try:
            result = enrol(
                db(), st.engine(), st.settings, photos, person_id=person_id, actor=actor()
            )
        except store.NotFound as exc:  # deleted while we worked
            raise not_found(str(exc)) from None
    results = [r.as_dict() for r in result.results]
    codes = {r.code or "" for r in result.results}
    if result.enrolled == 0 and DUPLICATE not in codes:
        status, code, message = refusal_status(codes)
        raise ApiError(status, code, message, extra={"results": results})
    # photos the person already has are skipped, not refused: sending them again is a success
    body = {"person_id": person_id, "enrolled": result.enrolled, "results": results}
    return jsonify(body), 201 if result.enrolled else 200


@bp.delete("/people/<person_id>/faces/<face_id>")
@doc("Delete one face", "faces", Deleted, errors=(404,))
def delete_face(person_id: str, face_id: str) -> Response:
    store.delete_face(
        db(), person_id, face_id, audit_entry=(actor(), "face.delete", {"face_id": face_id})
    )
    return jsonify({"id": face_id, "deleted": True})
