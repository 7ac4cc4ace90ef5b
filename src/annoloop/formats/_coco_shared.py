"""Helpers shared by the coco, geojson, csv and lost format modules.

- :func:`check_rows`: run ``validate_annotations`` over a freshly read struct and re-raise its
  error naming the record in the file (``"x.json: annotations[12].bbox"``), not the row.
- :func:`size_from_image`: an image's size read from its header under ``images_root``.
- :func:`object_column` / :func:`data_from_columns` / :func:`json_value`: per-annotation extra
  values (``Annotations.data``) to and from plain JSON values.
- :func:`get_meta` / :func:`set_meta`: dataset-level values a format keeps for its own round
  trip (COCO category ids, info, licenses). ``Dataset`` has no ``meta`` field yet, so they live
  in an attribute ``meta`` set on the instance; once the field exists the same code uses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from annoloop.errors import AnnoloopError, InvalidInput
from annoloop.formats._common import read_json
from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.geometry.shapes_json import bbox_of_shape
from annoloop.geometry.validate import validate_annotations

# Pixel coordinates are written rounded to this many decimals: float noise such as
# 16.000000000000004 (from relative * size) would otherwise show in every file.
PIXEL_DECIMALS = 6


def pixels(values: Any) -> np.ndarray:
    """Pixel coordinates rounded for writing (see :data:`PIXEL_DECIMALS`)."""
    return np.round(np.asarray(values, dtype=np.float64), PIXEL_DECIMALS)


def confidences(values: np.ndarray) -> np.ndarray:
    """float32 confidences as the float64 of their shortest decimal (0.9, not
    0.8999999761581421), so that files show what was meant and read back to the same float32;
    NaN stays NaN. Vectorised: the fewest significant digits (1..9) that round-trip."""
    conf = np.asarray(values, dtype=np.float32).reshape(-1)
    out = conf.astype(np.float64)
    todo = np.isfinite(out) & (out != 0)
    magnitude = np.floor(np.log10(np.abs(np.where(todo, out, 1.0))))
    for digits in range(1, 10):
        idx = np.flatnonzero(todo)
        if not idx.size:
            break
        power = digits - 1 - magnitude[idx]
        scale = 10.0 ** np.abs(power)
        # dividing by an exact power of ten gives the float nearest the decimal
        up = power >= 0
        y = np.where(up, np.round(out[idx] * scale) / scale, np.round(out[idx] / scale) * scale)
        ok = y.astype(np.float32) == conf[idx]
        out[idx[ok]] = y[ok]
        todo[idx[ok]] = False
    return out


def check_rows(
    ann: Annotations,
    images: Sequence[ImageRecord],
    where_of_row: Callable[[int], str],
    *,
    tolerance: float = 0.01,
) -> None:
    """Validate geometry against the image sizes; errors name the record ``where_of_row(row)``.

    Boxes and points may stick out of the image by ``tolerance`` (relative); masks must have
    the image's size.
    """
    if not len(ann):
        return
    sizes = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
    per_row = sizes[ann.image]
    try:
        validate_annotations(ann, per_row[:, 0], per_row[:, 1], tolerance=tolerance)
    except InvalidInput as exc:
        row = getattr(exc, "row", None)
        if row is None:
            raise
        # the validator's message starts "row i (image j, kind): ..."; keep only the problem
        reason = exc.reason.split("): ", 1)[-1]
        raise InvalidInput(reason, where_of_row(int(row))) from None


def shape_box(kind: int, shape: Any, image: ImageRecord, where: str) -> np.ndarray:
    """Relative bounding box of a line, polygon or mask shape; errors name ``where``.

    An empty shape (no points, an empty mask) has no box and is refused here.
    """
    try:
        box = bbox_of_shape(kind, shape, image.width, image.height)
    except InvalidInput as exc:
        raise InvalidInput(exc.reason, where) from None
    if not np.isfinite(box).all():
        raise InvalidInput(f"the {Kind(kind).label} is empty (it has no points or pixels)", where)
    return box


def read_json_document(loc: Any, name: str) -> Any:
    """``read_json`` that also refuses JSON nested too deeply for the parser (a recursion
    bomb such as ``[[[[...]]]]``) with InvalidInput instead of a RecursionError."""
    try:
        return read_json(loc)
    except RecursionError:
        raise InvalidInput("JSON is nested too deeply", name) from None


def size_from_image(images_root: Any, file_name: str, where: str) -> tuple[int, int]:
    """(width, height) from the header of ``images_root/file_name``, or InvalidInput."""
    if images_root is None:
        raise InvalidInput(
            "image width and height are missing; pass images_root to read them from the image",
            where,
        )
    from annoloop.storage import Location, image_size

    try:
        source = Location.parse(images_root).join(file_name)
        return image_size(source)
    except AnnoloopError as exc:
        raise InvalidInput(f"cannot read the size of image {file_name!r}: {exc}", where) from None


def positive_int(value: Any, where: str) -> int:
    """A positive whole number (an image width or height) from untrusted input."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInput(f"expected a positive integer, got {value!r}", where)
    if not math.isfinite(value) or value <= 0 or float(value) != int(value):
        raise InvalidInput(f"expected a positive integer, got {value!r}", where)
    return int(value)


def object_column(values: Iterable[Any], n: int) -> np.ndarray:
    """A 1-D object array of ``n`` values (lists stay single elements, unlike np.array)."""
    return np.fromiter(values, dtype=object, count=n)


def data_from_columns(columns: dict[str, list[Any]], n: int) -> dict[str, np.ndarray]:
    """Extra per-annotation columns as object arrays; all-None columns are dropped."""
    out = {}
    for key, values in columns.items():
        if any(v is not None for v in values):
            out[key] = object_column(values, n)
    return out


def data_from_extras(extras: Iterable[tuple[int, dict[str, Any]]], n: int) -> dict[str, np.ndarray]:
    """Extra per-annotation columns from ``(row, {key: value})`` pairs (one dict per row that
    has extras), as :func:`data_from_columns` gives them."""
    columns: dict[str, list[Any]] = {}
    for row, extra in extras:
        for key, value in extra.items():
            column = columns.get(key)
            if column is None:  # not setdefault: its default list would be built every row
                column = columns[key] = [None] * n
            column[row] = value
    return data_from_columns(columns, n)


def json_value(value: Any) -> Any:
    """A JSON-native copy of a data value; None for missing (None, NaN) values.

    numpy scalars and arrays become Python numbers and lists. Anything else that JSON cannot
    hold raises TypeError (the caller counts it as dropped).
    """
    if value is None:
        return None
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def data_rows(
    ann: Annotations, skip: Iterable[str] = ()
) -> tuple[list[str], list[list[Any]], dict[str, int]]:
    """Data keys, their JSON-native values per key, and per-key counts of values dropped."""
    skipped = set(skip)
    keys = [k for k in ann.data if k not in skipped]
    values: list[list[Any]] = []
    dropped: dict[str, int] = {}
    for key in keys:
        column = []
        for v in ann.data[key].tolist():
            try:
                column.append(json_value(v))
            except TypeError:
                column.append(None)
                dropped[f"data:{key}"] = dropped.get(f"data:{key}", 0) + 1
        values.append(column)
    return keys, values, dropped


def get_meta(dataset: Dataset, key: str) -> Any:
    """The dataset-level value a format stored under ``key`` (None when absent)."""
    meta = getattr(dataset, "meta", None)
    return meta.get(key) if isinstance(meta, dict) else None


def set_meta(dataset: Dataset, key: str, value: Any) -> None:
    """Store a dataset-level value (see the module docstring)."""
    meta = getattr(dataset, "meta", None)
    if not isinstance(meta, dict):
        meta = {}
        dataset.meta = meta  # type: ignore[attr-defined]
    meta[key] = value


def unique_file_names(images: Sequence[ImageRecord], where: Callable[[int], str]) -> None:
    """InvalidInput naming the second record when two images share a file name."""
    seen: dict[str, int] = {}
    for i, rec in enumerate(images):
        first = seen.setdefault(rec.file_name, i)
        if first != i:
            raise InvalidInput(
                f"file name {rec.file_name!r} is used by another image too (record {first})",
                where(i),
            )
