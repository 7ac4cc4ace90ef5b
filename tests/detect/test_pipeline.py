"""The detection workflow as a pipeline template in three stages (setup -> worker ->
teardown, src/annoloop/pipeline/templates/detect.yaml), in this process and on a Dask
LocalCluster, with a truncated video among the media."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import annoloop.detect as detect
from annoloop.samples import photo_path
from annoloop.store import Project

STAGES = ("setup", "worker", "teardown")
OVERRIDES = {
    "setup.arguments.device": "cpu",
    "setup.arguments.img_max_side": 256,
    "setup.arguments.frame_stride": 4,
}


def _template() -> Path:
    from annoloop.pipeline.projects import builtin_folder

    return builtin_folder() / "detect.yaml"


def _project(tmp_path: Path, pan_video: Path, broken_video: Path) -> Project:
    """The astronaut and the coffee photo, the pan video and the truncated one as media."""
    project = Project.init(tmp_path / "proj")
    project.add_images([photo_path("astronaut.png"), photo_path("coffee.png")])
    for video in (pan_video, broken_video):
        project.add_image_records([str(video)], [192], [144], video_locations=[str(video)])
    return project


def _start(project: Project, name: str, executor: Any) -> Any:
    from annoloop.pipeline import service

    return service.start_pipe(project, _template(), name, executor, overrides=OVERRIDES,
                              wait=True, timeout=600)  # fmt: skip


def _logs(project: Project, pipe: str, element: str) -> list[tuple[str, str]]:
    from annoloop.pipeline import service

    return [(r.level, r.message) for r in service.logs(project, pipe, element=element)]


def _check_first_run(project: Project, status: Any) -> None:
    """Three finished stages; faces stored for the photo and the video; the truncated video
    reported by teardown (and the worker) and left unstamped."""
    assert [status.element(e).state for e in STAGES] == ["finished"] * 3, status
    preds = project.predictions()
    images = project.images()
    names = dict(zip(images["id"].tolist(), images["location"].astype(str).tolist(), strict=True))
    on = sorted(Path(names[int(i)].split("#")[0]).name for i in preds["image_id"])
    # one face in the astronaut photo, one on each of the video frames 0, 4 and 8
    assert on == ["astronaut.png"] + ["astronaut_pan.mp4"] * 3
    assert set(preds["label"]) == {"face"}
    stamped = {Path(names[int(i)]).name for i, m in zip(images["id"], images["meta"], strict=True)
               if isinstance(m, dict) and detect.STAMP_KEY in m}  # fmt: skip
    assert stamped == {"astronaut.png", "coffee.png", "astronaut_pan.mp4"}
    frames = images[images["frame"].notna()]
    assert all(m["track_ids"] == [0] for m in frames["meta"])  # one track across the frames
    teardown = _logs(project, status.name, "teardown")
    failures = [m for level, m in teardown if level == "WARNING"]
    assert len(failures) == 1 and "broken.mp4" in failures[0]
    assert any("3 processed, 0 skipped, 1 failed, 4 boxes" in m for _, m in teardown)
    assert any(
        "failed" in m and "broken.mp4" in m for _, m in _logs(project, status.name, "worker")
    )
    setup = _logs(project, status.name, "setup")
    assert any("4 media to process, 0 already processed" in m for _, m in setup)


def _check_rerun(project: Project, status: Any, boxes: int) -> None:
    """Stamped media skipped; the broken video tried (and reported) again; nothing new."""
    assert [status.element(e).state for e in STAGES] == ["finished"] * 3, status
    setup = _logs(project, status.name, "setup")
    assert any("1 media to process, 3 already processed" in m for _, m in setup)
    teardown = _logs(project, status.name, "teardown")
    assert any("0 processed, 3 skipped, 1 failed" in m for _, m in teardown)
    assert len(project.predictions()) == boxes


def test_three_stages_run_locally_report_a_broken_video_and_skip_on_rerun(
    tmp_path: Path, pan_video: Path, broken_video: Path
) -> None:
    project = _project(tmp_path, pan_video, broken_video)
    status = _start(project, "faces", "local")
    _check_first_run(project, status)
    # the stages' files in the pipe folder: the plan, one result per media; teardown's CSV
    pipe_folder = Path(str(project.runs.local_path())) / "pipes" / f"{status.id}-faces"
    plan = json.loads((pipe_folder / "detect" / "0" / "plan.json").read_text())
    assert plan["spec"]["name"] == "mtcnn" and len(plan["items"]) == 4
    assert len(list((pipe_folder / "detect" / "0" / "results").iterdir())) == 4
    rows = (pipe_folder / "teardown" / "detections.csv").read_text().splitlines()
    assert rows[0].endswith("Species,Confidence") and len(rows) == 5
    # the worker stage run again (as after a lost worker) keeps the results it has and
    # processes the media without one; teardown run again writes nothing twice
    from annoloop.pipeline import service

    (pipe_folder / "detect" / "0" / "results" / "00001.json").unlink()  # coffee.png
    for stage in ("worker", "teardown"):
        result = service.debug_element(project, "faces", stage, commit=True)
        assert result.ok, result.error
    worker = [m for _, m in _logs(project, "faces", "worker")]
    assert "3 media have results from an earlier run" in worker
    assert "1 media processed, 0 failed, 0 boxes" in worker
    teardown = [m for _, m in _logs(project, "faces", "teardown")]
    assert any("0 processed, 3 skipped, 1 failed, 0 boxes, 0 predictions" in m for m in teardown)
    assert len(project.predictions()) == 4
    _check_rerun(project, _start(project, "faces-again", "local"), 4)


@pytest.mark.slow
def test_three_stages_on_a_dask_local_cluster(
    tmp_path: Path, pan_video: Path, broken_video: Path
) -> None:
    """The engine runs each stage as a job on the cluster; the worker stage sends one task
    per media to the same cluster from its worker."""
    from annoloop.execution import DaskExecutor

    project = _project(tmp_path, pan_video, broken_video)
    with DaskExecutor(n_workers=2) as ex:
        status = _start(project, "faces", ex)
        _check_first_run(project, status)
        worker = _logs(project, "faces", "worker")
        assert any("4 media as tasks on the Dask cluster" in m for _, m in worker), worker
        _check_rerun(project, _start(project, "faces-again", ex), 4)
        # a detector on CUDA sends its media to GPU workers: this cluster has none
        from annoloop.pipeline import service

        status = service.start_pipe(
            project, _template(), "on-gpu", ex, wait=True, timeout=300,
            overrides={**OVERRIDES, "setup.arguments.device": "cuda"},
        )  # fmt: skip
        worker = status.element("worker")
        assert worker.state == "failed" and "needs a GPU but no worker offers one" in worker.error
        # media tasks go to the worker environments the worker stage names
        status = service.start_pipe(
            project, _template(), "on-env", ex, wait=True, timeout=300,
            overrides={**OVERRIDES, "setup.arguments.force": True,
                       "worker.arguments.envs": ["detect-gpu"]},
        )  # fmt: skip
        worker = status.element("worker")
        assert worker.state == "failed" and "['detect-gpu'] but no worker" in worker.error


def test_the_one_element_script_still_runs(tmp_path: Path) -> None:
    """DetectScript (setup, worker and teardown in one element) for templates written
    before the split."""
    from annoloop.pipeline import service
    from tests.pipeline.helpers import write_pipeline

    folder = write_pipeline(tmp_path / "one", {"pipe.yaml": """
        name: one
        elements:
          - {id: media, type: datasource, images: all}
          - id: detect
            type: script
            script: annoloop.detect.pipe_script:DetectScript
            inputs: [media]
            arguments: {device: cpu, img_max_side: 256, keep_threshold: 0.9}
    """})  # fmt: skip
    project = Project.init(tmp_path / "proj")
    project.add_images([photo_path("astronaut.png"), photo_path("coffee.png")])
    status = service.start_pipe(project, folder / "pipe.yaml", "one", "local", wait=True,
                                timeout=300)  # fmt: skip
    assert status.element("detect").state == "finished", status
    assert len(project.predictions()) == 1
    logs = [m for _, m in _logs(project, "one", "detect")]
    assert any("2 processed, 0 skipped, 0 failed, 1 boxes" in m for m in logs), logs


def test_worker_and_teardown_without_a_plan_fail_clearly(tmp_path: Path) -> None:
    from annoloop.pipeline import service
    from tests.pipeline.helpers import write_pipeline

    folder = write_pipeline(tmp_path / "lost", {"pipe.yaml": """
        name: lost
        elements:
          - {id: media, type: datasource, images: all}
          - {id: worker, type: script, script: "annoloop.detect.pipe_script:DetectWorker",
             inputs: [media]}
    """})  # fmt: skip
    project = Project.init(tmp_path / "proj")
    status = service.start_pipe(project, folder / "pipe.yaml", "lost", "local", wait=True,
                                timeout=120)  # fmt: skip
    worker = status.element("worker")
    assert worker.state == "failed" and "setup stage" in (worker.error or "")
