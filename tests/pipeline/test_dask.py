"""Pipes on Dask: a LocalCluster, and a ``dask scheduler`` with ``annoloop worker --env ...``
processes on 127.0.0.1: scripts go to the workers of their ``ENVS`` (in order of preference),
and a worker killed (SIGKILL) in the middle of a script is retried or fails clearly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import distributed
import psutil
import pytest

from annoloop.execution import DaskExecutor
from annoloop.pipeline import service
from annoloop.pipeline.engine import run_pipe
from tests.pipeline.helpers import annotate_all, write_pipeline

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
            part = marker.with_suffix(".part")
            part.write_text(str(os.getpid()))
            part.replace(marker)  # atomic: the test never reads a half-written pid
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
        # `annoloop worker`: w0 serves the cv environment, w1 cv and big
        for i, envs in enumerate((["cv"], ["cv", "big"])):
            env_args = [a for env in envs for a in ("--env", env)]
            procs.append(
                _popen(
                    [sys.executable, "-m", "annoloop.cli.main", "worker", "--scheduler", address,
                     "--name", f"w{i}", *env_args],
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


WHERE = """
    from distributed import get_worker
    from annoloop.pipeline import Script

    class Where(Script):
        ENVS = {envs}

        def main(self):
            self.logger.info("ran on %s", get_worker().name)
"""


def test_scripts_go_to_the_workers_of_their_envs_in_order_of_preference(
    project, tmp_path, scheduler
):
    folder = write_pipeline(
        tmp_path / "envs",
        {
            "pipe.yaml": """
                name: envs
                elements:
                  - {id: images, type: datasource}
                  - {id: big_first, type: script, script: big_first.py, inputs: [images]}
                  - {id: gone_first, type: script, script: gone_first.py, inputs: [images]}
                  - {id: nowhere, type: script, script: nowhere.py, inputs: [images]}
            """,
            "big_first.py": WHERE.format(envs='["big", "cv"]'),
            "gone_first.py": WHERE.format(envs='["gpu-farm", "big"]'),
            "nowhere.py": WHERE.format(envs='["tiny"]'),
        },
    )
    with DaskExecutor(address=scheduler) as ex:
        # a worker killed by an earlier test is restarted by its nanny: wait for it, or the
        # first choice ("big", only on w1) is rightly passed over for the next one ("cv")
        ex.client.wait_for_workers(2, timeout=60)
        status = service.start_pipe(project, folder / "pipe.yaml", "envs", ex, timeout=120)
    for element in ("big_first", "gone_first"):
        assert status.element(element).state == "finished", status.element(element).error
        lines = [r.message for r in service.logs(project, "envs", element=element)]
        assert "ran on w1" in lines  # only w1 offers "big"
    nowhere = status.element("nowhere")
    assert nowhere.state == "failed" and "tiny" in nowhere.error and "no worker" in nowhere.error


def test_the_cli_sends_a_pipe_to_the_scheduler(project, scheduler):
    from typer.testing import CliRunner

    from annoloop.cli.main import app

    args = ["pipe", "start", "request_all", "--name", "cli", "--wait", "--json",
            "--scheduler", scheduler, "-p", str(project.folder)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    states = {e["element"]: e["state"] for e in json.loads(result.output)["elements"]}
    assert states["request"] == "finished" and states["annotate"] == "in_progress"
    assert len(project.work_items("cli/Annotate")) == len(project.images())
