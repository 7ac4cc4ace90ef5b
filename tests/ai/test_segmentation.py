"""The ``segmentation`` model on the coins photo: masks from the bundled photo's watershed
segmentation (annoloop.demo.field_data.segment_coins), trained on CPU."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.ai.base import ImageItem, TrainingData
from annoloop.ai.models.segmentation import Segmentation, label_map, mask_iou
from annoloop.ai.registry import get_model
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import rle_decode, rle_encode
from annoloop.samples import photo_path


def _coins_mask() -> np.ndarray:
    from annoloop.demo.field_data import segment_coins

    return segment_coins() > 0


def _data(mask: np.ndarray, kind: Kind = Kind.MASK) -> TrainingData:
    h, w = mask.shape
    ann = Annotations(
        image=[1], kind=[int(kind)], label=[0], box=[[0.5, 0.5, 1.0, 1.0]],
        confidence=[np.nan], shape=[rle_encode(mask)], label_names=["coin"],
    )  # fmt: skip
    return TrainingData([ImageItem(1, str(photo_path("coins.png")), w, h)], ann, ["coin"])


def _iou(model: Segmentation, state, data: TrainingData, truth: np.ndarray) -> float:
    pred = model.inference(state, data)
    found = np.zeros_like(truth)
    for rle in pred.annotations.shape:
        found |= rle_decode(rle)
    return mask_iou(found, truth)


@pytest.mark.slow
def test_iou_improves_with_training_and_predictions_are_rle() -> None:
    truth = _coins_mask()
    data = _data(truth)
    model = get_model("segmentation", {"iterations": 3, "device": "cpu", "image_size": 160})
    assert isinstance(model, Segmentation)
    early = model.train(None, data)
    iou_early = _iou(model, early, data, truth)
    model.options["iterations"] = 30
    late = model.train(early, data)
    iou_late = _iou(model, late, data, truth)
    assert late.metrics["loss_end"] < early.metrics["loss_start"]
    assert iou_late > iou_early
    assert iou_late > 0.6, (iou_early, iou_late)
    # instances: one mask per connected region, most coins found separately
    model.options["instances"] = True
    pred = model.inference(late, data)
    assert pred.annotations.kind.tolist() == [int(Kind.MASK)] * len(pred)
    assert 10 <= len(pred) <= 40
    assert np.all((pred.annotations.confidence > 0.5) & (pred.annotations.confidence <= 1))
    pred.validate([1])
    # the state is safetensors (no pickle) and classes can be added
    assert late.blob[8:9] == b"{"
    more = model.update_classes(late, ["coin", "shadow"])
    assert more.arrays()["head.weight"].shape[0] == 3
    assert np.allclose(more.arrays()["head.weight"][:2], late.arrays()["head.weight"])


def test_polygons_rasterise_into_the_label_map() -> None:
    from annoloop.demo.field_data import coin_shapes
    from annoloop.geometry.polygons import flat_to_ring

    w, h = 384, 303
    shapes = [[[flat_to_ring(s["polygon"]) / [w, h]]] for s in coin_shapes()[:3]]
    ann = Annotations(
        image=[1] * 3, kind=[int(Kind.POLYGON)] * 3, label=[0, 1, 0],
        box=[[0.5, 0.5, 0.1, 0.1]] * 3, confidence=[np.nan] * 3, shape=shapes,
    )  # fmt: skip
    data = TrainingData([ImageItem(1, str(photo_path("coins.png")), w, h)], ann, ["a", "b"])
    labels = label_map(data, 1, w, h)
    assert set(np.unique(labels).tolist()) == {0, 1, 2}
    assert 200 < (labels == 2).sum() < 5000  # one coin's area in pixels


def test_broken_training_data_is_refused() -> None:
    wrong = _data(np.zeros((10, 10), bool))  # mask size differs from the photo
    model = Segmentation({"iterations": 1, "device": "cpu"})
    with pytest.raises(InvalidInput, match="10x10"):
        model.train(None, wrong)
    empty = TrainingData([ImageItem(1, str(photo_path("coins.png")), 384, 303)], classes=["c"])
    with pytest.raises(InvalidInput, match="no polygons or masks"):
        model.train(None, empty)
    report = Segmentation.verify_options({"image_size": 8, "iterations": "ten"})
    assert not report.valid and len(report.errors) == 2
