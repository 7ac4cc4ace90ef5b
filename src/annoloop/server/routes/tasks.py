"""Annotation tasks: list, create, request work, take the next item (under an expiring lock),
and list a task's items for review."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, model_validator

from annoloop.server import work
from annoloop.server.deps import Annotator, AnyUser, Ctx, Designer, PathId

router = APIRouter(tags=["tasks"])
KindName = Literal["label", "point", "bbox", "line", "polygon", "mask"]
State = Literal["open", "locked", "done", "junk"]
ImageId = Annotated[int, Field(ge=1)]


class TaskIn(BaseModel):
    """A new annotation task: allowed shape kinds and labels (ids or names; None = all)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    instructions: Annotated[str, Field(max_length=20000)] = ""
    kinds: Annotated[list[KindName], Field(min_length=1, max_length=6)] = ["bbox"]
    labels: Annotated[list[int | str], Field(max_length=10000)] | None = None
    show_proposals: bool = True


class RequestIn(BaseModel):
    """Images to put into the task (ids, or every image), with optional priorities."""

    image_ids: Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=1_000_000)] | None = (
        None
    )
    all_images: bool = False
    priority: (
        Annotated[float, Field(allow_inf_nan=False)]
        | Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(max_length=1_000_000)]
        | None
    ) = None
    iteration: Annotated[int, Field(ge=0, le=1_000_000)] = 0

    @model_validator(mode="after")
    def _one_source(self) -> RequestIn:
        if self.all_images == (self.image_ids is not None):
            raise ValueError("give either image_ids or all_images=true")
        if isinstance(self.priority, list) and (
            self.image_ids is None or len(self.priority) != len(self.image_ids)
        ):
            raise ValueError("a priority list needs one value per entry of image_ids")
        return self


@router.get("/tasks")
def list_tasks(user: AnyUser, ctx: Ctx) -> list[dict]:
    """Every task with its work item counts per state."""
    return work.task_rows(ctx.project)


@router.post("/tasks", status_code=201)
def add_task(body: TaskIn, user: Designer, ctx: Ctx) -> dict:
    """Create a task; returns it."""
    task_id = ctx.project.add_task(
        body.name,
        instructions=body.instructions,
        kinds=list(dict.fromkeys(body.kinds)),
        labels=body.labels,
        show_proposals=body.show_proposals,
    )
    return work.task_row(ctx.project, task_id)


@router.get("/tasks/{task_id}")
def get_task(task_id: PathId, user: AnyUser, ctx: Ctx) -> dict:
    """One task with its counts."""
    return work.task_row(ctx.project, task_id)


@router.post("/tasks/{task_id}/requests")
def request_work(task_id: PathId, body: RequestIn, user: Designer, ctx: Ctx) -> dict:
    """Create one open work item per image (existing ones are kept); returns how many."""
    project = ctx.project
    project.task_id(task_id)  # 404 before anything else
    ids = project.images()["id"].to_numpy() if body.all_images else body.image_ids
    created = project.request_annotations(
        ids, [task_id], priority=body.priority, iteration=body.iteration
    )
    return {"created": created}


@router.post(
    "/tasks/{task_id}/next", responses={204: {"description": "nothing left"}}, response_model=None
)
def next_item(
    task_id: PathId,
    user: Annotator,
    ctx: Ctx,
    lock_seconds: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
) -> Response | dict:
    """Lock the next item of the task for the caller (the highest priority first; an item the
    caller already holds comes back first) and return it with its image, draft and
    proposals; 204 when the task has nothing left."""
    seconds = min(lock_seconds or ctx.settings.lock_seconds, ctx.settings.max_lock_seconds)
    item = ctx.project.next_item(task_id, user.name, lock_seconds=seconds)
    if item is None:
        return Response(status_code=204)
    return work.item_payload(ctx.project, item, api=ctx.api)


@router.get("/tasks/{task_id}/items")
def task_items(
    task_id: PathId,
    user: Designer,
    ctx: Ctx,
    state: Annotated[list[State] | None, Query()] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """A page of the task's work items (newest finished first), for review."""
    frame = ctx.project.work_items(task_id, state)
    if "finished_at" in frame:
        frame = frame.sort_values(
            ["finished_at", "id"], ascending=[False, True], na_position="last"
        )
    page = frame.iloc[offset : offset + limit]
    return {"total": len(frame), "items": work.item_rows(page)}
