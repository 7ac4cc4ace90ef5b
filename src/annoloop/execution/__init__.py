"""Execution: one small interface to run work locally or on a Dask cluster.

Submit a picklable task, get a :class:`TaskFuture`, cancel it, watch its progress::

    from annoloop.execution import get_executor, report_progress, TaskSpec

    def count(paths):
        for i, path in enumerate(paths):
            ...
            report_progress(i + 1, len(paths), path)  # reaches future.progress()

    with get_executor("local:2") as ex:  # or "local", "dask", "tcp://host:8786"
        future = ex.submit(count, paths, spec=TaskSpec(name="count", key="job-17"))
        future.result()

Dask is imported only when a :class:`DaskExecutor` is made or a worker starts.
"""

from annoloop.execution.base import Executor, ExecutorBase, FutureBase, TaskFuture
from annoloop.execution.dask_executor import DaskExecutor, DaskFuture
from annoloop.execution.failures import TaskCancelled, WorkerLost
from annoloop.execution.local import LocalExecutor, LocalFuture
from annoloop.execution.registry import get_executor, list_executors
from annoloop.execution.reporting import cancel_requested, current_progress, report_progress
from annoloop.execution.resources import task_resources, worker_resources
from annoloop.execution.spec import ProgressCallback, ProgressSnapshot, TaskSpec
from annoloop.execution.worker import start_worker

__all__ = [
    "DaskExecutor",
    "DaskFuture",
    "Executor",
    "ExecutorBase",
    "FutureBase",
    "LocalExecutor",
    "LocalFuture",
    "ProgressCallback",
    "ProgressSnapshot",
    "TaskCancelled",
    "TaskFuture",
    "TaskSpec",
    "WorkerLost",
    "cancel_requested",
    "current_progress",
    "get_executor",
    "list_executors",
    "report_progress",
    "start_worker",
    "task_resources",
    "worker_resources",
]
