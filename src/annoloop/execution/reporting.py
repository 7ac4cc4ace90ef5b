"""Progress and cancellation from inside a running task, the same on every executor.

An executor runs each task inside a :class:`TaskContext` (held in a context variable of the
thread that runs it). :func:`report_progress` sends ``(done, total, message)`` through that
context to the task's future and the executor's ``on_progress`` callback; outside a task it does
nothing, so library code can always call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from annoloop.execution.failures import TaskCancelled
from annoloop.execution.spec import ProgressSnapshot
from annoloop.progress import Progress, no_progress

T = TypeVar("T")


class TaskContext:
    """Where one running task sends its progress; each executor supplies a subclass."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.last: ProgressSnapshot | None = None

    def send(self, snapshot: ProgressSnapshot) -> None:
        """Deliver a report to the task's future (executor specific)."""

    def cancelled(self) -> bool:
        """Whether someone cancelled the task while it runs."""
        return False

    def flush(self) -> None:
        """Deliver any report held back (called when the task ends)."""

    def report(self, done: int, total: int | None, message: str) -> None:
        """Check for cancellation, then record and send one report."""
        if self.cancelled():
            raise TaskCancelled(f"task {self.key!r} was cancelled")
        self.last = ProgressSnapshot(int(done), None if total is None else int(total), str(message))
        self.send(self.last)


_current: ContextVar[TaskContext | None] = ContextVar("annoloop_task", default=None)


def report_progress(done: int, total: int | None = None, message: str = "") -> None:
    """Report progress of the running task (``done`` of ``total``; None: unknown).

    Does nothing outside a task. Raises :class:`TaskCancelled` when the task was cancelled,
    which is how a running task gets stopped: let it propagate.
    """
    ctx = _current.get()
    if ctx is not None:
        ctx.report(done, total, message)


def current_progress() -> Progress:
    """A progress callable bound to the running task, to pass as ``progress=`` to long work.

    Unlike :func:`report_progress` it also works from threads the task starts (context
    variables do not follow a new thread). Outside a task it is a no-op sink.
    """
    ctx = _current.get()
    if ctx is None:
        return no_progress

    def progress(done: int, total: int | None = None, message: str = "") -> None:
        ctx.report(done, total, message)

    return progress


def cancel_requested() -> bool:
    """Whether the running task was cancelled (False outside a task); for loops that want to
    stop cleanly instead of taking :class:`TaskCancelled` from :func:`report_progress`."""
    ctx = _current.get()
    return ctx is not None and ctx.cancelled()


@contextmanager
def task_context(ctx: TaskContext) -> Iterator[TaskContext]:
    """Run the body as the task of ``ctx``; flush its held-back report at the end."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        try:
            ctx.flush()
        finally:
            _current.reset(token)


def run_task(
    ctx: TaskContext,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    retries: int,
) -> tuple[T, ProgressSnapshot | None]:
    """Call ``fn`` in ``ctx``, re-running it up to ``retries`` times if it raises.

    Returns the result with the last progress report, so that the future shows the final
    progress as soon as it is done, whatever the transport of live reports.
    """
    with task_context(ctx):
        attempt = 0
        while True:
            if ctx.cancelled():
                raise TaskCancelled(f"task {ctx.key!r} was cancelled before it started")
            try:
                return fn(*args, **kwargs), ctx.last
            except TaskCancelled:
                raise
            except Exception:
                if attempt >= retries:
                    raise
                attempt += 1
