"""Locations over real servers: http(s) read-only from a local http.server, s3 against moto."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from annoloop.errors import AccessDenied, InvalidInput, NotFound
from annoloop.samples import photo_path
from annoloop.storage import (
    Location,
    checksum,
    file_checksum,
    image_size,
    list_images,
    read_image,
)
from tests.storage._http import Served, serve_folder


@pytest.fixture()
def web(tmp_path: Path) -> Iterator[Served]:
    """A folder with a photo and a text file, served on 127.0.0.1 with Range support."""
    folder = tmp_path / "site"
    (folder / "media" / "day 1").mkdir(parents=True)
    shutil.copy(photo_path("china.jpg"), folder / "media" / "day 1" / "china.jpg")
    (folder / "media" / "notes.txt").write_text("hello from http\n")
    with serve_folder(folder) as served:
        yield served


# -------------------------------------------------------------------------------------- http
def test_http_read(web: Served) -> None:
    media = Location.parse(web.url + "/media")
    notes = media.join("notes.txt")
    assert notes.protocol == "http"
    assert notes.exists()
    assert notes.read_text() == "hello from http\n"
    assert notes.size() == len("hello from http\n")
    with notes.open("rb") as f:
        assert f.read(5) == b"hello"
    photo = media.join("day 1/china.jpg")  # the space is quoted in the URL
    assert photo.url.endswith("/media/day%201/china.jpg")
    assert photo.read_bytes() == photo_path("china.jpg").read_bytes()
    assert file_checksum(photo) == checksum(photo_path("china.jpg").read_bytes())
    assert not photo.is_dir()


def test_http_missing(web: Served) -> None:
    missing = Location.parse(web.url).join("media/none.jpg")
    assert not missing.exists()
    with pytest.raises(NotFound, match=r"none\.jpg"):
        missing.read_bytes()
    with pytest.raises(NotFound, match=r"none\.jpg"):
        read_image(missing)


def test_http_write_refused(web: Served) -> None:
    notes = Location.parse(web.url).join("media/notes.txt")
    assert not notes.writable
    for call in (
        lambda: notes.write_bytes(b"x"),
        lambda: notes.write_text("x"),
        lambda: notes.open("wb"),
        lambda: notes.open("a"),
        lambda: notes.delete(),
    ):
        with pytest.raises(AccessDenied, match="read-only"):
            call()
    assert notes.read_text() == "hello from http\n"
    with pytest.raises(InvalidInput, match="listing"):
        Location.parse(web.url).list()


def test_http_image_size_reads_only_the_header(web: Served) -> None:
    photo = Location.parse(web.url).join("media/day 1/china.jpg")
    before = web.bytes_sent
    assert image_size(photo) == (640, 427)
    # One 64 KiB block at most (the photo is ~190 KiB): the pixels were not fetched.
    assert web.bytes_sent - before <= 70_000
    pixels = read_image(photo)
    assert pixels.shape == (427, 640, 3)
    assert np.array_equal(pixels, read_image(photo_path("china.jpg")))


def test_http_server_without_ranges(tmp_path: Path) -> None:
    shutil.copy(photo_path("rocket.jpg"), tmp_path / "rocket.jpg")
    with serve_folder(tmp_path, ranges=False) as served:
        photo = Location.parse(served.url).join("rocket.jpg")
        assert image_size(photo) == image_size(photo_path("rocket.jpg"))
        assert read_image(photo).shape[2] == 3


# ---------------------------------------------------------------------------------------- s3
def test_s3_round_trip(s3_bucket: str) -> None:
    bucket = Location.parse(s3_bucket)
    assert bucket.protocol == "s3"
    target = bucket.join("media/day 1/coffee.png")
    data = photo_path("coffee.png").read_bytes()
    assert not target.exists()
    target.write_bytes(data)
    assert target.exists()
    assert target.size() == len(data)
    assert target.read_bytes() == data
    assert file_checksum(target) == checksum(data)
    assert bucket.join("media").is_dir()
    assert image_size(target) == (600, 400)
    assert np.array_equal(read_image(target), read_image(photo_path("coffee.png")))
    text = bucket.join("notes/a.txt")
    text.write_text("ünïcode")
    assert text.read_text() == "ünïcode"
    with text.open("wb") as f:
        f.write(b"streamed")
    assert text.read_bytes() == b"streamed"


def test_s3_list_delete_and_missing(s3_bucket: str) -> None:
    bucket = Location.parse(s3_bucket)
    for rel in ["m/b.jpg", "m/a.PNG", "m/sub/c.jpeg", "m/sub/readme.txt", "m/.hidden/d.jpg"]:
        bucket.join(rel).write_bytes(rel.encode())
    media = bucket.join("m")
    assert [loc.relative_to(media) for loc in media.list()] == ["a.PNG", "b.jpg"]
    assert [loc.relative_to(media) for loc in list_images(media)] == [
        "a.PNG",
        "b.jpg",
        "sub/c.jpeg",
    ]
    missing = bucket.join("m/none.bin")
    with pytest.raises(NotFound, match=r"none\.bin"):
        missing.read_bytes()
    with pytest.raises(NotFound):
        missing.delete()
    with pytest.raises(InvalidInput, match="not empty"):
        bucket.join("m/sub").delete()
    bucket.join("m/sub").delete(recursive=True)
    assert not bucket.join("m/sub/c.jpeg").exists()
    bucket.join("m/b.jpg").delete()
    assert [loc.name for loc in media.list(recursive=True)] == ["d.jpg", "a.PNG"]


def test_s3_missing_bucket(s3_server: str) -> None:
    loc = Location.parse("s3://no-such-bucket-annoloop/x.bin")
    assert not loc.exists()
    with pytest.raises(NotFound, match="no-such-bucket-annoloop"):
        loc.read_bytes()


def test_s3_endpoint_from_options(s3_bucket: str, s3_server: str, monkeypatch) -> None:
    """Storage options win over the environment (a second store beside the default one)."""
    Location.parse(s3_bucket).join("k.txt").write_text("v")
    monkeypatch.setenv("ANNOLOOP_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    loc = Location.parse(s3_bucket, endpoint_url=s3_server).join("k.txt")
    assert loc.read_text() == "v"


def test_s3_safe_join(s3_bucket: str) -> None:
    with pytest.raises(AccessDenied):
        Location.parse(s3_bucket).join("media/../../other-bucket/x")
