"""``annoloop pipe ...`` end to end through the real CLI app on a project of real photos."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from annoloop.cli.main import app
from annoloop.formats import save
from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry.annotations import Annotations
from tests.pipeline.helpers import annotate_all, write_pipeline

runner = CliRunner()

BAD = """
    from annoloop.pipeline import Script

    class Bad(Script):
        def main(self):
            self.logger.info("about to fail")
            raise ZeroDivisionError("broken on purpose")
"""
FIXED = """
    from annoloop.pipeline import Script

    class Fixed(Script):
        def main(self):
            for ds in self.inp.datasources:
                self.outp.request_annos(ds.image_ids())
            self.logger.info("fixed and done")
"""
KIT = {
    "pipeline.yaml": "name: cli_kit\n",
    "flow.yaml": """
        name: flow
        description: A script that fails until fixed, then a task.
        elements:
          - {id: images, type: datasource}
          - {id: work, type: script, script: work.py, inputs: [images]}
          - {id: boxes, type: annotask, name: Boxes, labels: [thing], inputs: [work]}
    """,
    "work.py": BAD,
}


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result.output


@pytest.fixture()
def folder(project) -> str:
    return str(project.folder)


def test_start_wait_annotate_resume_to_the_end(project, folder):
    templates = json.loads(run("pipe", "templates", "--json", "-p", folder))
    assert {"request_all", "propose_review", "two_stage", "point_loop", "export_only"} <= set(
        templates
    )
    out = json.loads(
        run("pipe", "start", "request_all", "--name", "r", "--wait", "--json", "-p", folder,
            "--set", "annotate.labels=[cat, dog]", "--set", "request.arguments.priority=2")
    )  # fmt: skip
    states = {e["element"]: e["state"] for e in out["elements"]}
    assert states == {
        "images": "finished",
        "request": "finished",
        "annotate": "in_progress",
        "export": "pending",
    }
    annotate = next(e for e in out["elements"] if e["element"] == "annotate")
    assert annotate["items"]["open"] == len(project.images())
    items = project.work_items("r/Annotate")
    assert set(items["priority"]) == {2.0}
    text = run("pipe", "status", "r", "-p", folder)
    assert "in_progress" in text and f"0/{len(project.images())} items" in text
    annotate_all(project, "r/Annotate", label="cat")
    out = json.loads(run("pipe", "resume", "r", "--wait", "--json", "-p", folder))
    assert out["state"] == "finished"
    assert {e["state"] for e in out["elements"]} == {"finished"}
    listed = json.loads(run("pipe", "list", "--json", "-p", folder))
    assert [(p["name"], p["state"]) for p in listed] == [("r", "finished")]
    log = run("pipe", "logs", "r", "-p", folder)
    assert "requested annotations for" in log and "pipe finished" in log
    records = json.loads(run("pipe", "logs", "r", "--element", "request", "--json", "-p", folder))
    assert records and {r["element"] for r in records} == {"request"}
    # a finished pipe cannot be paused
    assert "finished" in run("pipe", "pause", "r", "-p", folder, code=6)


def test_a_failing_script_shows_its_traceback_and_resume_retries_it(project, folder, tmp_path):
    kit = write_pipeline(tmp_path / "kit", KIT)
    out = run("pipe", "import", str(kit), "-p", folder)
    assert "cli_kit/flow" in out
    out = run("pipe", "start", "cli_kit/flow", "--name", "f", "--wait", "-p", folder, code=1)
    assert "failed" in out and "ZeroDivisionError: broken on purpose" in out
    assert "Traceback" in out
    log = run("pipe", "logs", "f", "--element", "work", "-p", folder)
    assert "about to fail" in log and "ZeroDivisionError" in log
    # debug re-runs it with its real inputs; without a debugger it reports the traceback
    out = run("pipe", "debug", "f", "work", "--no-pdb", "-p", folder, code=1)
    assert "work failed" in out and "broken on purpose" in out
    # with the debugger: pdb opens post mortem in the script's frame, its locals at hand
    result = runner.invoke(
        app, ["pipe", "debug", "f", "work", "-p", folder], input="p type(self).__name__\nq\n"
    )
    assert result.exit_code == 1 and "(Pdb)" in result.output and "'Bad'" in result.output
    # the service hands the traceback to any debugger; the real inputs are there
    from annoloop.pipeline import service

    seen = []
    service.debug_element(project, "f", "work", debugger=seen.append)
    frame = seen[0]
    while frame.tb_next is not None:
        frame = frame.tb_next
    script = frame.tb_frame.f_locals["self"]
    assert [ds.path for ds in script.inp.datasources] and script.iteration == 0
    # fix the script, import again, resume: the element runs again and the branch goes on
    (kit / "work.py").write_text(textwrap.dedent(FIXED))
    run("pipe", "import", str(kit), "--replace", "-p", folder)
    out = json.loads(run("pipe", "debug", "f", "work", "--json", "-p", folder))
    assert out["ok"] and not out["committed"] and out["counts"]["requests"] == len(project.images())
    assert len(project.work_items("f/Boxes")) == 0  # a debug run without --commit writes nothing
    out = json.loads(run("pipe", "resume", "f", "--wait", "--json", "-p", folder))
    work = next(e for e in out["elements"] if e["element"] == "work")
    assert work["state"] == "finished" and work["error"] is None
    assert len(project.work_items("f/Boxes")) == len(project.images())


def test_pause_stop_and_submit_from_a_file(project, folder, tmp_path):
    run("pipe", "start", "request_all", "--name", "s", "--set", "annotate.labels=[cat]",
        "-p", folder)  # fmt: skip
    out = json.loads(run("pipe", "pause", "s", "--json", "-p", folder))
    assert out["state"] == "paused"
    assert {e["state"] for e in out["elements"]} == {"paused"}
    out = json.loads(run("pipe", "stop", "s", "--json", "-p", folder))
    assert out["state"] == "stopped"
    out = json.loads(run("pipe", "resume", "s", "--wait", "--json", "-p", folder))
    assert out["state"] == "running"
    # play the annotator with a COCO file covering three images
    images = project.images().iloc[:3]
    records = [
        ImageRecord(file_name=str(loc), width=int(w), height=int(h))
        for loc, w, h in zip(images["location"], images["width"], images["height"], strict=True)
    ]
    ann = Annotations.from_boxes([0, 1, 2], [[0.5, 0.5, 0.2, 0.2]] * 3, [0, 0, 0])
    path = tmp_path / "done.json"
    save("coco", Dataset(images=records, labels=["cat"], annotations=ann), path)
    report = json.loads(run("pipe", "submit", "s/Annotate", "coco", str(path), "--user", "ann",
                            "--json", "-p", folder))  # fmt: skip
    assert report["items_done"] == 3 and report["annotations_added"] == 3
    assert report["items_left_open"] == len(project.images()) - 3


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("pipe", "status", "nope"), 4, "nope"),
        (("pipe", "start", "no_such_template"), 4, "no_such_template"),
        (("pipe", "start", "request_all", "--set", "novalue"), 3, "--set #1"),
        (("pipe", "start", "request_all", "--set", "ghost.labels=[a]"), 3, "ghost.labels"),
        (("pipe", "start", "request_all", "--set", "annotate.kinds=[hexagon]"), 3, "kinds"),
        (("pipe", "start", "request_all", "--set", "x.y=[unclosed"), 3, "x.y"),
        (("pipe", "import", "/no/such/folder"), 4, "/no/such/folder"),
    ],
)
def test_bad_input_gets_a_clear_error_and_exit_code(project, folder, args, code, text):
    out = run(*args, "-p", folder, code=code)
    assert text in out
    assert json.loads(run("pipe", "list", "--json", "-p", folder)) == []
