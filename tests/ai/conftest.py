"""Fixtures of the ai tests: digits and photo mosaics written once, small projects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from annoloop.ai.base import TrainingData
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from tests.ai.datasets import write_digits, write_point_mosaics


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> TrainingData:
    """scikit-learn's 1797 labelled digits as 8 x 8 PNG files."""
    return write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def mosaics(tmp_path_factory: pytest.TempPathFactory) -> TrainingData:
    """12 photo mosaics (192 x 288) with 30 labelled points each (6 classes)."""
    return write_point_mosaics(tmp_path_factory.mktemp("mosaics"), 12, 30, tile=96)


def make_digits_project(folder: Path, digits: TrainingData, n: int, labelled: int) -> object:
    """A project with ``n`` digit images, the first ``labelled`` of them labelled."""
    from annoloop.store import Project

    project = Project.init(folder)
    ids = project.add_images([im.location for im in digits.images[:n]], copy=False)
    label_ids = project.add_labels(digits.classes)
    truth = digits.annotations.label[:labelled]
    ann = Annotations.from_boxes(
        ids[:labelled], np.full((labelled, 4), np.nan), label_ids[truth], kind=Kind.LABEL
    )
    project.add_annotations(ann)
    return project


@pytest.fixture()
def digits_project(tmp_path: Path, digits: TrainingData) -> Iterator[object]:
    """A fresh project: 240 digit images, 160 of them labelled."""
    project = make_digits_project(tmp_path / "project", digits, 240, 160)
    yield project
    project.close()
