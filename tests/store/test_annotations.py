"""Annotations: every shape kind round-trips, filters, per-row data, row-named errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import rle_encode
from tests.store.helpers import add_records, boxes, every_kind


def test_every_kind_round_trips(project):
    images = add_records(project, 2)
    label = int(project.add_label("coral"))
    ann = every_kind(int(images[1]), label)
    ids = project.add_annotations(ann, author="ana", time_spent=2.5)
    assert len(ids) == 6 and (np.diff(ids) > 0).all()

    back = project.annotation_arrays()
    assert back.equals(ann)  # geometry, kinds, labels, confidences and shapes
    np.testing.assert_array_equal(back.data["id"], ids)
    assert back.data["source"].tolist() == ["human"] * 6
    assert back.data["author"].tolist() == ["ana"] * 6
    np.testing.assert_array_equal(back.data["task"], -1)

    df = project.annotations()
    assert df.columns.tolist()[:16] == [
        "id", "image_id", "task_id", "kind", "label_id", "label", "x", "y", "w", "h",
        "confidence", "shape", "source", "author", "time_spent", "created_at",
    ]  # fmt: skip
    assert df["kind"].tolist() == ["label", "point", "bbox", "line", "polygon", "mask"]
    assert df["label"].tolist()[:2] == ["coral", "coral"] and pd.isna(df["label"][2])
    assert df["label_id"].isna().tolist() == [False, False, True, False, False, False]
    assert df["task_id"].isna().all()
    assert df[["x", "y", "w", "h"]].iloc[0].isna().all()  # image label: no geometry
    assert df["shape"][2] is None
    assert df["shape"][5] == ann.shape[5]
    assert (df["time_spent"] == 2.5).all()
    assert str(df["created_at"].dtype).startswith("datetime64") and df["created_at"].dt.tz


def test_filters_take_values_lists_names_and_ids(project):
    images = add_records(project, 4)
    fish, coral = project.add_labels(["fish", "coral"])
    project.add_task("count")
    ann = boxes(images, np.array([fish, coral]), 200, seed=1)
    project.add_annotations(ann[:100], task="count")
    project.add_annotations(ann[100:], source="model:yolo@3")
    df = project.annotations()
    assert len(df) == 200
    assert len(project.annotations(task="count")) == 100
    assert len(project.annotations(task=project.task_id("count"))) == 100
    assert len(project.annotations(source="model:yolo@3")) == 100
    assert len(project.annotations(source=["human", "model:yolo@3"])) == 200
    n_fish = int((ann.label == fish).sum())
    assert len(project.annotations(label="fish")) == n_fish
    assert len(project.annotations(label=[int(fish)])) == n_fish
    assert len(project.annotations(label=["fish", coral])) == 200
    n_img = int((ann.image == images[0]).sum())
    assert len(project.annotations(image=int(images[0]))) == n_img
    assert len(project.annotations(image=images[:2].tolist())) == int(
        np.isin(ann.image, images[:2]).sum()
    )
    assert len(project.annotations(kind="bbox", label="fish", task="count")) == int(
        (ann.label[:100] == fish).sum()
    )
    assert project.annotations(kind=["point", "polygon"]).empty
    with pytest.raises(NotFound):
        project.annotations(label="whale")
    with pytest.raises(NotFound):
        project.annotations(task="nope")
    with pytest.raises(InvalidInput):
        project.annotations(kind="hexagon")


def test_many_image_ids_in_a_filter(sqlite_project):
    images = add_records(sqlite_project, 1500)
    label = sqlite_project.add_labels(["x"])
    sqlite_project.add_annotations(boxes(images, label, 3000))
    picked = images[::2]
    df = sqlite_project.annotations(image=picked)  # more ids than SQL placeholders
    assert set(df["image_id"]) <= set(picked.tolist()) and len(df) > 1000


def test_per_row_data_overrides_keywords(project):
    images = add_records(project, 2)
    label = project.add_labels(["a"])
    ann = boxes(images, label, 4)
    ann.data = {
        "source": np.array(["human", "model:m@1", None, "model:m@2"], dtype=object),
        "author": np.array(["x", None, "y", ""], dtype=object),
        "time_spent": np.array([1.0, np.nan, 3.0, 4.0]),
    }
    project.add_annotations(ann, author="default")
    df = project.annotations()
    assert df["source"].tolist() == ["human", "model:m@1", "human", "model:m@2"]
    assert df["author"].tolist()[0] == "x" and df["author"].isna().tolist() == [
        False, True, False, True,
    ]  # fmt: skip
    np.testing.assert_array_equal(df["time_spent"], [1.0, np.nan, 3.0, 4.0])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.image.__setitem__(7, 999), "row 7: no image with id 999"),
        (lambda a: a.label.__setitem__(3, 12345), "row 3: no label with id 12345"),
        (lambda a: a.label.__setitem__(2, -7), "row 2: label id -7"),
        (lambda a: a.kind.__setitem__(5, 42), "row 5: unknown shape kind code 42"),
        (lambda a: a.box.__setitem__(4, [0.95, 0.5, 0.5, 0.2]), "row 4"),
        (lambda a: a.box.__setitem__(6, [np.nan, 0.5, 0.5, 0.2]), "row 6"),
        (lambda a: a.box.__setitem__(1, [0.5, 0.5, 0.0, 0.2]), "row 1"),
        (lambda a: a.confidence.__setitem__(8, np.inf), "row 8: confidence is infinite"),
    ],
)
def test_bad_rows_are_named_and_nothing_is_written(project, change, message):
    images = add_records(project, 3)
    label = project.add_labels(["a"])
    ann = boxes(images, label, 10)
    change(ann)
    with pytest.raises(InvalidInput, match=message):
        project.add_annotations(ann)
    assert project.annotations().empty


def test_bad_sources_and_shapes(sqlite_project):
    images = add_records(sqlite_project, 1)
    ann = boxes(images, sqlite_project.add_labels(["a"]), 3)
    for source in ("", "robot", "model:", "model:a b@1"):
        with pytest.raises(InvalidInput, match="human"):
            sqlite_project.add_annotations(ann, source=source)
    with pytest.raises(InvalidInput, match="at most 200"):
        sqlite_project.add_annotations(ann, author="x" * 201)
    ann.data["author"] = np.array(["ok", 5, "ok"], dtype=object)
    with pytest.raises(InvalidInput, match="author"):
        sqlite_project.add_annotations(ann)
    bad_polygon = Annotations(
        image=images[:1], kind=[Kind.POLYGON], label=[-1], box=[[0.5, 0.5, 0.1, 0.1]],
        confidence=[np.nan], shape=[[[np.array([[0.1, 0.1], [0.2, 0.2]])]]],
    )  # fmt: skip
    with pytest.raises(InvalidInput, match=r"row 0.*needs at least 3"):
        sqlite_project.add_annotations(bad_polygon)
    wrong_mask = every_kind(int(images[0]), -1)[[5]]
    wrong_mask.shape[0] = rle_encode(np.ones((50, 50), np.uint8))  # the image is 100 x 100
    with pytest.raises(InvalidInput, match="mask size"):
        sqlite_project.add_annotations(wrong_mask)
    assert sqlite_project.annotations().empty
    # validate=False skips geometry checks, not the store's (images, labels)
    far = boxes(images, np.array([-1]), 1)
    far.box[0] = [2.0, 2.0, 0.1, 0.1]
    assert len(sqlite_project.add_annotations(far, validate=False)) == 1


def test_empty_and_delete(project):
    images = add_records(project, 2)
    assert project.add_annotations(Annotations.empty()).size == 0
    assert project.annotations().empty
    assert len(project.annotation_arrays()) == 0
    ids = project.add_annotations(boxes(images, np.array([-1]), 10))
    assert project.delete_annotations([*ids[:4].tolist(), 99999]) == 4
    assert project.annotations()["id"].tolist() == ids[4:].tolist()
    assert project.delete_annotations([]) == 0


def test_bulk_insert_and_read_back_exactly(project):
    images = add_records(project, 300)
    labels = project.add_labels([f"c{i}" for i in range(7)])
    ann = boxes(images, labels, 50_000, seed=3)
    ann.confidence = np.random.default_rng(0).random(len(ann)).astype(np.float32)
    ids = project.add_annotations(ann, source="model:det@1")
    back = project.annotation_arrays(source="model:det@1")
    np.testing.assert_array_equal(back.data["id"], ids)
    assert back.equals(ann, atol=0)  # float64 boxes and float32 confidences exact
