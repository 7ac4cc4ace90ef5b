"""The plug-in contract: metadata, options, typed data, averaging and class changes."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from annoloop.ai.base import ImageItem, Model, ModelInfo, ModelState, Predictions, TrainingData
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from tests.ai.toy_models import NearestCentroid


def _items(n: int) -> list[ImageItem]:
    return [ImageItem(i + 1, f"memory://x/{i}.png", 10, 10) for i in range(n)]


def test_model_info_parses_kinds_and_rejects_unknown() -> None:
    info = ModelInfo(name="m", accepts=["BOX", "point"], predicts="bbox")
    assert info.accepts == ["bbox", "point"]
    with pytest.raises((ValidationError, InvalidInput)):
        ModelInfo(name="m", accepts=["circle"], predicts="bbox")
    with pytest.raises(ValidationError):
        ModelInfo(name="m", accepts=[], predicts="bbox")


def test_options_defaults_coercion_unknown_and_errors() -> None:
    assert NearestCentroid.default_options() == {"image_size": 8, "temperature": 0.05}
    report = NearestCentroid.verify_options({"image_size": "16", "colour": "red"})
    assert report.valid
    assert report.corrected == {"image_size": 16, "temperature": 0.05}
    assert report.warnings == ["unknown option 'colour' ignored"]
    bad = NearestCentroid.verify_options({"image_size": 1000, "temperature": -1})
    assert not bad.valid
    assert len(bad.errors) == 2 and any(e.startswith("image_size:") for e in bad.errors)
    assert bad.corrected == NearestCentroid.default_options()
    assert not NearestCentroid.verify_options(["not", "a", "dict"]).valid  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="temperature"):
        NearestCentroid({"temperature": "hot"})


def test_training_data_validation_names_the_bad_row() -> None:
    ann = Annotations.from_boxes([1, 2, 9], [[0.5, 0.5, 0.1, 0.1]] * 3, [0, 1, 0])
    with pytest.raises(InvalidInput, match="annotation 2 refers to image 9"):
        TrainingData(_items(3), ann, ["a", "b"]).validate()
    ann = Annotations.from_boxes([1, 2], [[0.5, 0.5, 0.1, 0.1]] * 2, [0, 5])
    with pytest.raises(InvalidInput, match=r"annotation 1 \(image 2\) has label index 5"):
        TrainingData(_items(3), ann, ["a", "b"]).validate()
    ann = Annotations.from_boxes([1, 2], [[0.5, 0.5, 0.1, 0.1], [1.5, 0.5, 0.1, 0.1]], [0, 1])
    with pytest.raises(InvalidInput, match=r"annotation 1 .* outside relative"):
        TrainingData(_items(3), ann, ["a", "b"]).validate()
    with pytest.raises(InvalidInput, match="image id 1 is listed twice"):
        TrainingData([*_items(2), ImageItem(1, "x", 1, 1)]).validate()
    with pytest.raises(InvalidInput, match="class names repeat"):
        TrainingData(_items(1), classes=["a", "a"]).validate()
    # image labels carry NaN boxes: valid
    labels = Annotations.from_boxes([1], np.full((1, 4), np.nan), [0], kind=Kind.LABEL)
    TrainingData(_items(1), labels, ["a"]).validate()


def test_shard_subset_and_without_labels() -> None:
    ann = Annotations.from_boxes(np.arange(1, 11), np.full((10, 4), 0.5), np.arange(10) % 2)
    data = TrainingData(_items(10), ann, ["a", "b"])
    parts = data.shard(3)
    assert [len(p.images) for p in parts] == [4, 3, 3]
    assert sorted(np.concatenate([p.image_ids for p in parts]).tolist()) == list(range(1, 11))
    for p in parts:
        assert set(p.annotations.image.tolist()) == set(p.image_ids.tolist())
    assert len(data.shard(50)) == 10  # empty shards are dropped
    with pytest.raises(InvalidInput):
        data.shard(0)
    bare = data.without_labels()
    assert (bare.annotations.label == -1).all() and (data.annotations.label >= 0).all()


def test_predictions_check_shapes_and_concat() -> None:
    ann = Annotations.from_boxes([1, 2], [[0.5, 0.5, 0.2, 0.2]] * 2, [0, 1], [0.9, 0.6])
    with pytest.raises(InvalidInput, match="scores have shape"):
        Predictions(ann, ["a", "b"], np.zeros((2, 3)))
    p = Predictions(ann, ["a", "b"], np.array([[0.9, 0.1], [0.4, 0.6]]))
    both = Predictions.concat([p, p])
    assert len(both) == 4 and both.scores.shape == (4, 2)
    with pytest.raises(InvalidInput, match="part 1 has classes"):
        Predictions.concat([p, Predictions(ann, ["a", "c"])])
    with pytest.raises(InvalidInput, match="unknown image 2"):
        p.validate(images=[1])
    bad = Predictions(Annotations.from_boxes([1], [[0.5] * 4], [0], [1.7]), ["a"])
    with pytest.raises(InvalidInput, match="confidence"):
        bad.validate()


class _Linear(Model):
    info = ModelInfo(name="linear-test", accepts=["label"], predicts="label", can_add_classes=True)

    class Options(BaseModel):
        pass

    class_axes = {"w": 0, "b": 0}

    def train(self, state, data, progress=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def inference(self, state, data, progress=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_average_is_weighted_by_training_size() -> None:
    m = _Linear()
    s1 = m.make_state(
        {"w": np.ones((2, 3)), "b": np.zeros(2), "steps": np.array([5])},
        ["a", "b"],
        {"n_train": 30},
    )
    s2 = m.make_state(
        {"w": np.full((2, 3), 3.0), "b": np.ones(2), "steps": np.array([7])},
        ["a", "b"],
        {"n_train": 10},
    )
    avg = m.average_model_states([s1, s2])
    arrays = avg.arrays()
    np.testing.assert_allclose(arrays["w"], 1.5)  # (30 * 1 + 10 * 3) / 40
    np.testing.assert_allclose(arrays["b"], 0.25)
    assert arrays["steps"].tolist() == [5]  # integers are not averaged
    assert avg.metrics["n_train"] == 40 and avg.metrics["merged_from"] == 2
    other = m.make_state({"w": np.ones((2, 3)), "b": np.zeros(2)}, ["a", "c"])
    with pytest.raises(InvalidInput, match="state 1 has classes"):
        m.average_model_states([s1, other])
    with pytest.raises(InvalidInput, match="lacks array"):
        m.average_model_states([s1, m.make_state({"w": np.ones((2, 3))}, ["a", "b"])])
    with pytest.raises(InvalidInput):
        m.average_model_states([])


def test_update_classes_adds_reorders_and_guards_removal() -> None:
    m = _Linear()
    w = np.array([[1.0, 1.0], [3.0, 3.0]])
    s = m.make_state({"w": w, "b": np.array([0.5, 1.5])}, ["cat", "dog"])
    s2 = m.update_classes(s, ["dog", "cat", "fox"])
    a = s2.arrays()
    assert s2.classes == ["dog", "cat", "fox"]
    np.testing.assert_allclose(a["w"], [[3, 3], [1, 1], [2, 2]])  # new row: the mean
    np.testing.assert_allclose(a["b"], [1.5, 0.5, -0.5])  # new bias: below all others
    with pytest.raises(InvalidInput, match="cannot remove classes"):
        m.update_classes(s, ["cat"])
    assert m.update_classes(s, ["cat", "dog"]) is s


def test_state_from_another_model_is_refused() -> None:
    state = ModelState(b"", ["a"], model="something-else")
    with pytest.raises(InvalidInput, match="made by model 'something-else'"):
        _Linear().check_state(state)
