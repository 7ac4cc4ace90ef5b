"""Built-in annoloop models an experiment can run without a script (``ModelTask``).

Each is a function with the task convention ``fn(trainds, valds, testds, outputpath, seed,
**hyperparameters) -> results`` that also writes ``output.json`` (its predictions):

- ``histogram-classifier``: colour histograms of annotated regions (boxes, polygons' boxes,
  or the whole image for image labels) classified with scikit-learn (``classifier``:
  ``logistic``, ``random_forest`` or ``knn``; ``bins`` per channel). Trained on ``trainds``,
  evaluated on ``testds`` (else ``valds``, else a seeded ``holdout`` share of ``trainds``).
  Results: accuracy, balanced accuracy, macro and weighted F1 (annoloop.metrics);
  ``output.json``: ``{"labels", "y_true", "y_pred", "images"}``.
- ``threshold-detector``: objects brighter (or darker, ``invert=True``) than Otsu's threshold
  times ``threshold_scale``, as connected components of at least ``min_area`` pixels, one
  class (the first label of the ground truth), score = the region's solidity. Nothing to
  train: evaluated with COCO box metrics on ``testds`` (else ``valds``, else ``trainds``);
  ``output.json`` is a COCO results list.

``list_models()`` names them; :func:`get_model_function` returns one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput, NotFound


def _dataset(path: str) -> Any:
    from annoloop.experiments.dataset import ExperimentDataset

    return ExperimentDataset.open(path)


def _crops(ds: Any, bins: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(features, label index, label names, image names) of every labelled region."""
    from annoloop.geometry.boxes import cxcywh_to_xyxy
    from annoloop.geometry.kinds import Kind
    from annoloop.storage import read_image

    data = ds.load()
    ann = data.annotations
    ann = ann[ann.label >= 0]
    feats, labels, names = [], [], []
    order = np.argsort(ann.image, kind="stable")
    edges = np.linspace(0, 256, bins + 1)
    loaded: dict[int, np.ndarray] = {}  # the current image only: rows are sorted by image
    for row in order.tolist():
        img = int(ann.image[row])
        if img not in loaded:
            loaded.clear()
            loaded[img] = read_image(ds.images / data.images[img].file_name)
        pixels = loaded[img]
        h, w = pixels.shape[:2]
        if ann.kind[row] == Kind.LABEL or not np.all(np.isfinite(ann.box[row])):
            crop = pixels
        else:
            x0, y0, x1, y1 = (cxcywh_to_xyxy(ann.box[row]) * [w, h, w, h]).tolist()
            c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
            c1, r1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
            crop = pixels[r0:r1, c0:c1] if r1 > r0 and c1 > c0 else pixels
        flat = crop.reshape(-1, 3)
        hist = [np.histogram(flat[:, c], bins=edges)[0] for c in range(3)]
        feat = np.concatenate(hist).astype(np.float64)
        feats.append(feat / max(1.0, feat.sum() / 3))
        labels.append(int(ann.label[row]))
        names.append(data.images[img].file_name)
    if not feats:
        raise InvalidInput("no labelled annotations to learn from", str(ds.root))
    return np.array(feats), np.array(labels), list(data.labels), names


def _classifier(kind: str, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    if kind == "logistic":
        return LogisticRegression(max_iter=2000, random_state=seed)
    if kind == "random_forest":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    if kind == "knn":
        return KNeighborsClassifier(n_neighbors=3)
    raise InvalidInput(f"classifier must be logistic, random_forest or knn, got {kind!r}")


def histogram_classifier(
    trainds: str,
    valds: str | None = None,
    testds: str | None = None,
    outputpath: str = ".",
    seed: int = 0,
    *,
    bins: int = 8,
    classifier: str = "logistic",
    holdout: float = 0.3,
    **_: Any,
) -> dict[str, Any]:
    """Colour-histogram classifier of annotated regions (see the module docstring)."""
    from annoloop.metrics.classification import classification_report

    x, y, labels, images = _crops(_dataset(trainds), int(bins))
    eval_path = testds or valds
    if eval_path:
        xt, yt_names, test_labels, test_images = _crops(_dataset(eval_path), int(bins))
        # map the evaluation labels onto the training label indices by name
        lookup = {name: i for i, name in enumerate(labels)}
        yt = np.array([lookup.get(test_labels[i], -1) for i in yt_names.tolist()])
        keep = yt >= 0
        xt, yt = xt[keep], yt[keep]
        test_images = [n for n, k in zip(test_images, keep.tolist(), strict=True) if k]
        xtr, ytr = x, y
    else:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(y))
        cut = max(1, round(len(y) * float(holdout)))
        test_idx, train_idx = perm[:cut], perm[cut:]
        xtr, ytr, xt, yt = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
        test_images = [images[i] for i in test_idx.tolist()]
    model = _classifier(classifier, seed)
    model.fit(xtr, ytr)
    pred = model.predict(xt)
    report = classification_report(yt, pred, labels=list(range(len(labels))), label_names=labels)
    results = {
        "accuracy": report.accuracy,
        "balanced_accuracy": report.balanced_accuracy,
        "f1_macro": report.macro["f1"],
        "f1_weighted": report.weighted["f1"],
        "n_train": len(ytr),
        "n_test": len(yt),
    }
    output = {
        "labels": labels,
        "y_true": yt.tolist(),
        "y_pred": pred.tolist(),
        "images": test_images,
    }
    Path(outputpath, "output.json").write_text(json.dumps(output))
    return results


def detect_bright_objects(
    image: np.ndarray, *, threshold_scale: float = 1.0, min_area: int = 50, invert: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(xywh pixel boxes, scores) of connected regions above Otsu's threshold."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops

    grey = image.mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    if invert:
        grey = grey.max() - grey
    level = threshold_otsu(grey) * float(threshold_scale) if grey.max() > grey.min() else np.inf
    mask = ndimage.binary_fill_holes(ndimage.binary_opening(grey > level, iterations=2))
    regions = [r for r in regionprops(label(mask)) if r.area >= int(min_area)]
    if not regions:
        return np.zeros((0, 4)), np.zeros(0)
    bb = np.array([r.bbox for r in regions], dtype=np.float64)  # min_row, min_col, max_row, max_col
    boxes = np.stack([bb[:, 1], bb[:, 0], bb[:, 3] - bb[:, 1], bb[:, 2] - bb[:, 0]], axis=1)
    scores = np.array([r.solidity for r in regions], dtype=np.float64)
    return boxes, scores


def threshold_detector(
    trainds: str,
    valds: str | None = None,
    testds: str | None = None,
    outputpath: str = ".",
    seed: int = 0,
    *,
    threshold_scale: float = 1.0,
    min_area: int = 50,
    invert: bool = False,
    **_: Any,
) -> dict[str, Any]:
    """Otsu threshold detector evaluated with COCO box metrics (see the module docstring)."""
    from annoloop.formats.coco import categories, image_ids
    from annoloop.metrics.coco import coco_detection
    from annoloop.storage import read_image

    ds = _dataset(testds or valds or trainds)
    data = ds.load()
    if ds.coco is None:
        raise InvalidInput("the threshold detector is evaluated on a COCO file", str(ds.root))
    ids = image_ids(data)
    category = categories(data)[0]["id"] if data.labels else 1
    results = []
    for rec, image_id in zip(data.images, ids, strict=True):
        pixels = read_image(ds.images / rec.file_name)
        boxes, scores = detect_bright_objects(
            pixels, threshold_scale=threshold_scale, min_area=min_area, invert=invert
        )
        for box, score in zip(boxes.tolist(), scores.tolist(), strict=True):
            results.append(
                {"image_id": image_id, "category_id": category, "bbox": box, "score": score}
            )
    out = Path(outputpath, "output.json")
    out.write_text(json.dumps(results))
    stats = coco_detection(str(ds.coco), results) if results else {"AP": 0.0, "AP50": 0.0}
    stats["detections"] = float(len(results))
    return stats


_MODELS: dict[str, tuple[Callable[..., dict[str, Any]], str]] = {
    "histogram-classifier": (histogram_classifier, "colour-histogram classifier (scikit-learn)"),
    "threshold-detector": (threshold_detector, "Otsu threshold object detector (COCO metrics)"),
}


def list_models() -> dict[str, str]:
    """Name -> description of the built-in experiment models."""
    return {name: desc for name, (_, desc) in _MODELS.items()}


def get_model_function(name: str) -> Callable[..., dict[str, Any]]:
    """The function of built-in model ``name``."""
    try:
        return _MODELS[name][0]
    except KeyError:
        raise NotFound(f"unknown built-in model {name!r}; known: {', '.join(_MODELS)}") from None
