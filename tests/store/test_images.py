"""Images: files (bundled real photos) and bare records."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from annoloop.errors import InvalidInput, NotFound
from annoloop.storage import read_image


def test_add_images_reads_sizes_checksums_and_copies(project, photos):
    ids = project.add_images(photos)
    assert len(ids) == len(photos) and len(np.unique(ids)) == len(photos)
    df = project.images(ids).set_index("id")
    for image_id, path in zip(ids.tolist(), photos, strict=True):
        row = df.loc[image_id]
        pixels = read_image(path)
        assert (row["width"], row["height"]) == (pixels.shape[1], pixels.shape[0])  # decoded
        assert row["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert row["location"] == path.name  # inside media: stored relative
        copied = project.image_location(image_id)
        assert copied.local_path() == project.media.local_path() / path.name
        assert copied.read_bytes() == path.read_bytes()


def test_known_files_keep_their_ids(project, photos):
    first = project.add_images(photos[:3])
    again = project.add_images([photos[1], photos[0], photos[5]])
    assert again[:2].tolist() == [first[1], first[0]]
    assert again[2] not in first
    assert len(project.images()) == 4


def test_add_a_folder_and_without_copy(project, photo_dir):
    ids = project.add_images(photo_dir, copy=False)
    df = project.images(ids)
    assert len(df) == len(list(photo_dir.iterdir()))
    # outside media and not copied: the full URL is stored
    assert df["location"].str.startswith("file://").all()
    assert not any(project.media.local_path().iterdir())
    loc = project.image_location(int(ids[0]))
    assert loc.exists()


def test_same_name_other_content_gets_a_distinct_copy(sqlite_project, photos, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    clash = other / photos[0].name
    clash.write_bytes(photos[1].read_bytes())  # same name, other picture
    a = sqlite_project.add_images([photos[0]])
    b = sqlite_project.add_images([clash])
    locations = sqlite_project.images()["location"].tolist()
    assert a[0] != b[0] and len(set(locations)) == 2
    assert sqlite_project.image_location(int(b[0])).read_bytes() == photos[1].read_bytes()


def test_an_unreadable_file_names_itself_and_nothing_is_written(project, photos):
    broken = photos[0].parent / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(InvalidInput, match=r"broken\.jpg"):
        project.add_images([*photos[:3], broken])
    assert project.images().empty
    assert not any(project.media.local_path().iterdir())  # no copies left behind
    missing = photos[0].parent / "missing.png"
    with pytest.raises(InvalidInput, match=r"missing\.png"):
        project.add_images([missing])


def test_meta_and_progress(sqlite_project, photos):
    seen = []
    ids = sqlite_project.add_images(
        photos[:2], meta={"site": "A"}, progress=lambda d, t, m="": seen.append((d, t))
    )
    assert seen[-1] == (2, 2)
    assert sqlite_project.images(ids)["meta"].tolist() == [{"site": "A"}, {"site": "A"}]
    with pytest.raises(InvalidInput, match="meta has 1 entries for 2 images"):
        sqlite_project.add_images(photos[2:4], meta=[{}])


def test_add_image_records_bulk(project):
    n = 20_000
    locations = [f"frames/{i:06d}.jpg" for i in range(n)]
    widths = np.full(n, 1920)
    heights = np.full(n, 1080)
    frames = list(range(n))
    ids = project.add_image_records(
        locations,
        widths,
        heights,
        checksums=["0" * 64] * n,
        metas=[{"i": i} for i in range(n)],
        video_locations=["s3://bucket/video.mp4"] * n,
        frames=frames,
    )
    assert len(np.unique(ids)) == n
    df = project.images(ids[[0, -1]])
    assert df["location"].tolist() == [locations[0], locations[-1]]
    assert df["frame"].tolist() == [0, n - 1]
    assert df["meta"].tolist() == [{"i": 0}, {"i": n - 1}]
    assert df["video_location"].tolist() == ["s3://bucket/video.mp4"] * 2
    # known and repeated locations keep one id
    again = project.add_image_records([locations[5], "new.jpg", "new.jpg"], [1, 2, 2], [1, 2, 2])
    assert again[0] == ids[5] and again[1] == again[2]
    assert len(project.images()) == n + 1


@pytest.mark.parametrize(
    "widths, message",
    [
        ([10, 0], "positive whole numbers"),
        ([10, -5], "positive whole numbers"),
        ([10, np.nan], "positive whole numbers"),
        ([10, 2.5], "positive whole numbers"),
        ([10], "expected \\(2,\\)"),
        (["a", "b"], "must be numbers"),
    ],
)
def test_add_image_records_refuses_bad_sizes(sqlite_project, widths, message):
    with pytest.raises(InvalidInput, match=message):
        sqlite_project.add_image_records(["a.png", "b.png"], widths, [10, 10])
    assert sqlite_project.images().empty


def test_add_image_records_refuses_bad_locations(sqlite_project):
    for bad in ["", "a\x00b", None]:
        with pytest.raises(InvalidInput):
            sqlite_project.add_image_records(["ok.png", bad], [1, 1], [1, 1])
    assert sqlite_project.images().empty


def test_image_lookups(sqlite_project):
    with pytest.raises(NotFound):
        sqlite_project.image_location(12345)
    ids = sqlite_project.add_image_records(["https://example.org/a.jpg"], [5], [6])
    assert sqlite_project.image_location(int(ids[0])).url == "https://example.org/a.jpg"
    assert sqlite_project.images([999]).empty


def test_images_with_a_meta_key_in_pages(project):
    """Found on SQLite and PostgreSQL, in id order, in pages after an id; a value holding the
    key's text or a non-ASCII key is checked exactly."""
    from annoloop.store.engine import read_transaction
    from annoloop.store.images import images_with_meta_key

    metas = [{"done": {"n": i}} if i % 2 else {"x": '"done" inside'} for i in range(7)]
    metas[6] = {"fertig ✓": 1, "done": 6}
    ids = project.add_image_records(
        [f"m{i}.jpg" for i in range(7)], [10] * 7, [10] * 7, metas=metas
    ).tolist()
    expected = [(ids[i], {"n": i}) for i in (1, 3, 5)] + [(ids[6], 6)]
    assert project.images_with_meta("done") == expected
    assert project.images_with_meta("done", after=ids[3], limit=1) == [expected[2]]
    assert project.images_with_meta("done", match=lambda v: v == 6) == [expected[3]]
    assert project.images_with_meta("fertig ✓") == [(ids[6], 1)]
    with read_transaction(project.engine) as conn:  # pages smaller than the answer
        assert list(images_with_meta_key(conn, "done", chunk=1)) == expected
