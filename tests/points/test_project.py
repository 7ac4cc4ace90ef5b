"""Points on a real project (SQLite store, files on disk): sample, label, train, classify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annoloop import store
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.points import ExtractorSpec, ImageFeatures, TrainOptions
from annoloop.points.project import (
    PointPolicy,
    classify_project,
    extract_project_features,
    sample_points,
    should_train,
    train_project_classifier,
)
from tests.points.mosaic import PHOTOS, mosaic, png_bytes

TILE = 128


@pytest.fixture()
def project(tmp_path: Path, photo_arrays: list[np.ndarray]):
    proj = store.Project.init(tmp_path / "proj")
    files, grids = [], {}
    src = tmp_path / "src"
    src.mkdir()
    for s in range(8):
        img, grid = mosaic(s, TILE, photo_arrays)
        path = src / f"m{s}.png"
        path.write_bytes(png_bytes(img))
        files.append(path)
        grids[path.name] = grid
    ids = proj.add_images(files)
    label_ids = proj.add_labels(PHOTOS)
    yield proj, ids, grids, label_ids
    proj.close()


def _label_sampled(proj, ids, label_ids, grids, images) -> None:
    """A 'human' labels every sampled point on ``images`` with its tile's photo."""
    frame = proj.annotations(kind="point", image=list(images))
    meta = proj.images(list(images)).set_index("id")
    parts = []
    for image_id, group in frame.groupby("image_id"):
        name = Path(str(meta.at[image_id, "location"])).name
        w, h = meta.at[image_id, "width"], meta.at[image_id, "height"]
        rows = np.clip((group["y"].to_numpy() * h).round().astype(int), 0, h - 1)
        cols = np.clip((group["x"].to_numpy() * w).round().astype(int), 0, w - 1)
        which = grids[name][rows // TILE, cols // TILE]
        box = np.zeros((len(group), 4))
        box[:, 0], box[:, 1] = group["x"].to_numpy(), group["y"].to_numpy()
        parts.append(
            Annotations.from_boxes(
                np.full(len(group), image_id), box, label_ids[which], kind=Kind.POINT
            )
        )
    proj.add_annotations(Annotations.concat(parts), source="human")


def test_sample_train_classify(project) -> None:
    proj, ids, grids, label_ids = project
    for method in ("random", "stratified", "grid"):
        before = len(proj.annotations(kind="point"))
        new = sample_points(proj, ids[:1], n=12, method=method, seed=1)
        assert len(new) >= 12 and len(proj.annotations(kind="point")) == before + len(new)
    sample_points(proj, ids[1:], n=40, method="stratified")
    points = proj.annotations(kind="point")
    assert (points["label_id"].isna() | (points["label_id"] < 0)).all()
    assert set(points["source"]) == {
        "model:sampler@random",
        "model:sampler@stratified",
        "model:sampler@grid",
    }

    spec = ExtractorSpec(name="dummy", patch_size=64, feature_dim=48)
    policy = PointPolicy(extractor=spec, min_images=6, epochs=6, split_mode="points",
                         split_ratios=(0.15, 0.2), options=TrainOptions(seed=0))  # fmt: skip
    go, _, n = should_train(proj, policy)
    assert not go and n == 0

    _label_sampled(proj, ids, label_ids, grids, ids[:5])
    assert not should_train(proj, policy)[0]  # 5 annotated images < 6
    _label_sampled(proj, ids, label_ids, grids, ids[5:7])
    outcome = train_project_classifier(proj, policy=policy)
    assert outcome.trained and outcome.accepted and outcome.acc > 0.5, outcome
    states = proj.model_states("points")
    assert len(states) == 1 and states["is_current"].all()
    assert states.iloc[0]["metrics"]["annotated_images"] == 7

    # features are cached per checksum + extractor
    locs = extract_project_features(proj, ids, extractor=spec)
    f = ImageFeatures.load(locs[int(ids[0])])
    assert len(f) == len(
        proj.annotations(kind="point", image=int(ids[0]))[["x", "y"]].drop_duplicates()
    )

    # no growth: no retraining, unless forced; a worse or equal model is not accepted
    again = train_project_classifier(proj, policy=policy)
    assert not again.trained and "next classifier" in again.reason
    strict = policy.model_copy(update={"min_improvement": 0.5})
    forced = train_project_classifier(proj, policy=strict, force=True)
    assert forced.trained and not forced.accepted and forced.previous_acc is not None
    states = proj.model_states("points")
    assert len(states) == 2 and states["is_current"].tolist() == [True, False]

    pred_ids = classify_project(proj, ids[7:])  # the unlabelled image
    preds = proj.predictions()
    assert len(pred_ids) == 40 and len(preds) == 40
    scores = np.stack(preds["scores"].to_numpy())
    assert scores.shape == (40, len(states.iloc[0]["label_map"]))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-4)
    assert set(preds["label_id"]) <= set(states.iloc[0]["label_map"])
    np.testing.assert_allclose(preds["confidence"], scores.max(axis=1), rtol=1e-5)
