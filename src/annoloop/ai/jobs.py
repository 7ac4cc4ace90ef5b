"""Jobs in the store: state, live progress, cancellation and failures with their traceback.

:func:`run_job` runs a coordinator function in the calling process and keeps the job row up
to date; the coordinator submits the heavy parts (training shards, inference chunks) to an
executor and waits for them with :meth:`JobContext.wait`, which sums the tasks' progress into
the job row and cancels them when someone cancels the job (:func:`cancel_job`, from any
process that opens the project).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from annoloop.errors import InvalidInput
from annoloop.execution import TaskCancelled
from annoloop.progress import Progress, as_progress

_UPDATE_EVERY_S = 0.5  # job rows are written at most this often while progress streams in
_ACTIVE = ("queued", "running")


class JobContext:
    """What a coordinator uses: progress into the job row, log lines, cancel checks, waits."""

    def __init__(self, project: Any, job_id: int, listener: Progress | None = None) -> None:
        self.project = project
        self.job_id = job_id
        self.listener = as_progress(listener)
        self._last_write = 0.0
        self._last: tuple[int, int | None, str] | None = None

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Record progress (the row is written at most every 0.5 s, and at the end)."""
        self.listener(done, total, message)
        self._last = (int(done), None if total is None else int(total), str(message))
        now = time.monotonic()
        final = total is not None and done >= total
        if final or now - self._last_write >= _UPDATE_EVERY_S:
            self.check_cancelled()
            self.project.update_job(
                self.job_id, progress_done=int(done), progress_total=total, message=message
            )
            self._last_write = now

    def log(self, text: str) -> None:
        """Append a line to the job's log."""
        self.project.append_job_log(self.job_id, text.rstrip("\n") + "\n")

    def cancelled(self) -> bool:
        """Whether someone cancelled the job."""
        return self.project.job(self.job_id)["state"] == "cancelled"

    def check_cancelled(self) -> None:
        """Raise :class:`TaskCancelled` if the job was cancelled."""
        if self.cancelled():
            raise TaskCancelled(f"job {self.job_id} was cancelled")

    def wait(self, futures: Sequence[Any], message: str = "", poll_s: float = 0.2) -> list[Any]:
        """Results of ``futures`` in order. Progress is the sum over the tasks (a task that
        reported none counts 0 of 1); a cancelled job cancels them all."""
        futures = list(futures)
        last_check = 0.0
        while True:
            done_all = all(f.done() for f in futures)
            done, total = 0, 0
            for f in futures:
                snap = f.progress()
                if f.done() and f.exception() is None:
                    t = snap.total if snap is not None and snap.total else 1
                    done, total = done + t, total + t
                elif snap is not None and snap.total:
                    done, total = done + min(snap.done, snap.total), total + snap.total
                else:
                    total += 1
            now = time.monotonic()
            if now - last_check >= _UPDATE_EVERY_S or done_all:
                last_check = now
                if self.cancelled():
                    for f in futures:
                        f.cancel()
                    raise TaskCancelled(f"job {self.job_id} was cancelled")
                self.progress(done, total, message)
            if done_all:
                break
            time.sleep(poll_s)
        errors = [f.exception() for f in futures]
        for exc in errors:
            if exc is not None:
                for f in futures:
                    f.cancel()
                raise exc
        return [f.result() for f in futures]


def run_job(
    project: Any,
    kind: str,
    name: str,
    body: Callable[[JobContext], dict[str, Any]],
    *,
    spec: dict[str, Any] | None = None,
    progress: Progress | None = None,
    job_id: int | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run ``body(ctx)`` as a job -> (job id, its result dict).

    The row goes ``queued -> running -> finished | failed | cancelled``; a failure stores
    the error and traceback and re-raises; a cancellation re-raises :class:`TaskCancelled`.
    """
    if job_id is None:
        job_id = int(project.add_job(kind, name, spec))
    ctx = JobContext(project, job_id, progress)
    if ctx.cancelled():
        raise TaskCancelled(f"job {job_id} was cancelled before it started")
    project.update_job(job_id, state="running", message="started")
    try:
        result = body(ctx)
    except TaskCancelled as exc:
        project.update_job(job_id, state="cancelled", message=str(exc))
        ctx.log(f"cancelled: {exc}")
        raise
    except BaseException as exc:
        if ctx.cancelled():  # a task that stopped because of the cancel
            project.update_job(job_id, state="cancelled", message="cancelled")
            raise TaskCancelled(f"job {job_id} was cancelled") from exc
        project.update_job(
            job_id,
            state="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            message="failed",
        )
        raise
    done = ctx._last
    project.update_job(
        job_id,
        state="finished",
        result=result,
        message="finished",
        progress_done=done[0] if done and done[1] is not None else 1,
        progress_total=done[1] if done and done[1] is not None else 1,
    )
    return job_id, result


def cancel_job(project: Any, job_id: int) -> bool:
    """Ask a queued or running job to stop; False if it had already ended."""
    job = project.job(job_id)
    if job["state"] not in _ACTIVE:
        return False
    project.update_job(job_id, state="cancelled", message="cancel requested")
    return True


def job_status(project: Any, job_id: int) -> dict[str, Any]:
    """The job row (state, progress, message, error, traceback, result, log)."""
    if job_id < 1:
        raise InvalidInput(f"job ids start at 1, got {job_id}", "job")
    return project.job(job_id)
