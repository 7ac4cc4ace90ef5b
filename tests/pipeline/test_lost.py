"""LOST compatibility: LOST-style scripts run with only their import changed, inside a pipe
defined in LOST's JSON format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from annoloop.compat.lost import lost_template, lost_value, script
from annoloop.errors import InvalidInput
from annoloop.pipeline import service
from annoloop.pipeline.engine import run_pipe
from annoloop.pipeline.humans import item_proposals
from annoloop.pipeline.projects import read_pipeline
from tests.pipeline.helpers import annotate_all

EXAMPLE = Path(__file__).parent / "lost_example"


def test_lost_values_convert_like_lost():
    assert lost_value("true") is True and lost_value("No") is False
    assert lost_value("-") is None and lost_value("[]") is None
    assert lost_value("['.jpg', '.png']") == [".jpg", ".png"]
    assert lost_value("3") == 3 and lost_value("annos.csv") == "annos.csv"
    assert lost_value(5) == 5
    assert issubclass(script.Script, __import__("annoloop.pipeline").pipeline.Script)


def test_the_lost_template_converts():
    data = json.loads((EXAMPLE / "lost_pipe.json").read_text())
    tmpl = lost_template(data, name="lost_pipe", datasources={0: "/data/images"})
    by_id = {el.id: el for el in tmpl.elements}
    assert by_id["datasource"].location == "/data/images"
    assert by_id["annotask"].kinds == ["bbox"]
    assert by_id["export_csv"].inputs == ["annotask"]
    assert by_id["export"].type == "export" and by_id["export"].inputs == ["export_csv"]
    assert by_id["loop"].jump == "request_annos" and by_id["loop"].max_iterations == 4
    with pytest.raises(InvalidInput, match=r"elements\[1\]"):
        lost_template({"elements": [{"peN": 0, "datasource": {}}, {"peN": "x"}]})
    with pytest.raises(InvalidInput, match="peJumpId"):
        lost_template({"elements": [{"peN": 0, "loop": {"peJumpId": 9}}]})


def test_a_lost_pipeline_runs_with_only_the_import_changed(project, executor, tmp_path, photo_dir):
    folder = tmp_path / "lost"
    shutil.copytree(EXAMPLE, folder)
    assert read_pipeline(folder).templates["lost_pipe"].element("loop").max_iterations == 4
    data = json.loads((folder / "lost_pipe.json").read_text())
    tmpl = lost_template(data, name="lost_pipe", datasources={0: str(photo_dir)})
    project.add_label("object")
    before = len(project.images())
    status = service.start_pipe(project, tmpl, "lost", executor, files=folder)
    request = status.element("request_annos")
    assert request.state == "finished", request.error
    n_files = len(list(photo_dir.iterdir()))
    # the folder's images were added to the project (not copied) and requested with a proposal
    assert len(project.images()) == before + n_files
    task = status.element("annotask").task
    assert status.element("annotask").items["open"] == n_files
    item = project.next_item(task, "ann")
    props = item_proposals(project, item)
    assert len(props) == 1 and props.box[0].tolist() == [0.5, 0.5, 0.3, 0.3]
    project.release_item(item.id, "ann")
    for _ in range(3):
        annotate_all(project, task, accept_proposals=True)
        status = run_pipe(project, "lost", executor)
        if status.finished:
            break
    assert status.finished, [(e.element, e.state, e.error) for e in status.elements]
    assert status.element("loop").loop_count == 1  # broken in the second round
    exports = service.results(project, "lost", "export")
    assert [Path(r["location"]).name for r in exports] == ["0_annos.csv", "1_annos.csv"]
    second = pd.read_csv(exports[1]["location"].removeprefix("file://"))
    assert len(second) == 2 * n_files  # both rounds' boxes, one per image each
    assert set(second["img_iteration"]) == {0, 1}
    log = "\n".join(r.message for r in service.logs(project, "lost"))
    assert "Requested annos for:" in log and "Wrote csv file" in log


def test_a_lost_pipeline_project_is_importable(project, tmp_path):
    imported = service.import_pipeline(project, EXAMPLE, name="lost_example")
    assert list(imported.templates) == ["lost_pipe"]
    assert "lost_example/lost_pipe" in service.list_templates(project)
