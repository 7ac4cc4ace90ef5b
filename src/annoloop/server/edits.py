"""Edits of stored annotations by reviewers: replace one annotation's shape in one
transaction (the old row goes, a new row with the same image, task and work item comes)."""

from __future__ import annotations

from typing import Any

from annoloop.errors import NotFound
from annoloop.server.shapes import ShapeIn, to_annotations


def annotation_row(project: Any, annotation_id: int) -> Any:
    """image_id, task_id, work_item_id and the image's width and height of one annotation."""
    import sqlalchemy as sa

    from annoloop.store.engine import read_transaction
    from annoloop.store.schema import annotation, image

    query = (
        sa.select(
            annotation.c.id,
            annotation.c.image_id,
            annotation.c.task_id,
            annotation.c.work_item_id,
            image.c.width,
            image.c.height,
        )
        .select_from(annotation.join(image, image.c.id == annotation.c.image_id))
        .where(annotation.c.id == int(annotation_id))
    )
    with read_transaction(project.engine) as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no annotation {annotation_id}")
    return row


def replace_annotation(project: Any, annotation_id: int, shape: ShapeIn, author: str) -> int:
    """Put ``shape`` in place of annotation ``annotation_id``; returns the new row's id."""
    from annoloop.store import annotations as store_annotations
    from annoloop.store.engine import run_write

    row = annotation_row(project, annotation_id)
    ann = to_annotations([shape], int(row.image_id), int(row.width), int(row.height))

    def write(conn: Any) -> int:
        if store_annotations.delete_annotations(conn, [int(annotation_id)]) == 0:
            raise NotFound(f"no annotation {annotation_id}")  # deleted meanwhile
        ids = store_annotations.insert_annotations(
            conn,
            ann,
            task_id=None if row.task_id is None else int(row.task_id),
            work_item_id=None if row.work_item_id is None else int(row.work_item_id),
            author=author,
        )
        return int(ids[0])

    return run_write(project.engine, write)
