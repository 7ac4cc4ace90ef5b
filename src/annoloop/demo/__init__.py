"""``annoloop demo``: the whole loop on real bundled photos, on the embedded default.

Each capability adds a step here, so the demo always shows everything working end to end.
Steps are plain functions of a :class:`DemoContext` that return a one-line summary.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annoloop.errors import AccessDenied


@dataclass
class DemoContext:
    """What the steps share: the folder, the open project, and what earlier steps made."""

    folder: Path
    project: Any = None
    made: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    name: str
    summary: str
    seconds: float


Step = Callable[[DemoContext], str]


def _step_project(ctx: DemoContext) -> str:
    from annoloop.samples import COLOUR_PHOTOS, photo_paths
    from annoloop.store import Project

    ctx.project = Project.init(ctx.folder, name="annoloop demo")
    ids = ctx.project.add_images(photo_paths([*COLOUR_PHOTOS, "coins.png"]), copy=True)
    return f"project at {ctx.folder} with {len(ids)} real photos (sizes read from headers)"


def _step_import(ctx: DemoContext) -> str:
    from annoloop.demo.field_data import write_coco, write_coralnet_points
    from annoloop.formats.transfer import import_annotations

    field_dir = ctx.folder / "field"
    field_dir.mkdir(exist_ok=True)
    images = ctx.project.images()
    sizes = {
        Path(str(loc)).name: (int(w), int(h))
        for loc, w, h in zip(images["location"], images["width"], images["height"], strict=True)
    }
    coco = write_coco(field_dir / "coins_and_labels.coco.json", image_sizes=sizes)
    points = write_coralnet_points(field_dir / "coins_points.csv")
    media = str(ctx.project.media)
    r1 = import_annotations(ctx.project, "coco", coco, images_root=media)
    r2 = import_annotations(ctx.project, "coralnet", points, images_root=media)
    n = r1.annotations_added + r2.annotations_added
    return f"imported {n} annotations (COCO boxes+polygons+image labels, CoralNet points)"


def _step_preview(ctx: DemoContext) -> str:
    from annoloop.plots import draw_annotations
    from annoloop.storage import read_image

    images = ctx.project.images()
    coins = images[images["location"].astype(str).str.endswith("coins.png")]
    image_id = int(coins["id"].iloc[0])
    ann = ctx.project.annotation_arrays(image=image_id)
    pixels = read_image(ctx.project.image_location(image_id))
    png = draw_annotations(pixels, ann, ctx.folder / "preview_coins.png")
    return f"{len(ann)} annotations drawn over coins.png -> {png}"


def _step_export(ctx: DemoContext) -> str:
    from annoloop.formats.transfer import export_annotations

    out = ctx.folder / "exports"
    coco = export_annotations(ctx.project, "coco", out / "annotations.coco.json")
    yolo = export_annotations(
        ctx.project, "yolo", out / "yolo", kind="polygon", format_options={"task": "segment"}
    )
    dropped = {**coco.dropped}
    note = f" (COCO cannot hold: {dropped})" if dropped else ""
    return (
        f"exported {coco.annotations} annotations to COCO and {yolo.annotations} polygons "
        f"(coin outlines) to YOLO segmentation in {out}{note}"
    )


def _step_stats(ctx: DemoContext) -> str:
    from annoloop.plots import plot_stats

    stats = ctx.project.stats()
    ctx.made["stats"] = stats
    png = plot_stats(stats, ctx.folder / "stats.png")
    per_label = ", ".join(f"{k} {v}" for k, v in list(stats["per_label"].items())[:5])
    return f"stats: {per_label}, ... (plot: {png})"


def _step_experiment(ctx: DemoContext) -> str:
    import logging
    import shutil as _shutil

    from annoloop.demo.field_data import write_coco
    from annoloop.experiments.service import experiment_info, run_experiment_file
    from annoloop.samples import photo_path

    root = ctx.folder / "experiment"
    data = root / "coins"
    (data / "images").mkdir(parents=True, exist_ok=True)
    _shutil.copy(photo_path("coins.png"), data / "images" / "coins.png")
    write_coco(data / "annotations.json", image_sizes={"coins.png": (384, 303)}, coins_only=True)
    spec = root / "experiment.yaml"
    spec.write_text(
        "name: demo-image-quality\n"
        "workdir: runs\n"
        "executor: local\n"
        "dataset: coins\n"
        "modifiers:\n"
        "  - original\n"
        "  - {name: jpeg, quality: [20, 3]}\n"
        "  - {name: blur, sigma: [2, 6]}\n"
        "  - {name: noise, snr: [5]}\n"
        "task: {model: threshold-detector}\n"
        "plot: {x: modifier, y: AP50, kind: bar, out: ap50_by_modifier.png}\n"
    )
    import mlflow  # noqa: F401  (imported first: it configures its loggers on import)

    for name in ("mlflow", "mlflow.store.db.utils", "alembic"):  # database set-up chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    result = run_experiment_file(spec)
    df = experiment_info(spec, params=["modifier"], metrics=["AP50"])
    scores = ", ".join(f"{m} {v:.2f}" for m, v in zip(df["modifier"], df["AP50"], strict=True))
    return (
        f"{len(result.runs)} runs logged to MLflow; coin detector AP50 by image quality: "
        f"{scores} (plot: {result.plot})"
    )


def _capability_step(module: str) -> Step:
    """The ``run(ctx) -> str`` of ``annoloop.demo.<module>``, imported when the step runs (the
    capabilities pull in torch, dask and the like; ``import annoloop.demo`` stays light)."""

    def step(ctx: DemoContext) -> str:
        import importlib

        return importlib.import_module(f"annoloop.demo.{module}").run(ctx)

    return step


STEPS: list[tuple[str, Step]] = [
    ("project", _step_project),
    ("import", _step_import),
    ("preview", _step_preview),
    ("export", _step_export),
    ("stats", _step_stats),
    ("pipeline", _capability_step("step_pipeline")),
    ("points", _capability_step("step_points")),
    ("models", _capability_step("step_models")),
    ("detect", _capability_step("step_detect")),
    ("quality", _step_experiment),
]


def prepare_folder(folder: Path, *, fresh: bool) -> None:
    """Make ``folder`` empty for the demo; only ever deletes an earlier demo project."""
    if folder.exists() and any(folder.iterdir()):
        if not fresh:
            raise AccessDenied(f"{folder} is not empty; pass --fresh to replace an earlier demo")
        marker = folder / "annoloop.yaml"
        if not marker.exists() or "annoloop demo" not in marker.read_text(encoding="utf-8"):
            raise AccessDenied(
                f"{folder} holds something other than an annoloop demo; not touching it"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def run_demo(
    folder: str | Path,
    *,
    fresh: bool = True,
    on_step: Callable[[StepResult], None] | None = None,
) -> tuple[DemoContext, list[StepResult]]:
    """Run every demo step in order; ``on_step`` sees each result as it finishes."""
    ctx = DemoContext(folder=Path(folder).resolve())
    prepare_folder(ctx.folder, fresh=fresh)
    results = []
    try:
        for name, step in STEPS:
            start = time.perf_counter()
            summary = step(ctx)
            result = StepResult(name, summary, time.perf_counter() - start)
            results.append(result)
            if on_step:
                on_step(result)
    finally:
        if ctx.project is not None:
            ctx.project.close()
    return ctx, results
