"""The engine: advances a pipe whose whole state lives in the store.

:class:`PipeEngine` is step-wise: :meth:`PipeEngine.step` records what finished, starts what
can start and returns (the server calls it from its loop). :func:`run_pipe` drives it until the
pipe is finished, stopped, or idle (waiting for humans, or blocked by a failure).

Rules:

- An element starts when all its inputs are finished and the pipe is running. Datasources,
  visual elements and exports without a format finish at once; scripts and exports run as jobs
  on the executor; an annotation task finishes when every work item of its current iteration
  is done or junk.
- A loop whose inputs and whole body are finished jumps back (every body element pending again,
  one iteration further) until the body ran ``max_iterations`` times or a script in it called
  ``break_loop()``.
- A script that raises fails its element (traceback in the element, the job and the log);
  other branches go on; ``resume`` retries it. A lost worker re-runs the element (``retries``
  times) or fails it with the reason.
- One engine drives a pipe at a time (a lease in the ``pipe`` row, refreshed every step). An
  engine that starts on a pipe whose engine died re-submits the jobs that were running; their
  old runs, if they still finish somewhere, write nothing (their jobs were cancelled).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from annoloop.errors import AnnoloopError, Conflict, InvalidInput
from annoloop.pipeline.graph import PipeGraph
from annoloop.pipeline.messages import (
    DatasourceRef,
    ExportJobRequest,
    ScriptJobRequest,
    ScriptJobResult,
    StoreRef,
    TaskRef,
)
from annoloop.pipeline.state import (
    ElementRow,
    PipeRow,
    add_logs,
    add_results,
    claim_pipe,
    element_rows,
    find_pipe,
    heartbeat,
    release_pipe,
    set_pipe_state,
    update_element,
)
from annoloop.pipeline.template import Template, parse_template
from annoloop.store.engine import read_transaction, run_write
from annoloop.store.schema import utcnow

log = logging.getLogger(__name__)

LEASE_STALE_S = 30.0  # an engine not seen for this long has died: another may take over
HEARTBEAT_EVERY_S = 5.0


def store_ref(project: Any) -> StoreRef:
    """How jobs reach this project's store (the URL keeps its password: never stored)."""
    return StoreRef(
        database_url=project.engine.url.render_as_string(hide_password=False),
        storage_url=str(project.media),
    )


def pipe_folder(project: Any, pipe: PipeRow) -> Any:
    """The run folder of a pipe: ``runs/pipes/<id>-<name>``."""
    import re

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", pipe.name).strip("-.")[:60] or "pipe"
    return project.runs.join("pipes", f"{pipe.id}-{slug}")


def resolve_location(project: Any, files: str | None, text: str) -> Any:
    """A template location: ``static:PATH`` (pipeline project), URL or absolute path, or a
    path relative to the project's media root."""
    from annoloop.storage import Location

    if text.startswith("static:"):
        if files is None:
            raise InvalidInput("static: needs a pipeline project, this pipe has none", text)
        return Location.parse(files).join(text[len("static:") :])
    if "://" in text or os.path.isabs(text):
        return Location.parse(text)
    return project.media.join(text)


@dataclass
class StepReport:
    """What one :meth:`PipeEngine.step` saw and did."""

    pipe_state: str
    changed: bool = False
    running: list[str] = field(default_factory=list)  # elements with a job on the executor
    waiting_for_humans: list[str] = field(default_factory=list)
    waiting_for_time: list[str] = field(default_factory=list)  # rejected runs waiting
    failed: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def idle(self) -> bool:
        """Nothing runs and nothing can advance without a human, a fix or a resume."""
        return not self.changed and not self.running and not self.waiting_for_time


class PipeEngine:
    """Drives one pipe. ``executor``: an annoloop executor (default: a new in-process
    ``LocalExecutor``, shut down by :meth:`close`). ``takeover``: take the pipe even if
    another engine seems to drive it."""

    def __init__(
        self,
        project: Any,
        pipe: int | str,
        executor: Any = None,
        *,
        takeover: bool = False,
        owner: str | None = None,
    ) -> None:
        from annoloop.pipeline.runner import register_project

        self.project = project
        with read_transaction(project.engine) as conn:
            row = find_pipe(conn, pipe)
        self.pipe_id = row.id
        self.pipe_name = row.name
        self.files = row.files
        self.template: Template = parse_template(row.template, f"pipe {row.name!r}")
        self.graph = PipeGraph(self.template)
        self.folder = pipe_folder(project, row)
        self._own_executor = executor is None
        self._executor = executor
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.takeover = takeover
        self._futures: dict[str, tuple[Any, int]] = {}  # element -> (future, job id)
        self._wake = threading.Event()
        self._claimed = False
        self._last_beat = 0.0
        self._script_info: dict[str, Any] = {}
        self.store = store_ref(project)
        register_project(project, self.store)  # in-process jobs reuse this project

    # -- executor ---------------------------------------------------------------------------
    @property
    def executor(self) -> Any:
        if self._executor is None:
            from annoloop.execution import get_executor

            self._executor = get_executor("local")
        return self._executor

    def wait(self, timeout: float) -> None:
        """Sleep until a job ends or ``timeout`` seconds pass."""
        self._wake.wait(timeout)
        self._wake.clear()

    def close(self, *, cancel_running: bool = True) -> None:
        """Release the pipe; cancel jobs still running (they run again on the next start)."""
        if cancel_running and self._futures:
            self._cancel_futures(reason="the engine closed", element_state="pending")
        if self._claimed:
            try:
                run_write(self.project.engine, lambda c: release_pipe(c, self.pipe_id, self.owner))
            except Exception:
                log.exception("could not release pipe %s", self.pipe_id)
            self._claimed = False
        if self._own_executor and self._executor is not None:
            self._executor.shutdown(cancel=True)
            self._executor = None

    def __enter__(self) -> PipeEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- logging ----------------------------------------------------------------------------
    def _log(
        self,
        conn: sa.Connection,
        element: str | None,
        message: str,
        level: str = "INFO",
        iteration: int | None = None,
        job_id: int | None = None,
    ) -> None:
        add_logs(conn, self.pipe_id, [(element, iteration, job_id, level, message)])

    # -- the step ---------------------------------------------------------------------------
    def step(self) -> StepReport:
        """Advance the pipe as far as it goes now; never blocks on a job."""
        self._lease()
        changed = self._collect_futures()
        with read_transaction(self.project.engine) as conn:
            pipe = find_pipe(conn, self.pipe_id)
        if pipe.state == "stopped" and self._futures:
            self._cancel_futures(reason="the pipe was stopped", element_state="paused")
            changed = True
        if not self._recovered:
            changed |= self._recover_orphans()
            self._recovered = True
        for _ in range(len(self.graph.ids) * 4 + 4):  # instant elements cascade; bounded
            progressed = self._advance(pipe.state)
            changed |= progressed
            if not progressed:
                break
        return self._report(changed)

    _recovered = False

    def _lease(self) -> None:
        now = time.monotonic()
        if not self._claimed:
            ok = run_write(
                self.project.engine,
                lambda c: claim_pipe(
                    c, self.pipe_id, self.owner, stale_after=LEASE_STALE_S, force=self.takeover
                ),
            )
            if not ok:
                raise Conflict(
                    f"pipe {self.pipe_name!r} is driven by another engine; stop it, wait "
                    f"{LEASE_STALE_S:.0f} s after it died, or take over"
                )
            self._claimed = True
            self._last_beat = now
        elif now - self._last_beat >= HEARTBEAT_EVERY_S:
            if not run_write(self.project.engine, lambda c: heartbeat(c, self.pipe_id, self.owner)):
                self._claimed = False
                raise Conflict(f"another engine took pipe {self.pipe_name!r} over")
            self._last_beat = now

    def _rows(self) -> dict[str, ElementRow]:
        with read_transaction(self.project.engine) as conn:
            return element_rows(conn, self.pipe_id)

    def _report(self, changed: bool) -> StepReport:
        with read_transaction(self.project.engine) as conn:
            pipe = find_pipe(conn, self.pipe_id)
            rows = element_rows(conn, self.pipe_id)
        now = utcnow()
        report = StepReport(pipe_state=pipe.state, changed=changed)
        report.running = sorted(self._futures)
        for name, row in rows.items():
            if row.state == "failed":
                report.failed.append(name)
            elif row.state == "in_progress" and row.type == "annotask":
                report.waiting_for_humans.append(name)
            elif (
                row.state == "pending"
                and row.not_before is not None
                and row.not_before > now
                and pipe.state == "running"
            ):
                report.waiting_for_time.append(name)
        report.finished = pipe.state == "finished"
        return report

    # -- futures ----------------------------------------------------------------------------
    def _collect_futures(self) -> bool:
        changed = False
        for element, (future, job_id) in list(self._futures.items()):
            if not future.done():
                continue
            del self._futures[element]
            changed = True
            try:
                result = future.result()
            except BaseException as exc:  # the job never delivered a result
                self._job_lost(element, job_id, exc)
                continue
            if isinstance(result, ScriptJobResult) and not result.ok and not result.committed:
                log.info("job %s of element %s: %s", job_id, element, result.error)
        return changed

    def _job_lost(self, element: str, job_id: int, exc: BaseException) -> None:
        """A job raised instead of returning (its worker died, it was cancelled, it could not
        be sent): retry the element or fail it with the reason."""
        from annoloop.execution import TaskCancelled, WorkerLost
        from annoloop.store import jobs as _jobs

        el = self.template.element(element)
        retries = int(getattr(el, "retries", 0) or 0)
        reason = f"{type(exc).__name__}: {exc}"
        cancelled = isinstance(exc, TaskCancelled)
        lost = isinstance(exc, WorkerLost)

        def write(conn: sa.Connection) -> str:
            from annoloop.pipeline.state import element_row

            row = element_row(conn, self.pipe_id, element, lock=True)
            job_state = _jobs.get_job(conn, job_id)["state"]
            if job_state in ("queued", "running"):
                _jobs.update_job(
                    conn, job_id, state="cancelled" if cancelled else "failed", error=reason
                )
            if row.job_id != job_id or row.state != "in_progress":
                return "gone"
            if cancelled:
                update_element(
                    conn, self.pipe_id, element, state="paused", job_id=None, message="stopped"
                )
                return "paused"
            if row.attempts <= retries:
                update_element(
                    conn,
                    self.pipe_id,
                    element,
                    state="pending",
                    job_id=None,
                    message=f"retrying after: {reason}",
                )
                self._log(
                    conn,
                    element,
                    f"job {job_id} did not finish ({reason}); retrying",
                    "WARNING",
                    row.iteration,
                    job_id,
                )
                return "retry"
            what = "its worker was lost" if lost else "it did not finish"
            error = f"job {job_id} failed: {what} ({reason})"
            update_element(
                conn,
                self.pipe_id,
                element,
                state="failed",
                error=error,
                traceback=None,
                message="failed",
            )
            self._log(conn, element, error, "ERROR", row.iteration, job_id)
            return "failed"

        run_write(self.project.engine, write)

    def _cancel_futures(self, *, reason: str, element_state: str) -> None:
        """Cancel running jobs; their elements go to ``element_state``."""
        from annoloop.store import jobs as _jobs

        futures = dict(self._futures)
        self._futures.clear()
        for element, (future, job_id) in futures.items():
            future.cancel()

            def write(conn: sa.Connection, element: str = element, job_id: int = job_id) -> None:
                job_state = _jobs.get_job(conn, job_id)["state"]
                if job_state in ("queued", "running"):
                    _jobs.update_job(conn, job_id, state="cancelled", error=reason)
                update_element(
                    conn,
                    self.pipe_id,
                    element,
                    where={"job_id": job_id, "state": "in_progress"},
                    state=element_state,
                    job_id=None,
                    message=reason,
                )
                self._log(
                    conn, element, f"job {job_id} cancelled: {reason}", "WARNING", None, job_id
                )

            run_write(self.project.engine, write)

    def _recover_orphans(self) -> bool:
        """Jobs left running by an engine that died: cancel them and run their elements
        again (the old runs, if alive, will find their jobs cancelled and write nothing)."""
        from annoloop.store import jobs as _jobs

        rows = self._rows()
        changed = False
        for element, row in rows.items():
            if row.state != "in_progress" or row.type not in ("script", "export"):
                continue
            if element in self._futures:
                continue
            changed = True

            def write(conn: sa.Connection, element: str = element, row: ElementRow = row) -> None:
                if row.job_id is not None:
                    state = _jobs.get_job(conn, row.job_id)["state"]
                    if state in ("queued", "running"):
                        _jobs.update_job(
                            conn,
                            row.job_id,
                            state="cancelled",
                            error="the engine that ran it stopped",
                        )
                update_element(
                    conn,
                    self.pipe_id,
                    element,
                    where={"state": "in_progress", "job_id": row.job_id},
                    state="pending",
                    job_id=None,
                    attempts=0,
                    message="run again: the engine that ran it stopped",
                )
                self._log(
                    conn,
                    element,
                    f"job {row.job_id} was left by an engine that stopped; "
                    "running the element again",
                    "WARNING",
                    row.iteration,
                    row.job_id,
                )

            run_write(self.project.engine, write)
        return changed

    # -- advancing --------------------------------------------------------------------------
    def _advance(self, pipe_state: str) -> bool:
        rows = self._rows()
        changed = False
        # annotation tasks finish by themselves, whatever the pipe state
        for element in self.graph.order:
            row = rows[element]
            if row.type == "annotask" and row.state == "in_progress":
                changed |= self._check_annotask(element, row)
        if pipe_state != "running":
            return changed
        if changed:
            rows = self._rows()
        now = utcnow()
        for element in self.graph.order:
            row = rows[element]
            if row.state != "pending":
                continue
            if any(rows[i].state != "finished" for i in self.graph.inputs[element]):
                continue
            if row.not_before is not None and row.not_before > now:
                continue
            if row.type == "loop":
                if all(rows[b].state == "finished" for b in self.graph.bodies[element]):
                    self._evaluate_loop(element, row)
                    return True  # the body changed: read the rows again
                continue
            self._start(element, row)
            changed = True
        if changed:
            return True
        if all(r.state == "finished" for r in rows.values()):

            def finish(conn: sa.Connection) -> bool:
                if find_pipe(conn, self.pipe_id).state != "running":
                    return False
                set_pipe_state(conn, self.pipe_id, "finished")
                self._log(conn, None, "pipe finished")
                return True

            return bool(run_write(self.project.engine, finish))
        return False

    def _start(self, element: str, row: ElementRow) -> None:
        kind = row.type
        try:
            if kind == "datasource":
                self._finish_datasource(element, row)
            elif kind == "annotask":
                self._start_annotask(element, row)
            elif kind == "visual":
                self._finish_visual(element, row)
            elif kind == "export" and self.template.element(element).format is None:
                self._finish_instant(element, row, "files collected")
            elif kind in ("script", "export"):
                self._start_job(element, row)
            else:  # pragma: no cover - the template schema allows no other type
                raise InvalidInput(f"unknown element type {kind!r}", element)
        except AnnoloopError as exc:
            self._fail(element, row, f"{type(exc).__name__}: {exc}")

    def _fail(self, element: str, row: ElementRow, error: str, job_id: int | None = None) -> None:
        def write(conn: sa.Connection) -> None:
            update_element(
                conn,
                self.pipe_id,
                element,
                state="failed",
                error=error,
                message="failed",
                job_id=None,
            )
            self._log(conn, element, error, "ERROR", row.iteration, job_id)

        run_write(self.project.engine, write)

    def _finish_instant(
        self,
        element: str,
        row: ElementRow,
        message: str,
        results: list[dict[str, Any]] | None = None,
    ) -> None:
        def write(conn: sa.Connection) -> None:
            if update_element(
                conn,
                self.pipe_id,
                element,
                where={"state": "pending"},
                state="finished",
                started_at=utcnow(),
                finished_at=utcnow(),
                message=message,
                error=None,
                traceback=None,
            ):
                add_results(conn, self.pipe_id, results or [])
                self._log(conn, element, message, "INFO", row.iteration)

        run_write(self.project.engine, write)

    def _finish_datasource(self, element: str, row: ElementRow) -> None:
        el = self.template.element(element)
        message = "project images"
        if el.location is not None:
            loc = resolve_location(self.project, self.files, el.location)
            if not loc.exists():
                raise InvalidInput(f"the location {loc} does not exist", f"datasource {element!r}")
            message = str(loc)
        elif isinstance(el.images, list):
            message = f"{len(el.images)} project images"
        self._finish_instant(element, row, message)

    def _finish_visual(self, element: str, row: ElementRow) -> None:
        el = self.template.element(element)
        results = []
        if el.file is not None:
            loc = resolve_location(self.project, self.files, f"static:{el.file}")
            if not loc.exists():
                raise InvalidInput(
                    f"the file {loc} does not exist", f"visual {element!r} field file"
                )
            results.append(
                {
                    "element": element,
                    "source": None,
                    "iteration": row.iteration,
                    "kind": "visual",
                    "location": str(loc),
                }
            )
        self._finish_instant(element, row, "shown", results)

    def _start_annotask(self, element: str, row: ElementRow) -> None:
        def write(conn: sa.Connection) -> None:
            if update_element(
                conn,
                self.pipe_id,
                element,
                where={"state": "pending"},
                state="in_progress",
                started_at=utcnow(),
                message="waiting for annotators",
                error=None,
            ):
                self._log(
                    conn,
                    element,
                    f"annotation task open (iteration {row.iteration})",
                    "INFO",
                    row.iteration,
                )

        run_write(self.project.engine, write)
        self._check_annotask(element, row)

    def _check_annotask(self, element: str, row: ElementRow) -> bool:
        """Finish the task's element when its iteration's items are all done or junk."""
        from annoloop.store import bulk

        def write(conn: sa.Connection) -> bool:
            ph = bulk.placeholder(conn)
            counts = dict(
                bulk.fetch_rows(
                    conn,
                    f"SELECT state, COUNT(*) FROM work_item WHERE task_id = {ph} AND "
                    f"iteration = {ph} GROUP BY state",
                    [row.task_id, row.iteration],
                )
            )
            total = sum(counts.values())
            done = counts.get("done", 0) + counts.get("junk", 0)
            if total and done < total:
                if row.progress_done != done or row.progress_total != total:
                    update_element(
                        conn,
                        self.pipe_id,
                        element,
                        progress_done=done,
                        progress_total=total,
                        message=f"{done} of {total} items annotated",
                    )
                return False
            changed = update_element(
                conn,
                self.pipe_id,
                element,
                where={"state": "in_progress"},
                state="finished",
                progress_done=done,
                progress_total=total,
                finished_at=utcnow(),
                message=f"{done} of {total} items annotated" if total else "nothing to annotate",
            )
            if changed:
                self._log(
                    conn, element, f"annotation task finished ({done} items)", "INFO", row.iteration
                )
            return changed

        return bool(run_write(self.project.engine, write))

    def _evaluate_loop(self, element: str, row: ElementRow) -> None:
        el = self.template.element(element)
        body = self.graph.bodies[element]
        runs = row.loop_count + 1

        def write(conn: sa.Connection) -> None:
            from annoloop.pipeline.state import element_row

            current = element_row(conn, self.pipe_id, element, lock=True)
            if current.state != "pending" or current.loop_count != row.loop_count:
                return
            if current.broken or runs >= el.max_iterations:
                why = "a script broke it" if current.broken else f"{runs} iterations done"
                update_element(
                    conn,
                    self.pipe_id,
                    element,
                    state="finished",
                    finished_at=utcnow(),
                    message=f"loop ended: {why}",
                )
                self._log(conn, element, f"loop ended after {runs} iteration(s): {why}")
                return
            from annoloop.pipeline.tables import pipe_element

            conn.execute(
                pipe_element.update()
                .where(pipe_element.c.pipe_id == self.pipe_id, pipe_element.c.element.in_(body))
                .values(
                    state="pending",
                    iteration=pipe_element.c.iteration + 1,
                    job_id=None,
                    attempts=0,
                    progress_done=0,
                    progress_total=None,
                    message=None,
                    error=None,
                    traceback=None,
                    not_before=None,
                    finished_at=None,
                    broken=False,
                    loop_count=0,
                    updated_at=utcnow(),
                )
            )
            update_element(
                conn,
                self.pipe_id,
                element,
                loop_count=runs,
                message=f"iteration {runs + 1} of at most {el.max_iterations}",
            )
            self._log(
                conn,
                element,
                f"loop jumps back to {el.jump!r}: iteration {runs + 1} of "
                f"at most {el.max_iterations}",
            )

        run_write(self.project.engine, write)

    # -- jobs -------------------------------------------------------------------------------
    def _info(self, element: str) -> Any:
        from annoloop.pipeline.runner import read_script_info

        if element not in self._script_info:
            el = self.template.element(element)
            self._script_info[element] = read_script_info(el.script, self.files)
        return self._script_info[element]

    def _task_ref(self, rows: dict[str, ElementRow], element: str) -> TaskRef:
        el = self.template.element(element)
        row = rows[element]
        return TaskRef(
            element=element,
            task_id=int(row.task_id or 0),
            name=task_name(self.pipe_name, el.name),
            kinds=list(el.kinds),
            iteration=row.iteration,
        )

    def _datasource_ref(self, element: str) -> DatasourceRef:
        el = self.template.element(element)
        loc = None
        if el.location is not None:
            loc = str(resolve_location(self.project, self.files, el.location))
        return DatasourceRef(
            element=element, location=loc, images=el.images, recursive=el.recursive
        )

    def script_request(
        self,
        element: str,
        job_id: int,
        rows: dict[str, ElementRow] | None = None,
        *,
        debug: bool = False,
    ) -> ScriptJobRequest:
        """The request that runs ``element`` now (its inputs, outputs and paths)."""
        rows = rows if rows is not None else self._rows()
        el = self.template.element(element)
        g = self.graph
        sources = g.sources(element)
        consumers = g.consumers(element)
        return ScriptJobRequest(
            store=self.store,
            pipe_id=self.pipe_id,
            pipe_name=self.pipe_name,
            element=element,
            iteration=rows[element].iteration,
            job_id=job_id,
            script=el.script,
            files=self.files,
            arguments=dict(el.arguments),
            datasources=[self._datasource_ref(s) for s in sources if g.type_of(s) == "datasource"],
            input_tasks=[self._task_ref(rows, s) for s in sources if g.type_of(s) == "annotask"],
            input_scripts=[s for s in sources if g.type_of(s) == "script"],
            output_tasks=[self._task_ref(rows, c) for c in consumers if g.type_of(c) == "annotask"],
            visuals=[c for c in consumers if g.type_of(c) == "visual"],
            exports=[c for c in consumers if g.type_of(c) == "export"],
            loop=g.enclosing_loop(element),
            instance_path=str(self.folder.join(element)),
            pipe_path=str(self.folder),
            debug=debug,
        )

    def export_request(
        self, element: str, job_id: int, rows: dict[str, ElementRow]
    ) -> ExportJobRequest:
        el = self.template.element(element)
        iteration = rows[element].iteration
        dest = el.destination.format(iteration=iteration, pipe=self.pipe_name, element=element)
        if "://" in dest or os.path.isabs(dest) or dest.startswith("static:"):
            location = resolve_location(self.project, self.files, dest)
        else:
            location = self.folder.join(element, dest)
        if el.tasks is not None:
            task_ids = [self.project.task_id(t) for t in el.tasks]
        else:
            upstream = self.graph.upstream_annotasks(element)
            task_ids = [int(rows[t].task_id or 0) for t in upstream] or None
        return ExportJobRequest(
            store=self.store,
            pipe_id=self.pipe_id,
            element=element,
            iteration=iteration,
            job_id=job_id,
            format=el.format,
            destination=str(location),
            task_ids=task_ids,
            source=el.source,
            options=dict(el.options),
        )

    def _start_job(self, element: str, row: ElementRow) -> None:
        from annoloop.execution import TaskSpec
        from annoloop.pipeline.exports import run_export_job
        from annoloop.pipeline.runner import run_script_job
        from annoloop.store import jobs as _jobs

        el = self.template.element(element)
        is_script = row.type == "script"
        if is_script:
            info = self._info(element)
            envs = list(el.envs) if el.envs is not None else list(info.envs)
            lock_all = el.lock_all if el.lock_all is not None else info.lock_all
            gpu = el.gpu if el.gpu is not None else info.gpu
        else:
            envs, lock_all, gpu = [], False, False
        rows = self._rows()

        def write(conn: sa.Connection) -> tuple[int, Any] | None:
            name = f"{self.pipe_name}/{element}#{row.iteration}"[:200]
            kind = "pipe-script" if is_script else "pipe-export"
            job_id = _jobs.add_job(conn, kind, name)
            if is_script:
                request: Any = self.script_request(element, job_id, rows)
            else:
                request = self.export_request(element, job_id, rows)
            _jobs.update_job(conn, job_id, spec=request.persisted())
            moved = update_element(
                conn,
                self.pipe_id,
                element,
                where={"state": "pending"},
                state="in_progress",
                job_id=job_id,
                attempts=row.attempts + 1,
                started_at=utcnow(),
                progress_done=0,
                progress_total=None,
                message="queued",
                error=None,
                traceback=None,
                not_before=None,
            )
            if not moved:
                _jobs.update_job(conn, job_id, state="cancelled", error="element not pending")
                return None
            self._log(conn, element, f"job {job_id} submitted", "INFO", row.iteration, job_id)
            return job_id, request

        started = run_write(self.project.engine, write)
        if started is None:
            return
        job_id, request = started
        spec = TaskSpec(
            name=f"{self.pipe_name}/{element}"[:200],
            envs=envs,
            lock_all=bool(lock_all),
            gpu=bool(gpu),
            retries=0,
            key=f"job-{job_id}",
        )
        fn = run_script_job if is_script else run_export_job
        try:
            future = self.executor.submit(fn, request, spec=spec)
        except Exception as exc:
            self._fail(
                element, row, f"could not submit job {job_id}: {type(exc).__name__}: {exc}", job_id
            )
            error = str(exc)
            run_write(
                self.project.engine,
                lambda c: _jobs.update_job(c, job_id, state="failed", error=error),
            )
            return
        self._futures[element] = (future, job_id)
        future.add_done_callback(lambda _f: self._wake.set())


def task_name(pipe_name: str, name: str) -> str:
    """The store task of an annotask element: ``<pipe>/<name>``."""
    return f"{pipe_name}/{name}"[:200]


def run_pipe(
    project: Any,
    pipe: int | str,
    executor: Any = None,
    *,
    until_idle: bool = True,
    timeout: float | None = None,
    poll: float = 0.2,
    takeover: bool = False,
) -> Any:
    """Drive a pipe until it is finished or stopped, or (``until_idle``) until nothing runs
    and nothing can advance without a human, a fix or a resume. Returns :func:`pipe_status`.

    ``executor``: an annoloop executor (default: a new in-process LocalExecutor). ``timeout``:
    seconds before TimeoutError (running jobs are cancelled and run again next time).
    """
    from annoloop.pipeline.service import pipe_status

    deadline = None if timeout is None else time.monotonic() + timeout
    engine = PipeEngine(project, pipe, executor, takeover=takeover)
    try:
        while True:
            report = engine.step()
            if report.pipe_state in ("finished", "stopped") and not report.running:
                break
            if until_idle and report.idle:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"pipe {engine.pipe_name!r} still running after {timeout} s")
            if not report.changed:
                engine.wait(poll)
    finally:
        engine.close()
    return pipe_status(project, engine.pipe_id)
