"""Tasks and work items: request, claim, submit, release, priorities, lock expiry."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from annoloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.store.schema import work_item
from tests.store.helpers import add_records


def _expire(project, item_id: int) -> None:
    """Move an item's lock into the past, as if its annotator walked away."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    with project.engine.begin() as conn:
        conn.execute(work_item.update().where(work_item.c.id == item_id).values(locked_until=past))


def _box(label: int = -1, image: int = -1) -> Annotations:
    return Annotations.from_boxes(image=[image], box=[[0.5, 0.5, 0.2, 0.2]], label=[label])


def test_tasks(project):
    a = project.add_label("a")
    tid = project.add_task(
        "boxes", instructions="Draw boxes", kinds=["bbox", "point"], labels=["a"]
    )
    with pytest.raises(AlreadyExists):
        project.add_task("boxes")
    with pytest.raises(InvalidInput):
        project.add_task("shapes", kinds=["hexagon"])
    df = project.tasks()
    assert df.loc[0, "name"] == "boxes" and df.loc[0, "kinds"] == ["bbox", "point"]
    assert df.loc[0, "labels"] == [a] and bool(df.loc[0, "show_proposals"])
    assert project.task_id("boxes") == tid == project.task_id(tid)
    with pytest.raises(NotFound):
        project.task_id("nope")


def test_lifecycle_open_locked_done_junk(project):
    images = add_records(project, 3)
    label = int(project.add_label("a"))
    project.add_task("t", kinds=["bbox"])
    assert project.request_annotations(images, "t") == 3
    assert project.request_annotations(images, ["t"]) == 0  # idempotent
    assert project.request_annotations(images, "t", iteration=1) == 3  # a new round

    item = project.next_item("t", "ann")
    assert item.state == "locked" and item.locked_by == "ann"
    assert item.locked_until > dt.datetime.now(dt.UTC)
    assert project.next_item("t", "ann").id == item.id  # the user gets their item back
    ids = project.submit(item.id, "ann", _box(label), time_spent=4.0)
    df = project.annotations(task="t")
    assert df["id"].tolist() == ids.tolist()
    assert df.loc[0, "image_id"] == item.image_id and df.loc[0, "author"] == "ann"
    assert df.loc[0, "work_item_id"] == item.id and df.loc[0, "time_spent"] == 4.0

    second = project.next_item("t", "ann")
    assert second.id != item.id
    assert project.submit(second.id, "ann", None, state="junk").size == 0
    items = project.work_items("t").set_index("id")
    assert items.loc[item.id, "state"] == "done" and items.loc[second.id, "state"] == "junk"
    assert items.loc[item.id, "meta"] == {"time_spent": 4.0}
    assert items.loc[item.id, "finished_at"] is not None
    assert len(project.work_items("t", state="open")) == 4
    assert project.stats()["work_items"] == {"t": {"done": 1, "junk": 1, "open": 4}}


def test_priority_order_and_exhaustion(project):
    images = add_records(project, 4)
    project.add_task("t")
    project.request_annotations(images, "t", priority=[0.1, 0.9, 0.5, 0.9])
    order = []
    while (item := project.next_item("t", f"u{len(order)}")) is not None:
        order.append(item.image_id)
    # highest priority first, the older item first among equals
    assert order == [images[1], images[3], images[2], images[0]]
    assert project.next_item("t", "late") is None


def test_set_priorities_reorders(project):
    images = add_records(project, 3)
    project.add_task("t")
    project.request_annotations(images, "t")
    items = project.work_items("t")["id"].to_numpy()
    project.set_priorities(items, [1.0, 3.0, 2.0])
    assert project.next_item("t", "u").id == items[1]
    with pytest.raises(NotFound):
        project.set_priorities([999], [1.0])
    with pytest.raises(InvalidInput):
        project.set_priorities(items, np.nan)


def test_expired_lock_is_claimable_and_a_stale_submit_conflicts(project):
    images = add_records(project, 1)
    project.add_task("t")
    project.request_annotations(images, "t")
    item = project.next_item("t", "slow")
    assert project.next_item("t", "fast") is None  # locked
    _expire(project, item.id)
    taken = project.next_item("t", "fast")
    assert taken.id == item.id and taken.locked_by == "fast"
    with pytest.raises(Conflict, match="locked by another user"):
        project.submit(item.id, "slow", _box())
    assert project.annotations().empty  # the stale submit wrote nothing
    project.submit(item.id, "fast", _box())
    with pytest.raises(Conflict, match="is done"):
        project.submit(item.id, "fast", _box())


def test_expired_lock_still_counts_while_nobody_took_it(project):
    images = add_records(project, 1)
    project.add_task("t")
    project.request_annotations(images, "t")
    item = project.next_item("t", "slow")
    _expire(project, item.id)
    assert len(project.submit(item.id, "slow", _box())) == 1


def test_release(project):
    images = add_records(project, 1)
    project.add_task("t")
    project.request_annotations(images, "t")
    item = project.next_item("t", "a")
    with pytest.raises(Conflict):
        project.release_item(item.id, "b")
    project.release_item(item.id, "a")
    assert project.work_items("t").loc[0, "state"] == "open"
    with pytest.raises(Conflict, match="is open"):
        project.submit(item.id, "a", None)
    assert project.next_item("t", "b").id == item.id
    with pytest.raises(Conflict, match="locked by another user"):
        project.submit(item.id, "a", None)


def test_submit_checks_image_kind_and_label(project):
    images = add_records(project, 2)
    ok, other = project.add_labels(["ok", "other"])
    project.add_task("t", kinds=["bbox"], labels=["ok"])
    project.request_annotations(images[:1], "t")
    item = project.next_item("t", "u")
    with pytest.raises(InvalidInput, match="row 0 is on image"):
        project.submit(item.id, "u", _box(int(ok), image=int(images[1])))
    point = Annotations.from_boxes([-1], [[0.5, 0.5, 0, 0]], [int(ok)], kind=Kind.POINT)
    with pytest.raises(InvalidInput, match="point is not allowed"):
        project.submit(item.id, "u", point)
    with pytest.raises(InvalidInput, match="not allowed in task"):
        project.submit(item.id, "u", _box(int(other)))
    with pytest.raises(InvalidInput, match="'done' or 'junk'"):
        project.submit(item.id, "u", None, state="open")
    with pytest.raises(NotFound):
        project.submit(12345, "u", None)
    assert project.work_items("t").loc[0, "state"] == "locked"  # nothing changed
    project.retire_label("ok")
    with pytest.raises(InvalidInput, match="retired"):
        project.submit(item.id, "u", _box(int(ok)))
    assert project.annotations().empty


def test_request_errors(project):
    images = add_records(project, 2)
    project.add_task("t")
    with pytest.raises(NotFound, match="999"):
        project.request_annotations([images[0], 999], "t")
    with pytest.raises(NotFound):
        project.request_annotations(images, "missing")
    with pytest.raises(InvalidInput):
        project.request_annotations(images, "t", priority=[1.0, np.inf])
    with pytest.raises(InvalidInput):
        project.next_item("t", "u", lock_seconds=0)
    assert project.work_items().empty


def test_many_requests_in_bulk(project):
    images = add_records(project, 5000)
    project.add_task("a")
    project.add_task("b")
    assert project.request_annotations(images, ["a", "b"], meta={"batch": 1}) == 10_000
    assert project.request_annotations(images[:10], ["a", "b"]) == 0
    df = project.work_items(state="open")
    assert len(df) == 10_000 and df["meta"].iloc[0] == {"batch": 1}
