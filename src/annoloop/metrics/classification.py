"""Classification metrics from true and predicted labels, vectorised with numpy.

One confusion matrix (``np.bincount`` over ``true * k + pred``) gives everything: accuracy,
balanced accuracy, per-class precision, recall, F1 and support, and their macro and weighted
averages. The numbers follow scikit-learn's definitions (``classification_report``,
``balanced_accuracy_score``); a class with no predictions (precision) or no true samples
(recall) gets ``zero_division`` (0.0 by default, as scikit-learn does after its warning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput


@dataclass
class ClassificationReport:
    """Everything computed from one confusion matrix.

    ``confusion[i, j]`` counts samples of true class ``labels[i]`` predicted as ``labels[j]``.
    Per-class arrays follow the order of ``labels``.
    """

    labels: list[str]
    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    accuracy: float
    balanced_accuracy: float
    macro: dict[str, float]
    weighted: dict[str, float]

    def as_dict(self) -> dict[str, float]:
        """Flat ``name -> float``: overall values, averages, then ``precision/<label>`` etc."""
        out = {"accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy}
        for avg_name, values in (("macro", self.macro), ("weighted", self.weighted)):
            out.update({f"{key}_{avg_name}": value for key, value in values.items()})
        for i, label in enumerate(self.labels):
            out[f"precision/{label}"] = float(self.precision[i])
            out[f"recall/{label}"] = float(self.recall[i])
            out[f"f1/{label}"] = float(self.f1[i])
            out[f"support/{label}"] = float(self.support[i])
        return out


def _as_labels(values: Any, name: str) -> np.ndarray:
    """A 1-D array of labels; (n, k) scores or probabilities become their argmax."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise InvalidInput(f"cannot read labels: {exc}", name) from None
    if arr.ndim == 2 and arr.dtype.kind == "f":
        if arr.shape[1] == 0:
            raise InvalidInput("score matrix has no columns", name)
        return np.argmax(arr, axis=1)
    if arr.ndim != 1:
        raise InvalidInput(f"labels must be 1-D (or (n, k) scores), got shape {arr.shape}", name)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidInput(f"label {arr[i].item()!r} is not an integer class", f"{name}[{i}]")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuUSOb":
        raise InvalidInput(f"labels must be integers or strings, got dtype {arr.dtype}", name)
    if arr.dtype.kind == "O":
        kinds = {type(v) for v in arr.tolist()}
        if not (kinds <= {str} or kinds <= {int}):
            found = sorted(k.__name__ for k in kinds)
            raise InvalidInput(f"labels must all be integers or all strings, got {found}", name)
        arr = arr.astype(str) if kinds <= {str} else arr.astype(np.int64)
    return arr


def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence[Any] | None = None,
) -> tuple[np.ndarray, list[Any]]:
    """Confusion matrix (rows true, columns predicted) and the label order used.

    ``labels`` fixes the classes and their order; by default the sorted union of both inputs.
    A value missing from ``labels`` raises InvalidInput naming its position.
    """
    true = _as_labels(y_true, "y_true")
    pred = _as_labels(y_pred, "y_pred")
    if len(true) != len(pred):
        raise InvalidInput(f"y_true has {len(true)} labels, y_pred has {len(pred)}")
    if (true.dtype.kind in "US") != (pred.dtype.kind in "US") and len(true):
        raise InvalidInput("y_true and y_pred mix string and integer labels")
    if labels is None:
        classes = np.unique(np.concatenate([true, pred]))
    else:
        classes = np.asarray(labels)
        if classes.ndim != 1 or len(classes) == 0:
            raise InvalidInput("labels must be a non-empty 1-D list")
        if len(np.unique(classes)) != len(classes):
            raise InvalidInput("labels contains duplicates")
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    k = len(classes)
    codes = []
    for values, name in ((true, "y_true"), (pred, "y_pred")):
        if len(values) and (values.dtype.kind in "US") != (sorted_classes.dtype.kind in "US"):
            raise InvalidInput("labels and the values to count mix string and integer labels", name)
        pos = np.searchsorted(sorted_classes, values)
        pos_c = np.minimum(pos, max(k - 1, 0))
        missing = (
            (pos >= k) | (sorted_classes[pos_c] != values) if k else np.ones(len(values), bool)
        )
        if missing.any():
            i = int(np.argmax(missing))
            raise InvalidInput(f"label {values[i].item()!r} is not in labels", f"{name}[{i}]")
        codes.append(order[pos_c])
    flat = codes[0] * k + codes[1]
    matrix = np.bincount(flat, minlength=k * k).reshape(k, k).astype(np.int64)
    return matrix, classes.tolist()


def _divide(num: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    out = np.full(num.shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def classification_report(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence[Any] | None = None,
    label_names: Sequence[str] | None = None,
    zero_division: float = 0.0,
) -> ClassificationReport:
    """Accuracy, balanced accuracy, per-class precision/recall/F1/support and their averages.

    ``y_true`` and ``y_pred`` are 1-D integer or string labels (``y_pred`` may be (n, k) scores:
    their argmax is taken). ``label_names`` names integer classes ``0..k-1`` (or the entries of
    ``labels``) in the report's keys.
    """
    if label_names is not None and labels is None:
        labels = list(range(len(label_names)))  # names index the integer codes 0..k-1
    matrix, classes = confusion_matrix(y_true, y_pred, labels=labels)
    if label_names is not None:
        names = [str(n) for n in label_names]
        if len(names) != len(classes):
            raise InvalidInput(f"label_names has {len(names)} names, labels has {len(classes)}")
    else:
        names = [str(c) for c in classes]
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _divide(tp, predicted, zero_division)
    recall = _divide(tp, support, zero_division)
    f1 = _divide(2 * tp, support + predicted, zero_division)
    total = int(support.sum())
    accuracy = float(tp.sum() / total) if total else float("nan")
    present = support > 0
    balanced = float(np.mean(tp[present] / support[present])) if present.any() else float("nan")
    weights = support / total if total else np.zeros(len(support))
    k = len(names)
    macro = {
        "precision": float(precision.mean()) if k else float("nan"),
        "recall": float(recall.mean()) if k else float("nan"),
        "f1": float(f1.mean()) if k else float("nan"),
    }
    weighted = {
        "precision": float(precision @ weights),
        "recall": float(recall @ weights),
        "f1": float(f1 @ weights),
    }
    return ClassificationReport(
        labels=names,
        confusion=matrix,
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        accuracy=accuracy,
        balanced_accuracy=balanced,
        macro=macro,
        weighted=weighted,
    )
