"""``/api/detections`` on a real server: roles, hostile bodies (nothing written), boxes in
pixels, retried uploads, video frames; the body message round-trips through JSON."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import numpy as np
import pytest

import annoloop.detect as detect
from annoloop.detect.messages import MAX_BOXES, MAX_TOTAL_BOXES, DetectionsIn
from tests.detect.conftest import Served


def _body(image_id: int = 1, **media: Any) -> dict[str, Any]:
    one = {"image_id": image_id, "boxes": [[0.45, 0.23, 0.17, 0.21]], "labels": ["face"],
           "scores": [0.99], "frames_processed": 1, "seconds": 0.5, **media}  # fmt: skip
    return {
        "detector": {"kind": "mtcnn", "name": "mtcnn", "version": "t1", "classes": ["face"]},
        "label_attr": "Species",
        "confidence_attr": "Confidence",
        "media": [one],
    }


def _client(served: Served, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=served.url, headers=headers, timeout=30)


def _unchanged(served: Served, labels: list[str]) -> None:
    p = served.project
    assert len(p.predictions()) == 0 and len(p.model_states()) == 0
    assert not any(isinstance(m, dict) and m for m in p.images()["meta"])
    assert p.labels()["name"].tolist() == labels


def _hostile(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``body`` with ``value`` at ``path`` (dotted; numbers index lists)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    target: Any = out
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return out


def test_roles_and_authentication(served: Served) -> None:
    with _client(served, None) as anonymous:
        r = anonymous.post("/api/detections", json=_body())
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/api/detections/stamps").status_code == 401
    with _client(served, served.annotator_key) as annotator:
        r = annotator.post("/api/detections", json=_body())
        assert r.status_code == 403 and "designer" in r.json()["detail"]
        assert annotator.get("/api/detections/stamps").status_code == 403
    with _client(served, "alk_forged") as forged:
        assert forged.post("/api/detections", json=_body()).status_code == 401
    _unchanged(served, [])


BOX = "media.0.boxes.0"
HOSTILE = [
    ("detector", "not a detector", 422),
    ("detector.kind", "yolo", 422),
    ("detector.classes", [], 422),
    ("detector.classes", ["face", "face"], 422),
    ("detector.classes", [""], 422),
    ("detector.options", {"x": "y" * 70_000}, 422),
    ("media", [], 422),
    ("media.0.image_id", "one", 422),
    ("media.0.image_id", 0, 422),
    ("media.0.image_id", 2**70, 422),
    ("media.0.image_id", 999, 404),
    ("media.0.boxes", "abc", 422),
    (BOX, [0.5, 0.5, 0.2], 422),
    (BOX, [0.5, 0.5, -0.1, 0.2], 422),  # negative width
    (BOX, [0.5, 0.5, 0.0, 0.2], 422),  # empty
    (BOX, [0.95, 0.5, 0.2, 0.2], 422),  # right edge at 1.05
    (BOX, [0.5, -0.1, 0.1, 0.1], 422),
    (BOX, [0.5, 0.5, 1e12, 1], 422),
    (BOX, ["a", 0.5, 0.1, 0.1], 422),
    ("media.0.labels", ["cat"], 422),  # not a class of the detector
    ("media.0.labels", [], 422),  # not one per box
    ("media.0.scores", [1.5], 422),
    ("media.0.scores", [-0.1], 422),
    ("media.0.frames", [3], 422),  # a still image has no frame 3
    ("media.0.frames_processed", -1, 422),
    ("media.0.seconds", -2.0, 422),
    ("media.0.extra", 1, 422),
    ("units", "inches", 422),
    ("label_attr", "", 422),
    ("stamp_key", "k" * 101, 422),
]


def test_hostile_bodies_are_refused_and_write_nothing(served: Served) -> None:
    with _client(served, served.designer_key) as client:
        for path, value, status in HOSTILE:  # one server for all: each must write nothing
            r = client.post("/api/detections", json=_hostile(_body(), path, value))
            assert r.status_code == status, (path, value, r.text)
            assert r.json()["detail"], (path, value)
    _unchanged(served, [])


def test_lists_over_the_limits_bad_json_and_partly_bad_requests(served: Served) -> None:
    with _client(served, served.designer_key) as client:
        n = MAX_BOXES + 1
        big = _body(boxes=[[0.5, 0.5, 0.1, 0.1]] * n, labels=["face"] * n, scores=[0.5] * n)
        r = client.post("/api/detections", json=big)
        assert r.status_code == 422 and "media.0.boxes" in r.json()["where"]
        # under the per-media limit, over the per-request one (images repeat: also refused)
        k = MAX_TOTAL_BOXES // MAX_BOXES + 1
        one = _body(boxes=[[0.5, 0.5, 0.1, 0.1]] * MAX_BOXES, labels=["face"] * MAX_BOXES,
                    scores=[0.5] * MAX_BOXES)["media"][0]  # fmt: skip
        many = {**_body(), "media": [{**one, "image_id": i + 1} for i in range(k)]}
        r = client.post("/api/detections", json=many)
        assert r.status_code == 422 and "boxes in one request" in r.text
        dup = {**_body(), "media": _body()["media"] * 2}
        r = client.post("/api/detections", json=dup)
        assert r.status_code == 422 and "listed twice" in r.text
        r = client.post(
            "/api/detections", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422
        r = client.post(
            "/api/detections",
            content=b"x" * (9 << 20),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413
        # one good media and one with a box outside its image: nothing of either is written
        mixed = _body()
        mixed["media"].append(_body(2, boxes=[[1.5, 0.5, 0.1, 0.1]])["media"][0])
        r = client.post("/api/detections", json=mixed)
        assert r.status_code == 422 and r.json()["where"] == "media[1].boxes[0]"
        # a class that is not a label, and creating labels is off
        r = client.post("/api/detections", json={**_body(), "create_labels": False})
        assert r.status_code == 422 and "not a label of the project" in r.text
        # the stamps route checks its query
        assert client.get("/api/detections/stamps", params={"limit": 0}).status_code == 422
        assert client.get("/api/detections/stamps", params={"key": ""}).status_code == 422
    _unchanged(served, [])


def test_store_pixels_retries_force_and_stamps(served: Served) -> None:
    p = served.project
    width, height = (int(v) for v in p.images([1])[["width", "height"]].iloc[0])
    pixel = [0.45 * width, 0.23 * height, 0.17 * width, 0.21 * height]
    body = {**_body(boxes=[pixel]), "units": "pixel"}
    with _client(served, served.designer_key) as client:
        r = client.post("/api/detections", json=body)
        assert r.status_code == 201, r.text
        answer = r.json()
        assert (
            answer["stamped"] == [1]
            and answer["already"] == []
            and len(answer["prediction_ids"]) == 1
        )
        preds = p.predictions()
        np.testing.assert_allclose(
            preds[["x", "y", "w", "h"]].to_numpy()[0], [0.45, 0.23, 0.17, 0.21]
        )
        assert preds["label"].tolist() == ["face"] and preds[
            "confidence"
        ].tolist() == pytest.approx([0.99])
        stamp = p.images([1])["meta"].iloc[0][detect.STAMP_KEY]
        assert stamp["model"] == "mtcnn@t1" and stamp["boxes"] == 1 and stamp["seconds"] == 0.5
        # a retried upload (the answer was lost) writes nothing twice
        again = client.post("/api/detections", json=body).json()
        assert again["already"] == [1] and again["prediction_ids"] == []
        # force writes again, with the same model state
        forced = client.post("/api/detections", json={**body, "force": True}).json()
        assert forced["model_state_id"] == answer["model_state_id"] and forced["stamped"] == [1]
        assert len(p.predictions()) == 2 and len(p.model_states()) == 1
        # the stamps route: by detector name@version, paged
        stamps = client.get("/api/detections/stamps", params={"model": "mtcnn@t1"}).json()
        assert [r["image_id"] for r in stamps["items"]] == [1] and stamps["next_after"] is None
        assert client.get("/api/detections/stamps", params={"model": "other@1"}).json() == {
            "items": [],
            "next_after": None,
        }
        # an image without boxes is stamped with zero boxes
        empty = _body(3, boxes=[], labels=[], scores=[])
        assert client.post("/api/detections", json=empty).json()["stamped"] == [3]
        assert p.images([3])["meta"].iloc[0][detect.STAMP_KEY]["boxes"] == 0


def test_video_boxes_become_frame_records_with_tracks(served: Served, pan_video) -> None:
    p = served.project
    (vid,) = p.add_image_records([str(pan_video)], [192], [144], video_locations=[str(pan_video)])
    body = _body(int(vid), boxes=[[0.5, 0.4, 0.2, 0.3], [0.45, 0.4, 0.2, 0.3],
                                  [0.4, 0.4, 0.2, 0.3]],
                 labels=["face"] * 3, scores=[0.9, 0.95, 0.97], frames=[0, 4, 8],
                 track_ids=[0, 0, 0], frames_processed=3)  # fmt: skip
    with _client(served, served.designer_key) as client:
        r = client.post("/api/detections", json=body)
    assert r.status_code == 201, r.text
    frames = p.images()
    frames = frames[frames["frame"].notna()]
    assert sorted(frames["frame"].astype(int).tolist()) == [0, 4, 8]
    assert all(m["track_ids"] == [0] for m in frames["meta"])
    preds = p.predictions()
    assert sorted(preds["image_id"].tolist()) == sorted(frames["id"].tolist())


def test_message_round_trips_and_builds_from_results() -> None:
    body = DetectionsIn.example()
    assert DetectionsIn.model_validate_json(body.model_dump_json()) == body
    spec = detect.parse_detector("mtcnn")
    one = np.zeros(1, np.int64)
    result = detect.MediaResult(media="x.png", kind="image", media_id=4, classes=["face"],
                                frames=one, boxes=np.array([[0.5, 0.5, 0.2, 0.2]]), labels=one,
                                scores=np.array([0.8], np.float32), track_ids=one,
                                frames_processed=1)  # fmt: skip
    from annoloop.detect.messages import body_from_results

    built = body_from_results([result], spec, detect.DetectSettings(label_attr="Kind"))
    assert built.media[0].labels == ["face"] and built.label_attr == "Kind"
    assert built.detector.spec().label() == spec.label()
    back = detect.MediaResult.from_dict(result.to_dict())
    assert back.boxes.shape == (1, 4) and back.scores.dtype == np.float32


def test_stamps_come_in_keyset_pages_and_only_exact_keys_count(served: Served) -> None:
    """Stamps are read a page at a time after an id; the stored JSON text only narrows the
    rows: a value that merely contains the key's text, or another key, is not a stamp."""
    from annoloop.detect.remote import RemoteProject

    p = served.project
    ids = p.add_image_records([f"f{i}.jpg" for i in range(25)], [64] * 25, [48] * 25)
    key = detect.STAMP_KEY
    with p.engine.begin() as conn:
        for n, image_id in enumerate(ids.tolist()):
            meta = (
                {key: {"model": "m@1", "n": n}} if n % 3 == 0
                else {"note": f'"{key}" in a value'} if n % 3 == 1
                else {"other 100%_key": 1}
            )  # fmt: skip
            conn.exec_driver_sql(
                "UPDATE image SET meta = ? WHERE id = ?", (json.dumps(meta), image_id)
            )
    stamped = [int(i) for n, i in enumerate(ids.tolist()) if n % 3 == 0]
    with _client(served, served.designer_key) as client:
        seen, after, pages = [], 0, 0
        while after is not None:
            page = client.get(
                "/api/detections/stamps", params={"after": after, "limit": 4, "model": "m@1"}
            ).json()
            seen += [r["image_id"] for r in page["items"]]
            after, pages = page["next_after"], pages + 1
        assert seen == stamped and pages == 3  # 9 stamps: 4 + 4 + 1
        assert client.get("/api/detections/stamps", params={"after": -1}).status_code == 422
    with RemoteProject(served.url, served.designer_key) as remote:
        assert sorted(remote.stamps(key, "m@1")) == stamped
    # keys with characters that need escaping in SQL patterns are found exactly
    assert [i for i, _ in p.images_with_meta("other 100%_key")] == [
        int(i) for n, i in enumerate(ids.tolist()) if n % 3 == 2
    ]
    assert p.images_with_meta("other 1", limit=5) == []
