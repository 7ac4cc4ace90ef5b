"""``point-classifier``: labels at points from :mod:`annoloop.points` (CoralNet's method).

Features come from an :mod:`annoloop.points` extractor (a patch around each point through a
backbone; ``dummy`` for cheap colour statistics), the classifier from
:func:`annoloop.points.training.fit_classifier` (logistic regression or MLP, calibrated by a
temperature). The state stores the classifier's arrays as npz; :meth:`PointClassifierModel.
to_point_classifier` turns it into an :class:`annoloop.points.PointClassifier`.

Inference predicts at the data's point annotations; an image without any gets a regular grid
of ``grid_points`` points.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annoloop.ai.base import Model, ModelInfo, ModelState, Predictions, TrainingData
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress, as_progress

_CACHE_ROWS = 200_000
_lock = threading.Lock()
# image key -> (sorted pixel keys row * width + col, their feature rows): points are cached one
# by one, so a query with other points of a seen image extracts only the new ones
_cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_cached_rows = 0


class PointClassifierOptions(BaseModel):
    """Options of ``point-classifier``."""

    model_config = ConfigDict(extra="forbid")

    extractor: str = Field("efficientnet-lite0", description="annoloop.points extractor name")
    patch_size: int = Field(224, ge=8, le=4096)
    clf_type: Literal["LR", "MLP"] = "MLP"
    epochs: int = Field(10, ge=1, le=1000)
    hidden_layer_sizes: list[int] | None = None
    ref_fraction: float = Field(0.1, ge=0, lt=1, description="share held out for calibration")
    grid_points: int = Field(25, ge=1, le=10_000, description="points per image without any")
    device: str = "cpu"
    seed: int = 0


class PointClassifierModel(Model):
    """Point labels from patch features and a small calibrated classifier."""

    info = ModelInfo(
        name="point-classifier",
        author="annoloop",
        description="CoralNet-style point classifier: backbone features of a patch around "
        "each point, logistic regression or MLP with temperature calibration.",
        accepts=["point"],
        predicts="point",
        can_add_classes=True,
        can_remove_classes=True,
        version="1.0",
    )
    Options = PointClassifierOptions

    # -- features ------------------------------------------------------------------------
    def _extractor(self) -> Any:
        from annoloop.points import ExtractorSpec, get_extractor

        o = self.options
        spec = ExtractorSpec(name=o["extractor"], patch_size=o["patch_size"], device=o["device"])
        return get_extractor(spec)[0]

    def point_features(
        self, data: TrainingData, ann: Annotations, progress: Progress | None = None
    ) -> np.ndarray:
        """Features at the points of ``ann`` (rows in order), cached per image and points."""
        from annoloop.storage import read_image

        report = as_progress(progress)
        extractor = None
        out = np.zeros((len(ann), 0), np.float32)
        by_id = {im.id: im for im in data.images}
        order = np.argsort(ann.image, kind="stable")
        ids, starts = np.unique(ann.image[order], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        for j, image_id in enumerate(ids.tolist()):
            rows = order[bounds[j] : bounds[j + 1]]
            item = by_id[int(image_id)]
            rowcols = _rowcols(ann.box[rows], item.width, item.height)
            key = self._cache_key(item.location)
            pixel = rowcols[:, 0] * (item.width + 1) + rowcols[:, 1]
            feats = _lookup(key, pixel)
            # unknown points come back as NaN rows
            missing = np.flatnonzero(np.isnan(feats[:, 0])) if feats.size else np.arange(len(rows))
            if len(missing):
                extractor = extractor or self._extractor()
                image = read_image(item.location)
                query = rowcols[missing]
                if image.shape[:2] != (item.height, item.width):
                    query = _rowcols(ann.box[rows[missing]], image.shape[1], image.shape[0])
                _, found, _ = extractor.extract(image, query, item.location)
                found = np.asarray(found, np.float32)
                if feats.size == 0:
                    feats = np.zeros((len(rows), found.shape[1]), np.float32)
                feats[missing] = found
                _store(key, pixel[missing], found)
            if out.shape[1] == 0:
                out = np.zeros((len(ann), feats.shape[1]), np.float32)
            out[rows] = feats
            report(j + 1, len(ids), "point features")
        return out

    def _cache_key(self, location: str) -> str:
        o = self.options
        return f"{o['extractor']}|{o['patch_size']}|{location}"

    # -- the contract ----------------------------------------------------------------------
    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        """Extract features at the labelled points and fit the classifier (from scratch, as
        CoralNet does; ``state`` only carries earlier classes)."""
        from annoloop.points.messages import TrainOptions
        from annoloop.points.training import fit_classifier

        report = as_progress(progress)
        o = self.options
        data.validate(f"training data of {self.info.name}")
        ann = data.annotations
        ann = ann[(ann.kind == int(Kind.POINT)) & (ann.label >= 0)]
        if len(ann) < 2:
            raise InvalidInput(
                f"{len(ann)} labelled point(s); at least 2 are needed", f"model {self.info.name}"
            )
        x = self.point_features(data, ann, progress)
        y = ann.label.astype(np.int64)
        rng = np.random.default_rng(o["seed"])
        n_ref = round(len(y) * o["ref_fraction"])
        perm = rng.permutation(len(y))
        ref, tr = (
            (perm[:n_ref], perm[n_ref:]) if n_ref >= 1 and len(y) - n_ref >= 2 else (perm, perm)
        )
        opts = TrainOptions(
            seed=o["seed"],
            hidden_layer_sizes=tuple(o["hidden_layer_sizes"]) if o["hidden_layer_sizes"] else None,
        )
        fit = fit_classifier(
            x[tr],
            y[tr],
            x[ref],
            y[ref],
            list(data.classes),
            clf_type=o["clf_type"],
            epochs=o["epochs"],
            options=opts,
            device=o["device"],
        )
        clf = fit.classifier
        arrays: dict[str, np.ndarray] = {
            "mean": clf.mean,
            "scale": clf.scale,
            "temperature": np.array([clf.temperature], np.float32),
        }
        for i, (w, b) in enumerate(zip(clf.weights, clf.biases, strict=True)):
            arrays[f"layers.{i}.weight"] = w
            arrays[f"layers.{i}.bias"] = b
        report(1, 1, "classifier trained")
        metrics = {"n_train": float(len(tr)), "ref_accuracy": float(max(fit.ref_accs))}
        return self.make_state(arrays, data.classes, metrics)

    def class_axes_of(self, state: ModelState) -> dict[str, int]:
        """The last layer's weight (in, out) and bias have one entry per class."""
        n = sum(1 for k in state.arrays() if k.endswith(".weight"))
        return {f"layers.{n - 1}.weight": 1, f"layers.{n - 1}.bias": 0}

    def to_point_classifier(self, state: ModelState) -> Any:
        """The state as an :class:`annoloop.points.PointClassifier`."""
        from annoloop.points import PointClassifier

        arrays = self.check_state(state).arrays()
        n = sum(1 for k in arrays if k.endswith(".weight"))
        return PointClassifier(
            clf_type=str(state.options.get("clf_type", "MLP")),
            classes=list(state.classes),
            mean=arrays["mean"],
            scale=arrays["scale"],
            weights=[arrays[f"layers.{i}.weight"] for i in range(n)],
            biases=[arrays[f"layers.{i}.bias"] for i in range(n)],
            temperature=float(arrays["temperature"][0]),
        )

    def inference(
        self, state: ModelState, data: TrainingData, progress: Progress | None = None
    ) -> Predictions:
        """Class probabilities at the data's points (a grid on images without points)."""
        clf = self.to_point_classifier(state)
        ann = data.annotations.of_kind(Kind.POINT)
        missing = np.setdiff1d(data.image_ids, ann.image)
        if len(missing):
            ann = (
                Annotations.concat([ann, self._grid(missing)]) if len(ann) else self._grid(missing)
            )
        x = self.point_features(data, ann, progress)
        probs = (
            clf.predict_proba(x).astype(np.float32)
            if len(ann)
            else np.zeros((0, len(state.classes)), np.float32)
        )
        label = probs.argmax(axis=1)
        conf = probs[np.arange(len(ann)), label]
        out = Annotations.from_boxes(
            ann.image, ann.box, label, conf, kind=Kind.POINT, label_names=state.classes
        )
        return Predictions(out, state.classes, probs)

    def _grid(self, image_ids: np.ndarray) -> Annotations:
        side = int(np.ceil(np.sqrt(self.options["grid_points"])))
        c = (np.arange(side) + 0.5) / side
        gx, gy = np.meshgrid(c, c)
        pts = np.stack([gx.ravel(), gy.ravel()], 1)[: self.options["grid_points"]]
        n = len(pts)
        box = np.tile(np.concatenate([pts, np.zeros((n, 2))], 1), (len(image_ids), 1))
        return Annotations.from_boxes(np.repeat(image_ids, n), box, -1, kind=Kind.POINT)

    def features(self, state: ModelState | None, data: TrainingData) -> np.ndarray | None:
        """Per-image mean of the point features (a grid where an image has no points)."""
        ann = data.annotations.of_kind(Kind.POINT)
        missing = np.setdiff1d(data.image_ids, ann.image)
        if len(missing):
            ann = (
                Annotations.concat([ann, self._grid(missing)]) if len(ann) else self._grid(missing)
            )
        x = self.point_features(data, ann)
        index = np.searchsorted(data.image_ids[np.argsort(data.image_ids)], ann.image)
        sums = np.zeros((len(data.images), x.shape[1]))
        np.add.at(sums, index, x)
        counts = np.bincount(index, minlength=len(data.images))[:, None]
        feats = sums / np.maximum(counts, 1)
        # back from sorted-id order to images order
        return feats[np.argsort(np.argsort(data.image_ids))].astype(np.float32)


def clear_point_feature_cache() -> None:
    """Forget every cached point feature."""
    global _cached_rows
    with _lock:
        _cache.clear()
        _cached_rows = 0


def _lookup(key: str, pixel: np.ndarray) -> np.ndarray:
    """Cached features of the points ``pixel`` of image ``key``; NaN rows where unknown
    (an empty array when nothing of the image is cached)."""
    with _lock:
        entry = _cache.get(key)
        if entry is None:
            return np.zeros((0, 0), np.float32)
        _cache.move_to_end(key)
    keys, feats = entry
    pos = np.clip(np.searchsorted(keys, pixel), 0, len(keys) - 1)
    hit = keys[pos] == pixel
    out = np.full((len(pixel), feats.shape[1]), np.nan, np.float32)
    out[hit] = feats[pos[hit]]
    return out


def _store(key: str, pixel: np.ndarray, feats: np.ndarray) -> None:
    """Add points to the cache of image ``key`` (the oldest images go past the row limit)."""
    global _cached_rows
    with _lock:
        old = _cache.pop(key, None)
        if old is not None:
            _cached_rows -= len(old[0])
            pixel = np.concatenate([old[0], pixel])
            feats = np.concatenate([old[1], feats.astype(old[1].dtype)])
        keys, first = np.unique(pixel, return_index=True)
        _cache[key] = (keys, feats[first])
        _cached_rows += len(keys)
        while _cached_rows > _CACHE_ROWS and len(_cache) > 1:
            _, (k, _f) = _cache.popitem(last=False)
            _cached_rows -= len(k)


def _rowcols(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """Relative point centres -> integer (row, col) pixels inside the image."""
    col = np.clip(np.floor(box[:, 0] * width), 0, width - 1)
    row = np.clip(np.floor(box[:, 1] * height), 0, height - 1)
    return np.stack([row, col], axis=1).astype(np.int64)
