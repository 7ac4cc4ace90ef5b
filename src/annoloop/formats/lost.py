"""LOST-style parquet: the table LOST's ``to_df()`` gives and lost_ds stores as parquet.

LOST (l3p-cv/lost) 2.x and lost_ds name the columns with underscores; LOST 1.x used dots.
Both are read; ``save_lost`` writes the 2.x layout by default (``layout="lost1"`` for 1.x).

==================  ==================  ===============================================
LOST 2.x / lost_ds  LOST 1.x            meaning
==================  ==================  ===============================================
``img_path``        ``img.img_path``    image file (made relative: see ``path_prefix``)
``img_lbl``         ``img.lbl.name``    list of image-level label names
``anno_dtype``      ``anno.dtype``      ``bbox | point | line | polygon``; null: no shape
``anno_data``       ``anno.data``       geometry, relative to the image size (see below)
``anno_style``      (always LOST's)     ``xcycwh`` (LOST), ``xywh``, ``x1y1x2y2``; ``xy``
``anno_format``     (always ``rel``)    ``rel`` (0..1) or ``abs`` (pixels)
``anno_lbl``        ``anno.lbl.name``   list of label names of the shape (first = label)
``anno_confidence`` ``anno.confidence`` confidence
``anno_user``       ``anno.annotator``  -> ``data["author"]``
``anno_comment``    ``anno.comment``    -> ``data["comment"]``
``img_width``       ``img.width``       image width in pixels (annoloop's addition)
``img_height``      ``img.height``      image height in pixels (annoloop's addition)
==================  ==================  ===============================================

``anno_data`` in 2.x is a list of lists of floats: a box ``[[xc, yc, w, h]]`` (centre, as
LOST), a point ``[[x, y]]``, a line or polygon ``[[x, y], ...]``; flat lists (``[xc, yc, w,
h]``) are read too. In 1.x it is a JSON object: a box ``{"x", "y", "w", "h"}`` with x, y the
centre, a point ``{"x", "y"}``, a line or polygon ``[{"x", "y"}, ...]``.

Like LOST's own ``to_df()``, every image has one row without a shape (``anno_dtype`` null)
that carries its ``img_lbl``; images without annotations keep that row only. Image labels are
per image in LOST: their confidence and extra data cannot be kept, and they read back before
the shapes of their image. Other ``anno_<name>`` columns that are not LOST's own bookkeeping
(``anno_source`` ...) are extra per-annotation data under ``<name>``. A shape with more than one
label keeps the first as its label and all of them in ``data["labels"]``.

LOST has no masks (dropped), no holes (the exterior is kept) and one ring per polygon (a
multi-part polygon becomes one row per part). The dataset's label list is kept in the parquet
schema metadata (key ``annoloop.labels``) so that labels read back in the same order.

Image sizes come from ``img_width`` / ``img_height`` when present, else from the image headers
under ``images_root``. LOST stores absolute paths: pass ``path_prefix`` (for example
``"/home/lost/data/media/"``) to strip it; a path that stays absolute is refused.
"""

from __future__ import annotations

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
    positive_int,
    shape_box,
    size_from_image,
)
from annoloop.formats._common import LabelIndex, check_file_name, read_bytes_guarded
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import xywh_to_cxcywh, xyxy_to_cxcywh
from annoloop.geometry.kinds import Kind

# LOST 1.x column -> LOST 2.x column
LEGACY_COLUMNS: dict[str, str] = {
    "img.img_path": "img_path",
    "img.lbl.name": "img_lbl",
    "img.width": "img_width",
    "img.height": "img_height",
    "anno.dtype": "anno_dtype",
    "anno.data": "anno_data",
    "anno.lbl.name": "anno_lbl",
    "anno.confidence": "anno_confidence",
    "anno.annotator": "anno_user",
    "anno.user": "anno_user",
    "anno.comment": "anno_comment",
    "anno.track_n": "anno_track_id",
}
# LOST's bookkeeping columns: not annotation data
_LOST_OWN = frozenset(
    {
        "anno_uid",
        "anno_timestamp",
        "anno_state",
        "anno_sim_class",
        "anno_iteration",
        "anno_user_id",
        "anno_time",
        "anno_anno_time",
        "anno_lbl_id",
        "anno_style",
        "anno_format",
        "anno_dtype",
        "anno_data",
        "anno_lbl",
        "anno_confidence",
        # LOST 1.x bookkeeping, after its first dot became an underscore
        "anno_idx",
        "anno_anno_task_id",
        "anno_timestamp_lock",
        "anno_group_id",
        "anno_img_anno_id",
        "anno_lbl.idx",
        "anno_lbl.external_id",
        "anno_lbl_external_id",
    }
)
_DATA_COLUMNS = {"anno_user": "author", "anno_comment": "comment"}
_DTYPES = {"bbox": Kind.BBOX, "point": Kind.POINT, "line": Kind.LINE, "polygon": Kind.POLYGON}
_LABELS_KEY = b"annoloop.labels"


# -- reading ----------------------------------------------------------------------------
def _read_table(data: bytes, name: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidInput(f"not a readable parquet file: {exc}", name) from None
    names = table.column_names
    if "img_path" not in names and "img.img_path" in names:
        keep = {}
        for col in names:
            new = LEGACY_COLUMNS.get(col) or col.replace(".", "_", 1)
            if new not in keep:
                keep[new] = table.column(col)
        table = pa.table(keep).replace_schema_metadata(table.schema.metadata)
    if "img_path" not in table.column_names:
        raise InvalidInput(
            "missing column img_path (LOST 2) or img.img_path (LOST 1); columns: "
            + ", ".join(table.column_names),
            name,
        )
    return table


def _strings(column: Any, name: str, what: str) -> np.ndarray:
    """A column of strings as an object array (None for null)."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):  # pandas categoricals are stored this way
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        if pa.types.is_null(column.type):
            return np.full(len(column), None, dtype=object)
        raise InvalidInput(f"column {what} must hold strings, not {column.type}", name)
    return column.to_numpy(zero_copy_only=False).astype(object)


def _numbers(column: Any, name: str, what: str) -> np.ndarray:
    import pyarrow as pa

    t = column.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
        raise InvalidInput(f"column {what} must hold numbers, not {t}", name)
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


def _name_pairs(column: Any, name: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(row, name) pairs in row and list order, from list<string> or text (a JSON list or one
    name) cells; a name that is not a non-empty string names its row."""
    import pyarrow as pa

    t = column.type
    if pa.types.is_null(t):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if not (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            raise InvalidInput(f"column {what} must hold lists of names, not {t}", name)
        import pyarrow.compute as pc

        rows = pc.list_parent_indices(column).to_numpy().astype(np.int64)
        values = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(object)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        row_list: list[int] = []
        value_list: list[Any] = []
        for r, v in enumerate(column.to_pylist()):
            found = _names_from_text(v, f"{name}: row {r}, {what}")
            row_list.extend([r] * len(found))
            value_list.extend(found)
        rows = np.array(row_list, dtype=np.int64)
        values = object_column(value_list, len(value_list))
    else:
        raise InvalidInput(f"column {what} must hold lists of names, not {t}", name)
    bad = [i for i, v in enumerate(values.tolist()) if type(v) is not str or not v.strip()]
    if bad:
        i = bad[0]
        raise InvalidInput(
            f"a label name must be a non-empty string, got {values[i]!r}",
            f"{name}: row {int(rows[i])}, {what}",
        )
    return rows, values


def _names_from_text(value: str | None, where: str) -> list[str]:
    if value is None or not value.strip():
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            names = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"label list is not valid JSON: {exc}", where) from None
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise InvalidInput(f"label list must hold names, got {value!r}", where)
        return names
    return [text]


def _flat_values(column: Any, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, row of each value) of a list<number> or list<list<number>> column, or None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return None
    if pa.types.is_list(t.value_type) or pa.types.is_large_list(t.value_type):
        leaf = t.value_type.value_type
        if not (pa.types.is_integer(leaf) or pa.types.is_floating(leaf)):
            return None
        row_of_inner = pc.list_parent_indices(column).to_numpy()
        inner = pc.list_flatten(column)
        values = pc.list_flatten(inner)
        rows = row_of_inner[pc.list_parent_indices(inner).to_numpy()]
    elif pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type):
        values = pc.list_flatten(column)
        rows = pc.list_parent_indices(column).to_numpy()
    else:
        return None
    arr = values.to_numpy(zero_copy_only=False).astype(np.float64)  # null -> NaN
    return arr, rows.astype(np.int64)


def _python_values(value: Any, where: str) -> list[float]:
    """Flat numbers of one LOST geometry given as JSON text, dicts or nested lists."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"anno_data is not valid JSON: {exc}", where) from None
    if isinstance(value, dict):
        keys = ("x", "y", "w", "h") if "w" in value or "h" in value else ("x", "y")
        items: list[Any] = [value.get(k) for k in keys]
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = []
        for v in value:
            if isinstance(v, dict):
                items.extend([v.get("x"), v.get("y")])
            elif isinstance(v, (list, tuple, np.ndarray)):
                items.extend(list(v))
            else:
                items.append(v)
    else:
        raise InvalidInput(f"anno_data must be a list or an object, got {value!r}", where)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise InvalidInput(f"anno_data must hold numbers, got {v!r}", where)
    return [float(v) for v in items]


def _geometry_values(column: Any, n: int, has_shape: np.ndarray, name: str) -> tuple:
    """(values, start, count) per row: the row's numbers are values[start : start + count]."""
    fast = _flat_values(column, n)
    if fast is None:
        chunks = []
        counts = np.zeros(n, dtype=np.int64)
        for r, v in enumerate(column.to_pylist()):
            if v is None or not has_shape[r]:
                continue
            nums = _python_values(v, f"{name}: row {r}, anno_data")
            counts[r] = len(nums)
            chunks.append(nums)
        values = np.array([x for c in chunks for x in c], dtype=np.float64)
        # rows without a shape hold no values: their count stays 0
    else:
        values, rows = fast
        keep = has_shape[rows]
        values, rows = values[keep], rows[keep]
        counts = np.bincount(rows, minlength=n)
    start = np.cumsum(counts) - counts
    bad = np.isnan(values) | np.isinf(values)
    if bad.any():
        r = int(np.searchsorted(np.cumsum(counts), int(np.flatnonzero(bad)[0]), side="right"))
        raise InvalidInput("anno_data holds a null or non-finite number", f"{name}: row {r}")
    return values, start, counts


def load_lost(path: Any, *, images_root: Any = None, path_prefix: str | None = None) -> Dataset:
    """Read a LOST-style parquet file (LOST 2.x / lost_ds or LOST 1.x columns).

    ``images_root`` is where image sizes are read when there are no ``img_width`` /
    ``img_height`` columns; ``path_prefix`` is removed from the start of every ``img_path``.
    Errors name the file, the row (0-based) and the column.
    """
    from annoloop.storage import Location

    loc = Location.parse(path)
    name = loc.name or str(loc)
    table = _read_table(read_bytes_guarded(loc), name)
    images, codes, first_row = _read_images(table, name, images_root, path_prefix)
    rows, kind, box, shape = _read_shapes(table, name, images, codes)
    labels, label_of_row, multi, img_rows = _labels(table, name, codes, first_row, rows)
    m = len(rows)
    confidence = (
        _numbers(table.column("anno_confidence"), name, "anno_confidence")[rows]
        if "anno_confidence" in table.column_names
        else np.full(m, np.nan)
    )
    data = _data_columns(table, rows, name)
    if multi:
        data["labels"] = object_column((multi.get(k) for k in range(m)), m)
    shapes = Annotations(
        image=codes[rows],
        kind=kind,
        label=label_of_row,
        box=box,
        confidence=confidence,
        shape=shape,
        data=data,
    )
    check_rows(shapes, images, lambda k: f"{name}: row {int(rows[k])}, anno_data")
    ann = _with_image_labels(shapes, rows, img_rows)
    return Dataset(images=images, labels=labels.names, annotations=ann)


def _column(table: Any, column: str, read: Any, name: str, default: Any) -> np.ndarray:
    """``read(column)`` when the table has it, else ``default`` for every row."""
    if column in table.column_names:
        return read(table.column(column), name, column)
    return np.full(table.num_rows, default, dtype=object if default is None else np.float64)


def _read_images(
    table: Any, name: str, images_root: Any, path_prefix: str | None
) -> tuple[list[ImageRecord], np.ndarray, np.ndarray]:
    """Image records, the image of each row, and each image's first row."""
    import pandas as pd

    n = table.num_rows
    paths = _strings(table.column("img_path"), name, "img_path")
    codes, uniques = pd.factorize(paths, use_na_sentinel=True)
    if (codes < 0).any():
        r = int(np.flatnonzero(codes < 0)[0])
        raise InvalidInput("img_path is empty", f"{name}: row {r}, img_path")
    first_row = np.full(len(uniques), n, dtype=np.int64)
    np.minimum.at(first_row, codes, np.arange(n))
    widths = _column(table, "img_width", _numbers, name, np.nan)
    heights = _column(table, "img_height", _numbers, name, np.nan)
    images = []
    for j, raw in enumerate(uniques.tolist()):
        r0 = int(first_row[j])
        text = raw[len(path_prefix) :] if path_prefix and raw.startswith(path_prefix) else raw
        try:
            file_name = check_file_name(text, f"{name}: row {r0}, img_path")
        except InvalidInput as exc:
            hint = "" if path_prefix else " (pass path_prefix to strip LOST's media folder)"
            raise InvalidInput(exc.reason + hint, exc.where) from None
        w, h = widths[r0], heights[r0]
        if np.isnan(w) or np.isnan(h):
            w, h = size_from_image(images_root, file_name, f"{name}: row {r0}, img_width")
        else:
            w = positive_int(float(w), f"{name}: row {r0}, img_width")
            h = positive_int(float(h), f"{name}: row {r0}, img_height")
        images.append(ImageRecord(file_name, int(w), int(h)))
    same = np.ones(n, dtype=bool)
    for values in (widths, heights):
        same &= (values == values[first_row[codes]]) | np.isnan(values)
    if not same.all():
        r = int(np.flatnonzero(~same)[0])
        raise InvalidInput(
            f"image {paths[r]!r} has another size on row {int(first_row[codes[r]])}",
            f"{name}: row {r}, img_width",
        )
    return images, codes, first_row


def _row_kinds(table: Any, name: str) -> np.ndarray:
    """int8 kind per row from anno_dtype; -1 for rows without a shape."""
    import pandas as pd

    dtypes = _column(table, "anno_dtype", _strings, name, None)
    dcodes, dnames = pd.factorize(dtypes, use_na_sentinel=True)
    table_kind = np.empty(len(dnames), dtype=np.int8)
    for j, value in enumerate(dnames.tolist()):
        key = str(value).strip().lower()
        if key in ("", "none", "nan"):
            table_kind[j] = -1
        elif key in _DTYPES:
            table_kind[j] = int(_DTYPES[key])
        else:
            r = int(np.flatnonzero(dcodes == j)[0])
            raise InvalidInput(
                f"unknown anno_dtype {value!r} (allowed: {', '.join(_DTYPES)})",
                f"{name}: row {r}, anno_dtype",
            )
    return np.where(dcodes >= 0, table_kind[np.maximum(dcodes, 0)], -1).astype(np.int8)


def _read_shapes(
    table: Any, name: str, images: list[ImageRecord], codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows that hold a shape, and their kinds, relative boxes and shapes."""
    n = table.num_rows
    kind_all = _row_kinds(table, name)
    has_shape = kind_all >= 0
    if has_shape.any() and "anno_data" not in table.column_names:
        raise InvalidInput("missing column anno_data", name)
    if has_shape.any():
        values, start, count = _geometry_values(table.column("anno_data"), n, has_shape, name)
    else:
        values, start, count = np.zeros(0), np.zeros(n, np.int64), np.zeros(n, np.int64)
    fmt = _column(table, "anno_format", _strings, name, None)
    style = _column(table, "anno_style", _strings, name, None)
    is_abs = np.array([f == "abs" for f in fmt.tolist()], dtype=bool)
    odd_fmt = np.array([f not in (None, "", "rel", "abs") for f in fmt.tolist()], dtype=bool)
    if (odd_fmt & has_shape).any():
        r = int(np.flatnonzero(odd_fmt & has_shape)[0])
        raise InvalidInput(
            f"anno_format must be 'rel' or 'abs', got {fmt[r]!r}", f"{name}: row {r}"
        )

    sizes = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
    row_wh = sizes[np.maximum(codes, 0)]
    rows = np.flatnonzero(has_shape)
    kind = kind_all[rows]
    box = np.full((len(rows), 4), np.nan)
    shape = np.empty(len(rows), dtype=object)
    for code, needed in ((Kind.BBOX, 4), (Kind.POINT, 2)):
        sel = np.flatnonzero(kind == int(code))
        if not sel.size:
            continue
        r = rows[sel]
        wrong = count[r] != needed
        if wrong.any():
            bad = int(r[np.flatnonzero(wrong)[0]])
            raise InvalidInput(
                f"a {code.label} needs {needed} numbers in anno_data, got {int(count[bad])}",
                f"{name}: row {bad}, anno_data",
            )
        vals = values[start[r][:, None] + np.arange(needed)]
        absolute = is_abs[r]
        vals[absolute] /= np.tile(row_wh[r[absolute]], needed // 2)
        if code == Kind.BBOX:
            box[sel] = _boxes_from_style(vals, style[r], r, name)
        else:
            box[sel, :2] = vals
            box[sel, 2:] = 0.0
    for k in np.flatnonzero(kind >= int(Kind.LINE)).tolist():
        r = int(rows[k])
        c = int(count[r])
        where = f"{name}: row {r}, anno_data"
        if c % 2:
            raise InvalidInput(f"anno_data must hold x, y pairs, got {c} numbers", where)
        pts = values[start[r] : start[r] + c].reshape(-1, 2).copy()
        if is_abs[r]:
            pts /= row_wh[r]
        if kind[k] == Kind.POLYGON:
            if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
                pts = pts[:-1]
            shape[k] = [[pts]]
        else:
            shape[k] = pts
        box[k] = shape_box(int(kind[k]), shape[k], images[codes[r]], where)
    return rows, kind, box, shape


def _labels(
    table: Any, name: str, codes: np.ndarray, first_row: np.ndarray, rows: np.ndarray
) -> tuple[LabelIndex, np.ndarray, dict[int, tuple[str, ...]], list[tuple[int, int, int, int]]]:
    """Label names numbered in order of first appearance, the label of each shape row, the
    shape rows with several labels, and the image labels as (sort key, order, image, label).

    An image's labels are the union, in order, of its rows' ``img_lbl`` lists; they are placed
    at the image's first row (before its shapes).
    """
    import pandas as pd

    cols = set(table.column_names)
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object))
    a_rows, a_names = (
        _name_pairs(table.column("anno_lbl"), name, "anno_lbl") if "anno_lbl" in cols else empty
    )
    keep = np.isin(a_rows, rows)  # names on rows without a shape mean nothing
    a_rows, a_names = a_rows[keep], a_names[keep]
    i_rows, i_names = (
        _name_pairs(table.column("img_lbl"), name, "img_lbl") if "img_lbl" in cols else empty
    )
    pairs = pd.DataFrame({"image": codes[i_rows], "name": i_names, "order": np.arange(len(i_rows))})
    pairs = pairs.drop_duplicates(["image", "name"])  # keeps each first occurrence
    il_image = pairs["image"].to_numpy(dtype=np.int64)
    il_names = pairs["name"].to_numpy(dtype=object)
    il_order = pairs["order"].to_numpy(dtype=np.int64)
    il_key = 2 * first_row[il_image]

    labels = LabelIndex(_schema_labels(table))
    keys = np.concatenate([il_key, 2 * a_rows + 1])
    sub = np.concatenate([il_order, np.arange(len(a_rows))])
    in_order = np.concatenate([il_names, a_names])[np.lexsort((sub, keys))]
    for label in pd.unique(in_order):
        labels.add(label)
    index = pd.Index(labels.names)
    a_codes = index.get_indexer(a_names)
    il_codes = index.get_indexer(il_names)

    label_of_row = np.full(len(rows), -1, dtype=np.int64)
    labelled, first = np.unique(a_rows, return_index=True)
    position = np.searchsorted(rows, labelled)
    label_of_row[position] = a_codes[first]
    counts = np.bincount(a_rows, minlength=int(rows.max()) + 1 if len(rows) else 0)
    multi = {}
    for k, start in zip(position.tolist(), first.tolist(), strict=True):
        count = int(counts[rows[k]])
        if count > 1:
            multi[k] = tuple(a_names[start : start + count].tolist())
    img_rows = list(
        zip(il_key.tolist(), il_order.tolist(), il_image.tolist(), il_codes.tolist(), strict=True)
    )
    return labels, label_of_row, multi, img_rows


def _schema_labels(table: Any) -> list[str]:
    meta = table.schema.metadata or {}
    raw = meta.get(_LABELS_KEY)
    if raw is None:
        return []
    try:
        names = json.loads(raw)
    except ValueError:
        return []
    if isinstance(names, list) and all(isinstance(x, str) and x for x in names):
        return list(dict.fromkeys(names))
    return []


def _boxes_from_style(vals: np.ndarray, style: np.ndarray, rows: np.ndarray, name: str) -> Any:
    out = vals.copy()
    styles = np.array([s or "xcycwh" for s in style.tolist()], dtype=object)
    for s in set(styles.tolist()):
        sel = styles == s
        if s == "xcycwh":
            continue
        if s == "xywh":
            out[sel] = xywh_to_cxcywh(vals[sel])
        elif s == "x1y1x2y2":
            out[sel] = xyxy_to_cxcywh(vals[sel])
        else:
            r = int(rows[np.flatnonzero(sel)[0]])
            raise InvalidInput(
                f"unknown bbox anno_style {s!r} (allowed: xcycwh, xywh, x1y1x2y2)",
                f"{name}: row {r}, anno_style",
            )
    return out


def _data_columns(table: Any, rows: np.ndarray, name: str) -> dict[str, np.ndarray]:
    m = len(rows)
    out: dict[str, np.ndarray] = {}
    for column in table.column_names:
        key = _DATA_COLUMNS.get(column)
        if key is None:
            if not column.startswith("anno_") or column in _LOST_OWN:
                continue
            key = column[len("anno_") :]
        values = table.column(column).take(rows).to_pylist() if m else []
        if any(v is not None for v in values):
            out[key] = object_column(values, m)
    return out


def _with_image_labels(
    shapes: Annotations, rows: np.ndarray, img_rows: list[tuple[int, int, int, int]]
) -> Annotations:
    """Shapes plus one image-label row per image label, each image's labels first."""
    if not img_rows:
        return shapes
    k = len(img_rows)
    keys = np.array([t[0] for t in img_rows], dtype=np.int64)
    sub = np.array([t[1] for t in img_rows], dtype=np.int64)
    labels = Annotations(
        image=[t[2] for t in img_rows],
        kind=np.full(k, int(Kind.LABEL), np.int8),
        label=[t[3] for t in img_rows],
        box=np.full((k, 4), np.nan),
        confidence=np.full(k, np.nan, np.float32),
        shape=np.empty(k, dtype=object),
        data={key: np.full(k, None, dtype=object) for key in shapes.data},
    )
    both = Annotations.concat([shapes, labels])
    order = np.lexsort(
        (np.concatenate([np.zeros(len(rows), np.int64), sub]), np.concatenate([2 * rows + 1, keys]))
    )
    return both[order]


# -- writing ----------------------------------------------------------------------------
def save_lost(dataset: Dataset, path: Any, *, layout: str = "lost2") -> ExportReport:
    """Write ``dataset`` as a LOST-style parquet file (atomically).

    ``layout`` is ``"lost2"`` (LOST 2.x / lost_ds columns, the default) or ``"lost1"``
    (LOST 1.x dotted columns, ``anno.data`` as JSON text). ``dropped`` counts ``mask``,
    ``polygon_hole`` (holes removed, exteriors kept), ``polygon_multipart->split`` (polygons
    written as one row per part), ``label:confidence`` / ``label:data`` (image labels carry
    neither in LOST), ``data:KEY`` (values that are not JSON).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from annoloop.storage import Location

    if layout not in ("lost2", "lost1"):
        raise InvalidInput(f"layout must be 'lost2' or 'lost1', got {layout!r}", "save_lost")
    loc = Location.parse(path)
    report = ExportReport(path=str(loc), images=len(dataset.images))
    ann = dataset.annotations
    n_images = len(dataset.images)
    is_label = ann.kind == int(Kind.LABEL)
    is_mask = ann.kind == int(Kind.MASK)
    report.drop("mask", int(is_mask.sum()))

    # image labels: per image, in annotation order; LOST keeps no confidence or data for them
    label_rows = np.flatnonzero(is_label)
    named = label_rows[ann.label[label_rows] >= 0]
    report.drop("label:confidence", int((~np.isnan(ann.confidence[label_rows])).sum()))
    if ann.data and label_rows.size:
        carries = np.zeros(len(label_rows), dtype=bool)
        for column in ann.data.values():
            carries |= np.array([v is not None for v in column[label_rows].tolist()])
        report.drop("label:data", int(carries.sum()))
    img_order = np.argsort(ann.image[named], kind="stable")
    il_rows = named[img_order]
    il_count = np.bincount(ann.image[il_rows], minlength=n_images)

    # one output row per shape (one per part for polygons), after one empty row per image
    shapes = np.flatnonzero(~is_label & ~is_mask)
    shapes = shapes[np.argsort(ann.image[shapes], kind="stable")]
    parts = np.ones(len(shapes), dtype=np.int64)
    polygon_at = np.flatnonzero(ann.kind[shapes] == int(Kind.POLYGON))
    for k in polygon_at.tolist():
        polygons = ann.shape[shapes[k]]
        parts[k] = len(polygons)
        if len(polygons) > 1:
            report.drop("polygon_multipart->split")
        if any(len(p) > 1 for p in polygons):
            report.drop("polygon_hole")
    src = np.concatenate([np.full(n_images, -1), np.repeat(shapes, parts)])
    part = np.concatenate(
        [
            np.zeros(n_images, np.int64),
            np.arange(parts.sum()) - np.repeat(np.cumsum(parts) - parts, parts),
        ]
    )
    image = np.concatenate([np.arange(n_images), ann.image[np.repeat(shapes, parts)]])
    order = np.lexsort((src >= 0, image))  # per image: the empty row, then its shapes
    src, part, image = src[order], part[order], image[order]
    rows = len(src)
    has = src >= 0
    at = np.maximum(src, 0)
    kind = np.where(has, ann.kind[at], -1)

    columns: dict[str, Any] = {
        "img_path": pa.array([r.file_name for r in dataset.images], pa.string()).take(image),
        "img_width": pa.array(dataset.sizes()[image, 0] if rows else [], pa.int64()),
        "img_height": pa.array(dataset.sizes()[image, 1] if rows else [], pa.int64()),
        "img_lbl": _lists(
            np.array([dataset.labels[j] for j in ann.label[il_rows].tolist()], dtype=object),
            il_count,
            image,
        ),
    }
    dtype_names = np.array(["bbox", "point", "line", "polygon", None], dtype=object)
    dtype_code = np.full(rows, 4)
    for j, code in enumerate((Kind.BBOX, Kind.POINT, Kind.LINE, Kind.POLYGON)):
        dtype_code[kind == int(code)] = j
    columns["anno_dtype"] = pa.array(dtype_names[dtype_code].tolist(), pa.string())
    style = np.where(kind == int(Kind.BBOX), "xcycwh", "xy").astype(object)
    style[~has] = None
    columns["anno_style"] = pa.array(style.tolist(), pa.string())
    columns["anno_format"] = pa.array(np.where(has, "rel", None).tolist(), pa.string())
    columns["anno_data"] = _geometry_array(ann, src, part, kind)
    columns["anno_lbl"] = _label_array(dataset, src)
    conf = np.where(has, confidences(ann.confidence[at]), np.nan) if rows else np.zeros(0)
    columns["anno_confidence"] = pa.array(conf, mask=np.isnan(conf))
    keys, data_values, dropped = data_rows(ann, skip=("labels",))
    for reason, count in dropped.items():
        report.drop(reason, count)
    for key, values in zip(keys, data_values, strict=True):
        column = {"author": "anno_user", "comment": "anno_comment"}.get(key, f"anno_{key}")
        if column in columns:
            report.drop(f"data:{key}", len(ann))
            continue
        cells = np.array([*values, None], dtype=object)  # -1 picks the trailing None
        columns[column] = _data_array(cells[np.where(has, src, -1)].tolist())
    report.annotations = int(has.sum()) + len(il_rows)

    if layout == "lost1":
        columns = _to_lost1(columns)
    table = pa.table(columns)
    table = table.replace_schema_metadata({_LABELS_KEY: json.dumps(list(dataset.labels)).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    loc.write_bytes(sink.getvalue())
    return report


def _lists(values: np.ndarray, count_per_group: np.ndarray, group_of_row: np.ndarray) -> Any:
    """list<string> array whose row r holds the names of group ``group_of_row[r]``;
    ``values`` lists every group's names one group after the other."""
    import pyarrow as pa

    starts = np.cumsum(count_per_group) - count_per_group
    counts = count_per_group[group_of_row]
    total = int(counts.sum())
    take = np.repeat(starts[group_of_row], counts) + (
        np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    flat = pa.array(values.tolist(), pa.string()).take(pa.array(take, pa.int64()))
    return pa.ListArray.from_arrays(pa.array(offsets), flat)


def _label_array(dataset: Dataset, src: np.ndarray) -> Any:
    """anno_lbl: the shape's label as a one-name list (all names for multi-label shapes)."""
    import pyarrow as pa

    ann = dataset.annotations
    names = np.array([*dataset.labels, None], dtype=object)
    label = np.where(src >= 0, ann.label[np.maximum(src, 0)], -1)
    multi = ann.data.get("labels")
    counts = (label >= 0).astype(np.int64)
    lists: dict[int, list[str]] = {}
    if multi is not None:
        for r in np.flatnonzero(src >= 0).tolist():
            value = multi[src[r]]
            if value is not None:
                lists[r] = [str(x) for x in value]
                counts[r] = len(lists[r])
    if not lists:
        flat = names[label[label >= 0]]
    else:
        flat = np.array(
            [x for r in np.flatnonzero(counts).tolist() for x in lists.get(r, [names[label[r]]])],
            dtype=object,
        )
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.tolist(), pa.string()))


def _geometry_array(ann: Annotations, src: np.ndarray, part: np.ndarray, kind: np.ndarray) -> Any:
    """anno_data as list<list<double>>: a box [[xc, yc, w, h]], a point [[x, y]], a line or a
    polygon part's exterior [[x, y], ...]; null for the rows without a shape."""
    import pyarrow as pa

    rows = len(src)
    shaped = np.flatnonzero((kind == int(Kind.LINE)) | (kind == int(Kind.POLYGON)))
    points: dict[int, np.ndarray] = {}
    for r in shaped.tolist():
        if kind[r] == int(Kind.LINE):
            pts = np.asarray(ann.shape[src[r]], dtype=np.float64)
        else:
            pts = np.asarray(ann.shape[src[r]][part[r]][0], dtype=np.float64)
        points[r] = pts.reshape(-1, 2)
    # inner lists per row and numbers per inner list
    inner = np.zeros(rows, dtype=np.int64)
    width = np.full(rows, 2, dtype=np.int64)
    inner[(kind == int(Kind.BBOX)) | (kind == int(Kind.POINT))] = 1
    width[kind == int(Kind.BBOX)] = 4
    for r, pts in points.items():
        inner[r] = len(pts)
    sizes = inner * width
    starts = np.cumsum(sizes) - sizes
    values = np.empty(int(sizes.sum()), dtype=np.float64)
    box = ann.box[np.maximum(src, 0)]
    for code, w in ((Kind.BBOX, 4), (Kind.POINT, 2)):
        sel = np.flatnonzero(kind == int(code))
        values[(starts[sel][:, None] + np.arange(w)).reshape(-1)] = box[sel, :w].reshape(-1)
    for r, pts in points.items():
        values[starts[r] : starts[r] + sizes[r]] = pts.reshape(-1)
    inner_width = np.repeat(width, inner)
    inner_offsets = np.concatenate([[0], np.cumsum(inner_width)]).astype(np.int32)
    outer_offsets = np.concatenate([[0], np.cumsum(inner)]).astype(np.int32)
    inner_lists = pa.ListArray.from_arrays(pa.array(inner_offsets), pa.array(values))
    return pa.ListArray.from_arrays(pa.array(outer_offsets), inner_lists, mask=pa.array(src < 0))


def _data_array(values: list[Any]) -> Any:
    """An arrow array for one extra data column: native types when they agree, else JSON."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        texts = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        return pa.array(texts, pa.string())


def _to_lost1(columns: dict[str, Any]) -> dict[str, Any]:
    """The same table with LOST 1.x column names and ``anno.data`` as LOST's JSON objects."""
    import pyarrow as pa

    reverse = {"anno_user": "anno.annotator", "anno_comment": "anno.comment"}
    reverse.update({v: k for k, v in LEGACY_COLUMNS.items() if v not in reverse})
    texts = []
    dtypes = columns["anno_dtype"].to_pylist()
    for dtype, geom in zip(dtypes, columns["anno_data"].to_pylist(), strict=True):
        if dtype is None:
            texts.append(None)
        elif dtype == "bbox":
            x, y, w, h = geom[0]
            texts.append(json.dumps({"x": x, "y": y, "w": w, "h": h}))
        elif dtype == "point":
            texts.append(json.dumps({"x": geom[0][0], "y": geom[0][1]}))
        else:
            texts.append(json.dumps([{"x": p[0], "y": p[1]} for p in geom]))
    out = {}
    for column, array in columns.items():
        if column in ("anno_style", "anno_format"):
            continue  # LOST 1.x has no such columns: always centre boxes, relative
        if column == "anno_data":
            array = pa.array(texts, pa.string())
        out[reverse.get(column, column.replace("_", ".", 1))] = array
    return out
