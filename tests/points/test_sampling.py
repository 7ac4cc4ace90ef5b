"""CoralNet's point-sampling methods."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.points.sampling import sample_rowcols


@pytest.mark.parametrize("method", ["random", "stratified", "grid"])
def test_inside_and_reproducible(method: str) -> None:
    a = sample_rowcols(1500, 2000, 200, method, seed=3)
    b = sample_rowcols(1500, 2000, 200, method, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and a.shape[1] == 2
    assert (a[:, 0] >= 0).all() and (a[:, 0] < 1500).all()
    assert (a[:, 1] >= 0).all() and (a[:, 1] < 2000).all()
    assert len(a) == 200 if method != "grid" else 200 <= len(a) <= 230


def test_stratified_fills_every_cell() -> None:
    pts = sample_rowcols(100, 200, 8, "stratified", cell_rows=2, cell_cols=4)
    cells = (pts[:, 0] // 50) * 4 + pts[:, 1] // 50
    assert sorted(cells.tolist()) == list(range(8))
    trimmed = sample_rowcols(100, 200, 10, "stratified", cell_rows=2, cell_cols=2)
    assert len(trimmed) == 10
    per_cell = np.bincount((trimmed[:, 0] // 50) * 2 + trimmed[:, 1] // 100, minlength=4)
    assert per_cell.max() - per_cell.min() <= 1


def test_grid_is_regular() -> None:
    pts = sample_rowcols(100, 100, 4, "grid")
    assert sorted(map(tuple, pts.tolist())) == [(25, 25), (25, 75), (75, 25), (75, 75)]


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, 10, 5, "random"), "positive"), ((10, 10, 0, "random"), "at least 1"),
     ((10, 10, 5, "hexagonal"), "unknown sampling")],
)  # fmt: skip
def test_bad_arguments(args: tuple, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        sample_rowcols(*args)


def test_tiny_image_many_points() -> None:
    pts = sample_rowcols(2, 3, 1000, "stratified")
    assert len(pts) == 1000 and pts[:, 0].max() < 2 and pts[:, 1].max() < 3
