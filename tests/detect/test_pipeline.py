"""The detection workflow as a pipeline template (src/annoloop/pipeline/templates/detect.yaml)."""

from __future__ import annotations

from pathlib import Path

import annoloop.detect as detect
from annoloop.samples import photo_path
from annoloop.store import Project


def test_detect_template_runs_and_stamps(tmp_path: Path) -> None:
    from annoloop.pipeline import service
    from annoloop.pipeline.projects import builtin_folder

    template = builtin_folder() / "detect.yaml"
    project = Project.init(tmp_path / "proj")
    project.add_images([photo_path("astronaut.png"), photo_path("coffee.png")])
    status = service.start_pipe(
        project, template, "faces", "local",
        overrides={"detect.arguments.device": "cpu", "detect.arguments.img_max_side": 256},
        wait=True, timeout=300,
    )  # fmt: skip
    assert not status.failed, status
    preds = project.predictions()
    assert len(preds) == 1 and set(preds["label"]) == {"face"}
    metas = project.images()["meta"]
    assert sum(isinstance(m, dict) and detect.STAMP_KEY in m for m in metas) == 2
