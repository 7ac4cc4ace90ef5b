"""Images (upload of real photos, listing, originals, thumbnails, storage confinement) and the
label tree over the API."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from annoloop.samples import photo_path
from annoloop.server.settings import ServerSettings
from tests.server.helpers import PHOTOS


def _upload(client, headers, *files):
    return client.post("/api/images", files=[("files", f) for f in files], headers=headers)


def test_upload_a_real_photo_and_read_it_back(client, login, project) -> None:
    data = photo_path("grace_hopper.jpg").read_bytes()
    r = _upload(client, login("designer"), ("grace_hopper.jpg", data, "image/jpeg"))
    assert r.status_code == 201, r.text
    (record,) = r.json()["images"]
    assert (record["name"], record["width"], record["height"]) == ("grace_hopper.jpg", 512, 600)
    # stored inside the project's media, byte for byte
    assert project.image_location(record["id"]).read_bytes() == data
    ann = login("ann")
    original = client.get(record["url"], headers=ann)
    assert original.status_code == 200 and original.content == data
    assert original.headers["content-type"] == "image/jpeg"
    listing = client.get("/api/images?limit=100", headers=ann).json()
    assert listing["total"] == len(PHOTOS) + 1
    assert [i["name"] for i in listing["items"]][-1] == "grace_hopper.jpg"
    assert client.get(f"/api/images/{record['id']}", headers=ann).json() == record


def test_upload_same_name_other_content_keeps_both(client, login) -> None:
    headers = login("designer")
    a = _upload(client, headers, ("photo.png", photo_path("coffee.png").read_bytes(), "image/png"))
    b = _upload(client, headers, ("photo.png", photo_path("chelsea.png").read_bytes(), "image/png"))
    ids = {a.json()["images"][0]["id"], b.json()["images"][0]["id"]}
    assert len(ids) == 2
    again = _upload(client, headers, ("x.png", photo_path("coffee.png").read_bytes(), "image/png"))
    assert again.json()["images"][0]["checksum"] == a.json()["images"][0]["checksum"]


def test_thumbnails_are_scaled_and_cached_by_checksum(client, login, project) -> None:
    headers = login("ann")
    r = client.get("/api/images/1/thumb?size=128", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(r.content))
    assert max(thumb.size) == 128 and thumb.size == (128, 85)  # coffee.png is 600x400
    checksum = project.images([1])["checksum"].iloc[0]
    cached = project.runs.join("thumbs", f"{checksum}-128.jpg")
    assert cached.exists() and cached.read_bytes() == r.content
    # the cached file is what is served next time
    assert client.get("/api/images/1/thumb?size=128", headers=headers).content == r.content
    # the colours are the photo's (mean within a few levels of the downscaled original)
    original = np.asarray(Image.open(photo_path("coffee.png")).convert("RGB"), dtype=float)
    assert np.allclose(np.asarray(thumb, dtype=float).mean((0, 1)), original.mean((0, 1)), atol=6)


@pytest.mark.parametrize("size", [0, 100, 10**9, -5])
def test_thumbnail_sizes_are_limited(client, login, size) -> None:
    assert client.get(f"/api/images/1/thumb?size={size}", headers=login("ann")).status_code == 422


def test_unknown_images_are_404(client, login) -> None:
    headers = login("ann")
    for path in ("/api/images/999", "/api/images/999/file", "/api/images/999/thumb"):
        assert client.get(path, headers=headers).status_code == 404, path
    assert client.get("/api/images/abc", headers=headers).status_code == 422
    assert client.get(f"/api/images/{2**70}", headers=headers).status_code == 422


def test_images_outside_the_project_storage_are_not_served(
    client, login, project, tmp_path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.png").write_bytes(photo_path("camera.png").read_bytes())
    (image_id,) = project.add_images([outside / "secret.png"], copy=False)
    headers = login("ann")
    r = client.get(f"/api/images/{image_id}/file", headers=headers)
    assert r.status_code == 403 and "outside the project's storage" in r.json()["detail"]
    assert client.get(f"/api/images/{image_id}/thumb", headers=headers).status_code == 403


def test_extra_media_roots_can_be_allowed(project, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "cam.png").write_bytes(photo_path("camera.png").read_bytes())
    (image_id,) = project.add_images([shared / "cam.png"], copy=False)
    app = create_app(project, settings=ServerSettings(media_roots=(str(shared),)))
    with TestClient(app) as c:
        token = c.post("/api/login", json={"name": "ann", "password": "ann-password"}).json()
        r = c.get(f"/api/images/{image_id}/file")  # with the cookie the login set
        assert r.status_code == 200, token
        assert r.content == (shared / "cam.png").read_bytes()


def test_a_symlink_out_of_media_is_refused(client, login, project, tmp_path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(photo_path("camera.png").read_bytes())
    link = project.media.local_path() / "innocent.png"
    link.symlink_to(secret)
    (image_id,) = project.add_image_records(["innocent.png"], [512], [512])
    assert client.get(f"/api/images/{image_id}/file", headers=login("ann")).status_code == 403


@pytest.mark.parametrize(
    "name,data,where",
    [
        ("notes.txt", b"hello", "files[0]"),
        ("photo.png", b"not an image at all", "files[0] (photo.png)"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "files[0] (photo.png)"),
        ("", b"x", None),
        ("../../etc/passwd", b"root:x:0:0", "files[0]"),
    ],
)
def test_bad_uploads_are_refused_and_write_nothing(client, login, project, name, data, where):
    before = sorted(p.name for p in project.media.local_path().iterdir())
    r = _upload(client, login("designer"), (name, data, "application/octet-stream"))
    assert r.status_code == 422, r.text
    if where:
        assert r.json()["where"] == where
    assert sorted(p.name for p in project.media.local_path().iterdir()) == before
    assert len(project.images()) == len(PHOTOS)


def test_a_traversal_name_is_flattened_into_media(client, login, project) -> None:
    data = photo_path("coffee.png").read_bytes()
    r = _upload(client, login("designer"), ("../../../../tmp/evil.png", data, "image/png"))
    assert r.status_code == 201
    loc = project.image_location(r.json()["images"][0]["id"])
    assert loc.relative_to(project.media) == "evil.png"


def test_one_bad_file_rejects_the_whole_upload(client, login, project) -> None:
    good = ("a.png", photo_path("coffee.png").read_bytes(), "image/png")
    bad = ("b.png", b"garbage", "image/png")
    r = _upload(client, login("designer"), good, bad)
    assert r.status_code == 422 and r.json()["where"].startswith("files[1]")
    assert len(project.images()) == len(PHOTOS)


def test_upload_size_limits(project) -> None:
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    settings = ServerSettings(max_upload_bytes=100_000, max_request_bytes=600_000)
    data = photo_path("coffee.png").read_bytes()  # ~470 kB
    with TestClient(create_app(project, settings=settings)) as c:
        c.post("/api/login", json={"name": "designer", "password": "designer-password"})
        r = c.post("/api/images", files=[("files", ("c.png", data, "image/png"))])
        assert r.status_code == 422 and "upload limit" in r.json()["detail"]
        two = [("files", (f"c{i}.png", data, "image/png")) for i in range(2)]
        assert c.post("/api/images", files=two).status_code == 413
    assert len(project.images()) == len(PHOTOS)


def test_labels_list_add_rename_retire(client, login) -> None:
    ann, designer = login("ann"), login("designer")
    names = [label["name"] for label in client.get("/api/labels", headers=ann).json()]
    assert names == ["cat", "cup", "person"]
    r = client.post(
        "/api/labels", json={"name": "dog", "color": "#00ff00", "code": "D"}, headers=designer
    )
    assert r.status_code == 201
    dog = r.json()
    assert (dog["name"], dog["color"], dog["code"], dog["retired"]) == (
        "dog",
        "#00ff00",
        "D",
        False,
    )
    child = {"name": "puppy", "parent": dog["id"]}
    assert client.post("/api/labels", json=child, headers=designer).json()["parent_id"] == dog["id"]
    r = client.patch(f"/api/labels/{dog['id']}", json={"name": "hound"}, headers=designer)
    assert r.json()["name"] == "hound"
    clash = client.patch(f"/api/labels/{dog['id']}", json={"name": "cat"}, headers=designer)
    assert clash.status_code == 409
    assert client.delete(f"/api/labels/{dog['id']}", headers=designer).status_code == 200
    assert "hound" not in [x["name"] for x in client.get("/api/labels", headers=ann).json()]
    retired = client.get("/api/labels?include_retired=true", headers=ann).json()
    assert [x["retired"] for x in retired if x["name"] == "hound"] == [True]


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": "x" * 201}, {"name": "ok", "color": "red"},
     {"name": "ok", "color": "#12345"}, {"name": "ok", "parent": 0}, {"name": "a\x01b"},
     {"name": ["list"]}],
)  # fmt: skip
def test_bad_labels_are_422(client, login, body) -> None:
    r = client.post("/api/labels", json=body, headers=login("designer"))
    assert r.status_code == 422, r.text


def test_unknown_labels_are_404(client, login) -> None:
    headers = login("designer")
    assert client.patch("/api/labels/99", json={"name": "x"}, headers=headers).status_code == 404
    assert client.delete("/api/labels/99", headers=headers).status_code == 404
    assert (
        client.post("/api/labels", json={"name": "x", "parent": 99}, headers=headers).status_code
        == 404
    )
