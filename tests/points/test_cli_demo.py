"""``annoloop points ...`` on a real project folder, and the demo's points step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from annoloop.cli.main import app
from annoloop.demo import DemoContext
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.points.classifiers import load_classifier
from annoloop.storage import Location
from annoloop.store import Project
from tests.points.mosaic import PHOTOS, mosaic, png_bytes

runner = CliRunner()
TILE = 128


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result.output


@pytest.fixture()
def folder(tmp_path: Path, photo_arrays: list[np.ndarray]) -> tuple[Path, dict]:
    """A project of 6 mosaics (files on disk) made through the CLI."""
    src = tmp_path / "src"
    src.mkdir()
    grids = {}
    for s in range(6):
        img, grid = mosaic(s, TILE, photo_arrays)
        (src / f"m{s}.png").write_bytes(png_bytes(img))
        grids[f"m{s}.png"] = grid
    proj = tmp_path / "proj"
    cli("init", str(proj))
    cli("import", "images", str(src), "-p", str(proj))
    return proj, grids


def _label_points(folder: Path, grids: dict, images: list[int]) -> None:
    """A 'human' labels every sampled point of ``images`` with its tile's photo."""
    with Project.open(folder) as proj:
        label_ids = proj.label_ids(list(PHOTOS), create=True)
        meta = proj.images().set_index("id")
        frame = proj.annotations(kind="point", image=images)
        parts = []
        for image_id, group in frame.groupby("image_id"):
            w, h = int(meta.at[image_id, "width"]), int(meta.at[image_id, "height"])
            rows = np.clip((group["y"].to_numpy() * h).round().astype(int), 0, h - 1)
            cols = np.clip((group["x"].to_numpy() * w).round().astype(int), 0, w - 1)
            grid = grids[Path(str(meta.at[image_id, "location"])).name]
            box = np.zeros((len(group), 4))
            box[:, 0], box[:, 1] = group["x"].to_numpy(), group["y"].to_numpy()
            parts.append(
                Annotations.from_boxes(
                    np.full(len(group), image_id),
                    box,
                    label_ids[grid[rows // TILE, cols // TILE]],
                    kind=Kind.POINT,
                )
            )
        proj.add_annotations(Annotations.concat(parts), source="human")


def test_points_cli_loop(folder: tuple[Path, dict]) -> None:
    proj, grids = folder
    p = ("-p", str(proj))
    out = json.loads(cli("points", "sample", "-n", "30", "--method", "stratified", "--json", *p))
    assert out == {"points": 180, "images": 6, "method": "stratified"}
    assert "grid" in cli("points", "sample", "-n", "4", "--method", "grid", "-i", "1", *p)

    # nothing labelled yet: the policy says no, and classify has no model to use
    status = json.loads(cli("points", "status", "--json", *p))
    assert status["annotated_images"] == 0 and not status["train_now"]
    assert "not trained" in cli("points", "train", "--extractor", "dummy", *p)
    assert "no current state" in cli("points", "classify", *p, code=4)

    _label_points(proj, grids, [1, 2, 3, 4])
    status = json.loads(cli("points", "status", "--min-images", "4", "--json", *p))
    assert status["train_now"] and status["annotated_images"] == 4

    extracted = json.loads(
        cli("points", "extract", "--extractor", "dummy", "--patch-size", "64", "--json", *p)
    )
    locs = [Location.parse(u) for u in extracted["features"].values()]
    assert extracted["images"] == 6 and all(loc.exists() for loc in locs)

    args = ["--extractor", "dummy", "--patch-size", "64", "--min-images", "4", "--clf", "LR"]
    trained = json.loads(cli("points", "train", *args, "--json", *p))
    assert trained["trained"] and trained["accepted"] and trained["acc"] > 0.3, trained  # 6 classes
    assert 0.0 <= trained["ece"] <= 1.0

    classified = json.loads(cli("points", "classify", "-i", "5", "-i", "6", "--json", *p))
    assert classified == {"predictions": 60}
    text = cli("points", "status", "--min-images", "4", *p)
    assert "classifiers of 'points'" in text and "True" in text

    # bad input: an unknown method, an unknown image, a bad classifier type
    assert "unknown sampling method" in cli("points", "sample", "--method", "hex", *p, code=3)
    assert "no images with ids" in cli("points", "sample", "-i", "99", *p, code=4)
    bad_clf = cli("points", "train", "--clf", "SVM", *p, code=3)
    assert "--clf: 'SVM' is not one of MLP, LR" in bad_clf
    assert "'fp8' is not one of" in cli("points", "train", "--precision", "fp8", *p, code=3)

    # the MLP in float32 (the first layer's precision is recorded with the classifier)
    mlp = json.loads(cli("points", "train", *args[:-1], "MLP", "--precision", "float32",
                         "--force", "--json", *p))  # fmt: skip
    assert mlp["trained"], mlp
    stored = sorted((proj / "models" / "points").glob("points-v*.safetensors"))[-1]
    assert load_classifier(str(stored)).meta["precision"] == "float32"


def test_demo_points_step(tmp_path: Path) -> None:
    """The demo step on the demo's own project (dummy extractor to keep the test short)."""
    from annoloop.demo import prepare_folder
    from annoloop.demo.step_points import run

    ctx = DemoContext(folder=tmp_path / "demo")
    prepare_folder(ctx.folder, fresh=True)
    from annoloop.samples import COLOUR_PHOTOS, photo_paths

    ctx.project = Project.init(ctx.folder, name="annoloop demo")
    try:
        ctx.project.add_images(photo_paths(list(COLOUR_PHOTOS)), copy=True)
        summary = run(ctx, points_per_image=12, extractor="dummy")
        made = ctx.made["points"]
        assert "validation accuracy" in summary and "ECE" in summary
        assert made["predictions"] == 12 * len(COLOUR_PHOTOS)
        assert made["unlabelled_points"] == 4 * len(COLOUR_PHOTOS)
        assert 0.0 <= made["ece"] <= 1.0 and made["val_acc"] > 0.3
        assert len(ctx.project.model_states("points")) == 1
    finally:
        ctx.project.close()
