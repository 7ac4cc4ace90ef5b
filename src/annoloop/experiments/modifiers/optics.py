"""Modifiers of the optics: Gaussian blur, sharpening, blur to a target RER, resampling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.experiments import _images
from annoloop.experiments.modifiers.base import ImageContext, Modifier

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "area", "hamming")
# torchvision's integer codes (iquaflow's DSModifier_gsd takes them): 0 nearest, 2 bilinear,
# 3 bicubic, 1 lanczos, 4 box, 5 hamming
_TORCHVISION_CODES = {
    0: "nearest",
    1: "lanczos",
    2: "bilinear",
    3: "bicubic",
    4: "area",
    5: "hamming",
}


def _positive(params: dict[str, Any], key: str, name: str, *, zero: bool = False) -> float:
    value = params[key]
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if (
        not ok
        or not math.isfinite(float(value))
        or float(value) < 0
        or (not zero and float(value) == 0)
    ):
        rule = "a non-negative" if zero else "a positive"
        raise InvalidInput(f"{key} must be {rule} number, got {value!r}", f"modifier {name}")
    return float(value)


def gaussian_blur(image: np.ndarray, sigma: float, radius: int | None = None) -> np.ndarray:
    """Gaussian blur of each channel as float32 (mirror padding, as torchvision's "reflect").

    ``radius`` cuts the kernel at that many pixels (torchvision's ``kernel_size // 2``);
    None takes 4 sigma (scipy's default).
    """
    from scipy import ndimage

    if sigma <= 0:
        return image.astype(np.float32)
    kwargs: dict[str, Any] = {"mode": "mirror"}
    if radius is not None:
        kwargs["radius"] = int(radius)
    src = image.astype(np.float32)
    if src.ndim == 2:
        return ndimage.gaussian_filter(src, sigma, **kwargs)
    return ndimage.gaussian_filter(src, sigma, axes=(0, 1), **kwargs)


class Blur(Modifier):
    """Gaussian blur of standard deviation ``sigma`` pixels (iquaflow's ``DSModifier_blur``).

    ``kernel_size`` (odd) truncates the kernel as torchvision does (iquaflow uses 7); the
    default None takes 4 sigma each side, a blur without a truncation artefact.
    """

    name = "blur"
    defaults = {"sigma": 1.0, "kernel_size": None}
    tag_keys = ("sigma",)

    def check_params(self) -> None:
        _positive(self.params, "sigma", self.label, zero=True)
        k = self.params["kernel_size"]
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0):
            raise InvalidInput(
                f"kernel_size must be a positive odd integer, got {k!r}", f"modifier {self.label}"
            )

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        k = self.params["kernel_size"]
        return gaussian_blur(image, float(self.params["sigma"]), None if k is None else k // 2)


class Sharpen(Modifier):
    """Sharpen by ``factor`` (iquaflow's ``DSModifier_sharpness``; torchvision's and Pillow's
    ``adjust_sharpness``): blend the image with its 3x3 smoothed version (kernel
    ``[[1,1,1],[1,5,1],[1,1,1]] / 13``, border pixels unchanged). 1 keeps the image, 0 gives
    the smoothed one, 2 doubles the difference."""

    name = "sharpen"
    defaults = {"factor": 2.0}

    def check_params(self) -> None:
        _positive(self.params, "factor", self.label, zero=True)

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        from scipy import ndimage

        src = image.astype(np.float32)
        kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13.0
        if src.ndim == 3:
            kernel = kernel[:, :, None]
        smooth = ndimage.correlate(src, kernel, mode="nearest")
        # torchvision and Pillow leave the one-pixel border as it was
        smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1] = src[0], src[-1], src[:, 0], src[:, -1]
        factor = float(self.params["factor"])
        return smooth + factor * (src - smooth)


def sigma_for_rer(rer: float) -> float:
    """The sigma (pixels) of a Gaussian LSF whose relative edge response is ``rer``.

    RER = ESF(+0.5) - ESF(-0.5) = 2 Phi(0.5 / sigma) - 1 for a Gaussian LSF, so sigma =
    0.5 / Phi^-1((1 + RER) / 2): the closed form of iquaflow's iterative search.
    """
    from scipy.special import ndtri

    if not 0 < rer < 1:
        raise InvalidInput(f"RER must lie strictly between 0 and 1, got {rer!r}")
    return float(0.5 / ndtri((1.0 + rer) / 2.0))


class BlurToRER(Modifier):
    """Blur to a target relative edge response ``rer`` (iquaflow's ``DSModifier_rer``).

    The image's own RER is ``initial_rer`` when given (iquaflow reads it per dataset from a
    JSON file), else measured on each image with :func:`annoloop.metrics.sharpness.sharpness`
    (``fallback_rer`` where no clean edge is found). Both RERs are turned into Gaussian sigmas
    and the difference ``sqrt(target^2 - initial^2)`` is applied. An image already blurrier
    than the target is left as it is. The RER used is reported as ``initial_rer`` and the
    applied blur as ``blur_sigma`` in the manifest.
    """

    name = "rer"
    defaults = {"rer": 0.3, "initial_rer": None, "fallback_rer": 0.54}
    tag_keys = ("rer",)

    def check_params(self) -> None:
        for key in ("rer", "fallback_rer") + (
            ("initial_rer",) if self.params["initial_rer"] else ()
        ):
            value = _positive(self.params, key, self.label)
            if not value < 1:
                raise InvalidInput(
                    f"{key} must be below 1, got {value!r}", f"modifier {self.label}"
                )

    def _initial(self, image: np.ndarray) -> float:
        given = self.params["initial_rer"]
        if given is not None:
            return float(given)
        from annoloop.metrics.sharpness import sharpness

        measured = sharpness(image).get("RER", math.nan)
        if not (isinstance(measured, float) and 0 < measured < 1):
            return float(self.params["fallback_rer"])
        return measured

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        initial = self._initial(image)
        target = float(self.params["rer"])
        s0, s1 = sigma_for_rer(initial), sigma_for_rer(target)
        sigma = math.sqrt(s1 * s1 - s0 * s0) if s1 > s0 else 0.0
        context.extra["initial_rer"] = initial
        context.extra["blur_sigma"] = sigma
        if sigma == 0:
            return image
        return gaussian_blur(image, sigma)


class Resample(Modifier):
    """Change the resolution by ``scale`` or to a ground sample distance.

    ``scale`` multiplies width and height (0.5 halves them); or give ``gsd`` (the wanted
    metres per pixel) with ``source_gsd`` (the images' own), and scale = source_gsd / gsd
    (iquaflow's ``DSModifier_gsd`` with ``resol``). ``interpolation`` is one of nearest,
    bilinear, bicubic, lanczos, area, hamming (or torchvision's integer codes); Pillow's
    filters anti-alias when reducing. New sizes are rounded; annotations are scaled by the
    exact ratio of new to old size, so boxes follow the pixels.
    """

    name = "resample"
    defaults = {"scale": None, "gsd": None, "source_gsd": None, "interpolation": "bilinear"}
    tag_keys = ("scale", "gsd", "interpolation")

    def check_params(self) -> None:
        p = self.params
        where = f"modifier {self.label}"
        if isinstance(p["interpolation"], int) and not isinstance(p["interpolation"], bool):
            if p["interpolation"] not in _TORCHVISION_CODES:
                raise InvalidInput(f"unknown interpolation code {p['interpolation']!r}", where)
            p["interpolation"] = _TORCHVISION_CODES[p["interpolation"]]
        if p["interpolation"] not in INTERPOLATIONS:
            raise InvalidInput(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                f"got {p['interpolation']!r}",
                where,
            )
        if (p["scale"] is None) == (p["gsd"] is None):
            raise InvalidInput("give either scale or gsd (with source_gsd)", where)
        if p["scale"] is not None:
            _positive(p, "scale", self.label)
        else:
            _positive(p, "gsd", self.label)
            if p["source_gsd"] is None:
                raise InvalidInput("gsd needs source_gsd, the images' own metres per pixel", where)
            _positive(p, "source_gsd", self.label)

    @property
    def factor(self) -> float:
        """The scale factor applied to width and height."""
        p = self.params
        if p["scale"] is not None:
            return float(p["scale"])
        return float(p["source_gsd"]) / float(p["gsd"])

    def log_params(self) -> dict[str, Any]:
        out = super().log_params()
        out["scale_factor"] = self.factor
        if self.params["source_gsd"] is not None:
            out["gsd"] = float(self.params["source_gsd"]) / self.factor
        return out

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        h, w = image.shape[:2]
        f = self.factor
        new_w, new_h = max(1, round(w * f)), max(1, round(h * f))
        if (new_w, new_h) == (w, h):
            return image
        return _images.resize(image, new_w, new_h, self.params["interpolation"])
