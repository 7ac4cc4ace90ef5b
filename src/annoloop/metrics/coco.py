"""COCO detection metrics: the 12 standard AP/AR numbers and per-class AP.

Evaluation runs on faster-coco-eval (the ``experiments`` extra), whose C++ matching and
accumulation give the same numbers as pycocotools several times faster;
``use_pycocotools=True`` runs pycocotools itself (the ``dev`` extra) for comparison. Inputs are
checked and rebuilt first (see :mod:`annoloop.metrics.coco_input`), so both evaluators see the
same, clean records.

The result keys, in COCO's order: ``AP`` (IoU .50:.95), ``AP50``, ``AP75``, ``APs``, ``APm``,
``APl`` (small < 32^2, medium < 96^2, large pixels of area), ``AR1``, ``AR10``, ``AR100``
(recall with at most 1, 10, 100 detections per image), ``ARs``, ``ARm``, ``ARl``; then
``AP/<category name>`` for each category. As COCO does, a value that is undefined (no ground
truth in that area range or category) is -1.
"""

from __future__ import annotations

import contextlib
import gc
import io
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from annoloop._lazy import lazy_import
from annoloop.errors import InvalidInput
from annoloop.metrics.coco_input import IOU_TYPES, load_dt, load_gt

STAT_NAMES: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)


@dataclass
class CocoEvaluation:
    """The stats, per-class AP and COCO's precision (T, R, K, A, M) and recall (T, K, A, M)."""

    stats: dict[str, float]
    per_class: dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    category_ids: list[int]

    def as_dict(self) -> dict[str, float]:
        """The 12 stats followed by ``AP/<category>``."""
        return {**self.stats, **{f"AP/{k}": v for k, v in self.per_class.items()}}


class _Backend:
    """One evaluator's COCO, COCOeval and mask API behind the same three calls."""

    def __init__(self, use_pycocotools: bool) -> None:
        self.pycocotools = use_pycocotools
        if use_pycocotools:
            self.coco_mod = lazy_import("pycocotools.coco", "dev")
            self.eval_mod = lazy_import("pycocotools.cocoeval", "dev")
            self.mask: ModuleType = lazy_import("pycocotools.mask", "dev")
        else:
            self.fce = lazy_import("faster_coco_eval", "experiments")
            self.mask = lazy_import("faster_coco_eval.core.mask", "experiments")

    def evaluate(self, gt: dict, dt: list[dict], iou_type: str) -> Any:
        # both libraries print progress; keep it off the caller's stdout
        with contextlib.redirect_stdout(io.StringIO()):
            if self.pycocotools:
                coco_gt = self.coco_mod.COCO()
                coco_gt.dataset = gt
                coco_gt.createIndex()
                coco_dt = self._pycocotools_results(coco_gt, dt)
                ev = self.eval_mod.COCOeval(coco_gt, coco_dt, iou_type)
            else:
                coco_gt = self.fce.COCO(gt)
                coco_dt = coco_gt.loadRes(dt)
                ev = self.fce.COCOeval_faster(
                    coco_gt, coco_dt, iou_type, print_function=_quiet, boundary_cpu_count=1
                )
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return ev

    def _pycocotools_results(self, coco_gt: Any, dt: list[dict]) -> Any:
        if dt:
            return coco_gt.loadRes(dt)
        # pycocotools' loadRes fails on an empty list: build the empty result set by hand
        empty = self.coco_mod.COCO()
        empty.dataset = {
            "images": list(coco_gt.dataset["images"]),
            "categories": list(coco_gt.dataset["categories"]),
            "annotations": [],
        }
        empty.createIndex()
        return empty


def _quiet(*args: Any, **kwargs: Any) -> None:
    """A print function that prints nothing."""


def evaluate_coco(
    gt: Any,
    dt: Any,
    *,
    iou_type: str = "bbox",
    use_pycocotools: bool = False,
) -> CocoEvaluation:
    """Run COCO evaluation; see :func:`coco_detection` for the inputs."""
    if iou_type not in IOU_TYPES:
        raise InvalidInput(f"iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
    backend = _Backend(use_pycocotools)
    # Hundreds of thousands of small dicts are made here and none form cycles: the cyclic
    # garbage collector would only rescan them again and again (about a third of the time).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gt_coco, gt_dataset = load_gt(gt, iou_type, backend.mask)
        dt_list = load_dt(dt, gt_coco, gt_dataset, iou_type, backend.mask)
        ev = backend.evaluate(gt_coco, dt_list, iou_type)
    finally:
        if was_enabled:
            gc.enable()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, np.asarray(ev.stats)[:12], strict=True)}
    precision = np.asarray(ev.eval["precision"])
    recall = np.asarray(ev.eval["recall"])
    cat_ids = [int(c) for c in ev.params.catIds]
    names = {c["id"]: c["name"] for c in gt_coco["categories"]}
    per_class: dict[str, float] = {}
    # precision is [iou thresholds, recall thresholds, categories, area ranges, max dets]:
    # a category's AP is the mean over IoU and recall of area "all" at 100 detections
    block = precision[:, :, :, 0, -1] if precision.size else np.zeros((0, 0, len(cat_ids)))
    valid = block > -1
    sums = np.where(valid, block, 0.0).sum(axis=(0, 1))
    counts = valid.sum(axis=(0, 1))
    ap = np.where(counts > 0, sums / np.maximum(counts, 1), -1.0)
    seen: dict[str, int] = {}
    for k, cat in enumerate(cat_ids):
        key = names.get(cat, str(cat))
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:  # two categories with one name: keep both, apart
            key = f"{key}#{cat}"
        per_class[key] = float(ap[k]) if k < len(ap) else -1.0
    return CocoEvaluation(stats, per_class, precision, recall, cat_ids)


def coco_detection(
    gt: Any,
    dt: Any,
    *,
    iou_type: str = "bbox",
    use_pycocotools: bool = False,
) -> dict[str, float]:
    """COCO AP/AR: the 12 standard stats and ``AP/<category>``, as a flat dict of floats.

    ``gt``: a COCO ground-truth dict (images, categories, annotations), the path of a COCO JSON
    file, or an annoloop :class:`~annoloop.formats.dataset.Dataset` (relative boxes and shapes
    are scaled by each image's width and height). ``dt``: a COCO results list
    (``image_id, category_id, score`` and ``bbox`` in pixels or ``segmentation``), a dict with
    an ``annotations`` list, a JSON path, a Dataset (matched to the ground truth by image file
    name and label name) or an :class:`~annoloop.geometry.annotations.Annotations` aligned with
    a ground-truth Dataset (scores from ``confidence``). ``iou_type`` is ``"bbox"`` or
    ``"segm"``.
    """
    return evaluate_coco(gt, dt, iou_type=iou_type, use_pycocotools=use_pycocotools).as_dict()
