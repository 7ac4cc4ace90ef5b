"""Metrics: COCO detection, classification, segmentation, SNR and sharpness (RER/FWHM/MTF).

Each metric is a plain function in its own module and a :class:`Metric` class found by name::

    from annoloop.metrics import get_metric, coco_detection

    coco_detection(gt, detections)                  # {"AP": ..., "AP50": ..., "AP/cat": ...}
    get_metric("snr", method="HA").compute(image)   # {"snr": ..., "snr_error": ..., ...}

| name | functions | module |
| --- | --- | --- |
| ``coco_detection`` | :func:`coco_detection`, :func:`evaluate_coco` | ``coco`` |
| ``classification`` | :func:`classification_report`, :func:`confusion_matrix` | same |
| ``segmentation`` | :func:`segmentation_report`, :func:`segmentation_confusion` | same |
| ``snr`` | :func:`snr`, :func:`snr_homogeneous_blocks` and ``_areas`` | ``snr`` |
| ``sharpness`` | :func:`sharpness`, :func:`find_edges`, :func:`slanted_edge` | ``sharpness`` |
| (one edge) | :func:`edge_profile`, :func:`slanted_edge_image` | ``edges`` |

The functions ``snr`` and ``sharpness`` share their modules' names, so the package attribute
is the function: import from the module (``from annoloop.metrics.snr import snr_homogeneous_
blocks``), not ``import annoloop.metrics.snr as m``.

Custom metrics subclass :class:`Metric` (see :mod:`annoloop.metrics.base` for an example)
and register under the ``annoloop.metrics`` entry-point group, or are named by dotted path.
Importing this package needs numpy only; scikit-image, scipy and the COCO evaluators are
imported by the functions that use them.
"""

from __future__ import annotations

from annoloop.metrics.base import ImageMetric, Metric, load_image
from annoloop.metrics.classification import (
    ClassificationReport,
    classification_report,
    confusion_matrix,
)
from annoloop.metrics.coco import STAT_NAMES, CocoEvaluation, coco_detection, evaluate_coco
from annoloop.metrics.edges import EdgeProfile, edge_profile, slanted_edge_image
from annoloop.metrics.registry import get_metric, get_metric_class, list_metrics
from annoloop.metrics.segmentation import (
    SegmentationReport,
    segmentation_confusion,
    segmentation_report,
)
from annoloop.metrics.sharpness import MeasuredEdge, find_edges, sharpness, slanted_edge
from annoloop.metrics.snr import (
    SNREstimate,
    snr,
    snr_homogeneous_areas,
    snr_homogeneous_blocks,
)

__all__ = [
    "STAT_NAMES",
    "ClassificationReport",
    "CocoEvaluation",
    "EdgeProfile",
    "ImageMetric",
    "MeasuredEdge",
    "Metric",
    "SNREstimate",
    "SegmentationReport",
    "classification_report",
    "coco_detection",
    "confusion_matrix",
    "edge_profile",
    "evaluate_coco",
    "find_edges",
    "get_metric",
    "get_metric_class",
    "list_metrics",
    "load_image",
    "segmentation_confusion",
    "segmentation_report",
    "sharpness",
    "slanted_edge",
    "slanted_edge_image",
    "snr",
    "snr_homogeneous_areas",
    "snr_homogeneous_blocks",
]
