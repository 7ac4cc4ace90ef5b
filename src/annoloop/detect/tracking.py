"""Linking per-frame boxes into tracks with an IoU tracker.

Each frame's boxes are matched to the tracks alive at the previous processed frame by IoU,
either greedily (best pair first) or optimally (Hungarian, ``scipy.optimize.
linear_sum_assignment``). A track that is not matched for more than ``max_gap`` processed
frames ends; unmatched boxes start new tracks. Matching is within a class unless
``class_aware=False``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.geometry.boxes import box_iou


def _assign(iou: np.ndarray, threshold: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) pairs of a matching with IoU >= threshold."""
    if iou.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if method == "hungarian":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= threshold
        return rows[ok].astype(np.int64), cols[ok].astype(np.int64)
    # greedy: all candidate pairs sorted by IoU, each row and column used once
    r, c = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[r, c], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    rows, cols = [], []
    for i in order.tolist():
        a, b = int(r[i]), int(c[i])
        if a in used_r or b in used_c:
            continue
        used_r.add(a)
        used_c.add(b)
        rows.append(a)
        cols.append(b)
    return np.asarray(rows, np.int64), np.asarray(cols, np.int64)


def track_boxes(
    frames: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    iou_threshold: float = 0.3,
    max_gap: int = 1,
    method: Literal["hungarian", "greedy"] = "hungarian",
    class_aware: bool = True,
) -> np.ndarray:
    """Track ids (0, 1, ...) for boxes given with their frame index (any order).

    ``boxes`` are xyxy in one coordinate system (pixels or relative); ``max_gap`` is how many
    processed frames a track may miss and still continue."""
    if method not in ("hungarian", "greedy"):
        raise InvalidInput(f"tracker method must be hungarian or greedy, not {method!r}", "method")
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(frames)
    if len(boxes) != n:
        raise InvalidInput(f"{len(boxes)} boxes for {n} frame indices", "track_boxes")
    labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels, np.int64)
    ids = np.full(n, -1, np.int64)
    if n == 0:
        return ids
    order = np.argsort(frames, kind="stable")
    uniq, starts = np.unique(frames[order], return_index=True)
    bounds = [*starts.tolist(), n]
    # live tracks: last box, label, id, index of the processed frame it was last seen on
    live_box = np.zeros((0, 4))
    live_label = np.zeros(0, np.int64)
    live_id = np.zeros(0, np.int64)
    live_seen = np.zeros(0, np.int64)
    next_id = 0
    for step in range(len(uniq)):
        rows = order[bounds[step] : bounds[step + 1]]
        alive = (step - live_seen) <= max_gap + 1  # missed at most max_gap frames
        live_box, live_label = live_box[alive], live_label[alive]
        live_id, live_seen = live_id[alive], live_seen[alive]
        iou = box_iou(live_box, boxes[rows]) if len(live_box) else np.zeros((0, len(rows)))
        if class_aware and iou.size:
            iou = np.where(live_label[:, None] == labels[rows][None, :], iou, 0.0)
        tr, det = _assign(iou, iou_threshold, method)
        ids[rows[det]] = live_id[tr]
        live_box[tr] = boxes[rows[det]]
        live_seen[tr] = step
        new = np.setdiff1d(np.arange(len(rows)), det)
        new_ids = next_id + np.arange(len(new))
        next_id += len(new)
        ids[rows[new]] = new_ids
        live_box = np.concatenate([live_box, boxes[rows[new]]])
        live_label = np.concatenate([live_label, labels[rows[new]]])
        live_id = np.concatenate([live_id, new_ids])
        live_seen = np.concatenate([live_seen, np.full(len(new), step)])
    return ids
