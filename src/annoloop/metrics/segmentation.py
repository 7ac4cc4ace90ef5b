"""Semantic segmentation metrics from label maps or binary masks.

Predicted and true label maps (integer class per pixel) are compared through one pixel
confusion matrix (``np.bincount``): per-class IoU = TP / (TP + FP + FN), Dice = 2TP / (2TP + FP +
FN), pixel accuracy, mean accuracy, mean IoU, mean Dice and frequency-weighted IoU. A class that
appears in neither map has IoU and Dice NaN and is left out of the means. Boolean masks are two
classes, ``background`` (0) and ``foreground`` (1). ``ignore_index`` pixels of the target (for
example 255 for "void") are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput


@dataclass
class SegmentationReport:
    """Per-class and mean values from a (k, k) pixel confusion matrix (rows true, cols pred)."""

    labels: list[str]
    confusion: np.ndarray
    iou: np.ndarray
    dice: np.ndarray
    pixel_accuracy: float
    mean_accuracy: float
    mean_iou: float
    mean_dice: float
    fw_iou: float

    def as_dict(self) -> dict[str, float]:
        """Flat ``name -> float``: the means, then ``iou/<label>`` and ``dice/<label>``."""
        out = {
            "pixel_accuracy": self.pixel_accuracy,
            "mean_accuracy": self.mean_accuracy,
            "mean_iou": self.mean_iou,
            "mean_dice": self.mean_dice,
            "fw_iou": self.fw_iou,
        }
        for i, label in enumerate(self.labels):
            out[f"iou/{label}"] = float(self.iou[i])
            out[f"dice/{label}"] = float(self.dice[i])
        return out


def _maps(values: Any, name: str) -> list[np.ndarray]:
    """One array or a list of arrays (images of different sizes) -> list of arrays."""
    if isinstance(values, np.ndarray):
        return [values]
    if (
        isinstance(values, Sequence)
        and not isinstance(values, (str, bytes))
        and values
        and all(isinstance(v, np.ndarray) for v in values)
    ):
        return list(values)
    try:
        return [np.asarray(values)]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot read label map: {exc}", name) from None


def _check_map(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            pos = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
            raise InvalidInput(f"non-integer class {arr[pos].item()!r} at pixel {pos}", where)
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise InvalidInput(f"label maps must hold integer classes, got dtype {arr.dtype}", where)
    return arr.astype(np.int64, copy=False)


def segmentation_confusion(
    prediction: Any,
    target: Any,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = None,
) -> np.ndarray:
    """(k, k) pixel confusion matrix, rows true class, columns predicted class.

    ``prediction`` and ``target`` are label maps of equal shape, or equal-length lists of them.
    ``num_classes`` defaults to one more than the largest class seen.
    """
    preds, targets = _maps(prediction, "prediction"), _maps(target, "target")
    if len(preds) != len(targets):
        raise InvalidInput(f"{len(preds)} predicted maps but {len(targets)} target maps")
    is_bool = all(p.dtype == bool for p in preds) and all(t.dtype == bool for t in targets)
    flat_p, flat_t = [], []
    for i, (p, t) in enumerate(zip(preds, targets, strict=True)):
        where = f"maps[{i}]" if len(preds) > 1 else ""
        if p.shape != t.shape:
            raise InvalidInput(f"prediction shape {p.shape} != target shape {t.shape}", where)
        flat_p.append(_check_map(p, f"prediction {where}".strip()).reshape(-1))
        flat_t.append(_check_map(t, f"target {where}".strip()).reshape(-1))
    pred = np.concatenate(flat_p) if flat_p else np.zeros(0, np.int64)
    true = np.concatenate(flat_t) if flat_t else np.zeros(0, np.int64)
    if ignore_index is not None:
        keep = true != ignore_index
        pred, true = pred[keep], true[keep]
    if num_classes is None:
        num_classes = 2 if is_bool else int(max(pred.max(initial=-1), true.max(initial=-1)) + 1)
    k = int(num_classes)
    if k <= 0:
        raise InvalidInput(f"num_classes must be positive, got {num_classes}")
    for values, name in ((pred, "prediction"), (true, "target")):
        bad = (values < 0) | (values >= k)
        if bad.any():
            raise InvalidInput(
                f"class {int(values[int(np.argmax(bad))])} outside 0..{k - 1} "
                f"(set num_classes or ignore_index)",
                name,
            )
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k).astype(np.int64)


def segmentation_report(
    prediction: Any,
    target: Any,
    *,
    num_classes: int | None = None,
    label_names: Sequence[str] | None = None,
    ignore_index: int | None = None,
) -> SegmentationReport:
    """IoU, Dice and accuracies of predicted label maps (or masks) against the target."""
    preds = _maps(prediction, "prediction")
    is_bool = all(p.dtype == bool for p in preds)
    if num_classes is None and label_names is not None:
        num_classes = len(label_names)
    matrix = segmentation_confusion(
        prediction, target, num_classes=num_classes, ignore_index=ignore_index
    )
    k = len(matrix)
    if label_names is not None:
        names = [str(n) for n in label_names]
        if len(names) != k:
            raise InvalidInput(f"label_names has {len(names)} names for {k} classes")
    elif is_bool and k == 2:
        names = ["background", "foreground"]
    else:
        names = [str(i) for i in range(k)]
    tp = np.diag(matrix).astype(np.float64)
    in_target = matrix.sum(axis=1).astype(np.float64)
    in_pred = matrix.sum(axis=0).astype(np.float64)
    union = in_target + in_pred - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        dice = np.where(union > 0, 2 * tp / (in_target + in_pred), np.nan)
        class_acc = np.where(in_target > 0, tp / in_target, np.nan)
    total = in_target.sum()
    present = ~np.isnan(iou)

    def _mean(values: np.ndarray) -> float:
        ok = ~np.isnan(values)
        return float(values[ok].mean()) if ok.any() else float("nan")

    freq = in_target / total if total else np.zeros(k)
    return SegmentationReport(
        labels=names,
        confusion=matrix,
        iou=iou,
        dice=dice,
        pixel_accuracy=float(tp.sum() / total) if total else float("nan"),
        mean_accuracy=_mean(class_acc),
        mean_iou=_mean(iou),
        mean_dice=_mean(dice),
        fw_iou=float(np.sum(freq[present] * iou[present])) if total else float("nan"),
    )
