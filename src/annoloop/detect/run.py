"""``annoloop.detect.run``: setup, one worker task per media, teardown; against a project in
this process, or (``server=``) against an annoloop server's REST API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from annoloop.detect.detectors import DetectorSpec, parse_detector
from annoloop.detect.results import MediaResult
from annoloop.detect.settings import DetectSettings
from annoloop.detect.worker import MediaItem, detect_media
from annoloop.detect.workflow import DetectReport, collect, setup, teardown
from annoloop.errors import InvalidInput
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
    server: Any = None,
    token: str | None = None,
    images: Sequence[int] | str | None = None,
    cache_dir: str | Path | None = None,
) -> DetectReport:
    """Run ``detector`` over images and videos and store / write what it finds.

    ``detector``: ``"mtcnn"``, an ``.onnx`` path (or ``"onnx:rapidocr-text"``),
    ``"torchvision:ARCH=WEIGHTS"`` (with ``classes``), ``"project:detector"`` or
    ``"project:STATE_ID"``, a ``ModelState`` or a :class:`DetectorSpec`. ``sources``: files,
    folders or URLs (None with a project: all its images, or those of ``images``). Frames
    are resized so the short side is ``img_min_side`` and the long side at most
    ``img_max_side``, run ``batch_size`` at a time, boxes under ``keep_threshold`` dropped,
    then NMS at ``nms_iou``. Video boxes are linked into tracks. With ``project`` the boxes
    become predictions and each media is stamped (media stamped by the same detector are
    skipped unless ``force``). ``executor`` (an Executor or a name like ``"local:2"`` /
    ``"dask"``) runs one media per task; None runs them here. A media that fails is reported
    in the result and the others go on.

    Remote mode: ``server`` (the server's URL, or a
    :class:`~annoloop.detect.remote.RemoteProject`) with ``token`` (an API key) instead of
    ``project``: setup lists the server project's images (``images``: ``"all"`` or ids) and
    downloads those not stamped yet to ``cache_dir``, teardown uploads the boxes and stamps
    through ``POST /api/detections``. Nothing here touches the server's database."""
    report = as_progress(progress)
    if server is not None and project is not None:
        raise InvalidInput("give a project or a server, not both", "server")
    spec = parse_detector(
        detector, project=project, classes=classes, options=detector_options, device=device
    )
    settings = DetectSettings(
        img_min_side=img_min_side, img_max_side=img_max_side, batch_size=batch_size,
        keep_threshold=keep_threshold, nms_iou=nms_iou, class_aware_nms=class_aware_nms,
        frame_stride=frame_stride, label_attr=label_attr, confidence_attr=confidence_attr,
        tracker=tracker, force=force,
    )  # fmt: skip
    ids = None if images is None or images == "all" else [int(i) for i in images]
    if server is not None:
        from annoloop.detect import remote

        if sources is not None:
            raise InvalidInput("remote mode takes the server's images, not media files", "sources")
        with remote.connect(server, token) as client:
            items, skipped = remote.setup(client, spec, settings, image_ids=ids,
                                          cache_dir=cache_dir, progress=report)  # fmt: skip
            results = [*skipped, *run_media(executor, items, spec, settings, report)]
            return remote.teardown(client, results, spec, settings, out_csv=out_csv,
                                   out_coco=out_coco)  # fmt: skip
    if ids is not None and (sources is not None or project is None):
        raise InvalidInput("images (ids) select a project's images: give no sources", "images")
    items, skipped = setup(sources, spec, settings, project=project, image_ids=ids)
    results = [*skipped, *run_media(executor, items, spec, settings, report)]
    return teardown(results, spec, settings, project=project, out_csv=out_csv, out_coco=out_coco)


def run_media(
    executor: Any,
    items: Sequence[MediaItem],
    spec: DetectorSpec,
    settings: DetectSettings,
    progress: Progress | None = None,
    *,
    envs: Sequence[str] = (),
    on_result: Callable[[int, MediaResult], object] | None = None,
) -> list[MediaResult]:
    """The worker stage over ``items``: :func:`detect_media` per media, here one after another
    (``executor`` None) or one executor task per media (an Executor, or a name the call
    owns). Tasks ask for a GPU worker when the detector wants CUDA and for one of ``envs``.
    ``on_result(index, result)`` is called as each media finishes, in order."""
    report = as_progress(progress)
    total = len(items)
    report(0, total, f"{total} media to process")
    results: list[MediaResult] = []
    if executor is None:
        for i, item in enumerate(items):
            results.append(detect_media(item, spec, settings))
            if on_result is not None:
                on_result(i, results[-1])
            report(i + 1, total, f"{item.media}: {results[-1].n_boxes} boxes")
        return results
    from annoloop.execution import TaskSpec, get_executor

    owned = isinstance(executor, str)
    ex = get_executor(executor) if owned else executor
    futures: list[Any] = []
    try:
        for item in items:
            task = TaskSpec(name=f"detect {item.media}"[:200], gpu=spec.wants_cuda, envs=list(envs))
            futures.append(ex.submit(detect_media, item, spec, settings, spec=task))
        for i, (fut, item) in enumerate(zip(futures, items, strict=True)):
            (result,) = collect([fut], [item])  # a task that raised becomes a failed media
            results.append(result)
            if on_result is not None:
                on_result(i, result)
            report(i + 1, total, f"{item.media}: {result.n_boxes} boxes")
        return results
    except BaseException:  # stopped (TaskCancelled from a report) or broken: drop the rest
        for fut in futures:
            fut.cancel()
        raise
    finally:
        if owned:
            ex.shutdown()
