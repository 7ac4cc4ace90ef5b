"""Run an AIDE (microsoft/aerial_wildlife_detection) model class unchanged.

AIDE models are classes built as ``Cls(project, config, dbConnector, fileServer, options)``
with ``train(stateDict, data, updateStateFun)``, ``average_model_states(stateDicts,
updateStateFun)``, ``inference(stateDict, data, updateStateFun)`` and optionally
``getDefaultOptions()``, ``verifyOptions(options)`` and ``update_model(stateDict, data,
updateStateFun)``. :func:`aide_model_class` wraps such a class into an annoloop
:class:`~annoloop.ai.base.Model`; the registry does it for names ``aide:package.module.Class``::

    model = get_model("aide:my_aide_models.MyDetector", {"lr": 0.01})

What the adapter translates:

- data: :class:`TrainingData` -> AIDE's dict ``{"images": {UUID: {"filename", "annotations":
  [{"id", "x", "y", "width", "height", "label", "unsure"}]}}, "labelClasses": {UUID: {"name",
  ...}}}``; coordinates relative, boxes as centre x/y and width/height, as in annoloop;
- progress: ``updateStateFun(state=..., message=..., done=..., total=...)`` -> ``progress``;
- predictions: ``{UUID: {"predictions": [{"x", "y", "width", "height", "label",
  "confidence", "logits"}]}}`` -> :class:`Predictions` (logits, in the order of the data's
  ``labelClasses``, become per-class scores; a confidence outside 0..1, as AIDE's own
  classifiers report the top raw logit, becomes the top softmax score);
- helpers: ``config.getProperty(section, key, type=, fallback=)`` from a dict,
  ``fileServer.getFile(filename)`` reading the image location, ``dbConnector.execute`` that
  answers every query with no rows (AIDE models must not need the database).

The metadata come from AIDE's registry entry (``name``, ``author``, ``description``,
``annotationType``, ``predictionType``, ``canAddLabelclasses``, ``canRemoveLabelclasses``):
pass it to :func:`register_aide_model`, or put it on the class as ``AIDE_META``.

AIDE state dicts are opaque bytes (AIDE's own models pickle them). annoloop stores those
bytes and hands them back to the same class; it never unpickles them itself.
"""

from __future__ import annotations

import importlib
import logging
import math
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from annoloop.ai.base import Model, ModelInfo, ModelState, OptionsReport, Predictions, TrainingData
from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress, as_progress

log = logging.getLogger(__name__)

#: AIDE annotation / prediction type names -> annoloop kinds
AIDE_KINDS = {
    "labels": "label",
    "points": "point",
    "boundingBoxes": "bbox",
    "segmentationMasks": "mask",
    "polygons": "polygon",
    "polylines": "line",
}
_NAMESPACE = uuid.UUID("5b8f2a36-6c2e-4b7e-9a55-3d0c0a1e0f42")
_META: dict[str, dict[str, Any]] = {}


def image_uuid(image_id: int) -> str:
    """The stable UUID string an image id has towards AIDE models."""
    return str(uuid.uuid5(_NAMESPACE, f"image-{int(image_id)}"))


def class_uuid(name: str) -> str:
    """The stable UUID string a label class name has towards AIDE models."""
    return str(uuid.uuid5(_NAMESPACE, f"label-{name}"))


# ------------------------------------------------------------------- AIDE's helpers
class AideConfig:
    """AIDE's configuration object: ``getProperty(section, key, type=str, fallback=...)``."""

    _MISSING = object()

    def __init__(self, values: dict[str, dict[str, Any]] | None = None) -> None:
        self.values = values or {}

    def getProperty(
        self, section: str, key: str, type: Callable[[Any], Any] = str, fallback: Any = _MISSING
    ) -> Any:
        """The value under ``[section] key`` converted with ``type``, else ``fallback``."""
        value = self.values.get(section, {}).get(key, self._MISSING)
        if value is self._MISSING:
            if fallback is self._MISSING:
                raise NotFound(f"AIDE config has no [{section}] {key} and no fallback was given")
            return fallback
        if type is bool and isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return type(value)


class AideFileServer:
    """AIDE's file server: ``getFile(filename)`` -> bytes, or None when unreadable."""

    def getFile(self, filename: str) -> bytes | None:
        from annoloop.storage import Location

        try:
            return Location.parse(filename).read_bytes()
        except Exception as exc:  # AIDE's contract: None on any error
            log.warning("AIDE model asked for %s: %s", filename, exc)
            return None

    getImage = getFile


class AideDBConnector:
    """AIDE's database connector. annoloop hands models their data directly, so every query
    returns no rows (AIDE's base class tolerates that) and is logged."""

    def execute(self, query: Any, arguments: Any = None, numReturn: Any = None) -> list[Any]:
        log.info("AIDE model queried the database (answered with no rows): %s", str(query)[:200])
        return []


# -------------------------------------------------------------------- translation
def to_aide_data(data: TrainingData, with_annotations: bool = True) -> dict[str, Any]:
    """annoloop data -> AIDE's data dict (see the module doc)."""
    ann = data.annotations
    class_ids = [class_uuid(c) for c in data.classes]
    per_image: dict[int, list[dict[str, Any]]] = {im.id: [] for im in data.images}
    if with_annotations and len(ann):
        box = ann.box.tolist()
        for i, (img, kind, label) in enumerate(
            zip(ann.image.tolist(), ann.kind.tolist(), ann.label.tolist(), strict=True)
        ):
            entry: dict[str, Any] = {
                "id": str(uuid.uuid5(_NAMESPACE, f"annotation-{img}-{i}")),
                "label": class_ids[label] if label >= 0 else None,
                "unsure": False,
                "type": Kind(kind).label,
            }
            if kind != int(Kind.LABEL):
                x, y, w, h = box[i]
                entry.update({"x": x, "y": y})
                if kind != int(Kind.POINT):
                    entry.update({"width": w, "height": h})
            per_image[int(img)].append(entry)
    images = {}
    for im in data.images:
        record: dict[str, Any] = {"filename": im.location, "width": im.width, "height": im.height}
        if with_annotations:
            record["annotations"] = per_image[im.id]
        images[image_uuid(im.id)] = record
    return {
        "images": images,
        "labelClasses": {
            cid: {"name": name, "color": None, "index": i}
            for i, (cid, name) in enumerate(zip(class_ids, data.classes, strict=True))
        },
    }


def from_aide_predictions(
    result: Any, data: TrainingData, classes: list[str], kind: str
) -> Predictions:
    """AIDE's predictions dict -> :class:`Predictions` (unknown images or labels raise)."""
    where = "AIDE model predictions"
    if not isinstance(result, dict):
        raise InvalidInput(f"inference returned {type(result).__name__}, not a dict", where)
    by_uuid = {image_uuid(im.id): im.id for im in data.images}
    label_index = {class_uuid(c): i for i, c in enumerate(classes)}
    label_index.update({c: i for i, c in enumerate(classes)})  # a name is accepted too
    code = int(Kind.parse(kind))
    images, labels, confs, boxes, logits = [], [], [], [], []
    for key, entry in result.items():
        if key not in by_uuid:
            raise InvalidInput(f"prediction for unknown image {key!r}", where)
        preds = (entry or {}).get("predictions", [])
        if not isinstance(preds, list):
            raise InvalidInput(f"image {key}: 'predictions' must be a list", where)
        for j, p in enumerate(preds):
            at = f"{where}: image {key}, prediction {j}"
            label = p.get("label")
            if label not in label_index:
                raise InvalidInput(f"unknown label {label!r}", at)
            images.append(by_uuid[key])
            labels.append(label_index[label])
            conf = p.get("confidence")
            confs.append(float(conf) if conf is not None else math.nan)
            boxes.append(
                [
                    float(p.get("x", math.nan)),
                    float(p.get("y", math.nan)),
                    float(p.get("width", 0.0) or 0.0),
                    float(p.get("height", 0.0) or 0.0),
                ]
            )
            logits.append(p.get("logits"))
    n = len(images)
    box = np.asarray(boxes, np.float64).reshape(n, 4)
    if code == int(Kind.LABEL):
        box[:] = np.nan
    scores = _scores(logits, len(classes))
    conf = _confidence(np.asarray(confs, np.float64), scores)
    ann = Annotations.from_boxes(
        np.asarray(images, np.int64),
        box,
        np.asarray(labels, np.int64),
        conf,
        kind=Kind(code),
        label_names=classes,
    )
    return Predictions(ann, classes, scores)


def _confidence(conf: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """Confidences in 0..1. AIDE's own classifiers report the top raw logit as confidence;
    such values (and missing ones) become the top softmax score when logits came along, or
    the logistic of the value otherwise."""
    bad = np.isnan(conf) | (conf < 0) | (conf > 1)
    if not bad.any():
        return conf.astype(np.float32)
    if scores is not None:
        fixed = scores.max(axis=1).astype(np.float64)
    else:
        fixed = 1.0 / (1.0 + np.exp(-np.nan_to_num(conf, nan=0.0)))
    return np.where(bad, fixed, conf).astype(np.float32)


def _scores(logits: list[Any], k: int) -> np.ndarray | None:
    """Per-class scores from AIDE logits: kept if they already are probabilities, else
    softmaxed; None unless every prediction has ``k`` of them."""
    if not logits or any(v is None or len(v) != k for v in logits):
        return None
    arr = np.asarray(logits, np.float64)
    if np.all(arr >= 0) and np.allclose(arr.sum(axis=1), 1.0, atol=1e-3):
        return arr.astype(np.float32)
    z = np.exp(arr - arr.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def _update_state_fun(progress: Progress | None) -> Callable[..., None]:
    report = as_progress(progress)

    def update_state(
        state: str = "PROGRESS", message: str = "", done: Any = None, total: Any = None, **_: Any
    ) -> None:
        meta = _.get("meta") or {}
        done = meta.get("done", done)
        total = meta.get("total", total)
        report(int(done or 0), None if total is None else int(total), str(message or state))

    return update_state


# ------------------------------------------------------------------------ the adapter
class _AnyOptions(BaseModel):
    model_config = ConfigDict(extra="allow")


class AideModelAdapter(Model):
    """An annoloop model that runs an AIDE model class (set by :func:`aide_model_class`)."""

    aide_class: ClassVar[type]
    aide_project: ClassVar[str] = "annoloop"
    aide_config: ClassVar[dict[str, dict[str, Any]]] = {}
    Options = _AnyOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.aide = self.aide_class(
            project=self.aide_project,
            config=AideConfig(self.aide_config),
            dbConnector=AideDBConnector(),
            fileServer=AideFileServer(),
            options=self.options,
        )

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """AIDE's ``getDefaultOptions()``, or {}."""
        getter = getattr(cls.aide_class, "getDefaultOptions", None)
        try:
            found = getter() if getter is not None else None
        except NotImplementedError:
            found = None
        return dict(found) if isinstance(found, dict) else {}

    @classmethod
    def verify_options(cls, options: dict[str, Any] | None) -> OptionsReport:
        """AIDE's ``verifyOptions`` (None, a bool or a dict) as an :class:`OptionsReport`."""
        options = dict(options or {})
        merged = {**cls.default_options(), **options}
        verify = getattr(cls.aide_class, "verifyOptions", None)
        found = verify(merged) if verify is not None else None
        if found is None:
            return OptionsReport(valid=True, corrected=merged)
        if isinstance(found, bool):
            errors = [] if found else ["the AIDE model rejected the options"]
            return OptionsReport(valid=found, errors=errors, corrected=merged)
        if not isinstance(found, dict):
            raise InvalidInput(
                f"verifyOptions returned {type(found).__name__}", f"AIDE model {cls.info.name}"
            )
        corrected = found.get("options") if isinstance(found.get("options"), dict) else merged
        return OptionsReport(
            valid=bool(found.get("valid", True)),
            warnings=[str(w) for w in found.get("warnings", [])],
            errors=[str(e) for e in found.get("errors", [])],
            corrected=corrected,
        )

    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        """AIDE ``train(stateDict, data, updateStateFun)``; the bytes become the state."""
        data.validate(f"training data of {self.info.name}")
        blob = None if state is None else state.blob
        out = self.aide.train(blob, to_aide_data(data), _update_state_fun(progress))
        return self._state(out, data.classes, {"n_train": float(len(data.images))})

    def _state(self, blob: Any, classes: list[str], metrics: dict[str, float]) -> ModelState:
        if not isinstance(blob, (bytes, bytearray)):
            raise InvalidInput(
                f"the AIDE model returned {type(blob).__name__}, not bytes", self.info.name
            )
        return ModelState(bytes(blob), list(classes), dict(self.options), metrics, self.info.name)

    def average_model_states(self, states: Any, progress: Progress | None = None) -> ModelState:
        """AIDE ``average_model_states(stateDicts, updateStateFun)``."""
        states = list(states)
        if not states:
            raise InvalidInput("no model states to average", "average_model_states")
        if len(states) == 1:
            return states[0]
        out = self.aide.average_model_states([s.blob for s in states], _update_state_fun(progress))
        n = float(sum(s.metrics.get("n_train", 0.0) for s in states))
        return self._state(
            out, states[0].classes, {"n_train": n, "merged_from": float(len(states))}
        )

    def inference(
        self, state: ModelState, data: TrainingData, progress: Progress | None = None
    ) -> Predictions:
        """AIDE ``inference(stateDict, data, updateStateFun)`` -> typed predictions."""
        aide_data = to_aide_data(TrainingData(data.images, classes=state.classes), False)
        result = self.aide.inference(state.blob, aide_data, _update_state_fun(progress))
        return from_aide_predictions(result, data, state.classes, self.info.predicts)

    def update_classes(self, state: ModelState, classes: Any) -> ModelState:
        """AIDE ``update_model(stateDict, data, updateStateFun)`` with the new classes."""
        classes = list(classes)
        if classes == state.classes:
            return state
        added = set(classes) - set(state.classes)
        removed = set(state.classes) - set(classes)
        where = f"update_classes of {self.info.name}"
        if (added and not self.info.can_add_classes) or (
            removed and not self.info.can_remove_classes
        ):
            raise InvalidInput("the AIDE model cannot change its classes this way", where)
        updater = getattr(self.aide, "update_model", None)
        if updater is None:
            raise InvalidInput("the AIDE model has no update_model", where)
        data = to_aide_data(TrainingData([], classes=classes), False)
        out = updater(state.blob, data, _update_state_fun(None))
        return self._state(out, classes, dict(state.metrics))


def register_aide_model(path: str, meta: dict[str, Any]) -> None:
    """Record AIDE registry metadata for the class at ``path`` (``package.module.Class``)."""
    _META[path] = dict(meta)


def _info(path: str, cls: type) -> ModelInfo:
    meta = _META.get(path) or getattr(cls, "AIDE_META", None) or {}
    accepts = meta.get("annotationType", "labels")
    accepts = [accepts] if isinstance(accepts, str) else list(accepts)
    try:
        kinds = [AIDE_KINDS.get(a, a) for a in accepts]
        predicts = AIDE_KINDS.get(
            meta.get("predictionType", accepts[0]), meta.get("predictionType")
        )
        return ModelInfo(
            name=f"aide:{path}",
            author=str(meta.get("author", "")),
            description=str(meta.get("description", cls.__doc__ or "")).strip()[:2000],
            accepts=kinds,
            predicts=predicts or kinds[0],
            can_add_classes=bool(meta.get("canAddLabelclasses", False)),
            can_remove_classes=bool(meta.get("canRemoveLabelclasses", False)),
            version=str(meta.get("version", "aide")),
        )
    except Exception as exc:
        raise InvalidInput(f"bad AIDE metadata {meta!r}: {exc}", f"AIDE model {path}") from None


def aide_model_class(path: str) -> type[Model]:
    """An annoloop model class running the AIDE class at ``package.module.Class``."""
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise InvalidInput(f"expected package.module.Class, got {path!r}", "AIDE model")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise NotFound(f"cannot load AIDE model {path!r}: {exc}") from None
    for method in ("train", "inference", "average_model_states"):
        if not callable(getattr(cls, method, None)):
            raise InvalidInput(f"the class has no {method}() method", f"AIDE model {path}")
    return type(
        f"Aide_{attr}",
        (AideModelAdapter,),
        {"aide_class": cls, "info": _info(path, cls), "__module__": __name__},
    )
