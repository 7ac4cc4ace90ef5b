"""LocalExecutor: in-process (a thread) and a pool of spawned processes, on real tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from annoloop.errors import AlreadyExists
from annoloop.execution import (
    LocalExecutor,
    ProgressSnapshot,
    TaskCancelled,
    TaskFuture,
    TaskSpec,
    WorkerLost,
)
from tests.execution import tasks
from tests.execution.helpers import Recorder, wait_text, wait_until
from tests.execution.tasks import CustomError


@pytest.fixture(scope="module", params=[0, 2], ids=["in-process", "pool-2"])
def executor(request: pytest.FixtureRequest) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(request.param, on_progress=Recorder())
    yield ex
    ex.shutdown(cancel=True)


def _recorder(ex: LocalExecutor) -> Recorder:
    assert isinstance(ex.on_progress, Recorder)
    return ex.on_progress


def test_results_and_map(executor: LocalExecutor) -> None:
    future = executor.submit(tasks.add, 2, b=40)
    assert isinstance(future, TaskFuture)
    assert future.result(timeout=60) == 42
    assert future.done() and future.exception() is None
    futures = executor.map(tasks.square, range(20), spec=TaskSpec(name="sq", key="squares"))
    assert [f.result(timeout=60) for f in futures] == [i * i for i in range(20)]
    assert [f.key for f in futures][:3] == ["squares-0", "squares-1", "squares-2"]


def test_exceptions_keep_their_type(executor: LocalExecutor) -> None:
    future = executor.submit(tasks.fail, "bad pixel at (3, 4)")
    with pytest.raises(CustomError, match=r"bad pixel at \(3, 4\)"):
        future.result(timeout=60)
    assert isinstance(future.exception(), CustomError)
    with pytest.raises(ValueError, match="nope"):
        executor.submit(tasks.fail_value, "nope").result(timeout=60)
    # The executor is still fine afterwards.
    assert executor.submit(tasks.add, 1).result(timeout=60) == 1


def test_progress_from_inside_the_task(executor: LocalExecutor) -> None:
    future = executor.submit(tasks.steps, 5, spec=TaskSpec(name="steps", key="steps-job"))
    assert future.result(timeout=60) == 5
    assert future.progress() == ProgressSnapshot(5, 5, "step 5")
    calls = _recorder(executor).for_key("steps-job")
    assert calls[-1] == (5, 5, "step 5")
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)  # in order, none backwards


def test_progress_while_running(executor: LocalExecutor, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    future = executor.submit(tasks.wait_for_file, str(gate))
    wait_until(lambda: future.progress() is not None, what="progress from the running task")
    assert future.progress() == ProgressSnapshot(0, 1, "waiting")
    assert not future.done()
    gate.touch()
    assert future.result(timeout=60) is True


def test_current_progress_works_from_a_thread_of_the_task(executor: LocalExecutor) -> None:
    future = executor.submit(tasks.steps_from_thread, 4)
    assert future.result(timeout=60) == 4
    assert future.progress() == ProgressSnapshot(4, 4, "thread")


def test_cancel_a_queued_task(executor: LocalExecutor, tmp_path: Path) -> None:
    gate, log = tmp_path / "gate", tmp_path / "log"
    busy = [
        executor.submit(tasks.wait_for_file, str(gate)) for _ in range(max(executor.processes, 1))
    ]
    queued = [executor.submit(tasks.record, str(log), f"queued {i}") for i in range(3)]
    try:
        assert all(f.cancel() for f in queued)
        assert all(f.done() for f in queued)
    finally:
        gate.touch()
    assert all(f.result(timeout=60) for f in busy)
    after = executor.submit(tasks.record, str(log), "after")
    assert after.result(timeout=60) == "after"
    assert log.read_text() == "after\n"  # none of the cancelled tasks ran
    for future in queued:
        with pytest.raises(TaskCancelled):
            future.result()
        assert isinstance(future.exception(), TaskCancelled)
        assert future.cancel() is False  # already done


def test_cancel_a_running_task_stops_it_at_its_next_report(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    future = executor.submit(tasks.loop_until_cancelled, str(marker))
    wait_text(marker, "started")
    assert future.cancel() is True
    with pytest.raises(TaskCancelled):
        future.result(timeout=1)  # at once, without waiting for the task
    assert wait_text(marker, "stopped") == "stopped TaskCancelled"
    assert executor.submit(tasks.add, 5).result(timeout=60) == 5


def test_a_task_can_poll_for_cancellation(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    future = executor.submit(tasks.poll_cancel, str(marker))
    wait_text(marker, "started")
    future.cancel()
    assert wait_text(marker, "noticed") == "noticed"


def test_retries(executor: LocalExecutor, tmp_path: Path) -> None:
    ok = executor.submit(
        tasks.fail_until, str(tmp_path / "a"), 2, spec=TaskSpec(name="f", retries=2)
    )
    assert ok.result(timeout=60) == 3
    bad = executor.submit(
        tasks.fail_until, str(tmp_path / "b"), 2, spec=TaskSpec(name="f", retries=1)
    )
    with pytest.raises(CustomError, match="call 2 fails"):
        bad.result(timeout=60)


def test_a_key_is_taken_while_its_task_is_pending(executor: LocalExecutor, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    spec = TaskSpec(name="job", key="job-17")
    first = executor.submit(tasks.wait_for_file, str(gate), spec=spec)
    try:
        with pytest.raises(AlreadyExists, match="job-17"):
            executor.submit(tasks.add, 1, spec=spec)
    finally:
        gate.touch()
    assert first.result(timeout=60) is True
    assert executor.submit(tasks.add, 1, spec=spec).result(timeout=60) == 1  # free again


def test_done_callbacks(executor: LocalExecutor) -> None:
    seen: list[str] = []
    future = executor.submit(tasks.add, 1, spec=TaskSpec(name="cb", key="cb-1"))
    future.add_done_callback(lambda f: seen.append(f.key))
    future.result(timeout=60)
    wait_until(lambda: seen, what="the done callback")
    assert seen == ["cb-1"]


def test_a_failing_progress_listener_does_not_break_the_task() -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("listener down")

    with LocalExecutor(on_progress=broken) as ex:
        assert ex.submit(tasks.steps, 3).result(timeout=60) == 3


def test_big_payloads_travel(executor: LocalExecutor) -> None:
    array = np.arange(4_000_000, dtype=np.float64).reshape(2000, 2000)  # 32 MB
    total = executor.submit(np.sum, array).result(timeout=120)
    assert total == array.sum()


def test_many_tiny_tasks_in_process() -> None:
    with LocalExecutor() as ex:
        futures = ex.map(tasks.square, range(5000))
    # shutdown waited for all of them
    assert all(f.done() for f in futures)
    assert sum(f.result() for f in futures) == sum(i * i for i in range(5000))


def test_in_process_tasks_run_in_submission_order(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with LocalExecutor() as ex:
        for i in range(30):
            ex.submit(tasks.record, str(log), str(i), 0.001 * (i % 3))
    assert log.read_text().split() == [str(i) for i in range(30)]


def test_leaving_the_block_on_an_error_cancels_what_is_left(tmp_path: Path) -> None:
    gate, log = tmp_path / "gate", tmp_path / "log"
    futures: list[TaskFuture[object]] = []
    with pytest.raises(KeyError), LocalExecutor() as ex:
        futures.append(ex.submit(tasks.wait_for_file, str(gate), 5))
        futures += [ex.submit(tasks.record, str(log), "x") for _ in range(3)]
        raise KeyError("the caller failed")
    assert not log.exists()
    assert all(isinstance(f.exception(), TaskCancelled) for f in futures)
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(tasks.add, 1)
    ex.shutdown()  # twice is harmless


def test_pool_survives_a_dying_process(tmp_path: Path) -> None:
    with LocalExecutor(1) as ex:
        with pytest.raises(WorkerLost, match="died"):
            ex.submit(tasks.die, spec=TaskSpec(name="oom", key="oom")).result(timeout=60)
        # The broken pool is replaced; progress still flows from the new one.
        future = ex.submit(tasks.steps, 3)
        assert future.result(timeout=60) == 3
        assert future.progress() == ProgressSnapshot(3, 3, "step 3")


def test_pool_reports_an_unpicklable_result(executor: LocalExecutor) -> None:
    if executor.processes == 0:
        assert executor.submit(tasks.unpicklable_result).result(timeout=60) is not None
        return
    with pytest.raises(Exception, match="pickle"):
        executor.submit(tasks.unpicklable_result).result(timeout=60)
    assert executor.submit(tasks.add, 2).result(timeout=60) == 2
