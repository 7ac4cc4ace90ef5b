"""Fixtures of the experiments tests: datasets over bundled photos and one MLflow store.

The MLflow sqlite store takes seconds to create (MLflow runs its migrations), so the session
shares one; each test uses its own experiment name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from annoloop.experiments import ExperimentDataset
from tests.experiments.data import make_coins, make_patches, make_photo_dataset


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite MLflow store shared by the session (created once)."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # creates the tables
    return uri


@pytest.fixture(scope="session")
def _patch_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("patches")
    return make_patches(root, 8, seed=0, name="train"), make_patches(root, 6, seed=1, name="test")


@pytest.fixture()
def patch_sets(_patch_sets: tuple[Path, Path], tmp_path: Path) -> tuple[ExperimentDataset, ...]:
    """Fresh copies of the train and test patch datasets (modifiers write beside them)."""
    out = []
    for src in _patch_sets:
        dst = tmp_path / "data" / src.name
        shutil.copytree(src, dst)
        out.append(ExperimentDataset.open(dst))
    return tuple(out)


@pytest.fixture()
def photo_dataset(tmp_path: Path) -> ExperimentDataset:
    """Four bundled photos (PNG, JPEG, grey PNG) with a box and a triangle each (COCO)."""
    return ExperimentDataset.open(make_photo_dataset(tmp_path / "data"))


@pytest.fixture()
def coins(tmp_path: Path) -> ExperimentDataset:
    """coins.png with its 24 coins as COCO boxes."""
    return ExperimentDataset.open(make_coins(tmp_path / "data"))
