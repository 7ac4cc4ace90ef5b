"""Scoring a model state on a labelled validation set, the same way for every model.

The metric depends on what the model predicts:

- ``label``: accuracy over the images (one truth label per image: its last label);
- ``point``: accuracy over the truth points (predictions made at those points);
- ``bbox``, ``polygon``, ``mask``, ``line``: precision, recall and F1 of class-aware matches
  at box IoU >= 0.5 (greedy by confidence), F1 being the primary metric.

:func:`primary_metric` names the number compared when a new state competes with the current
one (higher is better for all of them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annoloop.ai.base import Model, ModelState, Predictions, TrainingData
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress


def primary_metric(model: Model | type[Model]) -> str:
    """The metric that decides whether a state is better: accuracy or F1."""
    return "accuracy" if model.info.predicts in ("label", "point") else "f1"


def inference_input(model: Model | type[Model], data: TrainingData) -> TrainingData:
    """What inference receives for a validation set: the points without their labels for
    point models, the images alone for the others."""
    if model.info.predicts == "point":
        pts = data.without_labels().annotations.of_kind(Kind.POINT)
        return TrainingData(data.images, pts, data.classes)
    return TrainingData(data.images, Annotations.empty(), data.classes)


def evaluate(
    model: Model, state: ModelState, data: TrainingData, progress: Progress | None = None
) -> dict[str, float]:
    """Run ``state`` on ``data``'s images and score it against ``data``'s annotations."""
    pred = model.inference(state, inference_input(model, data), progress)
    return score_predictions(pred, data, model.info.predicts)


def _remap(pred: Predictions, classes: list[str]) -> np.ndarray:
    """Prediction labels as indices into ``classes`` (-1 for a class the data lacks)."""
    lookup = {c: i for i, c in enumerate(classes)}
    table = np.array([lookup.get(c, -1) for c in pred.classes] or [-1], np.int64)
    label = pred.annotations.label
    return np.where(label >= 0, table[np.clip(label, 0, None)], -1)


def score_predictions(pred: Predictions, truth: TrainingData, kind: str) -> dict[str, float]:
    """Metrics of ``pred`` against ``truth`` (see the module doc); ``n_eval`` counts items."""
    labels = _remap(pred, truth.classes)
    if kind == "label":
        return _label_accuracy(pred.annotations.image, labels, truth)
    if kind == "point":
        return _point_accuracy(pred.annotations, labels, truth)
    return _box_f1(pred.annotations, labels, truth)


def _last_per_image(image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, first_rev = np.unique(image[::-1], return_index=True)
    last = len(image) - 1 - first_rev
    return image[last], label[last]


def _label_accuracy(image: np.ndarray, label: np.ndarray, truth: TrainingData) -> dict[str, float]:
    ann = truth.annotations
    keep = (ann.kind == int(Kind.LABEL)) & (ann.label >= 0)
    t_img, t_lab = _last_per_image(ann.image[keep], ann.label[keep])
    p_img, p_lab = _last_per_image(image, label)
    pos = np.searchsorted(p_img, t_img)
    pos = np.clip(pos, 0, max(len(p_img) - 1, 0))
    found = (len(p_img) > 0) & (p_img[pos] == t_img) if len(p_img) else np.zeros(len(t_img), bool)
    correct = found & (p_lab[pos] == t_lab) if len(p_img) else found
    n = len(t_img)
    return {"accuracy": float(correct.mean()) if n else float("nan"), "n_eval": float(n)}


def _point_keys(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    # points match when they are the same pixel-ish place (1e-6 of the image) on the same image
    q = np.round(box[:, :2] * 1e6).astype(np.int64)
    return np.stack([image, q[:, 0], q[:, 1]], axis=1)


def _point_accuracy(pred: Annotations, label: np.ndarray, truth: TrainingData) -> dict[str, float]:
    ann = truth.annotations
    keep = (ann.kind == int(Kind.POINT)) & (ann.label >= 0)
    t_keys = _point_keys(ann.image[keep], ann.box[keep])
    p_keys = _point_keys(pred.image, pred.box)
    n = len(t_keys)
    if n == 0:
        return {"accuracy": float("nan"), "n_eval": 0.0}
    both = np.concatenate([p_keys, t_keys])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    pred_label = np.full(inverse.max() + 1, -2, np.int64)
    pred_label[inverse[: len(p_keys)]] = label
    got = pred_label[inverse[len(p_keys) :]]
    return {"accuracy": float((got == ann.label[keep]).mean()), "n_eval": float(n)}


def _xyxy(box: np.ndarray) -> np.ndarray:
    half = box[:, 2:] / 2
    return np.concatenate([box[:, :2] - half, box[:, :2] + half], axis=1)


def _box_f1(pred: Annotations, label: np.ndarray, truth: TrainingData) -> dict[str, Any]:
    ann = truth.annotations
    keep = (ann.kind != int(Kind.LABEL)) & (ann.label >= 0)
    t_img, t_lab, t_box = ann.image[keep], ann.label[keep], _xyxy(ann.box[keep])
    p_box = _xyxy(pred.box)
    order = np.argsort(-np.nan_to_num(pred.confidence, nan=0.0), kind="stable")
    matched_truth = np.zeros(len(t_img), bool)
    tp = 0
    # per image: a small IoU matrix, then greedy matching by confidence
    for image_id in np.unique(pred.image):
        p_idx = order[pred.image[order] == image_id]
        t_idx = np.flatnonzero(t_img == image_id)
        if len(t_idx) == 0:
            continue
        a, b = p_box[p_idx], t_box[t_idx]
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
        area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
        area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
        iou = inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-12)
        iou[label[p_idx][:, None] != t_lab[t_idx][None]] = 0.0
        for row in range(len(p_idx)):
            cand = np.where(matched_truth[t_idx], 0.0, iou[row])
            j = int(np.argmax(cand))
            if cand[j] >= 0.5:
                matched_truth[t_idx[j]] = True
                tp += 1
    n_pred, n_true = len(pred), len(t_img)
    precision = tp / n_pred if n_pred else (1.0 if n_true == 0 else 0.0)
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "n_eval": float(n_true),
    }
