"""Bulk enrolment from a zip of one folder per person (``alice_smith/1.jpg``, ...).

The zip comes from someone's laptop, so it is read defensively: a size limit on the upload, on
each photo and on everything unpacked; no absolute paths, ``..`` or links; a photo whose
compression ratio is absurd (a zip bomb) is refused. Sizes are checked on the bytes actually read,
never on what the zip's directory claims. Nothing is written to disk.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from admin_ui.client import AdminApi, ApiRefused, PhotoResult
from admin_ui.enrolment import (
    ALL_ACCEPTED,
    DUPLICATE,
    PHOTO_SUFFIXES,
    enrol_photos,
    keep_new_person,
    verdict,
)

MAX_ENTRIES = 2000
MAX_RATIO = 100  # JPEG/PNG hardly compress; 100:1 is a bomb, not a photo


class BundleRefused(ValueError):
    """The zip as a whole cannot be used; the message says why."""


@dataclass
class BundlePerson:
    folder: str
    photos: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``alice_smith`` or ``alice-smith`` -> ``Alice Smith``; a name with spaces is kept."""
        if " " in self.folder.strip():
            return self.folder.strip()
        return re.sub(r"[_\-.]+", " ", self.folder).strip().title() or self.folder


@dataclass
class Bundle:
    people: list[BundlePerson]
    skipped: list[str]  # entries not used, each with the reason

    @property
    def photo_count(self) -> int:
        return sum(len(p.photos) for p in self.people)


@dataclass
class BulkRow:
    """One person's line in the bulk enrolment report."""

    name: str
    external_id: str
    status: str  # created | added | already enrolled | not added | failed
    accepted: int
    refused: list[PhotoResult] = field(default_factory=list)
    error: str = ""


def _safe_parts(name: str) -> list[str] | None:
    """The path's parts, or None if it could escape (absolute, .., drive, backslash)."""
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or "\x00" in name:
        return None
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return parts


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def read_bundle(
    data: bytes, *, max_zip_bytes: int, max_photo_bytes: int, max_total_bytes: int
) -> Bundle:
    """Parse an uploaded zip into people and their photos; refuse anything unsafe."""
    if len(data) > max_zip_bytes:
        raise BundleRefused(
            f"the zip is {len(data) / 1e6:.1f} MB; the limit is {max_zip_bytes / 1e6:.0f} MB"
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise BundleRefused("this is not a zip file") from None
    with zf:
        people: dict[str, BundlePerson] = {}
        skipped: list[str] = []
        total = 0
        for parts, info in _entries(zf):
            shown = "/".join(parts)
            why = _why_skipped(parts, info, max_photo_bytes)
            if why:
                skipped.append(f"{shown}: {why}")
                continue
            photo = _read_member(zf, info, shown, max_photo_bytes)
            if len(photo) > max_photo_bytes:
                skipped.append(f"{shown}: larger than {max_photo_bytes / 1e6:.0f} MB")
                continue
            total += len(photo)
            if total > max_total_bytes:
                raise BundleRefused(
                    f"the photos unpack to more than {max_total_bytes / 1e6:.0f} MB; split the zip"
                )
            people.setdefault(parts[0], BundlePerson(parts[0])).photos.append((parts[1], photo))
    if not people:
        raise BundleRefused(
            "no photos found: the zip needs one folder per person with their "
            "photos inside (alice_smith/1.jpg, bob_jones/1.jpg, ...)"
        )
    return Bundle(sorted(people.values(), key=lambda p: p.folder.lower()), skipped)


def _entries(zf: zipfile.ZipFile) -> list[tuple[list[str], zipfile.ZipInfo]]:
    """The zip's files as path parts (no folders, no hidden files); unsafe paths refuse it."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise BundleRefused(f"the zip has {len(infos)} entries; at most {MAX_ENTRIES}")
    entries: list[tuple[list[str], zipfile.ZipInfo]] = []
    for info in infos:
        parts = _safe_parts(info.filename)
        if parts is None:
            raise BundleRefused(f"unsafe path in the zip: {info.filename!r}")
        if _is_link(info):
            raise BundleRefused(f"the zip contains a link: {info.filename!r}")
        if info.is_dir() or not parts:
            continue
        if parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        entries.append((parts, info))
    # a zip of the parent folder (people/alice/1.jpg): drop the one shared top folder
    tops = {p[0] for p, _ in entries}
    if entries and len(tops) == 1 and all(len(p) == 3 for p, _ in entries):
        entries = [(p[1:], i) for p, i in entries]
    return entries


def _why_skipped(parts: list[str], info: zipfile.ZipInfo, max_photo_bytes: int) -> str | None:
    """Why this entry is not one of a person's photos (None: it is); a zip bomb refuses all."""
    if len(parts) != 2:
        return "not inside exactly one person's folder"
    if not parts[1].lower().endswith(PHOTO_SUFFIXES):
        return f"not a photo ({', '.join(s[1:] for s in PHOTO_SUFFIXES)})"
    if info.file_size > max_photo_bytes:
        return f"larger than {max_photo_bytes / 1e6:.0f} MB"
    if (
        info.compress_size
        and info.file_size / info.compress_size > MAX_RATIO
        and info.file_size > 1_000_000
    ):
        raise BundleRefused(
            f"{'/'.join(parts)} unpacks {info.file_size // info.compress_size}"
            " times larger than it is packed (a zip bomb?)"
        )
    return None


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str, max_photo_bytes: int
) -> bytes:
    """At most one byte over ``max_photo_bytes`` of the entry, whatever its header says."""
    try:
        with zf.open(info) as fh:
            return fh.read(max_photo_bytes + 1)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
    ) as exc:  # damaged, encrypted or an unknown compression
        raise BundleRefused(f"{shown} cannot be read ({exc})") from None


def _find_by_external_id(client: AdminApi, external_id: str) -> dict | None:
    page = client.people(search=external_id, limit=50)
    return next((p for p in page.items if p.get("external_id") == external_id), None)


def enrol_bundle(
    client: AdminApi,
    bundle: Bundle,
    max_request_bytes: int,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[BulkRow]:
    """Create (or find, by external id = folder name) each person and enrol their photos.

    A person this run created whose photos were all refused is removed again, so a bad zip
    leaves no faceless people behind. ``progress(done, total, name)`` is called per person.
    ApiUnavailable is not caught: the caller says the API went away (rows so far are kept).
    """
    rows: list[BulkRow] = []
    for done, person in enumerate(bundle.people):
        if progress:
            progress(done, len(bundle.people), person.name)
        external_id = person.folder
        try:
            existing = _find_by_external_id(client, external_id)
            if existing is None:
                pid = client.create_person(name=person.name, external_id=external_id)["id"]
            else:
                pid = existing["id"]
            outcome = enrol_photos(client, pid, person.photos, max_request_bytes)
            accepted = outcome.enrolled
            refused = [r for r in outcome.results if not r.accepted and r.code != DUPLICATE]
        except ApiRefused as exc:
            rows.append(BulkRow(person.name, external_id, "failed", 0, [], exc.message))
            continue
        if not keep_new_person(existing is None, outcome.results):
            client.delete_person(pid)
            status = "not added"
        elif accepted == 0 and existing is not None and verdict(outcome.results) == ALL_ACCEPTED:
            status = "already enrolled"  # the same zip again: nothing new, nothing refused
        else:
            status = "created" if existing is None else "added"
        rows.append(BulkRow(person.name, external_id, status, accepted, refused))
    if progress:
        progress(len(bundle.people), len(bundle.people), "")
    return rows
