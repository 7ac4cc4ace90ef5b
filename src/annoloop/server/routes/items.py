"""Work items: read one, save its draft after every change, submit, junk, skip, release,
and review finished ones."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from annoloop.errors import Conflict
from annoloop.server import drafts, work
from annoloop.server.auth import User
from annoloop.server.deps import Annotator, Ctx, Designer, PathId
from annoloop.server.shapes import MAX_SHAPES, ShapeIn, check_for_task, to_annotations

router = APIRouter(tags=["work items"])
Seconds = Annotated[float, Field(ge=0, le=7 * 24 * 3600, allow_inf_nan=False)]
Shapes = Annotated[list[ShapeIn], Field(max_length=MAX_SHAPES)]


class DraftIn(BaseModel):
    """The item's whole current work: shapes, rejected proposal refs, and a client revision
    that grows with every change (an older revision never overwrites a newer one)."""

    shapes: Shapes = []
    rejected: Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=10000)] = []
    revision: Annotated[int, Field(ge=0, le=2**62)]


class SubmitIn(BaseModel):
    """Finish an item: its shapes (the saved draft when left out) and the time spent."""

    shapes: Shapes | None = None
    time_spent: Seconds | None = None


class JunkIn(BaseModel):
    """Mark an item as junk (an unusable image): no annotations."""

    time_spent: Seconds | None = None


class ReviewIn(BaseModel):
    """A reviewer's verdict on a finished item; ``reject`` sends the image back to the task
    as a new iteration."""

    verdict: Literal["accept", "reject"]
    comment: Annotated[str, Field(max_length=2000)] = ""


def _item_for(ctx: Ctx, item_id: int, user: User) -> object:
    """The item, when the caller may see it: designers any, annotators the ones they hold or
    finished."""
    item = work.get_item(ctx.project, item_id)
    if not user.has_role("designer") and item.locked_by != user.name:
        raise HTTPException(403, f"work item {item_id} is not yours")
    return item


def _checked(ctx: Ctx, item: object, shapes: list[ShapeIn]) -> object:
    """The shapes as an ``Annotations`` struct, checked against the image and the task."""
    kinds, allowed, width, height = work.shape_rules(ctx.project, item)
    check_for_task(shapes, kinds, allowed)
    return to_annotations(shapes, item.image_id, width, height)


@router.get("/items/{item_id}")
def get_item(item_id: PathId, user: Annotator, ctx: Ctx) -> dict:
    """The item with its image, draft, proposals and the annotations written for it."""
    item = _item_for(ctx, item_id, user)
    task = work.task_settings(ctx.project, item.task_id)
    return work.item_payload(
        ctx.project,
        item,
        show_proposals=task["show_proposals"],
        with_annotations=True,
        api=ctx.api,
    )


@router.put("/items/{item_id}/draft")
def save_draft(item_id: PathId, body: DraftIn, user: Annotator, ctx: Ctx) -> dict:
    """Save the item's current shapes (checked like a submission) and extend the lock; 409
    when the caller does not hold the item."""
    item = work.get_item(ctx.project, item_id)
    _checked(ctx, item, body.shapes)
    draft = {"shapes": [s.geometry() for s in body.shapes], "rejected": body.rejected}
    revision, saved = drafts.save_draft(
        ctx.project,
        item_id,
        user.name,
        draft,
        revision=body.revision,
        lock_seconds=ctx.settings.lock_seconds,
    )
    return {"revision": revision, "saved": saved}


@router.post("/items/{item_id}/submit")
def submit(item_id: PathId, body: SubmitIn, user: Annotator, ctx: Ctx) -> dict:
    """Write the item's annotations and mark it done, in one transaction (409 when the
    caller does not hold it)."""
    item, meta = drafts.item_meta(ctx.project, item_id)
    shapes = body.shapes
    if shapes is None:
        saved = (meta.get("draft") or {}).get("shapes") or []
        shapes = [ShapeIn.model_validate(s) for s in saved]
    ann = _checked(ctx, item, shapes) if shapes else None
    ids = ctx.project.submit(item_id, user.name, ann, state="done", time_spent=body.time_spent)
    ctx.kick_pipes()
    if "draft" in meta:
        drafts.clear_draft(ctx.project, item_id)
    return {"item_id": item_id, "state": "done", "annotation_ids": [int(v) for v in ids]}


@router.post("/items/{item_id}/junk")
def junk(item_id: PathId, body: JunkIn, user: Annotator, ctx: Ctx) -> dict:
    """Close the item as junk (no annotations)."""
    _, meta = drafts.item_meta(ctx.project, item_id)
    ctx.project.submit(item_id, user.name, None, state="junk", time_spent=body.time_spent)
    ctx.kick_pipes()
    if "draft" in meta:
        drafts.clear_draft(ctx.project, item_id)
    return {"item_id": item_id, "state": "junk"}


@router.post("/items/{item_id}/release")
def release(item_id: PathId, user: Annotator, ctx: Ctx) -> dict:
    """Give the item back (open again, same priority); the draft stays for the next one."""
    ctx.project.release_item(item_id, user.name)
    return {"item_id": item_id, "state": "open"}


@router.post("/items/{item_id}/skip")
def skip(item_id: PathId, user: Annotator, ctx: Ctx) -> dict:
    """Give the item back and move it behind every open item of its task, so the caller's
    next request brings a different image."""
    item = work.get_item(ctx.project, item_id)
    ctx.project.release_item(item_id, user.name)
    lowest = work.min_open_priority(ctx.project, item.task_id)
    priority = item.priority if lowest is None else min(item.priority, lowest - 1.0)
    ctx.project.set_priorities([item_id], [priority])
    return {"item_id": item_id, "state": "open", "priority": priority}


@router.post("/items/{item_id}/review")
def review(item_id: PathId, body: ReviewIn, user: Designer, ctx: Ctx) -> dict:
    """Accept a finished item, or reject it: the image goes back into the task as a new
    open item (next iteration, same priority)."""
    from annoloop.store.schema import utcnow

    item = work.get_item(ctx.project, item_id)
    if item.state not in ("done", "junk"):
        raise Conflict(f"work item {item_id} is {item.state}; only finished items are reviewed")
    verdict = {
        "verdict": body.verdict,
        "by": user.name,
        "at": utcnow().isoformat(),
        "comment": body.comment,
    }
    drafts.set_review(ctx.project, item_id, verdict)
    created = 0
    if body.verdict == "reject":
        created = ctx.project.request_annotations(
            [item.image_id], [item.task_id], priority=item.priority, iteration=item.iteration + 1
        )
    return {"item_id": item_id, "review": verdict, "reopened": created}
