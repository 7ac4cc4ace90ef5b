"""CSV with one row per annotation, geometry in pixels.

Columns, in the order written:

``image, image_width, image_height, kind, label, confidence, x, y, width, height, geometry,
source, author`` and then any other extra data columns.

- ``kind``: ``label | point | bbox | line | polygon | mask``. A row with an empty ``kind`` and
  an empty ``label`` only registers its image (how images without annotations are written).
- ``x, y, width, height``: a box's top-left corner and size; a point's position (``width``
  and ``height`` empty); the bounding box of a line, polygon or mask (informative: on reading,
  the box comes from ``geometry``); empty for image labels.
- ``geometry``: JSON in pixels: a line ``[[x, y], ...]``, a polygon
  ``[[[[x, y], ...], ...], ...]`` (polygons > rings, first ring the exterior, then holes), a
  mask the COCO RLE ``{"size": [h, w], "counts": "..."}``.
- ``confidence``: empty for none. ``image_width`` / ``image_height`` may be left empty when
  ``images_root`` is given (sizes are then read from the image headers).
- Every other column (``source``, ``author``, ``track_id``, ...) is an extra per-annotation
  value kept as text in ``Annotations.data``; empty cells are None.

Errors name the line (the header is line 1; a field holding a line break would shift the
count). Images and labels come back in order of first appearance.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.formats._coco_shared import (
    check_rows,
    confidences,
    data_rows,
    object_column,
    pixels,
    positive_int,
    shape_box,
    size_from_image,
)
from annoloop.formats._common import check_file_name, read_bytes_guarded
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import cxcywh_to_xywh, to_pixels
from annoloop.geometry.kinds import KIND_NAMES, Kind
from annoloop.geometry.masks import rle_from_uncompressed
from annoloop.geometry.polygons import as_line, as_shape

COLUMNS: tuple[str, ...] = (
    "image",
    "image_width",
    "image_height",
    "kind",
    "label",
    "confidence",
    "x",
    "y",
    "width",
    "height",
    "geometry",
    "source",
    "author",
)
_NUMERIC = ("image_width", "image_height", "confidence", "x", "y", "width", "height")
_CORE = frozenset(COLUMNS) - {"source", "author"}


# -- reading ----------------------------------------------------------------------------
def _read_frame(data: bytes, name: str) -> Any:
    """The table: numeric columns as float (NaN for empty), the others as str ("" for empty).

    Numbers are parsed by pandas' C reader; when a numeric cell is not a number the file is
    read again as text so that :func:`_numbers` can name the line.
    """
    import pandas as pd

    # pandas renames a repeated column ("image.1"): look at the header as written
    first = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    header = next(csv.reader(io.StringIO(first)), [])
    stripped = [c.strip() for c in header]
    if len(set(stripped)) != len(stripped):
        raise InvalidInput("the header names a column twice", f"{name}: line 1")
    numeric = [raw for raw, c in zip(header, stripped, strict=True) if c in _NUMERIC]
    options: dict[str, Any] = {"skip_blank_lines": False, "encoding": "utf-8"}
    try:
        try:
            frame = pd.read_csv(
                io.BytesIO(data),
                dtype={c: (np.float64 if c in numeric else object) for c in header},
                keep_default_na=False,
                na_values={c: [""] for c in numeric},
                **options,
            )
        except ValueError as exc:
            if isinstance(exc, (pd.errors.ParserError, UnicodeDecodeError)):
                raise
            frame = pd.read_csv(io.BytesIO(data), dtype=object, keep_default_na=False, **options)
    except pd.errors.EmptyDataError:
        raise InvalidInput("the file is empty (no header line)", name) from None
    except pd.errors.ParserError as exc:
        raise InvalidInput(f"malformed CSV: {str(exc).strip()}", name) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 text ({exc.reason} at byte {exc.start})", name) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if "image" not in frame.columns:
        raise InvalidInput(
            f"missing column 'image' (columns: {', '.join(frame.columns)})", f"{name}: line 1"
        )
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].fillna("")
    return frame


def _blank_rows(frame: Any) -> np.ndarray:
    """Rows whose every cell is empty (blank lines)."""
    blank = np.ones(len(frame), dtype=bool)
    for column in frame.columns:
        values = frame[column].to_numpy()
        blank &= np.isnan(values) if values.dtype.kind == "f" else (values == "")
    return blank


def _numbers(frame: Any, column: str, name: str, lines: np.ndarray) -> np.ndarray:
    """A float column (NaN for empty cells); a cell that is not a number names its line."""
    import pandas as pd

    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    raw = frame[column].to_numpy()
    if raw.dtype.kind == "f":
        values = raw.astype(np.float64)
        bad = np.isinf(values)
    else:
        text = pd.Series(raw, dtype=object).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = (np.isnan(values) & (text != "").to_numpy()) | np.isinf(values)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"{column} must be a finite number, got {frame[column].iat[r]!r}",
            f"{name}: line {lines[r]}",
        )
    return values


def _first_line(mask: np.ndarray, lines: np.ndarray) -> int:
    return int(lines[np.flatnonzero(mask)[0]])


def _images(
    frame: Any,
    name: str,
    lines: np.ndarray,
    images_root: Any,
    widths: np.ndarray,
    heights: np.ndarray,
) -> tuple[list[ImageRecord], np.ndarray]:
    import pandas as pd

    codes, uniques = pd.factorize(frame["image"].to_numpy(dtype=object), sort=False)
    images = []
    for j, raw in enumerate(uniques.tolist()):
        rows = codes == j
        where = f"{name}: line {_first_line(rows, lines)}"
        file_name = check_file_name(raw, where + ", column image")
        sizes = []
        for column, values in (("image_width", widths), ("image_height", heights)):
            given = values[rows]
            given = given[~np.isnan(given)]
            if given.size and (given != given[0]).any():
                odd = rows & ~np.isnan(values) & (values != given[0])
                raise InvalidInput(
                    f"image {file_name!r} has {column} {given[0]:g} on an earlier line and "
                    f"{values[np.flatnonzero(odd)[0]]:g} here",
                    f"{name}: line {_first_line(odd, lines)}",
                )
            sizes.append(
                positive_int(float(given[0]), f"{where}, column {column}") if given.size else None
            )
        if sizes[0] is None or sizes[1] is None:
            sizes = list(size_from_image(images_root, file_name, f"{where}, column image_width"))
        images.append(ImageRecord(file_name, sizes[0], sizes[1]))
    return images, codes


def _kinds(frame: Any, name: str, lines: np.ndarray) -> np.ndarray:
    """int8 kind per row, -1 for image-only rows."""
    import pandas as pd

    if "kind" not in frame.columns:
        raise InvalidInput("missing column 'kind'", f"{name}: line 1")
    codes, uniques = pd.factorize(frame["kind"].str.strip().str.lower().to_numpy(dtype=object))
    table = np.empty(len(uniques), dtype=np.int8)
    for j, value in enumerate(uniques.tolist()):
        if value == "":
            table[j] = -1
            continue
        try:
            table[j] = int(Kind.parse(value))
        except InvalidInput as exc:
            where = f"{name}: line {_first_line(codes == j, lines)}, column kind"
            raise InvalidInput(exc.reason, where) from None
    return table[codes] if len(codes) else np.zeros(0, dtype=np.int8)


def _geometry(kind: int, text: str, w: int, h: int, where: str) -> Any:
    """Relative shape from a pixel geometry JSON cell."""
    if not text.strip():
        raise InvalidInput(f"a {Kind(kind).label} needs a geometry", where)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"geometry is not valid JSON: {exc}", where) from None
    scale = np.array([w, h], dtype=np.float64)
    try:
        if kind == Kind.LINE:
            return as_line(value, where) / scale
        if kind == Kind.POLYGON:
            return [[ring / scale for ring in polygon] for polygon in as_shape(value, where)]
        if not isinstance(value, dict):
            raise InvalidInput("a mask geometry must be an RLE object with size and counts", where)
        if isinstance(value.get("counts"), list):
            return rle_from_uncompressed(value)
        return value
    except InvalidInput as exc:
        raise InvalidInput(exc.reason, where) from None


def load_csv(path: Any, *, images_root: Any = None) -> Dataset:
    """Read an annotation CSV (see the module docstring for the columns).

    ``images_root`` is where image sizes are read when ``image_width`` / ``image_height`` are
    empty or absent. Malformed input raises InvalidInput naming the file and line.
    """
    import pandas as pd

    from annoloop.storage import Location

    loc = Location.parse(path)
    name = loc.name or str(loc)
    frame = _read_frame(read_bytes_guarded(loc), name)
    # a blank line parses as a row of empty cells: skip it, keeping line numbers
    blank = _blank_rows(frame)
    lines = np.flatnonzero(~blank) + 2  # the header is line 1
    if blank.any():
        frame = frame[~blank].reset_index(drop=True)

    def where(r: int) -> str:
        return f"{name}: line {lines[r]}"

    if not len(frame):
        return Dataset.empty()
    numbers = {c: _numbers(frame, c, name, lines) for c in _NUMERIC}
    kind_all = _kinds(frame, name, lines)
    images, image_all = _images(
        frame, name, lines, images_root, numbers["image_width"], numbers["image_height"]
    )

    label_text = (
        frame["label"].str.strip().to_numpy(dtype=object)
        if "label" in frame.columns
        else np.full(len(frame), "", dtype=object)
    )
    image_only = kind_all < 0
    odd = image_only & (label_text != "")
    if odd.any():
        raise InvalidInput("a row with a label needs a kind", where(int(np.flatnonzero(odd)[0])))
    rows = np.flatnonzero(~image_only)
    kind = kind_all[rows]
    no_label = (kind == int(Kind.LABEL)) & (label_text[rows] == "")
    if no_label.any():
        raise InvalidInput("an image label needs a label", where(int(rows[no_label][0])))
    label_codes, label_names = pd.factorize(
        pd.Series(label_text[rows]).replace("", None), use_na_sentinel=True
    )
    image = image_all[rows]
    n = len(rows)
    sizes = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
    wh = sizes[image] if n else np.zeros((0, 2))
    x, y = numbers["x"][rows], numbers["y"][rows]
    bw, bh = numbers["width"][rows], numbers["height"][rows]
    box = np.full((n, 4), np.nan)
    for code, needed in ((Kind.BBOX, (x, y, bw, bh)), (Kind.POINT, (x, y))):
        sel = kind == int(code)
        missing = sel & np.isnan(np.column_stack(needed)).any(axis=1)
        if missing.any():
            cols = "x, y, width and height" if code == Kind.BBOX else "x and y"
            raise InvalidInput(
                f"a {code.label} needs {cols}", where(int(rows[np.flatnonzero(missing)[0]]))
            )
    sel = kind == int(Kind.BBOX)
    box[sel] = np.column_stack(
        [(x + bw / 2) / wh[:, 0], (y + bh / 2) / wh[:, 1], bw / wh[:, 0], bh / wh[:, 1]]
    )[sel]
    sel = kind == int(Kind.POINT)
    box[sel] = np.column_stack([x / wh[:, 0], y / wh[:, 1], np.zeros(n), np.zeros(n)])[sel]
    shape = np.empty(n, dtype=object)
    shaped = np.flatnonzero(kind >= int(Kind.LINE))
    if shaped.size:
        if "geometry" not in frame.columns:
            raise InvalidInput("missing column 'geometry'", where(int(rows[shaped[0]])))
        geometry = frame["geometry"].to_numpy(dtype=object)
        for k in shaped.tolist():
            rec = images[image[k]]
            w = where(int(rows[k]))
            shape[k] = _geometry(int(kind[k]), geometry[rows[k]], rec.width, rec.height, w)
            box[k] = shape_box(int(kind[k]), shape[k], rec, w)

    data = {}
    for column in frame.columns:
        if column in _CORE:
            continue
        values = frame[column].to_numpy(dtype=object)[rows]
        empty = values == ""
        if empty.all():
            continue
        values = values.copy()
        values[empty] = None
        data[column] = object_column(values, n)

    ann = Annotations(
        image=image,
        kind=kind,
        label=label_codes,
        box=box,
        confidence=numbers["confidence"][rows],
        shape=shape,
        data=data,
    )
    check_rows(ann, images, lambda r: where(int(rows[r])))
    return Dataset(images=images, labels=[str(v) for v in label_names], annotations=ann)


# -- writing ----------------------------------------------------------------------------
def _geometry_text(kind: int, shape: Any, w: float, h: float) -> str:
    scale = np.array([w, h])
    if kind == Kind.LINE:
        value: Any = pixels(np.asarray(shape, dtype=np.float64) * scale).tolist()
    elif kind == Kind.POLYGON:
        value = [[pixels(np.asarray(r) * scale).tolist() for r in polygon] for polygon in shape]
    else:
        counts = shape["counts"]
        if not isinstance(counts, str):
            shape = rle_from_uncompressed(shape) if isinstance(counts, list) else shape
            counts = shape["counts"]
            counts = counts if isinstance(counts, str) else bytes(counts).decode("ascii")
        value = {"size": [int(v) for v in shape["size"]], "counts": counts}
    return json.dumps(value, separators=(",", ":"))


def save_csv(dataset: Dataset, path: Any) -> ExportReport:
    """Write ``dataset`` as CSV, one row per annotation plus one per unannotated image.

    Every kind fits; ``dropped`` counts only ``data:KEY`` values JSON/text cannot hold and
    data columns whose names clash with the fixed columns. Written by pyarrow's CSV writer
    (several times faster than pandas): strings are quoted, empty cells are left empty.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from annoloop.storage import Location

    loc = Location.parse(path)
    report = ExportReport(path=str(loc), images=len(dataset.images))
    ann = dataset.annotations
    n = len(ann)
    used = np.zeros(len(dataset.images), dtype=bool)
    used[ann.image] = True
    spare = np.flatnonzero(~used)
    # one row per annotation, then one per spare image (no kind, no label, no geometry)
    image = np.concatenate([ann.image, spare])
    rows = len(image)
    names = np.array([r.file_name for r in dataset.images], dtype=object)
    sizes = dataset.sizes().astype(np.float64)
    wh = sizes[ann.image] if n else np.zeros((0, 2))
    xywh = np.full((rows, 4), np.nan)
    if n:
        xywh[:n] = pixels(to_pixels(cxcywh_to_xywh(ann.box), wh[:, 0], wh[:, 1]))
    xywh[:n][ann.kind == int(Kind.POINT), 2:] = np.nan
    geometry = np.full(rows, None, dtype=object)
    for i in np.flatnonzero(ann.kind >= int(Kind.LINE)).tolist():
        geometry[i] = _geometry_text(int(ann.kind[i]), ann.shape[i], *wh[i])
    kind = np.full(rows, None, dtype=object)
    kind[:n] = np.array(KIND_NAMES, dtype=object)[ann.kind.astype(np.int64)]
    label = np.full(rows, None, dtype=object)
    label[:n] = np.array([*dataset.labels, None], dtype=object)[ann.label]  # -1: the None
    confidence = np.full(rows, np.nan)
    confidence[:n] = confidences(ann.confidence)
    columns: dict[str, Any] = {
        "image": names[image] if rows else np.zeros(0, dtype=object),
        "image_width": sizes[image, 0].astype(np.int64) if rows else np.zeros(0, np.int64),
        "image_height": sizes[image, 1].astype(np.int64) if rows else np.zeros(0, np.int64),
        "kind": kind,
        "label": label,
        "confidence": confidence,
        "x": xywh[:, 0],
        "y": xywh[:, 1],
        "width": xywh[:, 2],
        "height": xywh[:, 3],
        "geometry": geometry,
    }
    keys, values, dropped = data_rows(ann)
    for reason, count in dropped.items():
        report.drop(reason, count)
    for key, column in zip(keys, values, strict=True):
        if key in _CORE:
            report.drop(f"data:{key}", n)
            continue
        cells = np.full(rows, None, dtype=object)
        cells[:n] = [_cell(v) for v in column]
        columns[key] = cells
    for key in ("source", "author"):
        columns.setdefault(key, np.full(rows, None, dtype=object))

    order = None
    if spare.size and (n == 0 or np.all(np.diff(ann.image) >= 0)):
        # annotations sorted by image: put each spare image in its place, so that images read
        # back in the dataset's order
        order = np.argsort(image, kind="stable")
    arrays = {}
    for key, values_ in columns.items():
        arr = np.asarray(values_)
        if order is not None:
            arr = arr[order]
        if arr.dtype.kind == "f":
            arrays[key] = pa.array(arr, mask=np.isnan(arr))  # NaN -> empty cell
        elif arr.dtype.kind in "iu":
            arrays[key] = pa.array(arr)
        else:
            arrays[key] = pa.array(arr.tolist(), type=pa.string())
    sink = io.BytesIO()
    options = pa_csv.WriteOptions(quoting_style="needed")
    pa_csv.write_csv(pa.table(arrays), sink, write_options=options)
    loc.write_bytes(sink.getvalue())
    report.annotations = n
    return report


def _cell(value: Any) -> str:
    """Text of one extra data cell: strings as they are, other values as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
