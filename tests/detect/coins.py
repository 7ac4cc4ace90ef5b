"""Training data for the vision model tests: the coins photo with its 24 coin boxes and
masks, made from the bundled photo by annoloop.demo.field_data (nothing committed binary)."""

from __future__ import annotations

from functools import cache

import numpy as np

from annoloop.ai.base import ImageItem, TrainingData
from annoloop.geometry.annotations import Annotations
from annoloop.samples import photo_path


@cache
def coin_boxes() -> np.ndarray:
    """(24, 4) pixel xyxy boxes of the coins."""
    from annoloop.demo.field_data import coin_shapes

    xywh = np.array([s["bbox"] for s in coin_shapes()], dtype=np.float64)
    return np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])


def coins_data() -> TrainingData:
    """One image (id 1), 24 boxes of class 'coin'."""
    from annoloop.geometry.boxes import xyxy_to_cxcywh

    w, h = 384, 303
    rel = xyxy_to_cxcywh(coin_boxes() / np.array([w, h, w, h]))
    ann = Annotations.from_boxes(np.ones(len(rel)), rel, 0, label_names=["coin"])
    return TrainingData([ImageItem(1, str(photo_path("coins.png")), w, h)], ann, ["coin"])


def recall_at(pred_xyxy: np.ndarray, truth_xyxy: np.ndarray, iou: float = 0.5) -> float:
    """Share of true boxes matched by some predicted box at IoU >= ``iou``."""
    from annoloop.geometry.boxes import box_iou

    if len(pred_xyxy) == 0:
        return 0.0
    return float((box_iou(truth_xyxy, pred_xyxy).max(axis=1) >= iou).mean())
