"""The real EfficientNet-Lite0 (ImageNet weights shipped in a package) on real photos."""

from __future__ import annotations

import numpy as np

from annoloop.points import ExtractFeaturesMsg, ExtractorSpec, ImageFeatures, extract_features
from annoloop.points.extractors import get_extractor
from annoloop.samples import photo_path
from annoloop.storage import Location


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def test_same_object_patches_are_more_alike(photo_arrays: list[np.ndarray]) -> None:
    extractor, _ = get_extractor(ExtractorSpec(name="efficientnet-lite0", batch_size=8))
    cat, coffee = photo_arrays[2], photo_arrays[1]  # chelsea.png, coffee.png
    # three points on the cat's fur and face, three on the coffee cup
    cat_pts = np.array([[150, 200], [170, 230], [130, 260]])
    cup_pts = np.array([[200, 300], [220, 280], [180, 320]])
    _, f_cat, _ = extractor.extract(cat, cat_pts)
    _, f_cup, _ = extractor.extract(coffee, cup_pts)
    within = np.concatenate([_cos(f_cat, f_cat)[np.triu_indices(3, 1)],
                             _cos(f_cup, f_cup)[np.triu_indices(3, 1)]])  # fmt: skip
    across = _cos(f_cat, f_cup).ravel()
    assert within.min() > across.max(), (within, across)


def test_extract_message_with_the_packaged_network(mem_root: Location) -> None:
    src = Location.parse(photo_path("coffee.png"))
    ret = extract_features(
        ExtractFeaturesMsg(
            extractor=ExtractorSpec(name="efficientnet-lite0"),
            rowcols=[(200, 300), (0, 0), (399, 599)],  # centre and both corners (reflected)
            image_loc=src.url,
            feature_loc=(mem_root / "coffee.npz").url,
        )
    )
    assert ret.feature_dim == 1280 and ret.npoints == 3
    f = ImageFeatures.load(mem_root / "coffee.npz")
    assert np.isfinite(f.features.astype(np.float32)).all() and f.features.std() > 0


def test_imagenet_class_of_the_coffee_centre(photo_arrays: list[np.ndarray]) -> None:
    extractor, _ = get_extractor(ExtractorSpec(name="efficientnet-lite0"))
    coffee = photo_arrays[1]
    h, w = coffee.shape[:2]
    patch = coffee[h // 2 - 112 : h // 2 + 112, w // 2 - 112 : w // 2 + 112][None]
    logits = extractor.backbone.logits(patch)[0]
    top = [extractor.backbone.categories[i] for i in np.argsort(logits)[::-1][:3]]
    assert top[0] in {"espresso", "cup", "coffee mug"}, top
