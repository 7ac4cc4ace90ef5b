"""The executor interface: submit a picklable task, get a future, cancel, watch progress.

:class:`Executor` and :class:`TaskFuture` are the protocols the rest of annoloop programs
against; :class:`ExecutorBase` and :class:`FutureBase` hold what every implementation shares
(keys, progress routing, ``map``, the context manager).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from annoloop.errors import AlreadyExists
from annoloop.execution.spec import ProgressCallback, ProgressSnapshot, TaskSpec, new_key, spec_for

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

log = logging.getLogger(__name__)


@runtime_checkable
class TaskFuture(Protocol[T_co]):
    """A submitted task. ``key`` is its stable id (the spec's key or a generated one)."""

    key: str

    def result(self, timeout: float | None = None) -> T_co:
        """The task's return value; re-raises its exception (same type), raises
        :class:`TaskCancelled` if cancelled, :class:`WorkerLost` if its worker died, and
        ``TimeoutError`` if it is not done within ``timeout`` seconds."""
        ...

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception (a :class:`TaskCancelled` if cancelled), or None."""
        ...

    def done(self) -> bool:
        """Whether the task finished, failed or was cancelled."""
        ...

    def cancel(self) -> bool:
        """Cancel the task; True if it will not deliver a result (see the executors)."""
        ...

    def progress(self) -> ProgressSnapshot | None:
        """The latest progress report from inside the task, or None before the first."""
        ...

    def add_done_callback(self, fn: Callable[[TaskFuture[T_co]], object]) -> None:
        """Call ``fn(future)`` once the task is done (on a background thread)."""
        ...


@runtime_checkable
class Executor(Protocol):
    """Runs tasks. Use as a context manager or call :meth:`shutdown`."""

    def submit(
        self, fn: Callable[..., T], /, *args: Any, spec: TaskSpec | None = None, **kwargs: Any
    ) -> TaskFuture[T]:
        """Run ``fn(*args, **kwargs)`` (picklable for process and Dask executors)."""
        ...

    def map(
        self, fn: Callable[[Any], T], items: Iterable[Any], *, spec: TaskSpec | None = None
    ) -> list[TaskFuture[T]]:
        """Submit ``fn(item)`` for each item; with ``spec.key`` the keys are ``key-0``, ..."""
        ...

    def shutdown(self, *, cancel: bool = False) -> None:
        """Wait for submitted tasks (or cancel them) and release the executor's resources."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class FutureBase:
    """Key, name and progress of a future; subclasses add the waiting and cancelling."""

    def __init__(self, key: str, spec: TaskSpec) -> None:
        self.key = key
        self.spec = spec
        # Unique per submission (keys may be reused): routes progress, names the Dask task.
        self.token = f"{key}#{uuid.uuid4().hex[:8]}"
        self._progress: ProgressSnapshot | None = None

    def progress(self) -> ProgressSnapshot | None:
        """The latest progress report from inside the task, or None before the first."""
        return self._progress

    def done(self) -> bool:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def cancel(self) -> bool:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def exception(self, timeout: float | None = None) -> BaseException | None:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<{type(self).__name__} {self.key!r} {state} progress={self._progress}>"


class ExecutorBase:
    """Shared parts of the executors: keys, progress routing, ``map``, context manager."""

    def __init__(self, on_progress: ProgressCallback | None = None) -> None:
        self.on_progress = on_progress
        self._lock = threading.Lock()
        # Futures not done yet, by token, and their keys: the executor keeps them alive so a
        # dropped future still runs (Dask would forget it) and shutdown can wait for them.
        self._pending: dict[str, FutureBase] = {}
        self._pending_keys: dict[str, str] = {}
        self._closed = False

    # -- what subclasses implement -------------------------------------------------------
    def _submit(
        self, fn: Callable[..., Any], key: str, spec: TaskSpec, args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> FutureBase:  # fmt: skip
        raise NotImplementedError

    def _close(self, cancel: bool) -> None:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    def submit(
        self, fn: Callable[..., T], /, *args: Any, spec: TaskSpec | None = None, **kwargs: Any
    ) -> TaskFuture[T]:
        """Run ``fn(*args, **kwargs)`` as a task described by ``spec`` (default: named after
        ``fn``). A keyword argument of ``fn`` named ``spec`` must go through ``partial``."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is shut down; create a new one")
        spec = spec_for(fn, spec)
        key = new_key(spec)
        with self._lock:  # reserve the key, so that two threads cannot both take it
            if key in self._pending_keys:
                raise AlreadyExists(f"a task with key {key!r} is still pending or running")
            self._pending_keys[key] = ""
        try:
            future = self._submit(fn, key, spec, args, kwargs)
        except BaseException:
            with self._lock:
                del self._pending_keys[key]
            raise
        with self._lock:
            self._pending[future.token] = future
            self._pending_keys[key] = future.token
        future.add_done_callback(self._forget)  # type: ignore[attr-defined]
        return future  # type: ignore[return-value]

    def _forget(self, future: FutureBase) -> None:
        with self._lock:
            self._pending.pop(future.token, None)
            if self._pending_keys.get(future.key) == future.token:
                del self._pending_keys[future.key]

    def map(
        self, fn: Callable[[Any], T], items: Iterable[Any], *, spec: TaskSpec | None = None
    ) -> list[TaskFuture[T]]:
        """Submit ``fn(item)`` for each item; with ``spec.key`` the keys are ``key-0``, ..."""
        spec = spec_for(fn, spec)
        return [
            self.submit(
                fn,
                item,
                spec=spec.model_copy(update={"key": f"{spec.key}-{i}"}) if spec.key else spec,
            )
            for i, item in enumerate(items)
        ]

    def shutdown(self, *, cancel: bool = False) -> None:
        """Wait for submitted tasks to end (``cancel=True``: cancel them first) and release
        the executor's pools, processes or cluster. Calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            pending = list(self._pending.values())
        if cancel:
            self._cancel_all(pending)
        for future in pending:
            future.exception()  # waits; the caller reads results from the futures
        self._close(cancel)

    def _cancel_all(self, futures: list[FutureBase]) -> None:
        """Cancel ``futures`` (executors may do it in one go)."""
        for future in reversed(futures):  # the queued ones first, so none starts meanwhile
            future.cancel()

    def _deliver(self, future: FutureBase | None, snapshot: ProgressSnapshot | None) -> None:
        """Record a report on its future and pass it to ``on_progress`` (once per change)."""
        if future is None or snapshot is None or future._progress == snapshot:
            return
        future._progress = snapshot
        if self.on_progress is not None:
            try:
                self.on_progress(future.key, snapshot.done, snapshot.total, snapshot.message)
            except Exception:  # a broken listener must not break the task
                log.exception("on_progress callback failed for task %r", future.key)

    def _deliver_token(self, token: str, snapshot: ProgressSnapshot) -> None:
        """Route a report that arrived from another process by its task's token."""
        with self._lock:
            future = self._pending.get(token)
        self._deliver(future, snapshot)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving on an error cancels what is left; a normal exit waits for it.
        self.shutdown(cancel=exc is not None)
