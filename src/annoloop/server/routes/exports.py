"""Exports (designers): write the project's annotations in a format into ``runs/exports/``,
recorded as a job; list them and download one as a zip."""

from __future__ import annotations

import io
import zipfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from annoloop.errors import InvalidInput, NotFound
from annoloop.server.deps import Ctx, Designer, PathId

router = APIRouter(tags=["exports"])
# Formats that write one file (the name it gets); the others write a folder.
FILE_NAMES = {
    "coco": "annotations.json",
    "geojson": "annotations.geojson",
    "csv": "annotations.csv",
    "coralnet": "annotations.csv",
    "lost": "annotations.parquet",
    "cvat": "annotations.xml",
}
MAX_ZIP_BYTES = 2 * 1024**3


class ExportIn(BaseModel):
    """What to export: the format, optional filters and the format's options."""

    format: Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")]
    task: Annotated[int, Field(ge=1)] | None = None
    source: Annotated[str, Field(max_length=200)] | None = None
    kind: Literal["label", "point", "bbox", "line", "polygon", "mask"] | None = None
    options: Annotated[dict[str, str | int | float | bool | None], Field(max_length=20)] = {}


@router.get("/formats")
def formats(user: Designer) -> dict:
    """Export format names and descriptions."""
    from annoloop.formats import list_formats

    return list_formats()


def _export_dir(ctx: Ctx, job_id: int) -> Any:
    return ctx.project.runs.join("exports", f"job-{int(job_id)}")


@router.post("/exports", status_code=201)
def export(body: ExportIn, user: Designer, ctx: Ctx) -> dict:
    """Run an export now (recorded as a job of kind ``export``); returns the job."""
    from annoloop.formats import get_format
    from annoloop.formats.transfer import export_annotations

    get_format(body.format)  # 404 for an unknown format, before a job is made
    project = ctx.project
    if body.task is not None:
        project.task_id(body.task)
    spec = body.model_dump()
    job_id = project.add_job("export", f"export {body.format}", spec)
    project.update_job(job_id, state="running", progress_total=1, message="writing")
    folder = _export_dir(ctx, job_id)
    target = folder.join(FILE_NAMES[body.format]) if body.format in FILE_NAMES else folder
    try:
        report = export_annotations(
            project,
            body.format,
            target,
            task=body.task,
            source=body.source,
            kind=body.kind,
            format_options=body.options,
        )
    except Exception as exc:
        project.update_job(job_id, state="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    result = {
        "images": report.images,
        "annotations": report.annotations,
        "dropped": report.dropped,
        "download": f"{ctx.api}/exports/{job_id}/download",
    }
    project.update_job(job_id, state="finished", progress_done=1, message="done", result=result)
    return {"job_id": job_id, **result}


@router.get("/exports")
def list_exports(user: Designer, ctx: Ctx) -> list[dict]:
    """Export jobs, newest first."""
    from annoloop.server.routes.jobs import job_rows

    frame = ctx.project.jobs()
    frame = frame[frame["kind"] == "export"].iloc[::-1]
    return job_rows(frame)


@router.get("/exports/{job_id}/download")
def download(job_id: PathId, user: Designer, ctx: Ctx) -> Response:
    """The export's files as a zip."""
    job = ctx.project.job(job_id)
    if job["kind"] != "export" or job["state"] != "finished":
        raise NotFound(f"no finished export with job id {job_id}")
    folder = _export_dir(ctx, job_id)
    if not folder.exists():
        raise NotFound(f"the files of export {job_id} are gone")
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for loc in folder.list(recursive=True):
            if loc.is_dir():
                continue
            total += loc.size()
            if total > MAX_ZIP_BYTES:
                raise InvalidInput("the export is too large to zip here", f"export {job_id}")
            zf.writestr(loc.relative_to(folder), loc.read_bytes())
    name = f"{ctx.project.name}-export-{job_id}.zip".replace('"', "")
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
