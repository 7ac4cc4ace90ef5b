"""The ``Modifier`` base class: one per-image hook, everything else fixed.

A modifier turns one image into another (lower JPEG quality, blur, noise, a new resolution).
:meth:`Modifier.process` is the fixed part: decode the file (keeping grey/colour, 8/16 bit and
alpha), call the hook :meth:`Modifier.modify_image`, bring its result back to the input's
dtype (rounded and clipped), resize the alpha plane if the size changed, and encode in the
source's format. Applying a modifier to a whole dataset (parallel chunks, annotations scaled
when the size changes, reuse of earlier outputs) is :func:`annoloop.experiments.apply_modifier`.

Writing a modifier means subclassing and writing ``modify_image``::

    import numpy as np
    from annoloop.experiments import Modifier

    class Invert(Modifier):
        \"\"\"Photographic negative.\"\"\"

        name = "invert"
        defaults = {"strength": 1.0}

        def modify_image(self, image, context):
            top = np.iinfo(image.dtype).max
            s = self.params["strength"]
            return (1 - s) * image + s * (top - image.astype(float))

    Invert(strength=0.5).tag      # "invert_strength0.5": the copy is "NAME#invert_strength0.5"

Register it for YAML experiment files under the ``annoloop.modifiers`` entry-point group
(``invert = "mypackage.modifiers:Invert"``) or name it by dotted path
(``get_modifier("mypackage.modifiers.Invert", strength=0.5)``).

``context.rng`` is a random generator seeded from the modifier's ``seed`` param and the
file name, so noise is the same on every run whatever the chunking and worker.
"""

from __future__ import annotations

import math
import re
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.experiments import _images


@dataclass
class ImageContext:
    """What a modifier's hook knows about the image besides its pixels."""

    file_name: str  # relative to the dataset's images folder
    seed: int = 0
    source_format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # values the hook reports back

    @property
    def rng(self) -> np.random.Generator:
        """A generator seeded from ``seed`` and the file name (stable across runs)."""
        name_key = zlib.crc32(self.file_name.encode())
        return np.random.default_rng([int(self.seed) & 0xFFFFFFFF, name_key])


@dataclass
class ProcessedImage:
    """One modified image: the bytes to write, its size, and values the modifier reported."""

    data: bytes
    width: int
    height: int
    width_in: int
    height_in: int
    extra: dict[str, Any] = field(default_factory=dict)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


class Modifier(ABC):
    """Base of every modifier; subclasses set ``name`` and ``defaults`` and write
    :meth:`modify_image`.

    Parameters are keyword arguments merged over ``defaults``; an unknown key raises
    InvalidInput (a typo must not silently run the default). ``seed`` (default 0) seeds
    ``context.rng``; ``jpeg_quality`` (default 95, OpenCV's default, so iquaflow's) is the
    quality JPEG sources are saved with after modification.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    #: params always named in the tag (default: all of ``defaults``); others only when changed
    tag_keys: ClassVar[tuple[str, ...] | None] = None
    #: parameters every modifier takes; kept out of the tag while they have these values
    common_defaults: ClassVar[dict[str, Any]] = {"seed": 0, "jpeg_quality": 95}

    def __init__(self, **params: Any) -> None:
        allowed = {**self.common_defaults, **self.defaults}
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise InvalidInput(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for modifier "
                f"{self.label!r}; allowed: {', '.join(sorted(allowed)) or 'none'}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.options: dict[str, Any] = {
            k: params.get(k, v) for k, v in self.common_defaults.items()
        }
        for key in self.common_defaults:
            self.params.pop(key, None)
        seed = self.options["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidInput(f"seed must be an integer, got {seed!r}", f"modifier {self.label}")
        quality = self.options["jpeg_quality"]
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
            raise InvalidInput(f"jpeg_quality must be an integer 1..100, got {quality!r}")
        self.check_params()

    # -- hooks ----------------------------------------------------------------------------
    def check_params(self) -> None:  # noqa: B027 - an optional hook, empty by design
        """Validate ``self.params``; raise InvalidInput naming the bad one (optional hook)."""

    @abstractmethod
    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        """The hook: return the modified image.

        ``image`` is (h, w) grey or (h, w, 3) colour, uint8 or uint16 (alpha is kept aside).
        Return any numeric array of the same channel layout; floats are rounded and clipped
        to the input's range. A different (h, w) means the geometry changed: annotations are
        then scaled by the ratio of the sizes.
        """

    # -- fixed part -----------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The registry name, or the class name when the modifier has none."""
        return self.name or type(self).__name__

    @property
    def tag(self) -> str:
        """The name of the modified copy's suffix: ``name`` and every param, file-name safe
        (``jpeg_quality10``, ``resample_scale0.5_interpolationbilinear``)."""
        parts = [self.label]
        always = set(self.defaults if self.tag_keys is None else self.tag_keys)
        for key, value in self.params.items():
            if value is None or (key not in always and value == self.defaults.get(key)):
                continue
            parts.append(f"{key}{_format_value(value)}")
        for key, value in self.options.items():
            if value != self.common_defaults[key]:
                parts.append(f"{key}{_format_value(value)}")
        return _UNSAFE.sub("-", "_".join(parts))

    def spec(self) -> dict[str, Any]:
        """What identifies this modifier's output: class, params and options (JSON-able)."""
        cls = type(self)
        return {
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "name": self.label,
            "params": _jsonable(self.params),
            "options": _jsonable(self.options),
        }

    def log_params(self) -> dict[str, Any]:
        """Params added to a modified dataset's params (and so to MLflow); None values are
        left out."""
        return {k: v for k, v in self.params.items() if v is not None}

    def process(self, data: bytes, suffix: str, context: ImageContext) -> ProcessedImage:
        """Decode ``data``, apply the hook, encode in the format ``suffix`` names."""
        context.seed = int(self.options["seed"])
        pixels = _images.decode(data, context.file_name)
        context.source_format = pixels.format
        height, width = pixels.image.shape[:2]
        result = self.modify_image(pixels.image, context)
        out = self._normalise(result, pixels.image, context.file_name)
        new_h, new_w = out.shape[:2]
        alpha = pixels.alpha
        if alpha is not None and (new_h, new_w) != (height, width):
            alpha = _images.resize(alpha, new_w, new_h, "bilinear")
        encoded = self.encode(
            _images.Pixels(out, alpha, pixels.format, pixels.subsampling), suffix, context
        )
        return ProcessedImage(encoded, new_w, new_h, width, height, dict(context.extra))

    def encode(self, pixels: _images.Pixels, suffix: str, context: ImageContext) -> bytes:
        """Encode the modified pixels (a hook for modifiers that write their own bytes)."""
        return _images.encode(pixels, suffix, jpeg_quality=self.options["jpeg_quality"])

    @staticmethod
    def _normalise(result: Any, original: np.ndarray, where: str) -> np.ndarray:
        arr = np.asarray(result)
        if arr.dtype.kind not in "iufb":
            raise InvalidInput(f"modifier returned a {arr.dtype} array, not numbers", where)
        if arr.ndim != original.ndim or (arr.ndim == 3 and arr.shape[2] != original.shape[2]):
            raise InvalidInput(
                f"modifier returned shape {arr.shape} for an image of shape {original.shape}: "
                "the channel layout must stay the same",
                where,
            )
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise InvalidInput(f"modifier returned an empty image {arr.shape}", where)
        if arr.dtype == original.dtype:
            return np.ascontiguousarray(arr)
        top = float(np.iinfo(original.dtype).max)
        if arr.dtype.kind == "f":
            arr = np.rint(np.nan_to_num(arr, nan=0.0, posinf=top, neginf=0.0))
        return np.clip(arr, 0, top).astype(original.dtype)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {**self.params}.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Modifier) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(self.tag)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        out[key] = value
    return out


class Original(Modifier):
    """No change: the reference dataset itself, so it can sit in a list of modifiers.

    Applying it writes nothing and returns the dataset with ``modifier = "original"``.
    """

    name = "original"

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        return image

    @property
    def tag(self) -> str:
        return "original"
