"""Models through the API: list, train a real image classifier on the test photos in the
background, see its job and state, run inference that orders a task's items and shows up as
proposals; hostile names, options and ids."""

from __future__ import annotations

import time

import numpy as np
import pytest

from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from tests.server.helpers import SHAPES_TASK


def wait_job(client, headers, kind: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [j for j in client.get("/api/jobs", headers=headers).json() if j["kind"] == kind]
        if jobs and jobs[0]["state"] in ("finished", "failed", "cancelled"):
            return jobs[0]
        time.sleep(0.2)
    raise AssertionError(f"no {kind} job finished in {timeout} s")


def _image_labels(project) -> None:
    """One image label per photo (coffee: cup, chelsea: cat, astronaut: person, rocket:
    person), the training data of an image classifier."""
    images = project.images()
    labels = {r["name"]: int(r["id"]) for r in project.labels().to_dict("records")}
    names = [str(loc).rsplit("/", 1)[-1] for loc in images["location"]]
    wanted = {"coffee.png": "cup", "chelsea.png": "cat", "astronaut.png": "person",
              "rocket.jpg": "person"}  # fmt: skip
    n = len(names)
    ann = Annotations.from_boxes(
        images["id"].to_numpy(np.int64),
        np.full((n, 4), np.nan),
        np.array([labels[wanted[x]] for x in names], np.int64),
        kind=Kind.LABEL,
    )
    project.add_annotations(ann, author="designer")


def test_models_are_listed(client, login) -> None:
    models = {m["name"]: m for m in client.get("/api/models", headers=login("designer")).json()}
    assert models["image-classifier"]["available"] is True
    assert client.get("/api/models/states", headers=login("designer")).json() == []


@pytest.mark.slow
def test_train_then_infer_orders_a_task_and_proposes(client, login, project) -> None:
    _image_labels(project)
    d = login("designer")
    r = client.post(
        "/api/models/image-classifier/train", json={"options": {"epochs": 5}}, headers=d
    )
    assert r.status_code == 202, r.text
    assert r.json()["options"]["epochs"] == 5
    job = wait_job(client, d, "train")
    assert job["state"] == "finished", job
    states = client.get("/api/models/states", headers=d).json()
    assert [s["model"] for s in states] == ["image-classifier"] and states[0]["is_current"]
    r = client.post("/api/models/infer", json={"model": "image-classifier", "task": SHAPES_TASK},
                    headers=d)  # fmt: skip
    assert r.status_code == 202, r.text
    job = wait_job(client, d, "inference")
    assert job["state"] == "finished", job
    # the annotator now sees the model's image labels as proposals, with their confidence
    payload = client.post(f"/api/tasks/{SHAPES_TASK}/next", headers=login("ann")).json()
    assert payload["proposals"], payload
    assert all(0 <= p["confidence"] <= 1 for p in payload["proposals"])
    r = client.post(f"/api/models/states/{states[0]['id']}/current", headers=d)
    assert r.status_code == 200


@pytest.mark.parametrize(
    "name", ["os.system", "annoloop.ai.models.image_classifier.ImageClassifier", "nope", "..%2F"]
)
def test_only_registered_models_can_be_trained(client, login, name) -> None:
    r = client.post(f"/api/models/{name}/train", json={}, headers=login("designer"))
    assert r.status_code == 404, r.text


@pytest.mark.parametrize(
    "body,where",
    [
        ({"options": {"epochs": "many"}}, "body.options"),
        ({"options": {"x": "y" * 70000}}, "body.options"),
        ({"options": []}, "body.options"),
        ({"validation_fraction": 1.5}, "body.validation_fraction"),
        ({"margin": "nan"}, "body.margin"),
    ],
)
def test_bad_training_options_are_422(client, login, body, where) -> None:
    r = client.post("/api/models/image-classifier/train", json=body, headers=login("designer"))
    assert r.status_code == 422, r.text
    assert r.json()["where"] == where
    assert client.get("/api/jobs", headers=login("designer")).json() == []


def test_bad_inference_requests(client, login, project) -> None:
    d = login("designer")
    assert client.post("/api/models/infer", json={}, headers=d).status_code == 422
    assert client.post("/api/models/infer", json={"state_id": 99}, headers=d).status_code == 404
    r = client.post("/api/models/infer", json={"model": "image-classifier"}, headers=d)
    assert r.status_code == 422 and "no current state" in r.json()["detail"]
    assert client.post("/api/models/infer", json={"model": "os.path"}, headers=d).status_code == 404
    state = project.add_model_state("image-classifier", "memory://nothing", label_map={"0": "cat"})
    body = {"state_id": state, "ranker": "os:system"}
    r = client.post("/api/models/infer", json=body, headers=d)
    assert r.status_code == 422 and r.json()["where"] == "body.ranker"
    body = {"state_id": state, "ranker": "no-such-ranker"}
    assert client.post("/api/models/infer", json=body, headers=d).status_code == 404
    body = {"state_id": state, "task": 99}
    assert client.post("/api/models/infer", json=body, headers=d).status_code == 404
    body = {"state_id": state, "image_ids": [0]}
    assert client.post("/api/models/infer", json=body, headers=d).status_code == 422
    assert client.post("/api/models/states/99/current", headers=d).status_code == 404
    r = client.post(f"/api/models/states/{state}/current", headers=d)
    assert r.status_code == 200
    assert client.get("/api/models/states?model=image-classifier", headers=d).json()[0][
        "is_current"
    ]
