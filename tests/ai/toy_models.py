"""Small real models for the ai tests (importable by worker processes by dotted path)."""

from __future__ import annotations

import time

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annoloop.ai.base import Model, ModelInfo, ModelState, Predictions, TrainingData
from annoloop.ai.features import image_features
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress, as_progress


class CentroidOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_size: int = Field(8, ge=2, le=64)
    temperature: float = Field(0.05, gt=0)


class NearestCentroid(Model):
    """Image labels by the nearest class centroid of resized pixels; softmax of -distance."""

    info = ModelInfo(
        name="nearest-centroid",
        author="tests",
        accepts=["label"],
        predicts="label",
        can_add_classes=True,
        can_remove_classes=True,
    )
    Options = CentroidOptions
    class_axes = {"centroids": 0, "counts": 0}

    def _x(self, data: TrainingData) -> np.ndarray:
        size = self.options["image_size"]
        return image_features([im.location for im in data.images], "pixels", size)

    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        report = as_progress(progress)
        x = self._x(data)
        pos = {im.id: i for i, im in enumerate(data.images)}
        ann = data.annotations[data.annotations.label >= 0]
        rows = np.array([pos[int(i)] for i in ann.image], np.int64)
        k = len(data.classes)
        sums = np.zeros((k, x.shape[1]))
        np.add.at(sums, ann.label, x[rows])
        counts = np.bincount(ann.label, minlength=k).astype(np.float64)
        centroids = sums / np.maximum(counts, 1)[:, None]
        report(1, 1, "centroids")
        return self.make_state(
            {"centroids": centroids, "counts": counts}, data.classes, {"n_train": float(len(ann))}
        )

    def inference(
        self, state: ModelState, data: TrainingData, progress: Progress | None = None
    ) -> Predictions:
        arrays = self.check_state(state).arrays()
        x = self._x(data)
        d = ((x[:, None, :] - arrays["centroids"][None]) ** 2).mean(axis=2)
        z = -d / self.options["temperature"]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        label = p.argmax(axis=1)
        ann = Annotations.from_boxes(
            data.image_ids,
            np.full((len(label), 4), np.nan),
            label,
            p[np.arange(len(label)), label],
            kind=Kind.LABEL,
        )
        return Predictions(ann, state.classes, p.astype(np.float32))

    def features(self, state: ModelState | None, data: TrainingData) -> np.ndarray:
        return self._x(data)


class FailingModel(NearestCentroid):
    """Fails in training, as a broken plug-in would."""

    info = ModelInfo(name="failing", accepts=["label"], predicts="label")

    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        raise ZeroDivisionError("broken plug-in: division by zero in train")


class SlowModel(NearestCentroid):
    """Trains slowly, reporting progress: what cancellation stops."""

    info = ModelInfo(name="slow", accepts=["label"], predicts="label")

    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        report = as_progress(progress)
        for i in range(600):
            time.sleep(0.05)
            report(i + 1, 600, "slow step")
        return super().train(state, data, progress)
