"""Box and point conversions between layouts and units, vectorised over rows.

Box layouts (the same in any units, relative or pixels):

- ``cxcywh``: centre x, centre y, width, height (the stored form, relative)
- ``xyxy``: left, top, right, bottom
- ``xywh``: left, top, width, height (COCO)

Every function takes a (4,) box or an (n, 4) array (any leading dimensions work) and returns
float64 of the same shape. A point is (x, y); ``(row, col)`` is ``(y * height, x * width)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annoloop.errors import InvalidInput


def _boxes(b: Any, name: str = "boxes") -> np.ndarray:
    try:
        arr = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric: {exc}") from None
    if arr.ndim == 0 or arr.shape[-1] != 4:
        raise InvalidInput(f"{name} must have 4 columns, got shape {arr.shape}")
    return arr


def _points(p: Any, name: str = "points") -> np.ndarray:
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric: {exc}") from None
    if arr.ndim == 0 or arr.shape[-1] != 2:
        raise InvalidInput(f"{name} must have 2 columns, got shape {arr.shape}")
    return arr


def cxcywh_to_xyxy(b: Any) -> np.ndarray:
    """Centre x, centre y, width, height -> left, top, right, bottom."""
    b = _boxes(b)
    half = b[..., 2:] / 2.0
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(b: Any) -> np.ndarray:
    """Left, top, right, bottom -> centre x, centre y, width, height."""
    b = _boxes(b)
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2.0, b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_cxcywh(b: Any) -> np.ndarray:
    """COCO left, top, width, height -> centre x, centre y, width, height."""
    b = _boxes(b)
    return np.concatenate([b[..., :2] + b[..., 2:] / 2.0, b[..., 2:]], axis=-1)


def cxcywh_to_xywh(b: Any) -> np.ndarray:
    """Centre x, centre y, width, height -> COCO left, top, width, height."""
    b = _boxes(b)
    return np.concatenate([b[..., :2] - b[..., 2:] / 2.0, b[..., 2:]], axis=-1)


def xyxy_to_xywh(b: Any) -> np.ndarray:
    """Left, top, right, bottom -> COCO left, top, width, height."""
    b = _boxes(b)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_xyxy(b: Any) -> np.ndarray:
    """COCO left, top, width, height -> left, top, right, bottom."""
    b = _boxes(b)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def _sizes(values: Any, width: Any, height: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values as float plus width and height shaped to broadcast over the x- and y-columns."""
    try:
        arr = np.asarray(values, dtype=np.float64)
        w = np.asarray(width, dtype=np.float64)
        h = np.asarray(height, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"values, width and height must be numeric: {exc}") from None
    if arr.ndim == 0 or arr.shape[-1] not in (2, 4):
        raise InvalidInput(f"values must be (n,2) points or (n,4) boxes, got shape {arr.shape}")
    rows = arr.shape[0] if arr.ndim >= 2 else 1
    sizes = []
    for name, size in (("width", w), ("height", h)):
        if size.ndim > 1 or (size.ndim == 1 and (arr.ndim != 2 or len(size) != rows)):
            raise InvalidInput(
                f"{name} must be a scalar or one value per row ({rows} rows), got shape "
                f"{size.shape}"
            )
        # one size per row becomes a column so that it scales every x (or y) column of its row
        sizes.append(size[:, None] if size.ndim == 1 else size)
    return arr, sizes[0], sizes[1]


def to_pixels(values: Any, width: Any, height: Any) -> np.ndarray:
    """Relative (n,2) points or (n,4) boxes -> pixels; width/height scalars or one per row."""
    arr, w, h = _sizes(values, width, height)
    out = arr.copy()
    out[..., 0::2] *= w
    out[..., 1::2] *= h
    return out


def to_relative(values: Any, width: Any, height: Any) -> np.ndarray:
    """Pixel (n,2) points or (n,4) boxes -> relative; width/height scalars or one per row."""
    arr, w, h = _sizes(values, width, height)
    bad = ~(np.isfinite(w) & (w > 0)) | ~(np.isfinite(h) & (h > 0))
    if np.any(bad):
        row = int(np.flatnonzero(np.atleast_1d(bad).reshape(-1))[0])
        raise InvalidInput(f"image width and height must be positive and finite (row {row})")
    out = arr.copy()
    out[..., 0::2] /= w
    out[..., 1::2] /= h
    return out


def points_to_rowcol(xy: Any, width: Any, height: Any) -> np.ndarray:
    """Relative (n,2) x, y -> (n,2) float pixel (row, col) = (y * height, x * width)."""
    pix = to_pixels(_points(xy, "xy"), width, height)
    return pix[..., ::-1].copy()


def rowcol_to_points(rowcol: Any, width: Any, height: Any) -> np.ndarray:
    """Pixel (n,2) (row, col) -> relative (n,2) x, y = (col / width, row / height)."""
    rc = _points(rowcol, "rowcol")
    return to_relative(rc[..., ::-1], width, height)


def box_iou(a: Any, b: Any) -> np.ndarray:
    """Intersection over union of (n,4) and (m,4) xyxy boxes -> (n,m); 0 where both are empty."""
    a = _boxes(a, "a").reshape(-1, 4)
    b = _boxes(b, "b").reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou
