"""Location on file:// and memory://: parsing, round trips, listing, deleting, atomic writes."""

from __future__ import annotations

import os
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from annoloop.errors import AccessDenied, InvalidInput, NotFound
from annoloop.storage import Location


@pytest.fixture()
def mem_root() -> Iterator[Location]:
    """A fresh folder in fsspec's process-wide memory filesystem, removed afterwards."""
    root = Location.parse(f"memory://annoloop-test-{uuid.uuid4().hex}")
    yield root
    if root.exists():
        root.delete(recursive=True)


@pytest.fixture(params=["file", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path, mem_root: Location) -> Location:
    """The same tests on a local folder and on a memory folder."""
    return Location.parse(tmp_path / "root") if request.param == "file" else mem_root


# ------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    ("value", "url", "protocol", "path"),
    [
        ("/data/photos/", "file:///data/photos", "file", "/data/photos"),
        ("file:///data/a/../b", "file:///data/b", "file", "/data/b"),
        ("file://localhost/data/x", "file:///data/x", "file", "/data/x"),
        ("memory://a/b/", "memory:///a/b", "memory", "/a/b"),
        ("memory:///a//b", "memory:///a/b", "memory", "/a/b"),
        ("memory://", "memory:///", "memory", "/"),
        ("s3://bucket/key/", "s3://bucket/key", "s3", "bucket/key"),
        ("S3://bucket", "s3://bucket", "s3", "bucket"),
        ("https://example.org/a.jpg", "https://example.org/a.jpg", "https", None),
        ("HTTP://example.org/x", "http://example.org/x", "http", None),
    ],
)
def test_parse_normalises(value: str, url: str, protocol: str, path: str | None) -> None:
    loc = Location.parse(value)
    assert loc.url == url
    assert str(loc) == url
    assert loc.protocol == protocol
    assert loc.path == (path if path is not None else url)


def test_bare_relative_path_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    loc = Location.parse("sub/img.png")
    assert loc.url == f"file://{tmp_path}/sub/img.png"
    assert loc.local_path() == tmp_path / "sub" / "img.png"
    assert Location.parse(Path("sub/img.png")) == loc


@pytest.mark.parametrize(
    "value",
    ["", "   ", "a\x00b", "nosuchproto://x/y", "s3://", "https://", "memory://x\x00"],
)
def test_parse_rejects(value: str) -> None:
    with pytest.raises(InvalidInput):
        Location.parse(value)


@pytest.mark.parametrize("value", [None, 3, b"/tmp/x", ["a"]])
def test_parse_rejects_wrong_types(value: object) -> None:
    with pytest.raises(InvalidInput, match="location must be"):
        Location.parse(value)  # type: ignore[arg-type]


def test_names_and_parents() -> None:
    loc = Location.parse("s3://bucket/images/day 1/a.JPG")
    assert loc.name == "a.JPG"
    assert loc.suffix == ".JPG"
    assert loc.parent == Location.parse("s3://bucket/images/day 1")
    assert loc.parent.parent.parent == Location.parse("s3://bucket")
    assert Location.parse("s3://bucket").parent == Location.parse("s3://bucket")
    assert Location.parse("/").parent == Location.parse("/")
    assert Location.parse("/").name == ""
    assert Location.parse("memory:///a").parent == Location.parse("memory://")
    web = Location.parse("https://example.org/media/a%20b.jpg")
    assert web.name == "a b.jpg"
    assert web.parent.url == "https://example.org/media"


def test_relative_to() -> None:
    root = Location.parse("s3://bucket/media")
    assert root.join("a/b.png").relative_to(root) == "a/b.png"
    assert root.relative_to(root) == ""
    assert Location.parse("/x/y").relative_to("/") == "x/y"
    with pytest.raises(InvalidInput, match="not under"):
        Location.parse("s3://bucket/mediax/a").relative_to(root)
    with pytest.raises(InvalidInput, match="not under"):
        Location.parse("memory:///bucket/media/a").relative_to(root)


def test_frozen_hashable_picklable_and_options_hidden() -> None:
    a = Location.parse("s3://bucket/k", key="AKIA", secret="very-secret")
    b = Location.parse("s3://bucket/k", key="AKIA", secret="very-secret")
    assert a == b and hash(a) == hash(b)
    assert len({a, b, Location.parse("s3://bucket/k")}) == 2  # options take part in equality
    assert "very-secret" not in repr(a)
    with pytest.raises(AttributeError):
        a.url = "s3://other"  # type: ignore[misc]
    back = pickle.loads(pickle.dumps(a))
    assert back == a and back.path == "bucket/k" and back.protocol == "s3"
    assert dict(back.storage_options)["secret"] == "very-secret"
    # options carried by a location survive joins and merge with new ones
    assert a.join("x").storage_options == a.storage_options
    c = Location.parse(a, secret="other")
    assert dict(c.storage_options) == {"key": "AKIA", "secret": "other"}
    assert Location.parse(a) is a


def test_fs_is_cached(root: Location) -> None:
    assert root.fs is root.join("x").fs


# ---------------------------------------------------------------------------- round trips
def test_bytes_and_text_round_trip(root: Location) -> None:
    data = bytes(range(256)) * 1000
    target = root.join("deep/er/blob.bin")
    assert not target.exists()
    target.write_bytes(data)  # parents are made
    assert target.exists() and not target.is_dir()
    assert target.read_bytes() == data
    assert target.size() == len(data)
    assert target.parent.is_dir()
    text = root.join("notes.txt")
    text.write_text("Sterne über Zürich ✓\n")
    assert text.read_text() == "Sterne über Zürich ✓\n"
    text.write_text("grüße", encoding="latin-1")
    assert text.read_bytes() == "grüße".encode("latin-1")
    with pytest.raises(InvalidInput, match=r"notes\.txt: not utf-8 text"):
        text.read_text()


def test_open_read_write(root: Location) -> None:
    target = root.join("f.txt")
    with target.open("w") as f:
        f.write("line 1\n")
    with target.open("a") as f:
        f.write("line 2\n")
    with target.open("r") as f:
        assert f.read() == "line 1\nline 2\n"
    with target.open("rb") as f:
        assert f.read(4) == b"line"
    with pytest.raises(InvalidInput, match="unsupported open mode"):
        target.open("r+")


def test_overwrite_replaces(root: Location) -> None:
    target = root.join("x.bin")
    target.write_bytes(b"a" * 100)
    target.write_bytes(b"b")
    assert target.read_bytes() == b"b"


def test_missing_files_raise_not_found(root: Location) -> None:
    missing = root.join("nope/none.bin")
    for call in (missing.read_bytes, missing.size, missing.read_text, missing.delete, missing.list):
        with pytest.raises(NotFound, match=r"nope/none\.bin"):
            call()
    with pytest.raises(NotFound, match=r"none\.bin"), missing.open("rb"):
        pass


def test_folder_is_not_a_file(root: Location) -> None:
    root.join("d/x.bin").write_bytes(b"1")
    folder = root.join("d")
    with pytest.raises(InvalidInput, match="folder"):
        folder.size()
    if root.protocol == "file":
        with pytest.raises(InvalidInput, match="folder"):
            folder.read_bytes()
        with pytest.raises(InvalidInput, match="folder"):
            folder.write_bytes(b"2")


def test_write_rejects_non_bytes(root: Location) -> None:
    with pytest.raises(InvalidInput, match="needs bytes"):
        root.join("a.bin").write_bytes("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="needs a str"):
        root.join("a.txt").write_text(b"bytes")  # type: ignore[arg-type]
    assert not root.join("a.bin").exists()


# -------------------------------------------------------------------------- list and delete
def _tree(root: Location) -> None:
    for rel in ["b.jpg", "a.png", "sub/c.jpg", "sub/deeper/d.JPG", "sub/notes.txt", ".hidden"]:
        root.join(rel).write_bytes(rel.encode())


def test_list(root: Location) -> None:
    _tree(root)
    rels = lambda locs: [loc.relative_to(root) for loc in locs]  # noqa: E731
    assert rels(root.list()) == [".hidden", "a.png", "b.jpg"]  # files only, sorted
    assert rels(root.list("*.jpg")) == ["b.jpg"]
    assert rels(root.list("*.jpg", recursive=True)) == ["b.jpg", "sub/c.jpg"]
    assert rels(root.list("*.[jJ][pP]*", recursive=True)) == [
        "b.jpg",
        "sub/c.jpg",
        "sub/deeper/d.JPG",
    ]
    assert rels(root.list("sub/*", recursive=True)) == [
        "sub/c.jpg",
        "sub/deeper/d.JPG",  # fnmatch's * crosses "/"
        "sub/notes.txt",
    ]
    assert root.join("a.png").list() == [root.join("a.png")]
    assert all(loc.exists() for loc in root.list(recursive=True))


def test_delete(root: Location) -> None:
    _tree(root)
    root.join("a.png").delete()
    assert not root.join("a.png").exists()
    with pytest.raises(InvalidInput, match="not empty"):
        root.join("sub").delete()
    root.join("sub").delete(recursive=True)
    assert not root.join("sub").exists()
    assert root.join("b.jpg").exists()


def test_refuses_to_delete_a_filesystem_root() -> None:
    with pytest.raises(AccessDenied, match="root"):
        Location.parse("/").delete(recursive=True)


def test_local_path(tmp_path: Path) -> None:
    assert Location.parse(tmp_path).local_path() == tmp_path
    assert Location.parse("memory:///x").local_path() is None
    assert Location.parse("s3://b/x").local_path() is None


# ----------------------------------------------------------------------------- atomic writes
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_leaves_nothing_after_a_failure(tmp_path: Path) -> None:
    target = Location.parse(tmp_path / "out" / "result.json")
    with pytest.raises(RuntimeError, match="boom"), target.open("wb") as f:
        f.write(b'{"half": ')
        raise RuntimeError("boom")
    assert not target.exists()
    assert _leftovers(tmp_path / "out") == []


def test_atomic_write_keeps_the_old_content_after_a_failure(tmp_path: Path) -> None:
    target = Location.parse(tmp_path / "result.json")
    target.write_text('{"complete": true}')
    with pytest.raises(RuntimeError), target.open("w") as f:
        f.write('{"comp')
        assert target.read_text() == '{"complete": true}'  # readers see the old file meanwhile
        raise RuntimeError("disk full")
    assert target.read_text() == '{"complete": true}'
    assert _leftovers(tmp_path) == ["result.json"]


def test_atomic_write_unclosed_writer_is_discarded(tmp_path: Path) -> None:
    target = Location.parse(tmp_path / "r.bin")
    f = target.open("wb")
    f.write(b"partial")
    del f  # never closed: must not appear as a finished file
    import gc

    gc.collect()
    assert _leftovers(tmp_path) == []


def test_atomic_write_gets_normal_permissions(tmp_path: Path) -> None:
    target = Location.parse(tmp_path / "p.bin")
    target.write_bytes(b"x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "p.bin").stat().st_mode & 0o777 == 0o666 & ~mask


def test_large_file_round_trip(tmp_path: Path) -> None:
    """64 MiB through write_bytes / read_bytes / size (huge input, still seconds)."""
    data = os.urandom(1 << 20) * 64
    target = Location.parse(tmp_path / "big.bin")
    target.write_bytes(data)
    assert target.size() == len(data)
    assert target.read_bytes() == data


def test_atomic_write_with_a_name_at_the_length_limit(tmp_path: Path) -> None:
    name = "n" * 251 + ".bin"  # 255 bytes: the longest name most filesystems allow
    target = Location.parse(tmp_path).join(name)
    target.write_bytes(b"ok")
    assert target.read_bytes() == b"ok"
    assert _leftovers(tmp_path) == [name]


def test_memory_open_write_makes_parents(mem_root: Location) -> None:
    target = mem_root.join("a/b/c.txt")
    with target.open("wb") as f:
        f.write(b"data")
    assert target.read_bytes() == b"data"
    assert mem_root.join("a/b").is_dir()
    with pytest.raises(NotFound):
        mem_root.join("a/none").read_bytes()
