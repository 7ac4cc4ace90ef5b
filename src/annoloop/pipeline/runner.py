"""Run one script instance as a job: load the script, run ``main``, write its outputs once.

:func:`run_script_job` is the picklable function the engine submits to the executor. It opens
the store (cached per process), runs the script with its real inputs, and then writes, in ONE
transaction: the work items it requested (keyed by image, task and iteration), its proposals,
its annotations, its results for visual and export elements, a loop break, the job's final
state and its element's new state. That transaction first checks that the job is still the one
its element waits for: a run that lost its worker and ran again, or that a stop or a restart
replaced, writes nothing. Errors come back in the result (``ok=False``, the traceback) and are
written to the element, the job and the pipe's log.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import sys
import threading
import time
import traceback as tb_module
import types
from typing import Any

import numpy as np
import sqlalchemy as sa

from annoloop.errors import InvalidInput, NotFound
from annoloop.pipeline.messages import ScriptJobRequest, ScriptJobResult, StoreRef
from annoloop.pipeline.script import ProgressThrottle, Script, ScriptContext, script_info
from annoloop.pipeline.state import add_logs, add_results, element_row, update_element
from annoloop.store.engine import run_write

log = logging.getLogger(__name__)

_projects: dict[tuple[str, str | None], Any] = {}
_projects_lock = threading.Lock()
_code_cache: dict[str, types.CodeType] = {}


# -- the store -----------------------------------------------------------------------------------


def register_project(project: Any, store: StoreRef) -> None:
    """Let jobs in this process use an open project instead of opening their own."""
    with _projects_lock:
        _projects[(store.database_url, store.storage_url)] = project


def open_store(store: StoreRef) -> Any:
    """The project behind ``store``, opened once per process."""
    from annoloop.store import Project

    key = (store.database_url, store.storage_url)
    with _projects_lock:
        project = _projects.get(key)
        if project is None:
            project = Project.open(store.database_url, storage_url=store.storage_url)
            _projects[key] = project
    return project


def forget_project(store: StoreRef) -> None:
    with _projects_lock:
        _projects.pop((store.database_url, store.storage_url), None)


# -- loading scripts -----------------------------------------------------------------------------


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"file.py:Class"`` -> (``"file.py"``, ``"Class"``); dotted paths likewise."""
    if ":" in ref and not ref.split(":", 1)[0].endswith(("/", "\\")) and "://" not in ref:
        target, _, cls = ref.rpartition(":")
        if target and cls.isidentifier():
            return target, cls
    return ref, None


def is_file_ref(target: str) -> bool:
    return target.endswith(".py")


def script_location(ref: str, files: str | None) -> Any:
    """The Location of a file script (relative to the pipeline project), or None for a
    dotted module path."""
    from annoloop.storage import Location

    target, _ = split_ref(ref)
    if not is_file_ref(target):
        return None
    if files is None:
        return Location.parse(target)
    return Location.parse(files).join(target)


def script_source(ref: str, files: str | None) -> tuple[str, str]:
    """(source text, file name for tracebacks) of a script reference."""
    target, _ = split_ref(ref)
    loc = script_location(ref, files)
    if loc is not None:
        if not loc.exists():
            raise NotFound(f"script {target!r} not found at {loc}")
        local = loc.local_path()
        return loc.read_text(), str(local) if local is not None else str(loc)
    spec = importlib.util.find_spec(target)
    if spec is None or spec.origin is None:
        raise NotFound(f"no module {target!r} (script {ref!r})")
    with open(spec.origin, encoding="utf-8") as fh:
        return fh.read(), spec.origin


def load_script_class(ref: str, files: str | None) -> tuple[type[Script], dict[str, Any]]:
    """The Script class of a reference, and the globals of its module.

    A file is executed as a fresh module (not ``__main__``, so a LOST script's
    ``if __name__ == "__main__"`` block does not run); its folder is importable while it
    loads when it is local. A dotted path is imported.
    """
    target, cls_name = split_ref(ref)
    if is_file_ref(target):
        source, filename = script_source(ref, files)
        digest = hashlib.sha1(f"{filename}\0{source}".encode()).hexdigest()[:16]
        code = _code_cache.get(digest)
        if code is None:
            try:
                code = compile(source, filename, "exec")
            except SyntaxError as exc:
                raise InvalidInput(
                    f"syntax error: {exc.msg}", f"{filename} line {exc.lineno}"
                ) from None
            _code_cache[digest] = code
        name = f"annoloop_pipe_script_{digest}"
        module = types.ModuleType(name)
        module.__file__ = filename
        sys.modules[name] = module  # dataclasses, pickling and typing look the module up
        folder = filename.rsplit("/", 1)[0] if filename.startswith("/") else None
        added = folder is not None and folder not in sys.path
        if added:
            sys.path.insert(0, folder)  # type: ignore[arg-type]
        try:
            exec(code, module.__dict__)
        finally:
            if added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(folder)  # type: ignore[arg-type]
    else:
        module = importlib.import_module(target)
    namespace = vars(module)
    if cls_name is not None:
        cls = namespace.get(cls_name)
        if not (isinstance(cls, type) and issubclass(cls, Script)):
            raise InvalidInput(f"{cls_name!r} is not a Script subclass", ref)
        return cls, namespace
    found = [
        v
        for v in namespace.values()
        if isinstance(v, type) and issubclass(v, Script) and v.__module__ == module.__name__
    ]
    if not found:
        raise InvalidInput(
            "defines no Script subclass (class X(annoloop.pipeline.Script) with main(self))", ref
        )
    if len(found) > 1:
        names = ", ".join(c.__name__ for c in found)
        raise InvalidInput(f"defines several Script classes ({names}); name one as FILE:CLASS", ref)
    return found[0], namespace


def read_script_info(ref: str, files: str | None) -> Any:
    """ENVS / RESOURCES / ARGUMENTS of a script, read from its source without running it."""
    source, filename = script_source(ref, files)
    return script_info(source, filename, split_ref(ref)[1])


# -- logging -------------------------------------------------------------------------------------


class PipeLogHandler(logging.Handler):
    """Buffers a script's log records and writes them to ``pipe_log`` (at most once a second
    while it runs, and at the end)."""

    def __init__(self, project: Any, request: ScriptJobRequest, every: float = 1.0) -> None:
        super().__init__(logging.DEBUG)
        self.project = project
        self.request = request
        self.every = every
        self.buffer: list[tuple[str | None, int | None, int | None, str, str]] = []
        self._last = time.monotonic()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format string must not kill the script
            text = str(record.msg)
        req = self.request
        self.buffer.append((req.element, req.iteration, req.job_id, record.levelname, text))
        if time.monotonic() - self._last >= self.every:
            self.flush()

    def take(self) -> list[tuple[str | None, int | None, int | None, str, str]]:
        out, self.buffer = self.buffer, []
        return out

    def flush(self) -> None:
        records = self.take()
        self._last = time.monotonic()
        if records:
            try:
                run_write(self.project.engine, lambda c: add_logs(c, self.request.pipe_id, records))
            except Exception:  # the log must never be the reason a script fails
                log.exception("could not write the log of pipe %s", self.request.pipe_id)


def _make_logger(project: Any, request: ScriptJobRequest) -> tuple[logging.Logger, PipeLogHandler]:
    name = f"annoloop.pipe.{request.pipe_id}.{request.element}.{request.job_id}"
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = request.debug  # the debugger shows the log on the console
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler = PipeLogHandler(project, request)
    logger.addHandler(handler)
    return logger, handler


# -- the job -------------------------------------------------------------------------------------


def _job_state(conn: sa.Connection, job_id: int) -> str | None:
    from annoloop.store.schema import job

    return conn.execute(sa.select(job.c.state).where(job.c.id == job_id).with_for_update()).scalar()


def mark_running(conn: sa.Connection, request: Any) -> bool:
    """Move a queued job to running; False when it is already over (a repeated run after a
    lost worker, a run replaced by a stop or a restart)."""
    from annoloop.store.schema import job, utcnow

    result = conn.execute(
        job.update()
        .where(job.c.id == request.job_id, job.c.state.in_(("queued", "running")))
        .values(state="running", started_at=sa.func.coalesce(job.c.started_at, utcnow()))
    )
    return bool(result.rowcount)


def still_current(conn: sa.Connection, request: Any) -> bool:
    """Whether the job may still write: it is queued or running and its element waits for it."""
    state = _job_state(conn, request.job_id)
    if state not in ("queued", "running"):
        return False
    row = element_row(conn, request.pipe_id, request.element, lock=True)
    return row.job_id == request.job_id and row.state == "in_progress"


def _persist_progress(project: Any, request: ScriptJobRequest) -> Any:
    from annoloop.store import jobs as _jobs

    def persist(done: int, total: int | None, message: str) -> None:
        def write(conn: sa.Connection) -> None:
            _jobs.update_job(
                conn, request.job_id, progress_done=done, progress_total=total, message=message
            )
            update_element(
                conn,
                request.pipe_id,
                request.element,
                where={"job_id": request.job_id},
                progress_done=done,
                progress_total=total,
                message=message,
            )

        try:
            run_write(project.engine, write)
        except Exception:
            log.exception("could not record progress of job %s", request.job_id)

    return persist


def _forward_progress() -> Any:
    try:
        from annoloop.execution import report_progress
    except ImportError:  # pragma: no cover - the execution package is part of annoloop
        return None
    return report_progress


def run_script_job(request: ScriptJobRequest | dict[str, Any]) -> ScriptJobResult:
    """Run one script instance (see the module docstring); never raises for script errors."""
    if isinstance(request, dict):
        request = ScriptJobRequest.model_validate(request)
    project = open_store(request.store)
    return execute_script(project, request)


def execute_script(
    project: Any,
    request: ScriptJobRequest,
    *,
    commit: bool = True,
    post_mortem: Any = None,
) -> ScriptJobResult:
    """Run the script of ``request`` against ``project``; with ``commit`` write its outputs.

    ``post_mortem`` (debugging) is called with the traceback object when the script raises,
    before anything is written.
    """

    started = time.perf_counter()
    logger, handler = _make_logger(project, request)
    throttle = ProgressThrottle(_forward_progress(), _persist_progress(project, request))
    ctx = ScriptContext(project=project, request=request, logger=logger, on_progress=throttle)
    if commit and not run_write(project.engine, lambda c: mark_running(c, request)):
        return ScriptJobResult.of(
            request,
            ok=True,
            committed=False,
            message="already done",
        )
    try:
        cls, namespace = load_script_class(request.script, request.files)
        script = cls(ctx)
        module_args = namespace.get("ARGUMENTS")
        if isinstance(module_args, dict):
            script._module_arguments = module_args
        script.main()
        throttle.flush()
        if ctx.rejected:
            return _finish_rejected(project, request, handler, started, commit)
        outputs = script.outp.resolve()
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not commit:
            raise
        text = tb_module.format_exc()
        if post_mortem is not None:
            post_mortem(exc.__traceback__)
        cancelled = type(exc).__name__ == "TaskCancelled"
        logger.error("script failed:\n%s", text) if not cancelled else logger.warning("stopped")
        return _finish_failed(project, request, handler, exc, text, started, commit, cancelled)
    return _finish_ok(project, request, handler, outputs, ctx.broken, started, commit)


def _finish_rejected(project, request, handler, started, commit):  # type: ignore[no-untyped-def]
    from annoloop.store import jobs as _jobs
    from annoloop.store.schema import utcnow

    records = handler.take()
    records.append(
        (
            request.element,
            request.iteration,
            request.job_id,
            "INFO",
            "the script rejected this run; it will run again",
        )
    )

    def write(conn: sa.Connection) -> bool:
        add_logs(conn, request.pipe_id, records)
        if not still_current(conn, request):
            return False
        _jobs.update_job(conn, request.job_id, state="finished", result={"rejected": True})
        import datetime as dt

        update_element(
            conn,
            request.pipe_id,
            request.element,
            where={"job_id": request.job_id},
            state="pending",
            job_id=None,
            message="rejected its run; waiting",
            not_before=utcnow() + dt.timedelta(seconds=REJECT_DELAY_S),
            attempts=0,
        )
        return True

    done = run_write(project.engine, write) if commit else False
    return ScriptJobResult.of(
        request,
        ok=True,
        committed=bool(done),
        rejected=True,
        message="rejected",
        seconds=time.perf_counter() - started,
    )


# A script that rejected its run is started again after this many seconds.
REJECT_DELAY_S = 2.0


def fail_job_and_element(conn: sa.Connection, request: Any, error: str, text: str) -> None:
    """Mark the request's job and its element failed with ``error`` and the traceback."""
    from annoloop.store import jobs as _jobs

    _jobs.update_job(conn, request.job_id, state="failed", error=error, traceback=text)
    update_element(
        conn,
        request.pipe_id,
        request.element,
        where={"job_id": request.job_id},
        state="failed",
        error=error,
        traceback=text,
        message="failed",
    )


def _finish_failed(project, request, handler, exc, text, started, commit, cancelled):  # type: ignore[no-untyped-def]
    from annoloop.store import jobs as _jobs

    error = f"{type(exc).__name__}: {exc}"
    records = handler.take()

    def write(conn: sa.Connection) -> bool:
        add_logs(conn, request.pipe_id, records)
        if not still_current(conn, request):
            return False
        if cancelled:
            _jobs.update_job(conn, request.job_id, state="cancelled", error=error)
            update_element(
                conn,
                request.pipe_id,
                request.element,
                where={"job_id": request.job_id},
                state="paused",
                job_id=None,
                message="stopped",
            )
            return True
        fail_job_and_element(conn, request, error, text)
        return True

    done = False
    if commit:
        try:
            done = bool(run_write(project.engine, write))
        except Exception:
            log.exception("could not record the failure of job %s", request.job_id)
    return ScriptJobResult.of(
        request,
        ok=False,
        committed=done,
        message="stopped" if cancelled else "failed",
        error=error,
        traceback=text,
        seconds=time.perf_counter() - started,
    )


def _finish_ok(project, request, handler, outputs, broken, started, commit):  # type: ignore[no-untyped-def]
    counts = {
        "requests": outputs.n_requests,
        "proposals": len(outputs.proposals),
        "annotations": len(outputs.annotations),
        "visuals": len(outputs.visuals),
        "exports": len(outputs.exports),
    }
    if not commit:
        for rec in handler.take():
            logging.getLogger("annoloop.pipe.debug").info("%s", rec[-1])
        return ScriptJobResult.of(
            request,
            ok=True,
            committed=False,
            message="debug run: nothing written",
            counts=counts,
            seconds=time.perf_counter() - started,
        )
    records = handler.take()

    def write(conn: sa.Connection) -> dict[str, int] | None:
        add_logs(conn, request.pipe_id, records)
        if not still_current(conn, request):
            return None
        written = write_outputs(conn, request, outputs, broken)
        finish_element_ok(conn, request, {**counts, **written})
        return written

    try:
        written = run_write(project.engine, write)
    except Exception as exc:
        # outputs that cannot be written (an unknown label id, geometry outside an image)
        # fail the element like an error in the script itself
        text = tb_module.format_exc()
        return _finish_failed(project, request, handler, exc, text, started, True, False)
    if written is None:
        return ScriptJobResult.of(
            request,
            ok=True,
            committed=False,
            message="outputs discarded: a newer run took over",
            counts=counts,
            seconds=time.perf_counter() - started,
        )
    return ScriptJobResult.of(
        request,
        ok=True,
        committed=True,
        message="finished",
        counts={**counts, **written},
        seconds=time.perf_counter() - started,
    )


def finish_element_ok(conn: sa.Connection, request: Any, result: dict[str, Any]) -> None:
    """Mark the job finished and its element finished (inside the outputs' transaction)."""
    from annoloop.store import jobs as _jobs
    from annoloop.store.schema import utcnow

    _jobs.update_job(conn, request.job_id, state="finished", result=result)
    update_element(
        conn,
        request.pipe_id,
        request.element,
        where={"job_id": request.job_id},
        state="finished",
        finished_at=utcnow(),
        message="finished",
        error=None,
        traceback=None,
    )


# -- writing outputs -----------------------------------------------------------------------------


def write_outputs(
    conn: sa.Connection, request: ScriptJobRequest, outputs: Any, broken: bool
) -> dict[str, int]:
    """Write a script's resolved outputs in the caller's transaction; returns counts."""
    from annoloop.pipeline.tables import pipe_element
    from annoloop.store import annotations as _ann

    counts = {"work_items": 0, "proposals_written": 0, "annotations_written": 0}
    if outputs.n_requests:
        # tasks in the same iteration get their items in one bulk statement
        groups: dict[int, list[Any]] = {}
        for task in request.output_tasks:
            iteration = element_row(conn, request.pipe_id, task.element).iteration
            groups.setdefault(iteration, []).append(task)
        for iteration, tasks in groups.items():
            made, props = _request_for_tasks(conn, request, tasks, iteration, outputs)
            counts["work_items"] += made
            counts["proposals_written"] += props
    if len(outputs.annotations):
        source = f"model:pipe{request.pipe_id}-{request.element}@job{request.job_id}"
        ids = _ann.insert_annotations(conn, outputs.annotations, source=source)
        counts["annotations_written"] = len(ids)
    rows = []
    for target in request.visuals:
        rows += [
            {
                "element": target,
                "source": request.element,
                "iteration": request.iteration,
                "job_id": request.job_id,
                "kind": "visual",
                **v,
            }
            for v in outputs.visuals
        ]
    for target in request.exports:
        rows += [
            {
                "element": target,
                "source": request.element,
                "iteration": request.iteration,
                "job_id": request.job_id,
                "kind": "file",
                **v,
            }
            for v in outputs.exports
        ]
    add_results(conn, request.pipe_id, rows)
    if broken and request.loop is not None:
        conn.execute(
            pipe_element.update()
            .where(
                pipe_element.c.pipe_id == request.pipe_id, pipe_element.c.element == request.loop
            )
            .values(broken=True)
        )
    return counts


def _request_for_tasks(
    conn: sa.Connection, request: ScriptJobRequest, tasks: list[Any], iteration: int, outputs: Any
) -> tuple[int, int]:
    """Work items of some tasks in one iteration (one bulk statement), then the proposals and
    meta of the items this request created; returns (items made, proposals made)."""
    from annoloop.geometry.kinds import Kind
    from annoloop.store import workitems as _work

    images = outputs.request_images
    uniq = np.unique(images)
    extra_rows = np.array(sorted(outputs.request_meta), dtype=np.int64)
    plans = []
    for task in tasks:
        props = outputs.proposals
        if len(props) and task.kinds:
            props = props[np.isin(props.kind, [int(Kind.parse(k)) for k in task.kinds])]
        if len(props) or extra_rows.size:
            # proposals and meta go only to items this request creates, not to older ones
            existing = _item_images(conn, task.task_id, iteration, uniq)
            plans.append((task, props, np.setdiff1d(uniq, existing)))
    common = {"pipe": request.pipe_id, "element": request.element, "job": request.job_id}
    made = _work.request_annotations(
        conn,
        images,
        [task.task_id for task in tasks],
        priority=outputs.request_priority,
        iteration=iteration,
        meta=common,
    )
    n_props = 0
    for task, props, new_images in plans:
        if new_images.size:
            n_props += _item_extras(conn, request, task, iteration, outputs, props, new_images)
    return made, n_props


def _item_extras(
    conn: sa.Connection,
    request: ScriptJobRequest,
    task: Any,
    iteration: int,
    outputs: Any,
    props: Any,
    new_images: np.ndarray,
) -> int:
    """Proposals and per-item meta of a task's new items; returns the proposals written."""
    from annoloop.store import bulk

    images = outputs.request_images
    ids_of = _item_ids(conn, task.task_id, iteration, new_images)
    n_props = 0
    if len(props):
        props = props[np.isin(props.image, new_images)]
        if len(props):
            geo = _ann_geometry(conn, props, request)
            item_col = [ids_of[int(i)] for i in props.image.tolist()]
            cols = {"work_item_id": item_col, **geo.columns,
                    "created_at": bulk.timestamp_param(conn)}  # fmt: skip
            bulk.insert_columns(conn, "pipe_proposal", cols, geo.n)
            n_props = geo.n
    if outputs.request_meta:
        common = {"pipe": request.pipe_id, "element": request.element, "job": request.job_id}
        updates = []
        for row, meta in sorted(outputs.request_meta.items()):
            item = ids_of.get(int(images[row]))
            if item is not None:
                updates.append((bulk.json_text({**common, **meta}), item))
        if updates:
            ph = bulk.placeholder(conn)
            cast = "" if bulk.is_sqlite(conn) else "::json"
            cur = bulk.raw_cursor(conn)
            cur.executemany(f"UPDATE work_item SET meta = {ph}{cast} WHERE id = {ph}", updates)
            cur.close()
    return n_props


def _ann_geometry(conn: sa.Connection, props: Any, request: ScriptJobRequest) -> Any:
    from annoloop.store import annotations as _ann

    return _ann.geometry_columns(
        conn, props, validate=True, where=f"proposals of element {request.element!r}"
    )


def _item_images(
    conn: sa.Connection, task_id: int, iteration: int, images: np.ndarray
) -> np.ndarray:
    from annoloop.store import bulk

    sql, params = bulk.in_filter(conn, "image_id", images.tolist())
    ph = bulk.placeholder(conn)
    rows = bulk.fetch_rows(
        conn,
        f"SELECT image_id FROM work_item WHERE task_id = {ph} AND iteration = {ph} AND {sql}",
        [task_id, iteration, *params],
    )
    return np.array([r[0] for r in rows], dtype=np.int64)


def _item_ids(
    conn: sa.Connection, task_id: int, iteration: int, images: np.ndarray
) -> dict[int, int]:
    from annoloop.store import bulk

    sql, params = bulk.in_filter(conn, "image_id", images.tolist())
    ph = bulk.placeholder(conn)
    rows = bulk.fetch_rows(
        conn,
        f"SELECT image_id, id FROM work_item WHERE task_id = {ph} AND iteration = {ph} AND {sql}",
        [task_id, iteration, *params],
    )
    return {int(i): int(w) for i, w in rows}
