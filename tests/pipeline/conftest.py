"""Pipeline fixtures: a project holding real photos, an in-process executor, pipeline folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from annoloop.store import Project


@pytest.fixture()
def project(tmp_path: Path, photos: list[Path]) -> Iterator[Project]:
    """A new SQLite project with the bundled colour photos (copied into its media)."""
    with Project.init(tmp_path / "proj", name="pipes") as p:
        p.add_images(photos)
        yield p


@pytest.fixture()
def image_ids(project: Project) -> np.ndarray:
    return project.images()["id"].to_numpy(np.int64)


@pytest.fixture()
def executor() -> Iterator[object]:
    """The embedded default: an in-process LocalExecutor."""
    from annoloop.execution import LocalExecutor

    with LocalExecutor() as ex:
        yield ex
