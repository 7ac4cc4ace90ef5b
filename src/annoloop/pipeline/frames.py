"""Columnar reads of what annotation tasks produced, and LOST's ``to_df`` frame built from them.

A script's input annotations are those of the annotation tasks before it. They are read
column-wise (:func:`annoloop.store.bulk.read_columns`) and the LOST frame is assembled with
numpy: one row per 2D annotation, one row per work item that has none, image labels gathered
per work item into ``img_lbl``.

LOST columns (values in annoloop terms): ``img_uid`` (work item id), ``img_timestamp`` (when
the item was finished), ``img_state`` (open, locked, done, junk), ``img_sim_class``,
``img_frame_n``, ``img_path`` (local path or URL of the image), ``img_iteration``,
``img_user_id``, ``img_anno_time``, ``img_lbl`` / ``img_lbl_id`` (lists of image-label names /
ids), ``img_user``, ``img_is_junk``, ``img_fs_name``, ``anno_uid`` (annotation id),
``anno_timestamp``, ``anno_state``, ``anno_dtype`` (point, bbox, line, polygon, mask),
``anno_sim_class``, ``anno_iteration``, ``anno_user_id``, ``anno_user``, ``anno_confidence``,
``anno_time`` (seconds spent), ``anno_lbl`` / ``anno_lbl_id`` (lists), ``anno_style``
(``xcycwh`` for boxes), ``anno_format`` (``rel``), ``anno_comment``, ``anno_data`` (LOST's lists:
bbox ``[x, y, w, h]`` centre-relative, point ``[x, y]``, line / polygon ``[[x, y], ...]``, mask:
the COCO RLE dict). Extra columns: ``img_id`` (project image id), ``img_task`` (task name),
``anno_source``.

Text columns are categorical (each distinct value stored once); integer columns with gaps are
nullable ``Int64``. The label lists are shared between rows with the same label, so they are
read-only (:class:`ReadOnlyList`): copy one with ``list(value)`` to change it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from annoloop.geometry.kinds import KIND_NAMES, Kind
from annoloop.geometry.shapes_json import shapes_from_json
from annoloop.pipeline.lazy_column import Constant, LazyObjectArray
from annoloop.store import bulk

LOST_COLUMNS = [
    "img_uid", "img_timestamp", "img_state", "img_sim_class", "img_frame_n", "img_path",
    "img_iteration", "img_user_id", "img_anno_time", "img_lbl", "img_lbl_id", "img_user",
    "img_is_junk", "img_fs_name", "anno_uid", "anno_timestamp", "anno_state", "anno_dtype",
    "anno_sim_class", "anno_iteration", "anno_user_id", "anno_user", "anno_confidence",
    "anno_time", "anno_lbl", "anno_lbl_id", "anno_style", "anno_format", "anno_comment",
    "anno_data", "img_id", "img_task", "anno_source",
]  # fmt: skip

# annotation columns read as numbers: (name, SQL, kind) with kind int | float | time
_NUMERIC = [
    ("id", "t.id", "int"),
    ("image_id", "t.image_id", "int"),
    ("task_id", "t.task_id", "int"),
    ("work_item_id", "t.work_item_id", "int"),
    ("kind", "t.kind", "int"),
    ("label_id", "t.label_id", "int"),
    ("x", "t.x", "float"),
    ("y", "t.y", "float"),
    ("w", "t.w", "float"),
    ("h", "t.h", "float"),
    ("confidence", "t.confidence", "float"),
    ("time_spent", "t.time_spent", "float"),
    ("created_at", "t.created_at", "time"),
]
_TEXT = ("author", "source")
_ITEM_COLUMNS = [
    ("id", "t.id", "int"),
    ("task_id", "t.task_id", "int"),
    ("image_id", "t.image_id", "int"),
    ("iteration", "t.iteration", "int"),
    ("state", "t.state", "text"),
    ("locked_by", "t.locked_by", "text"),
    ("finished_at", "t.finished_at", "sparse"),  # NULL while open: not a "time" column
]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small lists and strings are made:
    none of them form cycles, and the collector's passes would double the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ReadOnlyList(list):  # type: ignore[type-arg]
    """A list shared by many rows of a frame, so it refuses changes (``list(x)`` copies it)."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("this list is shared by several rows of the frame: copy it with list()")

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        return (ReadOnlyList, (list(self),))


_EMPTY = ReadOnlyList()


@dataclass
class TaskData:
    """Annotations and work items of some tasks, column-wise, plus lookups.

    ``ann``: numeric arrays (ids, kind, label_id -1 for none, box, confidence, time_spent as
    float with NaN, created_at datetime64[us]), ``author`` and ``source`` as categoricals,
    ``shape`` as an object array of JSON texts (None for most rows). ``items``: the work items.
    ``images``: sorted image ids with their paths and frame numbers.
    """

    ann: dict[str, Any]
    items: dict[str, np.ndarray]
    image_ids: np.ndarray
    image_paths: list[str]
    image_frames: np.ndarray  # float, NaN for none
    label_names: dict[int, str]
    task_names: dict[int, str]

    def shapes(self) -> np.ndarray:
        """Parsed shapes of the annotations (None where there is none)."""
        return parse_shapes(self.ann["kind"], self.ann["shape"])


def parse_shapes(kinds: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Shape JSON texts -> shapes (object array); only rows with a text are parsed."""
    out = np.empty(len(texts), dtype=object)
    rows = np.flatnonzero(np.not_equal(texts, None)) if len(texts) else np.zeros(0, np.int64)
    if rows.size:
        out[rows] = shapes_from_json(np.asarray(kinds)[rows], np.asarray(texts)[rows].tolist())
    return out


# -- reading -----------------------------------------------------------------------------------


def _read_annotations(
    conn: Connection, where: str, params: list[Any], task_ids: list[int]
) -> dict[str, Any]:
    """The annotations' columns (bulk.read_columns: Arrow through connectorx for large SQLite
    reads when it is installed, a binary COPY on PostgreSQL); text columns as categoricals.
    The task column is read only when there are several tasks (else the filter says it)."""
    one_task = len(task_ids) == 1
    columns = [
        *[(n, s, k) for n, s, k in _NUMERIC if not (one_task and n == "task_id")],
        *[(n, f"t.{n}", "category") for n in _TEXT],
        ("shape", "t.shape", "sparse"),
    ]
    out = dict(bulk.read_columns(conn, "annotation", where, params, columns))
    if one_task:
        out["task_id"] = np.full(len(out["id"]), task_ids[0], dtype=np.int64)
    return out


def unique_ids(ids: np.ndarray) -> np.ndarray:
    """Sorted distinct ids (non-negative): a presence table when they are dense enough,
    which is linear, else a sort."""
    if ids.size and ids.min() >= 0 and ids.max() < 4 * ids.size + 1024:
        present = np.zeros(int(ids.max()) + 1, dtype=bool)
        present[ids] = True
        return np.flatnonzero(present)
    return np.unique(ids)


def positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Where each of ``ids`` stands in ``sorted_ids``: a lookup table when the ids are dense
    enough, else a binary search. An id that is not there gets some position in range
    (the caller checks ``sorted_ids[pos] == ids`` where that can happen)."""
    if not sorted_ids.size:
        return np.zeros(len(ids), dtype=np.int64)
    if sorted_ids[-1] < 4 * ids.size + 1024 and sorted_ids[0] >= 0:
        table = np.zeros(int(sorted_ids[-1]) + 1, dtype=np.int64)
        table[sorted_ids] = np.arange(sorted_ids.size)
        return table[np.clip(ids, 0, len(table) - 1)]
    return np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)


def _image_lookup(
    conn: Connection, ids: np.ndarray, media: Any
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Sorted unique image ids, their full paths (local) or URLs, and frame numbers."""
    uniq = unique_ids(ids)
    frames = np.full(len(uniq), np.nan)
    if not uniq.size:
        return uniq, [], frames
    root = media.local_path()
    prefix = (str(root) if root is not None else str(media)) + "/"
    found_ids, locs, found_frames = _image_rows(conn, uniq)
    at = positions(uniq, found_ids)
    wanted = uniq[at] == found_ids
    locations = np.full(len(uniq), "", dtype=object)
    locations[at[wanted]] = locs[wanted]
    frames[at[wanted]] = found_frames[wanted]
    paths = [loc if "://" in loc or loc[:1] == "/" else prefix + loc for loc in locations]
    return uniq, paths, frames


def _image_rows(conn: Connection, uniq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, locations and frame numbers (NaN for none) of the image rows for ``uniq`` (sorted
    ids), perhaps with others in between: a dense set is read as one id range, through the
    columnar reader on SQLite; a sparse one by lists of ids."""
    columns = [
        ("id", "t.id", "int"),
        ("location", "t.location", "text"),
        ("frame", "t.frame", "float"),
    ]
    mark = bulk.placeholder(conn)
    if uniq[-1] - uniq[0] < 2 * uniq.size and bulk.is_sqlite(conn):
        where, params = f" WHERE t.id >= {mark} AND t.id <= {mark}", [int(uniq[0]), int(uniq[-1])]
        cols = bulk.read_columns(conn, "image", where, params, columns)
        return cols["id"], np.asarray(cols["location"], dtype=object), cols["frame"]
    rows: list[tuple] = []
    for start in range(0, uniq.size, 50_000):
        sql, params = bulk.in_filter(conn, "id", uniq[start : start + 50_000].tolist())
        rows += bulk.fetch_rows(conn, f"SELECT id, location, frame FROM image WHERE {sql}", params)
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, dtype=object), np.zeros(0)
    ids, locs, frame_values = zip(*rows, strict=True)
    objects = np.empty(len(locs), dtype=object)
    objects[:] = locs
    return np.asarray(ids, dtype=np.int64), objects, np.array(frame_values, dtype=float)


def read_task_data(conn: Connection, task_ids: Sequence[int], media: Any) -> TaskData:
    """Everything the tasks hold, in the caller's read transaction."""
    from annoloop.store.labels import label_name_map

    tids = [int(t) for t in task_ids]
    sql, params = bulk.in_filter(conn, "t.task_id", tids) if tids else ("1 = 0", [])
    where = f" WHERE {sql}"
    with gc_paused():
        ann = _read_annotations(conn, where, params, tids)
    items = bulk.read_columns(conn, "work_item", where, params, _ITEM_COLUMNS)
    image_ids, paths, frames = _image_lookup(
        conn, np.concatenate([items["image_id"], ann["image_id"]]).astype(np.int64), media
    )
    tasks: dict[int, str] = {}
    if tids:
        tsql, tparams = bulk.in_filter(conn, "id", tids)
        tasks = {
            int(i): n
            for i, n in bulk.fetch_rows(conn, f"SELECT id, name FROM task WHERE {tsql}", tparams)
        }
    return TaskData(ann, items, image_ids, paths, frames, label_name_map(conn), tasks)


# -- the LOST frame ----------------------------------------------------------------------------


def _filled(n: int, value: Any) -> np.ndarray:
    """An object array of ``n`` references to ``value`` (np.full would unpack a list)."""
    out = np.empty(n, dtype=object)
    out.fill(value)
    return out


def _objects(values: list[Any]) -> np.ndarray:
    """A 1-D object array holding ``values`` as they are (lists stay lists)."""
    return np.fromiter(values, dtype=object, count=len(values))


def anno_data(kinds: np.ndarray, box: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """LOST's ``anno_data`` per row: bbox [x, y, w, h], point [x, y], line / polygon
    [[x, y], ...] (a polygon's exterior ring), mask: its RLE dict."""
    n = len(kinds)
    out = np.empty(n, dtype=object)
    is_box = kinds == int(Kind.BBOX)
    if is_box.any():
        out[is_box] = _objects(box[is_box].tolist())
    is_point = kinds == int(Kind.POINT)
    if is_point.any():
        out[is_point] = _objects(box[is_point, :2].tolist())
    for row in np.flatnonzero(kinds == int(Kind.LINE)).tolist():
        shape = shapes[row]
        out[row] = None if shape is None else np.asarray(shape).tolist()
    for row in np.flatnonzero(kinds == int(Kind.POLYGON)).tolist():
        shape = shapes[row]
        out[row] = None if not shape else np.asarray(shape[0][0]).tolist()
    for row in np.flatnonzero(kinds == int(Kind.MASK)).tolist():
        out[row] = shapes[row]
    return out


class AnnoDataSource:
    """``anno_data`` made on access (:mod:`.lazy_column`): rows below ``len(kinds)`` are
    annotations (kind, box, shape JSON text), rows after them work items without any."""

    def __init__(self, kinds: np.ndarray, xywh: list[np.ndarray], shape_texts: np.ndarray) -> None:
        self.kinds, self.xywh, self.shape_texts = kinds, xywh, shape_texts

    def values(self, rows: np.ndarray) -> np.ndarray:
        out = np.full(len(rows), None, dtype=object)
        ann = np.flatnonzero(rows < len(self.kinds))
        if ann.size:
            r = rows[ann]
            kinds = self.kinds[r]
            box = np.stack([c[r] for c in self.xywh], axis=1).reshape(-1, 4)
            out[ann] = anno_data(kinds, box, parse_shapes(kinds, self.shape_texts[r]))
        return out

    def missing(self, rows: np.ndarray) -> np.ndarray:
        out = rows >= len(self.kinds)  # work items without annotations
        # boxes and points always have data: only rows with a shape are made to look
        shaped = np.flatnonzero(~out)
        shaped = shaped[~np.isin(self.kinds[rows[shaped]], (int(Kind.BBOX), int(Kind.POINT)))]
        if shaped.size:
            out[shaped] = np.equal(self.values(rows[shaped]), None)
        return out


def _label_lists(ids: np.ndarray, names: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row ``[name]`` and ``[id]`` (``[]`` for no label): one shared read-only list per
    label, picked by fancy indexing (no Python work per row)."""
    if not len(ids):
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    shifted = ids + 1  # -1 (no label) -> 0: the id helpers take non-negative ids
    uniq = unique_ids(shifted)
    inverse = positions(uniq, shifted)
    uniq = uniq - 1
    by_name = _objects([ReadOnlyList([names.get(int(u))]) if u >= 0 else _EMPTY for u in uniq])
    by_id = _objects([ReadOnlyList([int(u)]) if u >= 0 else _EMPTY for u in uniq])
    return by_name[inverse], by_id[inverse]


def _i64(values: Any) -> np.ndarray:
    """``values`` as int64, copied only when they are not int64 already (a million-row copy
    costs more than the work done on it)."""
    return np.asarray(values, dtype=np.int64)


def _categorical(codes: np.ndarray, categories: Sequence[Any]) -> pd.Categorical:
    return pd.Categorical.from_codes(_i64(codes), categories=list(categories))


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(_i64(values), np.asarray(missing, dtype=bool))


def _item_labels(
    data: TaskData, item_pos: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per work item: read-only lists of its image labels' names and ids."""
    n_items = len(data.items["id"])
    names = _filled(n_items, _EMPTY)
    ids = _filled(n_items, _EMPTY)
    kinds = data.ann["kind"]
    rows = np.flatnonzero((kinds == int(Kind.LABEL)) & ok & (data.ann["label_id"] >= 0))
    if rows.size:
        order = np.argsort(item_pos[rows], kind="stable")
        rows = rows[order]
        groups, starts = np.unique(item_pos[rows], return_index=True)
        labels = data.ann["label_id"][rows]
        for g, part in zip(groups.tolist(), np.split(labels, starts[1:]), strict=True):
            ids[g] = ReadOnlyList(part.tolist())
            names[g] = ReadOnlyList(data.label_names.get(int(v)) for v in part.tolist())
    return names, ids


def lost_frame(data: TaskData) -> pd.DataFrame:
    """LOST's ``to_df()`` frame of the tasks' work items and annotations (module docstring)."""
    with gc_paused():
        return _lost_frame(data)


def _lost_frame(data: TaskData) -> pd.DataFrame:
    ann, items = data.ann, data.items
    kinds = _i64(ann["kind"])
    item_ids = _i64(items["id"])
    n_items = len(item_ids)
    # each annotation's work item (position in the item arrays)
    wid = _i64(ann["work_item_id"])
    pos = positions(item_ids, wid)
    ok = (wid >= 0) & (n_items > 0)
    if n_items:
        ok &= item_ids[pos] == wid
    item_lbl, item_lbl_id = _item_labels(data, pos, ok)
    # one row per 2D annotation, then one per work item without any
    rows2d = np.flatnonzero(kinds != int(Kind.LABEL))
    every_ann_2d = len(rows2d) == len(kinds)

    def on2d(values: np.ndarray) -> np.ndarray:  # the 2D annotations' values (no copy if all)
        return values if every_ann_2d else values[rows2d]

    covered = np.zeros(n_items, dtype=bool)
    covered[on2d(pos)[on2d(ok)]] = True
    bare = np.flatnonzero(~covered)
    n2, nb = len(rows2d), len(bare)
    total = n2 + nb
    item_pos = _i64(np.concatenate([np.where(on2d(ok), on2d(pos), -1), bare]))
    no_item = item_pos < 0
    safe = np.where(no_item, 0, item_pos)
    is_ann = np.arange(total) < n2

    def per_item(values: np.ndarray, fill: Any = 0) -> np.ndarray:
        if not n_items:
            return _filled(total, fill) if values.dtype == object else np.full(total, fill)
        return values[safe]

    def item_lists(values: np.ndarray) -> np.ndarray:
        out = per_item(values, _EMPTY).copy()
        rows = np.flatnonzero(no_item)
        out[rows] = _filled(len(rows), _EMPTY)
        return out

    def per_ann(values: np.ndarray, fill: Any) -> np.ndarray:
        out = np.full(total, fill, dtype=np.asarray(values).dtype)
        out[:n2] = on2d(values)
        return out

    image_id = _i64(np.concatenate([on2d(ann["image_id"]), items["image_id"][bare]]))
    task_id = _i64(np.concatenate([on2d(ann["task_id"]), items["task_id"][bare]]))
    state_codes, states = pd.factorize(pd.Series(items["state"], dtype=object))
    user_codes, users = pd.factorize(pd.Series(items["locked_by"], dtype=object))
    state = np.where(no_item, -1, per_item(state_codes, -1))
    iteration = per_item(_i64(items["iteration"]))
    finished = pd.to_datetime(
        pd.Series(items["finished_at"], dtype=object), utc=True, format="mixed"
    )
    img_time = np.full(total, np.datetime64("NaT", "ns"))
    if n_items:
        img_time = finished.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")[safe]
        img_time[no_item] = np.datetime64("NaT", "ns")
    image_pos = positions(data.image_ids, image_id)
    task_order = sorted(data.task_names)
    kinds2d = on2d(kinds)
    lbl, lbl_id = _label_lists(_i64(on2d(ann["label_id"])), data.label_names)
    data_col = LazyObjectArray.of(
        AnnoDataSource(kinds2d, [on2d(ann[c]) for c in "xywh"], on2d(np.asarray(ann["shape"]))),
        total,
    )  # made on access: a million lists up front cost more than the store read
    every_row = np.arange(total, dtype=np.int64)

    def none_col() -> LazyObjectArray:  # one array per column: assigning to one changes it only
        return LazyObjectArray(Constant(None), every_row)

    blank = _filled(nb, _EMPTY)
    kind_codes = np.full(total, -1, np.int64)
    kind_codes[:n2] = kinds2d
    style = np.full(total, -1, np.int64)
    style[:n2][kinds2d == int(Kind.BBOX)] = 0
    created = np.full(total, np.datetime64("NaT"), dtype="datetime64[us]")
    created[:n2] = on2d(ann["created_at"])
    author, source = ann["author"], ann["source"]
    frame = {
        "img_uid": _nullable(per_item(item_ids), no_item),
        "img_timestamp": pd.DatetimeIndex(img_time).tz_localize("UTC"),
        "img_state": _categorical(state, states),
        "img_sim_class": none_col(),
        "img_frame_n": _nullable(
            np.nan_to_num(data.image_frames[image_pos], nan=-1),
            np.isnan(data.image_frames[image_pos]),
        ),
        "img_path": _categorical(image_pos, data.image_paths),
        "img_iteration": _nullable(iteration, no_item),
        "img_user_id": none_col(),
        "img_anno_time": np.full(total, np.nan),
        "img_lbl": item_lists(item_lbl),
        "img_lbl_id": item_lists(item_lbl_id),
        "img_user": _categorical(np.where(no_item, -1, per_item(user_codes, -1)), users),
        "img_is_junk": state == (list(states).index("junk") if "junk" in states else -2),
        "img_fs_name": none_col(),
        "anno_uid": _nullable(per_ann(_i64(ann["id"]), 0), ~is_ann),
        "anno_timestamp": pd.DatetimeIndex(created).tz_localize("UTC"),
        "anno_state": none_col(),
        "anno_dtype": _categorical(kind_codes, KIND_NAMES),
        "anno_sim_class": none_col(),
        "anno_iteration": _nullable(iteration, no_item | ~is_ann),
        "anno_user_id": none_col(),
        "anno_user": _categorical(
            np.concatenate([on2d(np.asarray(author.codes)), np.full(nb, -1)]), author.categories
        ),
        "anno_confidence": per_ann(ann["confidence"], np.nan),
        "anno_time": per_ann(ann["time_spent"], np.nan),
        "anno_lbl": np.concatenate([lbl, blank]),
        "anno_lbl_id": np.concatenate([lbl_id, blank]),
        "anno_style": _categorical(style, ["xcycwh"]),
        "anno_format": _categorical(np.where(is_ann, 0, -1), ["rel"]),
        "anno_comment": none_col(),
        "anno_data": data_col,
        "img_id": image_id,
        "img_task": _categorical(
            np.searchsorted(task_order, task_id), [data.task_names[t] for t in task_order]
        )
        if task_order
        else _categorical(np.full(total, -1), []),
        "anno_source": _categorical(
            np.concatenate([on2d(np.asarray(source.codes)), np.full(nb, -1)]), source.categories
        ),
    }
    # copy=False: each column stays its own block (consolidating would copy them all)
    return pd.DataFrame(frame, columns=LOST_COLUMNS, copy=False)
