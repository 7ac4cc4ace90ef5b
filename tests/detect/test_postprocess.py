"""NMS, keep threshold and the IoU tracker on generated boxes."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.detect.postprocess import batched_nms, filter_detections, nms
from annoloop.detect.tracking import track_boxes
from annoloop.errors import InvalidInput


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 60, (n, 2))
    return np.column_stack([xy, xy + wh])


def test_nms_matches_torchvision() -> None:
    from annoloop.backbones import import_torchvision

    tv = import_torchvision()
    import torch

    rng = np.random.default_rng(0)
    boxes = _random_boxes(rng, 400)
    scores = rng.random(400).astype(np.float32)
    ours = nms(boxes, scores, 0.5)
    ref = tv.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    assert ours.tolist() == ref.tolist()


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10.0]])
    scores = np.array([0.9, 0.8, 0.7])
    labels = np.array([0, 0, 1])
    assert sorted(batched_nms(boxes, scores, labels, 0.5, True).tolist()) == [0, 2]
    assert batched_nms(boxes, scores, labels, 0.5, False).tolist() == [0]


def test_filter_drops_low_scores_and_non_finite_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [np.nan, 0, 1, 1], [20, 20, 30, 30.0]])
    scores = np.array([0.9, 0.2, 0.99, 0.6])
    b, s, lab = filter_detections(boxes, scores, [0, 0, 0, 1], keep_threshold=0.5, nms_iou=0.5)
    assert len(b) == 2 and s.tolist() == pytest.approx([0.9, 0.6])
    assert lab.tolist() == [0, 1]
    empty = filter_detections(np.zeros((0, 4)), [], [], keep_threshold=0.1, nms_iou=0.5)
    assert all(len(x) == 0 for x in empty)


def test_nms_on_many_boxes_is_quick_and_sound() -> None:
    rng = np.random.default_rng(1)
    boxes = _random_boxes(rng, 5000)
    keep = nms(boxes, rng.random(5000), 0.3)
    from annoloop.geometry.boxes import box_iou

    iou = box_iou(boxes[keep], boxes[keep])
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.3 + 1e-9


def _two_walkers(n: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two boxes moving towards each other on separate rows, one missing on frame 4."""
    frames, boxes, who = [], [], []
    for f in range(n):
        for k, (x0, dx, y) in enumerate([(0, 8, 0), (150, -8, 40)]):
            if k == 1 and f == 4:
                continue
            x = x0 + dx * f
            frames.append(f)
            boxes.append([x, y, x + 30, y + 30])
            who.append(k)
    return np.array(frames), np.array(boxes, float), np.array(who)


@pytest.mark.parametrize("method", ["hungarian", "greedy"])
def test_tracker_links_moving_boxes_across_a_gap(method: str) -> None:
    frames, boxes, who = _two_walkers()
    order = np.random.default_rng(2).permutation(len(frames))  # any input order
    ids = track_boxes(frames[order], boxes[order], method=method, max_gap=1)
    ids_by_walker = {k: set(ids[who[order] == k].tolist()) for k in (0, 1)}
    assert all(len(v) == 1 for v in ids_by_walker.values())
    assert ids_by_walker[0] != ids_by_walker[1]


def test_tracker_ends_tracks_after_the_gap_and_respects_classes() -> None:
    frames, boxes, who = _two_walkers()
    ids = track_boxes(frames, boxes, max_gap=0)
    assert len(set(ids[who == 1].tolist())) == 2  # the gap at frame 4 splits walker 1
    labels = (frames >= 5).astype(int)  # class changes half way: a new track
    ids = track_boxes(frames, boxes, labels, max_gap=1)
    assert len(set(ids[who == 0].tolist())) == 2


def test_tracker_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput, match="3 boxes for 2"):
        track_boxes([0, 1], np.zeros((3, 4)))
    with pytest.raises(InvalidInput, match="hungarian or greedy"):
        track_boxes([0], np.zeros((1, 4)), method="best")  # type: ignore[arg-type]
    assert track_boxes([], np.zeros((0, 4))).tolist() == []
