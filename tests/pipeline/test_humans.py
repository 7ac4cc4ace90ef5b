"""Humans before the server: annotations imported from a file close the matching open work
items (all or nothing); bad files are refused naming the image."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from annoloop.errors import InvalidInput, NotFound
from annoloop.formats import save
from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.pipeline import service
from annoloop.pipeline.engine import run_pipe
from annoloop.pipeline.humans import submit_from_file


@pytest.fixture()
def open_task(project, executor):
    service.start_pipe(
        project, "request_all", "sv", executor, overrides={"annotate.labels": ["cat", "dog"]}
    )
    return "sv/Annotate"


def _dataset(project, n_images, per_image, *, label="cat", kind=Kind.BBOX, names=None):
    images = project.images().iloc[:n_images]
    records = [
        ImageRecord(file_name=names[i] if names else loc, width=int(w), height=int(h))
        for i, (loc, w, h) in enumerate(
            zip(images["location"], images["width"], images["height"], strict=True)
        )
    ]
    rng = np.random.default_rng(1)
    n = n_images * per_image
    wh = rng.uniform(0.05, 0.2, size=(n, 2))
    centre = rng.uniform(0.25, 0.75, size=(n, 2))
    box = np.hstack([centre, wh]) if kind == Kind.BBOX else np.hstack([centre, np.zeros((n, 2))])
    ann = Annotations.from_boxes(
        image=np.repeat(np.arange(n_images), per_image), box=box, label=0, kind=kind
    )
    return Dataset(images=records, labels=[label], annotations=ann)


def test_a_coco_file_closes_the_matching_items(project, open_task, tmp_path, executor):
    path = tmp_path / "done.json"
    save("coco", _dataset(project, 4, 3), path)
    report = submit_from_file(project, open_task, "coco", path, "alice", time_spent=4.0)
    assert report.items_done == 4 and report.annotations_added == 12
    assert report.unmatched_images == [] and report.items_left_open == len(project.images()) - 4
    items = project.work_items(open_task)
    done = items[items["state"] == "done"]
    assert len(done) == 4 and set(done["locked_by"]) == {"alice"}
    ann = project.annotations(task=open_task)
    assert len(ann) == 12 and set(ann["author"]) == {"alice"} and set(ann["label"]) == {"cat"}
    assert set(ann["work_item_id"].astype(int)) == set(done["id"])
    # the rest from a second file, matched by base name only (another folder layout)
    rest = project.images().iloc[4:]
    names = [f"elsewhere/{loc.rsplit('/', 1)[-1]}" for loc in rest["location"]]
    ds = _dataset(project, len(project.images()), 1)
    ds.images = ds.images[4:]
    for rec, name in zip(ds.images, names, strict=True):
        rec.file_name = name
    ds.annotations = ds.annotations[ds.annotations.image >= 4]
    ds.annotations.image = ds.annotations.image - 4
    save("coco", ds, tmp_path / "rest.json")
    report = submit_from_file(project, open_task, "coco", tmp_path / "rest.json", "bob")
    assert report.items_done == len(rest) and report.items_left_open == 0
    status = run_pipe(project, "sv", executor)
    assert status.finished


def test_images_without_open_items_and_items_of_others_are_left_alone(project, open_task, tmp_path):
    item = project.next_item(open_task, "carol")
    locs = project.images().set_index("id")["location"]
    names = [locs[item.image_id], "not/in/the/project.png"]
    ds = _dataset(project, 2, 1, names=names)
    path = tmp_path / "x.json"
    save("coco", ds, path)
    report = submit_from_file(project, open_task, "coco", path, "alice")
    assert report.items_done == 0 and report.annotations_added == 0
    assert report.locked_by_others == [names[0]]
    assert report.unmatched_images == [names[1]]
    # the holder of the lock may import its own item
    report = submit_from_file(project, open_task, "coco", path, "carol")
    assert report.items_done == 1


def test_bad_files_are_refused_and_nothing_is_written(project, open_task, tmp_path):
    path = tmp_path / "points.json"
    save("coco", _dataset(project, 2, 2, kind=Kind.POINT), path)
    with pytest.raises(InvalidInput, match=r"points.json: image .*is a point, which task"):
        submit_from_file(project, open_task, "coco", path, "alice")
    path = tmp_path / "zebra.json"
    save("coco", _dataset(project, 2, 2, label="zebra"), path)
    with pytest.raises((InvalidInput, NotFound), match="zebra"):
        submit_from_file(project, open_task, "coco", path, "alice")
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [{"id": 1, "file_name": 3}], "annotations": "x"}')
    with pytest.raises(InvalidInput, match=r"broken\.json"):
        submit_from_file(project, open_task, "coco", broken, "alice")
    with pytest.raises(InvalidInput, match="user"):
        submit_from_file(project, open_task, "coco", path, "")
    outside = tmp_path / "outside.json"
    ds = _dataset(project, 1, 1)
    ds.annotations.box[0] = [0.99, 0.99, 0.5, 0.5]  # far outside the image
    outside.write_text(json.dumps(json.loads(_coco_text(ds, tmp_path))))
    with pytest.raises(InvalidInput):
        submit_from_file(project, open_task, "coco", outside, "alice")
    assert len(project.annotations()) == 0
    assert (project.work_items(open_task)["state"] == "open").all()


def _coco_text(ds, tmp_path):
    path = tmp_path / "tmp.json"
    save("coco", ds, path)
    return path.read_text()


def test_a_large_file_is_imported_in_one_go(project, open_task, tmp_path):
    n_images = len(project.images())
    path = tmp_path / "big.json"
    save("coco", _dataset(project, n_images, 2000), path)
    started = time.perf_counter()
    report = submit_from_file(project, open_task, "coco", path, "alice")
    elapsed = time.perf_counter() - started
    assert report.annotations_added == n_images * 2000 and report.items_done == n_images
    assert elapsed < 120  # generous: a safety net against per-row slowness, not a benchmark
