"""The lazy object columns of the LOST frame (``anno_data`` and the all-None columns) hold the
same values as the store and behave like plain object columns under what scripts do with
frames: filter, sort, concat, explode, group, map, pickle, assign."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from annoloop.pipeline.engine import run_pipe
from annoloop.pipeline.frames import lost_frame, read_task_data
from annoloop.pipeline.lazy_column import LazyObjectArray, LazyObjectDtype
from annoloop.store.engine import read_transaction
from tests.pipeline.helpers import annotate_all
from tests.pipeline.test_script_api import api_pipe  # noqa: F401 (a fixture)

LAZY = ["anno_data", "img_sim_class", "anno_comment"]


@pytest.fixture()
def frame(project, executor, api_pipe, image_ids):  # noqa: F811
    """The LOST frame of both tasks of the api pipe once people worked: boxes, points, lines,
    polygons, image labels and a junk item with no annotation."""
    run_pipe(project, "api", executor)
    annotate_all(project, "api/Boxes", label="cat", junk={int(image_ids[0])}, limit=2)
    annotate_all(project, "api/Boxes", accept_proposals=True)
    annotate_all(project, "api/Shapes", accept_proposals=True)
    tasks = [project.task_id("api/Boxes"), project.task_id("api/Shapes")]
    with read_transaction(project.engine) as conn:
        data = read_task_data(conn, tasks, project.media)
    return lost_frame(data)


def _eager(df: pd.DataFrame) -> pd.DataFrame:
    """The same frame with plain object columns (the values made once, here)."""
    out = df.copy()
    for name in LAZY:
        out[name] = pd.Series(list(df[name]), index=df.index, dtype=object)
    return out


def test_values_are_those_of_the_store(project, frame):
    assert isinstance(frame["anno_data"].dtype, LazyObjectDtype)
    stored = project.annotations(task=["api/Boxes", "api/Shapes"]).set_index("id")
    kinds = set()
    for uid, kind, value in zip(
        frame["anno_uid"], frame["anno_dtype"], frame["anno_data"], strict=True
    ):
        if pd.isna(uid):
            assert value is None
            continue
        row = stored.loc[int(uid)]
        kinds.add(kind)
        if kind == "bbox":
            assert value == pytest.approx([row.x, row.y, row.w, row.h])
        elif kind == "point":
            assert value == pytest.approx([row.x, row.y])
        elif kind == "line":
            assert np.allclose(value, np.asarray(row["shape"]))
        elif kind == "polygon":
            assert np.allclose(value, np.asarray(row["shape"][0][0]))
    assert kinds == {"bbox", "point", "line", "polygon"}
    assert frame["img_sim_class"].isna().all() and frame["img_sim_class"].tolist()[0] is None
    assert frame["anno_data"].isna().tolist() == [v is None for v in frame["anno_data"]]


def test_behaves_like_an_object_column(frame):
    eager = _eager(frame)

    def same(a: pd.DataFrame | pd.Series, b: pd.DataFrame | pd.Series) -> None:
        if isinstance(a, pd.Series):
            a, b = a.to_frame(), b.to_frame()
        assert list(a.columns) == list(b.columns) and list(a.index) == list(b.index)
        for name in a.columns:
            if name in LAZY or a[name].dtype == object:
                assert list(a[name]) == list(b[name]), name
            else:
                pd.testing.assert_series_equal(a[name], b[name])

    boxes = frame["anno_dtype"] == "bbox"
    same(frame[boxes], eager[boxes])
    newest = {"by": "anno_uid", "ascending": False}
    same(frame.sort_values(**newest), eager.sort_values(**newest))
    same(frame.iloc[::-3], eager.iloc[::-3])
    same(frame.take([3, 1, 2]), eager.take([3, 1, 2]))
    same(pd.concat([frame, frame]), pd.concat([eager, eager]))
    same(frame.reindex([*frame.index[:2], 10_000]), eager.reindex([*eager.index[:2], 10_000]))
    same(frame["anno_data"].explode(), eager["anno_data"].explode())
    size = lambda v: v and len(v)  # noqa: E731
    same(frame["anno_data"].map(size), eager["anno_data"].map(size))
    by_item = frame.groupby("img_uid")["anno_data"].agg(list)
    assert by_item.to_dict() == eager.groupby("img_uid")["anno_data"].agg(list).to_dict()
    # (compared as text: NaN != NaN)
    assert str(frame.values.tolist()) == str(eager.values.tolist())  # to_vec's path
    assert str(frame.to_dict("records")) == str(eager.to_dict("records"))
    assert [r.anno_data for r in frame.itertuples()] == list(eager["anno_data"])
    assert frame.iloc[0]["anno_data"] == eager.iloc[0]["anno_data"]
    shown = repr(eager["anno_data"].head(3)).replace("object", "annoloop_object")
    assert repr(frame["anno_data"].head(3)) == shown
    same(pickle.loads(pickle.dumps(frame)), eager)  # what a Dask worker receives


def test_assigning_changes_one_cell_of_one_column(frame):
    df = frame.copy(deep=False)
    row = int(np.flatnonzero(df["anno_dtype"] == "bbox")[0])
    before = list(frame["anno_data"])
    df.at[df.index[row], "anno_data"] = [0.0, 0.0, 1.0, 1.0]
    df.loc[df.index[0], "img_sim_class"] = 7
    assert df["anno_data"].iloc[row] == [0.0, 0.0, 1.0, 1.0]
    assert df["img_sim_class"].iloc[0] == 7 and df["anno_comment"].iloc[0] is None
    assert list(frame["anno_data"]) == before  # the frame it was copied from is untouched
    assert frame["img_sim_class"].iloc[0] is None
    df["anno_data"] = df["anno_data"].map(lambda v: v)  # replacing the column works too
    assert df["anno_data"].iloc[row] == [0.0, 0.0, 1.0, 1.0]


def test_the_array_on_its_own():
    arr = LazyObjectArray._from_sequence([[1, 2], None, {"a": 1}])
    assert len(arr) == 3 and arr[0] == [1, 2] and arr[1] is None
    assert arr.isna().tolist() == [False, True, False]
    assert list(arr.take([2, -1], allow_fill=True)) == [{"a": 1}, None]
    with pytest.raises(ValueError, match="below -1"):
        arr.take([-2], allow_fill=True)
    assert list(arr[np.array([True, False, True])]) == [[1, 2], {"a": 1}]
    assert (arr == [[1, 2], None, {"a": 1}]).all()
    assert list(LazyObjectArray._concat_same_type([arr, arr[1:]])) == [*arr, None, {"a": 1}]
    arr[[0, 2]] = ["x", "y"]
    assert list(arr) == ["x", None, "y"]
