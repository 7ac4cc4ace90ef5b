"""``LocalExecutor``: tasks in this process (a thread) or in a pool of spawned processes.

``LocalExecutor()`` runs tasks one at a time, in submission order, on one background thread:
``submit`` returns at once and a debugger sees the task in this process.
``LocalExecutor(n)`` runs them in a ``ProcessPoolExecutor`` of ``n`` spawned processes (spawn,
not fork: safe with torch, CUDA and open SQLite connections).

Cancelling: a queued task is dropped and never runs. A running task is asked to stop: its next
:func:`report_progress` raises :class:`TaskCancelled` inside it (processes are not terminated,
which would break the whole pool); its future reports the cancellation at once. A task that
never reports progress runs to its end and its result is discarded.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import multiprocessing
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from annoloop.errors import InvalidInput
from annoloop.execution.base import ExecutorBase, FutureBase
from annoloop.execution.failures import TaskCancelled, WorkerLost
from annoloop.execution.reporting import TaskContext, run_task
from annoloop.execution.spec import ProgressCallback, ProgressSnapshot, TaskSpec


class _ThreadContext(TaskContext):
    """Reports go straight to the future (same process)."""

    def __init__(self, executor: LocalExecutor, future: LocalFuture) -> None:
        super().__init__(future.key)
        self.executor = executor
        self.future = future
        self.stop = threading.Event()

    def send(self, snapshot: ProgressSnapshot) -> None:
        self.executor._deliver(self.future, snapshot)

    def cancelled(self) -> bool:
        return self.stop.is_set()


# Set in each pool process by _init_process: the queue back to the parent, the flag folder.
_QUEUE: Any = None
_FLAG_DIR = ""


def _init_process(queue: Any, flag_dir: str) -> None:
    global _QUEUE, _FLAG_DIR
    _QUEUE, _FLAG_DIR = queue, flag_dir


class _ProcessContext(TaskContext):
    """Reports go through a multiprocessing queue; a cancel is a flag file the parent writes
    (one ``stat`` per report, no extra server process)."""

    def __init__(self, key: str, token: str, flag: str) -> None:
        super().__init__(key)
        self.token = token
        self.flag = flag

    def send(self, snapshot: ProgressSnapshot) -> None:
        _QUEUE.put((self.token, snapshot))

    def cancelled(self) -> bool:
        return os.path.exists(self.flag)


def _flag_name(token: str) -> str:
    return hashlib.sha1(token.encode()).hexdigest()


def _run_in_process(
    fn: Callable[..., Any], key: str, token: str, retries: int, args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, ProgressSnapshot | None]:  # fmt: skip
    ctx = _ProcessContext(key, token, os.path.join(_FLAG_DIR, _flag_name(token)))
    return run_task(ctx, fn, args, kwargs, retries)


class LocalFuture(FutureBase):
    """Future of a :class:`LocalExecutor` task."""

    def __init__(self, executor: LocalExecutor, key: str, spec: TaskSpec) -> None:
        super().__init__(key, spec)
        self._executor = executor
        self._out: cf.Future[Any] = cf.Future()  # what callers see; set once
        self._inner: cf.Future[Any] | None = None  # the pool's future
        self._ctx: _ThreadContext | None = None
        self._flag: str | None = None

    def _attach(self, inner: cf.Future[Any]) -> None:
        self._inner = inner
        inner.add_done_callback(self._inner_done)

    def _settle(self, value: Any = None, exc: BaseException | None = None) -> None:
        try:
            if exc is None:
                self._out.set_result(value)
            else:
                self._out.set_exception(exc)
        except cf.InvalidStateError:  # already cancelled while running: drop the late outcome
            pass

    def _inner_done(self, inner: cf.Future[Any]) -> None:
        if self._flag is not None:
            with contextlib.suppress(OSError):
                os.remove(self._flag)
        if inner.cancelled():
            self._settle(exc=TaskCancelled(f"task {self.key!r} was cancelled"))
            return
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool):
            exc = WorkerLost(
                f"task {self.key!r} ({self.spec.name}): a process of the local pool died "
                "(killed, out of memory or crashed) while running or holding it; "
                "the pool is restarted for the next tasks"
            )
            exc.__cause__ = inner.exception()
        if exc is not None:
            self._settle(exc=exc)
            return
        value, snapshot = inner.result()
        self._executor._deliver(self, snapshot)  # the final report, before result() returns
        self._settle(value)

    def result(self, timeout: float | None = None) -> Any:
        """The task's return value; re-raises its exception (see :class:`TaskFuture`)."""
        return self._out.result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception (a :class:`TaskCancelled` if cancelled), or None."""
        return self._out.exception(timeout)

    def done(self) -> bool:
        """Whether the task finished, failed or was cancelled."""
        return self._out.done()

    def cancel(self) -> bool:
        """Drop a queued task; ask a running one to stop (at its next progress report).
        True unless the task was already done."""
        if self._out.done():
            return False
        if self._inner is not None and self._inner.cancel():
            return True
        if self._ctx is not None:
            self._ctx.stop.set()
        elif self._flag is not None:
            with open(self._flag, "w"):
                pass
        self._settle(exc=TaskCancelled(f"task {self.key!r} was cancelled while running"))
        return True

    def add_done_callback(self, fn: Callable[[LocalFuture], object]) -> None:
        """Call ``fn(future)`` once the task is done (on the thread that finishes it)."""
        self._out.add_done_callback(lambda _: fn(self))


class LocalExecutor(ExecutorBase):
    """Runs tasks in this process (``processes=0``, one thread, in order) or in a pool of
    ``processes`` spawned processes. ``on_progress(key, done, total, message)`` is called for
    every report, on the task's thread (in-process) or on a listener thread (pool)."""

    def __init__(self, processes: int = 0, *, on_progress: ProgressCallback | None = None) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
            raise InvalidInput(
                f"processes must be an integer >= 0 (0: in-process), got {processes!r}",
                "LocalExecutor",
            )
        super().__init__(on_progress)
        self.processes = processes
        self._pool: cf.Executor
        self._pool_lock = threading.Lock()
        if processes == 0:
            self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="annoloop-task")
        else:
            self._flag_dir = tempfile.mkdtemp(prefix="annoloop-cancel-")
            self._start_pool()

    def _start_pool(self) -> None:
        mp = multiprocessing.get_context("spawn")
        # A fresh queue with each pool: a process killed mid-put can leave a queue locked.
        self._queue = mp.Queue()
        self._listener = threading.Thread(
            target=self._listen, args=(self._queue,), name="annoloop-progress", daemon=True
        )
        self._listener.start()
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=mp,
            initializer=_init_process,
            initargs=(self._queue, self._flag_dir),
        )

    def _stop_listener(self) -> None:
        self._queue.put(None)
        self._listener.join(timeout=5)
        self._queue.close()

    def _listen(self, queue: Any) -> None:
        while True:
            try:
                item = queue.get()
            except (EOFError, OSError):
                return
            if item is None:
                return
            token, snapshot = item
            self._deliver_token(token, ProgressSnapshot(*snapshot))

    def _submit(
        self, fn: Callable[..., Any], key: str, spec: TaskSpec, args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> LocalFuture:  # fmt: skip
        future = LocalFuture(self, key, spec)
        if self.processes == 0:
            future._ctx = _ThreadContext(self, future)
            future._attach(self._pool.submit(run_task, future._ctx, fn, args, kwargs, spec.retries))
            return future
        future._flag = os.path.join(self._flag_dir, _flag_name(future.token))
        call = (_run_in_process, fn, key, future.token, spec.retries, args, kwargs)
        with self._pool_lock:
            try:
                inner = self._pool.submit(*call)
            except BrokenProcessPool:  # a process died earlier: its pool is unusable, renew it
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._stop_listener()
                self._start_pool()
                inner = self._pool.submit(*call)
        future._attach(inner)
        return future

    def _close(self, cancel: bool) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        if self.processes:
            self._stop_listener()
            shutil.rmtree(self._flag_dir, ignore_errors=True)
