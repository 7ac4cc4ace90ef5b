"""The pipeline step of ``annoloop demo``: the two-stage template runs to its end on the photos."""

from __future__ import annotations

import json
from pathlib import Path

from annoloop.demo import DemoContext, _step_project
from annoloop.demo.step_pipeline import CHOSEN, run


def test_the_demo_step_finishes_the_two_stage_pipe(tmp_path: Path) -> None:
    ctx = DemoContext(folder=tmp_path / "demo")
    ctx.folder.mkdir()
    _step_project(ctx)
    try:
        summary = run(ctx)
        pipe = ctx.made["pipe"]
        assert pipe["state"] == "finished"
        assert {e["state"] for e in pipe["elements"]} == {"finished"}
        n = len(ctx.project.images())
        classify = next(e for e in pipe["elements"] if e["element"] == "classify")
        assert classify["items"] == {"open": 0, "locked": 0, "done": n - 1, "junk": 1}  # coins
        boxes = ctx.project.annotations(task="demo-two-stage/Boxes")
        assert set(boxes["label"]) == set(CHOSEN) and len(boxes) == 3  # astronaut, hopper, cat
        exported = ctx.folder / "runs" / "pipes" / "1-demo-two-stage" / "export" / "boxes.json"
        doc = json.loads(exported.read_text())
        # the export holds what both upstream tasks made: image labels and boxes
        kinds = [("bbox" in a) and bool(a["bbox"]) for a in doc["annotations"]]
        assert len(doc["annotations"]) == (n - 1) + 3 and sum(kinds) == 3
        assert "finished" in summary and "3 chosen" in summary and "1 junked" in summary
    finally:
        ctx.project.close()
