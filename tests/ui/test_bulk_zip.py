"""Reading a bulk-enrolment zip: one folder per person, and nothing unsafe gets through."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from admin_ui.bulk import BundleRefused, read_bundle

LIMITS = {"max_zip_bytes": 5_000_000, "max_photo_bytes": 2_000_000, "max_total_bytes": 8_000_000}
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # content is not checked here; the API does


def make_zip(entries: dict[str, bytes], *, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_one_folder_per_person_and_skipped_files_are_listed() -> None:
    data = make_zip(
        {
            "alice_smith/1.jpg": JPEG,
            "alice_smith/2.PNG": JPEG,
            "bob-jones/a.jpeg": JPEG,
            "bob-jones/cv.pdf": b"%PDF",
            "loose.jpg": JPEG,
            "__MACOSX/alice_smith/._1.jpg": b"x",
            "alice_smith/.DS_Store": b"x",
            "Carol Diaz/x.webp": JPEG,
        }
    )
    bundle = read_bundle(data, **LIMITS)
    assert [(p.name, p.folder, len(p.photos)) for p in bundle.people] == [
        ("Alice Smith", "alice_smith", 2),
        ("Bob Jones", "bob-jones", 1),
        ("Carol Diaz", "Carol Diaz", 1),
    ]
    assert bundle.people[0].photos[0] == ("1.jpg", JPEG)
    assert any(s.startswith("bob-jones/cv.pdf: not a photo") for s in bundle.skipped)
    assert any(s.startswith("loose.jpg: not inside") for s in bundle.skipped)


def test_a_zip_of_the_parent_folder_is_understood() -> None:
    data = make_zip({"staff/alice/1.jpg": JPEG, "staff/bob/1.jpg": JPEG})
    assert [p.folder for p in read_bundle(data, **LIMITS).people] == ["alice", "bob"]


@pytest.mark.parametrize(
    "name",
    [
        "../evil/1.jpg",
        "/etc/alice/1.jpg",
        "alice/../../1.jpg",
        "C:/alice/1.jpg",
        "alice\\..\\1.jpg",
    ],
)
def test_path_traversal_is_refused(name: str) -> None:
    with pytest.raises(BundleRefused, match="unsafe path"):
        read_bundle(make_zip({name: JPEG, "bob/1.jpg": JPEG}), **LIMITS)


def test_links_are_refused() -> None:
    with pytest.raises(BundleRefused, match="link"):
        read_bundle(make_zip({"bob/1.jpg": JPEG}, link="bob/2.jpg"), **LIMITS)


def test_a_zip_bomb_is_refused_without_unpacking_it() -> None:
    bomb = make_zip({"bob/1.jpg": bytes(50_000_000)})  # 50 MB of zeros packs to ~50 kB
    assert len(bomb) < 200_000
    with pytest.raises(BundleRefused, match="zip bomb"):
        read_bundle(bomb, **{**LIMITS, "max_photo_bytes": 100_000_000})


def test_size_limits() -> None:
    with pytest.raises(BundleRefused, match="limit is"):
        read_bundle(make_zip({"bob/1.jpg": JPEG}), **{**LIMITS, "max_zip_bytes": 100})
    big = read_bundle(
        make_zip({"bob/1.jpg": JPEG, "bob/2.jpg": JPEG * 100}),
        **{**LIMITS, "max_photo_bytes": len(JPEG) + 10},
    )
    assert [n for n, _ in big.people[0].photos] == ["1.jpg"]
    assert big.skipped == ["bob/2.jpg: larger than 0 MB"]
    many = {f"p{i}/1.jpg": JPEG for i in range(20)}
    with pytest.raises(BundleRefused, match="split the zip"):
        read_bundle(make_zip(many), **{**LIMITS, "max_total_bytes": 10 * len(JPEG)})


def test_a_damaged_zip_is_refused_with_a_reason() -> None:
    data = bytearray(make_zip({"bob/1.jpg": JPEG * 50}))
    # the sizes in the zip's directory lie: the CRC check fails when the photo is read
    data = data.replace(len(JPEG * 50).to_bytes(4, "little"), (100).to_bytes(4, "little"))
    with pytest.raises(BundleRefused, match="cannot be read"):
        read_bundle(bytes(data), **LIMITS)
    garbled = bytearray(make_zip({"bob/1.jpg": JPEG * 50}))
    start = 30 + len("bob/1.jpg")  # the compressed data follows the local header
    garbled[start : start + 40] = bytes(40)
    with pytest.raises(BundleRefused, match="cannot be read"):
        read_bundle(bytes(garbled), **LIMITS)
    with pytest.raises(BundleRefused, match="not a zip"):
        read_bundle(make_zip({"bob/1.jpg": JPEG})[:-60], **LIMITS)


def test_not_a_zip_and_empty_zip() -> None:
    with pytest.raises(BundleRefused, match="not a zip"):
        read_bundle(b"hello", **LIMITS)
    with pytest.raises(BundleRefused, match="no photos found"):
        read_bundle(make_zip({"readme.txt": b"x"}), **LIMITS)
