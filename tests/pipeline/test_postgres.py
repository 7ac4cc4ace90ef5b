"""The same pipes on PostgreSQL: raw SQL, bulk writes and columnar reads on the other driver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from annoloop.pipeline import service
from annoloop.pipeline.engine import PipeEngine, run_pipe
from annoloop.pipeline.humans import item_proposals, submit_from_file
from annoloop.pipeline.inout import Input
from annoloop.pipeline.script import ScriptContext
from annoloop.store import Project
from tests.pipeline.helpers import annotate_all, write_pipeline
from tests.pipeline.test_script_api import PROPOSE, READ, TEMPLATE

pytestmark = pytest.mark.postgres


@pytest.fixture()
def pg_project(tmp_path: Path, photos: list[Path], postgres_url: str) -> Iterator[Project]:
    with Project.init(tmp_path / "pg", database_url=postgres_url, name="pg") as p:
        p.add_images(photos)
        yield p


def test_pipes_on_postgres(pg_project, executor, tmp_path):
    import logging

    project = pg_project
    folder = write_pipeline(
        tmp_path / "api", {"pipe.yaml": TEMPLATE, "propose.py": PROPOSE, "read.py": READ}
    )
    service.start_pipe(project, folder / "pipe.yaml", "api")
    status = run_pipe(project, "api", executor)
    assert status.element("propose").state == "finished", status.element("propose").error
    n = len(project.images())
    item = project.next_item("api/Shapes", "u")
    assert len(item_proposals(project, item)) == 3
    project.release_item(item.id, "u")
    meta = project.work_items("api/Boxes").sort_values("image_id")["meta"].iloc[1]
    assert meta["meta"] == {"n": 1}
    annotate_all(project, "api/Boxes", accept_proposals=True)
    annotate_all(project, "api/Shapes", accept_proposals=True)
    status = run_pipe(project, "api", executor)
    assert status.finished, [(e.element, e.state, e.error) for e in status.elements]
    request = PipeEngine(project, "api").script_request("read", job_id=0)
    df = Input(ScriptContext(project, request, logging.getLogger("t"))).to_df()
    assert (df["anno_dtype"] == "bbox").sum() == n
    assert set(df["img_lbl"].map(tuple)) == {("dog",)}
    logs = service.logs(project, "api")
    assert any("count=3" in r.message for r in logs)


def test_submit_from_file_on_postgres(pg_project, executor, tmp_path):
    from annoloop.formats import save
    from tests.pipeline.test_humans import _dataset

    project = pg_project
    service.start_pipe(
        project, "request_all", "sv", executor, overrides={"annotate.labels": ["cat"]}
    )
    save("coco", _dataset(project, 3, 2), tmp_path / "x.json")
    report = submit_from_file(project, "sv/Annotate", "coco", tmp_path / "x.json", "alice")
    assert report.items_done == 3 and report.annotations_added == 6
