"""The label tree: add, bulk add, rename, retire, name -> id mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annoloop.errors import AlreadyExists, InvalidInput, NotFound


def test_add_labels_round_trip(project):
    coral = project.add_label("coral", code="CRL", color="#FF0000")
    hard = project.add_label("hard coral", code="HC", parent="coral")
    soft = project.add_label("soft coral", parent=coral)
    df = project.labels()
    assert list(df.columns[:7]) == ["id", "name", "code", "color", "parent", "parent_id", "retired"]
    assert df["name"].tolist() == ["coral", "hard coral", "soft coral"]
    assert df["code"].tolist()[:2] == ["CRL", "HC"] and pd.isna(df["code"][2])
    assert df.loc[0, "color"] == "#ff0000"
    assert df["color"].str.match(r"^#[0-9a-f]{6}$").all()  # the others got palette colours
    assert pd.isna(df["parent"][0]) and df["parent"].tolist()[1:] == ["coral", "coral"]
    assert pd.isna(df["parent_id"][0]) and df["parent_id"].tolist()[1:] == [coral, coral]
    assert (hard, soft) == tuple(df["id"][1:])


def test_add_label_is_idempotent_but_refuses_other_settings(project):
    a = project.add_label("fish", code="F")
    assert project.add_label("fish") == a
    assert project.add_label("  fish ", code="F") == a  # names are trimmed
    with pytest.raises(AlreadyExists, match="code is 'F'"):
        project.add_label("fish", code="G")


def test_bulk_add_reuses_ids_in_order(project):
    first = project.add_labels(["b", "a", "b"])
    assert first[0] == first[2] and first[0] != first[1]
    again = project.add_labels(["a", "c", "b"])
    assert again[0] == first[1] and again[2] == first[0]
    assert len(project.labels()) == 3
    np.testing.assert_array_equal(project.label_ids(["c", "a", "a"]), again[[1, 0, 0]])


def test_label_ids_lists_unknown_names(project):
    project.add_labels(["a"])
    with pytest.raises(NotFound, match="'y', 'x'"):  # in the order given
        project.label_ids(["a", "y", "x", "y"])
    ids = project.label_ids(["a", "new"], create=True)
    assert project.labels()["name"].tolist() == ["a", "new"]
    assert len(ids) == 2
    assert project.label_ids([]).size == 0


def test_rename_and_retire(project):
    _, b = project.add_labels(["sand", "rock"])
    project.rename_label("sand", "sediment")
    assert project.labels()["name"].tolist() == ["sediment", "rock"]
    with pytest.raises(AlreadyExists):
        project.rename_label("rock", "sediment")
    with pytest.raises(NotFound):
        project.rename_label("sand", "x")
    project.retire_label("rock")
    assert project.labels()["name"].tolist() == ["sediment"]
    retired = project.labels(include_retired=True)
    assert retired.set_index("name").loc["rock", "retired"]
    # a retired name is free for a new active label; lookups prefer the active one
    new_rock = project.add_label("rock")
    assert new_rock != b
    assert project.label_ids(["rock"])[0] == new_rock
    project.retire_label("rock")
    # only retired labels of that name: lookups find the newest (old annotations stay findable)
    assert project.label_ids(["rock"])[0] == new_rock
    with pytest.raises(NotFound):
        project.retire_label("rock")  # nothing active to retire


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a\nb", "control characters"),
        ("x" * 201, "at most 200"),
        (3.5, "must be a string"),
    ],
)
def test_bad_label_names_are_refused(sqlite_project, name, message):
    with pytest.raises(InvalidInput, match=message):
        sqlite_project.add_label(name)
    with pytest.raises(InvalidInput):
        sqlite_project.add_labels(["ok", name])
    assert sqlite_project.labels().empty  # the bulk call wrote nothing


def test_bad_colour_and_unknown_parent(sqlite_project):
    with pytest.raises(InvalidInput, match="#rrggbb"):
        sqlite_project.add_label("a", color="red")
    with pytest.raises(NotFound):
        sqlite_project.add_label("a", parent="missing")


def test_many_labels_in_one_call(project):
    names = [f"class {i}" for i in range(3000)]
    ids = project.add_labels(names)
    assert len(np.unique(ids)) == 3000
    np.testing.assert_array_equal(project.label_ids(names[::-1]), ids[::-1])
