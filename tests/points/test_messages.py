"""Messages round-trip through JSON and refuse malformed input."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from annoloop.points.messages import (
    MESSAGE_TYPES,
    ExtractFeaturesMsg,
    JobMsg,
    Message,
    TrainClassifierMsg,
    ValResults,
)


@pytest.mark.parametrize("cls", MESSAGE_TYPES, ids=lambda c: c.__name__)
def test_example_round_trips(cls: type[Message]) -> None:
    example = cls.example()
    text = example.to_json()
    back = cls.from_json(text)
    assert back == example
    assert back.to_json() == text
    # and through plain JSON values (what a queue or a REST body carries)
    assert cls.model_validate(json.loads(text)) == example


def test_job_keeps_task_kinds_and_label_types() -> None:
    job = JobMsg.from_json(JobMsg.example().to_json())
    assert [t.task for t in job.tasks] == ["extract_features", "classify_image"]
    labels = TrainClassifierMsg.example().labels
    back = TrainClassifierMsg.from_json(TrainClassifierMsg.example().to_json()).labels
    assert back.val == labels.val  # int 3 stays int, "sand" stays str
    assert isinstance(back.val["memory://f/3.npz"][1][2], str)


@pytest.mark.parametrize(
    "change",
    [
        {"rowcols": []},
        {"rowcols": [[-1, 4]]},
        {"rowcols": [[1.5, 4]]},
        {"rowcols": [[1, 2, 3]]},
        {"surprise": 1},
        {"task": "train_classifier"},
        {"extractor": {"patch_size": 2}},
    ],
)
def test_bad_extract_messages(change: dict) -> None:
    data = json.loads(ExtractFeaturesMsg.example().to_json())
    data.update(change)
    with pytest.raises(ValidationError):
        ExtractFeaturesMsg.model_validate(data)


def test_bad_job_and_results() -> None:
    with pytest.raises(ValidationError):
        JobMsg.model_validate({"tasks": []})
    with pytest.raises(ValidationError):
        JobMsg.model_validate({"tasks": [{"task": "format_disk"}]})
    with pytest.raises(ValidationError):
        ValResults(scores=[0.5], gt=[0], est=[3], classes=[1, 2])
    with pytest.raises(ValidationError):
        JobMsg.from_json("{" * 10_000)
