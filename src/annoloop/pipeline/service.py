"""Service functions behind ``annoloop pipe {import,start,status,pause,resume,stop,logs,debug}``.

Each function takes an open :class:`~annoloop.store.Project` first and returns plain data
(dataclasses with ``to_dict()``) for the CLI or the server to format. Pipes are named by name
or id everywhere.

- :func:`import_pipeline` (``pipe import FOLDER_OR_ZIP [--name N] [--replace]``)
- :func:`start_pipe` (``pipe start TEMPLATE [--name N] [--set ELEMENT.FIELD=VALUE]... [--wait]
  [--executor local|local:N|dask|tcp://...] [--scheduler tcp://...]``)
- :func:`run` (the engine loop for ``pipe start --wait`` and ``pipe resume --wait``)
- :func:`pipe_status` (``pipe status PIPE``), :func:`list_pipes` (``pipe list``)
- :func:`pause`, :func:`resume`, :func:`stop` (``pipe pause|resume|stop PIPE``)
- :func:`logs` (``pipe logs PIPE [--element E] [--after ID]``)
- :func:`debug_element` (``pipe debug PIPE ELEMENT [--commit]``)
- :func:`list_templates` (``pipe templates``)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from annoloop.errors import Conflict, InvalidInput
from annoloop.pipeline.engine import PipeEngine, run_pipe, task_name
from annoloop.pipeline.projects import (
    BUILTIN_TEMPLATES,
    PipelineProject,
    find_template,
    import_pipeline_files,
    imported_pipelines,
    read_pipeline,
)
from annoloop.pipeline.state import (
    LogRecord,
    add_logs,
    create_pipe,
    element_rows,
    find_pipe,
    read_logs,
    read_results,
    set_pipe_state,
    update_element,
)
from annoloop.pipeline.template import apply_overrides
from annoloop.store.engine import read_transaction, run_write


@dataclass
class ElementStatus:
    """One element as ``pipe status`` shows it."""

    element: str
    type: str
    state: str
    iteration: int
    progress_done: int
    progress_total: int | None
    message: str | None
    error: str | None
    traceback: str | None
    job_id: int | None
    task_id: int | None = None
    task: str | None = None
    items: dict[str, int] = field(default_factory=dict)  # work item states (this iteration)
    loop_count: int = 0
    max_iterations: int | None = None


@dataclass
class PipeStatus:
    """A pipe and its elements (``to_dict()`` for JSON)."""

    id: int
    name: str
    state: str
    template: str
    elements: list[ElementStatus]

    @property
    def failed(self) -> list[str]:
        return [e.element for e in self.elements if e.state == "failed"]

    @property
    def finished(self) -> bool:
        return self.state == "finished"

    def element(self, element_id: str) -> ElementStatus:
        for el in self.elements:
            if el.element == element_id:
                return el
        raise KeyError(element_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- pipeline projects --------------------------------------------------------------------------


def import_pipeline(
    project: Any,
    folder_or_zip: str | os.PathLike[str],
    *,
    name: str | None = None,
    replace: bool = False,
) -> PipelineProject:
    """Check a pipeline project (a folder or a zip of templates, scripts and static files) and
    copy it into the project (``runs/pipelines/<name>``).

    ``name``: the pipeline project's name (default: ``pipeline.yaml``'s ``name``, else the
    folder or zip name). ``replace``: overwrite an imported project of that name (a fixed
    script then reaches the pipes that use it on ``resume``). Errors name the file, the
    element and the field.
    """
    return import_pipeline_files(project, folder_or_zip, name=name, replace=replace)


def list_templates(project: Any) -> dict[str, str]:
    """Template reference -> description: the ready-made ones and those of imported
    pipeline projects (``PIPELINE/TEMPLATE``)."""
    from annoloop.pipeline.projects import builtin_template

    out = {}
    for name in BUILTIN_TEMPLATES:
        out[name] = builtin_template(name)[0].description
    for pipeline in imported_pipelines(project):
        checked = read_pipeline(project.runs.join("pipelines", pipeline), pipeline)
        for tname, template in checked.templates.items():
            out[f"{pipeline}/{tname}"] = template.description
    return out


# -- starting -----------------------------------------------------------------------------------


def start_pipe(
    project: Any,
    template: Any,
    name: str | None = None,
    executor: Any = None,
    *,
    overrides: dict[str, Any] | None = None,
    wait: bool = False,
    timeout: float | None = None,
    files: str | None = None,
) -> PipeStatus:
    """Create a pipe from ``template`` and (with ``wait`` or an ``executor``) run it.

    ``template``: a template file, ``PIPELINE/TEMPLATE`` of an imported pipeline project, a
    ready-made template name (``request_all``, ``propose_review``, ``two_stage``,
    ``point_loop``, ``export_only``) or a Template. ``name``: the pipe's name (default:
    the template's name and a number). ``overrides``: ``{"element.field": value}``, e.g.
    ``{"boxes.labels": ["cat", "dog"], "request.arguments.priority": 1}``. ``files``: where
    the scripts and static files of a Template object are (a folder or URL). ``executor``: an
    annoloop executor or a name for ``get_executor`` (``"local"``, ``"dask"``,
    ``"tcp://host:8786"``). Without ``wait`` and without an executor the pipe is only created
    (in state running): ``run`` or the server advance it. With ``wait`` it runs until idle
    (``timeout`` seconds at most). Annotation tasks are created as ``<pipe>/<task name>``.
    """
    from annoloop.pipeline.runner import read_script_info
    from annoloop.store import labels as _labels
    from annoloop.store import workitems as _work

    tmpl, found = find_template(project, template)
    if files is not None:
        from annoloop.storage import Location

        files = str(Location.parse(files))
    else:
        files = found
    tmpl = apply_overrides(tmpl, overrides)
    for el in tmpl.elements:  # fail before anything is written: a missing or broken script
        if el.type == "script":
            try:
                read_script_info(el.script, files)
            except Exception as exc:
                raise InvalidInput(
                    str(exc), f"template {tmpl.name!r}: element {el.id!r} field script"
                ) from None

    def create(conn: sa.Connection) -> int:
        pipe_name = name or _free_name(conn, tmpl.name)
        rows = []
        for el in tmpl.elements:
            task_id = None
            if el.type == "annotask":
                label_ids = None
                if el.labels is not None:
                    label_ids = _labels.add_labels(conn, list(el.labels)).tolist()
                task_id = _work.add_task(
                    conn,
                    task_name(pipe_name, el.name),
                    instructions=el.instructions,
                    kinds=list(el.kinds),
                    labels=label_ids,
                    show_proposals=el.show_proposals,
                )
            rows.append((el.id, el.type, task_id))
        pid = create_pipe(conn, pipe_name, tmpl.to_dict(), files, rows)
        add_logs(
            conn, pid, [(None, None, None, "INFO", f"pipe created from template {tmpl.name!r}")]
        )
        return pid

    pipe_id = run_write(project.engine, create)
    if wait or executor is not None:
        return run(project, pipe_id, executor, timeout=timeout)
    return pipe_status(project, pipe_id)


def _free_name(conn: sa.Connection, base: str) -> str:
    from annoloop.pipeline.tables import pipe

    taken = set(conn.execute(sa.select(pipe.c.name)).scalars())
    for i in range(1, len(taken) + 2):
        candidate = f"{base}-{i}"
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def run(
    project: Any,
    pipe: int | str,
    executor: Any = None,
    *,
    until_idle: bool = True,
    timeout: float | None = None,
    takeover: bool = False,
) -> PipeStatus:
    """Drive a pipe (see :func:`annoloop.pipeline.engine.run_pipe`); ``executor`` may be a
    name for ``get_executor`` (the executor made here is shut down at the end)."""
    if isinstance(executor, str):
        from annoloop.execution import get_executor

        with get_executor(executor) as ex:
            return run_pipe(
                project, pipe, ex, until_idle=until_idle, timeout=timeout, takeover=takeover
            )
    return run_pipe(
        project, pipe, executor, until_idle=until_idle, timeout=timeout, takeover=takeover
    )


# -- status -------------------------------------------------------------------------------------


def pipe_status(project: Any, pipe: int | str) -> PipeStatus:
    """A pipe's state and every element's state, iteration, progress, error and (for
    annotation tasks) work item counts of the current iteration."""
    from annoloop.store import bulk

    with read_transaction(project.engine) as conn:
        row = find_pipe(conn, pipe)
        rows = element_rows(conn, row.id)
        task_ids = [r.task_id for r in rows.values() if r.task_id is not None]
        counts: dict[tuple[int, int], dict[str, int]] = {}
        names: dict[int, str] = {}
        if task_ids:
            sql, params = bulk.in_filter(conn, "task_id", task_ids)
            for tid, it, state, n in bulk.fetch_rows(
                conn,
                f"SELECT task_id, iteration, state, COUNT(*) FROM work_item WHERE {sql} "
                "GROUP BY task_id, iteration, state",
                params,
            ):
                counts.setdefault((int(tid), int(it)), {})[state] = int(n)
            sql, params = bulk.in_filter(conn, "id", task_ids)
            names = dict(bulk.fetch_rows(conn, f"SELECT id, name FROM task WHERE {sql}", params))
    template = row.template
    by_id = {el["id"]: el for el in template.get("elements", [])}
    elements = []
    for element, r in rows.items():
        items = counts.get((r.task_id, r.iteration), {}) if r.task_id is not None else {}
        elements.append(
            ElementStatus(
                element=element,
                type=r.type,
                state=r.state,
                iteration=r.iteration,
                progress_done=r.progress_done,
                progress_total=r.progress_total,
                message=r.message,
                error=r.error,
                traceback=r.traceback,
                job_id=r.job_id,
                task_id=r.task_id,
                task=names.get(r.task_id) if r.task_id else None,
                items={s: items.get(s, 0) for s in ("open", "locked", "done", "junk")}
                if r.task_id is not None
                else {},
                loop_count=r.loop_count,
                max_iterations=by_id.get(element, {}).get("max_iterations"),
            )
        )
    return PipeStatus(
        id=row.id,
        name=row.name,
        state=row.state,
        template=template.get("name", ""),
        elements=elements,
    )


def list_pipes(project: Any) -> list[dict[str, Any]]:
    """Every pipe: id, name, state, template, created_at."""
    from annoloop.pipeline.state import list_pipes as _list

    with read_transaction(project.engine) as conn:
        return [
            {
                "id": p.id,
                "name": p.name,
                "state": p.state,
                "template": p.template.get("name"),
                "created_at": p.created_at,
            }
            for p in _list(conn)
        ]


def results(project: Any, pipe: int | str, element: str | None = None) -> list[dict[str, Any]]:
    """What the pipe's visual and export elements hold (files, HTML, export summaries)."""
    with read_transaction(project.engine) as conn:
        row = find_pipe(conn, pipe)
        return read_results(conn, row.id, element)


def logs(
    project: Any,
    pipe: int | str,
    *,
    element: str | None = None,
    after_id: int = 0,
    limit: int | None = None,
) -> list[LogRecord]:
    """Log records of a pipe (engine events, script logs, tracebacks), oldest first; only
    those of ``element`` and newer than ``after_id`` (for ``--follow``) when given."""
    with read_transaction(project.engine) as conn:
        row = find_pipe(conn, pipe)
        return read_logs(conn, row.id, element=element, after_id=after_id, limit=limit)


# -- control ------------------------------------------------------------------------------------


def pause(project: Any, pipe: int | str) -> PipeStatus:
    """Pause a pipe: nothing new starts (running scripts finish; annotators go on). Pending
    elements show as paused."""

    def write(conn: sa.Connection) -> int:
        row = find_pipe(conn, pipe)
        if row.state in ("finished", "stopped"):
            raise Conflict(f"pipe {row.name!r} is {row.state}; it cannot be paused")
        set_pipe_state(conn, row.id, "paused")
        for element, r in element_rows(conn, row.id).items():
            if r.state == "pending":
                update_element(
                    conn,
                    row.id,
                    element,
                    where={"state": "pending"},
                    state="paused",
                    message="pipe paused",
                )
        add_logs(conn, row.id, [(None, None, None, "INFO", "pipe paused")])
        return row.id

    return pipe_status(project, run_write(project.engine, write))


def resume(project: Any, pipe: int | str, *, retry_failed: bool = True) -> PipeStatus:
    """Resume a paused or stopped pipe: paused elements become pending, and (with
    ``retry_failed``) failed elements run again: fix the script first (edit it, or import
    its pipeline project again with ``replace``)."""

    def write(conn: sa.Connection) -> int:
        row = find_pipe(conn, pipe)
        if row.state == "finished":
            raise Conflict(f"pipe {row.name!r} is finished")
        set_pipe_state(conn, row.id, "running")
        states = ("paused", "failed") if retry_failed else ("paused",)
        again = []
        for element, r in element_rows(conn, row.id).items():
            if r.state in states:
                update_element(
                    conn,
                    row.id,
                    element,
                    where={"state": r.state},
                    state="pending",
                    job_id=None,
                    attempts=0,
                    message="resumed",
                    not_before=None,
                )
                again.append(element)
        add_logs(
            conn,
            row.id,
            [
                (
                    None,
                    None,
                    None,
                    "INFO",
                    "pipe resumed" + (f"; again: {', '.join(again)}" if again else ""),
                )
            ],
        )
        return row.id

    return pipe_status(project, run_write(project.engine, write))


def stop(project: Any, pipe: int | str) -> PipeStatus:
    """Stop a pipe: running scripts and exports are cancelled (their elements paused,
    nothing they produced is written), nothing new starts. ``resume`` continues it."""
    from annoloop.store import jobs as _jobs

    def write(conn: sa.Connection) -> int:
        row = find_pipe(conn, pipe)
        if row.state == "finished":
            raise Conflict(f"pipe {row.name!r} is finished")
        set_pipe_state(conn, row.id, "stopped")
        for element, r in element_rows(conn, row.id).items():
            if r.state == "in_progress" and r.type in ("script", "export") and r.job_id:
                if _jobs.get_job(conn, r.job_id)["state"] in ("queued", "running"):
                    _jobs.update_job(
                        conn, r.job_id, state="cancelled", error="the pipe was stopped"
                    )
                update_element(
                    conn, row.id, element, state="paused", job_id=None, message="stopped"
                )
            elif r.state == "pending":
                update_element(conn, row.id, element, state="paused", message="pipe stopped")
        add_logs(conn, row.id, [(None, None, None, "INFO", "pipe stopped")])
        return row.id

    return pipe_status(project, run_write(project.engine, write))


def debug_element(
    project: Any,
    pipe: int | str,
    element: str,
    *,
    commit: bool = False,
    post_mortem: bool = True,
    debugger: Any = None,
) -> Any:
    """Run one instance of a script element in the foreground, with its real inputs (the
    element's current iteration), and open the debugger on an exception.

    ``commit``: write its outputs and finish the element, as a normal run would (only when the
    element is not running). ``post_mortem``: on an exception call ``debugger(traceback)``
    (default ``pdb.post_mortem``). Returns the ScriptJobResult; the script's log is shown on
    the console too.
    """
    import logging

    from annoloop.pipeline.runner import execute_script
    from annoloop.store import jobs as _jobs

    engine = PipeEngine(project, pipe)
    el = engine.template.element(element)
    if el.type != "script":
        raise InvalidInput(f"{element!r} is a {el.type}, not a script", "debug")
    if debugger is None:
        import pdb

        debugger = pdb.post_mortem

    def prepare(conn: sa.Connection) -> Any:
        rows = element_rows(conn, engine.pipe_id)
        row = rows[element]
        job_id = _jobs.add_job(conn, "pipe-debug", f"{engine.pipe_name}/{element}#{row.iteration}")
        request = engine.script_request(element, job_id, rows, debug=True)
        _jobs.update_job(conn, job_id, spec=request.persisted())
        if commit:
            if row.state == "in_progress":
                raise Conflict(f"element {element!r} is running (job {row.job_id}); stop it first")
            update_element(
                conn,
                engine.pipe_id,
                element,
                state="in_progress",
                job_id=job_id,
                message="debugging",
                error=None,
                traceback=None,
            )
        add_logs(
            conn,
            engine.pipe_id,
            [
                (
                    element,
                    row.iteration,
                    job_id,
                    "INFO",
                    "debug run" + (" (committing)" if commit else ""),
                )
            ],
        )
        return request

    request = run_write(project.engine, prepare)
    logging.getLogger("annoloop.pipe").setLevel(logging.INFO)
    result = execute_script(
        project, request, commit=commit, post_mortem=debugger if post_mortem else None
    )
    if not commit:
        run_write(
            project.engine,
            lambda c: _jobs.update_job(
                c,
                request.job_id,
                state="finished" if result.ok else "failed",
                error=result.error,
                traceback=result.traceback,
                result=result.counts,
            ),
        )
    return result
