"""The native (connectorx) read path returns exactly what the driver path returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import annoloop.store.bulk as bulk
from annoloop.geometry import Annotations, Kind, rle_encode
from annoloop.store import Project


def _mixed(project: Project) -> None:
    ids = project.add_image_records(["a.jpg", "b.jpg"], [100, 200], [80, 160])
    labels = project.add_labels(["coral", "sand? o'clock?"])
    task = project.add_task("t", kinds=["bbox", "point", "polygon", "mask", "label"])
    n = 6
    mask = np.zeros((80, 100), bool)
    mask[10:30, 20:50] = True
    ann = Annotations(
        image=[ids[0], ids[0], ids[1], ids[1], ids[0], ids[1]],
        kind=[Kind.BBOX, Kind.POINT, Kind.POLYGON, Kind.LABEL, Kind.MASK, Kind.BBOX],
        label=[labels[0], labels[1], labels[0], labels[1], labels[0], -1],
        box=[
            [0.5, 0.5, 0.2, 0.2],
            [0.1, 0.2, 0, 0],
            [0.35, 0.35, 0.5, 0.5],
            [np.nan] * 4,
            [0.35, 0.25, 0.3, 0.25],
            [0.4, 0.4, 0.1, 0.1],
        ],
        confidence=[np.nan, 0.5, np.nan, 0.9, np.nan, 0.25],
        shape=[
            None,
            None,
            [[np.array([[0.1, 0.1], [0.6, 0.1], [0.6, 0.6]])]],
            None,
            rle_encode(mask),
            None,
        ],
        data={"author": np.array(["ann", None, "bob", "ann", None, "zoë"], dtype=object)},
    )
    project.add_annotations(ann[: n - 1], task=task)
    project.add_annotations(ann[n - 1 :], source="model:det@3")


def test_arrow_path_equals_driver_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Project.init(tmp_path / "p") as project:
        _mixed(project)
        monkeypatch.setattr(bulk, "ARROW_READ_MIN_ROWS", 10**12)
        driver = project.annotations()
        driver_filtered = project.annotations(label="sand? o'clock?", source="human")
        monkeypatch.setattr(bulk, "ARROW_READ_MIN_ROWS", 0)
        calls = []
        original = bulk._read_sqlite_arrow

        def spy(*args, **kwargs):
            out = original(*args, **kwargs)
            calls.append(out is not None)
            return out

        monkeypatch.setattr(bulk, "_read_sqlite_arrow", spy)
        fast = project.annotations()
        fast_filtered = project.annotations(label="sand? o'clock?", source="human")
    assert calls and all(calls), "the native path was not used"
    pd.testing.assert_frame_equal(fast.drop(columns="shape"), driver.drop(columns="shape"))
    for a, b in zip(fast["shape"], driver["shape"], strict=True):
        assert repr(a) == repr(b)
    pd.testing.assert_frame_equal(
        fast_filtered.drop(columns="shape"), driver_filtered.drop(columns="shape")
    )
    assert len(fast_filtered) == 2


def test_arrow_path_not_used_inside_a_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write transaction may hold rows another connection cannot see: use the driver."""
    from annoloop.store.annotations import annotations_frame
    from annoloop.store.engine import write_transaction

    monkeypatch.setattr(bulk, "ARROW_READ_MIN_ROWS", 0)
    with Project.init(tmp_path / "p") as project:
        _mixed(project)
        with write_transaction(project.engine) as conn:
            conn.exec_driver_sql("DELETE FROM annotation WHERE kind = 2")
            inside = annotations_frame(conn)
        assert (inside["kind"] == "bbox").sum() == 0


def test_parallel_id_ranges_come_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large read is split into id ranges read on parallel connections; the parts, which
    finish in any order, are put back in id order and equal the driver's rows."""
    import os

    rng = np.random.default_rng(3)
    n = 30_000
    with Project.init(tmp_path / "p") as project:
        image = project.add_image_records(["reef.jpg"], [4000], [3000])
        label = project.add_labels(["coral"])
        wh = rng.uniform(0.01, 0.2, size=(n, 2))
        centre = rng.uniform(0.2, 0.8, size=(n, 2))
        ann = Annotations.from_boxes(
            image=np.repeat(image, n), box=np.hstack([centre, wh]), label=np.repeat(label, n)
        )
        project.add_annotations(ann)
        monkeypatch.setattr(bulk, "ARROW_READ_MIN_ROWS", 10**12)
        driver = project.annotations()
        monkeypatch.setattr(bulk, "ARROW_READ_MIN_ROWS", 1000)
        monkeypatch.setattr(os, "cpu_count", lambda: 4)
        assert len(bulk._id_range_queries("annotation", ["t.x"], "", 1, n)) == 4
        fast = project.annotations()
    assert fast["id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(fast, driver)


def test_category_and_time_columns_equal_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Categories come straight from Arrow's dictionary; each distinct timestamp text is parsed
    once (with and without a fraction of a second, NULL); both equal the driver's values."""
    from annoloop.store.engine import read_transaction

    columns = [
        ("id", "t.id", "int"),
        ("author", "t.author", "category"),
        ("source", "t.source", "category"),
        ("created_at", "t.created_at", "time"),
        ("finished", "CASE WHEN t.id % 2 = 0 THEN t.created_at END", "time"),
    ]
    with Project.init(tmp_path / "p") as project:
        _mixed(project)
        with project.engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE annotation SET created_at = '2026-01-02 03:04:05' WHERE id = 1"
            )
            conn.exec_driver_sql(
                "UPDATE annotation SET created_at = '2026-01-02 03:04:05.000007' WHERE id = 2"
            )

        def read() -> dict:
            with read_transaction(project.engine) as conn:
                return bulk.read_columns(conn, "annotation", "", [], columns)

        monkeypatch.setattr(bulk, "ARROW_READ_MIN_ROWS", 10**12)
        driver = read()
        monkeypatch.setattr(bulk, "ARROW_READ_MIN_ROWS", 0)
        fast = read()
    assert fast["id"].tolist() == driver["id"].tolist() == list(range(1, 7))
    for name in ("author", "source"):
        assert isinstance(fast[name], pd.Categorical)
        assert list(fast[name]) == list(driver[name])
    authors = list(fast["author"])
    assert authors[0] == "ann" and pd.isna(authors[1])
    for name in ("created_at", "finished"):
        assert fast[name].dtype == np.dtype("datetime64[us]")
        np.testing.assert_array_equal(fast[name], driver[name])
    assert str(fast["created_at"][0]) == "2026-01-02T03:04:05.000000"
    assert str(fast["created_at"][1]) == "2026-01-02T03:04:05.000007"
    assert np.isnat(fast["finished"][0]) and not np.isnat(fast["finished"][1])
