"""Compact JSON for shapes as the store keeps them, and the bounding box of any shape.

- line: ``[[x, y], ...]``
- polygon: ``[[[[x, y], ...], ...], ...]`` (polygons > rings > points)
- mask: ``{"size": [h, w], "counts": "..."}`` (always the compressed string form)
- label, point, bbox: no shape (``None``)

Floats are written with Python's shortest round-trip repr, so ``shape_from_json`` gives back
exactly the numbers that went in. NaN and infinity are refused (they are not JSON).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.geometry.kinds import Kind, kind_codes
from annoloop.geometry.masks import _bbox_from_counts, rle_counts, rle_from_uncompressed
from annoloop.geometry.polygons import as_line, as_shape, line_bbox, polygon_bbox

_SEPARATORS = (",", ":")


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=_SEPARATORS, allow_nan=False)
    except ValueError:
        raise InvalidInput(f"{what} has NaN or infinite coordinates") from None


def _mask_dict(shape: Any) -> dict[str, Any]:
    """The compressed RLE dict, checked; bytes counts become str, list counts are compressed."""
    if isinstance(shape, dict) and isinstance(shape.get("counts"), (list, tuple, np.ndarray)):
        return rle_from_uncompressed(shape)
    _, h, w = rle_counts(shape, "mask")
    counts = shape["counts"]
    text = counts if isinstance(counts, str) else bytes(counts).decode("ascii")
    return {"size": [h, w], "counts": text}


def shape_to_json(kind: Kind | str | int, shape: Any) -> str | None:
    """JSON text for one shape; ``None`` for kinds without a shape or a missing shape."""
    k = Kind.parse(kind)
    if shape is None or k in (Kind.LABEL, Kind.POINT, Kind.BBOX):
        return None
    if k == Kind.LINE:
        return _dumps(as_line(shape).tolist(), "line")
    if k == Kind.POLYGON:
        # written as given (no closing-point removal) so text -> shape -> text is exact
        polygons = as_shape(shape, drop_closing=False)
        rings = [[ring.tolist() for ring in polygon] for polygon in polygons]
        return _dumps(rings, "polygon")
    return _dumps(_mask_dict(shape), "mask")


def shapes_to_json(kinds: Any, shapes: Sequence[Any] | np.ndarray) -> list[str | None]:
    """:func:`shape_to_json` for many rows; errors name the row."""
    codes = kind_codes(kinds)
    if len(codes) != len(shapes):
        raise InvalidInput(f"{len(codes)} kinds for {len(shapes)} shapes")
    out: list[str | None] = []
    for i, (code, shape) in enumerate(zip(codes.tolist(), shapes, strict=True)):
        if shape is None or code in (Kind.LABEL, Kind.POINT, Kind.BBOX):
            out.append(None)
            continue
        try:
            out.append(shape_to_json(code, shape))
        except InvalidInput as exc:
            raise InvalidInput(exc.reason, f"shape {i}") from None
    return out


def shape_from_json(kind: Kind | str | int, text: str | bytes | None) -> Any:
    """The shape stored as ``text`` (see the module docstring); ``None`` for empty text."""
    k = Kind.parse(kind)
    if text is None or text == "" or k in (Kind.LABEL, Kind.POINT, Kind.BBOX):
        return None
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{k.label} shape is not valid JSON: {exc}") from None
    if data is None:
        return None
    if k == Kind.LINE:
        return as_line(data)
    if k == Kind.POLYGON:
        return as_shape(data, drop_closing=False)  # give back exactly what was stored
    if not isinstance(data, dict) or not isinstance(data.get("counts"), (str, list)):
        raise InvalidInput("mask shape must be an RLE object with size and counts")
    if isinstance(data["counts"], list):
        return rle_from_uncompressed(data)
    size = data.get("size")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
    ):
        raise InvalidInput(f"mask size must be [height, width] integers, got {size!r}")
    return {"size": [size[0], size[1]], "counts": data["counts"]}


def shapes_from_json(kinds: Any, texts: Sequence[str | None]) -> np.ndarray:
    """:func:`shape_from_json` for many rows -> object array; errors name the row."""
    codes = kind_codes(kinds)
    if len(codes) != len(texts):
        raise InvalidInput(f"{len(codes)} kinds for {len(texts)} texts")
    out = np.empty(len(codes), dtype=object)
    for i, (code, text) in enumerate(zip(codes.tolist(), texts, strict=True)):
        if text is None or code in (Kind.LABEL, Kind.POINT, Kind.BBOX):
            continue
        try:
            out[i] = shape_from_json(code, text)
        except InvalidInput as exc:
            raise InvalidInput(exc.reason, f"shape {i}") from None
    return out


def bbox_of_shape(
    kind: Kind | str | int, shape: Any, width: float | None = None, height: float | None = None
) -> np.ndarray:
    """Relative (cx, cy, w, h) of a line, polygon or mask shape.

    ``width`` / ``height`` matter for masks only: the mask's pixel box is made relative to the
    mask's own size, and a given image size that differs from it is an error.
    """
    k = Kind.parse(kind)
    if shape is None or k in (Kind.LABEL, Kind.POINT, Kind.BBOX):
        raise InvalidInput(f"a {k.label} annotation has no shape to take a bounding box of")
    if k == Kind.LINE:
        return line_bbox(shape)
    if k == Kind.POLYGON:
        return polygon_bbox(shape)
    counts, h, w = rle_counts(shape, "mask")
    if (width is not None and float(width) != w) or (height is not None and float(height) != h):
        raise InvalidInput(
            f"mask size [{h}, {w}] differs from the image size [{height}, {width}] (height, width)"
        )
    if h == 0 or w == 0:
        return np.full(4, np.nan)
    x, y, bw, bh = _bbox_from_counts(counts, h)
    if bw == 0:
        return np.full(4, np.nan)  # empty mask: no box
    return np.array([(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h])
