"""CoralNet annotation CSV: round trips over the bundled photos, conventions, hostile input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.formats import get_format
from annoloop.formats.coralnet import load_coralnet, save_coralnet
from annoloop.formats.dataset import Dataset
from annoloop.geometry import Annotations, Kind, rowcol_to_points
from tests.formats.coco_data import copy_photos, photo_size, sample_dataset
from tests.formats.yolo_data import of_kinds, record, relabel

SIZES = {"1.jpg": (400, 300), "2.jpg": (40, 30)}


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return sample_dataset()


@pytest.fixture(scope="module")
def photo_src(sample: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_photos(sample, tmp_path_factory.mktemp("coralnet_photos"))


def csv_file(tmp_path: Path, text: str | bytes, name: str = "annotations.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def expect_error(path: Path, where: str, match: str, **options) -> None:
    options.setdefault("sizes", SIZES)
    with pytest.raises(InvalidInput, match=match) as info:
        load_coralnet(path, **options)
    assert info.value.where == where, str(info.value)


# -- round trips ----------------------------------------------------------------------------
def test_round_trip_over_bundled_photos(sample, photo_src, tmp_path):
    report = save_coralnet(sample, tmp_path / "a.csv")
    back = load_coralnet(tmp_path / "a.csv", images_root=photo_src)

    points = of_kinds(sample, Kind.POINT)
    used = sorted(set(points.annotations.image.tolist()))
    assert [r.file_name for r in back.images] == [sample.images[i].file_name for i in used]
    assert [(r.width, r.height) for r in back.images] == [
        photo_size(r.file_name) for r in back.images
    ]
    expected = relabel(points, back.labels).annotations
    remap = {old: new for new, old in enumerate(used)}
    assert back.annotations.image.tolist() == [remap[i] for i in expected.image.tolist()]
    assert np.array_equal(back.annotations.label, expected.label)
    # whole-pixel points come back exactly (pixel corner convention)
    np.testing.assert_array_equal(back.annotations.box, expected.box)
    data = back.annotations.data
    assert data["source"].tolist() == expected.data["source"].tolist()
    # an empty cell reads as None
    assert data["author"].tolist() == [a or None for a in expected.data["author"].tolist()]

    kinds = sample.annotations.kind
    assert report.annotations == len(points.annotations) and report.images == len(used)
    assert report.dropped == {
        "label": int(np.sum(kinds == Kind.LABEL)),
        "bbox": int(np.sum(kinds == Kind.BBOX)),
        "line": int(np.sum(kinds == Kind.LINE)),
        "polygon": int(np.sum(kinds == Kind.POLYGON)),
        "mask": int(np.sum(kinds == Kind.MASK)),
        "confidence": int(np.sum(~np.isnan(points.annotations.confidence))),
        "image_without_points": len(sample.images) - len(used),
    }


def test_coralnet_export_conventions(tmp_path):
    # as CoralNet's own export test writes it: 0-based row and column of a 400x300 image
    text = (
        "Name,Row,Column,Label,Machine suggestion 1,Machine confidence 1\n"
        "1.jpg,149,199,B,B,60\n"
        "1.jpg,0,0,A,,\n"
        "2.jpg,29,39,A,A,90\n"
    )
    back = load_coralnet(csv_file(tmp_path, text), sizes=SIZES)
    assert back.labels == ["B", "A"]
    assert [r.file_name for r in back.images] == ["1.jpg", "2.jpg"]
    expected = rowcol_to_points([[149, 199], [0, 0]], 400, 300)
    np.testing.assert_array_equal(back.annotations.box[:2, :2], expected)
    np.testing.assert_array_equal(back.annotations.box[2, :2], [39 / 40, 29 / 30])
    assert back.annotations.data["Machine suggestion 1"].tolist() == ["B", None, "A"]
    assert back.annotations.data["Machine confidence 1"].tolist() == ["60", None, "90"]

    save_coralnet(back, tmp_path / "out.csv")
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "Name,Row,Column,Label,Machine suggestion 1,Machine confidence 1"
    assert lines[1:] == text.strip().splitlines()[1:]


def test_old_one_based_exports_and_label_code_header(tmp_path):
    text = "\ufeff name , ROW, column ,Label code\n1.jpg,1,1,Acr\n1.jpg,300,400,Sand\n"
    back = load_coralnet(csv_file(tmp_path, text), sizes=SIZES, index_base=1)
    np.testing.assert_array_equal(back.annotations.box[:, :2], [[0, 0], [399 / 400, 299 / 300]])
    assert back.labels == ["Acr", "Sand"]
    save_coralnet(back, tmp_path / "out.csv", index_base=1)
    assert (tmp_path / "out.csv").read_text().splitlines()[1:] == ["1.jpg,1,1,Acr",
                                                                  "1.jpg,300,400,Sand"]  # fmt: skip
    # read 0-based, the last pixel would lie outside the image
    expect_error(csv_file(tmp_path, text), "annotations.csv: line 3", "outside")


def test_points_without_labels(tmp_path):
    back = load_coralnet(csv_file(tmp_path, "Name,Row,Column\n1.jpg,10,20\n"), sizes=SIZES)
    assert back.labels == [] and back.annotations.label.tolist() == [-1]
    blank = load_coralnet(csv_file(tmp_path, "Name,Row,Column,Label\n1.jpg,10,20,\n"), sizes=SIZES)
    assert blank.annotations.label.tolist() == [-1]
    save_coralnet(blank, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text().splitlines()[1] == "1.jpg,10,20,"


def test_quoted_values_round_trip(tmp_path):
    comments = np.array(['a, "b"\nc'], dtype=object)
    ann = Annotations.from_boxes(
        [0], [[0.5, 0.5, 0, 0]], 0, kind=Kind.POINT, data={"Comments": comments}
    )
    ds = Dataset(images=[record("x y,1.jpg", 10, 10)], labels=["Porites, massive"], annotations=ann)
    save_coralnet(ds, tmp_path / "q.csv")
    back = load_coralnet(tmp_path / "q.csv", sizes={"x y,1.jpg": (10, 10)})
    assert back.labels == ["Porites, massive"]
    assert back.annotations.data["Comments"].tolist() == ['a, "b"\nc']


def test_save_clips_and_floors_to_pixels(tmp_path):
    box = [[1.0, 1.0, 0, 0], [0.0999, 0.5, 0, 0], [0.1, 0.5, 0, 0]]
    ann = Annotations.from_boxes(
        [0, 0, 0],
        box,
        0,
        kind=Kind.POINT,
        data={"x": np.array([{"not": "scalar"}, 1, None], dtype=object)},
    )
    ds = Dataset(images=[record("a.jpg", 10, 4)], labels=["p"], annotations=ann)
    report = save_coralnet(ds, tmp_path / "a.csv")
    assert report.dropped == {"data:x": 1}
    assert (tmp_path / "a.csv").read_text().splitlines()[1:] == [
        "a.jpg,3,9,p,", "a.jpg,2,0,p,1", "a.jpg,2,1,p,"
    ]  # fmt: skip


def test_registry_and_memory_location(sample, photo_src):
    fmt = get_format("coralnet")
    report = fmt.save(sample, "memory://coralnet-test/a.csv")
    back = fmt.load("memory://coralnet-test/a.csv", images_root=photo_src)
    assert len(back.annotations) == report.annotations


# -- hostile input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "where", "match"),
    [
        ("Name,Row,Label\n1.jpg,1,A\n", "annotations.csv: line 1", "no 'Column' column"),
        ("Name,Row,Column,Label\n1.jpg,1,2,A\n1.jpg,abc,2,A\n", "annotations.csv: line 3",
         "Row must be a whole number, got 'abc'"),
        ("Name,Row,Column,Label\n1.jpg,1,2.5,A\n", "annotations.csv: line 2", "Column must"),
        ("Name,Row,Column,Label\n1.jpg,1,,A\n", "annotations.csv: line 2", "Column must"),
        ("Name,Row,Column,Label\n1.jpg,1,inf,A\n", "annotations.csv: line 2", "Column must"),
        ("Name,Row,Column,Label\n1.jpg,1,2,A\n1.jpg,1,2,A,extra\n", "annotations.csv",
         "Expected 4 fields in line 3"),
        ('Name,Row,Column,Label\n1.jpg,1,2,"A\n', "annotations.csv", "malformed CSV"),
        ("Name,Row,Column,Label\n1.jpg,1,2,A\n1.jpg,1", "annotations.csv: line 3",
         "Column must be a whole number"),
        ("Name,Row,Column,Label\n1.jpg,300,2,A\n", "annotations.csv: line 2",
         r"Row 300 is outside the image \(0..299\)"),
        ("Name,Row,Column,Label\n1.jpg,1,2,A\n2.jpg,1,40,A\n", "annotations.csv: line 3",
         r"Column 40 is outside the image \(0..39\)"),
        ("Name,Row,Column,Label\n1.jpg,-1,2,A\n", "annotations.csv: line 2", "outside"),
        ("Name,Row,Column,Label\n../1.jpg,1,2,A\n", "annotations.csv: line 2: Name", "escapes"),
        ("Name,Row,Column,Label\n/etc/1.jpg,1,2,A\n", "annotations.csv: line 2: Name",
         "relative"),
        ("Name,Row,Column,Label\n ,1,2,A\n", "annotations.csv: line 2", "Name is empty"),
        ("Name,Row,Column,Label\n3.jpg,1,2,A\n", "annotations.csv: line 2", "no size"),
        ("Name,Row,Name,Column\n1.jpg,1,1.jpg,2\n", "annotations.csv: line 1", "appears twice"),
        ("", "annotations.csv", "is empty"),
        (b"Name,Row,Column,Label\n\xff\xfe1.jpg,1,2,A\n", "annotations.csv", "not UTF-8"),
    ],
)  # fmt: skip
def test_bad_rows_name_file_and_line(tmp_path, text, where, match):
    expect_error(csv_file(tmp_path, text), where, match)


def test_sizes_must_be_pairs_and_images_must_exist(tmp_path, photo_src):
    path = csv_file(tmp_path, "Name,Row,Column,Label\ncoins.png,1,2,A\n")
    expect_error(path, "sizes['coins.png']", "width, height", sizes={"coins.png": 5})
    expect_error(path, "sizes['coins.png']", "positive integer", sizes={"coins.png": (0, 5)})
    expect_error(path, "sizes", "mapping", sizes=[("coins.png", (1, 1))])
    missing = csv_file(tmp_path, "Name,Row,Column,Label\nnope.png,1,2,A\n", "m.csv")
    expect_error(missing, "m.csv: line 2", "cannot read the size", sizes=None,
                 images_root=photo_src)  # fmt: skip
    assert len(load_coralnet(path, images_root=photo_src).annotations) == 1


def test_save_refuses_unsafe_names(tmp_path):
    ann = Annotations.from_boxes([0], [[0.5, 0.5, 0, 0]], 0, kind=Kind.POINT)
    ds = Dataset(images=[record("../a.jpg", 10, 10)], labels=["x"], annotations=ann)
    with pytest.raises(InvalidInput, match="escapes"):
        save_coralnet(ds, tmp_path / "a.csv")
    assert not (tmp_path / "a.csv").exists()


# -- huge input ----------------------------------------------------------------------------
def test_million_points(tmp_path):
    n = 1_000_000
    rng = np.random.default_rng(0)
    names = np.array([f"img_{i:04d}.jpg" for i in range(1000)], dtype=object)
    image = rng.integers(0, 1000, size=n)
    rowcol = np.column_stack([rng.integers(0, 3000, n), rng.integers(0, 4000, n)])
    codes = np.array(["Acr", "Sand", "Turf", "CCA"], dtype=object)
    label = rng.integers(0, 4, size=n)
    text = "Name,Row,Column,Label\n" + "".join(
        ("%s,%d,%d,%s\n" * n)
        % tuple(np.column_stack([names[image], rowcol, codes[label]]).ravel().tolist())
    )
    path = csv_file(tmp_path, text)
    sizes = {name: (4000, 3000) for name in names.tolist()}

    start = time.perf_counter()
    back = load_coralnet(path, sizes=sizes)
    loaded = time.perf_counter() - start
    report = save_coralnet(back, tmp_path / "out.csv")
    saved = time.perf_counter() - start - loaded
    print(f"CoralNet, {n} points: loaded in {loaded:.2f} s, saved in {saved:.2f} s")
    assert len(back.annotations) == n and report.annotations == n
    first = {name: i for i, name in enumerate(r.file_name for r in back.images)}
    assert np.array_equal(back.annotations.image, [first[x] for x in names[image].tolist()])
    np.testing.assert_array_equal(back.annotations.box[:, :2], rowcol_to_points(rowcol, 4000, 3000))
    assert (tmp_path / "out.csv").read_text() == text
