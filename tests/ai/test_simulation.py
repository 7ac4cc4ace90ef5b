"""Active-learning simulation on scikit-learn's digits: curves, summary, PNG and CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from annoloop.ai import service
from annoloop.ai.base import TrainingData
from annoloop.errors import InvalidInput
from annoloop.store import Project

PIXELS = {"backbone": "pixels", "image_size": 8, "epochs": 40}


def test_simulation_on_digits_beats_random(digits: TrainingData, tmp_path: Path) -> None:
    data = digits.subset(digits.image_ids[:900])
    seen: list[int] = []
    result = service.simulate_al(
        data,
        "image-classifier",
        PIXELS,
        strategies=("random", "margin", "entropy+kcenter"),
        initial=20,
        batch=20,
        rounds=6,
        out_dir=tmp_path / "sim",
        progress=lambda d, t=None, m="": seen.append(d),
    )
    curves = result.curves
    assert set(curves["strategy"]) == {"random", "margin", "entropy+kcenter"}
    assert curves.groupby("strategy")["n_labels"].max().eq(140).all()
    assert seen[-1] == 3 * 7
    summary = result.summary().set_index("strategy")
    # uncertainty sampling ends better than random on the same budget
    assert summary.loc["margin", "final_accuracy"] >= summary.loc["random", "final_accuracy"]
    assert summary.loc["margin", "labels_to_target"] <= 140
    for name in ("al_curves.csv", "al_summary.csv", "al_curves.png"):
        assert (tmp_path / "sim" / name).stat().st_size > 100
    written = pd.read_csv(tmp_path / "sim" / "al_curves.csv")
    assert len(written) == 21 and "accuracy" in written.columns
    assert (tmp_path / "sim" / "al_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_simulation_from_a_project(digits_project: Project, tmp_path: Path) -> None:
    result = service.simulate_al(
        digits_project,
        "tests.ai.toy_models:NearestCentroid",
        strategies=("random", "least-confidence", "kcenter"),
        initial=10,
        batch=10,
        rounds=3,
        repeats=2,
    )
    assert result.curves["repeat"].nunique() == 2
    assert len(result.mean_curves()) == 3 * 4


def test_simulation_refuses_impossible_plans(digits: TrainingData) -> None:
    small = digits.subset(digits.image_ids[:50])
    with pytest.raises(InvalidInput, match="fewer than initial"):
        service.simulate_al(small, "image-classifier", PIXELS, initial=20, batch=20, rounds=5)
    with pytest.raises(InvalidInput, match="test_fraction"):
        service.simulate_al(small, "image-classifier", PIXELS, test_fraction=1.5)
    with pytest.raises(InvalidInput, match="initial and batch"):
        service.simulate_al(small, "image-classifier", PIXELS, batch=0)
    with pytest.raises(InvalidInput, match="unknown strategy"):
        service.simulate_al(
            small, "image-classifier", PIXELS, strategies=("margin+magic",), initial=5,
            batch=5, rounds=1,
        )  # fmt: skip


def test_simulation_with_point_labels(mosaics: TrainingData) -> None:
    result = service.simulate_al(
        mosaics,
        "point-classifier",
        {"extractor": "dummy", "patch_size": 16, "clf_type": "LR", "ref_fraction": 0},
        strategies=("random", "entropy", "margin+kcenter"),
        initial=2,
        batch=2,
        rounds=2,
        test_fraction=0.25,
    )
    curves = result.curves
    assert result.metric == "accuracy"
    # labels are counted in points: 30 per mosaic
    assert sorted(set(curves["n_labels"])) == [60, 120, 180]
    assert curves["accuracy"].between(0, 1).all()


def test_simulation_by_single_points(mosaics: TrainingData) -> None:
    options = {"extractor": "dummy", "patch_size": 16, "clf_type": "LR", "ref_fraction": 0}
    result = service.simulate_al(
        mosaics,
        "point-classifier",
        options,
        strategies=("random", "margin"),
        initial=12,
        batch=12,
        rounds=3,
        test_fraction=0.25,
        unit="annotation",
    )
    assert sorted(set(result.curves["n_labels"])) == [12, 24, 36, 48]
    assert result.curves["accuracy"].between(0, 1).all()
    with pytest.raises(InvalidInput, match="k-center"):
        service.simulate_al(
            mosaics, "point-classifier", options, strategies=("kcenter",), unit="annotation"
        )
    with pytest.raises(InvalidInput, match="predicts label"):
        service.simulate_al(mosaics, "image-classifier", PIXELS, unit="annotation")
    with pytest.raises(InvalidInput, match="unit must be"):
        service.simulate_al(mosaics, "point-classifier", options, unit="pixel")
