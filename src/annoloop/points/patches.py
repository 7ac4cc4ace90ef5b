"""Square patches around ``(row, col)`` points, cropped as PySpacer crops them.

PySpacer (``spacer/extractors/utils.py``) pads the *whole* image by the patch size with
``np.pad(mode="reflect")`` (mirror without repeating the edge pixel) and slices
``crop_size`` pixels starting ``crop_size / 2`` (rounded as ``int()``) above and left of the
point. Here the same pixels come from one fancy-indexing gather per batch: row and column
indices are mapped through the reflection, so nothing but the patches is ever allocated, the
image is never padded or copied, and interior patches are plain slices.
"""

from __future__ import annotations

import numpy as np

from annoloop.errors import InvalidInput


def reflect_indices(idx: np.ndarray, n: int) -> np.ndarray:
    """Map any integer indices into ``0..n-1`` as ``np.pad(mode="reflect")`` does.

    Reflection without repeating the edge, repeated as often as needed (numpy pads wider
    than the axis by reflecting again); an axis of length 1 repeats its only element.
    """
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.mod(idx, period)
    return np.where(m >= n, period - m, m)


def patch_starts(points: np.ndarray, size: int) -> np.ndarray:
    """Top-left corners of the patches: ``point - ceil(size / 2)`` (PySpacer's rounding)."""
    return points - (size - size // 2)


def check_points(rowcols: object, height: int, width: int, where: str) -> np.ndarray:
    """``(n, 2)`` int64 array of (row, col) inside a ``height`` x ``width`` image.

    Raises InvalidInput naming ``where`` and the first bad point's index.
    """
    arr = np.asarray(rowcols)
    if arr.size == 0:
        return np.zeros((0, 2), np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInput(f"points must be (row, col) pairs, got shape {arr.shape}", where)
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1) | (arr != np.round(arr)).any(axis=1))
        if bad.size:
            raise InvalidInput(
                f"point {int(bad[0])} is {arr[bad[0]].tolist()}: rows and columns must be "
                "whole pixel numbers",
                where,
            )
    elif arr.dtype.kind not in "iu":
        raise InvalidInput(f"points must be integers, got {arr.dtype}", where)
    pts = arr.astype(np.int64)
    outside = (pts[:, 0] < 0) | (pts[:, 0] >= height) | (pts[:, 1] < 0) | (pts[:, 1] >= width)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InvalidInput(
            f"point {i} (row {pts[i, 0]}, col {pts[i, 1]}) is outside the image "
            f"(rows 0..{height - 1}, cols 0..{width - 1}); {int(outside.sum())} point(s) outside",
            where,
        )
    return pts


def crop_patches(image: np.ndarray, points: np.ndarray, size: int = 224) -> np.ndarray:
    """``(n, size, size, C)`` patches of ``image`` (H x W x C) centred at ``points`` (n, 2).

    Pixels outside the image are reflected as in PySpacer. Patches wholly inside the image are
    copied by slicing; only those that touch a border go through the reflected-index gather.
    Points are assumed checked (:func:`check_points`).
    """
    h, w = image.shape[:2]
    pts = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    out = np.empty((len(pts), size, size, *image.shape[2:]), dtype=image.dtype)
    if len(pts) == 0:
        return out
    starts = patch_starts(pts, size)
    inside = (
        (starts[:, 0] >= 0)
        & (starts[:, 1] >= 0)
        & (starts[:, 0] + size <= h)
        & (starts[:, 1] + size <= w)
    )
    # interior patches: one slice copy each (no index arrays needed)
    for i in np.flatnonzero(inside):
        r, c = starts[i]
        out[i] = image[r : r + size, c : c + size]
    border = np.flatnonzero(~inside)
    if border.size:
        offsets = np.arange(size)
        rows = reflect_indices(starts[border, 0, None] + offsets, h)  # (k, size)
        cols = reflect_indices(starts[border, 1, None] + offsets, w)
        out[border] = image[rows[:, :, None], cols[:, None, :]]
    return out
