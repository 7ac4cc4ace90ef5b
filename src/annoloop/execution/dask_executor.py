"""``DaskExecutor``: tasks on a Dask cluster (its own ``LocalCluster``, a scheduler address, or a
``distributed.Client`` the caller owns).

Dask is optional: it is imported when a ``DaskExecutor`` is made (or a task runs on a worker),
never when this module is imported.

- Environments, GPU and ``lock_all`` map to worker resources (see :mod:`.resources`).
- ``retries`` goes to ``client.submit(retries=)`` and covers tasks that raise. A task whose
  worker dies is moved to another worker by Dask itself, up to the scheduler's
  ``distributed.scheduler.allowed-failures`` (default 3); after that the future raises
  :class:`WorkerLost`.
- Progress travels as worker events (``Worker.log_event``) on a topic of this executor, which
  the client subscribes to: it works with a ``LocalCluster`` and a separate scheduler alike.
  Reports are sent at most every 0.1 s per task (the last one always), so a tight loop that
  reports every step does not flood the scheduler.
- Cancelling a queued task drops it (``cancel`` waits until the scheduler has dropped it, since
  Dask itself sends the cancel without waiting). A running task cannot be stopped by Dask; its
  worker marks it cancelled and its next :func:`report_progress` raises
  :class:`TaskCancelled` inside it.
- ``shutdown`` waits for submitted tasks, like the local executors; a task that no worker can
  take (its only worker left) then waits too: use ``shutdown(cancel=True)``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from annoloop._lazy import lazy_import
from annoloop.errors import InvalidInput, NotFound
from annoloop.execution.base import ExecutorBase, FutureBase
from annoloop.execution.failures import TaskCancelled, WorkerLost
from annoloop.execution.reporting import TaskContext, run_task
from annoloop.execution.resources import task_resources, worker_resources
from annoloop.execution.spec import ProgressCallback, ProgressSnapshot, TaskSpec

SCHEDULER_ENV = "ANNOLOOP_SCHEDULER"
_MIN_INTERVAL = 0.1  # seconds between progress events of one task
_INFO_TTL = 1.0  # seconds the workers' resources are reused between submits (map)
# Scheduler task states from which a task may still start on a worker.
_LIVE = frozenset({"released", "waiting", "queued", "no-worker", "processing"})


class _WorkerContext(TaskContext):
    """Runs on a Dask worker: reports become worker events; cancellation is read from the
    worker's own state of the task (no round trip)."""

    def __init__(self, key: str, token: str, topic: str) -> None:
        super().__init__(key)
        from distributed import get_worker

        self.worker = get_worker()
        self.token = token
        self.topic = topic
        self._sent_at = 0.0
        self._held: ProgressSnapshot | None = None

    def send(self, snapshot: ProgressSnapshot) -> None:
        now = time.monotonic()
        last = snapshot.total is not None and snapshot.done >= snapshot.total
        if last or now - self._sent_at >= _MIN_INTERVAL:
            self._emit(snapshot, now)
        else:
            self._held = snapshot

    def _emit(self, snapshot: ProgressSnapshot, now: float) -> None:
        self._held = None
        self._sent_at = now
        msg = {"token": self.token, "done": snapshot.done, "total": snapshot.total}
        msg["message"] = snapshot.message
        # Progress is advisory: a closing worker must not fail the task.
        with contextlib.suppress(Exception):
            self.worker.log_event(self.topic, msg)

    def flush(self) -> None:
        if self._held is not None:
            self._emit(self._held, time.monotonic())

    def cancelled(self) -> bool:
        state = self.worker.state.tasks.get(self.token)
        return state is None or state.state == "cancelled"


def _run_on_worker(
    fn: Callable[..., Any], key: str, token: str, topic: str, args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, ProgressSnapshot | None]:  # fmt: skip
    # Dask does the retries (client.submit(retries=)), so run_task runs fn once.
    return run_task(_WorkerContext(key, token, topic), fn, args, kwargs, 0)


def _is_cancelled_error(exc: BaseException) -> bool:
    import asyncio  # here, not at module import: Dask has loaded it by now

    return isinstance(exc, cf.CancelledError | asyncio.CancelledError)


class DaskFuture(FutureBase):
    """Future of a :class:`DaskExecutor` task (wraps a ``distributed.Future``)."""

    def __init__(self, executor: DaskExecutor, key: str, spec: TaskSpec) -> None:
        super().__init__(key, spec)
        self._executor = executor
        self._future: Any = None

    def _translate(self, exc: BaseException) -> BaseException | None:
        """The annoloop error to raise instead of a Dask one, or None to keep ``exc``."""
        from distributed.scheduler import KilledWorker

        if isinstance(exc, KilledWorker):
            last = getattr(exc.last_worker, "address", exc.last_worker)
            return WorkerLost(
                f"task {self.key!r} ({self.spec.name}): every Dask worker that ran it died "
                f"({exc.allowed_failures + 1} attempts, the last on {last}). Dask gave up "
                "after distributed.scheduler.allowed-failures; the task may crash or exhaust "
                "the memory of its worker, or the workers were stopped"
            )
        if _is_cancelled_error(exc):
            return TaskCancelled(f"task {self.key!r} was cancelled")
        return None

    def result(self, timeout: float | None = None) -> Any:
        """The task's return value; re-raises its exception (see :class:`TaskFuture`)."""
        try:
            value, snapshot = self._future.result(timeout=timeout)
        except TimeoutError:
            raise
        except BaseException as exc:
            other = self._translate(exc)
            if other is None:
                raise
            raise other from exc
        self._executor._deliver(self, snapshot)
        return value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception (a :class:`TaskCancelled` if cancelled), or None."""
        try:
            exc = self._future.exception(timeout=timeout)
        except TimeoutError:
            raise
        except BaseException as err:
            if _is_cancelled_error(err):
                return TaskCancelled(f"task {self.key!r} was cancelled")
            raise
        if exc is None and self._future.cancelled():
            return TaskCancelled(f"task {self.key!r} was cancelled")
        return None if exc is None else (self._translate(exc) or exc)

    def done(self) -> bool:
        """Whether the task finished, failed or was cancelled."""
        return bool(self._future.done())

    def cancel(self) -> bool:
        """Drop a queued task; a running one is marked cancelled on its worker and stops at its
        next progress report. True unless the task was already done."""
        if self._future.done():
            return False
        self._executor._cancel([self])
        return True

    def add_done_callback(self, fn: Callable[[DaskFuture], object]) -> None:
        """Call ``fn(future)`` once the task is done (on a thread of the Dask client)."""
        self._future.add_done_callback(lambda _: fn(self))


class DaskExecutor(ExecutorBase):
    """Runs tasks on Dask.

    ``client``: a ``distributed.Client`` the caller owns (not closed by :meth:`shutdown`).
    ``address``: a scheduler address (``tcp://host:8786``; default: env ``ANNOLOOP_SCHEDULER``).
    Neither: a ``LocalCluster`` of ``n_workers`` processes with ``threads_per_worker`` threads on
    127.0.0.1, whose workers advertise ``slots=threads_per_worker`` plus ``resources``; closed by
    :meth:`shutdown`. ``on_progress(key, done, total, message)`` is called on the client's
    event-loop thread: keep it quick.
    """

    def __init__(
        self,
        client: Any = None,
        address: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        resources: Mapping[str, float] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        distributed = lazy_import("distributed", "dask")
        super().__init__(on_progress)
        self._cluster: Any = None
        self._owns_client = client is None
        if client is not None:
            if address is not None:
                raise InvalidInput("give a client or an address, not both", "DaskExecutor")
            self.client = client
        elif address := address or os.environ.get(SCHEDULER_ENV) or None:
            try:
                self.client = distributed.Client(address, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise NotFound(f"no Dask scheduler answers at {address!r}: {exc}") from exc
        else:
            for name, value in (
                ("n_workers", n_workers),
                ("threads_per_worker", threads_per_worker),
            ):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidInput(
                        f"{name} must be an integer >= 1, got {value!r}", "DaskExecutor"
                    )
            self._cluster = distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
                resources={**worker_resources(slots=threads_per_worker), **(resources or {})},
            )
            self.client = distributed.Client(self._cluster, set_as_default=False)
        # One topic per executor: a client keeps one handler per topic.
        self._topic = f"annoloop-progress-{uuid.uuid4().hex}"
        self.client.subscribe_topic(self._topic, self._on_event)
        self._info: tuple[float, list[dict[str, float]]] | None = None

    @property
    def scheduler_address(self) -> str:
        """The address of the scheduler the tasks go to."""
        return str(self.client.scheduler.address)

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        msg = event[1]
        snapshot = ProgressSnapshot(int(msg["done"]), msg["total"], str(msg["message"]))
        self._deliver_token(str(msg["token"]), snapshot)

    def worker_resources(self, *, fresh: bool = False) -> list[dict[str, float]]:
        """The resources each worker of the cluster advertises (cached for a second)."""
        now = time.monotonic()
        if fresh or self._info is None or now - self._info[0] > _INFO_TTL:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
            self._info = (now, [dict(w.get("resources") or {}) for w in workers.values()])
        return self._info[1]

    def _requirements(self, spec: TaskSpec) -> dict[str, float]:
        try:
            return task_resources(spec, self.worker_resources())
        except NotFound:  # maybe a worker joined since the cached look: look again
            return task_resources(spec, self.worker_resources(fresh=True))

    def _submit(
        self, fn: Callable[..., Any], key: str, spec: TaskSpec, args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> DaskFuture:  # fmt: skip
        resources = self._requirements(spec)
        future = DaskFuture(self, key, spec)
        future._future = self.client.submit(
            _run_on_worker, fn, key, future.token, self._topic, args, kwargs,
            key=future.token, resources=resources or None, retries=spec.retries or None,
            pure=False,
        )  # fmt: skip
        return future

    def _cancel(self, futures: list[DaskFuture]) -> None:
        """Cancel ``futures`` and wait (up to 5 s) until the scheduler has dropped them.

        Dask sends a cancel without waiting for it; a queued task whose worker frees up in that
        moment would still start. Waiting for the scheduler closes that window.
        """
        if not futures:
            return
        keys = [f.token for f in futures]
        # The submit and the cancel travel on one ordered stream, the status query on another:
        # first wait until the scheduler has the tasks, or "unknown" would look like "dropped".
        self._wait_for_states(keys, lambda state: state is not None)
        self.client.cancel([f._future for f in futures], reason="cancelled through annoloop")
        self._wait_for_states(keys, lambda state: state not in _LIVE)

    def _wait_for_states(self, keys: list[str], ok: Callable[[str | None], bool]) -> None:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                states = self.client.sync(self.client.scheduler.get_task_status, keys=keys)
            except Exception:  # scheduler gone: nothing left to run the tasks either
                return
            if all(ok(state) for state in states.values()):
                return
            time.sleep(0.005)

    def _cancel_all(self, futures: list[FutureBase]) -> None:
        self._cancel([f for f in futures if isinstance(f, DaskFuture) and not f.done()])

    def _close(self, cancel: bool) -> None:
        with contextlib.suppress(Exception):  # the caller may have closed its client already
            self.client.unsubscribe_topic(self._topic)
        if self._owns_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
