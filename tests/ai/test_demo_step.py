"""The ``models`` demo step on the demo project (bundled photos, imported COCO labels)."""

from __future__ import annotations

from pathlib import Path

from annoloop.demo import STEPS, DemoContext, step_models


def test_demo_step_trains_predicts_and_ranks(tmp_path: Path) -> None:
    ctx = DemoContext(folder=tmp_path / "demo")
    ctx.folder.mkdir()
    steps = dict(STEPS)
    try:
        steps["project"](ctx)
        steps["import"](ctx)
        summary = step_models.run(ctx)
        assert "trained on 10 labelled photos" in summary
        assert "11 predictions" in summary
        # the unlabelled coins photo is what the classifier is least sure of
        assert ctx.made["ranking"][0] == "coins.png"
        assert "first work item handed out: coins.png" in summary
        states = ctx.project.model_states("image-classifier")
        assert states["is_current"].tolist() == [True]
        items = ctx.project.work_items("image labels")
        assert items["priority"].notna().all() and len(items) == 11
    finally:
        if ctx.project is not None:
            ctx.project.close()
