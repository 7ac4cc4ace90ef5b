"""The demo's detect step on a demo-like project (the bundled photos imported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from annoloop.demo import DemoContext, _step_project


@pytest.mark.slow
def test_demo_step_detects_faces_and_tracks(tmp_path: Path) -> None:
    from annoloop.demo import step_detect

    ctx = DemoContext(folder=tmp_path / "demo")
    ctx.folder.mkdir()
    _step_project(ctx)
    try:
        line = step_detect.run(ctx)
    finally:
        ctx.project.close()
    assert "astronaut.png: 1" in line and "grace_hopper.jpg: 1" in line
    assert "linked into 1 track(s)" in line
    summary = ctx.made["detect"]
    assert summary["processed"] == 4 and not summary["failed"]
    assert (ctx.folder / "detections" / "faces.coco.json").exists()
