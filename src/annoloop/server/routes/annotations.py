"""Stored annotations (designers): filtered pages, direct adds, reviewer edits, deletes."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from annoloop.errors import NotFound
from annoloop.server import edits
from annoloop.server.deps import Ctx, Designer, PathId
from annoloop.server.shapes import MAX_SHAPES, ShapeIn, frame_to_shapes, to_annotations

router = APIRouter(tags=["annotations"])
IdList = Annotated[list[Annotated[int, Field(ge=1)]] | None, Query(max_length=1000)]


class AddIn(BaseModel):
    """Shapes to add to one image (optionally as part of a task)."""

    image_id: Annotated[int, Field(ge=1)]
    task_id: Annotated[int, Field(ge=1)] | None = None
    shapes: Annotated[list[ShapeIn], Field(min_length=1, max_length=MAX_SHAPES)]


class EditIn(BaseModel):
    """The new shape of an annotation."""

    shape: ShapeIn


@router.get("/annotations")
def list_annotations(
    user: Designer,
    ctx: Ctx,
    image: IdList = None,
    task: IdList = None,
    label: IdList = None,
    kind: Annotated[list[str] | None, Query(max_length=6)] = None,
    source: Annotated[list[str] | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict:
    """A page of annotations matching every given filter (each may repeat)."""
    frame = ctx.project.annotations(task=task, image=image, label=label, kind=kind, source=source)
    page = frame.iloc[offset : offset + limit]
    rows = frame_to_shapes(
        page, ("image_id", "task_id", "work_item_id", "source", "author", "created_at")
    )
    return {"total": len(frame), "items": rows}


@router.post("/annotations", status_code=201)
def add_annotations(body: AddIn, user: Designer, ctx: Ctx) -> dict:
    """Add shapes to an image as human annotations by the caller; returns their ids."""
    frame = ctx.project.images([body.image_id])
    if len(frame) == 0:
        raise NotFound(f"no image with id {body.image_id}")
    if body.task_id is not None:
        ctx.project.task_id(body.task_id)
    ann = to_annotations(
        body.shapes, body.image_id, int(frame["width"].iloc[0]), int(frame["height"].iloc[0])
    )
    ids = ctx.project.add_annotations(ann, task=body.task_id, author=user.name)
    return {"ids": np.asarray(ids, dtype=np.int64).tolist()}


@router.put("/annotations/{annotation_id}")
def edit_annotation(annotation_id: PathId, body: EditIn, user: Designer, ctx: Ctx) -> dict:
    """Replace an annotation's shape and label (the edited row gets a new id)."""
    new_id = edits.replace_annotation(ctx.project, annotation_id, body.shape, user.name)
    return {"id": new_id, "replaced": annotation_id}


@router.delete("/annotations/{annotation_id}")
def delete_annotation(annotation_id: PathId, user: Designer, ctx: Ctx) -> dict:
    """Delete one annotation."""
    if ctx.project.delete_annotations([annotation_id]) == 0:
        raise NotFound(f"no annotation {annotation_id}")
    return {"ok": True}
