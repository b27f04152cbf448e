"""Enrolment from the console: split photos into requests the API accepts, keep every verdict.

The API refuses a request over ``FACEGATE_API_MAX_UPLOAD_MB`` as a whole and takes at most 20
photos per request, so photos go in batches below both limits; a photo that alone is too big is
refused here, with its reason, without being sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from admin_ui.client import AdminApi, EnrolOutcome, PhotoResult

#: The API's code for a photo the person already has: skipped, not refused (the door's
#: appliance.enroll.DUPLICATE; the console imports nothing of the door, a test keeps them equal).
DUPLICATE = "duplicate"
#: verdict(): every photo accepted (or already enrolled), none accepted, some refused.
ALL_ACCEPTED, NONE_ACCEPTED, SOME_REFUSED = "all_accepted", "none_accepted", "some_refused"
#: Photo file suffixes: the door's appliance.image_files.IMAGE_SUFFIXES (a test keeps them equal).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm")

MAX_PHOTOS_PER_REQUEST = 10
#: multipart framing per file, so a batch stays under the API's Content-Length limit
PART_OVERHEAD = 512


def verdict(results: Sequence[PhotoResult]) -> str:
    """ALL_ACCEPTED, NONE_ACCEPTED or SOME_REFUSED, by the same rule as appliance.enroll.verdict.

    A photo the person already had counts as accepted: enrolling a folder again is a success.
    """
    refused = sum(1 for r in results if not r.accepted and r.code != DUPLICATE)
    if not refused:
        return ALL_ACCEPTED if results else NONE_ACCEPTED
    return NONE_ACCEPTED if refused == len(results) else SOME_REFUSED


def keep_new_person(created_here: bool, results: Sequence[PhotoResult]) -> bool:
    """Whether a person created just for these photos stays: not if no face came of them."""
    return not created_here or any(r.accepted or r.code == DUPLICATE for r in results)


def batches(
    photos: Sequence[tuple[str, bytes]],
    max_request_bytes: int,
    max_photos: int = MAX_PHOTOS_PER_REQUEST,
) -> list[list[tuple[str, bytes]]]:
    """Consecutive groups of photos, each under the request size and count limits."""
    out: list[list[tuple[str, bytes]]] = []
    size = 0
    for photo in photos:
        cost = len(photo[1]) + PART_OVERHEAD
        if not out or len(out[-1]) >= max_photos or size + cost > max_request_bytes:
            out.append([])
            size = 0
        out[-1].append(photo)
        size += cost
    return out


def enrol_photos(
    client: AdminApi, person_id: str, photos: Sequence[tuple[str, bytes]], max_request_bytes: int
) -> EnrolOutcome:
    """Enrol ``photos`` (name, bytes) for a person; one result per photo, in upload order."""
    results: dict[int, PhotoResult] = {}
    sendable: list[tuple[int, str, bytes]] = []
    for i, (name, data) in enumerate(photos):
        if len(data) + PART_OVERHEAD > max_request_bytes:
            results[i] = PhotoResult(
                name,
                False,
                f"file is larger than the upload limit of {max_request_bytes / 1e6:.0f} MB",
                "too_large",
            )
        else:
            sendable.append((i, name, data))
    enrolled = 0
    errors = []
    for batch in batches([(str(i), d) for i, _, d in sendable], max_request_bytes):
        index = [int(key) for key, _ in batch]
        named = [(photos[i][0], photos[i][1]) for i in index]
        outcome = client.enrol(person_id, named)
        enrolled += outcome.enrolled
        if outcome.error:
            errors.append(outcome.error)
        for i, result in zip(index, outcome.results):
            results[i] = result
    ordered = [results[i] for i in sorted(results)]
    return EnrolOutcome(enrolled, ordered, None if enrolled else (errors[0] if errors else None))
