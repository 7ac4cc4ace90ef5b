"""Model states, predictions and jobs."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from tests.store.helpers import add_records, boxes, every_kind


def test_model_states_version_and_current(project):
    first = project.add_model_state(
        "detector", "file:///models/a.safetensors", label_map={"0": "fish"}, metrics={"map": 0.5}
    )
    second = project.add_model_state(
        "detector", "file:///models/b.safetensors", label_map=["fish"], parent=first,
        options={"epochs": np.int64(3)},
    )  # fmt: skip
    other = project.add_model_state("ranker", "file:///r", label_map={})
    df = project.model_states("detector")
    assert df["version"].tolist() == [1, 2]
    assert df["parent_id"].tolist()[1] == first
    assert df["options"].tolist()[1] == {"epochs": 3}
    assert df["metrics"].tolist()[0] == {"map": 0.5}
    assert not df["is_current"].any()
    project.set_current_state(first)
    project.set_current_state(second)
    project.set_current_state(other)
    current = project.model_states().set_index("id")["is_current"]
    assert current.to_dict() == {first: False, second: True, other: True}
    with pytest.raises(NotFound):
        project.set_current_state(999)
    with pytest.raises(NotFound):
        project.add_model_state("detector", "x", label_map={}, parent=999)
    with pytest.raises(InvalidInput):
        project.add_model_state("detector", "x", label_map={"a": float("nan")})


def test_predictions_with_scores(project):
    images = add_records(project, 3)
    labels = project.add_labels(["a", "b"])
    state = project.add_model_state("m", "mem", label_map=["a", "b"])
    ann = boxes(images, labels, 4)
    ann.confidence = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    ids = project.add_predictions(ann, state, scores=scores, priorities=[1, 2, 3, 4])
    df = project.predictions(model_state_id=state)
    assert df["id"].tolist() == ids.tolist()
    np.testing.assert_allclose(np.stack(df["scores"]), scores.astype(np.float32))
    assert df["priority"].tolist() == [1, 2, 3, 4]
    assert df["label"].tolist() == [("a", "b")[int(v == labels[1])] for v in ann.label]
    np.testing.assert_allclose(df["confidence"], ann.confidence, rtol=1e-6)
    assert len(project.predictions(image=int(ann.image[0]))) == int(
        (ann.image == ann.image[0]).sum()
    )
    shapes = every_kind(int(images[0]), int(labels[0]))
    project.add_predictions(shapes, state)
    back = project.predictions(image=int(images[0]))
    assert set(back["kind"]) >= {"polygon", "mask", "line"}
    assert back["scores"].iloc[-1] is None
    with pytest.raises(InvalidInput, match="scores has shape"):
        project.add_predictions(ann, state, scores=np.ones((3, 2)))
    with pytest.raises(NotFound):
        project.add_predictions(ann, 999)
    with pytest.raises(InvalidInput, match="row 0"):
        bad = ann[[0]]
        bad.image[0] = 777
        project.add_predictions(bad, state)
    assert project.add_predictions(Annotations.empty(), state).size == 0
    assert project.stats()["predictions"] == len(ids) + len(shapes)


def test_job_lifecycle(project):
    job = project.add_job("train", "train detector", spec={"epochs": 2})
    info = project.job(job)
    assert info["state"] == "queued" and info["spec"] == {"epochs": 2} and info["log"] == ""
    project.update_job(job, state="running", progress_total=10)
    project.update_job(job, progress_done=4, message="epoch 1")
    project.append_job_log(job, "epoch 1 loss 0.5\n")
    project.append_job_log(job, "epoch 2 loss 0.4\n")
    info = project.job(job)
    assert info["started_at"] is not None and info["started_at"].tzinfo is not None
    assert info["log"] == "epoch 1 loss 0.5\nepoch 2 loss 0.4\n"
    assert (info["progress_done"], info["progress_total"], info["message"]) == (4, 10, "epoch 1")
    project.update_job(job, state="finished", result={"map": 0.7})
    failed = project.add_job("script", "broken")
    project.update_job(failed, state="failed", error="boom", traceback="Traceback ...")
    assert project.job(job)["finished_at"] is not None
    df = project.jobs()
    assert df["state"].tolist() == ["finished", "failed"] and "log" not in df.columns
    assert project.jobs(state="failed")["id"].tolist() == [failed]
    assert project.jobs(state=["queued"]).empty
    with pytest.raises(InvalidInput, match="unknown job state"):
        project.update_job(job, state="exploded")
    with pytest.raises(InvalidInput, match="unknown job field"):
        project.update_job(job, colour="red")
    with pytest.raises(NotFound):
        project.update_job(999, state="running")
    with pytest.raises(NotFound):
        project.append_job_log(999, "x")
    with pytest.raises(NotFound):
        project.job(999)
    assert project.stats()["jobs"] == 2
