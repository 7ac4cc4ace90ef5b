"""CoralNet annotation CSV: one point a row, ``Name, Row, Column, Label`` plus optional columns.

This is the CSV that CoralNet's "Export annotations" writes and its "Upload annotations (CSV)"
reads. ``Name`` is the image file name, ``Row`` and ``Column`` the point's pixel, counted from
0 at the top row and the left column (CoralNet moved from 1-based to 0-based counting in 2020;
read an older export with ``index_base=1``). ``Label`` is the label short code; an upload of
point positions only has no Label column (the points get no label), and newer exports may
call it ``Label code``. Column names are matched without regard to case or surrounding spaces.

Reading (:func:`load_coralnet`):

- A pixel (row r, column c) becomes the relative point ``(c / width, r / height)``, the
  pixel's top-left corner, as :func:`annoloop.geometry.rowcol_to_points` converts.
- Image sizes come from ``sizes`` (file name -> (width, height)) or from the image headers
  under ``images_root``; an image found in neither is an error naming it.
- Every other column (Date, Aux1..5, Annotator, Machine suggestion/confidence 1..5, ...) is kept
  as a str data column under its own name ("" in the file reads as None).
- Images and labels are in order of first appearance. Row and Column must be whole numbers
  naming a pixel of the image (no tolerance: CoralNet refuses other points); errors name
  ``file.csv: line N`` (line 1 is the header).

Writing (:func:`save_coralnet`) writes points only: ``Row = floor(y * height)`` and
``Column = floor(x * width)`` (the pixel that holds the point, clipped into the image), the
label name, and every data column whose values are text or numbers as an extra column. Other
kinds are dropped and counted by kind name, as are ``confidence`` and data values that are not
scalars (``data:KEY``). An unlabelled point is written with an empty Label. The CSV lists images
only through their points: images without points are not written (``image_without_points``;
``ExportReport.images`` counts the images written).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from annoloop.errors import AnnoloopError, InvalidInput
from annoloop.formats._coco_shared import check_rows, positive_int
from annoloop.formats._common import check_file_name, read_bytes_guarded
from annoloop.formats._yolo_shared import (
    count_dropped_confidence,
    count_dropped_kinds,
    is_missing,
)
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

REQUIRED = ("Name", "Row", "Column")
_LABEL_NAMES = ("label", "label code")


# -- reading ----------------------------------------------------------------------------
def _read_table(data: bytes, name: str) -> Any:
    """The CSV as a DataFrame of str (no NA guessing); errors name the file and line."""
    import pandas as pd

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 text (byte {exc.start})", name) from None
    if not text.strip():
        raise InvalidInput("is empty (expected a header Name,Row,Column,Label)", name)
    try:
        header = next(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InvalidInput(f"malformed CSV header: {exc}", f"{name}: line 1") from None
    seen: set[str] = set()
    for column in header:
        key = column.strip().lower()
        if key in seen:  # pandas would rename the second one silently
            raise InvalidInput(f"column {column.strip()!r} appears twice", f"{name}: line 1")
        seen.add(key)
    try:
        return pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skipinitialspace=True,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise InvalidInput(f"malformed CSV: {str(exc).strip()}", name) from None
    except (ValueError, csv.Error) as exc:
        raise InvalidInput(f"malformed CSV: {exc}", name) from None


def _columns(frame: Any, name: str) -> tuple[dict[str, str], list[str]]:
    """Required column -> its header in the file, and the extra columns in file order."""
    found: dict[str, str] = {}
    by_key = {str(header).strip().lower(): header for header in frame.columns}
    for column in REQUIRED:
        if column.lower() not in by_key:
            raise InvalidInput(
                f"has no {column!r} column (columns: {', '.join(map(str, frame.columns))})",
                f"{name}: line 1",
            )
        found[column] = by_key[column.lower()]
    label = next((by_key[k] for k in _LABEL_NAMES if k in by_key), None)
    if label is not None:
        found["Label"] = label
    extras = [h for h in frame.columns if h not in found.values()]
    return found, extras


def _whole_numbers(values: Any, name: str, column: str) -> np.ndarray:
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"{column} must be a whole number, got {values.iloc[i]!r}", f"{name}: line {i + 2}"
        )
    return numbers


def _image_sizes(
    names: list[str], first_line: np.ndarray, file: str, sizes: Any, images_root: Any
) -> list[ImageRecord]:
    from annoloop.storage import Location, image_size

    if sizes is not None and not isinstance(sizes, Mapping):
        raise InvalidInput("sizes must be a mapping of file name -> (width, height)", "sizes")
    root = Location.parse(images_root) if images_root is not None else None
    images = []
    for image_name, line in zip(names, first_line.tolist(), strict=True):
        where = f"{file}: line {line + 2}"
        file_name = check_file_name(image_name, f"{where}: Name")
        if sizes is not None and file_name in sizes:
            size = sizes[file_name]
            if not isinstance(size, (tuple, list)) or len(size) != 2:
                raise InvalidInput(
                    f"size must be (width, height), got {size!r}", f"sizes[{file_name!r}]"
                )
            width = positive_int(size[0], f"sizes[{file_name!r}]")
            height = positive_int(size[1], f"sizes[{file_name!r}]")
        elif root is not None:
            try:
                width, height = image_size(root.join(file_name))
            except AnnoloopError as exc:
                raise InvalidInput(
                    f"cannot read the size of image {file_name!r}: {exc}", where
                ) from None
        else:
            raise InvalidInput(
                f"no size for image {file_name!r}: pass sizes={{name: (width, height)}} or "
                "images_root",
                where,
            )
        images.append(ImageRecord(file_name, int(width), int(height)))
    return images


def load_coralnet(
    path: Any,
    *,
    images_root: Any = None,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    index_base: int = 0,
) -> Dataset:
    """Read a CoralNet annotation CSV (see the module docstring for columns and conventions).

    ``sizes`` maps image file names to (width, height); images not in it are measured under
    ``images_root``. ``index_base`` is 0 for current CoralNet exports, 1 for those before 2020.
    Malformed input raises InvalidInput naming the file and line.
    """
    import pandas as pd

    from annoloop.storage import Location

    if index_base not in (0, 1) or isinstance(index_base, bool):
        raise InvalidInput(f"index_base must be 0 or 1, got {index_base!r}", "index_base")
    loc = Location.parse(path)
    name = loc.name or str(loc)
    frame = _read_table(read_bytes_guarded(loc), name)
    columns, extras = _columns(frame, name)
    n = len(frame)
    empty_name = (frame[columns["Name"]].str.strip() == "").to_numpy()
    if empty_name.any():
        raise InvalidInput(
            "Name is empty", f"{name}: line {int(np.flatnonzero(empty_name)[0]) + 2}"
        )
    image_codes, image_names = pd.factorize(frame[columns["Name"]].str.strip(), sort=False)
    first_line = np.full(len(image_names), n, dtype=np.int64)
    np.minimum.at(first_line, image_codes, np.arange(n))
    images = _image_sizes(list(image_names), first_line, name, sizes, images_root)

    row = _whole_numbers(frame[columns["Row"]], name, "Row") - index_base
    col = _whole_numbers(frame[columns["Column"]], name, "Column") - index_base
    if "Label" in columns:
        label_text = frame[columns["Label"]].str.strip()
        label_codes, labels = pd.factorize(label_text.where(label_text != "", None), sort=False)
        labels = [str(v) for v in labels]
    else:
        label_codes, labels = np.full(n, -1), []

    wh = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
    size = wh[image_codes] if n else np.zeros((0, 2))
    # a pixel index must name a pixel of the image (CoralNet refuses anything else)
    for column, values, limit in (("Row", row, size[:, 1]), ("Column", col, size[:, 0])):
        bad = (values < 0) | (values >= limit)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(
                f"{column} {int(values[i]) + index_base} is outside the image "
                f"({index_base}..{int(limit[i]) - 1 + index_base})",
                f"{name}: line {i + 2}",
            )
    box = np.zeros((n, 4))
    box[:, 0] = col / size[:, 0] if n else 0.0
    box[:, 1] = row / size[:, 1] if n else 0.0
    data = {}
    for header in extras:
        values = frame[header].to_numpy(dtype=object)
        values[values == ""] = None
        data[str(header).strip()] = values
    ann = Annotations(
        image=image_codes.astype(np.int64),
        kind=np.full(n, int(Kind.POINT), dtype=np.int8),
        label=np.asarray(label_codes, dtype=np.int64),
        box=box,
        confidence=np.full(n, np.nan),
        shape=np.empty(n, dtype=object),
        data=data,
    )
    check_rows(ann, images, lambda r: f"{name}: line {r + 2}")
    return Dataset(images=images, labels=labels, annotations=ann)


# -- writing ----------------------------------------------------------------------------
def _text_column(values: np.ndarray) -> tuple[list[str], int]:
    """Cells of a data column as text ("" for missing) and the count of non-scalar values."""
    out: list[str] = []
    dropped = 0
    for v in values.tolist():
        if is_missing(v):
            out.append("")
        elif isinstance(v, (str, int, float, bool, np.generic)):
            out.append(str(v))
        else:
            out.append("")
            dropped += 1
    return out, dropped


def save_coralnet(dataset: Dataset, path: Any, *, index_base: int = 0) -> ExportReport:
    """Write the dataset's points as a CoralNet annotation CSV (atomically).

    ``index_base`` 1 writes pre-2020 1-based rows and columns. Returns an ExportReport whose
    ``dropped`` counts what the CSV cannot hold (see the module docstring).
    """
    import pandas as pd

    from annoloop.storage import Location

    if index_base not in (0, 1) or isinstance(index_base, bool):
        raise InvalidInput(f"index_base must be 0 or 1, got {index_base!r}", "index_base")
    loc = Location.parse(path)
    report = ExportReport(path=str(loc), images=len(dataset.images))
    for i, rec in enumerate(dataset.images):
        check_file_name(rec.file_name, f"images[{i}].file_name")
    ann = dataset.annotations
    is_point = ann.kind == int(Kind.POINT)
    count_dropped_kinds(report, ann, ~is_point)
    count_dropped_confidence(report, ann, is_point)
    rows = np.flatnonzero(is_point)
    points = ann[rows]

    wh = np.array([[r.width, r.height] for r in dataset.images], dtype=np.int64).reshape(-1, 2)
    size = wh[points.image] if len(rows) else np.zeros((0, 2), dtype=np.int64)
    # the pixel holding the point; the epsilon keeps c / width * width from landing on c - 1
    col = np.clip(np.floor(points.box[:, 0] * size[:, 0] + 1e-6), 0, size[:, 0] - 1)
    row = np.clip(np.floor(points.box[:, 1] * size[:, 1] + 1e-6), 0, size[:, 1] - 1)
    names = np.array([r.file_name for r in dataset.images] or [""], dtype=object)
    label_names = np.array([*dataset.labels, ""], dtype=object)  # -1 -> ""
    table = {
        "Name": names[points.image] if len(rows) else [],
        "Row": row.astype(np.int64) + index_base,
        "Column": col.astype(np.int64) + index_base,
        "Label": label_names[points.label],
    }
    for key, values in points.data.items():
        if key.strip().lower() in {"name", "row", "column", *_LABEL_NAMES}:
            report.drop(f"data:{key}", int(sum(not is_missing(v) for v in values.tolist())))
            continue
        cells, dropped = _text_column(values)
        report.drop(f"data:{key}", dropped)
        table[key] = cells
    text = pd.DataFrame(table).to_csv(index=False, lineterminator="\n")
    loc.write_text(text)
    report.annotations = len(rows)
    report.images = len(np.unique(points.image))
    report.drop("image_without_points", len(dataset.images) - report.images)
    return report
