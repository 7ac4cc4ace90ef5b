"""Jobs (designers): progress of trainings, inferences, exports and pipeline steps, from the
store's job table."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from annoloop.server.deps import Ctx, Designer, PathId
from annoloop.server.shapes import json_value

router = APIRouter(tags=["jobs"])
JobState = Literal["queued", "running", "finished", "failed", "cancelled"]
_COLUMNS = (
    "id", "kind", "name", "state", "progress_done", "progress_total", "message", "error",
    "result", "created_at", "started_at", "finished_at",
)  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    return json_value(value)


def job_rows(frame: Any) -> list[dict]:
    """Job rows (a ``Project.jobs`` frame) as JSON, with ``fraction`` done (None if unknown)."""
    values = {c: frame[c].tolist() for c in _COLUMNS}
    out = []
    for i in range(len(frame)):
        row = {c: _plain(values[c][i]) for c in _COLUMNS}
        total = row["progress_total"]
        row["fraction"] = (row["progress_done"] / total) if total else None
        out.append(row)
    return out


@router.get("/jobs")
def list_jobs(
    user: Designer,
    ctx: Ctx,
    state: Annotated[list[JobState] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict]:
    """The newest jobs (optionally in some states) with their progress."""
    frame = ctx.project.jobs(state)
    return job_rows(frame.iloc[::-1].iloc[:limit])


@router.get("/jobs/{job_id}")
def get_job(
    job_id: PathId,
    user: Designer,
    ctx: Ctx,
    log_offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """One job with its log from ``log_offset`` on (poll with the returned ``log_end``)."""
    job = ctx.project.job(job_id)
    log = job.get("log") or ""
    row = {c: _plain(job.get(c)) for c in _COLUMNS}
    total = row["progress_total"]
    row["fraction"] = (row["progress_done"] / total) if total else None
    row["traceback"] = job.get("traceback")
    row["log"] = log[log_offset:]
    row["log_end"] = len(log)
    return row
