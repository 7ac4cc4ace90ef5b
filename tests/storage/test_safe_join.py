"""Safe joining: a path from a user never leads outside its root."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annoloop.errors import AccessDenied, InvalidInput
from annoloop.storage import Location, safe_join

ATTACKS = [
    "..",
    "../secret.txt",
    "a/../../secret.txt",
    "a/b/../../../secret.txt",
    "./../secret.txt",
    "/etc/passwd",
    "//server/share/x",
    "C:/Windows/system.ini",
    "c:secret",
    "C:\\Windows\\system.ini",
    "..\\secret.txt",
    "a\\..\\..\\secret.txt",
    "\\\\server\\share",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "a/%2e%2e/%2e%2e/secret.txt",
    "%252e%252e%252fsecret.txt",  # double-encoded
    "..%2fsecret.txt",
    "..%5csecret.txt",
    "%2fetc%2fpasswd",
    "img.png\x00.txt",
    "a/\x00",
    "%00",
    "file:///etc/passwd",
    "s3://other-bucket/key",
    "https://evil.example/x",
]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("root", ["/srv/media", "memory:///media", "s3://bucket/media"])
def test_attacks_are_refused(root: str, attack: str) -> None:
    with pytest.raises(AccessDenied) as info:
        Location.parse(root).join(attack)
    assert repr(attack) in str(info.value)  # the message names the offending path
    with pytest.raises(AccessDenied):
        safe_join(root, attack)


@pytest.mark.parametrize("attack", ["../x", "%2e%2e/x", "/abs", "a?b/../../x"])
def test_attacks_refused_over_http(attack: str) -> None:
    with pytest.raises(AccessDenied):
        Location.parse("https://example.org/media").join(attack)


@pytest.mark.parametrize(
    ("user_path", "rel"),
    [
        ("a.jpg", "a.jpg"),
        ("dir/sub/a.jpg", "dir/sub/a.jpg"),
        ("./a.jpg", "a.jpg"),
        ("dir//a.jpg", "dir/a.jpg"),
        ("dir/../a.jpg", "a.jpg"),  # climbs, but stays inside
        ("dir\\a.jpg", "dir/a.jpg"),  # Windows separators
        ("..a.jpg", "..a.jpg"),  # dots inside a name are fine
        ("a..b/c...", "a..b/c..."),
        ("photo 100%.jpg", "photo 100%.jpg"),
        ("día/ñandú.png", "día/ñandú.png"),
        ("~/x", "~/x"),  # not expanded: a folder named "~"
        ("", ""),
        (".", ""),
        ("dir/", "dir"),
    ],
)
def test_legitimate_paths_are_joined(tmp_path: Path, user_path: str, rel: str) -> None:
    root = Location.parse(tmp_path)
    joined = root.join(user_path)
    assert joined.relative_to(root) == rel
    assert Location.parse("s3://bucket/m").join(user_path).relative_to("s3://bucket/m") == rel


def test_several_parts_and_paths(tmp_path: Path) -> None:
    root = Location.parse(tmp_path)
    assert root.join("a", "b", "c.png") == root.join("a/b/c.png")
    assert root.join(PurePosixPath("a/b")) == root.join("a/b")
    assert (root / "a" / "b") == root.join("a/b")
    assert root.join("a/b", "c/../d") == root.join("a/b/d")
    with pytest.raises(AccessDenied):
        root.join("a/b", "../c")  # each part must stay inside on its own
    with pytest.raises(AccessDenied):
        root.join("a", "../../x")  # the parts together climb out
    with pytest.raises(AccessDenied):
        root.join("a", "/etc")
    with pytest.raises(InvalidInput, match="must be a string"):
        root.join(5)  # type: ignore[arg-type]


def test_http_join_quotes(tmp_path: Path) -> None:
    web = Location.parse("https://example.org/media")
    joined = web.join("day 1/a#b?.jpg")
    assert joined.url == "https://example.org/media/day%201/a%23b%3F.jpg"
    assert joined.name == "a#b?.jpg"
    with pytest.raises(InvalidInput, match="query"):
        Location.parse("https://example.org/a?sig=1").join("b")


# ---------------------------------------------------------------------------------- symlinks
@pytest.fixture()
def jail(tmp_path: Path) -> Path:
    """root/ with links pointing inside and outside of it; secret.txt lies outside."""
    root = tmp_path / "root"
    (root / "inner").mkdir(parents=True)
    (root / "inner" / "ok.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", root / "link-to-secret")
    os.symlink(tmp_path / "outside", root / "dir-link")
    os.symlink(root / "inner", root / "inner-link")
    os.symlink("../../outside", root / "inner" / "relative-out")
    os.symlink(tmp_path / "nowhere", root / "dangling-out")
    return root


@pytest.mark.parametrize(
    "user_path",
    [
        "link-to-secret",
        "dir-link",
        "dir-link/x.txt",
        "dir-link/new.txt",
        "inner/relative-out/x.txt",
        "inner-link/relative-out",
        "dangling-out",
        "dangling-out/a/b",
    ],
)
def test_symlinks_out_of_the_root_are_refused(jail: Path, user_path: str) -> None:
    root = Location.parse(jail)
    with pytest.raises(AccessDenied, match="symbolic link") as info:
        root.join(user_path)
    assert repr(user_path) in str(info.value)


def test_symlinks_inside_the_root_are_fine(jail: Path) -> None:
    root = Location.parse(jail)
    assert root.join("inner-link/ok.txt").read_text() == "inside"
    assert root.join("inner-link/new.txt").relative_to(root) == "inner-link/new.txt"


def test_root_that_is_itself_a_symlink(jail: Path, tmp_path: Path) -> None:
    os.symlink(jail, tmp_path / "root-link")
    root = Location.parse(tmp_path / "root-link")
    assert root.join("inner/ok.txt").read_text() == "inside"
    with pytest.raises(AccessDenied):
        root.join("dir-link/x.txt")


# ---------------------------------------------------------------------------------- property
@settings(max_examples=400, deadline=None, database=None)
@given(
    st.lists(
        st.sampled_from(
            ["..", ".", "a", "b", "", "%2e%2e", "%2E.", "\\", "/", "%2f", "%", "x.jpg"]
        ),
        max_size=8,
    ).map("/".join)
    | st.text(max_size=40)
)
def test_join_result_always_stays_inside(user_path: str) -> None:
    root = Location.parse("/srv/media")
    try:
        joined = root.join(user_path)
    except AccessDenied:
        return
    rel = joined.relative_to(root)
    assert not rel.startswith("/")
    assert ".." not in rel.split("/")
    assert os.path.normpath(joined.path).startswith("/srv/media")
