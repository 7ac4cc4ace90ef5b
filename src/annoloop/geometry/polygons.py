"""Polygons and lines: COCO flat lists, shapely round trips, bounding boxes, areas, repair.

A polygon *shape* is a list of polygons; each polygon is a list of rings; each ring is a float
(k, 2) array of relative (x, y) without the closing duplicate. The first ring of a polygon is
its exterior, the others are holes. A *line* is a float (k, 2) array of relative (x, y).

shapely is imported inside the functions that need it so that ``import annoloop.geometry``
stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput

Ring = np.ndarray
Polygon = list[np.ndarray]
Shape = list[list[np.ndarray]]


def _ring(values: Any, where: str = "ring") -> np.ndarray:
    """A ring or line as float (k, 2); raise InvalidInput for anything else."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"coordinates must be numbers: {exc}", where) from None
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInput(f"coordinates must be (k, 2) x, y pairs, got shape {arr.shape}", where)
    return arr


def _drop_closing(ring: np.ndarray) -> np.ndarray:
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        return ring[:-1]
    return ring


def as_line(line: Any, where: str = "line") -> np.ndarray:
    """A line as float (k, 2) relative x, y; raises InvalidInput for any other layout."""
    return _ring(line, where)


def _is_sequence(value: Any, nested_ndim: int) -> bool:
    """A list/tuple, a 1-D object array or a numeric array of ``nested_ndim`` dimensions."""
    if isinstance(value, (list, tuple)):
        return True
    if isinstance(value, np.ndarray):
        return (value.dtype == object and value.ndim == 1) or value.ndim == nested_ndim
    return False


def as_shape(shape: Any, where: str = "polygon", *, drop_closing: bool = True) -> Shape:
    """Normalise a polygon shape: every ring a float (k, 2) array.

    Accepts nested lists or arrays in the shape layout; raises InvalidInput naming the polygon
    and ring that is malformed. With ``drop_closing`` a ring's last point is dropped when it
    repeats the first (the stored form never has it).
    """
    if not _is_sequence(shape, 4):
        raise InvalidInput(
            f"polygon shape must be a list of polygons, got {type(shape).__name__}", where
        )
    out: Shape = []
    for p, polygon in enumerate(shape):
        if not _is_sequence(polygon, 3):
            raise InvalidInput(
                f"polygon {p} must be a list of rings, got {type(polygon).__name__}", where
            )
        rings = [_ring(r, f"{where}[{p}][{q}]") for q, r in enumerate(polygon)]
        out.append([_drop_closing(r) for r in rings] if drop_closing else rings)
    return out


def flat_to_ring(flat: Sequence[float] | np.ndarray) -> np.ndarray:
    """COCO ``[x1, y1, x2, y2, ...]`` -> float (k, 2); a repeated closing point is dropped."""
    try:
        arr = np.asarray(flat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"polygon coordinates must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise InvalidInput(f"flat polygon must be a flat list of numbers, got shape {arr.shape}")
    if len(arr) % 2:
        raise InvalidInput(f"flat polygon has an odd number of values ({len(arr)})")
    return _drop_closing(arr.reshape(-1, 2))


def ring_to_flat(ring: Any) -> list[float]:
    """Float (k, 2) ring -> COCO ``[x1, y1, x2, y2, ...]`` as Python floats."""
    return _ring(ring).reshape(-1).tolist()


def polygon_to_shapely(shape: Any, width: float = 1.0, height: float = 1.0) -> Any:
    """Shape -> shapely ``MultiPolygon`` in the units given by width and height.

    Raises InvalidInput for a ring with fewer than 3 points or non-finite coordinates.
    The result is not repaired: call :func:`repair_polygon` for self-intersecting input.
    """
    import shapely

    scale = np.array([width, height], dtype=np.float64)
    parts = []
    for p, polygon in enumerate(as_shape(shape)):
        rings = []
        for q, ring in enumerate(polygon):
            if len(ring) < 3 or not np.all(np.isfinite(ring)):
                problem = "has fewer than 3 points" if len(ring) < 3 else "is not finite"
                raise InvalidInput(f"ring {problem}", f"polygon[{p}][{q}]")
            rings.append(ring * scale)
        if rings:
            parts.append(shapely.Polygon(rings[0], rings[1:]))
    return shapely.MultiPolygon(parts)


def polygon_from_shapely(geom: Any, width: float = 1.0, height: float = 1.0) -> Shape:
    """shapely Polygon / MultiPolygon / GeometryCollection -> shape (holes kept).

    ``width`` and ``height`` are the units of ``geom`` (pass the image size for pixel
    geometry); non-polygon parts of a collection (lines, points) and empty parts are dropped.
    """
    import shapely

    scale = np.array([width, height], dtype=np.float64)
    out: Shape = []
    for part in shapely.get_parts(_polygon_parts(geom)):
        if part.is_empty:
            continue
        rings = [part.exterior, *part.interiors]
        out.append(
            [_drop_closing(np.asarray(r.coords, dtype=np.float64)[:, :2]) / scale for r in rings]
        )
    return out


def _polygon_parts(geom: Any) -> Any:
    """Only the polygonal parts of ``geom`` as a MultiPolygon (flattening collections)."""
    import shapely

    if geom is None:
        return shapely.MultiPolygon()
    if not isinstance(geom, shapely.Geometry):
        raise InvalidInput(f"expected a shapely geometry, got {type(geom).__name__}")
    polys = []
    stack = [geom]
    while stack:
        g = stack.pop()
        if isinstance(g, shapely.Polygon):
            polys.append(g)
        elif isinstance(g, (shapely.MultiPolygon, shapely.GeometryCollection)):
            stack.extend(reversed(list(g.geoms)))
    return shapely.MultiPolygon(polys)


def polygon_bbox(shape: Any) -> np.ndarray:
    """Bounding box of a shape as relative (cx, cy, w, h); NaN box for an empty shape."""
    rings = [polygon[0] for polygon in as_shape(shape) if polygon and len(polygon[0])]
    return _bbox(np.concatenate(rings) if rings else np.zeros((0, 2)))


def line_bbox(line: Any) -> np.ndarray:
    """Bounding box of a line as (cx, cy, w, h); NaN box for an empty line."""
    return _bbox(_ring(line, "line"))


def _bbox(points: np.ndarray) -> np.ndarray:
    if len(points) == 0:
        return np.full(4, np.nan)
    lo = points.min(axis=0)
    hi = points.max(axis=0)
    return np.concatenate([(lo + hi) / 2.0, hi - lo])


def _ring_area(ring: np.ndarray) -> float:
    """Unsigned shoelace area of one ring (closing edge implied)."""
    if len(ring) < 3:
        return 0.0
    # centred first: the shoelace sum of large coordinates loses precision otherwise
    x, y = ring[:, 0] - ring[:, 0].mean(), ring[:, 1] - ring[:, 1].mean()
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def polygon_area(shape: Any, width: float, height: float) -> float:
    """Area in square pixels: exteriors minus holes, summed over the polygons.

    Exact for valid polygons; for self-intersecting input use :func:`repair_polygon` first.
    """
    scale = np.array([width, height], dtype=np.float64)
    total = 0.0
    for polygon in as_shape(shape):
        if not polygon:
            continue
        areas = [_ring_area(ring * scale) for ring in polygon]
        total += areas[0] - sum(areas[1:])
    return total


def repair_polygon(shape: Any) -> Shape:
    """Make a shape valid: fix self-intersections (a bow-tie becomes two triangles), drop
    rings with fewer than 3 points and empty or zero-area parts. May return ``[]``.
    """
    import shapely

    parts = []
    for polygon in as_shape(shape):
        rings = [r for r in polygon if len(r) >= 3 and np.all(np.isfinite(r))]
        # a hole without its exterior cannot be kept
        if not rings or len(polygon[0]) < 3 or not np.all(np.isfinite(polygon[0])):
            continue
        part = shapely.Polygon(rings[0], rings[1:])
        if not part.is_valid:
            part = shapely.make_valid(part, method="structure")
        parts.append(part)
    if not parts:
        return []
    geom = _polygon_parts(shapely.GeometryCollection(parts))
    if not geom.is_valid:
        # overlapping parts: their union is what the annotator drew
        geom = _polygon_parts(shapely.union_all(shapely.get_parts(geom)))
    if not geom.is_valid:
        geom = _polygon_parts(geom.buffer(0))
    kept = [g for g in geom.geoms if not g.is_empty and g.area > 0]
    return polygon_from_shapely(shapely.MultiPolygon(kept)) if kept else []
