"""Modifiers that lose information by coding: JPEG quality and bit-depth quantisation."""

from __future__ import annotations

from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.experiments import _images
from annoloop.experiments.modifiers.base import ImageContext, Modifier

_SUBSAMPLING = ("420", "422", "444")


def _int_param(params: dict[str, Any], key: str, lo: int, hi: int, name: str) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise InvalidInput(
            f"{key} must be an integer {lo}..{hi}, got {value!r}", f"modifier {name}"
        )
    return int(value)


class Jpeg(Modifier):
    """JPEG compression at ``quality`` (1..100), iquaflow's ``DSModifier_jpg``.

    The image is encoded with libjpeg-turbo's accurate DCT at ``quality`` and chroma
    ``subsampling`` "420" (OpenCV's and Pillow's default, so iquaflow's numbers) and decoded.
    A JPEG source gets the quality-``quality`` stream itself as its file (one compression, the
    file size is the compressed size); set ``reencode=True`` to decode it and save again at
    ``jpeg_quality`` (95) as iquaflow does. Other sources (PNG, TIFF) keep their format and
    hold the decoded pixels losslessly. The compressed size of each image is reported as
    ``jpeg_bytes`` in the modifier manifest.
    """

    name = "jpeg"
    defaults = {"quality": 65, "subsampling": "420", "reencode": False}
    tag_keys = ("quality",)

    def check_params(self) -> None:
        _int_param(self.params, "quality", 1, 100, self.label)
        if self.params["subsampling"] not in _SUBSAMPLING:
            raise InvalidInput(
                f"subsampling must be one of {', '.join(_SUBSAMPLING)}, "
                f"got {self.params['subsampling']!r}",
                f"modifier {self.label}",
            )

    def _stream(self, image: np.ndarray, where: str) -> bytes:
        if image.dtype != np.uint8:
            raise InvalidInput(f"JPEG holds 8-bit samples only, got a {image.dtype} image", where)
        return _images.jpeg_bytes(image, self.params["quality"], self.params["subsampling"])

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        data = self._stream(image, context.file_name)
        context.extra["jpeg_bytes"] = len(data)
        decoded = _images.decode(data, context.file_name).image
        return decoded

    def encode(self, pixels: _images.Pixels, suffix: str, context: ImageContext) -> bytes:
        if suffix.lower() in _images.JPEG_EXTENSIONS and not self.params["reencode"]:
            # the compressed stream itself: decoding it gives exactly the modified pixels
            return self._stream(pixels.image, context.file_name)
        return super().encode(pixels, suffix, context)


class Quantize(Modifier):
    """Keep the ``bits`` most significant bits of every sample (iquaflow's ``DSModifier_quant``:
    ``value & (0xFF << (8 - bits))`` for 8-bit images; 16-bit images keep ``bits`` of 16)."""

    name = "quantize"
    defaults = {"bits": 4}

    def check_params(self) -> None:
        _int_param(self.params, "bits", 1, 16, self.label)

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        depth = image.dtype.itemsize * 8
        bits = min(int(self.params["bits"]), depth)
        mask = np.array(((1 << depth) - 1) ^ ((1 << (depth - bits)) - 1), dtype=image.dtype)
        return image & mask
