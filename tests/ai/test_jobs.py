"""Training and inference jobs on a real project: states, promotion, priorities, failures,
cancellation, sharding on Dask and auto-training."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from annoloop.ai import service
from annoloop.ai.base import TrainingData
from annoloop.ai.project_data import load_state
from annoloop.errors import InvalidInput, NotFound
from annoloop.execution import TaskCancelled
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.store import Project
from tests.ai.conftest import make_digits_project

PIXELS = {"backbone": "pixels", "image_size": 8, "epochs": 40}
CENTROID = "tests.ai.toy_models:NearestCentroid"


def test_train_job_stores_a_versioned_current_state(digits_project: Project) -> None:
    seen: list[tuple[int, int | None, str]] = []
    result = service.train_job(
        digits_project,
        "image-classifier",
        PIXELS,
        progress=lambda d, t=None, m="": seen.append((d, t, m)),
    )
    assert result.promoted and result.previous_state_id is None
    assert result.n_train_images + result.n_validation_images == 160
    assert result.metrics["accuracy"] is not None and result.metrics["accuracy"] > 0.8
    states = digits_project.model_states("image-classifier")
    row = states.iloc[0]
    assert bool(row["is_current"]) and len(row["label_map"]) == 10
    assert row["options"]["backbone"] == "pixels"
    assert row["metrics"]["val_accuracy"] == pytest.approx(result.metrics["accuracy"])
    job = digits_project.job(result.job_id)
    assert job["state"] == "finished" and job["progress_done"] == job["progress_total"]
    assert "training and" in job["log"]
    assert seen and seen[-1][0] == seen[-1][1]
    state = load_state(digits_project, result.state_id)
    assert state.classes == [str(d) for d in range(10)]


def test_a_new_state_must_beat_the_current_one_by_the_margin(digits_project: Project) -> None:
    first = service.train_job(digits_project, "image-classifier", PIXELS)
    # same data, same options: equal accuracy never beats a positive margin
    second = service.train_job(digits_project, "image-classifier", PIXELS, margin=0.05)
    assert not second.promoted and "kept current" in second.reason
    assert second.previous_state_id == first.state_id
    assert second.previous_metrics == first.metrics
    states = digits_project.model_states("image-classifier").set_index("id")
    assert bool(states.loc[first.state_id, "is_current"])
    assert not bool(states.loc[second.state_id, "is_current"])
    # a zero margin lets an equal state through
    third = service.train_job(digits_project, "image-classifier", PIXELS, margin=0.0)
    assert third.promoted


def test_sharded_training_is_averaged(digits_project: Project) -> None:
    result = service.train_job(digits_project, CENTROID, {}, "local", shards=3)
    assert result.shards == 3 and result.promoted
    state = load_state(digits_project, result.state_id)
    assert state.metrics["merged_from"] == 3.0
    assert state.metrics["n_train"] == result.n_train_images
    assert result.metrics["accuracy"] > 0.8
    log = digits_project.job(result.job_id)["log"]
    assert "averaged 3 shard states" in log


def test_sharded_training_on_two_dask_workers(tmp_path: Path, digits: TrainingData) -> None:
    from annoloop.execution import get_executor

    project = make_digits_project(tmp_path / "p", digits, 200, 200)
    executor = get_executor("dask:2")
    try:
        result = service.train_job(project, "image-classifier", PIXELS, executor, shards=2)
        assert result.shards == 2 and result.metrics["accuracy"] > 0.8
        inf = service.inference_job(project, result.state_id, None, executor, chunk_size=64)
        assert inf.n_predictions == 200
    finally:
        executor.shutdown()
        project.close()


def test_inference_job_writes_predictions_and_orders_work_items(digits_project: Project) -> None:
    trained = service.train_job(digits_project, "image-classifier", PIXELS)
    images = digits_project.images()["id"].to_numpy()
    task = digits_project.add_task("classify", kinds=["label"])
    digits_project.request_annotations(images[160:], [task])
    result = service.inference_job(
        digits_project, model="image-classifier", chunk_size=30, ranker="margin", task="classify"
    )
    assert result.state_id == trained.state_id
    assert result.n_images == 240 and result.n_predictions == 240
    assert result.n_items_prioritised == 80
    pred = digits_project.predictions(model_state_id=trained.state_id)
    assert len(pred) == 240 and pred["priority"].notna().all()
    assert all(len(s) == 10 for s in pred["scores"])
    # the most uncertain images come first for annotators
    by_image = pred.set_index("image_id")["priority"]
    item = digits_project.next_item("classify", "ann")
    assert item is not None
    open_prio = by_image.loc[images[160:]]
    assert by_image.loc[item.image_id] == pytest.approx(open_prio.max())
    job = digits_project.job(result.job_id)
    assert job["state"] == "finished" and "240 predictions" in job["log"]
    # re-ranking the stored predictions with another criterion
    ranked = service.rank_images(digits_project, trained.state_id, "max-confidence")
    assert len(ranked) == 240 and all(0 <= v <= 1 for v in ranked.values())


def test_inference_on_chosen_images_and_bad_requests(digits_project: Project) -> None:
    trained = service.train_job(digits_project, "image-classifier", PIXELS)
    ids = digits_project.images()["id"].to_numpy()[:7]
    result = service.inference_job(digits_project, trained.state_id, ids, chunk_size=3)
    assert result.n_predictions == 7
    with pytest.raises(InvalidInput, match="chunk_size"):
        service.inference_job(digits_project, trained.state_id, chunk_size=0)
    with pytest.raises(InvalidInput, match="state_id or a model"):
        service.inference_job(digits_project)
    with pytest.raises(InvalidInput, match="no current state"):
        service.inference_job(digits_project, model="point-classifier")
    with pytest.raises(NotFound):
        service.inference_job(digits_project, 999)


def test_a_failing_model_stores_the_traceback(digits_project: Project) -> None:
    with pytest.raises(ZeroDivisionError):
        service.train_job(digits_project, "tests.ai.toy_models:FailingModel")
    jobs = digits_project.jobs()
    job = digits_project.job(int(jobs["id"].iloc[-1]))
    assert job["state"] == "failed"
    assert "ZeroDivisionError" in job["error"]
    assert "toy_models.py" in job["traceback"] and "division by zero" in job["traceback"]
    assert digits_project.model_states().empty


def test_bad_options_and_arguments_fail_before_a_job_row(digits_project: Project) -> None:
    with pytest.raises(InvalidInput, match="epochs"):
        service.train_job(digits_project, "image-classifier", {"epochs": -3})
    with pytest.raises(InvalidInput, match="shards"):
        service.train_job(digits_project, "image-classifier", PIXELS, shards=0)
    with pytest.raises(NotFound):
        service.train_job(digits_project, "no-such-model")
    assert digits_project.jobs().empty


def test_training_without_annotations_fails_with_a_reason(tmp_path: Path) -> None:
    project = Project.init(tmp_path / "empty")
    try:
        project.add_labels(["a", "b"])
        with pytest.raises(InvalidInput, match="no label annotations"):
            service.train_job(project, "image-classifier", PIXELS)
        assert project.jobs()["state"].tolist() == ["failed"]
    finally:
        project.close()


def test_a_running_job_can_be_cancelled(digits_project: Project, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def train() -> None:
        try:
            service.train_job(digits_project, "tests.ai.toy_models:SlowModel")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=train)
    start = time.monotonic()
    thread.start()
    other = Project.open(tmp_path / "project")
    try:
        job_id = None
        while time.monotonic() - start < 20:
            jobs = other.jobs()
            if not jobs.empty and jobs["progress_done"].fillna(0).iloc[-1] > 0:
                job_id = int(jobs["id"].iloc[-1])
                break
            time.sleep(0.1)
        assert job_id is not None, "the job never reported progress"
        assert service.cancel_job(other, job_id)
        thread.join(20)
        assert not thread.is_alive()
        assert time.monotonic() - start < 25  # stopped long before its 30 s of work
        assert errors and isinstance(errors[0], TaskCancelled)
        assert other.job(job_id)["state"] == "cancelled"
        assert not service.cancel_job(other, job_id)  # already ended
        assert other.model_states().empty
    finally:
        other.close()


def test_auto_train_after_n_new_human_annotations(tmp_path: Path, digits: TrainingData) -> None:
    project = make_digits_project(tmp_path / "p", digits, 240, 60)
    try:
        assert service.auto_train(project, CENTROID, every=100) is None
        first = service.auto_train(project, CENTROID, every=50)
        assert first is not None and first.promoted
        assert service.auto_train(project, CENTROID, every=50) is None  # nothing new
        ids = project.images()["id"].to_numpy()[60:120]
        labels = project.label_ids([str(int(d)) for d in digits.annotations.label[60:120]])
        ann = Annotations.from_boxes(ids, np.full((60, 4), np.nan), labels, kind=Kind.LABEL)
        project.add_annotations(ann)
        second = service.auto_train(project, CENTROID, every=50)
        assert second is not None and second.previous_state_id == first.state_id
        with pytest.raises(InvalidInput):
            service.auto_train(project, CENTROID, every=0)
    finally:
        project.close()


def test_training_continues_after_classes_change(digits_project: Project) -> None:
    first = service.train_job(digits_project, "image-classifier", PIXELS)
    digits_project.add_label("ten")
    digits_project.retire_label("9")
    second = service.train_job(digits_project, "image-classifier", PIXELS)
    log = digits_project.job(second.job_id)["log"]
    assert "classes updated" in log
    state = load_state(digits_project, second.state_id)
    assert "ten" in state.classes and "9" not in state.classes
    assert second.previous_state_id == first.state_id
