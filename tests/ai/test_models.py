"""The built-in models on real images: the image classifier on pretrained MobileNetV2 features
of bundled photos and on the digits, the point classifier on photo mosaics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annoloop.ai.base import ImageItem, TrainingData
from annoloop.ai.evaluation import evaluate, inference_input
from annoloop.ai.registry import get_model
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "flower.jpg", "china.jpg")
PIXELS = {"backbone": "pixels", "image_size": 8, "epochs": 60}


@pytest.fixture(scope="module")
def photo_crops(tmp_path_factory: pytest.TempPathFactory) -> TrainingData:
    """6 crops (two thirds of the photo's side, saved at 96 x 96) from each of 6 bundled
    photos, labelled by the photo."""
    from PIL import Image

    from annoloop.samples import photo_path
    from annoloop.storage import read_image

    folder = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(3)
    items, labels = [], []
    for c, name in enumerate(PHOTOS):
        pixels = read_image(photo_path(name))
        for k in range(6):
            side = min(pixels.shape[:2]) * 2 // 3
            y = int(rng.integers(0, pixels.shape[0] - side))
            x = int(rng.integers(0, pixels.shape[1] - side))
            path = folder / f"{c}-{k}.png"
            crop = Image.fromarray(pixels[y : y + side, x : x + side])
            crop.resize((96, 96), Image.Resampling.BILINEAR).save(path)
            items.append(ImageItem(len(items) + 1, str(path), 96, 96))
            labels.append(c)
    n = len(items)
    ann = Annotations.from_boxes(
        np.arange(1, n + 1), np.full((n, 4), np.nan), np.array(labels), kind=Kind.LABEL
    )
    return TrainingData(items, ann, [p.split(".")[0] for p in PHOTOS])


def _split(data: TrainingData) -> tuple[TrainingData, TrainingData]:
    ids = data.image_ids
    test = ids[ids % 3 == 0]
    return data.subset(np.setdiff1d(ids, test)), data.subset(test)


def test_image_classifier_on_pretrained_mobilenet_features(photo_crops: TrainingData) -> None:
    train, test = _split(photo_crops)
    model = get_model("image-classifier", {"image_size": 96, "epochs": 80})
    state = model.train(None, train)
    assert state.model == "image-classifier" and state.metrics["n_train"] == len(train.images)
    assert state.blob[:2] == b"PK"  # npz, not pickle
    metrics = evaluate(model, state, test)
    assert metrics["accuracy"] >= 0.8, metrics
    pred = model.inference(state, inference_input(model, test))
    assert pred.scores is not None and pred.scores.shape == (len(test.images), 6)
    np.testing.assert_allclose(pred.scores.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(np.isnan(pred.annotations.box))  # image labels have no geometry
    feats = model.features(state, test)
    assert feats.shape == (len(test.images), 1280)


def test_mlp_head_and_fine_tuning(photo_crops: TrainingData) -> None:
    train, test = _split(photo_crops)
    mlp = get_model("image-classifier", {"image_size": 96, "head": "mlp", "hidden": 32})
    state = mlp.train(None, train)
    assert "hidden.weight" in state.arrays()
    assert evaluate(mlp, state, test)["accuracy"] >= 0.8
    tuned = get_model(
        "image-classifier",
        {"image_size": 96, "epochs": 30, "fine_tune": True, "fine_tune_epochs": 1},
    )
    tuned_state = tuned.train(None, train)
    assert any(k.startswith("backbone.") for k in tuned_state.arrays())
    assert evaluate(tuned, tuned_state, test)["accuracy"] >= 0.5
    with pytest.raises(InvalidInput, match="fine_tune"):
        get_model("image-classifier", {**PIXELS, "fine_tune": True}).train(None, train)


def test_classes_added_and_removed_without_training_from_scratch(digits: TrainingData) -> None:
    data = digits.subset(digits.image_ids[:400])
    model = get_model("image-classifier", PIXELS)
    state = model.train(None, data)
    before = model.inference(state, inference_input(model, data))
    grown = model.update_classes(state, [*data.classes, "eleven"])
    after = model.inference(grown, inference_input(model, data))
    # an untrained class never wins; old predictions are unchanged
    np.testing.assert_array_equal(after.annotations.label, before.annotations.label)
    shrunk = model.update_classes(state, data.classes[::-1][:-1])  # "0" retired, reordered
    assert shrunk.classes[0] == "9" and "0" not in shrunk.classes
    out = model.inference(shrunk, inference_input(model, data))
    names_before = np.array(before.classes)[before.annotations.label]
    names_after = np.array(out.classes)[out.annotations.label]
    keep = names_before != "0"
    assert np.mean(names_before[keep] == names_after[keep]) > 0.95
    # warm start from the updated state trains the new class
    relabelled = TrainingData(data.images, data.annotations, [*data.classes, "eleven"])
    again = model.train(grown, relabelled)
    assert again.classes[-1] == "eleven"


def test_image_classifier_refuses_bad_data(digits: TrainingData) -> None:
    model = get_model("image-classifier", PIXELS)
    no_labels = TrainingData(digits.images[:5], Annotations.empty(), digits.classes)
    with pytest.raises(InvalidInput, match="no labelled images"):
        model.train(None, no_labels)
    bad = digits.subset(digits.image_ids[:5])
    bad.annotations.label[2] = 42
    with pytest.raises(InvalidInput, match=r"annotation 2 .*label index 42"):
        model.train(None, bad)
    missing = TrainingData(
        [ImageItem(1, "file:///nonexistent/x.png", 8, 8)],
        Annotations.from_boxes([1], np.full((1, 4), np.nan), [0], kind=Kind.LABEL),
        ["a"],
    )
    with pytest.raises(Exception, match=r"x\.png"):
        model.train(None, missing)
    other = get_model("tests.ai.toy_models:NearestCentroid")
    foreign = other.train(None, digits.subset(digits.image_ids[:50]))
    with pytest.raises(InvalidInput, match="nearest-centroid"):
        model.inference(foreign, inference_input(model, digits.subset(digits.image_ids[:5])))


@pytest.mark.slow
def test_point_classifier_learns_which_photo_a_point_is_on(mosaics: TrainingData) -> None:
    ids = mosaics.image_ids
    train, test = mosaics.subset(ids[:8]), mosaics.subset(ids[8:])
    model = get_model(
        "point-classifier", {"extractor": "mobilenet_v2", "patch_size": 32, "clf_type": "LR"}
    )
    state = model.train(None, train)
    metrics = evaluate(model, state, test)
    assert metrics["n_eval"] == 4 * 30
    assert metrics["accuracy"] >= 0.6, metrics  # 6 classes: chance is 0.17
    pred = model.inference(state, inference_input(model, test))
    assert len(pred) == 120 and pred.scores is not None
    # predictions sit at the query points, in relative coordinates
    np.testing.assert_allclose(pred.annotations.box[:, :2], test.annotations.box[:, :2])
    clf = model.to_point_classifier(state)
    assert clf.classes == mosaics.classes
    # images without points get a grid
    grid = model.inference(state, TrainingData(test.images[:1], classes=test.classes))
    assert len(grid) == 25 and np.all(grid.annotations.box[:, :2] > 0)
    grown = model.update_classes(state, [*state.classes, "sand"])
    assert model.inference(grown, inference_input(model, test)).scores.shape == (120, 7)


def test_point_classifier_needs_points(mosaics: TrainingData) -> None:
    model = get_model("point-classifier", {"extractor": "dummy", "patch_size": 16})
    one = mosaics.subset(mosaics.image_ids[:1])
    one = TrainingData(one.images, one.annotations[:1], one.classes)
    with pytest.raises(InvalidInput, match="at least 2"):
        model.train(None, one)
    report = model.verify_options({"clf_type": "SVM", "patch_size": 4})
    assert not report.valid and len(report.errors) == 2


def test_image_classifier_handles_hundreds_of_images_fast(
    digits: TrainingData, tmp_path: Path
) -> None:
    model = get_model("image-classifier", {**PIXELS, "epochs": 30})
    state = model.train(None, digits)  # all 1797 digits
    pred = model.inference(state, inference_input(model, digits))
    assert len(pred) == 1797
    assert float((pred.annotations.label == digits.annotations.label).mean()) > 0.95


def test_point_features_are_cached_point_by_point(mosaics: TrainingData) -> None:
    from annoloop.ai.models.point_classifier import clear_point_feature_cache

    model = get_model("point-classifier", {"extractor": "dummy", "patch_size": 16})
    one = mosaics.subset(mosaics.image_ids[:2])
    ann = one.annotations
    clear_point_feature_cache()
    fresh = model.point_features(one, ann)
    clear_point_feature_cache()
    half = model.point_features(one, ann[np.arange(0, len(ann), 2)])
    np.testing.assert_array_equal(half, fresh[::2])
    again = model.point_features(one, ann)  # the other half is extracted, the rest cached
    np.testing.assert_array_equal(again, fresh)
    clear_point_feature_cache()
