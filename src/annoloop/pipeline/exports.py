"""The export element's job: write the annotations of tasks in a format, record the file.

Like a script job it writes its result, its job's state and its element's state in one
transaction guarded by the job (a replaced or repeated run records nothing twice); the file
itself is written first, atomically, to the same destination every time.
"""

from __future__ import annotations

import time
import traceback as tb_module
from typing import Any

import sqlalchemy as sa

from annoloop.pipeline.messages import ExportJobRequest, ScriptJobResult
from annoloop.pipeline.runner import (
    fail_job_and_element,
    finish_element_ok,
    mark_running,
    open_store,
    still_current,
)
from annoloop.pipeline.state import add_logs, add_results
from annoloop.store.engine import run_write


def run_export_job(request: ExportJobRequest | dict[str, Any]) -> ScriptJobResult:
    """Export the annotations of ``request.task_ids`` (all when None) to its destination."""
    if isinstance(request, dict):
        request = ExportJobRequest.model_validate(request)
    project = open_store(request.store)
    return execute_export(project, request)


def execute_export(project: Any, request: ExportJobRequest) -> ScriptJobResult:
    """Run an export against an open project (see :func:`run_export_job`)."""
    from annoloop.formats import get_format

    started = time.perf_counter()
    if not run_write(project.engine, lambda c: mark_running(c, request)):
        return ScriptJobResult(
            ok=True,
            committed=False,
            job_id=request.job_id,
            element=request.element,
            iteration=request.iteration,
            message="already done",
        )
    try:
        fmt = get_format(request.format)
        dataset = project.export_dataset(task=request.task_ids, source=request.source)
        report = fmt.save(dataset, request.destination, **request.options)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        text = tb_module.format_exc()

        def fail(conn: sa.Connection) -> bool:
            add_logs(
                conn,
                request.pipe_id,
                [
                    (
                        request.element,
                        request.iteration,
                        request.job_id,
                        "ERROR",
                        f"export failed:\n{text}",
                    )
                ],
            )
            if not still_current(conn, request):
                return False
            fail_job_and_element(conn, request, error, text)
            return True

        done = run_write(project.engine, fail)
        return ScriptJobResult(
            ok=False,
            committed=bool(done),
            job_id=request.job_id,
            element=request.element,
            iteration=request.iteration,
            message="failed",
            error=error,
            traceback=text,
            seconds=time.perf_counter() - started,
        )
    summary = {
        "format": request.format,
        "images": report.images,
        "annotations": report.annotations,
        "dropped": dict(report.dropped),
    }
    message = (
        f"exported {report.annotations} annotations of {report.images} images as "
        f"{request.format} to {report.path}"
        + (f" (left out: {report.dropped})" if report.dropped else "")
    )

    def write(conn: sa.Connection) -> bool:
        add_logs(
            conn,
            request.pipe_id,
            [(request.element, request.iteration, request.job_id, "INFO", message)],
        )
        if not still_current(conn, request):
            return False
        add_results(
            conn,
            request.pipe_id,
            [
                {
                    "element": request.element,
                    "source": request.element,
                    "iteration": request.iteration,
                    "job_id": request.job_id,
                    "kind": "export",
                    "location": str(report.path),
                    "data": summary,
                }
            ],
        )
        finish_element_ok(conn, request, summary)
        return True

    done = run_write(project.engine, write)
    return ScriptJobResult(
        ok=True,
        committed=bool(done),
        job_id=request.job_id,
        element=request.element,
        iteration=request.iteration,
        message=message,
        counts={"images": report.images, "annotations": report.annotations},
        seconds=time.perf_counter() - started,
    )
