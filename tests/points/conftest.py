"""Fixtures of the points tests: mosaics of bundled photos in memory:// storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from annoloop.points.extractors import clear_extractor_cache
from annoloop.storage import Location
from tests.points.mosaic import _photos, mosaic, png_bytes, points_in


def _fresh_root() -> Iterator[Location]:
    root = Location.parse(f"memory://points-{uuid.uuid4().hex}")
    yield root
    if root.exists():
        root.fs.rm(root.path, recursive=True)


@pytest.fixture()
def mem_root() -> Iterator[Location]:
    """A fresh memory:// folder, removed afterwards."""
    yield from _fresh_root()


@pytest.fixture(scope="module")
def module_root() -> Iterator[Location]:
    """A memory:// folder shared by the tests of one module."""
    yield from _fresh_root()


@pytest.fixture(scope="session")
def photo_arrays() -> list[np.ndarray]:
    """The six mosaic source photos, decoded once."""
    return _photos()


@pytest.fixture(scope="module")
def mosaic_set(module_root: Location, photo_arrays: list[np.ndarray]) -> dict:
    """12 mosaics (256 x 384) stored as PNG under ``module_root/images``, 30 labelled points
    each (shared by a module's tests: write elsewhere under the root).

    Returns ``{"images": [url, ...], "points": [(n, 2) array, ...], "labels": [[name], ...]}``.
    """
    images, points, labels = [], [], []
    for s in range(12):
        img, grid = mosaic(s, 128, photo_arrays)
        loc = module_root.join("images", f"m{s}.png")
        loc.write_bytes(png_bytes(img))
        rc, names = points_in(grid, 30, s, 128)
        images.append(loc.url)
        points.append(rc)
        labels.append(names)
    return {"images": images, "points": points, "labels": labels, "root": module_root}


@pytest.fixture()
def onnx_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "onnx-cache"
    monkeypatch.setenv("ANNOLOOP_POINTS_ONNX_CACHE", str(folder))
    clear_extractor_cache()
    yield folder
    clear_extractor_cache()
