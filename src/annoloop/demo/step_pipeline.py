"""Demo step: a two-stage pipeline (image labels, then boxes on chosen images) on the demo photos.

The ready-made ``two_stage`` template is copied out of the package and imported as a pipeline
project (as ``annoloop pipe import`` does), a pipe is started on the demo project, and the
annotator is played through the Python API (``next_item`` / ``submit``): each photo gets the
image label it shows, the coins photo is junked, and the cats and people get a box. The pipe
then runs to its end and exports the boxes as COCO.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

CHOSEN = ["cat", "person"]  # second stage: boxes on the photos of these classes


def _annotator_labels(project: Any) -> dict[int, str | None]:
    """Image id -> the label the simulated annotator gives it (None: junk)."""
    from annoloop.demo.field_data import IMAGE_LABELS

    images = project.images()
    return {
        int(i): IMAGE_LABELS.get(Path(str(loc)).name)
        for i, loc in zip(images["id"], images["location"], strict=True)
    }


def _classify(project: Any, task: str, truth: dict[int, str | None]) -> tuple[int, int]:
    """Play the first stage: one image label per photo, junk for the others."""
    from annoloop.geometry.annotations import Annotations
    from annoloop.geometry.kinds import Kind

    done = junk = 0
    while (item := project.next_item(task, "demo-annotator")) is not None:
        name = truth.get(int(item.image_id))
        if name is None:
            project.submit(item.id, "demo-annotator", None, state="junk")
            junk += 1
            continue
        label = int(project.label_ids([name])[0])
        ann = Annotations.from_boxes([item.image_id], [[np.nan] * 4], [label], kind=Kind.LABEL)
        project.submit(item.id, "demo-annotator", ann, time_spent=2.0)
        done += 1
    return done, junk


def _draw_boxes(project: Any, task: str, truth: dict[int, str | None]) -> int:
    """Play the second stage: one box of the image's class around the middle of the photo."""
    from annoloop.geometry.annotations import Annotations

    n = 0
    while (item := project.next_item(task, "demo-annotator")) is not None:
        label = int(project.label_ids([truth[int(item.image_id)]])[0])
        ann = Annotations.from_boxes([item.image_id], [[0.5, 0.45, 0.6, 0.7]], [label])
        project.submit(item.id, "demo-annotator", ann, time_spent=6.0)
        n += 1
    return n


def run(ctx: Any) -> str:
    """Import the two-stage template, run its pipe with the annotator in between; one line."""
    from annoloop.demo.field_data import IMAGE_LABELS
    from annoloop.execution import LocalExecutor
    from annoloop.pipeline import service
    from annoloop.pipeline.projects import builtin_folder

    project = ctx.project
    kit = ctx.folder / "pipelines" / "two_stage"
    shutil.copytree(
        builtin_folder() / "two_stage",
        kit,
        ignore=shutil.ignore_patterns("__*"),
        dirs_exist_ok=True,
    )
    imported = service.import_pipeline(project, kit, name="demo_kit", replace=True)
    template = f"{imported.name}/{next(iter(imported.templates))}"
    truth = _annotator_labels(project)
    with LocalExecutor() as ex:
        status = service.start_pipe(
            project,
            template,
            "demo-two-stage",
            ex,
            overrides={
                "classify.labels": sorted(set(IMAGE_LABELS.values())),
                "choose.arguments.select": CHOSEN,
                "boxes.labels": CHOSEN,
            },
        )
        classify = status.element("classify").task
        labelled, junk = _classify(project, classify, truth)
        status = service.run(project, status.id, ex)
        boxes_task = status.element("boxes").task
        boxes = _draw_boxes(project, boxes_task, truth)
        status = service.run(project, status.id, ex, timeout=60)
    ctx.made["pipe"] = status.to_dict()
    exported = service.results(project, status.id, "export")
    where = exported[0]["location"] if exported else "nothing"
    n_exported = exported[0].get("data", {}).get("annotations", 0) if exported else 0
    states = ", ".join(f"{e.element} {e.state}" for e in status.elements)
    return (
        f"pipe {status.name} ({template}) {status.state}: {labelled} photos labelled, "
        f"{junk} junked, {boxes} chosen ({'/'.join(CHOSEN)}) got boxes; {n_exported} "
        f"annotations (labels and boxes) exported to {where}; "
        f"elements: {states}"
    )
