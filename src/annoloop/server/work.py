"""Tasks and work items as the API returns them: task rows with counts, item payloads with
their image, draft, proposals and annotations."""

from __future__ import annotations

import posixpath
from typing import Any

import numpy as np

from annoloop.errors import NotFound
from annoloop.server.shapes import frame_to_shapes, json_value

STATES = ("open", "locked", "done", "junk")


def _task_dict(row: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    labels = row["labels"]
    return {
        "id": int(row["id"]),
        "name": row["name"],
        "instructions": row["instructions"],
        "kinds": list(row["kinds"]),
        "labels": None if labels is None else [int(v) for v in labels],
        "show_proposals": bool(row["show_proposals"]),
        "counts": {s: int(counts.get(s, 0)) for s in STATES},
    }


def task_rows(project: Any) -> list[dict[str, Any]]:
    """Every task with ``counts`` of its work items per state."""
    tasks = project.tasks()
    per_task = project.stats()["work_items"]
    return [
        _task_dict(row, per_task.get(row["name"], {}))
        for row in tasks.to_dict("records")
    ]  # fmt: skip


def task_row(project: Any, task_id: int) -> dict[str, Any]:
    """One task with its counts; NotFound for an unknown id."""
    for row in task_rows(project):
        if row["id"] == int(task_id):
            return row
    raise NotFound(f"no task {task_id}")


def task_settings(project: Any, task_id: int) -> dict[str, Any]:
    """One task's kinds, allowed labels and proposal setting (without counting items)."""
    tasks = project.tasks()
    rows = tasks[tasks["id"] == int(task_id)].to_dict("records")
    if not rows:
        raise NotFound(f"no task {task_id}")
    return _task_dict(rows[0], {})


def allowed_labels(project: Any, task: dict[str, Any]) -> np.ndarray:
    """Ids of the labels a task's shapes may use: active ones, within the task's list."""
    active = project.labels()["id"].to_numpy(np.int64)
    if task["labels"] is not None:
        active = np.intersect1d(active, np.asarray(task["labels"], dtype=np.int64))
    return active


def item_rows(frame: Any) -> list[dict[str, Any]]:
    """Work item rows (a ``Project.work_items`` frame) as JSON."""
    cols = [
        "id", "task_id", "image_id", "iteration", "state", "locked_by", "locked_until",
        "priority", "created_at", "finished_at",
    ]  # fmt: skip
    values = {c: frame[c].tolist() for c in cols}
    metas = frame["meta"].tolist()
    out = []
    for i in range(len(frame)):
        row = {c: json_value(values[c][i]) for c in cols}
        meta = metas[i] if isinstance(metas[i], dict) else {}
        row["review"] = meta.get("review")
        row["has_draft"] = "draft" in meta
        out.append(row)
    return out


def _item_dict(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "task_id": item.task_id,
        "image_id": item.image_id,
        "iteration": item.iteration,
        "state": item.state,
        "locked_by": item.locked_by,
        "locked_until": item.locked_until.isoformat() if item.locked_until else None,
        "priority": item.priority,
    }


def _read_item_parts(
    project: Any, item: Any, with_proposals: bool, api: str = "/api"
) -> dict[str, Any]:
    """Meta, image row and proposals of an item in one read transaction."""
    import sqlalchemy as sa

    from annoloop.store import images as store_images
    from annoloop.store import models as store_models
    from annoloop.store.engine import read_transaction
    from annoloop.store.schema import model_state, work_item

    with read_transaction(project.engine) as conn:
        meta = conn.execute(sa.select(work_item.c.meta).where(work_item.c.id == item.id)).scalar()
        location, width, height = store_images.image_row(conn, item.image_id)
        proposals = None
        if with_proposals:
            current = [
                int(v)
                for v in conn.execute(
                    sa.select(model_state.c.id).where(model_state.c.is_current.is_(True))
                ).scalars()
            ]
            if current:
                frame = store_models.predictions_frame(
                    conn, model_state_id=current, image=item.image_id
                )
                proposals = frame
    return {
        "meta": dict(meta or {}),
        "image": {
            "id": item.image_id,
            "name": posixpath.basename(location.rstrip("/")),
            "width": width,
            "height": height,
            "url": f"{api}/images/{item.image_id}/file",
            "thumb": f"{api}/images/{item.image_id}/thumb",
        },
        "proposals": proposals,
    }


def item_payload(
    project: Any,
    item: Any,
    *,
    show_proposals: bool = True,
    with_annotations: bool = False,
    api: str = "/api",
) -> dict[str, Any]:
    """What the annotate page needs for one item: the item, its image (URLs under the
    project's API prefix ``api``), the saved draft, the current models' proposals (``ref`` =
    ``"p<prediction id>"``) and, on request, the annotations written for the item."""
    parts = _read_item_parts(project, item, show_proposals, api)
    proposals = []
    for row in frame_to_shapes(parts["proposals"], ("model_state_id",)):
        row["ref"] = f"p{row['id']}"
        proposals.append(row)
    meta = parts["meta"]
    out = {
        "item": _item_dict(item),
        "image": parts["image"],
        "draft": meta.get("draft"),
        "review": meta.get("review"),
        "proposals": proposals,
    }
    if with_annotations:
        out["annotations"] = item_annotations(project, item)
    return out


def item_annotations(project: Any, item: Any) -> list[dict[str, Any]]:
    """The annotations written for one work item."""
    frame = project.annotations(task=item.task_id, image=item.image_id)
    ids = frame["work_item_id"].to_numpy(dtype=np.float64, na_value=np.nan)
    frame = frame[ids == item.id]
    return frame_to_shapes(frame, ("author", "source", "created_at"))


def get_item(project: Any, item_id: int) -> Any:
    """One work item (:class:`~annoloop.store.WorkItem`); NotFound when unknown."""
    from annoloop.store import workitems
    from annoloop.store.engine import read_transaction

    with read_transaction(project.engine) as conn:
        return workitems.get_item(conn, int(item_id))


def min_open_priority(project: Any, task_id: int) -> float | None:
    """The lowest priority among a task's open items (None when there is none)."""
    import sqlalchemy as sa

    from annoloop.store.engine import read_transaction
    from annoloop.store.schema import work_item

    query = sa.select(sa.func.min(work_item.c.priority)).where(
        work_item.c.task_id == int(task_id), work_item.c.state == "open"
    )
    with read_transaction(project.engine) as conn:
        value = conn.execute(query).scalar()
    return None if value is None else float(value)


def shape_rules(project: Any, item: Any) -> tuple[list[str], np.ndarray, int, int]:
    """What shapes on ``item`` must obey, read in one transaction with plain queries (this is
    on the hot path of every draft save and submission): the task's kinds, the label ids it
    allows (active ones, within its list) and the image's width and height."""
    import sqlalchemy as sa

    from annoloop.store import images as store_images
    from annoloop.store.engine import read_transaction
    from annoloop.store.schema import label_class, task

    with read_transaction(project.engine) as conn:
        row = conn.execute(
            sa.select(task.c.kinds, task.c.labels).where(task.c.id == int(item.task_id))
        ).first()
        if row is None:
            raise NotFound(f"no task {item.task_id}")
        active = np.fromiter(
            conn.execute(sa.select(label_class.c.id).where(~label_class.c.retired)).scalars(),
            dtype=np.int64,
        )
        _, width, height = store_images.image_row(conn, item.image_id)
    if row.labels is not None:
        active = np.intersect1d(active, np.asarray(list(row.labels), dtype=np.int64))
    return list(row.kinds), active, width, height
