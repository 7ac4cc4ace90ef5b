"""The ``Metric`` base class: a template method with one hook, and a base for image metrics.

A metric turns a prediction (and, for most metrics, a target) into a flat ``dict[str, float]``
that an experiment can log and plot. :meth:`Metric.compute` is the fixed part: it checks that a
target is there when the metric needs one, calls the hook :meth:`Metric._compute`, and checks
that the hook returned string keys and real numbers (``numpy`` scalars become ``float``).

Writing a metric means subclassing and writing ``_compute``::

    import numpy as np
    from annoloop.metrics import Metric

    class MeanAbsoluteError(Metric):
        \"\"\"Mean absolute difference between predicted and true values.\"\"\"

        name = "mae"
        higher_is_better = False

        def _compute(self, prediction, target):
            diff = np.abs(np.asarray(prediction, float) - np.asarray(target, float))
            return {"mae": diff.mean()}

    MeanAbsoluteError().compute([1, 2, 3], [1, 2, 5])   # {"mae": 0.666...}

Make it findable by name with an entry point in the plug-in package's ``pyproject.toml``::

    [project.entry-points."annoloop.metrics"]
    mae = "mypackage.metrics:MeanAbsoluteError"

or pass its dotted class path: ``get_metric("mypackage.metrics.MeanAbsoluteError")``.

Image-quality metrics without a reference (SNR, sharpness) subclass :class:`ImageMetric` and
write ``measure(image) -> dict`` for one image; the base loads paths, walks lists of images and
averages.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from annoloop.errors import InvalidInput


class Metric(ABC):
    """Base of every metric: ``compute(prediction, target) -> dict[str, float]``.

    Class attributes a subclass sets:

    - ``name``: the registry name (``"coco_detection"``, ``"snr"``, ...)
    - ``higher_is_better``: the direction of the metric's values
    - ``lower_is_better_keys``: result keys that go the other way (``FWHM_X`` of sharpness)
    - ``needs_target``: False for no-reference metrics such as SNR

    Options go to the subclass's ``__init__`` as keyword arguments; ``get_metric(name,
    **options)`` passes them on.
    """

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    lower_is_better_keys: ClassVar[frozenset[str]] = frozenset()
    needs_target: ClassVar[bool] = True

    def compute(self, prediction: Any, target: Any = None) -> dict[str, float]:
        """Evaluate ``prediction`` against ``target``; returns a flat dict of floats."""
        if self.needs_target and target is None:
            raise InvalidInput(f"metric {self.label!r} needs a target (the ground truth)")
        result = self._compute(prediction, target)
        return _as_float_dict(result, self.label)

    @abstractmethod
    def _compute(self, prediction: Any, target: Any) -> Mapping[str, Any]:
        """The hook: compute the values. Return a mapping of name -> real number."""

    def is_higher_better(self, key: str) -> bool:
        """Whether a larger value of result ``key`` is better."""
        return self.higher_is_better != (key in self.lower_is_better_keys)

    @property
    def label(self) -> str:
        """The metric's name, or its class name when it has none."""
        return self.name or type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.label!r})"


def _as_float_dict(result: Any, metric: str) -> dict[str, float]:
    """Check a hook's result and turn its values into Python floats."""
    if not isinstance(result, Mapping):
        raise InvalidInput(
            f"metric {metric!r} returned {type(result).__name__}, not a mapping of name -> number"
        )
    out: dict[str, float] = {}
    for key, value in result.items():
        if not isinstance(key, str):
            raise InvalidInput(f"metric {metric!r} returned a non-string key {key!r}")
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise InvalidInput(
                f"metric {metric!r} returned {type(value).__name__} for {key!r}, not a number"
            )
        out[key] = float(value)
    return out


ImageInput = np.ndarray | str | PathLike


def load_image(image: Any, where: str = "image") -> np.ndarray:
    """An image as a numpy array: arrays pass through, paths are read with Pillow.

    Pillow's decompression-bomb guard stays on. 16-bit PNG/TIFF keep their depth; palette
    images become RGB and an alpha channel is dropped (image quality is about the pixels).
    """
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, (str, PathLike)):
        from PIL import Image

        path = Path(image)
        try:
            with Image.open(path) as img:
                img.load()
                if img.mode in ("P", "PA", "RGBA", "LA", "CMYK"):
                    img = img.convert("L" if img.mode == "LA" else "RGB")
                return np.asarray(img)
        except FileNotFoundError:
            raise InvalidInput("image file not found", str(path)) from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidInput(f"cannot read image: {exc}", str(path)) from None
    raise InvalidInput(f"expected an image array or a path, got {type(image).__name__}", where)


class ImageMetric(Metric):
    """A no-reference metric of single images; subclasses write :meth:`measure`.

    ``compute(images)`` takes one image (array or path) or a sequence of them and returns the
    mean of every value over the images (NaN values skipped) plus ``n_images``.
    """

    needs_target: ClassVar[bool] = False

    @abstractmethod
    def measure(self, image: np.ndarray) -> Mapping[str, float]:
        """The values for one image (a 2-D grey or 3-D channel-last array)."""

    def _compute(self, prediction: Any, target: Any) -> Mapping[str, float]:
        if isinstance(prediction, (np.ndarray, str, PathLike)):
            images: Sequence[Any] = [prediction]
        elif isinstance(prediction, Sequence):
            images = prediction
        else:
            raise InvalidInput(
                f"metric {self.label!r} takes an image, a path or a list of them, "
                f"got {type(prediction).__name__}"
            )
        if len(images) == 0:
            raise InvalidInput(f"metric {self.label!r} got an empty list of images")
        rows = []
        for i, image in enumerate(images):
            array = load_image(image, where=f"images[{i}]")
            rows.append(_as_float_dict(self.measure(array), self.label))
        keys = list(dict.fromkeys(k for row in rows for k in row))
        table = np.array([[row.get(k, math.nan) for k in keys] for row in rows], dtype=float)
        with np.errstate(all="ignore"):
            counts = np.sum(~np.isnan(table), axis=0)
            sums = np.nansum(table, axis=0)
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        out = dict(zip(keys, means.tolist(), strict=True))
        out["n_images"] = float(len(images))
        return out
