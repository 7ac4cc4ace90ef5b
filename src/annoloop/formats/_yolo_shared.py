"""Helpers shared by the yolo, voc, cvat and coralnet format modules.

- :func:`count_dropped_kinds` / :func:`count_dropped_data`: fill an ExportReport with what a
  saver leaves out (shape kinds by name, ``no_label``, ``confidence``, ``data:KEY``).
- :func:`per_image_names`: one output file per image (``labels/a/b.txt`` for ``a/b.jpg``),
  refusing two images that would share a file.
- :func:`pixel_sizes`: (n, 2) width/height per annotation row.
- :func:`is_missing`: None or NaN, the "no value" of an object data column.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.formats._common import check_file_name
from annoloop.formats.dataset import Dataset, ExportReport
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind


def is_missing(value: Any) -> bool:
    """True for None and float NaN (the empty cells of an object data column)."""
    if value is None:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def count_dropped_kinds(report: ExportReport, ann: Annotations, dropped: np.ndarray) -> None:
    """Count the rows selected by the boolean ``dropped`` under their kind names."""
    codes, counts = np.unique(ann.kind[dropped], return_counts=True)
    for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
        name = Kind(code).label if code in Kind._value2member_map_ else f"kind_{code}"
        report.drop(name, int(count))


def count_dropped_data(
    report: ExportReport, ann: Annotations, written: np.ndarray, keep: Iterable[str] = ()
) -> None:
    """Count, per data column not in ``keep``, the written rows that hold a value
    (reported as ``data:KEY``): the format has no place for them."""
    kept = set(keep)
    for key, values in ann.data.items():
        if key in kept:
            continue
        column = values[written]
        if column.dtype == object:
            count = sum(not is_missing(v) for v in column.tolist())
        elif column.dtype.kind == "f":
            count = int(np.count_nonzero(~np.isnan(column)))
        else:
            count = len(column)
        report.drop(f"data:{key}", int(count))


def count_dropped_confidence(report: ExportReport, ann: Annotations, written: np.ndarray) -> None:
    """Count written rows that carry a confidence the format cannot hold."""
    report.drop("confidence", int(np.count_nonzero(~np.isnan(ann.confidence[written]))))


def per_image_names(dataset: Dataset, suffix: str) -> list[str]:
    """For each image, its file name with the extension replaced by ``suffix``.

    Two images whose names differ only by extension (``a.jpg``, ``a.png``) would write the same
    file: InvalidInput naming both.
    """
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, rec in enumerate(dataset.images):
        name = check_file_name(rec.file_name, f"images[{i}].file_name")
        target = posixpath.splitext(name)[0] + suffix
        if target in seen:
            other = dataset.images[seen[target]].file_name
            raise InvalidInput(
                f"{name!r} and {other!r} would both be written to {target!r}",
                f"images[{i}].file_name",
            )
        seen[target] = i
        out.append(target)
    return out


def pixel_sizes(images: Sequence[Any], rows: np.ndarray) -> np.ndarray:
    """(len(rows), 2) float (width, height) of the image of each annotation row."""
    sizes = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
    return sizes[rows] if len(rows) else np.zeros((0, 2))
