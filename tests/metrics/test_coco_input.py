"""Broken, hostile and huge COCO input: clear errors that name the record, and scale."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annoloop.errors import InvalidInput, MissingDependency
from annoloop.metrics import coco_detection
from tests.metrics.coins_data import coin_detections, coin_ground_truth


def small_gt() -> dict:
    return {
        "images": [{"id": 1, "width": 100, "height": 80}, {"id": 2, "width": 50, "height": 50}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [5, 5, 10, 10]},
        ],
    }


def small_dt() -> list[dict]:
    return [
        {"image_id": 1, "category_id": 1, "bbox": [11, 10, 20, 20], "score": 0.9},
        {"image_id": 2, "category_id": 2, "bbox": [5, 5, 10, 12], "score": 0.8},
    ]


def test_small_case_works() -> None:
    result = coco_detection(small_gt(), small_dt())
    assert result["AP50"] == 1.0


def _set(data: Any, path: tuple, value: Any) -> Any:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


GT_CASES = [
    (("images",), "not a list", r"gt.images: must be a list"),
    (("images",), KeyError, r"gt: missing 'images'"),
    (("categories",), KeyError, r"gt: missing 'categories'"),
    (("images", 1), "img", r"gt.images\[1\]: must be an object"),
    (("images", 1, "id"), True, r"gt.images\[1\].id: must be an integer"),
    (("images", 1, "id"), "2", r"gt.images\[1\].id: must be an integer"),
    (("images", 1, "id"), 2.0, r"gt.images\[1\].id: must be an integer"),
    (("images", 1, "id"), 1, r"duplicate id 1"),
    (("images", 0, "id"), 2**70, r"gt.images\[0\].id: integer .* out of range"),
    (("images", 0, "width"), -5, r"gt.images\[0\]: width and height must be"),
    (("images", 0, "width"), 10**9, r"gt.images\[0\]: width and height must be"),
    (("categories", 1, "id"), 1, r"gt.categories: duplicate id 1"),
    (("annotations", 1, "image_id"), 9, r"gt.annotations\[1\].image_id: unknown image id 9"),
    (("annotations", 1, "category_id"), 9, r"gt.annotations\[1\].category_id: unknown category"),
    (("annotations", 1, "category_id"), None, r"gt.annotations\[1\].category_id: must be an int"),
    (("annotations", 1, "bbox"), [1, 2, 3], r"gt.annotations\[1\].bbox: must be 4 numbers"),
    (("annotations", 1, "bbox"), [1, 2, "3", 4], r"gt.annotations\[1\].bbox: must be numbers"),
    (("annotations", 1, "bbox"), [1, 2, float("nan"), 4], r"gt.annotations\[1\].bbox: must be fin"),
    (("annotations", 1, "bbox"), [1, 2, 3, float("inf")], r"gt.annotations\[1\].bbox: must be fin"),
    (("annotations", 1, "bbox"), [1, 2, -3, 4], r"gt.annotations\[1\].bbox: bbox width and"),
    (("annotations", 1, "bbox"), {"x": 1}, r"gt.annotations\[1\].bbox: must be 4 numbers"),
    (("annotations", 1, "bbox"), KeyError, r"gt.annotations\[1\]: missing 'bbox'"),
    (("annotations", 1, "area"), -1, r"gt.annotations\[1\].area: area must be >= 0"),
    (("annotations", 1, "area"), "big", r"gt.annotations\[1\].area: must be numbers"),
    (("annotations", 0, "iscrowd"), 2, r"gt.annotations\[0\]: iscrowd must be 0 or 1"),
    (("annotations",), {"id": 1}, r"gt.annotations: must be a list"),
    (("annotations", 0), [1, 2], r"gt.annotations\[0\]: must be an object"),
]


@pytest.mark.parametrize(("path", "value", "message"), GT_CASES)
def test_hostile_ground_truth(path: tuple, value: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        coco_detection(_set(small_gt(), path, value), small_dt())


DT_CASES = [
    ((1, "image_id"), 3, r"dt\[1\].image_id: unknown image id 3"),
    ((1, "category_id"), 5, r"dt\[1\].category_id: unknown category id 5 \(not in the ground"),
    ((1, "score"), float("nan"), r"dt\[1\].score: must be finite"),
    ((1, "score"), "high", r"dt\[1\].score: must be numbers"),
    ((1, "score"), True, r"dt\[1\].score: must be numbers"),
    ((1, "score"), KeyError, r"dt\[1\]: missing 'score'"),
    ((0, "bbox"), [1, 2, 3, 4, 5], r"dt\[0\].bbox: must be 4 numbers"),
    ((0, "bbox"), [0, 0, 10, -1], r"dt\[0\].bbox: bbox width and height must be >= 0"),
    ((0,), None, r"dt\[0\]: must be an object"),
]


@pytest.mark.parametrize(("path", "value", "message"), DT_CASES)
def test_hostile_detections(path: tuple, value: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        coco_detection(small_gt(), _set(small_dt(), path, value))


def test_wrong_top_level_types() -> None:
    with pytest.raises(InvalidInput, match="ground truth must be"):
        coco_detection(42, small_dt())
    with pytest.raises(InvalidInput, match="ground truth must be a COCO dict"):
        coco_detection([1, 2], small_dt())
    with pytest.raises(InvalidInput, match="detections must be"):
        coco_detection(small_gt(), 3.5)
    with pytest.raises(InvalidInput, match="needs an 'annotations' list"):
        coco_detection(small_gt(), {"results": []})
    with pytest.raises(InvalidInput, match="iou_type must be one of"):
        coco_detection(small_gt(), small_dt(), iou_type="keypoints")


def test_segmentation_checks() -> None:
    gt, dets = coin_ground_truth(), coin_detections("segm")
    bad = copy.deepcopy(gt)
    bad["annotations"][3]["segmentation"] = [[1, 2, 3, 4]]  # 2 points: would be read as a box
    with pytest.raises(InvalidInput, match=r"annotations\[3\].segmentation\[0\]: each polygon"):
        coco_detection(bad, dets, iou_type="segm")
    bad = copy.deepcopy(gt)
    bad["annotations"][3]["segmentation"] = {"size": [10, 10], "counts": "0"}
    with pytest.raises(InvalidInput, match=r"annotations\[3\].segmentation"):
        coco_detection(bad, dets, iou_type="segm")
    bad = copy.deepcopy(gt)
    bad["annotations"][3]["segmentation"] = {"size": [303, 384], "counts": "\x7f\x00garbage"}
    with pytest.raises(InvalidInput, match=r"annotations\[3\].segmentation"):
        coco_detection(bad, dets, iou_type="segm")
    bad = copy.deepcopy(gt)
    del bad["annotations"][5]["segmentation"]
    with pytest.raises(InvalidInput, match=r"gt.annotations\[5\]: missing 'segmentation'"):
        coco_detection(bad, dets, iou_type="segm")
    bad_dt = copy.deepcopy(dets)
    bad_dt[2]["segmentation"] = {"size": [5, 5], "counts": [25]}
    with pytest.raises(InvalidInput, match=r"dt\[2\].segmentation: RLE size \[5, 5\] differs"):
        coco_detection(gt, bad_dt, iou_type="segm")
    bad_dt = copy.deepcopy(dets)
    bad_dt[2]["segmentation"] = "mask"
    with pytest.raises(InvalidInput, match=r"dt\[2\].segmentation: segmentation must be"):
        coco_detection(gt, bad_dt, iou_type="segm")
    # segm ground truth needs image sizes
    bad = copy.deepcopy(gt)
    del bad["images"][0]["height"]
    with pytest.raises(InvalidInput, match=r"gt.images\[0\]: missing 'height'"):
        coco_detection(bad, dets, iou_type="segm")


def test_polygon_and_uncompressed_rle_detections_are_converted() -> None:
    gt = small_gt()
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    dets = [
        {
            "image_id": 1,
            "category_id": 1,
            "score": 0.9,
            "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]],
        },
        # column-major runs: a 10 x 10 square at rows 5-14 of columns 5-14
        {
            "image_id": 2,
            "category_id": 2,
            "score": 0.8,
            "segmentation": {"size": [50, 50], "counts": [255] + [10, 40] * 9 + [10, 1785]},
        },
    ]
    result = coco_detection(gt, dets, iou_type="segm")
    slow = coco_detection(gt, dets, iou_type="segm", use_pycocotools=True)
    assert result["AP50"] == 1.0
    assert all(abs(slow[k] - result[k]) <= 1e-12 for k in result)


def test_broken_files(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps(small_gt())[:-20])
    with pytest.raises(InvalidInput, match="not valid JSON"):
        coco_detection(truncated, small_dt())
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        coco_detection(binary, small_dt())
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidInput, match=r"nested too deeply|must be an object"):
        coco_detection(nested, small_dt())
    with pytest.raises(InvalidInput, match="file not found"):
        coco_detection(tmp_path / "missing.json", small_dt())
    with pytest.raises(InvalidInput, match="not valid JSON"):
        coco_detection(small_gt(), truncated)


def test_huge_input_is_exact() -> None:
    # 2,000 images, 5 objects and 20 detections each: every object found with a higher score
    # than any false positive, so AP and AR are exactly 1 whatever the false positives are
    rng = np.random.default_rng(7)
    n_img, per = 2000, 5
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(n_img)]
    xy = rng.uniform(0, 400, size=(n_img, per, 2))
    wh = rng.uniform(20, 200, size=(n_img, per, 2))
    boxes = np.concatenate([xy, wh], axis=2).reshape(-1, 4)
    img_ids = np.repeat(np.arange(1, n_img + 1), per)
    cats = rng.integers(1, 4, size=n_img * per)
    gt = {
        "images": images,
        "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)],
        "annotations": [
            {"id": k + 1, "image_id": int(i), "category_id": int(c), "bbox": b}
            for k, (i, c, b) in enumerate(zip(img_ids, cats, boxes.tolist(), strict=True))
        ],
    }
    hits = [
        {"image_id": int(i), "category_id": int(c), "bbox": b, "score": 0.9 + 0.1 * s}
        for i, c, b, s in zip(img_ids, cats, boxes.tolist(), rng.random(len(cats)), strict=True)
    ]
    n_fp = n_img * (20 - per)
    fp_boxes = np.concatenate(
        [rng.uniform(0, 600, (n_fp, 2)), rng.uniform(1, 40, (n_fp, 2))], axis=1
    ).tolist()
    misses = [
        {"image_id": int(i), "category_id": int(c), "bbox": b, "score": 0.5 * s}
        for i, c, b, s in zip(
            rng.integers(1, n_img + 1, n_fp),
            rng.integers(1, 4, n_fp),
            fp_boxes,
            rng.random(n_fp),
            strict=True,
        )
    ]
    result = coco_detection(gt, hits + misses)
    assert len(hits + misses) == 40_000
    assert result["AP"] == 1.0 and result["AR100"] == 1.0


def test_missing_evaluator_names_the_extra() -> None:
    import sys

    saved = sys.modules.get("faster_coco_eval")
    sys.modules["faster_coco_eval"] = None  # type: ignore[assignment]  # makes import fail
    try:
        with pytest.raises(MissingDependency, match=r"annoloop\[experiments\]"):
            coco_detection(small_gt(), small_dt())
    finally:
        if saved is None:
            del sys.modules["faster_coco_eval"]
        else:
            sys.modules["faster_coco_eval"] = saved


def test_dataset_inputs_that_do_not_fit() -> None:
    from annoloop.formats.dataset import Dataset, ImageRecord
    from annoloop.geometry.annotations import Annotations
    from tests.metrics.coins_data import as_dataset

    gt, dets = coin_ground_truth(), coin_detections("bbox")
    dataset, predictions = as_dataset(gt, dets)
    with pytest.raises(InvalidInput, match="need the ground truth as a Dataset"):
        coco_detection(gt, predictions)
    renamed = predictions[np.arange(len(predictions))]
    renamed.label_names = ["x", "y"]
    with pytest.raises(InvalidInput, match="label_names differ"):
        coco_detection(dataset, renamed)
    no_score = predictions[np.arange(len(predictions))]
    no_score.confidence[4] = np.nan
    with pytest.raises(InvalidInput, match=r"dt.annotations\[4\]: a detection needs a finite"):
        coco_detection(dataset, no_score)
    stranger = Dataset(
        [ImageRecord("elsewhere.png", 10, 10)],
        ["small coin"],
        Annotations.from_boxes([0], [[0.5, 0.5, 0.2, 0.2]], [0], [0.5]),
    )
    with pytest.raises(InvalidInput, match="1 detection images are not in the ground truth"):
        coco_detection(dataset, stranger)
    unknown_label = Dataset(
        [dataset.images[0]],
        ["pebble"],
        Annotations.from_boxes([0], [[0.5, 0.5, 0.2, 0.2]], [0], [0.5]),
    )
    with pytest.raises(
        InvalidInput, match=r"detection labels not in the ground truth: \['pebble'\]"
    ):
        coco_detection(dataset, unknown_label)
