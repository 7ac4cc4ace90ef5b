"""``image-classifier``: a pretrained backbone with a linear or MLP head, optionally
fine-tuning the backbone's last layers.

With a frozen backbone (the default) the image features are computed once per process and
cached (:mod:`annoloop.ai.features`), so retraining after new labels costs only the head.
The state holds the head's arrays (and, when fine-tuned, the trained backbone tensors) as npz.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annoloop.ai.base import ImageItem, Model, ModelInfo, ModelState, Predictions, TrainingData
from annoloop.ai.features import image_features
from annoloop.ai.heads import CLASS_AXES, fit_head, head_logits, softmax
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress, as_progress


class ImageClassifierOptions(BaseModel):
    """Options of ``image-classifier``."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = Field(
        "mobilenet_v2",
        description="a backbone name (annoloop.backbones) or 'pixels' for raw resized pixels",
    )
    image_size: int = Field(224, ge=8, le=1024, description="images are resized to this square")
    head: Literal["linear", "mlp"] = "linear"
    hidden: int = Field(256, ge=1, le=8192, description="MLP hidden units")
    epochs: int = Field(100, ge=1, le=10_000, description="L-BFGS iterations / Adam epochs")
    learning_rate: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(1e-4, ge=0, le=10)
    batch_size: int = Field(64, ge=1, le=4096)
    fine_tune: bool = Field(False, description="also train the backbone's last layers")
    fine_tune_fraction: float = Field(0.1, gt=0, le=1)
    fine_tune_epochs: int = Field(3, ge=1, le=1000)
    warm_start: bool = Field(True, description="continue from the given state")
    device: str = "auto"
    seed: int = 0


class ImageClassifier(Model):
    """Image-level labels from a pretrained backbone and a small head."""

    info = ModelInfo(
        name="image-classifier",
        author="annoloop",
        description="Pretrained backbone (MobileNetV2, EfficientNet-Lite0, any torchvision/timm "
        "model) with a linear or MLP head; optional fine-tuning of the last layers.",
        accepts=["label"],
        predicts="label",
        can_add_classes=True,
        can_remove_classes=True,
        version="1.0",
    )
    Options = ImageClassifierOptions
    class_axes = CLASS_AXES

    # -- helpers -------------------------------------------------------------------------
    def _features(
        self,
        state_arrays: dict[str, np.ndarray] | None,
        items: list[ImageItem],
        progress: Progress | None,
    ) -> np.ndarray:
        o = self.options
        locations = [im.location for im in items]
        if state_arrays and any(k.startswith("backbone.") for k in state_arrays):
            from annoloop.ai.models._finetune import tuned_features

            return tuned_features(
                o["backbone"],
                o["device"],
                state_arrays,
                locations,
                o["image_size"],
                o["batch_size"],
                progress,
            )
        return image_features(
            locations, o["backbone"], o["image_size"], device=o["device"], progress=progress
        )

    @staticmethod
    def image_labels(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
        """(image ids, class index) of the labelled images: the last image-level label of
        each image wins."""
        ann = data.annotations
        keep = (ann.kind == int(Kind.LABEL)) & (ann.label >= 0)
        ids, labels = ann.image[keep], ann.label[keep]
        # the last row of each image: unique on the reversed order
        _, first_rev = np.unique(ids[::-1], return_index=True)
        last = len(ids) - 1 - first_rev
        return ids[last], labels[last]

    # -- the contract ----------------------------------------------------------------------
    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        """Fit the head (and the last backbone layers with ``fine_tune``) on ``data``."""
        report = as_progress(progress)
        o = self.options
        data.validate(f"training data of {self.info.name}")
        ids, y = self.image_labels(data)
        if len(ids) == 0:
            raise InvalidInput("no labelled images to train on", f"model {self.info.name}")
        by_id = {im.id: im for im in data.images}
        items = [by_id[int(i)] for i in ids]
        init = None
        if state is not None and o["warm_start"]:
            state = self.update_classes(self.check_state(state), data.classes)
            init = state.arrays()
        report(0, 2, "features")
        x = self._features(init, items, None)
        head_init = (
            None
            if init is None
            else {k: v for k, v in init.items() if not k.startswith("backbone.")}
        )
        if head_init is not None and head_init["out.weight"].shape[1] != (
            head_init["hidden.weight"].shape[0] if "hidden.weight" in head_init else x.shape[1]
        ):
            head_init = None  # options changed the head's shape: start the head afresh
        arrays = fit_head(
            x,
            y,
            len(data.classes),
            kind=o["head"],
            hidden=o["hidden"],
            epochs=o["epochs"],
            learning_rate=o["learning_rate"],
            weight_decay=o["weight_decay"],
            batch_size=o["batch_size"],
            seed=o["seed"],
            init=head_init,
        )
        report(1, 2, "head trained")
        if o["fine_tune"]:
            from annoloop.ai.models._finetune import finetune

            if o["backbone"] == "pixels":
                raise InvalidInput("fine_tune needs a network backbone, not 'pixels'", "options")
            arrays = finetune(
                o["backbone"],
                o["device"],
                [it.location for it in items],
                y,
                arrays,
                init,
                image_size=o["image_size"],
                fraction=o["fine_tune_fraction"],
                epochs=o["fine_tune_epochs"],
                learning_rate=o["learning_rate"],
                weight_decay=o["weight_decay"],
                batch_size=min(o["batch_size"], 32),
                seed=o["seed"],
            )
        train_acc = (
            float((head_logits(arrays, x).argmax(1) == y).mean())
            if not o["fine_tune"]
            else float("nan")
        )
        report(2, 2, "trained")
        metrics = {"n_train": float(len(y)), "train_accuracy": train_acc}
        return self.make_state(arrays, data.classes, metrics)

    def inference(
        self, state: ModelState, data: TrainingData, progress: Progress | None = None
    ) -> Predictions:
        """One image-level prediction per image: the most probable class, its probability
        as confidence, all probabilities as scores."""
        arrays = self.check_state(state).arrays()
        x = self._features(arrays, data.images, progress)
        n = len(data.images)
        if n == 0:
            probs = np.zeros((0, len(state.classes)), np.float32)
        else:
            head = {k: v for k, v in arrays.items() if not k.startswith("backbone.")}
            probs = softmax(head_logits(head, x).astype(np.float64)).astype(np.float32)
        label = probs.argmax(axis=1) if n else np.zeros(0, np.int64)
        conf = probs[np.arange(n), label] if n else np.zeros(0, np.float32)
        ann = Annotations.from_boxes(
            data.image_ids,
            np.full((n, 4), np.nan),
            label,
            conf,
            kind=Kind.LABEL,
            label_names=state.classes,
        )
        return Predictions(ann, state.classes, probs)

    def features(self, state: ModelState | None, data: TrainingData) -> np.ndarray:
        """The feature vectors the head sees, for diversity-aware selection."""
        arrays: dict[str, Any] | None = None if state is None else state.arrays()
        return self._features(arrays, data.images, None)
