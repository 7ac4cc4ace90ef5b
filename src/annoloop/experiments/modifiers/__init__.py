"""Dataset modifiers: JPEG, blur, noise, resample, sharpen, quantize, RER, and plug-ins.

See :mod:`annoloop.experiments.modifiers.base` for writing one and
:mod:`annoloop.experiments.modifiers.apply` for how a dataset copy is made.
"""

from __future__ import annotations

from annoloop.experiments.modifiers.apply import apply_modifier, apply_modifiers, copy_name
from annoloop.experiments.modifiers.base import ImageContext, Modifier, Original, ProcessedImage
from annoloop.experiments.modifiers.compression import Jpeg, Quantize
from annoloop.experiments.modifiers.noise import Noise
from annoloop.experiments.modifiers.optics import Blur, BlurToRER, Resample, Sharpen
from annoloop.experiments.modifiers.registry import (
    BUILTIN_MODIFIERS,
    get_modifier,
    get_modifier_class,
    list_modifiers,
)

__all__ = [
    "BUILTIN_MODIFIERS",
    "Blur",
    "BlurToRER",
    "ImageContext",
    "Jpeg",
    "Modifier",
    "Noise",
    "Original",
    "ProcessedImage",
    "Quantize",
    "Resample",
    "Sharpen",
    "apply_modifier",
    "apply_modifiers",
    "copy_name",
    "get_modifier",
    "get_modifier_class",
    "list_modifiers",
]
