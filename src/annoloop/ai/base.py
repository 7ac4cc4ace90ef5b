"""The model plug-in contract: what a model takes, what it returns, and the base class.

A model plug-in is a subclass of :class:`Model` with a :class:`ModelInfo` and two hooks,
:meth:`Model.train` and :meth:`Model.inference`. The base class supplies option handling
(:meth:`Model.default_options`, :meth:`Model.verify_options` from a pydantic ``Options``
class), averaging of states trained on several workers (weighted mean of the state's arrays)
and label-class changes (rows of the per-class arrays added or dropped)::

    class MyModel(Model):
        info = ModelInfo(name="my-model", accepts=["label"], predicts="label")

        class Options(BaseModel):
            epochs: int = 10

        def train(self, state, data, progress=None) -> ModelState: ...
        def inference(self, state, data, progress=None) -> Predictions: ...

Data are typed: :class:`TrainingData` (images, an :class:`Annotations` struct whose ``image``
is the image id and ``label`` an index into ``classes``); :class:`Predictions` the same for
model output. Coordinates are relative (0..1), boxes centre x, centre y, width, height, as in
the store. States are bytes in a safe format (npz or safetensors; see
:mod:`annoloop.ai.blobs`), never pickle.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from annoloop.ai.blobs import pack_arrays, unpack_arrays
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress, as_progress

__all__ = [
    "ImageItem",
    "InferenceData",
    "Model",
    "ModelInfo",
    "ModelState",
    "OptionsReport",
    "Predictions",
    "TrainingData",
]


# ------------------------------------------------------------------------------ metadata
class ModelInfo(BaseModel):
    """What a model plug-in is: shown by ``annoloop models list/show``.

    ``accepts`` are the annotation kinds it trains on, ``predicts`` the kind it outputs
    (names of :class:`~annoloop.geometry.kinds.Kind`, lowercase).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    author: str = ""
    description: str = ""
    accepts: list[str] = Field(min_length=1)
    predicts: str
    can_add_classes: bool = False
    can_remove_classes: bool = False
    version: str = "0.1"

    @field_validator("accepts")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        return [Kind.parse(v).label for v in value]

    @field_validator("predicts")
    @classmethod
    def _kind(cls, value: str) -> str:
        return Kind.parse(value).label


class OptionsReport(BaseModel):
    """The result of :meth:`Model.verify_options` (AIDE's ``verifyOptions`` dict, typed).

    ``corrected`` holds the options the model would run with: defaults filled in, unknown
    keys dropped, values coerced (``"3"`` -> ``3``); when invalid, the parts that were valid.
    """

    valid: bool
    warnings: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    corrected: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class ImageItem:
    """One image handed to a model: store id, storage location, size in pixels."""

    id: int
    location: str
    width: int
    height: int


@dataclass
class TrainingData:
    """Images and their annotations, as a model receives them.

    ``annotations.image`` holds image ids (``ImageItem.id``); ``annotations.label`` indexes
    ``classes`` (-1: no label). For inference the same type is used: images only, or, for
    models that predict at given places (point classifiers), annotation rows whose geometry
    says where to predict and whose labels are ignored.
    """

    images: list[ImageItem]
    annotations: Annotations = field(default_factory=Annotations.empty)
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.images = list(self.images)
        self.classes = list(self.classes)

    @property
    def image_ids(self) -> np.ndarray:
        """The image ids, int64, in ``images`` order."""
        return np.fromiter((im.id for im in self.images), dtype=np.int64, count=len(self.images))

    def validate(self, where: str = "training data") -> TrainingData:
        """Check ids, labels and geometry; raise InvalidInput naming the first bad row."""
        ids = self.image_ids
        uniq, counts = np.unique(ids, return_counts=True)
        if np.any(counts > 1):
            raise InvalidInput(f"image id {int(uniq[counts > 1][0])} is listed twice", where)
        if len(set(self.classes)) != len(self.classes):
            raise InvalidInput(f"class names repeat: {self.classes}", where)
        ann = self.annotations
        unknown = ~np.isin(ann.image, ids)
        if np.any(unknown):
            i = int(np.flatnonzero(unknown)[0])
            raise InvalidInput(
                f"annotation {i} refers to image {int(ann.image[i])}, which is not in images",
                where,
            )
        bad = (ann.label < -1) | (ann.label >= len(self.classes))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(
                f"annotation {i} (image {int(ann.image[i])}) has label index "
                f"{int(ann.label[i])}, valid are -1..{len(self.classes) - 1}",
                where,
            )
        _check_geometry(ann, where)
        return self

    def subset(self, image_ids: Sequence[int] | np.ndarray) -> TrainingData:
        """The images with the given ids (in ``images`` order) and their annotations."""
        wanted = np.asarray(image_ids, dtype=np.int64)
        keep = np.isin(self.image_ids, wanted)
        images = [im for im, k in zip(self.images, keep.tolist(), strict=True) if k]
        ann = self.annotations[np.isin(self.annotations.image, wanted)]
        return TrainingData(images, ann, self.classes)

    def shard(self, n: int) -> list[TrainingData]:
        """Split into ``n`` parts of near-equal image count (round robin, so each part sees
        every region of an ordered list); empty parts are left out."""
        if n < 1:
            raise InvalidInput(f"number of shards must be >= 1, got {n}", "shard")
        ids = self.image_ids
        parts = [self.subset(ids[i::n]) for i in range(n)]
        return [p for p in parts if p.images]

    def without_labels(self) -> TrainingData:
        """The same images and geometry with labels cleared: what inference receives."""
        ann = self.annotations[np.arange(len(self.annotations))]
        ann.label = np.full(len(ann), -1, np.int64)
        return TrainingData(self.images, ann, self.classes)


#: Inference takes the same type (images only, or query geometry for point models).
InferenceData = TrainingData


def _check_geometry(ann: Annotations, where: str) -> None:
    geo = ann.kind != int(Kind.LABEL)
    if not np.any(geo):
        return
    box = ann.box[geo]
    # relative coordinates: allow a little slack for rounding at the image border
    bad_rows = ~np.all(np.isfinite(box), axis=1) | np.any((box < -0.01) | (box > 1.01), axis=1)
    if np.any(bad_rows):
        i = int(np.flatnonzero(geo)[np.flatnonzero(bad_rows)[0]])
        raise InvalidInput(
            f"annotation {i} (image {int(ann.image[i])}) has box {ann.box[i].tolist()}, "
            "outside relative 0..1 coordinates",
            where,
        )


@dataclass
class Predictions:
    """Model output: relative annotations with ``confidence`` and ``label`` indexing
    ``classes``; ``scores`` (optional) the per-class probabilities, one row per annotation."""

    annotations: Annotations
    classes: list[str]
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.classes = list(self.classes)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float32)
            want = (len(self.annotations), len(self.classes))
            if self.scores.shape != want:
                raise InvalidInput(
                    f"scores have shape {self.scores.shape}, expected {want}", "predictions"
                )

    def __len__(self) -> int:
        return len(self.annotations)

    @classmethod
    def concat(cls, parts: Sequence[Predictions]) -> Predictions:
        """Join chunk results that share ``classes``."""
        if not parts:
            raise InvalidInput("no predictions to join", "predictions")
        classes = parts[0].classes
        for i, p in enumerate(parts[1:], start=1):
            if p.classes != classes:
                raise InvalidInput(f"part {i} has classes {p.classes}, not {classes}", "concat")
        with_scores = [p.scores is not None for p in parts]
        scores = None
        if all(with_scores):
            scores = np.concatenate([p.scores for p in parts])  # type: ignore[misc]
        return cls(Annotations.concat([p.annotations for p in parts]), classes, scores)

    def validate(self, images: Sequence[int] | np.ndarray | None = None) -> Predictions:
        """Check labels, confidences and geometry (and image ids, when given)."""
        ann = self.annotations
        where = "predictions"
        if images is not None:
            unknown = ~np.isin(ann.image, np.asarray(images, dtype=np.int64))
            if np.any(unknown):
                i = int(np.flatnonzero(unknown)[0])
                raise InvalidInput(
                    f"prediction {i} is for unknown image {int(ann.image[i])}", where
                )
        bad = (ann.label < -1) | (ann.label >= len(self.classes))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(f"prediction {i} has label index {int(ann.label[i])}", where)
        conf = ann.confidence
        bad = ~np.isfinite(conf) | (conf < 0) | (conf > 1.0 + 1e-6)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(f"prediction {i} has confidence {float(conf[i])}", where)
        _check_geometry(ann, where)
        return self


@dataclass
class ModelState:
    """A trained model: ``blob`` (npz or safetensors bytes, never pickle), the class names its
    outputs stand for (in output order), the options it was trained with, its metrics
    (``n_train`` weights averaging) and the model name."""

    blob: bytes
    classes: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    model: str = ""

    def arrays(self) -> dict[str, np.ndarray]:
        """The named arrays inside ``blob``."""
        return unpack_arrays(self.blob, f"state of model {self.model!r}")


# ---------------------------------------------------------------------------------- model
class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Model(abc.ABC):
    """Base of model plug-ins. Subclasses set ``info``, may set ``Options`` (a pydantic
    model whose defaults are the default options) and ``class_axes`` (which arrays of the
    state have one row per class, and along which axis), and implement :meth:`train` and
    :meth:`inference`."""

    info: ClassVar[ModelInfo]
    Options: ClassVar[type[BaseModel]] = _NoOptions
    #: state array name -> axis that runs over classes; used by the default update_classes
    class_axes: ClassVar[dict[str, int]] = {}

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        report = self.verify_options(options or {})
        if not report.valid:
            raise InvalidInput("; ".join(report.errors), f"options of model {self.info.name!r}")
        self.options: dict[str, Any] = report.corrected
        self.warnings: list[str] = report.warnings

    # -- options ------------------------------------------------------------------------
    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """The options a model runs with when given none."""
        return cls.Options().model_dump(mode="json")

    @classmethod
    def verify_options(cls, options: dict[str, Any] | None) -> OptionsReport:
        """Check ``options`` against ``Options``: unknown keys are dropped with a warning,
        missing ones filled from the defaults, wrong values reported with their field."""
        if options is None:
            options = {}
        if not isinstance(options, dict):
            return OptionsReport(
                valid=False,
                errors=[f"options must be a mapping, got {type(options).__name__}"],
                corrected=cls.default_options(),
            )
        known = set(cls.Options.model_fields)
        warnings = [f"unknown option {k!r} ignored" for k in options if k not in known]
        given = {k: v for k, v in options.items() if k in known}
        try:
            checked = cls.Options.model_validate(given)
        except ValidationError as exc:
            errors, bad = [], set()
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "options"
                bad.add(str(err["loc"][0]) if err["loc"] else "")
                errors.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
            corrected = cls.default_options()
            corrected.update({k: v for k, v in given.items() if k not in bad})
            return OptionsReport(valid=False, warnings=warnings, errors=errors, corrected=corrected)
        return OptionsReport(
            valid=True, warnings=warnings, corrected=checked.model_dump(mode="json")
        )

    # -- the hooks ------------------------------------------------------------------------
    @abc.abstractmethod
    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        """Train from ``state`` (None: from scratch / pretrained weights) on ``data``."""

    @abc.abstractmethod
    def inference(
        self, state: ModelState, data: TrainingData, progress: Progress | None = None
    ) -> Predictions:
        """Predict on ``data``'s images (or at its annotation geometry, for point models)."""

    def features(self, state: ModelState | None, data: TrainingData) -> np.ndarray | None:
        """Optional: one feature vector per image of ``data`` (for diversity-aware batch
        selection); None when the model has none."""
        return None

    # -- shared steps -------------------------------------------------------------------
    def average_model_states(
        self, states: Sequence[ModelState], progress: Progress | None = None
    ) -> ModelState:
        """Merge states trained on several workers: the mean of each floating array,
        weighted by ``metrics["n_train"]`` (1 where missing); other arrays from the first."""
        report = as_progress(progress)
        if not states:
            raise InvalidInput("no model states to average", "average_model_states")
        first = states[0]
        if len(states) == 1:
            return first
        for i, s in enumerate(states[1:], start=1):
            if s.classes != first.classes:
                raise InvalidInput(
                    f"state {i} has classes {s.classes}, state 0 has {first.classes}; "
                    "update_classes first",
                    "average_model_states",
                )
        weights = np.array([float(s.metrics.get("n_train", 1.0)) for s in states])
        if not np.all(np.isfinite(weights)) or weights.sum() <= 0:
            weights = np.ones(len(states))
        weights = weights / weights.sum()
        all_arrays = [s.arrays() for s in states]
        keys = list(all_arrays[0])
        merged: dict[str, np.ndarray] = {}
        for j, key in enumerate(keys):
            parts = []
            for i, arrays in enumerate(all_arrays):
                if key not in arrays or arrays[key].shape != all_arrays[0][key].shape:
                    raise InvalidInput(
                        f"state {i} lacks array {key!r} or has another shape",
                        "average_model_states",
                    )
                parts.append(arrays[key])
            base = parts[0]
            if np.issubdtype(base.dtype, np.floating):
                stacked = np.stack(parts).astype(np.float64)
                merged[key] = np.tensordot(weights, stacked, axes=1).astype(base.dtype)
            else:
                merged[key] = base
            report(j + 1, len(keys), f"averaged {key}")
        metrics = {
            "n_train": float(sum(s.metrics.get("n_train", 0.0) for s in states)),
            "merged_from": float(len(states)),
        }
        return ModelState(
            blob=_repack(first.blob, merged),
            classes=list(first.classes),
            options=dict(first.options),
            metrics=metrics,
            model=first.model,
        )

    def update_classes(self, state: ModelState, classes: Sequence[str]) -> ModelState:
        """A state for ``classes``: rows of retired classes dropped, rows for new classes
        added (from :meth:`new_class_rows`), the rest reordered to match. Raises
        InvalidInput if the model cannot add or remove classes and that is asked."""
        classes = list(classes)
        where = f"update_classes of model {self.info.name!r}"
        if len(set(classes)) != len(classes):
            raise InvalidInput(f"class names repeat: {classes}", where)
        if classes == state.classes:
            return state
        added = [c for c in classes if c not in state.classes]
        removed = [c for c in state.classes if c not in classes]
        if added and not self.info.can_add_classes:
            raise InvalidInput(f"this model cannot add classes (asked for {added})", where)
        if removed and not self.info.can_remove_classes:
            raise InvalidInput(f"this model cannot remove classes (asked for {removed})", where)
        axes = self.class_axes_of(state)
        if not axes:
            raise InvalidInput("this model declares no per-class arrays (class_axes)", where)
        old_index = {c: i for i, c in enumerate(state.classes)}
        source = np.array([old_index.get(c, -1) for c in classes], dtype=np.int64)
        arrays = state.arrays()
        for name, axis in axes.items():
            if name not in arrays:
                raise InvalidInput(f"state lacks the per-class array {name!r}", where)
            old = np.moveaxis(arrays[name], axis, 0)
            fresh = self.new_class_rows(name, old, int((source < 0).sum()))
            rows = np.concatenate([old, fresh.astype(old.dtype)], axis=0)
            # new classes take the fresh rows, in order, after the old ones
            take = source.copy()
            take[source < 0] = len(old) + np.arange(int((source < 0).sum()))
            arrays[name] = np.moveaxis(rows[take], 0, axis)
        metrics = dict(state.metrics)
        metrics["classes_added"] = float(len(added))
        metrics["classes_removed"] = float(len(removed))
        return ModelState(
            blob=_repack(state.blob, arrays),
            classes=classes,
            options=dict(state.options),
            metrics=metrics,
            model=state.model,
        )

    def class_axes_of(self, state: ModelState) -> dict[str, int]:
        """The per-class arrays of ``state`` and their class axis (default: ``class_axes``;
        override when it depends on the state, e.g. the number of layers)."""
        return dict(self.class_axes)

    def new_class_rows(self, name: str, rows: np.ndarray, n_new: int) -> np.ndarray:
        """Initial rows (class axis first) for ``n_new`` classes of array ``name``; the
        default is the mean of the existing rows, minus one on bias vectors so that an
        untrained class does not win until trained."""
        if len(rows) == 0:
            return np.zeros((n_new, *rows.shape[1:]), rows.dtype)
        mean = rows.mean(axis=0, keepdims=True)
        if rows.ndim == 1:
            mean = rows.min(keepdims=True) - 1.0
        return np.repeat(mean, n_new, axis=0)

    def make_state(
        self,
        arrays: dict[str, np.ndarray],
        classes: Sequence[str],
        metrics: dict[str, float] | None = None,
    ) -> ModelState:
        """A state of this model from named arrays (stored as npz)."""
        return ModelState(
            blob=pack_arrays(arrays),
            classes=list(classes),
            options=dict(self.options),
            metrics=dict(metrics or {}),
            model=self.info.name,
        )

    def check_state(self, state: ModelState, where: str = "model state") -> ModelState:
        """Raise InvalidInput if ``state`` was not made by this model."""
        if state.model and state.model != self.info.name:
            raise InvalidInput(
                f"state was made by model {state.model!r}, not {self.info.name!r}", where
            )
        return state


def _repack(original: bytes, arrays: dict[str, np.ndarray]) -> bytes:
    """Write ``arrays`` in the format of ``original`` (safetensors stays safetensors)."""
    if original[:2] == b"PK":
        return pack_arrays(arrays)
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
