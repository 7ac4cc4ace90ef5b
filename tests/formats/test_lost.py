"""LOST-style parquet: round trips (LOST 2 and LOST 1 layouts), files as LOST writes them,
hostile and huge input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annoloop.errors import InvalidInput
from annoloop.formats import load, save
from annoloop.formats.lost import load_lost, save_lost
from annoloop.geometry import Annotations, Kind, polygon_bbox
from tests.formats.coco_data import copy_photos, photo_size, sample_dataset


def canonical(ann: Annotations) -> Annotations:
    """Rows ordered by image, image labels first (LOST keeps image labels per image)."""
    return ann[np.lexsort((ann.kind != int(Kind.LABEL), ann.image))]


def expected_after_lost(ann: Annotations) -> Annotations:
    """What LOST can hold: no masks, polygon exteriors only, one row per polygon part."""
    rows, parts = [], []
    for i in range(len(ann)):
        if ann.kind[i] == int(Kind.MASK):
            continue
        if ann.kind[i] == int(Kind.POLYGON):
            for polygon in ann.shape[i]:
                rows.append(i)
                parts.append([[polygon[0]]])
        else:
            rows.append(i)
            parts.append(None)
    out = ann[np.array(rows)]
    for k, part in enumerate(parts):
        if part is not None:
            out.shape[k] = part
            out.box[k] = polygon_bbox(part)
    return out


@pytest.mark.parametrize("layout", ["lost2", "lost1"])
def test_round_trip_over_real_photos(tmp_path: Path, layout: str) -> None:
    ds = sample_dataset()
    report = save_lost(ds, tmp_path / "annos.parquet", layout=layout)
    assert report.dropped == {
        "mask": 1,
        "polygon_hole": 1,
        "polygon_multipart->split": 1,
        "label:data": 3,
    }
    back = load_lost(tmp_path / "annos.parquet")
    assert [(r.file_name, r.width, r.height) for r in back.images] == [
        (r.file_name, r.width, r.height) for r in ds.images
    ]
    assert back.labels == ds.labels  # order kept through the schema metadata
    want = canonical(expected_after_lost(ds.annotations))
    got = canonical(back.annotations)
    assert got.equals(want, atol=1e-12)  # LOST stores relative floats: exact
    shapes = got.kind != int(Kind.LABEL)
    for key in ("source", "author"):
        assert got.data[key][shapes].tolist() == want.data[key][shapes].tolist()


def test_lost2_columns_as_lost_writes_them(tmp_path: Path) -> None:
    ds = sample_dataset(["bbox", "point", "label", "line"])
    save("lost", ds, tmp_path / "a.parquet")
    table = pq.read_table(tmp_path / "a.parquet")
    rows = table.to_pylist()
    assert {"img_path", "img_lbl", "anno_dtype", "anno_data", "anno_lbl", "anno_style"} <= set(
        table.column_names
    )
    first = rows[0]  # every image starts with a row without a shape, carrying img_lbl
    assert first["anno_dtype"] is None and first["img_lbl"] == ["grayscale"]
    person = next(r for r in rows if r["anno_lbl"] == ["person"])
    assert person["anno_style"] == "xcycwh" and person["anno_format"] == "rel"
    w, h = photo_size("astronaut.png")
    assert person["anno_data"] == [[270 / w, 261 / h, 300 / w, 502 / h]]
    assert person["anno_confidence"] == 0.9 and person["anno_user"] == ""
    nose = next(r for r in rows if r["anno_lbl"] == ["nose"])
    assert nose["anno_data"] == [[240 / 451, 180 / 300]]
    assert table.schema.metadata[b"annoloop.labels"].startswith(b'["coin"')


def lost_frame_rows(prefix: str = "/home/lost/data/media/survey/") -> dict:
    """A table as LOST 2's ``to_df()`` gives it (absolute paths, bookkeeping, no sizes)."""
    return {
        "img_uid": [1, 1, 1, 2],
        "img_path": [prefix + "coins.png"] * 3 + [prefix + "chelsea.png"],
        "img_lbl": [["grayscale"], ["grayscale"], ["grayscale"], []],
        "img_is_junk": [False, False, False, False],
        "anno_uid": [None, 11, 12, None],
        "anno_dtype": [None, "bbox", "polygon", None],
        "anno_style": [None, "xcycwh", "xy", None],
        "anno_format": [None, "rel", "rel", None],
        "anno_data": [None, [[0.5, 0.5, 0.2, 0.1]], [[0.1, 0.1], [0.3, 0.1], [0.2, 0.4]], None],
        "anno_lbl": [[], ["coin", "metal"], ["coin"], []],
        "anno_lbl_id": [[], [3, 9], [3], []],
        "anno_user": [None, "alice", "bob", None],
        "anno_confidence": [None, 0.7, None, None],
        "anno_comment": [None, "shiny", None, None],
        "anno_time": [None, 2.5, 1.0, None],
    }


def test_file_as_lost_exports_it(tmp_path: Path) -> None:
    pq.write_table(pa.table(lost_frame_rows()), tmp_path / "lost.parquet")
    with pytest.raises(InvalidInput, match="path_prefix") as err:
        load_lost(tmp_path / "lost.parquet")
    assert err.value.where == "lost.parquet: row 0, img_path"
    prefix = "/home/lost/data/media/survey/"
    with pytest.raises(InvalidInput, match="images_root"):
        load_lost(tmp_path / "lost.parquet", path_prefix=prefix)
    root = copy_photos(sample_dataset(), tmp_path / "photos")
    ds = load_lost(tmp_path / "lost.parquet", path_prefix=prefix, images_root=root)
    assert [(r.file_name, r.width, r.height) for r in ds.images] == [
        ("coins.png", 384, 303),
        ("chelsea.png", 451, 300),
    ]
    ann = ds.annotations
    assert ds.labels == ["grayscale", "coin", "metal"]
    assert ann.kind.tolist() == [int(Kind.LABEL), int(Kind.BBOX), int(Kind.POLYGON)]
    assert ann.label.tolist() == [0, 1, 1]
    assert np.allclose(ann.box[1], [0.5, 0.5, 0.2, 0.1])
    assert np.allclose(ann.box[2], [0.2, 0.25, 0.2, 0.3])
    assert ann.data["labels"].tolist() == [None, ("coin", "metal"), None]
    assert ann.data["author"].tolist() == [None, "alice", "bob"]
    assert ann.data["comment"].tolist() == [None, "shiny", None]
    assert "uid" not in ann.data and "time" not in ann.data  # LOST bookkeeping is skipped
    assert ann.confidence[1] == pytest.approx(0.7) and np.isnan(ann.confidence[2])


def test_lost_ds_styles_absolute_and_flat_lists(tmp_path: Path) -> None:
    table = pa.table(
        {
            "img_path": ["a.png"] * 3,
            "img_width": [200, 200, 200],
            "img_height": [100, 100, 100],
            "anno_dtype": ["bbox", "bbox", "point"],
            "anno_style": ["xywh", "x1y1x2y2", "xy"],
            "anno_format": ["abs", "rel", "abs"],
            "anno_data": [[20.0, 10.0, 40.0, 30.0], [0.1, 0.2, 0.3, 0.6], [50.0, 25.0]],
            "anno_lbl": [["a"], ["b"], ["a"]],
        }
    )
    pq.write_table(table, tmp_path / "ds.parquet")
    ds = load_lost(tmp_path / "ds.parquet")
    assert np.allclose(ds.annotations.box[0], [0.2, 0.25, 0.2, 0.3])
    assert np.allclose(ds.annotations.box[1], [0.2, 0.4, 0.2, 0.4])
    assert np.allclose(ds.annotations.box[2], [0.25, 0.25, 0, 0])


def test_lost1_json_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "img.idx": [1, 1],
            "img.img_path": ["sub/a.png", "sub/a.png"],
            "img.width": [100, 100],
            "img.height": [100, 100],
            "img.lbl.name": ['["day"]', '["day"]'],
            "anno.dtype": ["bbox", "line"],
            "anno.data": [
                '{"x": 0.5, "y": 0.5, "w": 0.2, "h": 0.2}',
                '[{"x": 0.1, "y": 0.1}, {"x": 0.9, "y": 0.2}]',
            ],
            "anno.lbl.name": ['["car"]', "road"],
            "anno.annotator": ["ann", "ann"],
            "anno.track_n": [4, None],
        }
    )
    pq.write_table(table, tmp_path / "old.parquet")
    ds = load_lost(tmp_path / "old.parquet")
    assert ds.images[0].file_name == "sub/a.png"
    assert ds.labels == ["day", "car", "road"]
    ann = ds.annotations
    assert ann.kind.tolist() == [int(Kind.LABEL), int(Kind.BBOX), int(Kind.LINE)]
    assert np.allclose(ann.shape[2], [[0.1, 0.1], [0.9, 0.2]])
    assert ann.data["author"].tolist() == [None, "ann", "ann"]
    assert ann.data["track_id"].tolist() == [None, 4, None]


def test_pandas_frame_with_categorical_columns(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "img_path": pd.Categorical(["a.png", "a.png", "b.png"]),
            "img_width": [100, 100, 80],
            "img_height": [50, 50, 40],
            "anno_dtype": pd.Categorical([None, "point", "bbox"]),
            "anno_data": [None, [[0.5, 0.5]], [[0.5, 0.5, 0.25, 0.5]]],
            "anno_lbl": [[], ["p"], ["b"]],
            "anno_confidence": [np.nan, 0.5, np.nan],
        }
    )
    frame.to_parquet(tmp_path / "pd.parquet")
    ds = load_lost(tmp_path / "pd.parquet")
    assert [r.file_name for r in ds.images] == ["a.png", "b.png"]
    assert ds.annotations.kind.tolist() == [int(Kind.POINT), int(Kind.BBOX)]
    assert ds.annotations.image.tolist() == [0, 1]
    assert ds.annotations.confidence[0] == pytest.approx(0.5)


def _base() -> dict:
    return {
        "img_path": ["a.png", "a.png"],
        "img_width": [100, 100],
        "img_height": [50, 50],
        "anno_dtype": [None, "bbox"],
        "anno_data": [None, [[0.5, 0.5, 0.2, 0.2]]],
        "anno_lbl": [[], ["x"]],
    }


HOSTILE = [
    ("img_path", ["a.png", "../../etc/passwd"], "t.parquet: row 1, img_path"),
    ("img_path", ["a.png", "/etc/passwd"], "t.parquet: row 1, img_path"),
    ("img_path", ["a.png", None], "t.parquet: row 1, img_path"),
    ("img_path", [1, 2], "t.parquet"),
    ("img_width", [100, 120], "t.parquet: row 1, img_width"),
    ("img_width", [-100, -100], "t.parquet: row 0, img_width"),
    ("img_width", ["wide", "wide"], "t.parquet"),
    ("anno_dtype", [None, "blob"], "t.parquet: row 1, anno_dtype"),
    ("anno_data", [None, [[0.5, 0.5, 0.2]]], "t.parquet: row 1, anno_data"),
    ("anno_data", [None, [[0.5, None, 0.2, 0.2]]], "t.parquet: row 1"),
    ("anno_data", [None, [[1.5, 0.5, 0.2, 0.2]]], "t.parquet: row 1, anno_data"),
    ("anno_data", [None, "{not json"], "t.parquet: row 1, anno_data"),
    ("anno_data", [None, '{"x": "a", "y": 1, "w": 1, "h": 1}'], "t.parquet: row 1, anno_data"),
    ("anno_lbl", [[], [""]], "t.parquet: row 1, anno_lbl"),
    ("anno_lbl", [1, 2], "t.parquet"),
]


@pytest.mark.parametrize(("column", "values", "where"), HOSTILE)
def test_hostile_cells_name_the_row(tmp_path: Path, column: str, values, where: str) -> None:
    data = _base()
    data[column] = values
    pq.write_table(pa.table(data), tmp_path / "t.parquet")
    with pytest.raises(InvalidInput) as err:
        load_lost(tmp_path / "t.parquet")
    assert err.value.where is not None and err.value.where.startswith(where), err.value


def test_hostile_styles_and_files(tmp_path: Path) -> None:
    data = {**_base(), "anno_style": [None, "yxhw"]}
    pq.write_table(pa.table(data), tmp_path / "s.parquet")
    with pytest.raises(InvalidInput, match="anno_style"):
        load_lost(tmp_path / "s.parquet")
    data = {**_base(), "anno_format": [None, "pixels"]}
    pq.write_table(pa.table(data), tmp_path / "f.parquet")
    with pytest.raises(InvalidInput, match="anno_format"):
        load_lost(tmp_path / "f.parquet")
    pq.write_table(pa.table({"path": ["a.png"]}), tmp_path / "cols.parquet")
    with pytest.raises(InvalidInput, match="img_path"):
        load_lost(tmp_path / "cols.parquet")
    (tmp_path / "text.parquet").write_text("img_path,anno_dtype\na.png,bbox\n")
    with pytest.raises(InvalidInput, match="parquet"):
        load_lost(tmp_path / "text.parquet")
    good = (tmp_path / "s.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(good[: len(good) // 2])
    with pytest.raises(InvalidInput, match="parquet"):
        load_lost(tmp_path / "cut.parquet")
    with pytest.raises(InvalidInput, match="layout"):
        save_lost(sample_dataset(), tmp_path / "x.parquet", layout="lost3")


def test_memory_location_round_trip() -> None:
    ds = sample_dataset(["bbox", "point"])
    save("lost", ds, "memory://lost-test/a.parquet")
    back = load("lost", "memory://lost-test/a.parquet")
    assert back.annotations.equals(ds.annotations, atol=1e-12)


@pytest.mark.slow
def test_million_boxes_load(tmp_path: Path) -> None:
    n = 1_000_000
    rng = np.random.default_rng(5)
    box = np.column_stack([rng.uniform(0.2, 0.8, (n, 2)), rng.uniform(0.01, 0.2, (n, 2))])
    values = pa.array(box.reshape(-1))
    inner = pa.ListArray.from_arrays(pa.array(np.arange(0, 4 * n + 1, 4, dtype=np.int32)), values)
    outer = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), inner)
    names = pa.array(np.char.add("c", rng.integers(0, 10, n).astype(str)))
    labels = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), names)
    table = pa.table(
        {
            "img_path": pa.array(np.char.add("img", (np.arange(n) // 1000).astype(str)) + ".jpg"),
            "img_width": pa.array(np.full(n, 640)),
            "img_height": pa.array(np.full(n, 480)),
            "anno_dtype": pa.array(np.full(n, "bbox")),
            "anno_data": outer,
            "anno_lbl": labels,
            "anno_confidence": pa.array(rng.uniform(0, 1, n)),
        }
    )
    pq.write_table(table, tmp_path / "big.parquet")
    ds = load_lost(tmp_path / "big.parquet")
    assert len(ds.annotations) == n and len(ds.images) == 1000 and len(ds.labels) == 10
    assert np.allclose(ds.annotations.box, box)
