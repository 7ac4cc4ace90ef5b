"""COCO detection metrics on coins.png data: faster-coco-eval equals pycocotools exactly."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest

from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import mask_to_polygon, rle_encode
from annoloop.metrics import STAT_NAMES, coco_detection, evaluate_coco, get_metric
from tests.metrics.coins_data import as_dataset, coin_detections, coin_ground_truth, coin_masks

pycocotools_coco = pytest.importorskip("pycocotools.coco")
pycocotools_eval = pytest.importorskip("pycocotools.cocoeval")


def reference(gt: dict, dets: list[dict], iou_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Plain pycocotools, run by hand: the 12 stats and per-category AP."""
    gt, dets = copy.deepcopy(gt), copy.deepcopy(dets)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = pycocotools_coco.COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = pycocotools_eval.COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, -1]
    per_class = np.array(
        [prec[:, :, k][prec[:, :, k] > -1].mean() for k in range(prec.shape[2])], dtype=float
    )
    return np.asarray(ev.stats, dtype=float), per_class


def test_ground_truth_has_the_24_coins() -> None:
    assert len(coin_masks()) == 24
    gt = coin_ground_truth()
    per_image = np.bincount([a["image_id"] for a in gt["annotations"]])
    assert per_image.tolist() == [0, 24, 24]
    areas = np.array([a["area"] for a in gt["annotations"]])
    # small, medium and large COCO area ranges all occur
    assert (areas < 32**2).any() and ((areas >= 32**2) & (areas < 96**2)).any()
    assert (areas >= 96**2).any()


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_faster_coco_eval_equals_pycocotools(iou_type: str, seed: int) -> None:
    gt = coin_ground_truth()
    dets = coin_detections(iou_type, seed=seed)
    result = coco_detection(gt, dets, iou_type=iou_type)
    stats, per_class = reference(gt, dets, iou_type)
    assert list(result)[:12] == list(STAT_NAMES)
    for name, expected in zip(STAT_NAMES, stats, strict=True):
        assert abs(result[name] - expected) <= 1e-12, name
    assert abs(result["AP/small coin"] - per_class[0]) <= 1e-12
    assert abs(result["AP/large coin"] - per_class[1]) <= 1e-12
    # the data is not trivial: some but not all detections are right
    assert 0.1 < result["AP"] < 0.9
    # and our pycocotools path gives the same
    slow = coco_detection(gt, dets, iou_type=iou_type, use_pycocotools=True)
    assert slow.keys() == result.keys()
    assert all(abs(slow[k] - result[k]) <= 1e-12 for k in result)


def test_inputs_are_not_mutated_and_files_work(tmp_path: Path) -> None:
    gt, dets = coin_ground_truth(), coin_detections("segm")
    before = (copy.deepcopy(gt), copy.deepcopy(dets))
    from_objects = coco_detection(gt, dets, iou_type="segm")
    assert (gt, dets) == before
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dets))
    from_files = coco_detection(tmp_path / "gt.json", str(tmp_path / "dt.json"), iou_type="segm")
    assert from_files == from_objects
    # a detections file in COCO form (an object with "annotations") is accepted too
    (tmp_path / "dt2.json").write_text(json.dumps({"annotations": dets}))
    assert coco_detection(gt, tmp_path / "dt2.json", iou_type="segm") == from_objects


def test_dataset_and_annotations_inputs_match_the_coco_dicts() -> None:
    gt, dets = coin_ground_truth(), coin_detections("bbox", seed=3)
    dataset, predictions = as_dataset(gt, dets)
    # what the struct holds: box rows (their area is the box's) and float32 confidences
    for a in gt["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3]
    for d in dets:
        d["score"] = float(np.float32(d["score"]))
    expected = coco_detection(gt, dets)
    from_struct = coco_detection(dataset, predictions)
    assert from_struct.keys() == expected.keys()
    assert all(abs(from_struct[k] - expected[k]) <= 1e-12 for k in expected)
    # detections as a Dataset, images listed in another order: matched by file name
    order = [1, 0]
    moved = predictions.image.copy()
    for new, old in enumerate(order):
        moved[predictions.image == old] = new
    det_ds = Dataset(
        images=[dataset.images[i] for i in order],
        labels=dataset.labels,
        annotations=Annotations.from_boxes(
            moved,
            predictions.box,
            predictions.label,
            predictions.confidence,
            label_names=dataset.labels,
        ),
    )
    from_dataset = coco_detection(dataset, det_ds)
    assert all(abs(from_dataset[k] - expected[k]) <= 1e-12 for k in expected)


def test_perfect_and_empty_detections() -> None:
    gt = coin_ground_truth()
    perfect = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 1.0,
        }
        for a in gt["annotations"]
    ]
    result = coco_detection(gt, perfect)
    assert result["AP"] == 1.0 and result["AP50"] == 1.0 and result["AR100"] == 1.0
    gt["categories"].append({"id": 99, "name": "no such coin"})
    result = coco_detection(gt, perfect)
    assert result["AP/no such coin"] == -1.0  # COCO's "undefined"
    none = coco_detection(gt, [])
    assert none["AP"] == 0.0 and none["AR100"] == 0.0
    assert coco_detection(gt, [], use_pycocotools=True) == none


def test_segm_from_annoloop_polygons_and_masks() -> None:
    # ground truth as polygons traced from the coin masks, detections as the masks' RLEs
    masks = coin_masks()
    h, w = masks[0].shape
    shapes = [mask_to_polygon(m) for m in masks]
    n = len(masks)
    boxes = np.array([[0.5, 0.5, 1.0, 1.0]] * n)  # segm IoU ignores the boxes
    gt_ann = Annotations(
        image=np.zeros(n),
        kind=np.full(n, int(Kind.POLYGON)),
        label=np.zeros(n),
        box=boxes,
        confidence=np.full(n, np.nan),
        shape=shapes,
        label_names=["coin"],
    )
    dataset = Dataset([ImageRecord("coins.png", w, h)], ["coin"], gt_ann)
    dt_ann = Annotations(
        image=np.zeros(n),
        kind=np.full(n, int(Kind.MASK)),
        label=np.zeros(n),
        box=boxes,
        confidence=np.linspace(0.5, 1.0, n),
        shape=[rle_encode(m) for m in masks],
        label_names=["coin"],
    )
    result = coco_detection(dataset, dt_ann, iou_type="segm")
    # traced polygons and pixel masks agree far above IoU 0.75 for every coin
    assert result["AP50"] == 1.0 and result["AP75"] == 1.0
    assert result["AP"] > 0.8
    slow = coco_detection(dataset, dt_ann, iou_type="segm", use_pycocotools=True)
    assert all(abs(slow[k] - result[k]) <= 1e-12 for k in result)


def test_evaluation_object_and_metric_class() -> None:
    gt, dets = coin_ground_truth(), coin_detections("bbox")
    ev = evaluate_coco(gt, dets)
    assert ev.precision.shape == (10, 101, 2, 4, 3)
    assert ev.recall.shape == (10, 2, 4, 3)
    assert ev.category_ids == [1, 7]
    metric = get_metric("coco_detection")
    assert metric.compute(dets, gt) == ev.as_dict()
    assert metric.is_higher_better("AP")
    segm = get_metric("coco_detection", iou_type="segm")
    assert segm.compute(coin_detections("segm"), gt)["AP"] > 0
