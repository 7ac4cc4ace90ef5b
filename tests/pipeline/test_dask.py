"""Pipes on Dask: a LocalCluster, and a ``dask scheduler`` with ``annoloop worker`` processes on
127.0.0.1 where a worker is killed (SIGKILL) in the middle of a script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from annoloop.execution import DaskExecutor  # noqa: E402
from annoloop.pipeline import service  # noqa: E402
from annoloop.pipeline.engine import run_pipe  # noqa: E402
from tests.pipeline.helpers import annotate_all, write_pipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

NEEDS_ENV = """
    from annoloop.pipeline import Script

    class NeedsGpuEnv(Script):
        ENVS = ["no-such-env"]

        def main(self):
            pass
"""


def test_a_pipe_runs_on_a_local_cluster(project, tmp_path):
    folder = write_pipeline(
        tmp_path / "envs",
        {
            "pipe.yaml": """
                name: envs
                elements:
                  - {id: images, type: datasource}
                  - {id: odd, type: script, script: odd.py, inputs: [images]}
            """,
            "odd.py": NEEDS_ENV,
        },
    )
    with DaskExecutor(n_workers=2) as ex:
        status = service.start_pipe(project, "request_all", "dk", ex)
        request = status.element("request")
        assert request.state == "finished", request.error
        job = project.job(request.job_id)
        assert job["state"] == "finished" and job["result"]["work_items"] == len(project.images())
        annotate_all(project, "dk/Annotate", label=None)
        status = run_pipe(project, "dk", ex)
        assert status.finished
        # a script whose environment no worker offers fails with the reason
        status = service.start_pipe(project, folder / "pipe.yaml", "env", ex)
        odd = status.element("odd")
        assert odd.state == "failed" and "no-such-env" in odd.error and "no worker" in odd.error


# -- a real scheduler and worker processes -------------------------------------------------------

SLOW = """
    import os, time
    from pathlib import Path
    from annoloop.pipeline import Script

    class Slow(Script):
        ARGUMENTS = {"marker": ""}

        def main(self):
            marker = Path(self.get_arg("marker"))
            first = not marker.exists()
            marker.write_text(str(os.getpid()))
            if first:
                time.sleep(120)  # killed in here
            for ds in self.inp.datasources:
                self.outp.request_annos(ds.image_ids())
            self.logger.info("ran in process %d", os.getpid())
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.pop("ANNOLOOP_SCHEDULER", None)
    # a task whose worker dies is not moved to another worker by Dask: the engine decides
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "0"
    return env


def _popen(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for child in children:
        try:
            child.wait(5)
        except psutil.TimeoutExpired:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("pipe-cluster")
    file = logs / "scheduler.json"
    procs = [
        _popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
            logs / "scheduler.log",
        )
    ]  # fmt: skip
    try:
        _wait(lambda: file.exists() and file.stat().st_size > 0, 60, "the scheduler")
        address = json.loads(file.read_text())["address"]
        for i in range(2):
            procs.append(
                _popen(
                    [sys.executable, "-m", "annoloop.execution.worker", address, "--host",
                     "127.0.0.1", "--name", f"w{i}"],
                    logs / f"w{i}.log",
                )
            )  # fmt: skip
        with distributed.Client(address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _killed_pipe(project, tmp_path: Path, retries: int, name: str) -> Path:
    marker = tmp_path / f"{name}.pid"
    folder = write_pipeline(
        tmp_path / name,
        {
            "pipe.yaml": f"""
                name: {name}
                elements:
                  - {{id: images, type: datasource}}
                  - {{id: slow, type: script, script: slow.py, inputs: [images], retries: {retries},
                     arguments: {{marker: "{marker}"}}}}
                  - {{id: boxes, type: annotask, name: Boxes, inputs: [slow]}}
            """,
            "slow.py": SLOW,
        },
    )
    service.start_pipe(project, folder / "pipe.yaml", name)
    return marker


def _run_and_kill(project, address: str, name: str, marker: Path):
    from annoloop.pipeline.engine import PipeEngine

    with DaskExecutor(address=address) as ex:
        engine = PipeEngine(project, name, ex)
        try:
            engine.step()
            _wait(marker.exists, 60, "the script to start")
            pid = int(marker.read_text())
            assert pid != os.getpid()  # it runs in a worker process
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                report = engine.step()
                if report.idle:
                    break
                engine.wait(0.2)
        finally:
            engine.close()
    return service.pipe_status(project, name)


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_nothing_is_written_twice(project, tmp_path, scheduler):
    marker = _killed_pipe(project, tmp_path, 1, "retried")
    status = _run_and_kill(project, scheduler, "retried", marker)
    slow = status.element("slow")
    assert slow.state == "finished", (slow.error, slow.message)
    assert len(project.work_items("retried/Boxes")) == len(project.images())  # once each
    jobs = project.jobs()
    mine = jobs[jobs["name"].str.startswith("retried/slow")]
    assert sorted(mine["state"]) == ["failed", "finished"]
    lost = mine[mine["state"] == "failed"].iloc[0]
    assert "worker" in lost["error"].lower()
    log = "\n".join(r.message for r in service.logs(project, "retried"))
    assert "retrying" in log and "ran in process" in log


@pytest.mark.slow
def test_a_killed_worker_without_retries_fails_the_element_clearly(project, tmp_path, scheduler):
    marker = _killed_pipe(project, tmp_path, 0, "lost")
    status = _run_and_kill(project, scheduler, "lost", marker)
    slow = status.element("slow")
    assert slow.state == "failed"
    assert "worker was lost" in slow.error
    assert len(project.work_items()) == 0
    service.resume(project, "lost")
    with DaskExecutor(address=scheduler) as ex:
        status = run_pipe(project, "lost", ex, timeout=120)
    assert status.element("slow").state == "finished"
    assert len(project.work_items("lost/Boxes")) == len(project.images())
