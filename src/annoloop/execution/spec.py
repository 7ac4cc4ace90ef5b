"""What to run and how it is going: the task spec and the progress snapshot.

Both cross process and machine boundaries, so both are plain values: :class:`TaskSpec` is a
pydantic model that round-trips through JSON, :class:`ProgressSnapshot` a named tuple.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Environment names become Dask resource names (``env-<name>``) and CLI words, so keep them tame.
ENV_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME)]


class TaskSpec(BaseModel):
    """How to run one task: its name, where it may run, and how often to retry it.

    ``envs`` lists the worker environments the task can run in, in order of preference (the
    first one some worker offers wins); ``lock_all`` takes every slot of a worker so that
    nothing else runs beside it; ``gpu`` needs a worker with a GPU; ``retries`` re-runs a task
    that raised; ``key`` is a stable id (``"job-17"``) that names the task's future and its
    progress reports. A key may be reused once the earlier task with that key is done.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    envs: list[EnvName] = Field(default_factory=list)
    lock_all: bool = False
    gpu: bool = False
    retries: Annotated[int, Field(ge=0, le=100)] = 0
    key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class ProgressSnapshot(NamedTuple):
    """The latest progress report of a task: ``done`` of ``total`` (None: unknown), a message."""

    done: int
    total: int | None
    message: str


#: ``on_progress(key, done, total, message)``: executors call it for every progress report.
ProgressCallback = Callable[[str, int, int | None, str], object]

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def spec_for(fn: Callable[..., object], spec: TaskSpec | None) -> TaskSpec:
    """``spec``, or a default spec named after ``fn``."""
    if spec is not None:
        return spec
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return TaskSpec(name=name[:200])


def new_key(spec: TaskSpec) -> str:
    """The spec's key, or a fresh one made of its name and a random suffix."""
    if spec.key is not None:
        return spec.key
    slug = _SLUG.sub("-", spec.name).strip("-")[:60] or "task"
    return f"{slug}-{uuid.uuid4().hex[:12]}"
