"""CSV, one row per annotation: round trips, line numbers in errors, hostile and huge input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from annoloop.errors import InvalidInput
from annoloop.formats import load, save
from annoloop.formats.csv import COLUMNS, load_csv, save_csv
from annoloop.geometry import Kind, rle_decode
from tests.formats.coco_data import coins_mask, copy_photos, sample_dataset


def test_round_trip_over_real_photos(tmp_path: Path) -> None:
    ds = sample_dataset()
    report = save_csv(ds, tmp_path / "annotations.csv")
    assert report.dropped == {} and report.annotations == len(ds.annotations)
    back = load_csv(tmp_path / "annotations.csv")
    assert [(r.file_name, r.width, r.height) for r in back.images] == [
        (r.file_name, r.width, r.height) for r in ds.images
    ]
    assert back.labels == ds.labels
    assert back.annotations.equals(ds.annotations, atol=1e-9)
    assert back.annotations.data["source"].tolist() == ds.annotations.data["source"].tolist()
    # an empty cell cannot be told from a missing value: "" authors come back as None
    want = [a or None for a in ds.annotations.data["author"].tolist()]
    assert back.annotations.data["author"].tolist() == want
    mask_row = int(np.flatnonzero(back.annotations.kind == int(Kind.MASK))[0])
    assert np.array_equal(rle_decode(back.annotations.shape[mask_row]), coins_mask())


def test_columns_hold_pixels(tmp_path: Path) -> None:
    ds = sample_dataset()
    save_csv(ds, tmp_path / "a.csv")
    frame = pd.read_csv(tmp_path / "a.csv", keep_default_na=False, dtype=str)
    assert tuple(frame.columns) == COLUMNS
    rows = {(r.label, r.kind): r for r in frame.itertuples()}
    person = rows[("person", "bbox")]
    assert (person.x, person.y, person.width, person.height) == ("120", "10", "300", "502")
    assert person.confidence == "0.9" and person.source == "model:demo@1"
    nose = rows[("nose", "point")]
    assert (nose.x, nose.y, nose.width, nose.height) == ("240", "180", "", "")
    whisker = rows[("whisker", "line")]
    assert whisker.geometry == "[[250.0,200.0],[300.0,210.0],[360.0,205.0]]"
    assert rows[("portrait", "label")].x == ""
    assert rows[("coin", "mask")].geometry.startswith('{"size":[303,384],"counts":"')


def test_images_without_annotations_keep_their_place(tmp_path: Path) -> None:
    ds = sample_dataset(["line"])  # only chelsea and coffee have lines
    save("csv", ds, tmp_path / "x.csv")
    back = load("csv", tmp_path / "x.csv")
    assert [r.file_name for r in back.images] == [r.file_name for r in ds.images]
    assert back.annotations.equals(ds.annotations, atol=1e-9)


def test_sizes_from_images_root_and_extra_columns(tmp_path: Path) -> None:
    ds = sample_dataset()
    root = copy_photos(ds, tmp_path / "photos")
    text = (
        "image,kind,label,x,y,width,height,track_id\n"
        "chelsea.png,bbox,cat,10,20,30,40,17\n"
        "\n"
        "coins.png,point,coin,5,6,,,\n"
    )
    (tmp_path / "few.csv").write_text(text)
    with pytest.raises(InvalidInput, match="images_root") as err:
        load_csv(tmp_path / "few.csv")
    assert err.value.where == "few.csv: line 2, column image_width"
    back = load_csv(tmp_path / "few.csv", images_root=root)
    assert [(r.file_name, r.width, r.height) for r in back.images] == [
        ("chelsea.png", 451, 300),
        ("coins.png", 384, 303),
    ]
    assert np.allclose(back.annotations.box[0], [25 / 451, 40 / 300, 30 / 451, 40 / 300])
    assert np.allclose(back.annotations.box[1], [5 / 384, 6 / 303, 0, 0])
    assert back.annotations.data["track_id"].tolist() == ["17", None]
    assert np.isnan(back.annotations.confidence).all()


HEADER = "image,image_width,image_height,kind,label,confidence,x,y,width,height,geometry\n"
GOOD = "a.png,100,50,bbox,x,,10,10,20,20,\n"

HOSTILE = [
    ("image,kind\n" + "a.png,\n" * 2 + "a.png,blob\n", "bad.csv: line 4, column kind", "blob"),
    (HEADER + GOOD + "a.png,100,50,bbox,x,,ten,10,20,20,\n", "bad.csv: line 3", "x must be"),
    (HEADER + GOOD + "\n\na.png,100,50,bbox,x,,1,1,2,inf,\n", "bad.csv: line 5", "height"),
    (HEADER + GOOD + "a.png,100,50,bbox,x,,90,10,20,20,\n", "bad.csv: line 3", "outside"),
    (HEADER + GOOD + "a.png,100,50,bbox,x,,10,10,-5,20,\n", "bad.csv: line 3", "positive"),
    (HEADER + GOOD + "a.png,100,50,bbox,x,,10,10,,20,\n", "bad.csv: line 3", "needs x, y"),
    (HEADER + GOOD + "a.png,100,50,point,x,,500,10,,,\n", "bad.csv: line 3", "outside"),
    (HEADER + GOOD + "a.png,101,50,bbox,x,,10,10,20,20,\n", "bad.csv: line 3", "image_width"),
    (HEADER + "a.png,-100,50,bbox,x,,10,10,20,20,\n", "bad.csv: line 2", "positive"),
    (HEADER + "../etc/passwd,100,50,bbox,x,,1,1,2,2,\n", "bad.csv: line 2", "escapes"),
    (HEADER + "/etc/passwd,100,50,bbox,x,,1,1,2,2,\n", "bad.csv: line 2", "relative"),
    (HEADER + GOOD + 'a.png,100,50,line,x,,,,,,"[[1,2]"\n', "bad.csv: line 3", "JSON"),
    (HEADER + GOOD + 'a.png,100,50,line,x,,,,,,"[[1,2]]"\n', "bad.csv: line 3", "at least 2"),
    (
        HEADER + GOOD + 'a.png,100,50,polygon,x,,,,,,"[[1,2],[3,4]]"\n',
        "bad.csv: line 3",
        "x, y pairs",
    ),
    (HEADER + GOOD + "a.png,100,50,polygon,x,,,,,,\n", "bad.csv: line 3", "needs a geometry"),
    (
        HEADER + 'a.png,100,50,mask,x,,,,,,"{""size"":[5,5],""counts"":""00""}"\n',
        "bad.csv: line 2",
        "RLE",
    ),
    (
        HEADER + 'a.png,4,4,mask,x,,,,,,"{""size"":[2,2],""counts"":[1,3]}"\n',
        "bad.csv: line 2",
        "differs",
    ),
    (HEADER + GOOD + "a.png,100,50,,x,,,,,,\n", "bad.csv: line 3", "needs a kind"),
    (HEADER + GOOD + "a.png,100,50,label,,,,,,,\n", "bad.csv: line 3", "needs a label"),
    (HEADER + GOOD + "a.png,100,50,bbox,x,high,10,10,20,20,\n", "bad.csv: line 3", "confidence"),
    ("kind,label\nbbox,x\n", "bad.csv: line 1", "missing column 'image'"),
    ("image,image,kind\na,a,bbox\n", "bad.csv: line 1", "twice"),
    (HEADER + GOOD + "a.png,100,50,bbox,x,,10,10,20,20,,extra,fields\n", "bad.csv", "line 3"),
]


@pytest.mark.parametrize(("text", "where", "message"), HOSTILE)
def test_hostile_rows_name_the_line(tmp_path: Path, text: str, where: str, message: str) -> None:
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(InvalidInput, match=message) as err:
        load_csv(tmp_path / "bad.csv")
    assert err.value.where is not None and err.value.where.startswith(where), err.value


def test_hostile_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidInput, match="empty"):
        load_csv(tmp_path / "empty.csv")
    (tmp_path / "latin.csv").write_bytes(
        HEADER.encode() + "caf\xe9.png,1,1,label,x\n".encode("latin-1")
    )
    with pytest.raises(InvalidInput, match="UTF-8"):
        load_csv(tmp_path / "latin.csv")
    (tmp_path / "header.csv").write_text(HEADER)
    assert len(load_csv(tmp_path / "header.csv").images) == 0
    # one enormous field is refused for its content, not by crashing the parser
    huge = HEADER + "a.png,100,50,line,x,,,,,," + '"' + "[" * 200_000 + '"\n'
    (tmp_path / "huge.csv").write_text(huge)
    with pytest.raises(InvalidInput, match="line 2"):
        load_csv(tmp_path / "huge.csv")


@pytest.mark.slow
def test_million_rows_load(tmp_path: Path) -> None:
    n = 1_000_000
    rng = np.random.default_rng(11)
    xy = rng.integers(0, 500, (n, 2))
    wh = rng.integers(1, 100, (n, 2))
    frame = pd.DataFrame(
        {
            "image": np.char.add("img", (rng.integers(0, 1000, n)).astype(str)),
            "image_width": 640,
            "image_height": 640,
            "kind": "bbox",
            "label": np.char.add("class", rng.integers(0, 10, n).astype(str)),
            "confidence": rng.uniform(0, 1, n).round(3),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "width": wh[:, 0],
            "height": wh[:, 1],
        }
    )
    frame.to_csv(tmp_path / "big.csv", index=False)
    ds = load_csv(tmp_path / "big.csv")
    ann = ds.annotations
    assert len(ann) == n and len(ds.images) == 1000 and len(ds.labels) == 10
    assert np.allclose(ann.box[:, 0], (xy[:, 0] + wh[:, 0] / 2) / 640)
    assert np.allclose(ann.confidence, frame["confidence"], atol=1e-6)
