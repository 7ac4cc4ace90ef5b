"""Filtering detections: the keep threshold and (class-aware) non-maximum suppression."""

from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS (xyxy), best score first. Each step drops all
    boxes overlapping the current best at once (vectorised IoU against the rest)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    x1, y1, x2, y2 = boxes.T
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float, class_aware: bool
) -> np.ndarray:
    """NMS within each class (``class_aware``) or over all boxes; kept indices by score.

    Class awareness uses torchvision's trick: boxes of each class are shifted by an offset
    larger than any coordinate, so one NMS pass never compares boxes of two classes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if class_aware:
        offset = (np.abs(boxes).max() + 1.0) * np.asarray(labels, dtype=np.float64)
        boxes = boxes + offset[:, None]
    return nms(boxes, scores, iou)


def filter_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    keep_threshold: float,
    nms_iou: float | None,
    class_aware: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop boxes scoring below ``keep_threshold``, then NMS at ``nms_iou`` (None: none)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    ok = (scores >= keep_threshold) & np.all(np.isfinite(boxes), axis=1)
    boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
    if nms_iou is not None and len(boxes) > 1:
        keep = batched_nms(boxes, scores, labels, nms_iou, class_aware)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    return boxes, scores, labels
