"""A real ``dask scheduler`` process and two ``start_worker`` processes on 127.0.0.1.

One worker serves environment "cv" with 2 slots, the other is plain with 1 slot. Every process
is started here and stopped here, by pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # ~30 s on 2 busy cores, most of it starting the processes

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from annoloop.errors import NotFound  # noqa: E402
from annoloop.execution import DaskExecutor, ProgressSnapshot, TaskSpec  # noqa: E402
from tests.execution import tasks  # noqa: E402
from tests.execution.helpers import Recorder, wait_text, wait_until  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = Path()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Workers import the task functions from tests.execution.tasks.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.pop("ANNOLOOP_SCHEDULER", None)
    return env


def _popen(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process and, if need be, SIGKILL it and whatever it started."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for child in children:  # a nanny's worker outlives a killed nanny: end it by its pid
        try:
            child.wait(5)
        except psutil.TimeoutExpired:
            child.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("dask-cluster")
    file = logs / "scheduler.json"
    scheduler = _popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
        logs / "scheduler.log",
    )  # fmt: skip
    c = Cluster(address="", scheduler=scheduler, logs=logs)
    try:
        wait_until(file.exists, timeout=60, what="the scheduler file")
        wait_until(lambda: file.stat().st_size > 0, timeout=10, what="the scheduler address")
        c.address = json.loads(file.read_text())["address"]
        worker = [
            sys.executable,
            "-m",
            "annoloop.execution.worker",
            c.address,
            "--host",
            "127.0.0.1",
        ]
        c.workers["cv"] = _popen(
            [*worker, "--env", "cv", "--slots", "2", "--name", "cv-worker"], logs / "cv.log"
        )
        c.workers["plain"] = _popen([*worker, "--name", "plain-worker"], logs / "plain.log")
        with distributed.Client(c.address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield c
    finally:
        for proc in c.workers.values():
            _stop(proc)
        _stop(scheduler)


@pytest.fixture()
def ex(cluster: Cluster) -> Iterator[DaskExecutor]:
    executor = DaskExecutor(address=cluster.address, on_progress=Recorder())
    yield executor
    executor.shutdown(cancel=True)


def test_workers_advertise_their_resources(ex: DaskExecutor) -> None:
    resources = sorted(ex.worker_resources(fresh=True), key=len)
    assert resources == [{"slots": 1}, {"slots": 2, "env-cv": 2}]


def test_env_tasks_run_on_the_env_worker_only(ex: DaskExecutor) -> None:
    futures = ex.map(tasks.where, [0.05] * 6, spec=TaskSpec(name="cv job", envs=["cv"]))
    assert {f.result(timeout=60)["name"] for f in futures} == {"cv-worker"}
    plain = ex.map(tasks.where, [0.05] * 6)  # no env: either worker
    assert {f.result(timeout=60)["name"] for f in plain} <= {"cv-worker", "plain-worker"}


def test_envs_fall_back_in_order_of_preference(ex: DaskExecutor) -> None:
    spec = TaskSpec(name="prefers gpu", envs=["gpu-env", "cv"])
    assert ex.submit(tasks.where, spec=spec).result(timeout=60)["name"] == "cv-worker"


def test_unknown_env_raises_not_found(ex: DaskExecutor) -> None:
    with pytest.raises(NotFound) as info:
        ex.submit(tasks.where, spec=TaskSpec(name="odd", envs=["nope", "gone"]))
    assert "['nope', 'gone']" in str(info.value) and "env-cv" in str(info.value)


def test_progress_through_a_separate_scheduler(ex: DaskExecutor) -> None:
    future = ex.submit(tasks.steps, 10, 0.03, spec=TaskSpec(name="steps", key="remote-steps"))
    assert future.result(timeout=60) == 10
    assert future.progress() == ProgressSnapshot(10, 10, "step 10")
    recorder = ex.on_progress
    assert isinstance(recorder, Recorder)
    wait_until(lambda: recorder.for_key("remote-steps")[-1:] == [(10, 10, "step 10")])


def test_lock_all_occupies_a_whole_worker(ex: DaskExecutor, tmp_path: Path) -> None:
    cv = TaskSpec(name="cv job", envs=["cv"])
    # Control: two ordinary tasks share the 2-slot worker at the same time.
    gate = tmp_path / "gate"
    marks = [tmp_path / f"s{i}" for i in (0, 1)]
    both = [ex.submit(tasks.where_gated, str(gate), str(m), spec=cv) for m in marks]
    try:
        for mark in marks:
            wait_text(mark, "started")
    finally:
        gate.touch()
    assert [f.result(timeout=60)["name"] for f in both] == ["cv-worker", "cv-worker"]

    # A lock_all task takes both slots: an ordinary cv task waits until it is done.
    gate2, started = tmp_path / "gate2", tmp_path / "lock-started"
    spec = TaskSpec(name="exclusive", envs=["cv"], lock_all=True)
    lock = ex.submit(tasks.where_gated, str(gate2), str(started), spec=spec)
    try:
        wait_text(started, "started")
        other = ex.submit(tasks.where, spec=cv)
        time.sleep(1.0)  # room for the other task to start, were a slot free
        assert not other.done()
    finally:
        gate2.touch()
    held, after = lock.result(timeout=60), other.result(timeout=60)
    assert held["name"] == after["name"] == "cv-worker"
    assert after["start"] >= held["end"]


def test_killed_worker_task_completes_elsewhere_once(ex: DaskExecutor, tmp_path: Path) -> None:
    log = tmp_path / "side-effect.log"
    future = ex.submit(tasks.long_side_effect, str(log), 3.0, spec=TaskSpec(name="long"))
    wait_text(log, "start")
    first_pid = int(log.read_text().split()[1])
    os.kill(first_pid, signal.SIGKILL)  # the worker process running it, mid-task
    second_pid = future.result(timeout=90)
    assert second_pid != first_pid
    lines = log.read_text().splitlines()
    assert lines == [f"start {first_pid}", f"start {second_pid}", f"done {second_pid}"]


def test_worker_stops_on_sigterm(cluster: Cluster, ex: DaskExecutor) -> None:
    proc = cluster.workers["plain"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    wait_until(lambda: len(ex.worker_resources(fresh=True)) == 1, what="the worker to leave")
    assert ex.worker_resources() == [{"slots": 2, "env-cv": 2}]
