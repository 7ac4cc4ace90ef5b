"""An AIDE-style model class (tests/ai/aide_example.py, unchanged AIDE contract) run through
annoloop.compat.aide: options, training with updateStateFun, averaging, inference with
logits, and a whole training + inference job on a project."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from annoloop.ai import service
from annoloop.ai.base import TrainingData
from annoloop.ai.evaluation import evaluate, inference_input
from annoloop.ai.registry import get_model, get_model_class
from annoloop.compat.aide import (
    AideConfig,
    class_uuid,
    from_aide_predictions,
    image_uuid,
    register_aide_model,
    to_aide_data,
)
from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.store import Project

AIDE = "aide:tests.ai.aide_example.MeanColourClassifier"


@pytest.fixture(scope="module", autouse=True)
def _meta() -> None:
    # what AIDE's ai/__init__.py registry entry says about the model
    register_aide_model(
        "tests.ai.aide_example.MeanColourClassifier",
        {
            "name": "Mean colour classifier",
            "author": "AIDE example",
            "description": "nearest mean colour",
            "annotationType": ["labels"],
            "predictionType": "labels",
            "canAddLabelclasses": True,
            "canRemoveLabelclasses": False,
        },
    )
    get_model_class.cache_clear()


def test_metadata_and_options_come_from_the_aide_class() -> None:
    cls = get_model_class(AIDE)
    assert cls.info.author == "AIDE example"
    assert cls.info.accepts == ["label"] and cls.info.predicts == "label"
    assert cls.info.can_add_classes and not cls.info.can_remove_classes
    assert cls.default_options() == {"size": 4, "temperature": 20.0}
    report = cls.verify_options({"size": 2, "colour": "red"})
    assert report.valid and report.corrected == {"size": 2, "temperature": 20.0}
    assert report.warnings == ["unknown option colour removed"]
    bad = cls.verify_options({"size": 0})
    assert not bad.valid and bad.errors == ["size must be a positive integer"]
    with pytest.raises(InvalidInput, match="size must be"):
        get_model(AIDE, {"size": -1})


def test_data_dict_has_uuid_keys_and_relative_centre_boxes() -> None:
    from annoloop.ai.base import ImageItem

    items = [ImageItem(7, "file:///x/a.png", 200, 100)]
    ann = Annotations.from_boxes(
        [7, 7], [[0.5, 0.25, 0.2, 0.1], [0.1, 0.9, 0, 0]], [1, 0], kind=Kind.BBOX
    )
    ann.kind[1] = int(Kind.POINT)
    data = TrainingData(items, ann, ["bird", "seal"])
    aide = to_aide_data(data)
    key = image_uuid(7)
    assert uuid.UUID(key) and list(aide["images"]) == [key]
    box, point = aide["images"][key]["annotations"]
    assert box["x"] == 0.5 and box["y"] == 0.25 and box["width"] == 0.2 and box["height"] == 0.1
    assert box["label"] == class_uuid("seal") and "width" not in point
    assert aide["labelClasses"][class_uuid("bird")]["name"] == "bird"
    # predictions come back typed; unknown images and labels are refused with their place
    pred = from_aide_predictions(
        {key: {"predictions": [{"x": 0.5, "y": 0.5, "width": 0.1, "height": 0.2,
                                "label": class_uuid("seal"), "confidence": 0.8,
                                "logits": [0.2, 0.8]}]}},
        data, ["bird", "seal"], "bbox",
    )  # fmt: skip
    assert pred.annotations.label.tolist() == [1] and pred.scores.shape == (1, 2)
    # AIDE's own classifiers give the top raw logit as confidence: it becomes a probability
    raw = from_aide_predictions(
        {key: {"predictions": [{"label": class_uuid("seal"), "confidence": 3.5,
                                "logits": [1.0, 3.5]}]}},
        data, ["bird", "seal"], "label",
    )  # fmt: skip
    expected = np.exp(3.5) / (np.exp(1.0) + np.exp(3.5))
    assert raw.annotations.confidence[0] == pytest.approx(expected, rel=1e-5)
    raw.validate([7])
    no_logits = from_aide_predictions(
        {key: {"predictions": [{"label": "seal", "confidence": -2.0}]}},
        data, ["bird", "seal"], "label",
    )  # fmt: skip
    assert 0 < no_logits.annotations.confidence[0] < 0.5
    with pytest.raises(InvalidInput, match="unknown image"):
        from_aide_predictions({"nope": {"predictions": []}}, data, ["bird"], "bbox")
    with pytest.raises(InvalidInput, match=r"prediction 0.*unknown label"):
        from_aide_predictions({key: {"predictions": [{"label": "x"}]}}, data, ["bird"], "bbox")
    with pytest.raises(InvalidInput, match="not a dict"):
        from_aide_predictions([], data, ["bird"], "bbox")


def test_aide_config_helper() -> None:
    config = AideConfig({"AIController": {"maxNumWorkers": "3", "flag": "yes"}})
    assert config.getProperty("AIController", "maxNumWorkers", type=int) == 3
    assert config.getProperty("AIController", "flag", type=bool) is True
    assert config.getProperty("X", "y", fallback=None) is None
    with pytest.raises(NotFound):
        config.getProperty("X", "y")


def test_train_average_inference_through_the_adapter(digits: TrainingData) -> None:
    data = digits.subset(digits.image_ids[:300])
    test = digits.subset(digits.image_ids[300:400])
    model = get_model(AIDE, {"size": 8})
    seen: list[tuple[int, int | None, str]] = []
    state = model.train(None, data, lambda d, t=None, m="": seen.append((d, t, m)))
    assert seen[-1] == (300, 300, "reading images")
    assert isinstance(state.blob, bytes) and state.model == AIDE
    acc = evaluate(model, state, test)["accuracy"]
    assert acc > 0.7
    halves = [model.train(None, part) for part in data.shard(2)]
    merged = model.average_model_states(halves)
    assert merged.metrics["merged_from"] == 2.0
    assert evaluate(model, merged, test)["accuracy"] == pytest.approx(acc)
    pred = model.inference(state, inference_input(model, test))
    assert pred.scores is not None and pred.scores.shape == (100, 10)
    np.testing.assert_allclose(pred.scores.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(InvalidInput, match="update_model"):
        model.update_classes(state, [*state.classes, "x"])
    with pytest.raises(InvalidInput, match="cannot change"):
        model.update_classes(state, state.classes[:-1])


def test_aide_model_as_a_project_job(digits_project: Project) -> None:
    result = service.train_job(digits_project, AIDE, {"size": 8}, "local", shards=2)
    assert result.promoted and result.shards == 2
    assert result.metrics["accuracy"] > 0.6
    inf = service.inference_job(digits_project, model=AIDE, ranker="entropy")
    assert inf.n_predictions == 240
    pred = digits_project.predictions(model_state_id=result.state_id)
    assert pred["priority"].between(0, 1).all()


def test_a_class_that_is_not_an_aide_model() -> None:
    with pytest.raises(NotFound):
        get_model_class("aide:tests.ai.aide_example.Missing")
    with pytest.raises(InvalidInput, match="no train"):
        get_model_class("aide:tests.ai.toy_models.CentroidOptions")
