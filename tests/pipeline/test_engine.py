"""The engine end to end on real photos: templates run, humans annotate through the store,
failures stay in their branch and resume after a fix, loops repeat and break, pipes pause,
stop and survive a crashed engine without doing finished work twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from annoloop.errors import Conflict, InvalidInput
from annoloop.pipeline import service
from annoloop.pipeline.engine import PipeEngine, run_pipe
from tests.pipeline.helpers import annotate_all, write_pipeline

REQUEST = """
    from annoloop.pipeline import Script

    class Request(Script):
        def main(self):
            for ds in self.inp.datasources:
                self.outp.request_annos(ds.image_ids())
            self.logger.info("iteration %d requested", self.iteration)
"""


def test_request_all_runs_to_the_end_with_humans_in_between(project, executor, image_ids):
    status = service.start_pipe(
        project,
        "request_all",
        "survey",
        executor,
        overrides={"annotate.labels": ["thing"]},
    )
    states = {e.element: e.state for e in status.elements}
    assert states == {
        "images": "finished",
        "request": "finished",
        "annotate": "in_progress",
        "export": "pending",
    }
    annotate = status.element("annotate")
    assert annotate.task == "survey/Annotate"
    assert annotate.items == {"open": len(image_ids), "locked": 0, "done": 0, "junk": 0}
    # the humans: all but two images get a box, two are junk
    junk = set(image_ids[:2].tolist())
    assert annotate_all(project, "survey/Annotate", label="thing", junk=junk) == len(image_ids)
    status = run_pipe(project, "survey", executor)
    assert status.state == "finished"
    assert all(e.state == "finished" for e in status.elements)
    exported = service.results(project, "survey", "export")
    assert len(exported) == 1 and exported[0]["kind"] == "export"
    doc = json.loads(Path(exported[0]["location"].removeprefix("file://")).read_text())
    assert len(doc["annotations"]) == len(image_ids) - 2
    assert {c["name"] for c in doc["categories"]} == {"thing"}
    messages = [r.message for r in service.logs(project, "survey")]
    assert "pipe finished" in messages and messages.count("pipe finished") == 1
    assert any("requested annotations for" in m for m in messages)


def test_a_failing_script_fails_its_branch_only_and_resume_retries_it_once_fixed(
    project, executor, tmp_path
):
    folder = write_pipeline(
        tmp_path / "branches",
        {
            "pipe.yaml": """
            name: branches
            elements:
              - {id: images, type: datasource}
              - {id: good, type: script, script: request.py, inputs: [images]}
              - {id: boxes, type: annotask, name: Boxes, labels: [thing], inputs: [good]}
              - {id: bad, type: script, script: bad.py, inputs: [images]}
              - {id: points, type: annotask, name: Points, kinds: [point], labels: [thing],
                 inputs: [bad]}
        """,
            "request.py": REQUEST,
            "bad.py": """
            from annoloop.pipeline import Script

            class Bad(Script):
                def main(self):
                    self.logger.info("about to fail")
                    raise ValueError("broken on purpose")
        """,
        },
    )
    status = service.start_pipe(project, folder / "pipe.yaml", "b", executor)
    bad = status.element("bad")
    assert bad.state == "failed"
    assert "ValueError: broken on purpose" in bad.error
    assert "Traceback" in bad.traceback and "bad.py" in bad.traceback
    assert status.element("points").state == "pending"
    # the other branch went on
    assert status.element("boxes").state == "in_progress"
    assert status.element("boxes").items["open"] == len(project.images())
    log_text = "\n".join(r.message for r in service.logs(project, "b", element="bad"))
    assert "about to fail" in log_text and "broken on purpose" in log_text
    assert project.job(bad.job_id)["state"] == "failed"
    # fix the script, resume: it runs again and its branch goes on
    (folder / "bad.py").write_text(textwrap.dedent(REQUEST).replace("Request", "Fixed"))
    service.resume(project, "b")
    status = run_pipe(project, "b", executor)
    assert status.element("bad").state == "finished"
    assert status.element("points").items["open"] == len(project.images())
    assert status.failed == []


LOOP = {
    "pipe.yaml": """
        name: looping
        elements:
          - {id: images, type: datasource}
          - {id: request, type: script, script: request.py, inputs: [images]}
          - {id: label, type: annotask, name: Label, kinds: [label], labels: [a, b],
             inputs: [request]}
          - {id: check, type: script, script: check.py, inputs: [label],
             arguments: {break_at: 1}}
          - {id: loop, type: loop, jump: request, max_iterations: 4, inputs: [check]}
          - {id: after, type: script, script: after.py, inputs: [loop]}
    """,
    "request.py": REQUEST,
    "check.py": """
        from annoloop.pipeline import Script

        class Check(Script):
            ARGUMENTS = {"break_at": -1}

            def main(self):
                df = self.inp.to_df()
                mine = df[df["img_iteration"] == self.iteration]
                self.logger.info("iteration %d: %d labelled", self.iteration, len(mine))
                assert (mine["img_state"] == "done").all()
                if self.iteration == self.get_arg("break_at"):
                    self.break_loop()
    """,
    "after.py": """
        from annoloop.pipeline import Script

        class After(Script):
            def main(self):
                df = self.inp.to_df()  # the loop passes the check's inputs through: none
                self.logger.info("after the loop (iteration %d)", self.iteration)
    """,
}


def _run_rounds(project, executor, pipe, rounds):
    for _ in range(rounds):
        status = run_pipe(project, pipe, executor)
        if status.finished:
            return status
        annotate_all(project, f"{pipe}/Label", label="a", kind="label")
    return run_pipe(project, pipe, executor)


def test_a_loop_repeats_its_body_until_a_script_breaks_it(project, executor, tmp_path):
    folder = write_pipeline(tmp_path / "loop", LOOP)
    service.start_pipe(project, folder / "pipe.yaml", "lp")
    status = _run_rounds(project, executor, "lp", 6)
    assert status.finished
    assert status.element("loop").loop_count == 1  # jumped back once, then broken
    assert status.element("request").iteration == 1
    assert status.element("after").iteration == 0
    items = project.work_items("lp/Label")
    n = len(project.images())
    assert sorted(items.groupby("iteration").size().to_dict().items()) == [(0, n), (1, n)]
    assert (items["state"] == "done").all()
    text = [r.message for r in service.logs(project, "lp")]
    assert any("loop ended after 2 iteration(s): a script broke it" in m for m in text)
    assert any("after the loop" in m for m in text)


def test_a_loop_stops_after_max_iterations(project, executor, tmp_path):
    folder = write_pipeline(tmp_path / "loop", LOOP)
    service.start_pipe(
        project,
        folder / "pipe.yaml",
        "mx",
        overrides={"loop.max_iterations": 3, "check.arguments.break_at": -1},
    )
    status = _run_rounds(project, executor, "mx", 6)
    assert status.finished
    assert status.element("loop").loop_count == 2
    assert sorted(project.work_items("mx/Label")["iteration"].unique().tolist()) == [0, 1, 2]


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
                for i in range(600):
                    self.progress(i, 600, "working")
                    time.sleep(0.05)
            for ds in self.inp.datasources:
                self.outp.request_annos(ds.image_ids())
"""


def _slow_pipe(tmp_path: Path) -> Path:
    return write_pipeline(
        tmp_path / "slow",
        {
            "pipe.yaml": """
            name: slow
            elements:
              - {id: images, type: datasource}
              - {id: slow, type: script, script: slow.py, inputs: [images]}
              - {id: boxes, type: annotask, name: Boxes, inputs: [slow]}
        """,
            "slow.py": SLOW,
        },
    )


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_stop_cancels_a_running_script_and_resume_runs_it_again(project, executor, tmp_path):
    folder = _slow_pipe(tmp_path)
    marker = tmp_path / "marker"
    service.start_pipe(
        project, folder / "pipe.yaml", "s", overrides={"slow.arguments.marker": str(marker)}
    )
    engine = PipeEngine(project, "s", executor)
    try:
        engine.step()
        _wait_for(lambda: service.pipe_status(project, "s").element("slow").progress_done > 0)
        job_id = service.pipe_status(project, "s").element("slow").job_id
        with pytest.raises(Conflict, match="driven by another engine"):
            PipeEngine(project, "s", executor).step()
        status = service.stop(project, "s")
        assert status.state == "stopped" and status.element("slow").state == "paused"
        engine.step()  # the engine sees the stop and cancels the running job
        _wait_for(lambda: not engine._futures and executor._pending == {})
    finally:
        engine.close()
    assert project.job(job_id)["state"] == "cancelled"
    assert len(project.work_items()) == 0  # the stopped run wrote nothing
    service.resume(project, "s")
    status = run_pipe(project, "s", executor)
    assert status.element("slow").state == "finished"
    assert status.element("boxes").items["open"] == len(project.images())


def test_pause_holds_new_work_and_resume_continues(project, executor):
    status = service.start_pipe(project, "request_all", "p")
    service.pause(project, "p")
    status = run_pipe(project, "p", executor)
    assert status.state == "paused"
    assert {e.state for e in status.elements} == {"paused"}
    assert len(project.work_items()) == 0
    service.resume(project, "p")
    status = run_pipe(project, "p", executor)
    assert status.element("annotate").state == "in_progress"


_ENGINE = """
import sys
from annoloop.store import Project
from annoloop.pipeline.engine import run_pipe
with Project.open(sys.argv[1]) as p:
    run_pipe(p, "crash", until_idle=False)
"""


def test_a_crashed_engine_is_resumed_without_redoing_finished_work(project, tmp_path, executor):
    folder = write_pipeline(
        tmp_path / "crash",
        {
            "pipe.yaml": """
            name: crash
            elements:
              - {id: images, type: datasource}
              - {id: first, type: script, script: request.py, inputs: [images]}
              - {id: boxes, type: annotask, name: Boxes, inputs: [first]}
              - {id: slow, type: script, script: slow.py, inputs: [images]}
              - {id: points, type: annotask, name: Points, kinds: [point], inputs: [slow]}
        """,
            "request.py": REQUEST,
            "slow.py": SLOW,
        },
    )
    marker = tmp_path / "marker"
    service.start_pipe(
        project, folder / "pipe.yaml", "crash", overrides={"slow.arguments.marker": str(marker)}
    )
    proc = subprocess.Popen([sys.executable, "-c", _ENGINE, str(project.folder)])
    try:
        _wait_for(marker.exists)
        _wait_for(
            lambda: service.pipe_status(project, "crash").element("first").state == "finished"
        )
        os.kill(proc.pid, signal.SIGKILL)  # the engine dies while "slow" runs inside it
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = service.pipe_status(project, "crash")
    assert before.element("slow").state == "in_progress"
    old_job = before.element("slow").job_id
    first_job = before.element("first").job_id
    n = len(project.images())
    assert len(project.work_items("crash/Boxes")) == n
    status = run_pipe(project, "crash", executor, takeover=True)
    assert status.element("slow").state == "finished"
    assert status.element("first").job_id == first_job  # finished work was not redone
    assert project.job(old_job)["state"] == "cancelled"
    assert len(project.work_items("crash/Boxes")) == n  # nothing written twice
    assert len(project.work_items("crash/Points")) == n
    assert any(
        "left by an engine that stopped" in r.message for r in service.logs(project, "crash")
    )


def test_a_rejected_run_starts_again_later(project, executor, tmp_path, monkeypatch):
    import annoloop.pipeline.runner as runner

    monkeypatch.setattr(runner, "REJECT_DELAY_S", 0.2)
    folder = write_pipeline(
        tmp_path / "rej",
        {
            "pipe.yaml": """
            name: rej
            elements:
              - {id: images, type: datasource}
              - {id: wait, type: script, script: wait.py, inputs: [images]}
              - {id: boxes, type: annotask, name: Boxes, inputs: [wait]}
        """,
            "wait.py": f"""
            from pathlib import Path
            from annoloop.pipeline import Script

            class Wait(Script):
                def main(self):
                    flag = Path({str(tmp_path / "flag")!r})
                    if not flag.exists():
                        flag.write_text("seen")
                        self.outp.request_annos(self.inp.datasources[0].image_ids())
                        self.reject_execution()
                        return
                    self.outp.request_annos(self.inp.datasources[0].image_ids()[:2])
        """,
        },
    )
    service.start_pipe(project, folder / "pipe.yaml", "rej")
    status = run_pipe(project, "rej", executor, timeout=60)
    assert status.element("wait").state == "finished"
    assert status.element("boxes").items["open"] == 2  # the rejected run's requests were dropped
    assert project.jobs()["result"].map(lambda r: bool(r and r.get("rejected"))).sum() == 1


def test_start_refuses_a_broken_template_before_writing_anything(project, tmp_path):
    folder = write_pipeline(
        tmp_path / "broken",
        {
            "pipe.yaml": """
            name: broken
            elements:
              - {id: images, type: datasource}
              - {id: s, type: script, script: missing.py, inputs: [images]}
        """,
        },
    )
    with pytest.raises(InvalidInput, match="element 's' field script"):
        service.start_pipe(project, folder / "pipe.yaml", "x")
    assert service.list_pipes(project) == []
    assert project.tasks().empty
