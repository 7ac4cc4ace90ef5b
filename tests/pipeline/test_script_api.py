"""The Script API: inputs (datasources, to_df, img_annos), outputs (request_annos in all its
forms, broadcast to every connected task, proposals, annotations, visuals, exports), arguments,
paths, progress and logs; outputs are written once even when a job runs twice."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from annoloop.errors import AccessDenied, InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.pipeline import service
from annoloop.pipeline.engine import PipeEngine, run_pipe
from annoloop.pipeline.frames import LOST_COLUMNS
from annoloop.pipeline.humans import item_proposals
from annoloop.pipeline.inout import Input
from annoloop.pipeline.runner import run_script_job
from annoloop.pipeline.script import ScriptContext
from tests.pipeline.helpers import annotate_all, write_pipeline

TEMPLATE = """
    name: api
    elements:
      - {id: images, type: datasource}
      - {id: propose, type: script, script: propose.py, inputs: [images],
         arguments: {count: 3, mode: {value: "true", help: LOST style}}}
      - {id: boxes, type: annotask, name: Boxes, kinds: [bbox, label], labels: [cat, dog],
         inputs: [propose]}
      - {id: shapes, type: annotask, name: Shapes, kinds: [point, line, polygon],
         labels: [cat, dog], inputs: [propose]}
      - {id: read, type: script, script: read.py, inputs: [boxes]}
      - {id: plot, type: visual, inputs: [read]}
      - {id: files, type: export, inputs: [read]}
"""

PROPOSE = """
    from annoloop.pipeline import Script

    ARGUMENTS = {"from_module": {"value": 7, "help": "a LOST-style module argument"}}

    class Propose(Script):
        ARGUMENTS = {"count": 1, "unused": {"value": "x", "help": "default"}}

        def main(self):
            ids = self.inp.datasources[0].image_ids()
            for n, image_id in enumerate(ids.tolist()):
                self.outp.request_annos(
                    int(image_id),
                    annos=[[0.5, 0.5, 0.2, 0.2], [0.25, 0.75],
                           [[0.1, 0.1], [0.3, 0.2]], [[0.1, 0.1], [0.4, 0.1], [0.3, 0.4]]],
                    anno_types=["bbox", "point", "line", "polygon"],
                    anno_labels=[["cat"], "dog", None, ["cat", "dog"]],
                    img_labels=["dog"],
                    confidences=[0.9, 0.8, 0.7, 0.6],
                    meta={"n": n},
                    priority=float(n),
                )
                self.progress(n + 1, len(ids), "proposing")
            # the same image again: still one work item per task
            self.outp.request_annos(int(ids[0]))
            self.logger.info("count=%s mode=%s module=%s", self.get_arg("count"),
                             self.get_arg("mode"), self.get_arg("from_module"))
"""

READ = """
    from annoloop.pipeline import Script

    class Read(Script):
        def main(self):
            df = self.inp.to_df()
            self.logger.info("rows=%d", len(df))
            path = self.get_path("table.csv")
            df[["img_id", "anno_dtype"]].to_csv(path, index=False)
            self.outp.add_data_export(path)
            self.outp.add_visual_output(html="<b>%d rows</b>" % len(df))
            image = int(df["img_id"].iloc[0])
            self.outp.add_annos(image, annos=[[0.5, 0.5, 0.1, 0.1]], anno_types=["bbox"],
                                anno_labels=["cat"], confidences=[0.5])
"""


@pytest.fixture()
def api_pipe(project, tmp_path):
    folder = write_pipeline(
        tmp_path / "api", {"pipe.yaml": TEMPLATE, "propose.py": PROPOSE, "read.py": READ}
    )
    service.start_pipe(project, folder / "pipe.yaml", "api")
    return folder


def test_requests_are_broadcast_with_proposals_filtered_by_the_task_kinds(
    project, executor, api_pipe, image_ids
):
    status = run_pipe(project, "api", executor)
    n = len(image_ids)
    for task in ("boxes", "shapes"):
        assert status.element(task).items["open"] == n
    boxes = project.work_items("api/Boxes").sort_values("image_id")
    assert boxes["priority"].tolist() == [float(i) for i in range(n)]
    assert boxes["meta"].iloc[1]["meta"] == {"n": 1}
    assert boxes["meta"].iloc[0]["element"] == "propose"
    item = project.next_item("api/Boxes", "u")
    props = item_proposals(project, item)
    assert sorted(Kind(k).label for k in props.kind) == ["bbox", "label"]
    cat, dog = project.label_ids(["cat", "dog"]).tolist()
    by_kind = {Kind(int(k)).label: int(lab) for k, lab in zip(props.kind, props.label, strict=True)}
    assert by_kind == {"bbox": cat, "label": dog}
    item = project.next_item("api/Shapes", "u")
    props = item_proposals(project, item)
    assert sorted(Kind(k).label for k in props.kind) == ["line", "point", "polygon"]
    poly = props[props.kind == int(Kind.POLYGON)]
    np.testing.assert_allclose(poly.shape[0][0][0], [[0.1, 0.1], [0.4, 0.1], [0.3, 0.4]])
    assert int(poly.label[0]) == cat  # the first of a LOST label list
    np.testing.assert_allclose(poly.box[0], [0.25, 0.25, 0.3, 0.3])
    np.testing.assert_allclose(props.confidence[props.kind == int(Kind.POINT)], [0.8])
    text = "\n".join(r.message for r in service.logs(project, "api", element="propose"))
    assert "count=3 mode=true module=7" in text
    assert "kept the first of ['cat', 'dog']" in text
    propose = status.element("propose")
    assert (propose.progress_done, propose.progress_total) == (n, n)


def test_to_df_img_annos_and_annotations_after_humans_worked(
    project, executor, api_pipe, image_ids
):
    run_pipe(project, "api", executor)
    junk = {int(image_ids[-1])}  # the highest priority: among the first three claimed
    annotate_all(project, "api/Boxes", label="cat", junk=junk, limit=3)
    annotate_all(project, "api/Boxes", accept_proposals=True)
    annotate_all(project, "api/Shapes", accept_proposals=True)
    status = run_pipe(project, "api", executor)
    assert status.finished, [(e.element, e.state, e.message, e.error) for e in status.elements]
    engine = PipeEngine(project, "api")
    request = engine.script_request("read", job_id=0)
    ctx = ScriptContext(project, request, logging.getLogger("test"))
    inp = Input(ctx)
    df = inp.to_df()
    assert list(df.columns) == LOST_COLUMNS
    n = len(image_ids)
    # 3 items with one human box (one of them junk: no box), the others took the proposals
    junked = df[df["img_is_junk"]]
    assert len(junked) == 1 and junked["anno_uid"].isna().all()
    boxes = df[df["anno_dtype"] == "bbox"]
    assert len(boxes) == n - 1
    assert (boxes["anno_style"] == "xcycwh").all() and (boxes["anno_format"] == "rel").all()
    assert all(isinstance(v, list) and len(v) == 4 for v in boxes["anno_data"])
    assert set(boxes["anno_lbl"].map(tuple)) == {("cat",)}
    accepted = df[df["img_lbl"].map(len) > 0]  # items that took the image-label proposal
    assert set(accepted["img_lbl"].map(tuple)) == {("dog",)}
    assert (df["img_task"] == "api/Boxes").all()
    assert df["img_path"].map(lambda p: p.startswith(str(project.media.local_path()))).all()
    assert set(df["img_state"]) == {"done", "junk"}
    assert df["img_iteration"].eq(0).all()
    assert inp.to_vec("img_id") == df["img_id"].tolist()
    assert len(inp.to_vec(["img_id", "anno_dtype"])[0]) == 2
    images = list(inp.img_annos)
    assert len(images) == n
    with_boxes = [i for i in images if i.bbox_annos]
    assert len(with_boxes) == n - 1
    assert with_boxes[0].bbox_annos[0].bbox == with_boxes[0].get_anno_vec("bbox")[0]
    assert len(list(inp.twod_annos)) == n - 1
    ann = inp.annotations()
    assert len(ann) == len(project.annotations(task="api/Boxes"))
    assert len(inp.annotations(iteration=1)) == 0
    # the read script ran too: its export, visual and annotation
    files = service.results(project, "api", "files")
    assert len(files) == 1 and files[0]["location"].endswith("read/table.csv")
    assert pd.read_csv(files[0]["location"].removeprefix("file://")).shape[0] == len(df)
    assert service.results(project, "api", "plot")[0]["html"] == f"<b>{len(df)} rows</b>"
    made = project.annotations(source=f"model:pipe1-read@job{status.element('read').job_id}")
    assert len(made) == 1 and made["label"].iloc[0] == "cat" and made["confidence"].iloc[0] == 0.5


def test_a_job_that_runs_twice_writes_once(project, executor, api_pipe):
    engine = PipeEngine(project, "api", executor)
    try:
        engine.step()  # datasource, then the propose job
        while engine._futures:
            engine.wait(0.1)
            engine.step()
    finally:
        engine.close()
    job_id = service.pipe_status(project, "api").element("propose").job_id
    items = len(project.work_items())
    proposals = len(item_proposals(project, project.work_items()["id"].iloc[0]))
    # as if Dask re-ran the task on another worker after the first one died post-commit
    request = project.job(job_id)["spec"]
    request["store"] = engine.store.model_dump()
    result = run_script_job(request)
    assert result.ok and not result.committed and result.message == "already done"
    assert len(project.work_items()) == items
    assert len(item_proposals(project, project.work_items()["id"].iloc[0])) == proposals


BULK = """
    import numpy as np
    import pandas as pd
    from annoloop.geometry.annotations import Annotations
    from annoloop.pipeline import Script

    class Bulk(Script):
        def main(self):
            ids = self.inp.datasources[0].image_ids()
            props = Annotations.from_boxes(ids[:2], [[0.5, 0.5, 0.1, 0.1]] * 2,
                                           self.project.label_ids(["cat"])[0], [0.3, 0.4])
            self.outp.request_annos(ids[:3], priority=[3.0, 2.0, 1.0], proposals=props)
            frame = pd.DataFrame({
                "img_path": [self.get_arg("extra")] * 2,
                "anno_dtype": ["bbox", "point"],
                "anno_data": [[0.2, 0.2, 0.1, 0.1], [0.9, 0.9]],
                "anno_lbl": [["cat"], "cat"],
            })
            self.outp.request_annos(frame)
"""


def test_bulk_requests_from_arrays_and_frames_add_new_images(project, executor, tmp_path, photos):
    extra = tmp_path / "outside" / "new.png"
    extra.parent.mkdir()
    extra.write_bytes(photos[0].read_bytes())
    folder = write_pipeline(
        tmp_path / "bulk",
        {
            "pipe.yaml": f"""
                name: bulk
                elements:
                  - {{id: images, type: datasource}}
                  - {{id: bulk, type: script, script: bulk.py, inputs: [images],
                     arguments: {{extra: "{extra}"}}}}
                  - {{id: boxes, type: annotask, name: Boxes, kinds: [bbox, point],
                     labels: [cat], inputs: [bulk]}}
            """,
            "bulk.py": BULK,
        },
    )
    n_before = len(project.images())
    service.start_pipe(project, folder / "pipe.yaml", "bulk")
    status = run_pipe(project, "bulk", executor)
    assert status.element("bulk").state == "finished", status.element("bulk").error
    assert len(project.images()) == n_before + 1  # the new file was added
    items = project.work_items("bulk/Boxes").sort_values("id")
    assert len(items) == 4
    assert items["priority"].tolist()[:3] == [3.0, 2.0, 1.0]
    new_item = items.iloc[-1]
    props = item_proposals(project, int(new_item["id"]))
    assert sorted(Kind(k).label for k in props.kind) == ["bbox", "point"]
    first = item_proposals(project, int(items.iloc[0]["id"]))
    np.testing.assert_allclose(first.confidence, [0.3])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            "self.outp.request_annos(ids[0], annos=[[0.1, 0.1]], anno_types=[])",
            r"request_annos in element 'bad': annos has 1 entries but anno_types has 0",
        ),
        (
            "self.outp.request_annos(ids[0], annos=[[0.1, 0.1]], anno_types=['point'],"
            " anno_labels=['zebra'])",
            r"annos\[0\]: unknown label 'zebra'",
        ),
        (
            "self.outp.request_annos(ids[0], annos=[[1.5, 0.1]], anno_types=['point'])",
            r"relative to the image size",
        ),
        (
            "self.outp.request_annos(ids[0], annos=[[0.1, 0.1, 0, 0.1]], anno_types=['bbox'])",
            r"positive width",
        ),
        (
            "self.outp.request_annos(ids[0], annos=[[0.1]], anno_types=['blob'])",
            r"unknown annotation type 'blob'",
        ),
        ("self.outp.request_annos(ids[0], frame_n=3)", r"frame_n and video_path go together"),
        ("self.outp.request_annos(3.5)", r"an image is an id, a path"),
        ("self.outp.request_annos(10**9)", r"no image"),
        ("self.outp.request_annos('/nowhere/x.png')", r"nowhere"),
        ("self.get_arg('nope')", r"unknown argument 'nope' \(arguments: none\)"),
        ("self.get_path('../../escape.txt')", r"escape"),
        ("self.outp.request_annos(ids[:2], priority=[1.0])", r"priority has 1 values for 2"),
    ],
)
def test_script_errors_name_the_call_and_fail_the_element(project, executor, tmp_path, call, match):
    folder = write_pipeline(
        tmp_path / "bad",
        {
            "pipe.yaml": """
                name: bad
                elements:
                  - {id: images, type: datasource}
                  - {id: bad, type: script, script: bad.py, inputs: [images]}
                  - {id: boxes, type: annotask, name: Boxes, kinds: [bbox, point], labels: [cat],
                     inputs: [bad]}
            """,
            "bad.py": f"""
                from annoloop.pipeline import Script

                class Bad(Script):
                    def main(self):
                        ids = self.inp.datasources[0].image_ids()
                        {call}
            """,
        },
    )
    service.start_pipe(project, folder / "pipe.yaml", "bad")
    status = run_pipe(project, "bad", executor)
    bad = status.element("bad")
    assert bad.state == "failed"
    assert len(project.work_items()) == 0
    import re

    assert re.search(match, bad.error + bad.traceback), bad.error


def test_get_path_contexts(project, executor, tmp_path):
    folder = write_pipeline(
        tmp_path / "paths",
        {
            "pipe.yaml": """
                name: paths
                elements:
                  - {id: images, type: datasource}
                  - {id: p, type: script, script: p.py, inputs: [images]}
                  - {id: out, type: export, inputs: [p]}
            """,
            "static.txt": "hello\n",
            "p.py": """
                from pathlib import Path
                from annoloop.pipeline import Script

                class P(Script):
                    def main(self):
                        Path(self.get_path("a.txt")).write_text("instance")
                        Path(self.get_path("shared/b.txt", context="pipe")).write_text("pipe")
                        text = Path(self.get_path("static.txt", context="static")).read_text()
                        self.outp.add_data_export(self.get_path("a.txt"))
                        self.logger.info("static says %s", text.strip())
            """,
        },
    )
    service.start_pipe(project, folder / "pipe.yaml", "paths")
    status = run_pipe(project, "paths", executor)
    assert status.finished, status.element("p").error
    run_folder = project.runs.local_path() / "pipes" / "1-paths"
    assert (run_folder / "p" / "a.txt").read_text() == "instance"
    assert (run_folder / "shared" / "b.txt").read_text() == "pipe"
    assert any("static says hello" in r.message for r in service.logs(project, "paths"))


def test_a_script_outside_a_pipe_says_how_to_run_it():
    from annoloop.pipeline import Script

    with pytest.raises(InvalidInput, match="runs inside a pipe"):
        Script()
    with pytest.raises(AccessDenied):
        from annoloop.storage import Location

        Location.parse("/tmp").join("../etc")


def test_annotations_helper_roundtrip_types():
    ann = Annotations.from_boxes([1], [[0.5, 0.5, 0.1, 0.1]], [2])
    assert len(ann) == 1
