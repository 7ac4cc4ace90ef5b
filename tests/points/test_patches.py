"""Patch cropping: the same pixels as PySpacer's pad-the-whole-image method, without it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.points.patches import check_points, crop_patches, reflect_indices


def spacer_crop(image: np.ndarray, rowcols: np.ndarray, size: int) -> np.ndarray:
    """PySpacer's crop_patches (spacer/extractors/utils.py), reproduced verbatim in numpy."""
    pad = size
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = []
    for row, col in rowcols:
        upper = int(row + pad - size / 2)
        left = int(col + pad - size / 2)
        out.append(padded[upper : upper + size, left : left + size, :])
    return np.stack(out)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 50])
def test_reflect_indices_match_numpy_pad(n: int) -> None:
    axis = np.arange(n)
    for pad in (1, n, 3 * n + 5):
        want = np.pad(axis, pad, mode="reflect")
        got = reflect_indices(np.arange(-pad, n + pad), n)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("h", "w", "size"), [(300, 400, 224), (90, 120, 64), (50, 60, 224), (1, 5, 8), (33, 33, 33)]
)
def test_crop_equals_pyspacer(h: int, w: int, size: int) -> None:
    rng = np.random.default_rng(h * w + size)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # corners, edges and random interior points
    pts = np.array([[0, 0], [h - 1, w - 1], [0, w - 1], [h - 1, 0], [h // 2, w // 2]])
    pts = np.concatenate([pts, np.stack([rng.integers(0, h, 40), rng.integers(0, w, 40)], 1)])
    np.testing.assert_array_equal(crop_patches(image, pts, size), spacer_crop(image, pts, size))


def test_crop_real_photo_equals_pyspacer(photo_arrays: list[np.ndarray]) -> None:
    image = photo_arrays[1]
    h, w = image.shape[:2]
    rng = np.random.default_rng(1)
    pts = np.stack([rng.integers(0, h, 100), rng.integers(0, w, 100)], 1)
    np.testing.assert_array_equal(crop_patches(image, pts, 224), spacer_crop(image, pts, 224))


def test_crop_leaves_image_untouched_and_empty_ok() -> None:
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    before = image.copy()
    out = crop_patches(image, np.zeros((0, 2), np.int64), 16)
    assert out.shape == (0, 16, 16, 3)
    crop_patches(image, np.array([[0, 0], [19, 29]]), 16)
    np.testing.assert_array_equal(image, before)


def test_many_points_on_a_large_image_is_quick() -> None:
    image = np.zeros((3000, 4000, 3), np.uint8)
    rng = np.random.default_rng(0)
    pts = np.stack([rng.integers(0, 3000, 1000), rng.integers(0, 4000, 1000)], 1)
    t0 = time.perf_counter()
    out = crop_patches(image, pts, 224)
    assert out.shape == (1000, 224, 224, 3)
    assert time.perf_counter() - t0 < 30  # generous: only guards against a pathological path


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([(5, -1)], "point 0"),
        ([(1, 1), (10, 3)], "point 1 (row 10"),
        ([(1, 1), (2, 30)], "outside the image"),
        ([(1.5, 2)], "whole pixel"),
        ([(float("nan"), 2)], "whole pixel"),
        ([(1, 2, 3)], "(row, col) pairs"),
        ([("a", "b")], "integers"),
    ],
)
def test_bad_points_are_named(points: list, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_points(points, 10, 30, "img.jpg")
    assert message in str(err.value)
    assert "img.jpg" in str(err.value)


def test_whole_float_points_accepted() -> None:
    pts = check_points([(1.0, 2.0)], 10, 10, "x")
    assert pts.dtype == np.int64 and pts.tolist() == [[1, 2]]
