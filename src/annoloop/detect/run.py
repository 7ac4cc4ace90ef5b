"""``annoloop.detect.run``: setup, one worker task per media, teardown."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from annoloop.detect.detectors import DetectorSpec, parse_detector
from annoloop.detect.results import MediaResult
from annoloop.detect.settings import DetectSettings
from annoloop.detect.worker import detect_media
from annoloop.detect.workflow import DetectReport, collect, setup, teardown
from annoloop.progress import Progress, as_progress


def run(
    detector: Any,
    sources: Any = None,
    *,
    img_min_side: int | None = None,
    img_max_side: int | None = None,
    batch_size: int = 1,
    keep_threshold: float = 0.5,
    nms_iou: float | None = 0.5,
    class_aware_nms: bool = True,
    frame_stride: int = 1,
    project: Any = None,
    out_csv: str | Path | None = None,
    out_coco: str | Path | None = None,
    label_attr: str = "Species",
    confidence_attr: str = "Confidence",
    executor: Any = None,
    progress: Progress | None = None,
    classes: list[str] | None = None,
    device: str = "auto",
    tracker: str = "hungarian",
    force: bool = False,
    detector_options: dict[str, Any] | None = None,
) -> DetectReport:
    """Run ``detector`` over images and videos and store / write what it finds.

    ``detector``: ``"mtcnn"``, an ``.onnx`` path (or ``"onnx:rapidocr-text"``),
    ``"torchvision:ARCH=WEIGHTS"`` (with ``classes``), ``"project:detector"`` or
    ``"project:STATE_ID"``, a ``ModelState`` or a :class:`DetectorSpec`. ``sources``: files,
    folders or URLs (None with a project: all its images). Frames are resized so the short
    side is ``img_min_side`` and the long side at most ``img_max_side``, run ``batch_size``
    at a time, boxes under ``keep_threshold`` dropped, then NMS at ``nms_iou``. Video boxes
    are linked into tracks. With ``project`` the boxes become predictions and each media is
    stamped (media stamped by the same detector are skipped unless ``force``). ``executor``
    (an Executor or a name like ``"local:2"``/``"dask"``) runs one media per task; None runs
    them here. A media that fails is reported in the result and the others go on."""
    report = as_progress(progress)
    spec = parse_detector(
        detector, project=project, classes=classes, options=detector_options, device=device
    )
    settings = DetectSettings(
        img_min_side=img_min_side, img_max_side=img_max_side, batch_size=batch_size,
        keep_threshold=keep_threshold, nms_iou=nms_iou, class_aware_nms=class_aware_nms,
        frame_stride=frame_stride, label_attr=label_attr, confidence_attr=confidence_attr,
        tracker=tracker, force=force,
    )  # fmt: skip
    items, skipped = setup(sources, spec, settings, project=project)
    total = len(items)
    report(0, total, f"{total} media to process, {len(skipped)} already processed")
    results: list[MediaResult] = list(skipped)
    if executor is None:
        for i, item in enumerate(items):
            results.append(detect_media(item, spec, settings))
            report(i + 1, total, f"{item.media}: {results[-1].n_boxes} boxes")
    else:
        results.extend(_on_executor(executor, items, spec, settings, report))
    return teardown(results, spec, settings, project=project, out_csv=out_csv, out_coco=out_coco)


def _on_executor(
    executor: Any, items: list[Any], spec: DetectorSpec, settings: DetectSettings, report: Any
) -> list[MediaResult]:
    from annoloop.execution import TaskSpec, get_executor

    owned = isinstance(executor, str)
    ex = get_executor(executor) if owned else executor
    try:
        futures = [
            ex.submit(detect_media, item, spec, settings,
                      spec=TaskSpec(name=f"detect {item.media}"[:200], gpu=spec.wants_cuda))
            for item in items
        ]  # fmt: skip
        for done, fut in enumerate(futures, start=1):  # progress as tasks finish, in order
            with contextlib.suppress(Exception):  # failures are collected with their media
                fut.result()
            report(done, len(items), "media done")
        return collect(futures, items)
    finally:
        if owned:
            ex.shutdown()
