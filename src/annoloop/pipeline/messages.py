"""Messages between the engine and the jobs it runs on the executor (pydantic, JSON-safe).

A script job gets a :class:`ScriptJobRequest` (everything it needs to run one script instance
with its real inputs: where the store is, which element and iteration, the datasources and
tasks before it, the tasks and elements after it, its paths) and returns a
:class:`ScriptJobResult`. Errors come back in the result (``ok=False`` with the traceback);
they never crash the engine. An export job works the same way with :class:`ExportJobRequest`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasourceRef(_Message):
    """A datasource element as a script sees it."""

    element: str
    location: str | None = None  # resolved URL; None: project images
    images: Literal["all"] | list[int] | None = None
    recursive: bool = True


class TaskRef(_Message):
    """An annotation task element: its store task and the iteration it is in."""

    element: str
    task_id: int
    name: str
    kinds: list[str] = Field(default_factory=list)
    iteration: int = 0


class StoreRef(_Message):
    """How a job reaches the store. The URL may hold a password: it is never persisted."""

    database_url: str
    storage_url: str | None = None


class ScriptJobRequest(_Message):
    """Run one instance of a script element."""

    store: StoreRef
    pipe_id: int
    pipe_name: str
    element: str
    iteration: int = 0
    job_id: int
    script: str
    files: str | None = None  # location of the pipeline project (scripts and static files)
    arguments: dict[str, Any] = Field(default_factory=dict)
    datasources: list[DatasourceRef] = Field(default_factory=list)
    input_tasks: list[TaskRef] = Field(default_factory=list)
    input_scripts: list[str] = Field(default_factory=list)
    output_tasks: list[TaskRef] = Field(default_factory=list)
    visuals: list[str] = Field(default_factory=list)
    exports: list[str] = Field(default_factory=list)
    loop: str | None = None  # the loop that break_loop() breaks
    instance_path: str
    pipe_path: str
    debug: bool = False

    def persisted(self) -> dict[str, Any]:
        """The request as stored in the job row: without the database URL."""
        return self.model_dump(mode="json", exclude={"store"})

    @classmethod
    def example(cls) -> ScriptJobRequest:
        """A small valid request (tests, documentation)."""
        return cls(
            store=StoreRef(database_url="sqlite:///p/annoloop.db", storage_url="file:///p/media"),
            pipe_id=1,
            pipe_name="survey",
            element="request",
            iteration=0,
            job_id=7,
            script="request_all.py",
            files="file:///p/runs/pipelines/demo",
            arguments={"priority": 1.0},
            datasources=[DatasourceRef(element="images", images="all")],
            output_tasks=[TaskRef(element="boxes", task_id=3, name="survey/Boxes", kinds=["bbox"])],
            instance_path="file:///p/runs/pipes/survey/request",
            pipe_path="file:///p/runs/pipes/survey",
        )


class ScriptJobResult(_Message):
    """What a script instance did. ``committed`` is False when its outputs were discarded
    (rejected, failed, or a newer run of the element took over)."""

    ok: bool
    committed: bool = False
    rejected: bool = False
    job_id: int
    element: str
    iteration: int = 0
    message: str = ""
    error: str | None = None
    traceback: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def of(cls, request: Any, **fields: Any) -> ScriptJobResult:
        """The result of running ``request`` (its job, element and iteration) with ``fields``."""
        return cls(
            job_id=request.job_id, element=request.element, iteration=request.iteration, **fields
        )

    @classmethod
    def example(cls) -> ScriptJobResult:
        return cls(
            ok=True,
            committed=True,
            job_id=7,
            element="request",
            counts={"work_items": 20, "proposals": 0, "annotations": 0},
            seconds=0.4,
        )


class ExportJobRequest(_Message):
    """Run an export element: write the annotations of ``tasks`` in ``format``."""

    store: StoreRef
    pipe_id: int
    element: str
    iteration: int = 0
    job_id: int
    format: str
    destination: str  # resolved location URL
    task_ids: list[int] | None = None  # None: every annotation of the project
    source: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def persisted(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"store"})

    @classmethod
    def example(cls) -> ExportJobRequest:
        return cls(
            store=StoreRef(database_url="sqlite:///p/annoloop.db"),
            pipe_id=1,
            element="export",
            job_id=9,
            format="coco",
            destination="file:///p/runs/pipes/survey/export/boxes.json",
            task_ids=[3],
        )
