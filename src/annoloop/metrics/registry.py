"""Find metrics by name: built-ins, the ``annoloop.metrics`` entry-point group, dotted paths.

``get_metric("snr", method="HA")`` returns a configured instance; ``list_metrics()`` names
every metric known by name. A plug-in package registers
``mae = "mypackage.metrics:MeanAbsoluteError"`` under the ``annoloop.metrics`` entry-point
group; a class that is not registered is found by its dotted path
(``"mypackage.metrics.MeanAbsoluteError"`` or ``"mypackage.metrics:MeanAbsoluteError"``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from annoloop.errors import InvalidInput, NotFound
from annoloop.metrics.base import Metric

# name -> ("module:Class", one-line description)
BUILTIN_METRICS: dict[str, tuple[str, str]] = {
    "coco_detection": (
        "annoloop.metrics.builtin:CocoDetection",
        "COCO AP/AR (12 stats) and per-class AP for boxes or masks (faster-coco-eval)",
    ),
    "classification": (
        "annoloop.metrics.builtin:Classification",
        "accuracy, balanced accuracy, per-class and averaged precision/recall/F1",
    ),
    "segmentation": (
        "annoloop.metrics.builtin:Segmentation",
        "per-class IoU and Dice, mean IoU, pixel accuracy from label maps or masks",
    ),
    "snr": (
        "annoloop.metrics.builtin:SNR",
        "signal-to-noise ratio from homogeneous blocks (HB) or homogeneous areas (HA)",
    ),
    "sharpness": (
        "annoloop.metrics.builtin:Sharpness",
        "RER, FWHM and MTF at Nyquist from edges, along x and y",
    ),
}

GROUP = "annoloop.metrics"


def _plugins() -> dict[str, tuple[str, str]]:
    return {ep.name: (ep.value, f"plug-in from {ep.value}") for ep in entry_points(group=GROUP)}


def _load_class(path: str) -> type[Metric]:
    """Import ``module:Class`` or ``module.Class`` and check it is a Metric subclass."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise NotFound(f"{path!r} is neither a known metric name nor a dotted class path")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise NotFound(f"cannot import module {module_name!r} for metric {path!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise NotFound(f"module {module_name!r} has no {attr!r} (metric {path!r})") from None
    if not (isinstance(obj, type) and issubclass(obj, Metric)):
        raise InvalidInput(f"{path!r} is not a subclass of annoloop.metrics.Metric")
    return obj


def list_metrics() -> dict[str, str]:
    """Name -> description of every metric known by name (built-ins and plug-ins)."""
    return {name: desc for name, (_, desc) in {**BUILTIN_METRICS, **_plugins()}.items()}


def get_metric_class(name: str) -> type[Metric]:
    """The class of metric ``name`` (a registered name or a dotted class path)."""
    known = {**BUILTIN_METRICS, **_plugins()}
    if name in known:
        return _load_class(known[name][0])
    if "." in name or ":" in name:
        return _load_class(name)
    raise NotFound(f"unknown metric {name!r}; known: {', '.join(sorted(known))}")


def get_metric(name: str, **options: Any) -> Metric:
    """An instance of metric ``name`` configured with ``options``."""
    cls = get_metric_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise InvalidInput(f"bad options for metric {name!r}: {exc}") from None
