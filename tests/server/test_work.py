"""Tasks and work items over the API: next (priority order, lock, expiry), drafts, submit,
junk, skip, release, review; every refusal names what was wrong."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.server.helpers import CATS_TASK, PHOTOS, SHAPES_TASK, shape_box, shape_point


def _next(client, headers, task=SHAPES_TASK, **params):
    return client.post(f"/api/tasks/{task}/next", headers=headers, params=params)


def test_tasks_list_with_counts(client, login) -> None:
    tasks = client.get("/api/tasks", headers=login("ann")).json()
    assert [t["name"] for t in tasks] == ["shapes", "cats"]
    assert tasks[0]["counts"] == {"open": len(PHOTOS), "locked": 0, "done": 0, "junk": 0}
    assert tasks[1]["kinds"] == ["point"] and tasks[1]["labels"] == [1]


def test_create_task_and_request_work(client, login, project) -> None:
    headers = login("designer")
    body = {"name": "cups", "kinds": ["bbox", "bbox"], "labels": ["cup"], "instructions": "all"}
    r = client.post("/api/tasks", json=body, headers=headers)
    assert r.status_code == 201
    task = r.json()
    assert task["kinds"] == ["bbox"] and task["labels"] == [2]
    assert client.post("/api/tasks", json=body, headers=headers).status_code == 409
    r = client.post(
        f"/api/tasks/{task['id']}/requests",
        json={"image_ids": [1, 3], "priority": [1, 5]},
        headers=headers,
    )
    assert r.json() == {"created": 2}
    again = client.post(
        f"/api/tasks/{task['id']}/requests", json={"all_images": True}, headers=headers
    )
    assert again.json() == {"created": len(PHOTOS) - 2}
    items = project.work_items(task["id"])
    assert sorted(items.loc[items["priority"] > 0, "image_id"]) == [1, 3]
    missing = client.post(
        f"/api/tasks/{task['id']}/requests", json={"image_ids": [99]}, headers=headers
    )
    assert missing.status_code == 404
    assert (
        client.post(
            "/api/tasks/99/requests", json={"all_images": True}, headers=headers
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "body",
    [{"name": "t", "kinds": []}, {"name": "t", "kinds": ["circle"]}, {"name": ""},
     {"name": "t", "labels": ["no-such-label"]}, {"name": "t", "instructions": "x" * 20001}],
)  # fmt: skip
def test_bad_tasks_are_refused(client, login, body) -> None:
    r = client.post("/api/tasks", json=body, headers=login("designer"))
    assert r.status_code in (404, 422), r.text


@pytest.mark.parametrize(
    "body",
    [{}, {"image_ids": [1], "all_images": True}, {"image_ids": [0]},
     {"image_ids": [1, 2], "priority": [1]}, {"all_images": True, "priority": [1]},
     {"image_ids": [1], "priority": "high"}, {"image_ids": [1], "iteration": -1}],
)  # fmt: skip
def test_bad_requests_are_422(client, login, body) -> None:
    r = client.post(f"/api/tasks/{SHAPES_TASK}/requests", json=body, headers=login("designer"))
    assert r.status_code == 422, r.text


def test_next_follows_priority_and_locks(client, login, project) -> None:
    items = project.work_items(SHAPES_TASK)
    project.set_priorities(items["id"], np.arange(len(items)))  # the last image first
    ann, ann2 = login("ann"), login("ann2")
    first = _next(client, ann).json()
    assert first["item"]["image_id"] == len(PHOTOS)
    assert first["item"]["state"] == "locked" and first["item"]["locked_by"] == "ann"
    assert first["image"]["url"] == f"/api/images/{len(PHOTOS)}/file"
    assert first["draft"] is None and first["proposals"] == []
    # asking again returns the same item (the user's lock comes first)
    assert _next(client, ann).json()["item"]["id"] == first["item"]["id"]
    second = _next(client, ann2).json()
    assert second["item"]["image_id"] == len(PHOTOS) - 1
    counts = client.get(f"/api/tasks/{SHAPES_TASK}", headers=ann).json()["counts"]
    assert counts["locked"] == 2


def test_draft_save_reload_and_submit(client, login, project) -> None:
    ann = login("ann")
    item = _next(client, ann).json()["item"]
    shapes = [shape_box(1), shape_point(2), {"kind": "label", "label": 3}]
    r = client.put(
        f"/api/items/{item['id']}/draft", json={"shapes": shapes, "revision": 5}, headers=ann
    )
    assert r.json() == {"revision": 5, "saved": True}
    # an older revision arriving late does not overwrite the newer draft
    r = client.put(
        f"/api/items/{item['id']}/draft", json={"shapes": [], "revision": 3}, headers=ann
    )
    assert r.json() == {"revision": 5, "saved": False}
    payload = client.get(f"/api/items/{item['id']}", headers=ann).json()
    assert [s["kind"] for s in payload["draft"]["shapes"]] == ["bbox", "point", "label"]
    assert payload["draft"]["revision"] == 5 and payload["annotations"] == []
    # the next call (a reload) brings the draft back
    assert _next(client, ann).json()["draft"]["shapes"] == payload["draft"]["shapes"]
    assert len(project.annotations()) == 0  # drafts are not annotations yet
    r = client.post(f"/api/items/{item['id']}/submit", json={"time_spent": 12.5}, headers=ann)
    assert r.status_code == 200 and len(r.json()["annotation_ids"]) == 3
    stored = project.annotations(task=SHAPES_TASK)
    assert list(stored["kind"]) == ["bbox", "point", "label"]
    assert list(stored["author"]) == ["ann"] * 3 and np.isclose(stored["time_spent"].sum(), 12.5)
    assert np.allclose(stored.loc[0, ["x", "y", "w", "h"]].astype(float), [0.5, 0.5, 0.2, 0.2])
    done = client.get(f"/api/items/{item['id']}", headers=ann).json()
    assert done["item"]["state"] == "done" and done["draft"] is None
    assert [a["kind"] for a in done["annotations"]] == ["bbox", "point", "label"]
    # a finished item cannot be submitted or drafted again
    again = client.post(f"/api/items/{item['id']}/submit", json={"shapes": []}, headers=ann)
    assert again.status_code == 409
    r = client.put(
        f"/api/items/{item['id']}/draft", json={"shapes": [], "revision": 9}, headers=ann
    )
    assert r.status_code == 409


def test_submit_with_shapes_in_the_body(client, login, project) -> None:
    ann = login("ann")
    item = _next(client, ann).json()["item"]
    polygon = {"kind": "polygon", "label": 1, "polygon": [[[[0.1, 0.1], [0.4, 0.1], [0.3, 0.5]]]]}
    line = {"kind": "line", "label": 2, "line": [[0.1, 0.9], [0.9, 0.9]]}
    r = client.post(
        f"/api/items/{item['id']}/submit", json={"shapes": [polygon, line]}, headers=ann
    )
    assert r.status_code == 200, r.text
    stored = project.annotation_arrays(task=SHAPES_TASK)
    assert len(stored) == 2
    assert np.allclose(stored.box[0], [0.25, 0.3, 0.3, 0.4])  # the polygon's bounding box
    assert np.allclose(stored.shape[1], [[0.1, 0.9], [0.9, 0.9]])


@pytest.mark.parametrize(
    "shape,where",
    [
        ({"kind": "bbox", "label": 1, "box": [0.5, 0.5, 2.0, 0.1]}, "shapes[1]"),
        ({"kind": "bbox", "label": 1, "box": [0.5, 0.5, 0.0, 0.1]}, "shapes[1]"),
        ({"kind": "point", "label": 1, "point": [1.5, 0.5]}, "shapes[1]"),
        ({"kind": "point", "label": 9, "point": [0.5, 0.5]}, "shapes[1].label"),
        ({"kind": "mask", "label": 1, "mask": {"size": [4, 4], "counts": "04"}}, "shapes[1].kind"),
        ({"kind": "line", "label": 1, "line": [[0.1, 0.1], [2, 2]]}, "shapes[1]"),
    ],
)
def test_bad_geometry_is_422_naming_the_shape(client, login, project, shape, where) -> None:
    ann = login("ann")
    item = _next(client, ann).json()["item"]
    body = {"shapes": [shape_box(), shape], "revision": 1}
    r = client.put(f"/api/items/{item['id']}/draft", json=body, headers=ann)
    assert r.status_code == 422, r.text
    assert r.json()["where"] == where
    r = client.post(f"/api/items/{item['id']}/submit", json={"shapes": body["shapes"]}, headers=ann)
    assert r.status_code == 422 and r.json()["where"] == where
    assert len(project.annotations()) == 0
    assert client.get(f"/api/items/{item['id']}", headers=ann).json()["item"]["state"] == "locked"


@pytest.mark.parametrize(
    "shape,field",
    [
        ({"kind": "bbox", "label": 1}, "shapes.1"),
        ({"kind": "bbox", "label": 1, "box": [0.5, 0.5, 0.1]}, "shapes.1.box"),
        ({"kind": "bbox", "label": 1, "box": [0.5, 0.5, 0.1, 0.1], "point": [1, 1]}, "shapes.1"),
        ({"kind": "point", "label": -1, "point": [0.5, 0.5]}, "shapes.1.label"),
        ({"kind": "point", "label": 1, "point": ["a", 0.5]}, "shapes.1.point.0"),
        ({"kind": "circle", "label": 1}, "shapes.1.kind"),
        ({"kind": "polygon", "label": 1, "polygon": [[[[0, 0], [1, 1]]]]}, "shapes.1.polygon"),
        ({"kind": "point", "label": 1, "point": [0.5, 0.5], "extra": 1}, "shapes.1.extra"),
        (
            {"kind": "point", "label": 1, "point": [0.5, 0.5], "confidence": 2},
            "shapes.1.confidence",
        ),
    ],
)
def test_malformed_shapes_are_422_naming_the_field(client, login, shape, field) -> None:
    ann = login("ann")
    item = _next(client, ann).json()["item"]
    body = {"shapes": [shape_box(), shape], "revision": 1}
    r = client.put(f"/api/items/{item['id']}/draft", json=body, headers=ann)
    assert r.status_code == 422
    assert r.json()["where"].startswith(f"body.{field}"), r.json()


def test_task_rules_apply_kinds_and_labels(client, login) -> None:
    ann = login("ann")
    item = _next(client, ann, task=CATS_TASK).json()["item"]
    url = f"/api/items/{item['id']}/draft"
    r = client.put(url, json={"shapes": [shape_box(1)], "revision": 1}, headers=ann)
    assert r.status_code == 422 and r.json()["where"] == "shapes[0].kind"
    r = client.put(url, json={"shapes": [shape_point(2)], "revision": 1}, headers=ann)
    assert r.status_code == 422 and r.json()["where"] == "shapes[0].label"
    assert client.put(url, json={"shapes": [shape_point(1)], "revision": 1}, headers=ann).is_success


def test_retired_labels_cannot_be_used(client, login) -> None:
    ann = login("ann")
    assert client.delete("/api/labels/2", headers=login("designer")).status_code == 200
    item = _next(client, ann).json()["item"]
    r = client.post(f"/api/items/{item['id']}/submit", json={"shapes": [shape_box(2)]}, headers=ann)
    assert r.status_code == 422 and r.json()["where"] == "shapes[0].label"


def test_only_the_holder_may_work_on_an_item(client, login) -> None:
    ann, ann2, designer = login("ann"), login("ann2"), login("designer")
    item = _next(client, ann).json()["item"]
    url = f"/api/items/{item['id']}"
    assert client.get(url, headers=ann2).status_code == 403
    assert client.get(url, headers=designer).status_code == 200
    body = {"shapes": [shape_box()], "revision": 1}
    r = client.put(f"{url}/draft", json=body, headers=ann2)
    assert r.status_code == 409 and "locked by another user" in r.json()["detail"]
    assert client.post(f"{url}/submit", json={"shapes": []}, headers=ann2).status_code == 409
    assert client.post(f"{url}/junk", json={}, headers=ann2).status_code == 409
    assert client.post(f"{url}/release", headers=ann2).status_code == 409
    assert client.post(f"{url}/skip", headers=ann2).status_code == 409


def test_lock_expiry_hands_the_item_to_someone_else(client, login, project) -> None:
    ann, ann2 = login("ann"), login("ann2")
    project.set_priorities(project.work_items(SHAPES_TASK)["id"], [9, 0, 0, 0])
    first = _next(client, ann, lock_seconds=0.3).json()["item"]
    time.sleep(0.5)
    # the expired lock still counts for its holder while nobody else took the item
    r = client.put(
        f"/api/items/{first['id']}/draft",
        json={"shapes": [shape_box()], "revision": 1},
        headers=ann,
    )
    assert r.is_success
    time.sleep(0.01)
    # the draft extended the lock (settings.lock_seconds): ann2 gets another item
    assert _next(client, ann2).json()["item"]["id"] != first["id"]
    project.release_item(project.work_items(SHAPES_TASK, "locked")["id"].iloc[-1], "ann2")
    # let ann's lock run out without activity: ann2 takes the item, ann's submit is refused
    _next(client, ann, lock_seconds=0.2)
    time.sleep(0.4)
    taken = _next(client, ann2).json()
    assert taken["item"]["id"] == first["id"] and taken["item"]["locked_by"] == "ann2"
    assert taken["draft"]["shapes"] == [shape_box()]  # ann's work is there to continue
    r = client.post(f"/api/items/{first['id']}/submit", json={"shapes": []}, headers=ann)
    assert r.status_code == 409


def test_lock_seconds_are_validated(client, login) -> None:
    ann = login("ann")
    for bad in ("0", "-1", "nan", "inf", "abc"):
        assert _next(client, ann, lock_seconds=bad).status_code == 422, bad


def test_junk_release_and_skip(client, login, project) -> None:
    ann = login("ann")
    first = _next(client, ann).json()["item"]
    r = client.post(f"/api/items/{first['id']}/junk", json={"time_spent": 3}, headers=ann)
    assert r.json()["state"] == "junk"
    second = _next(client, ann).json()["item"]
    assert second["id"] != first["id"]
    assert client.post(f"/api/items/{second['id']}/release", headers=ann).json()["state"] == "open"
    # released: it comes straight back (same priority)
    assert _next(client, ann).json()["item"]["id"] == second["id"]
    skipped = client.post(f"/api/items/{second['id']}/skip", headers=ann).json()
    assert skipped["state"] == "open" and skipped["priority"] < 0
    # skipped: every other open item comes first
    seen = []
    while (r := _next(client, ann)).status_code == 200:
        item = r.json()["item"]
        seen.append(item["id"])
        client.post(f"/api/items/{item['id']}/submit", json={"shapes": []}, headers=ann)
    assert seen[-1] == second["id"] and len(seen) == len(PHOTOS) - 1
    assert r.status_code == 204
    counts = project.stats()["work_items"]["shapes"]
    assert counts == {"done": len(PHOTOS) - 1, "junk": 1}


def test_review_accept_and_reject(client, login, project) -> None:
    ann, designer = login("ann"), login("designer")
    item = _next(client, ann).json()["item"]
    url = f"/api/items/{item['id']}"
    assert (
        client.post(f"{url}/review", json={"verdict": "accept"}, headers=designer).status_code
        == 409
    )
    client.post(f"{url}/submit", json={"shapes": [shape_box()]}, headers=ann)
    listing = client.get(f"/api/tasks/{SHAPES_TASK}/items?state=done", headers=designer).json()
    assert listing["total"] == 1 and listing["items"][0]["review"] is None
    r = client.post(
        f"{url}/review", json={"verdict": "reject", "comment": "box too big"}, headers=designer
    )
    assert r.json()["reopened"] == 1 and r.json()["review"]["by"] == "designer"
    reopened = project.work_items(SHAPES_TASK, "open")
    assert (reopened["image_id"] == item["image_id"]).sum() == 1
    assert int(reopened.loc[reopened["image_id"] == item["image_id"], "iteration"].iloc[0]) == 1
    listing = client.get(f"/api/tasks/{SHAPES_TASK}/items?state=done", headers=designer).json()
    assert listing["items"][0]["review"]["verdict"] == "reject"
    bad = client.post(f"{url}/review", json={"verdict": "maybe"}, headers=designer)
    assert bad.status_code == 422


def test_proposals_from_the_current_model(client, login, project) -> None:
    from annoloop.geometry import Annotations

    state = project.add_model_state("det", "models/det-1.bin", label_map=["cat", "cup"])
    old = project.add_model_state("det", "models/det-0.bin", label_map=["cat", "cup"])
    project.set_current_state(state)
    pred = Annotations.from_boxes(
        [1, 1], [[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.1, 0.1]], [1, 2], [0.9, 0.4]
    )
    project.add_predictions(pred, state)
    project.add_predictions(Annotations.from_boxes([1], [[0.5, 0.5, 0.1, 0.1]], [1], [0.99]), old)
    project.set_priorities(project.work_items(SHAPES_TASK)["id"], [9, 0, 0, 0])
    payload = _next(client, login("ann")).json()
    proposals = payload["proposals"]
    assert [p["label_name"] for p in proposals] == ["cat", "cup"]
    assert [round(p["confidence"], 2) for p in proposals] == [0.9, 0.4]
    assert proposals[0]["box"] == pytest.approx([0.3, 0.3, 0.2, 0.2])
    assert proposals[0]["ref"].startswith("p") and proposals[0]["model_state_id"] == state
    # accepting a proposal: it is submitted as a shape that keeps its confidence and source ref
    accepted = {k: proposals[0][k] for k in ("kind", "label", "box", "confidence")}
    accepted["proposal"] = proposals[0]["ref"]
    ann = login("ann")
    body = {"shapes": [accepted], "rejected": [proposals[1]["ref"]], "revision": 1}
    assert client.put(
        f"/api/items/{payload['item']['id']}/draft", json=body, headers=ann
    ).is_success
    r = client.post(f"/api/items/{payload['item']['id']}/submit", json={}, headers=ann)
    assert r.status_code == 200
    stored = project.annotations(task=SHAPES_TASK)
    assert stored["confidence"].tolist() == pytest.approx([0.9])


def test_task_items_paging_and_filters(client, login) -> None:
    designer = login("designer")
    r = client.get(f"/api/tasks/{SHAPES_TASK}/items?limit=2&offset=1", headers=designer).json()
    assert r["total"] == len(PHOTOS) and len(r["items"]) == 2
    assert (
        client.get(f"/api/tasks/{SHAPES_TASK}/items?state=weird", headers=designer).status_code
        == 422
    )
    assert client.get("/api/tasks/99/items", headers=designer).status_code == 404
    assert client.get("/api/tasks/99", headers=designer).status_code == 404
    assert client.post("/api/tasks/99/next", headers=designer).status_code == 404
    assert client.get("/api/items/999", headers=designer).status_code == 404
