"""Executors for experiment work: resolve a name or instance, own it only when we made it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def executor_scope(executor: Any) -> Iterator[Any]:
    """Yield an executor: ``executor`` itself when it is one (the caller owns it), else
    ``get_executor(executor)`` for a name such as ``"local"``, ``"local:2"``, ``"dask"`` or
    ``"tcp://host:port"`` (None: the ``ANNOLOOP_EXECUTOR`` default), shut down on exit."""
    from annoloop.execution import get_executor

    if executor is None or isinstance(executor, str):
        own = get_executor(executor)
        try:
            yield own
        finally:
            own.shutdown()
    else:
        yield executor


def task_spec(name: str, key: str | None = None) -> Any:
    """A :class:`annoloop.execution.TaskSpec` named ``name``."""
    from annoloop.execution import TaskSpec

    return TaskSpec(name=name, key=key)


def report(done: int, total: int, message: str) -> None:
    """Report progress from inside a task (to the future's ``progress()``); never fails."""
    try:
        from annoloop.execution import report_progress
    except ImportError:  # pragma: no cover - the execution module is part of core
        return
    try:
        report_progress(done, total, message)
    except Exception:
        return
