"""Humans in the loop before the server exists: proposals of a work item, and annotations
imported from a file and matched to open work items.

Annotators can also work through the store directly (``Project.next_item`` then
``Project.submit``); :func:`item_proposals` gives what a script proposed for an item.
:func:`submit_from_file` closes many items at once from a file in any supported format: each
image of the file that has an open work item in the task gets its annotations (possibly none)
and the item is marked done, all in one transaction.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.store import bulk
from annoloop.store.engine import read_transaction, run_write


def item_proposals(project: Any, item: Any) -> Annotations:
    """The shapes a script proposed for a work item (an id or a WorkItem), as an Annotations
    struct on the item's image (``label``: label ids or -1; ``data["id"]``: proposal ids)."""
    from annoloop.pipeline.frames import parse_shapes

    item_id = int(getattr(item, "id", item))
    columns = [
        ("id", "t.id", "int"), ("image_id", "t.image_id", "int"), ("kind", "t.kind", "int"),
        ("label_id", "t.label_id", "int"), ("x", "t.x", "float"), ("y", "t.y", "float"),
        ("w", "t.w", "float"), ("h", "t.h", "float"), ("confidence", "t.confidence", "float"),
        ("shape", "t.shape", "sparse"),
    ]  # fmt: skip
    with read_transaction(project.engine) as conn:
        ph = bulk.placeholder(conn)
        cols = bulk.read_columns(
            conn, "pipe_proposal", f" WHERE t.work_item_id = {ph}", [item_id], columns
        )
    kinds = cols["kind"].astype(np.int8)
    box = np.stack([cols[c] for c in ("x", "y", "w", "h")], axis=1).reshape(-1, 4)
    return Annotations(
        image=cols["image_id"].astype(np.int64),
        kind=kinds,
        label=cols["label_id"].astype(np.int64),
        box=box,
        confidence=cols["confidence"].astype(np.float32),
        shape=parse_shapes(kinds, cols["shape"]),
        data={"id": cols["id"].astype(np.int64)},
    )


@dataclass
class SubmitReport:
    """What :func:`submit_from_file` did."""

    items_done: int = 0
    annotations_added: int = 0
    images_in_file: int = 0
    unmatched_images: list[str] = field(default_factory=list)  # no open item in the task
    locked_by_others: list[str] = field(default_factory=list)
    items_left_open: int = 0


def _match_keys(name: str) -> tuple[str, str]:
    clean = name.replace("\\", "/").lstrip("./")
    return clean, posixpath.basename(clean)


def submit_from_file(
    project: Any,
    task: str | int,
    format: str,
    path: Any,
    user: str,
    *,
    iteration: int | None = None,
    time_spent: float | None = None,
) -> SubmitReport:
    """Import annotations from ``path`` (a file in ``format``) into the open work items of
    ``task`` and close them as done, in one transaction.

    Images are matched to the task's open items (or items locked by ``user``) by stored
    location, then by file name; an image of the file without an open item is reported, not
    imported. Items locked by someone else are left alone (reported). Every annotation must
    use a shape kind and a label the task allows (InvalidInput naming the image otherwise,
    and nothing is written). ``iteration``: only items of that iteration (default: all open
    ones, the newest iteration first).
    """
    from annoloop.formats import load
    from annoloop.store.labels import check_name

    user = check_name(user, "user")
    dataset = load(format, path)
    where = f"{getattr(path, 'name', None) or str(path)}"
    with read_transaction(project.engine) as conn:
        from annoloop.store.workitems import task_id as find_task
        from annoloop.store.workitems import task_row

        tid = find_task(conn, task)
        trow = task_row(conn, tid)
    allowed_kinds = [int(Kind.parse(k)) for k in trow.kinds]
    ann = dataset.annotations
    bad = np.flatnonzero(~np.isin(ann.kind.astype(np.int64), allowed_kinds))
    if bad.size:
        i = int(bad[0])
        rec = dataset.images[int(ann.image[i])]
        raise InvalidInput(
            f"annotation {i} is a {Kind(int(ann.kind[i])).label}, which task {trow.name!r} does "
            f"not allow (allowed: {', '.join(trow.kinds)})",
            f"{where}: image {rec.file_name!r}",
        )

    def write(conn: sa.Connection) -> SubmitReport:
        # built here: run_write may run this function again after a lock timeout
        report = SubmitReport(images_in_file=len(dataset.images))
        from annoloop.store import annotations as _ann
        from annoloop.store import labels as _labels
        from annoloop.store.schema import utcnow

        ph = bulk.placeholder(conn)
        query = (
            "SELECT w.id, w.image_id, w.iteration, w.state, w.locked_by, i.location "
            "FROM work_item w JOIN image i ON i.id = w.image_id "
            f"WHERE w.task_id = {ph} AND w.state IN ('open', 'locked')"
        )
        params: list[Any] = [tid]
        if iteration is not None:
            query += f" AND w.iteration = {ph}"
            params.append(int(iteration))
        rows = bulk.fetch_rows(conn, query + " ORDER BY w.iteration DESC, w.id", params)
        now = utcnow()
        by_loc: dict[str, tuple] = {}
        by_base: dict[str, list[tuple]] = {}
        for row in rows:
            full, base = _match_keys(str(row[5]))
            by_loc.setdefault(full, row)
            by_base.setdefault(base, []).append(row)
        chosen: dict[int, tuple] = {}  # dataset image index -> item row
        for i, rec in enumerate(dataset.images):
            full, base = _match_keys(rec.file_name)
            row = by_loc.get(full)
            if row is None:
                candidates = by_base.get(base, [])
                images = {c[1] for c in candidates}
                row = candidates[0] if len(images) == 1 else None
            if row is None:
                report.unmatched_images.append(rec.file_name)
                continue
            locked_live = row[3] == "locked" and row[4] not in (None, user)
            if locked_live:
                report.locked_by_others.append(rec.file_name)
                continue
            chosen[i] = row
        # labels of the file -> ids; every label used must be allowed by the task
        label_ids = (
            _labels.label_ids(conn, dataset.labels, create=False)
            if dataset.labels
            else np.zeros(0, np.int64)
        )
        if trow.labels is not None and len(ann):
            used = ann.label[ann.label >= 0]
            ids = label_ids[used] if used.size else used
            outside = np.flatnonzero(~np.isin(ids, np.asarray(trow.labels, dtype=np.int64)))
            if outside.size:
                name = dataset.labels[int(used[outside[0]])]
                raise InvalidInput(f"label {name!r} is not allowed in task {trow.name!r}", where)
        # dataset image index -> project image id and work item id (-1: not imported)
        image_of = np.full(len(dataset.images), -1, np.int64)
        item_of = np.full(len(dataset.images), -1, np.int64)
        for i, row in chosen.items():
            item_of[i], image_of[i] = row[0], row[1]
        part = ann[item_of[ann.image] >= 0] if len(ann) else ann
        if len(part):
            index = part.image
            part.image = image_of[index]
            part.data = {"work_item": item_of[index]}
            if len(label_ids):
                part.label = np.where(part.label >= 0, label_ids[np.maximum(part.label, 0)], -1)
            part.label_names = []
            try:
                ids = _ann.insert_annotations(
                    conn,
                    part,
                    task_id=tid,
                    author=user,
                    time_spent=None if time_spent is None else float(time_spent),
                )
            except InvalidInput as exc:
                raise InvalidInput(exc.reason, f"{where}: {exc.where or 'annotations'}") from None
            report.annotations_added = len(ids)
        item_ids = sorted({row[0] for row in chosen.values()})
        if item_ids:
            sql, params = bulk.in_filter(conn, "id", item_ids)
            cur = bulk.raw_cursor(conn)
            cur.execute(
                f"UPDATE work_item SET state = 'done', locked_by = {ph}, locked_until = NULL, "
                f"finished_at = {ph} WHERE {sql}",
                [user, bulk.timestamp_param(conn, now), *params],
            )
            cur.close()
        report.items_done = len(item_ids)
        left = bulk.fetch_rows(
            conn,
            f"SELECT COUNT(*) FROM work_item WHERE task_id = {ph} AND state IN ('open', 'locked')",
            [tid],
        )
        report.items_left_open = int(left[0][0])
        return report

    return run_write(project.engine, write)
