"""Checks on an :class:`Annotations` struct before it is stored or exported, and clipping.

Box and point checks are vectorised; only rows with a shape (line, polygon, mask) are visited
one by one, and the walk stops at the first bad row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import rle_counts
from annoloop.geometry.polygons import as_line, as_shape

_SHAPE_KINDS = (int(Kind.LINE), int(Kind.POLYGON), int(Kind.MASK))


def _per_row(values: Any, n: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be numbers, one per row or one for all") from None
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise InvalidInput(f"{name} has shape {arr.shape}, expected a scalar or ({n},)")
    return arr


def _kind_name(code: int) -> str:
    return Kind(code).label if code in Kind._value2member_map_ else f"kind code {code}"


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def validate_annotations(
    ann: Annotations,
    widths: Any,
    heights: Any,
    *,
    tolerance: float = 0.01,
    where: str = "",
) -> None:
    """Raise InvalidInput naming the first bad row (index, image, kind, value), else None.

    Checks: unknown kind codes; NaN or infinite geometry; boxes and points outside
    ``[-tolerance, 1 + tolerance]``; boxes with a non-positive width or height; polygon rings
    with fewer than 3 points; lines with fewer than 2 points; masks whose RLE is malformed or
    whose size differs from the image size. ``widths`` / ``heights`` are one value per row or
    a scalar (``None`` skips the mask size check). The exception carries the row as ``.row``.
    """
    n = len(ann)
    if n == 0:
        return
    w = _per_row(widths, n, "widths")
    h = _per_row(heights, n, "heights")
    kind = ann.kind.astype(np.int64)
    box = ann.box
    lo, hi = -tolerance, 1.0 + tolerance
    found: list[tuple[int, str]] = []

    def check(mask: np.ndarray, describe: Any) -> None:
        i = _first(mask)
        if i is not None:
            found.append((i, describe(i)))

    known = (kind >= 0) & (kind <= int(max(Kind)))
    check(~known, lambda i: f"unknown shape kind code {kind[i]}")
    geometric = known & (kind != int(Kind.LABEL))
    finite = np.isfinite(box).all(axis=1)
    check(geometric & ~finite, lambda i: f"geometry is not finite: box {box[i].tolist()}")

    is_box = (kind == int(Kind.BBOX)) & finite
    xyxy = cxcywh_to_xyxy(box)
    outside = ((xyxy < lo) | (xyxy > hi)).any(axis=1)
    check(
        is_box & outside,
        lambda i: f"box (x1, y1, x2, y2) {xyxy[i].tolist()} is outside [{lo}, {hi}]",
    )
    check(
        is_box & ((box[:, 2] <= 0) | (box[:, 3] <= 0)),
        lambda i: f"box width and height must be positive, got {box[i, 2:].tolist()}",
    )
    is_point = (kind == int(Kind.POINT)) & finite
    check(
        is_point & ((box[:, :2] < lo) | (box[:, :2] > hi)).any(axis=1),
        lambda i: f"point (x, y) {box[i, :2].tolist()} is outside [{lo}, {hi}]",
    )

    # rows with a shape are checked one by one, only up to the first bad row found so far
    stop = min((i for i, _ in found), default=n)
    for i in np.flatnonzero(np.isin(kind[:stop], _SHAPE_KINDS)):
        problem = _shape_problem(int(kind[i]), ann.shape[i], lo, hi, w, h, int(i))
        if problem:
            found.append((int(i), problem))
            break

    if found:
        i, problem = min(found, key=lambda item: item[0])
        message = f"row {i} (image {int(ann.image[i])}, {_kind_name(int(kind[i]))}): {problem}"
        error = InvalidInput(message, where or None)
        error.row = i  # type: ignore[attr-defined]  # lets importers map back to their record
        raise error


def _shape_problem(
    kind: int,
    shape: Any,
    lo: float,
    hi: float,
    widths: np.ndarray | None,
    heights: np.ndarray | None,
    i: int,
) -> str | None:
    """What is wrong with one row's shape, or None."""
    try:
        if kind == int(Kind.LINE):
            if shape is None:
                return "line has no points"
            line = as_line(shape)
            if len(line) < 2:
                return f"line has {len(line)} point(s), needs at least 2"
            return _coords_problem(line, lo, hi, "line")
        if kind == int(Kind.POLYGON):
            if shape is None:
                return "polygon has no rings"
            polygons = as_shape(shape)
            if not polygons:
                return "polygon shape holds no polygons"
            for p, polygon in enumerate(polygons):
                if not polygon:
                    return f"polygon {p} has no rings"
                for q, ring in enumerate(polygon):
                    if len(ring) < 3:
                        return f"polygon {p} ring {q} has {len(ring)} point(s), needs at least 3"
                    problem = _coords_problem(ring, lo, hi, f"polygon {p} ring {q}")
                    if problem:
                        return problem
            return None
        # mask
        _, mh, mw = rle_counts(shape, "mask")
        if widths is not None and heights is not None and (mh, mw) != (heights[i], widths[i]):
            return (
                f"mask size [{mh}, {mw}] differs from the image size "
                f"[{heights[i]:g}, {widths[i]:g}] (height, width)"
            )
        return None
    except InvalidInput as exc:
        return str(exc)


def _coords_problem(points: np.ndarray, lo: float, hi: float, what: str) -> str | None:
    if not np.all(np.isfinite(points)):
        return f"{what} has non-finite coordinates"
    bad = (points < lo) | (points > hi)
    if bad.any():
        k = int(np.flatnonzero(bad.any(axis=1))[0])
        return f"{what} point {k} {points[k].tolist()} is outside [{lo}, {hi}]"
    return None


def clip_annotations(ann: Annotations) -> Annotations:
    """A copy with boxes clipped into the image (edges into [0, 1]) and points into [0, 1].

    Other kinds and NaN values are left as they are; a box wholly outside the image becomes a
    zero-size box on the border (validation will then reject it).
    """
    box = ann.box.copy()
    is_box = ann.kind == int(Kind.BBOX)
    if is_box.any():
        box[is_box] = xyxy_to_cxcywh(np.clip(cxcywh_to_xyxy(box[is_box]), 0.0, 1.0))
    is_point = ann.kind == int(Kind.POINT)
    if is_point.any():
        box[is_point, :2] = np.clip(box[is_point, :2], 0.0, 1.0)
    return Annotations(
        image=ann.image.copy(),
        kind=ann.kind.copy(),
        label=ann.label.copy(),
        box=box,
        confidence=ann.confidence.copy(),
        shape=ann.shape.copy(),
        data={k: v.copy() for k, v in ann.data.items()},
        label_names=list(ann.label_names),
    )
