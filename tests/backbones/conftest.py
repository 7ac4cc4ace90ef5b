"""Fixtures of the backbone tests: a memory:// folder and decoded bundled photos."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from annoloop.samples import photo_path
from annoloop.storage import Location, read_image


@pytest.fixture()
def mem_root() -> Iterator[Location]:
    """A fresh memory:// folder, removed afterwards."""
    root = Location.parse(f"memory://backbones-{uuid.uuid4().hex}")
    yield root
    if root.exists():
        root.fs.rm(root.path, recursive=True)


@pytest.fixture(scope="session")
def photo_arrays() -> list[np.ndarray]:
    """astronaut, coffee and chelsea (the cat), decoded."""
    return [read_image(photo_path(n)) for n in ("astronaut.png", "coffee.png", "chelsea.png")]
