"""DaskExecutor on one real LocalCluster (2 worker processes, 1 thread each) for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from annoloop.errors import AlreadyExists, NotFound  # noqa: E402
from annoloop.execution import (  # noqa: E402
    DaskExecutor,
    ProgressSnapshot,
    TaskCancelled,
    TaskFuture,
    TaskSpec,
    WorkerLost,
    get_executor,
)
from tests.execution import tasks  # noqa: E402
from tests.execution.helpers import Recorder, wait_text, wait_until  # noqa: E402
from tests.execution.tasks import CustomError  # noqa: E402


@pytest.fixture(scope="module")
def dask_ex() -> Iterator[DaskExecutor]:
    ex = DaskExecutor(n_workers=2, threads_per_worker=1, on_progress=Recorder())
    yield ex
    ex.shutdown(cancel=True)


def _recorder(ex: DaskExecutor) -> Recorder:
    assert isinstance(ex.on_progress, Recorder)
    return ex.on_progress


def test_own_cluster_advertises_slots(dask_ex: DaskExecutor) -> None:
    assert dask_ex.worker_resources(fresh=True) == [{"slots": 1}, {"slots": 1}]
    assert dask_ex.scheduler_address.startswith("tcp://127.0.0.1:")


def test_results_and_map(dask_ex: DaskExecutor) -> None:
    future = dask_ex.submit(tasks.add, 2, b=40)
    assert isinstance(future, TaskFuture)
    assert future.result(timeout=60) == 42
    assert future.exception() is None and future.done()
    futures = dask_ex.map(tasks.square, range(30), spec=TaskSpec(name="sq", key="sq"))
    assert [f.result(timeout=60) for f in futures] == [i * i for i in range(30)]
    assert futures[7].key == "sq-7"


def test_exceptions_keep_their_type(dask_ex: DaskExecutor) -> None:
    future = dask_ex.submit(tasks.fail, "corrupt tile 12")
    with pytest.raises(CustomError, match="corrupt tile 12"):
        future.result(timeout=60)
    assert isinstance(future.exception(), CustomError)


def test_progress_from_inside_the_task(dask_ex: DaskExecutor) -> None:
    future = dask_ex.submit(tasks.steps, 500, spec=TaskSpec(name="s", key="dask-steps"))
    assert future.result(timeout=60) == 500
    assert future.progress() == ProgressSnapshot(500, 500, "step 500")
    recorder = _recorder(dask_ex)
    wait_until(lambda: recorder.for_key("dask-steps")[-1:] == [(500, 500, "step 500")])
    calls = recorder.for_key("dask-steps")
    # A tight loop is throttled (one event per 0.1 s); the first and the last always arrive.
    assert calls[0] == (1, 500, "step 1")
    assert 2 <= len(calls) < 500
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_progress_while_running(dask_ex: DaskExecutor, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    future = dask_ex.submit(tasks.wait_for_file, str(gate))
    wait_until(lambda: future.progress() is not None, what="progress through the scheduler")
    assert future.progress() == ProgressSnapshot(0, 1, "waiting")
    gate.touch()
    assert future.result(timeout=60) is True


def test_cancel_a_queued_task(dask_ex: DaskExecutor, tmp_path: Path) -> None:
    gate, log = tmp_path / "gate", tmp_path / "log"
    started = [tmp_path / f"started-{i}" for i in range(2)]
    busy = [dask_ex.submit(tasks.where_gated, str(gate), str(s)) for s in started]
    try:
        for path in started:  # both workers hold their single slot
            wait_text(path, "started")
        queued = [dask_ex.submit(tasks.record, str(log), f"q{i}") for i in range(3)]
        assert all(f.cancel() for f in queued)
    finally:
        gate.touch()
    assert {f.result(timeout=60)["name"] for f in busy} == {0, 1}
    assert dask_ex.submit(tasks.record, str(log), "after").result(timeout=60) == "after"
    assert log.read_text() == "after\n"
    for future in queued:
        with pytest.raises(TaskCancelled):
            future.result(timeout=10)
        assert isinstance(future.exception(), TaskCancelled)
        assert future.cancel() is False


def test_cancel_a_running_task(dask_ex: DaskExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    future = dask_ex.submit(tasks.loop_until_cancelled, str(marker))
    wait_text(marker, "started")
    assert future.cancel() is True
    with pytest.raises(TaskCancelled):
        future.result(timeout=10)
    assert wait_text(marker, "stopped") == "stopped TaskCancelled"


def test_retries(dask_ex: DaskExecutor, tmp_path: Path) -> None:
    spec = TaskSpec(name="flaky", retries=2)
    assert dask_ex.submit(tasks.fail_until, str(tmp_path / "a"), 2, spec=spec).result(60) == 3
    spec = TaskSpec(name="flaky", retries=1)
    with pytest.raises(CustomError, match="call 2 fails"):
        dask_ex.submit(tasks.fail_until, str(tmp_path / "b"), 2, spec=spec).result(60)


def test_a_pending_key_is_taken(dask_ex: DaskExecutor, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    spec = TaskSpec(name="job", key="dask-job-1")
    first = dask_ex.submit(tasks.wait_for_file, str(gate), spec=spec)
    try:
        with pytest.raises(AlreadyExists):
            dask_ex.submit(tasks.add, 1, spec=spec)
    finally:
        gate.touch()
    assert first.result(timeout=60) is True
    wait_until(lambda: dask_ex.submit(tasks.add, 7, spec=spec).result(60) == 7, what="key reuse")
    # The old future keeps its own result: keys are reused, Dask tasks are not.
    assert first.result() is True


def test_resources_that_no_worker_offers(dask_ex: DaskExecutor) -> None:
    with pytest.raises(NotFound, match=r"environments \['cv'\]"):
        dask_ex.submit(tasks.add, 1, spec=TaskSpec(name="t", envs=["cv"]))
    with pytest.raises(NotFound, match="GPU"):
        dask_ex.submit(tasks.add, 1, spec=TaskSpec(name="t", gpu=True, key="gpu-job"))
    # A refused submit leaves its key free.
    assert dask_ex.submit(tasks.add, 2, spec=TaskSpec(name="t", key="gpu-job")).result(60) == 2


def test_lock_all_on_single_slot_workers(dask_ex: DaskExecutor) -> None:
    spec = TaskSpec(name="whole worker", lock_all=True)
    assert dask_ex.submit(tasks.add, 1, spec=spec).result(timeout=60) == 1


def test_a_task_that_kills_its_worker_raises_worker_lost(dask_ex: DaskExecutor) -> None:
    client = dask_ex.client

    def set_allowed_failures(dask_scheduler: object, n: int) -> int:
        old = dask_scheduler.allowed_failures  # type: ignore[attr-defined]
        dask_scheduler.allowed_failures = n  # type: ignore[attr-defined]
        return int(old)

    old = client.run_on_scheduler(set_allowed_failures, n=0)
    try:
        future = dask_ex.submit(tasks.die, spec=TaskSpec(name="oom", key="oom-task"))
        with pytest.raises(WorkerLost, match=r"'oom-task' .*died") as info:
            future.result(timeout=60)
        assert isinstance(future.exception(), WorkerLost)
        assert "allowed-failures" in str(info.value)
    finally:
        client.run_on_scheduler(set_allowed_failures, n=old)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker
    assert dask_ex.submit(tasks.add, 3).result(timeout=60) == 3


def test_executor_on_a_client_it_does_not_own(dask_ex: DaskExecutor) -> None:
    with distributed.Client(dask_ex.scheduler_address, set_as_default=False) as client:
        with DaskExecutor(client) as ex:
            future = ex.submit(tasks.steps, 3)
            assert future.result(timeout=60) == 3
            assert future.progress() == ProgressSnapshot(3, 3, "step 3")
        assert client.submit(tasks.add, 1, 1).result(timeout=60) == 2  # still open


def test_executor_by_address_and_environment(
    dask_ex: DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    with get_executor(dask_ex.scheduler_address) as ex:
        assert isinstance(ex, DaskExecutor)
        assert ex.submit(tasks.add, 4).result(timeout=60) == 4
    monkeypatch.setenv("ANNOLOOP_SCHEDULER", dask_ex.scheduler_address)
    with DaskExecutor() as ex:
        assert ex._cluster is None  # connected, did not start a cluster
        assert ex.submit(tasks.add, 5).result(timeout=60) == 5
    # Its own cluster is untouched by the other executors' shutdown.
    assert dask_ex.submit(tasks.add, 6).result(timeout=60) == 6


def test_no_scheduler_at_the_address() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    import dask

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(NotFound, match=f"127.0.0.1:{port}"),
    ):
        DaskExecutor(address=f"tcp://127.0.0.1:{port}")


def test_bad_arguments() -> None:
    from annoloop.errors import InvalidInput

    with pytest.raises(InvalidInput, match="n_workers"):
        DaskExecutor(n_workers=0)
    with pytest.raises(InvalidInput, match="threads_per_worker"):
        DaskExecutor(threads_per_worker=True)
    with pytest.raises(InvalidInput, match="not both"):
        DaskExecutor(object(), "tcp://127.0.0.1:1")
