"""Pipelines (designers): templates, start, status with the element graph, logs, pause,
resume, stop. The app's :class:`~annoloop.server.pipes.PipeDriver` advances running pipes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator

from annoloop.errors import InvalidInput, NotFound
from annoloop.server.deps import Ctx, Designer, PathId
from annoloop.server.shapes import json_value

router = APIRouter(tags=["pipelines"])
MAX_OVERRIDES_BYTES = 64 * 1024
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][\w .-]*$")]


class PipeIn(BaseModel):
    """Start a pipe from a template the project knows (``GET /api/pipelines/templates``),
    with optional ``{"element.field": value}`` overrides."""

    template: Annotated[str, Field(min_length=1, max_length=200)]
    name: Name | None = None
    overrides: dict[Annotated[str, Field(max_length=200)], Any] = {}

    @field_validator("overrides")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_OVERRIDES_BYTES:
            raise ValueError(f"overrides are larger than {MAX_OVERRIDES_BYTES} bytes")
        return value


def _status(project: Any, pipe_id: int, driver: Any = None) -> dict[str, Any]:
    """Status, the element graph (ids, types, inputs) and the driver's error, if any."""
    from annoloop.pipeline.service import pipe_status
    from annoloop.pipeline.state import find_pipe
    from annoloop.store.engine import read_transaction

    status = pipe_status(project, pipe_id).to_dict()
    with read_transaction(project.engine) as conn:
        template = find_pipe(conn, pipe_id).template
    inputs = {el["id"]: list(el.get("inputs") or []) for el in template.get("elements", [])}
    names = {el["id"]: el.get("name") for el in template.get("elements", [])}
    for el in status["elements"]:
        el["inputs"] = inputs.get(el["element"], [])
        el["name"] = names.get(el["element"])
        total = el["progress_total"]
        el["fraction"] = (el["progress_done"] / total) if total else None
    status["edges"] = [[src, dst] for dst, srcs in inputs.items() for src in srcs]
    status["driver_error"] = driver.errors.get(pipe_id) if driver is not None else None
    return status


def _known_pipe(project: Any, pipe_id: int) -> None:
    from annoloop.pipeline.service import list_pipes

    if all(p["id"] != pipe_id for p in list_pipes(project)):
        raise NotFound(f"no pipe {pipe_id}")


@router.get("/pipelines/templates")
def templates(user: Designer, ctx: Ctx) -> list[dict]:
    """The templates a pipe can start from: ready-made ones and imported pipeline projects'."""
    from annoloop.pipeline.service import list_templates

    return [
        {"name": name, "description": text}
        for name, text in list_templates(ctx.project).items()
    ]  # fmt: skip


@router.get("/pipes")
def list_pipes(user: Designer, ctx: Ctx) -> list[dict]:
    """Every pipe: id, name, state, template, created_at."""
    from annoloop.pipeline.service import list_pipes as _list

    return [{k: json_value(v) for k, v in p.items()} for p in _list(ctx.project)]


@router.post("/pipes", status_code=201)
def start(body: PipeIn, user: Designer, ctx: Ctx) -> dict:
    """Create a pipe and let the server run it (its scripts run on the server's executor;
    its annotation tasks appear in the task list)."""
    from annoloop.pipeline.service import list_templates, start_pipe

    # Only templates the project knows: never a path on the server from the client.
    if body.template not in list_templates(ctx.project):
        raise InvalidInput(f"unknown template {body.template!r}", "template")
    status = start_pipe(ctx.project, body.template, body.name, overrides=body.overrides or None)
    if ctx.pipes is not None:
        ctx.pipes.kick()
    return _status(ctx.project, status.id, ctx.pipes)


@router.get("/pipes/{pipe_id}")
def status(pipe_id: PathId, user: Designer, ctx: Ctx) -> dict:
    """The pipe's state and its elements (state, iteration, progress, work item counts,
    errors) with the graph's edges ``[from, to]``."""
    _known_pipe(ctx.project, pipe_id)
    return _status(ctx.project, pipe_id, ctx.pipes)


@router.get("/pipes/{pipe_id}/logs")
def logs(
    pipe_id: PathId,
    user: Designer,
    ctx: Ctx,
    element: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict]:
    """Log lines newer than ``after`` (the last id seen), oldest first."""
    from dataclasses import asdict

    from annoloop.pipeline.service import logs as _logs

    _known_pipe(ctx.project, pipe_id)
    records = _logs(ctx.project, pipe_id, element=element, after_id=after, limit=limit)
    return [{k: json_value(v) for k, v in asdict(r).items()} for r in records]


def _control(ctx: Any, pipe_id: int, action: str) -> dict:
    from annoloop.pipeline import service

    _known_pipe(ctx.project, pipe_id)
    getattr(service, action)(ctx.project, pipe_id)
    if ctx.pipes is not None:
        ctx.pipes.kick()
    return _status(ctx.project, pipe_id, ctx.pipes)


@router.post("/pipes/{pipe_id}/pause")
def pause(pipe_id: PathId, user: Designer, ctx: Ctx) -> dict:
    """Nothing new starts; running scripts finish; annotators go on (409 when finished)."""
    return _control(ctx, pipe_id, "pause")


@router.post("/pipes/{pipe_id}/resume")
def resume(pipe_id: PathId, user: Designer, ctx: Ctx) -> dict:
    """Paused elements go on and failed ones run again (409 when finished)."""
    return _control(ctx, pipe_id, "resume")


@router.post("/pipes/{pipe_id}/stop")
def stop(pipe_id: PathId, user: Designer, ctx: Ctx) -> dict:
    """Running scripts are cancelled, nothing new starts; resume continues (409 when
    finished)."""
    return _control(ctx, pipe_id, "stop")
