"""Point classifiers: stored as plain arrays, run with numpy, never pickled.

A :class:`PointClassifier` is a standardisation (``mean``, ``scale``), a stack of dense layers
(ReLU between them; one layer = multinomial logistic regression) and a softmax temperature.
It is saved as a ``.safetensors`` file whose header holds a JSON description (type, classes,
temperature, metrics), so loading it runs no code from the file.

PySpacer stored classifiers as pickled scikit-learn ``CalibratedClassifierCV`` objects.
Unpickling runs arbitrary code, so :func:`load_classifier` opens such a file only with an
explicit ``trust=True`` and wraps it in :class:`PickledClassifier`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annoloop.errors import AccessDenied, InvalidInput
from annoloop.points.calibration import softmax
from annoloop.storage import Location

FORMAT = "annoloop.points.classifier"
FORMAT_VERSION = 1


def non_finite_row(x: np.ndarray) -> int | None:
    """The first row of ``x`` holding NaN or infinity (None: every value is finite)."""
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    return int(bad[0]) if len(bad) else None


@dataclass
class PointClassifier:
    """A trained classifier over feature vectors (see the module docstring)."""

    clf_type: str
    classes: list[Any]
    mean: np.ndarray
    scale: np.ndarray
    weights: list[np.ndarray]  # layer i: (in, out)
    biases: list[np.ndarray]
    temperature: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, np.float32).reshape(-1)
        self.scale = np.asarray(self.scale, np.float32).reshape(-1)
        self.weights = [np.asarray(w, np.float32) for w in self.weights]
        self.biases = [np.asarray(b, np.float32).reshape(-1) for b in self.biases]
        self._check()

    def _check(self) -> None:
        if not self.weights or len(self.weights) != len(self.biases):
            raise InvalidInput("a classifier needs as many weight matrices as bias vectors (>= 1)")
        dim = len(self.mean)
        if len(self.scale) != dim:
            raise InvalidInput(f"mean has {dim} entries but scale {len(self.scale)}")
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or w.shape[0] != dim or w.shape[1] != len(b):
                raise InvalidInput(
                    f"layer {i}: weight {w.shape} does not map {dim} inputs to {len(b)} outputs"
                )
            dim = w.shape[1]
        if dim != len(self.classes):
            raise InvalidInput(f"the last layer has {dim} outputs for {len(self.classes)} classes")
        if len(set(map(json.dumps, self.classes))) != len(self.classes):
            raise InvalidInput("classes must be unique")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise InvalidInput(f"temperature must be positive, got {self.temperature}")

    @property
    def feature_dim(self) -> int:
        """Length of the feature vectors this classifier takes."""
        return len(self.mean)

    @property
    def classes_(self) -> np.ndarray:
        """scikit-learn style alias of :attr:`classes`."""
        return np.asarray(self.classes, dtype=object)

    # ----------------------------------------------------------------------------- predicting
    def _features(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.feature_dim:
            raise InvalidInput(
                f"features have shape {arr.shape}; this classifier takes "
                f"{self.feature_dim}-d vectors (trained with another extractor?)"
            )
        bad = non_finite_row(arr)
        if bad is not None:
            raise InvalidInput(f"feature vector {bad} holds NaN or infinity", "features")
        return arr

    def logits(self, x: Any) -> np.ndarray:
        """Uncalibrated class scores, ``(n, classes)``."""
        h = (self._features(x) - self.mean) * self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                np.maximum(h, 0, out=h)
        return h

    def predict_proba(self, x: Any) -> np.ndarray:
        """Calibrated probabilities of every class, ``(n, classes)``, rows summing to 1."""
        return softmax(self.logits(x), self.temperature)

    def predict(self, x: Any) -> np.ndarray:
        """The most probable class of each row."""
        return self.classes_[self.logits(x).argmax(axis=1)]

    # ----------------------------------------------------------------------------- storing
    def to_bytes(self) -> bytes:
        """The ``.safetensors`` file content."""
        from safetensors.numpy import save

        tensors = {"mean": self.mean, "scale": self.scale}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            tensors[f"layers.{i}.weight"] = np.ascontiguousarray(w)
            tensors[f"layers.{i}.bias"] = b
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "clf_type": self.clf_type,
            "classes": self.classes,
            "temperature": self.temperature,
            "layers": len(self.weights),
            "activation": "relu",
            "meta": self.meta,
        }
        return save(tensors, metadata={"annoloop": json.dumps(header)})

    def save(self, location: Location | str) -> None:
        """Write the classifier to ``location`` (a ``.safetensors`` file)."""
        Location.parse(location).write_bytes(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "classifier") -> PointClassifier:
        """Parse a classifier file written by :meth:`to_bytes`."""
        from safetensors.numpy import load

        if not _looks_like_safetensors(data):
            raise InvalidInput("not an annoloop classifier (.safetensors) file", where)
        try:
            tensors = load(data)
            raw = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
            text = (raw.get("__metadata__") or {}).get("annoloop")
            header = json.loads(text) if isinstance(text, str) else None
        except Exception as exc:  # SafetensorError, KeyError, JSON errors on damaged files
            raise InvalidInput(
                f"damaged classifier file ({type(exc).__name__}: {exc})", where
            ) from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InvalidInput("the file is safetensors but not an annoloop classifier", where)
        if int(header.get("version", 0)) > FORMAT_VERSION:
            raise InvalidInput(
                f"classifier format version {header['version']} is newer than this annoloop "
                f"reads ({FORMAT_VERSION})",
                where,
            )
        try:
            n = int(header["layers"])
            return cls(
                clf_type=str(header["clf_type"]),
                classes=list(header["classes"]),
                mean=tensors["mean"],
                scale=tensors["scale"],
                weights=[tensors[f"layers.{i}.weight"] for i in range(n)],
                biases=[tensors[f"layers.{i}.bias"] for i in range(n)],
                temperature=float(header["temperature"]),
                meta=dict(header.get("meta") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"incomplete classifier file ({exc})", where) from None
        except InvalidInput as exc:
            raise InvalidInput(exc.reason, where) from None


def _looks_like_safetensors(data: bytes) -> bool:
    # an 8-byte header length, then the JSON header (a truncated file still counts: it is
    # reported as damaged rather than mistaken for something else)
    return len(data) >= 10 and int.from_bytes(data[:8], "little") >= 2 and data[8:9] == b"{"


def _looks_like_pickle(data: bytes) -> bool:
    # protocol 2+ starts with PROTO (0x80); protocols 0/1 with a mark, list, dict or global
    return data[:1] == b"\x80" or data[:1] in (b"(", b"]", b"}", b"c")


class PickledClassifier:
    """A trusted PySpacer pickle (``CalibratedClassifierCV``) behind the same methods."""

    clf_type = "pickle"

    def __init__(self, model: Any) -> None:
        if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
            raise InvalidInput(
                f"the pickle holds a {type(model).__name__}, not a fitted classifier"
            )
        self.model = model
        self.classes = list(np.asarray(model.classes_).tolist())
        self.meta: dict[str, Any] = {"source": "pickle"}

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)

    @property
    def feature_dim(self) -> int:
        return int(getattr(self.model, "n_features_in_", 0))

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.asarray(self.model.predict_proba(np.asarray(x, dtype=np.float64)))

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


def _unpickle(data: bytes) -> Any:
    import io
    import pickle
    import warnings

    class SpacerUnpickler(pickle.Unpickler):
        # module paths that old scikit-learn versions (as pickled by PySpacer) used
        renames = {
            "sklearn.linear_model.sgd_fast": "sklearn.linear_model",
            "sklearn.linear_model.stochastic_gradient": "sklearn.linear_model",
        }

        def find_class(self, module: str, name: str) -> Any:
            return super().find_class(self.renames.get(module, module), name)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn's version-mismatch warnings
        model = SpacerUnpickler(io.BytesIO(data), encoding="latin1").load()
    if hasattr(model, "estimator") is False and hasattr(model, "base_estimator"):
        model.estimator = model.base_estimator  # sklearn < 1.2 naming
    return model


def load_classifier(
    location: Location | str, *, trust: bool = False
) -> PointClassifier | PickledClassifier:
    """Load a classifier; a pickle (PySpacer's format) only with ``trust=True``."""
    loc = Location.parse(location)
    data = loc.read_bytes()
    if _looks_like_safetensors(data):
        return PointClassifier.from_bytes(data, loc.url)
    if _looks_like_pickle(data):
        if not trust:
            raise AccessDenied(
                f"{loc.url} is a pickle (PySpacer's classifier format); unpickling can run "
                "arbitrary code, so it is refused. Load it with trust=True (or "
                "trust_pickle=True in the message) only if you made the file yourself."
            )
        try:
            return PickledClassifier(_unpickle(data))
        except InvalidInput as exc:
            raise InvalidInput(exc.reason, loc.url) from None
        except Exception as exc:  # anything an unpickler raises on a bad file
            raise InvalidInput(
                f"cannot unpickle the classifier ({type(exc).__name__}: {exc})", loc.url
            ) from None
    raise InvalidInput(
        "not a classifier file (annoloop .safetensors or a PySpacer pickle)", loc.url
    )
