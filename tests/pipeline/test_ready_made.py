"""The ready-made templates run end to end on the bundled photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.pipeline import service
from annoloop.pipeline.engine import run_pipe
from annoloop.pipeline.humans import item_proposals
from annoloop.pipeline.messages import ExportJobRequest, ScriptJobRequest, ScriptJobResult
from tests.pipeline.helpers import annotate_all


def test_propose_then_review(project, executor):
    status = service.start_pipe(project, "propose_review", "pr", executor)
    assert status.element("propose").state == "finished", status.element("propose").error
    n = len(project.images())
    assert status.element("review").items["open"] == n
    proposed = [len(item_proposals(project, i)) for i in project.work_items("pr/Review")["id"]]
    assert sum(proposed) > n  # the blob proposer finds objects on most photos
    annotate_all(project, "pr/Review", accept_proposals=True)
    status = run_pipe(project, "pr", executor)
    assert status.finished
    doc = json.loads(Path(service.results(project, "pr", "export")[0]["location"][7:]).read_text())
    assert len(doc["annotations"]) == sum(proposed)
    assert {c["name"] for c in doc["categories"]} == {"object"}


def test_two_stages_boxes_only_on_the_chosen_images(project, executor, image_ids):
    service.start_pipe(
        project, "two_stage", "ts", executor,
        overrides={"classify.labels": ["animal", "other"], "choose.arguments.select": ["animal"]},
    )  # fmt: skip
    animal, other = project.label_ids(["animal", "other"]).tolist()
    chosen = set(image_ids[:3].tolist())
    while (item := project.next_item("ts/Classify", "ann")) is not None:
        label = animal if item.image_id in chosen else other
        ann = Annotations.from_boxes([item.image_id], [[np.nan] * 4], [label], kind=Kind.LABEL)
        project.submit(item.id, "ann", ann)
    status = run_pipe(project, "ts", executor)
    assert status.element("choose").state == "finished", status.element("choose").error
    boxes = project.work_items("ts/Boxes")
    assert set(boxes["image_id"]) == chosen
    annotate_all(project, "ts/Boxes", label="animal")
    assert run_pipe(project, "ts", executor).finished


def test_the_point_classification_loop(project, executor):
    status = service.start_pipe(
        project, "point_loop", "pl", executor,
        overrides={"sample.arguments.points": 5, "loop.max_iterations": 2},
    )  # fmt: skip
    rounds = 0
    while not status.finished and rounds < 4:
        rounds += 1
        # the "human": points in the upper half are background, the others object
        while (item := project.next_item("pl/Points", "ann")) is not None:
            props = item_proposals(project, item)
            names = np.where(props.box[:, 1] < 0.5, "background", "object")
            props.label = project.label_ids(list(names))
            props.confidence[:] = np.nan
            props.data = {}
            project.submit(item.id, "ann", props)
        status = run_pipe(project, "pl", executor)
    assert status.finished, [(e.element, e.state, e.error) for e in status.elements]
    n = len(project.images())
    items = project.work_items("pl/Points")
    assert items.groupby("iteration").size().to_dict() == {0: n, 1: n}
    second = items[items["iteration"] == 1]["id"].iloc[0]
    assert (item_proposals(project, int(second)).label >= 0).all()  # the model proposed labels
    shown = service.results(project, "pl", "report")
    assert [r["iteration"] for r in shown] == [0, 1] and "agreement" in shown[1]["html"]
    table = pd.read_csv(service.results(project, "pl", "export")[0]["location"][7:])
    assert len(table) == 2 * 5 * n


def test_export_only_writes_every_annotation(project, executor, image_ids):
    label = project.add_label("thing")
    ann = Annotations.from_boxes(image_ids, [[0.5, 0.5, 0.2, 0.2]] * len(image_ids), label)
    project.add_annotations(ann)
    status = service.start_pipe(
        project, "export_only", "ex", executor,
        overrides={"export.format": "csv", "export.destination": "all.csv"},
    )  # fmt: skip
    assert status.finished
    result = service.results(project, "ex", "export")[0]
    assert result["data"]["annotations"] == len(image_ids)
    assert len(pd.read_csv(result["location"][7:])) == len(image_ids)


def test_messages_round_trip_through_json():
    for cls in (ScriptJobRequest, ScriptJobResult, ExportJobRequest):
        example = cls.example()
        assert cls.model_validate_json(example.model_dump_json()) == example
    persisted = ScriptJobRequest.example().persisted()
    assert "store" not in persisted  # the database URL (maybe with a password) is not stored
