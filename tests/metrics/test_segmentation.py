"""Segmentation IoU, Dice and accuracies on coin masks from coins.png."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.metrics import get_metric, segmentation_confusion, segmentation_report
from tests.metrics.coins_data import coin_masks


def coin_label_map() -> np.ndarray:
    """0 background, 1 small coins, 2 large coins."""
    masks = coin_masks()
    areas = np.array([m.sum() for m in masks])
    out = np.zeros(masks[0].shape, np.int64)
    for m, a in zip(masks, areas, strict=True):
        out[m] = 1 if a < np.median(areas) else 2
    return out


def test_identical_maps_are_perfect() -> None:
    target = coin_label_map()
    report = segmentation_report(target, target)
    assert report.mean_iou == 1.0 and report.pixel_accuracy == 1.0 and report.mean_dice == 1.0
    assert report.labels == ["0", "1", "2"]


def test_shifted_prediction_against_hand_count() -> None:
    target = coin_label_map()
    pred = np.roll(target, 3, axis=1)
    report = segmentation_report(pred, target, label_names=["bg", "small", "large"])
    for k in range(3):
        t, p = target == k, pred == k
        iou = (t & p).sum() / (t | p).sum()
        dice = 2 * (t & p).sum() / (t.sum() + p.sum())
        assert report.iou[k] == pytest.approx(iou, abs=1e-12)
        assert report.dice[k] == pytest.approx(dice, abs=1e-12)
    assert report.pixel_accuracy == pytest.approx(np.mean(pred == target), abs=1e-12)
    assert report.mean_iou == pytest.approx(report.iou.mean(), abs=1e-12)
    freq = np.bincount(target.ravel(), minlength=3) / target.size
    assert report.fw_iou == pytest.approx(float(freq @ report.iou), abs=1e-12)
    flat = report.as_dict()
    assert flat["iou/small"] == report.iou[1] and 0.3 < flat["mean_iou"] < 1.0


def test_boolean_masks_and_lists_of_maps() -> None:
    m = coin_masks()[0]
    shifted = np.roll(m, 2, axis=0)
    report = segmentation_report(shifted, m)
    assert report.labels == ["background", "foreground"]
    expected = (m & shifted).sum() / (m | shifted).sum()
    assert report.iou[1] == pytest.approx(expected)
    # a list of maps of different sizes counts every pixel once
    maps = [coin_label_map(), coin_label_map()[:100, :50]]
    both = segmentation_report([np.roll(x, 1, axis=0) for x in maps], maps)
    assert both.confusion.sum() == sum(x.size for x in maps)


def test_ignore_index_and_absent_class() -> None:
    target = coin_label_map()
    target[:10] = 255
    pred = np.where(target == 255, 0, target)
    report = segmentation_report(pred, target, num_classes=4, ignore_index=255)
    assert report.confusion.sum() == target.size - 10 * target.shape[1]
    assert report.pixel_accuracy == 1.0
    assert np.isnan(report.iou[3])  # class 3 is in neither map: NaN, left out of the mean
    assert report.mean_iou == 1.0


def test_bad_maps() -> None:
    target = coin_label_map()
    with pytest.raises(InvalidInput, match="prediction shape"):
        segmentation_report(target[:10], target)
    with pytest.raises(InvalidInput, match=r"class 7 outside 0..2"):
        segmentation_report(np.full_like(target, 7), target, num_classes=3)
    with pytest.raises(InvalidInput, match="class -1 outside"):
        segmentation_confusion(np.full_like(target, -1), target)
    with pytest.raises(InvalidInput, match=r"non-integer class 0.5 at pixel \(0, 0\)"):
        segmentation_report(np.full(target.shape, 0.5), target)
    with pytest.raises(InvalidInput, match="integer classes"):
        segmentation_report(np.full(target.shape, "a"), target)
    with pytest.raises(InvalidInput, match="1 predicted maps but 2 target maps"):
        segmentation_report([target], [target, target])


def test_huge_maps_and_metric_class() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 20, (4, 1024, 1024), dtype=np.uint8)
    pred = np.where(rng.random(target.shape) < 0.9, target, 0).astype(np.uint8)
    report = segmentation_report(pred, target)
    assert report.pixel_accuracy == pytest.approx(np.mean(pred == target))
    metric = get_metric("segmentation", num_classes=20)
    assert metric.compute(pred, target)["mean_iou"] == pytest.approx(report.mean_iou)
