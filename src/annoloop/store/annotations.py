"""Annotations in bulk: checked insert of an ``Annotations`` struct, filtered reads as a
DataFrame or as an ``Annotations`` struct, delete.

The same geometry columns (kind, label, relative centre box, shape JSON, confidence) are used
by predictions: :func:`geometry_columns` checks a struct against the store and turns it into
driver-ready columns for both tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import KIND_NAMES, Kind
from annoloop.geometry.shapes_json import shapes_from_json, shapes_to_json
from annoloop.geometry.validate import validate_annotations
from annoloop.store import bulk
from annoloop.store.labels import label_ids, label_name_map
from annoloop.store.workitems import task_ids

_SHAPE_KINDS = (int(Kind.LINE), int(Kind.POLYGON), int(Kind.MASK))
_SOURCE = re.compile(r"^(human|model:[^\s@]+(@[^\s@]+)?)$")


def check_source(source: Any, where: str = "source") -> str:
    """``'human'`` or ``'model:NAME@VERSION'`` (the version part may be left out)."""
    if not isinstance(source, str) or not _SOURCE.match(source) or len(source) > 200:
        raise InvalidInput(f"must be 'human' or 'model:NAME@VERSION', got {source!r}", where)
    return source


def check_author(author: Any, where: str = "author") -> str:
    """An author name: a string of at most 200 characters."""
    if not isinstance(author, str) or len(author) > 200 or "\x00" in author:
        raise InvalidInput(f"must be a name of at most 200 characters, got {author!r}", where)
    return author


def constant_or_column(values: Any) -> Any:
    """A single Python value when every entry is the same (written once), else a list."""
    arr = np.asarray(values)
    if arr.size and arr.dtype != object and arr.dtype.kind != "f" and (arr == arr.flat[0]).all():
        return arr.flat[0].item()
    if arr.size and arr.dtype.kind == "f":
        nan = np.isnan(arr)
        if nan.all():
            return None
        if not nan.any() and (arr == arr.flat[0]).all():
            return float(arr.flat[0])
    return bulk.column(arr)


# -- checks against the store ------------------------------------------------------------------


def image_sizes(conn: Connection, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted known image ids among ``ids`` and their widths and heights."""
    uniq = np.unique(ids)
    if uniq.size == 0:
        return uniq, uniq.astype(np.float64), uniq.astype(np.float64)
    sql, params = bulk.in_filter(conn, "id", uniq.tolist())
    rows = bulk.fetch_rows(conn, f"SELECT id, width, height FROM image WHERE {sql}", params)
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    order = np.argsort(table[:, 0])
    table = table[order]
    return table[:, 0], table[:, 1].astype(np.float64), table[:, 2].astype(np.float64)


def _known_ids(conn: Connection, table: str, ids: np.ndarray) -> np.ndarray:
    uniq = np.unique(ids)
    if uniq.size == 0:
        return uniq
    sql, params = bulk.in_filter(conn, "id", uniq.tolist())
    rows = bulk.fetch_rows(conn, f'SELECT id FROM "{table}" WHERE {sql}', params)
    return np.sort(np.array([r[0] for r in rows], dtype=np.int64))


def _first_unknown(values: np.ndarray, known: np.ndarray) -> int | None:
    bad = ~np.isin(values, known)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


@dataclass
class GeometryColumns:
    """Driver-ready columns of a checked struct (one list per column, or one shared value)."""

    n: int
    columns: dict[str, Any]


def geometry_columns(
    conn: Connection, ann: Annotations, *, validate: bool = True, where: str = "annotations"
) -> GeometryColumns:
    """Check ``ann`` against the store and build the image/kind/label/box/shape/confidence
    columns. Unknown images or labels, bad kinds and (with ``validate``) geometry outside the
    image raise InvalidInput naming the row."""
    n = len(ann)
    kinds = ann.kind.astype(np.int64)
    bad_kind = np.flatnonzero((kinds < 0) | (kinds > int(max(Kind))))
    if bad_kind.size:
        i = int(bad_kind[0])
        raise InvalidInput(f"row {i}: unknown shape kind code {kinds[i]}", where)
    known_images, widths, heights = image_sizes(conn, ann.image)
    i = _first_unknown(ann.image, known_images)
    if i is not None:
        raise InvalidInput(f"row {i}: no image with id {int(ann.image[i])} in the project", where)
    labels = ann.label
    below = np.flatnonzero(labels < -1)
    if below.size:
        i = int(below[0])
        raise InvalidInput(f"row {i}: label id {int(labels[i])} (use -1 for none)", where)
    has_label = labels >= 0
    known_labels = _known_ids(conn, "label_class", labels[has_label])
    i = _first_unknown(labels, np.concatenate([known_labels, [-1]]))
    if i is not None:
        raise InvalidInput(f"row {i}: no label with id {int(labels[i])} in the project", where)
    conf = ann.confidence.astype(np.float64)
    if np.isinf(conf).any():
        i = int(np.flatnonzero(np.isinf(conf))[0])
        raise InvalidInput(f"row {i}: confidence is infinite", where)
    if validate:
        pos = np.searchsorted(known_images, ann.image)
        validate_annotations(ann, widths[pos], heights[pos], where=where)
    box = ann.box
    is_label = kinds == int(Kind.LABEL)
    if is_label.any():
        box = box.copy()
        box[is_label] = np.nan  # image labels have no geometry
    shape_rows = np.flatnonzero(np.isin(kinds, _SHAPE_KINDS))
    shape_col: Any = None
    if shape_rows.size:
        texts = shapes_to_json(kinds[shape_rows], ann.shape[shape_rows])
        if any(t is not None for t in texts):
            shape_col = [None] * n
            for row, text in zip(shape_rows.tolist(), texts, strict=True):
                shape_col[row] = text
    if has_label.all():
        label_col: Any = constant_or_column(labels)
    else:
        label_col = [
            v if ok else None for v, ok in zip(labels.tolist(), has_label.tolist(), strict=True)
        ]
    columns = {
        "image_id": constant_or_column(ann.image),
        "kind": constant_or_column(kinds),
        "label_id": label_col,
        "x": constant_or_column(box[:, 0]),
        "y": constant_or_column(box[:, 1]),
        "w": constant_or_column(box[:, 2]),
        "h": constant_or_column(box[:, 3]),
        "shape": shape_col,
        "confidence": constant_or_column(conf),
    }
    return GeometryColumns(n=n, columns=columns)


def _per_row_text(values: np.ndarray, check: Any, name: str) -> Any:
    arr = np.asarray(values, dtype=object)
    uniq = {v for v in arr.tolist()}
    for v in uniq:
        if v is not None and v == v:  # NaN is "missing"
            check(v, f"annotations data[{name!r}] value {v!r}")
    out = [None if (v is None or v != v or v == "") else str(v) for v in arr.tolist()]
    return out[0] if len(set(out)) == 1 else out


def insert_annotations(
    conn: Connection,
    ann: Annotations,
    *,
    task_id: int | None = None,
    work_item_id: int | None = None,
    source: str = "human",
    author: str | None = None,
    time_spent: float | None = None,
    validate: bool = True,
) -> np.ndarray:
    """Insert ``ann`` (image ids, label ids or -1) in the current transaction; returns ids.

    ``ann.data`` columns ``source``, ``author``, ``time_spent`` and ``work_item`` override the
    keywords row by row.
    """
    n = len(ann)
    if n == 0:
        return np.zeros(0, np.int64)
    geo = geometry_columns(conn, ann, validate=validate)
    cols = dict(geo.columns)
    cols["task_id"] = task_id
    src: Any = check_source(source)
    if "source" in ann.data:
        src = _per_row_text(ann.data["source"], check_source, "source")
        if isinstance(src, list):
            src = [v or "human" for v in src]
        src = src or "human"
    cols["source"] = src
    who: Any = None if author is None else check_author(author)
    if "author" in ann.data:
        who = _per_row_text(ann.data["author"], check_author, "author")
    cols["author"] = who
    spent: Any = time_spent
    if "time_spent" in ann.data:
        values = np.asarray(ann.data["time_spent"], dtype=np.float64)
        if np.isinf(values).any() or (values < 0).any():
            i = int(np.flatnonzero(np.isinf(values) | (values < 0))[0])
            raise InvalidInput(f"row {i}: time_spent must be a non-negative number", "annotations")
        spent = constant_or_column(values)
    elif spent is not None and (not np.isfinite(spent) or spent < 0):
        raise InvalidInput(f"time_spent must be a non-negative number, got {spent}", "annotations")
    cols["time_spent"] = spent
    item: Any = work_item_id
    if "work_item" in ann.data:
        values = np.asarray(ann.data["work_item"], dtype=np.float64)
        valid = np.isfinite(values) & (values >= 0)
        known = _known_ids(conn, "work_item", values[valid].astype(np.int64))
        ids = np.where(valid, values, -1).astype(np.int64)
        i = _first_unknown(ids[valid], known)
        if i is not None:
            row = int(np.flatnonzero(valid)[i])
            raise InvalidInput(f"row {row}: no work item with id {ids[row]}", "annotations")
        item = [int(v) if ok else None for v, ok in zip(ids.tolist(), valid.tolist(), strict=True)]
    cols["work_item_id"] = item
    now = bulk.timestamp_param(conn)
    cols["created_at"] = now
    cols["updated_at"] = now
    ids = bulk.reserve_ids(conn, "annotation", n)
    bulk.insert_with_ids(conn, "annotation", ids, cols, n)
    return ids


# -- reading -----------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, int, np.integer, Kind)):
        return [value]
    return list(np.asarray(value, dtype=object).reshape(-1))


def build_filters(
    conn: Connection,
    alias: str,
    *,
    task: Any = None,
    image: Any = None,
    label: Any = None,
    kind: Any = None,
    source: Any = None,
) -> tuple[str, list[Any]]:
    """``WHERE`` text and parameters for the annotation filters (single value or list each)."""
    clauses: list[str] = []
    params: list[Any] = []

    def add(col: str, values: list[Any]) -> None:
        sql, p = bulk.in_filter(conn, f"{alias}.{col}", values)
        clauses.append(sql)
        params.extend(p)

    if task is not None:
        add("task_id", task_ids(conn, _as_list(task)))
    if image is not None:
        add("image_id", [int(v) for v in _as_list(image)])
    if label is not None:
        values = _as_list(label)
        names = [v for v in values if isinstance(v, str)]
        ids = [int(v) for v in values if not isinstance(v, str)]
        if names:
            ids.extend(label_ids(conn, names).tolist())
        add("label_id", ids)
    if kind is not None:
        add("kind", [int(Kind.parse(k)) for k in _as_list(kind)])
    if source is not None:
        add("source", [str(s) for s in _as_list(source)])
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# (name, column, kind) as read by bulk.read_columns; the geometry part is shared with predictions
GEOMETRY_READ = [
    ("id", "t.id", "int"),
    ("image_id", "t.image_id", "int"),
    ("kind", "t.kind", "int"),
    ("label_id", "t.label_id", "int"),
    ("x", "t.x", "float"),
    ("y", "t.y", "float"),
    ("w", "t.w", "float"),
    ("h", "t.h", "float"),
    ("confidence", "t.confidence", "float"),
    ("shape_text", "t.shape", "sparse"),
    ("created_at", "t.created_at", "time"),
]
_ANNOTATION_READ = [
    *GEOMETRY_READ,
    ("task_id", "t.task_id", "int"),
    ("source", "t.source", "text"),
    ("author", "t.author", "text"),
    ("time_spent", "t.time_spent", "float"),
    ("work_item_id", "t.work_item_id", "int"),
]


def utc_times(values: np.ndarray) -> pd.DatetimeIndex:
    """datetime64 values (UTC) as a timezone-aware index."""
    return pd.DatetimeIndex(values).tz_localize("UTC")


def parse_shapes(kinds: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Object array of parsed shapes: JSON is parsed only for rows that have one."""
    out = np.empty(len(texts), dtype=object)
    rows = np.flatnonzero(np.not_equal(texts, None)) if len(texts) else np.zeros(0, np.int64)
    if rows.size:
        out[rows] = shapes_from_json(kinds[rows], texts[rows].tolist())
    return out


def label_names_for(conn: Connection, ids: np.ndarray) -> np.ndarray:
    """Label names per id (None for -1), through a per-unique-id lookup."""
    names = label_name_map(conn)
    uniq, inverse = np.unique(ids, return_inverse=True)
    table = np.array([names.get(int(u)) for u in uniq], dtype=object)
    return table[inverse.reshape(-1)] if ids.size else np.zeros(0, dtype=object)


def kind_categories(codes: np.ndarray) -> pd.Categorical:
    """Kind codes as a categorical of kind names (cheap: no string per row)."""
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=list(KIND_NAMES))


def as_object(values: np.ndarray) -> pd.Series:
    """Strings kept as an object column: pandas would otherwise convert every value."""
    return pd.Series(values, dtype=object, copy=False)


def nullable_int(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Ids with -1 for none -> a nullable Int64 array."""
    values = values.astype(np.int64)
    return pd.arrays.IntegerArray(values, values < 0)


def _read(conn: Connection, filters: dict[str, Any]) -> dict[str, np.ndarray]:
    where, params = build_filters(conn, "t", **filters)
    cols = bulk.read_columns(conn, "annotation", where, params, _ANNOTATION_READ)
    cols["kind"] = cols["kind"].astype(np.int8)
    return cols


ANNOTATION_COLUMNS = [
    "id", "image_id", "task_id", "kind", "label_id", "label", "x", "y", "w", "h", "confidence",
    "shape", "source", "author", "time_spent", "created_at", "work_item_id",
]  # fmt: skip


def annotations_frame(conn: Connection, **filters: Any) -> pd.DataFrame:
    """The filtered annotations as a DataFrame (columns :data:`ANNOTATION_COLUMNS`)."""
    cols = _read(conn, filters)
    kinds = cols["kind"]
    return pd.DataFrame(
        {
            "id": cols["id"],
            "image_id": cols["image_id"],
            "task_id": nullable_int(cols["task_id"]),
            "kind": kind_categories(kinds),
            "label_id": nullable_int(cols["label_id"]),
            "label": as_object(label_names_for(conn, cols["label_id"])),
            "x": cols["x"],
            "y": cols["y"],
            "w": cols["w"],
            "h": cols["h"],
            "confidence": cols["confidence"],
            "shape": parse_shapes(kinds, cols["shape_text"]),
            "source": as_object(cols["source"]),
            "author": as_object(cols["author"]),
            "time_spent": cols["time_spent"],
            "created_at": utc_times(cols["created_at"]),
            "work_item_id": nullable_int(cols["work_item_id"]),
        },
        columns=ANNOTATION_COLUMNS,
    )


def annotation_arrays(conn: Connection, **filters: Any) -> Annotations:
    """The filtered annotations as an ``Annotations`` struct: ``label`` holds label ids (-1 for
    none); ``data`` holds ``id``, ``task`` (-1 for none), ``source`` and ``author``."""
    cols = _read(conn, filters)
    box = np.stack([cols["x"], cols["y"], cols["w"], cols["h"]], axis=1).reshape(-1, 4)
    return Annotations(
        image=cols["image_id"],
        kind=cols["kind"],
        label=cols["label_id"],
        box=box,
        confidence=cols["confidence"].astype(np.float32),
        shape=parse_shapes(cols["kind"], cols["shape_text"]),
        data={
            "id": cols["id"],
            "task": cols["task_id"],
            "source": cols["source"].astype(object),
            "author": cols["author"].astype(object),
        },
    )


def delete_annotations(conn: Connection, ids: Any) -> int:
    """Delete annotations by id; returns how many were deleted (unknown ids are ignored)."""
    values = np.atleast_1d(np.asarray(ids, dtype=np.int64)).reshape(-1)
    if values.size == 0:
        return 0
    sql, params = bulk.in_filter(conn, "id", np.unique(values).tolist())
    cur = bulk.raw_cursor(conn)
    cur.execute(f"DELETE FROM annotation WHERE {sql}", params)
    count = cur.rowcount
    cur.close()
    return int(count)
