"""The built-in metrics as :class:`~annoloop.metrics.base.Metric` classes (found by name).

Each is a thin wrapper: options go to ``__init__``, ``compute(prediction, target)`` calls the
function of its module. ``prediction`` is what a model or a modified dataset produced,
``target`` the ground truth; image-quality metrics take images (arrays or paths) and no target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.metrics.base import ImageMetric, Metric


class CocoDetection(Metric):
    """COCO AP/AR of detections (``prediction``) against ground truth (``target``).

    Inputs as :func:`annoloop.metrics.coco.coco_detection` takes them.
    """

    name = "coco_detection"

    def __init__(self, *, iou_type: str = "bbox", use_pycocotools: bool = False) -> None:
        from annoloop.metrics.coco_input import IOU_TYPES

        if iou_type not in IOU_TYPES:
            raise InvalidInput(f"iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
        self.iou_type = iou_type
        self.use_pycocotools = use_pycocotools

    def _compute(self, prediction: Any, target: Any) -> Mapping[str, float]:
        from annoloop.metrics.coco import coco_detection

        return coco_detection(
            target, prediction, iou_type=self.iou_type, use_pycocotools=self.use_pycocotools
        )


class Classification(Metric):
    """Accuracy, balanced accuracy, precision/recall/F1 (per class, macro, weighted)."""

    name = "classification"

    def __init__(
        self,
        *,
        labels: Sequence[Any] | None = None,
        label_names: Sequence[str] | None = None,
        zero_division: float = 0.0,
    ) -> None:
        self.labels = labels
        self.label_names = label_names
        self.zero_division = zero_division

    def _compute(self, prediction: Any, target: Any) -> Mapping[str, float]:
        from annoloop.metrics.classification import classification_report

        report = classification_report(
            target,
            prediction,
            labels=self.labels,
            label_names=self.label_names,
            zero_division=self.zero_division,
        )
        return report.as_dict()


class Segmentation(Metric):
    """Per-class IoU and Dice, mean IoU, pixel accuracy of label maps or masks."""

    name = "segmentation"

    def __init__(
        self,
        *,
        num_classes: int | None = None,
        label_names: Sequence[str] | None = None,
        ignore_index: int | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.label_names = label_names
        self.ignore_index = ignore_index

    def _compute(self, prediction: Any, target: Any) -> Mapping[str, float]:
        from annoloop.metrics.segmentation import segmentation_report

        report = segmentation_report(
            prediction,
            target,
            num_classes=self.num_classes,
            label_names=self.label_names,
            ignore_index=self.ignore_index,
        )
        return report.as_dict()


class SNR(ImageMetric):
    """Signal-to-noise ratio (``snr``, ``snr_error``) by homogeneous blocks or areas."""

    name = "snr"

    def __init__(self, *, method: str = "HB", each_channel: bool = False, **options: Any) -> None:
        from annoloop.metrics.snr import METHODS

        if method.upper() not in METHODS:
            raise InvalidInput(f"unknown SNR method {method!r}; use one of {', '.join(METHODS)}")
        from annoloop.metrics.snr import snr_homogeneous_areas, snr_homogeneous_blocks

        self.method = method.upper()
        fn = snr_homogeneous_blocks if self.method == "HB" else snr_homogeneous_areas
        _check_options(options, fn, f"snr method {self.method}")
        self.each_channel = each_channel
        self.options = options

    def measure(self, image: np.ndarray) -> Mapping[str, float]:
        from annoloop.metrics.snr import snr

        return snr(image, self.method, each_channel=self.each_channel, **self.options)


class Sharpness(ImageMetric):
    """RER, FWHM, MTF at Nyquist and half Nyquist from edges, along x and y."""

    name = "sharpness"
    lower_is_better_keys: ClassVar[frozenset[str]] = frozenset({"FWHM", "FWHM_X", "FWHM_Y"})

    def __init__(self, *, source: str = "model", **options: Any) -> None:
        if source not in ("model", "data"):
            raise InvalidInput(f"source must be 'model' or 'data', got {source!r}")
        from annoloop.metrics.sharpness import find_edges

        _check_options(options, find_edges, "sharpness")
        self.source = source
        self.options = options

    def measure(self, image: np.ndarray) -> Mapping[str, float]:
        from annoloop.metrics.sharpness import sharpness

        return sharpness(image, source=self.source, **self.options)


def _check_options(options: Mapping[str, Any], fn: Any, what: str) -> None:
    """Refuse options that ``fn`` does not take, when the metric is made, not when it runs."""
    import inspect

    accepted = {
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidInput(
            f"unknown option(s) {', '.join(unknown)} for {what}; "
            f"accepted: {', '.join(sorted(accepted))}"
        )
