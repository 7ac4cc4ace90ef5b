"""Models (designers): the models the server knows, their stored states, training and
inference. Training and inference run in the app's background thread; ``GET /api/jobs``
shows their progress and outcome."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator

from annoloop.errors import InvalidInput, NotFound
from annoloop.server.deps import Ctx, Designer, PathId
from annoloop.server.shapes import json_value

router = APIRouter(tags=["models"])
MAX_OPTIONS_BYTES = 64 * 1024
ModelName = Annotated[str, Field(min_length=1, max_length=100)]


def _small(value: Any, what: str) -> Any:
    if len(json.dumps(value)) > MAX_OPTIONS_BYTES:
        raise ValueError(f"{what} are larger than {MAX_OPTIONS_BYTES} bytes")
    return value


class TrainIn(BaseModel):
    """Train a model on the project's human annotations."""

    options: dict[Annotated[str, Field(max_length=100)], Any] = {}
    validation_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    margin: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @field_validator("options")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _small(value, "options")


class InferIn(BaseModel):
    """Run a model state (default: the current state of ``model``) on images (default: all)
    and, with ``task``, order the task's open items by the ranker's priority."""

    model: ModelName | None = None
    state_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    image_ids: Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=1_000_000)] | None = (
        None
    )
    task: Annotated[int, Field(ge=1)] | None = None
    ranker: Annotated[str, Field(max_length=100)] | None = "least-confidence"


def _registered(name: str) -> str:
    """Only models registered by name: a dotted class path from a client would import
    arbitrary code on the server."""
    from annoloop.ai.registry import list_models

    if name not in list_models():
        raise NotFound(f"no model {name!r} (known: {', '.join(list_models())})")
    return name


@router.get("/models")
def list_models(user: Designer, ctx: Ctx) -> list[dict]:
    """Every registered model: name, description, kinds, availability (or why not)."""
    from annoloop.ai.service import list_model_infos

    return [{k: json_value(v) if not isinstance(v, (list, dict)) else v for k, v in r.items()}
            for r in list_model_infos()]  # fmt: skip


@router.get("/models/states")
def model_states(
    user: Designer,
    ctx: Ctx,
    model: Annotated[str | None, Query(max_length=100)] = None,
) -> list[dict]:
    """Stored model states (versions), oldest first: model, version, metrics, current."""
    frame = ctx.project.model_states(model)
    cols = list(frame.columns)
    rows = []
    for values in zip(*(frame[c].tolist() for c in cols), strict=True):
        row = {}
        for c, v in zip(cols, values, strict=True):
            row[c] = v if isinstance(v, (dict, list)) else json_value(v)
        rows.append(row)
    return rows


@router.post("/models/states/{state_id}/current")
def make_current(state_id: PathId, user: Designer, ctx: Ctx) -> dict:
    """Make a state the current one of its model (proposals come from current states)."""
    frame = ctx.project.model_states()
    if state_id not in set(frame["id"].tolist()):
        raise NotFound(f"no model state {state_id}")
    ctx.project.set_current_state(state_id)
    return {"state_id": state_id, "is_current": True}


@router.post("/models/{name}/train", status_code=202)
def train(name: str, body: TrainIn, user: Designer, ctx: Ctx) -> dict:
    """Queue a training (202); its job appears in ``GET /api/jobs`` with its progress."""
    from annoloop.ai.service import train_job, verify_model_options

    _registered(name)
    report = verify_model_options(name, body.options)
    if not report.valid:
        raise InvalidInput("; ".join(report.errors) or "invalid options", "body.options")
    project = ctx.project
    ctx.background.submit(
        f"train {name}",
        lambda: train_job(
            project,
            name,
            body.options,
            validation_fraction=body.validation_fraction,
            margin=body.margin,
        ),
    )
    return {"queued": f"train {name}", "options": report.corrected, "warnings": report.warnings}


@router.post("/models/infer", status_code=202)
def infer(body: InferIn, user: Designer, ctx: Ctx) -> dict:
    """Queue an inference (202) with a state, or the current state of a model."""
    from annoloop.ai.service import inference_job

    project = ctx.project
    if body.state_id is None and body.model is None:
        raise InvalidInput("give a model name or a state_id", "body.model")
    states = project.model_states()
    if body.state_id is not None:
        if body.state_id not in set(states["id"].tolist()):
            raise NotFound(f"no model state {body.state_id}")
    else:
        _registered(body.model)
        current = states[(states["model"] == body.model) & states["is_current"]]
        if current.empty:
            raise InvalidInput(f"model {body.model!r} has no current state; train it first",
                               "body.model")  # fmt: skip
    if body.task is not None:
        from annoloop.server.work import task_settings

        task_settings(project, body.task)  # 404 for an unknown task
    if body.ranker is not None:
        from annoloop.ai.rankers import get_ranker

        if any(c in body.ranker for c in ".:"):  # a class path would import code: names only
            raise InvalidInput(f"unknown ranker {body.ranker!r}", "body.ranker")
        get_ranker(body.ranker)  # NotFound for an unknown ranker, before queueing
    ctx.background.submit(
        "inference",
        lambda: inference_job(
            project,
            body.state_id,
            body.image_ids,
            model=body.model,
            ranker=body.ranker,
            task=body.task,
        ),
    )
    return {"queued": "inference", "model": body.model, "state_id": body.state_id}
