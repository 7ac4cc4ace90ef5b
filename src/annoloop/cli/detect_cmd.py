"""``annoloop detect``: run a detector over images and videos (OpenEM-style workflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from annoloop.cli._common import JsonOpt, console, emit_json, handle_errors, progress_bar

DETECTOR_HELP = (
    "mtcnn (faces), FILE.onnx, onnx:rapidocr-text, torchvision:ARCH=WEIGHTS (with --class), "
    "project:detector or project:STATE_ID (a state trained in the project)."
)


@handle_errors
def detect(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Image / video files or folders (default: the project's images).",
            show_default=False,
        ),
    ] = None,
    detector: Annotated[str, typer.Option("--detector", "-d", help=DETECTOR_HELP)] = "mtcnn",
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="Store boxes as predictions in this project and "
            "stamp each media (re-runs skip stamped media).",
            show_default=False,
        ),
    ] = None,
    img_min_side: Annotated[int | None, typer.Option(help="Resize: short side.")] = None,
    img_max_side: Annotated[int | None, typer.Option(help="Resize: long side cap.")] = None,
    batch_size: Annotated[int, typer.Option(help="Frames per detector call.")] = 1,
    keep_threshold: Annotated[float, typer.Option(help="Drop boxes scoring below.")] = 0.5,
    nms_iou: Annotated[float, typer.Option(help="NMS IoU threshold (1: no NMS).")] = 0.5,
    class_aware_nms: Annotated[bool, typer.Option(help="NMS within each class.")] = True,
    frame_stride: Annotated[int, typer.Option(help="Every n-th video frame.")] = 1,
    tracker: Annotated[str, typer.Option(help="hungarian, greedy or none.")] = "hungarian",
    classes: Annotated[
        list[str] | None, typer.Option("--class", help="Class names of the detector outputs.")
    ] = None,
    out_csv: Annotated[Path | None, typer.Option(help="Write the boxes as CSV.")] = None,
    out_coco: Annotated[Path | None, typer.Option(help="Write the boxes as COCO JSON.")] = None,
    label_attr: Annotated[str, typer.Option(help="Name of the label attribute.")] = "Species",
    confidence_attr: Annotated[str, typer.Option(help="Name of the score attribute.")] = (
        "Confidence"
    ),
    executor: Annotated[
        str | None, typer.Option(help="Run one media per task: local:N, dask, tcp://HOST:PORT.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    force: Annotated[bool, typer.Option(help="Also process media already stamped.")] = False,
    server: Annotated[
        str | None,
        typer.Option(
            help="Remote mode: an annoloop server's URL (http://HOST:PORT); its images are "
            "downloaded, the boxes uploaded through its REST API (no database needed here).",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ANNOLOOP_TOKEN",
            help="API key for --server (annoloop users token NAME; a designer's).",
            show_default=False,
        ),
    ] = None,
    images: Annotated[
        str | None, typer.Option(help="The project's / server's images: all, or ids like 3,5-9.")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Remote mode: where downloaded media are kept.", show_default=False),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a detector over images and videos; write CSV / COCO and project predictions
    (or, with --server, the predictions of an annoloop server's project)."""
    from annoloop.detect.service import detect_service

    with progress_bar("detect", enabled=not json_out) as bar:
        summary = detect_service(
            detector, sources, project=project, progress=bar, img_min_side=img_min_side,
            img_max_side=img_max_side, batch_size=batch_size, keep_threshold=keep_threshold,
            nms_iou=None if nms_iou >= 1 else nms_iou, class_aware_nms=class_aware_nms,
            frame_stride=frame_stride, tracker=tracker, classes=classes, out_csv=out_csv,
            out_coco=out_coco, label_attr=label_attr, confidence_attr=confidence_attr,
            executor=executor, device=device, force=force, server=server, images=images,
            token=token, cache_dir=cache_dir,
        )  # fmt: skip
    if json_out:
        emit_json(summary)
    else:
        console.print(
            f"[bold]{summary['detector']}[/]: {summary['processed']} media processed, "
            f"{summary['skipped']} skipped, {len(summary['failed'])} failed; "
            f"{summary['frames']} frames, {summary['boxes']} boxes, {summary['tracks']} "
            f"tracks, {summary['fps']} frames/s"
        )
        for media in summary["per_media"]:
            state = "skipped" if media["skipped"] else ("ok" if media["ok"] else "FAILED")
            console.print(f"  {state:8} {media['boxes']:5d} boxes  {media['media']}")
        for failure in summary["failed"]:
            console.print(f"[red]failed[/] {failure['media']}: {failure['error']}")
        for key in ("out_csv", "out_coco"):
            if summary[key]:
                console.print(f"{key}: {summary[key]}")
    if summary["failed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``annoloop detect`` to the CLI."""
    app.command("detect", no_args_is_help=False)(detect)
