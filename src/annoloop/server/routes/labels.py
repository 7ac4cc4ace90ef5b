"""The label tree: list, add, rename, retire (labels can change while work runs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from annoloop.server.deps import AnyUser, Ctx, Designer, PathId
from annoloop.server.shapes import json_value

router = APIRouter(tags=["labels"])
Name = Annotated[str, Field(min_length=1, max_length=200)]


class LabelIn(BaseModel):
    """A new label (an existing one with the same settings is returned)."""

    name: Name
    code: Annotated[str, Field(max_length=50)] | None = None
    color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$")] | None = None
    parent: Annotated[int, Field(ge=1)] | None = None


class LabelRename(BaseModel):
    """The new name."""

    name: Name


def label_rows(ctx: Ctx, include_retired: bool = False) -> list[dict]:
    """The label tree as JSON rows."""
    frame = ctx.project.labels(include_retired=include_retired)
    cols = ("id", "name", "code", "color", "parent_id", "retired")
    values = {c: frame[c].tolist() for c in cols}
    return [
        {c: json_value(values[c][i]) for c in cols} for i in range(len(frame))
    ]  # fmt: skip


@router.get("/labels")
def list_labels(user: AnyUser, ctx: Ctx, include_retired: bool = False) -> list[dict]:
    """Label classes: id, name, code, color, parent_id, retired."""
    return label_rows(ctx, include_retired)


@router.post("/labels", status_code=201)
def add_label(body: LabelIn, user: Designer, ctx: Ctx) -> dict:
    """Add a label; returns it."""
    label_id = ctx.project.add_label(
        body.name, code=body.code, color=body.color, parent=body.parent
    )
    return next(r for r in label_rows(ctx, True) if r["id"] == label_id)


@router.patch("/labels/{label_id}")
def rename_label(label_id: PathId, body: LabelRename, user: Designer, ctx: Ctx) -> dict:
    """Rename a label (its annotations keep it)."""
    _known(ctx, label_id)
    ctx.project.rename_label(label_id, body.name)
    return next(r for r in label_rows(ctx, True) if r["id"] == label_id)


@router.delete("/labels/{label_id}")
def retire_label(label_id: PathId, user: Designer, ctx: Ctx) -> dict:
    """Retire a label: hidden from new work, its annotations kept."""
    _known(ctx, label_id)
    ctx.project.retire_label(label_id)
    return {"ok": True}


def _known(ctx: Ctx, label_id: int) -> None:
    from annoloop.errors import NotFound

    if not any(r["id"] == label_id for r in label_rows(ctx, True)):
        raise NotFound(f"no label with id {label_id}")
