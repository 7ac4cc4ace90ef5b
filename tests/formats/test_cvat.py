"""CVAT for images 1.1: round trips over the bundled photos, masks, hostile and huge input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.formats import get_format
from annoloop.formats.cvat import load_cvat, save_cvat
from annoloop.formats.dataset import Dataset
from annoloop.geometry import (
    Annotations,
    Kind,
    bbox_of_shape,
    polygon_to_mask,
    rle_decode,
    rle_encode,
)
from tests.formats.coco_data import coins_mask, copy_photos, photo_size, sample_dataset
from tests.formats.yolo_data import BILLION_LAUGHS, external_entity, record


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return sample_dataset()


LABELS = """<meta><task><labels>
  <label><name>car</name><color>#ff0000</color><type>any</type><attributes>
    <attribute><name>colour</name><mutable>False</mutable><input_type>select</input_type>
    <default_value>red</default_value><values>red
blue</values></attribute></attributes></label>
  <label><name>road</name><color>#00ff00</color><type>any</type><attributes/></label>
</labels></task></meta>"""


def cvat_xml(body: str, *, meta: str = LABELS, image: str = 'id="0" name="a.jpg" width="100"'
             ' height="50"') -> str:  # fmt: skip
    return f"<annotations><version>1.1</version>{meta}<image {image}>{body}</image></annotations>"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "annotations.xml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def expect_error(path: Path, where: str, match: str, **options) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        load_cvat(path, **options)
    assert info.value.where == where, str(info.value)


def expected_after_cvat(sample: Dataset) -> Annotations:
    """What CVAT gives back: holes become masks, multi-part polygons split, no confidence."""
    ann = sample.annotations
    rows = []
    for i in range(len(ann)):
        row = ann[i]
        row.data = {}
        row.confidence[:] = np.nan
        if row.kind[0] == Kind.POLYGON and any(len(p) > 1 for p in row.shape[0]):
            rec = sample.images[int(row.image[0])]
            rle = rle_encode(polygon_to_mask(row.shape[0], rec.width, rec.height))
            row.kind[:] = int(Kind.MASK)
            row.shape[0] = rle
            row.box[0] = bbox_of_shape(Kind.MASK, rle, rec.width, rec.height)
            rows.append(row)
        elif row.kind[0] == Kind.POLYGON and len(row.shape[0]) > 1:
            for part in row.shape[0]:
                piece = ann[i]
                piece.data = {}
                piece.confidence[:] = np.nan
                piece.shape[0] = [part]
                piece.box[0] = bbox_of_shape(Kind.POLYGON, [part])
                rows.append(piece)
        else:
            rows.append(row)
    return Annotations.concat(rows)


# -- round trips ----------------------------------------------------------------------------
def test_round_trip_over_bundled_photos(sample, tmp_path):
    report = save_cvat(sample, tmp_path / "annotations.xml")
    back = load_cvat(tmp_path / "annotations.xml")
    assert back.labels == sample.labels
    assert [(r.file_name, r.width, r.height) for r in back.images] == [
        (r.file_name, r.width, r.height) for r in sample.images
    ]
    expected = expected_after_cvat(sample)
    assert back.annotations.equals(expected, atol=1e-12)

    n = len(sample.annotations)
    assert report.annotations == len(expected)
    assert report.dropped == {
        "confidence": int(np.sum(~np.isnan(sample.annotations.confidence))),
        "data:source": n,
        "data:author": n,
        "polygon_hole->mask": 1,
        "polygon_multipart->split": 1,
    }
    data = back.annotations.data
    sources = sample.annotations.data["source"]
    assert data["cvat_source"].tolist()[: len(sources)][:3] == ["manual"] * 3
    assert "auto" in data["cvat_source"].tolist()  # model annotations
    assert set(data["z_order"].tolist()) == {0, None}  # tags have no z_order
    # the coins mask comes back pixel for pixel
    mask_rows = np.flatnonzero(back.annotations.kind == Kind.MASK)
    assert np.array_equal(rle_decode(back.annotations.shape[mask_rows[0]]), coins_mask())


def test_exact_coordinates_with_decimals_none(tmp_path):
    rng = np.random.default_rng(3)
    box = np.column_stack([rng.uniform(0.3, 0.7, (20, 2)), rng.uniform(0.05, 0.3, (20, 2))])
    ann = Annotations.from_boxes(np.zeros(20), box, 0)
    ds = Dataset(images=[record("a.jpg", 333, 217)], labels=["x"], annotations=ann)
    save_cvat(ds, tmp_path / "a.xml", decimals=None)
    # exact floats in the file; relative -> pixels -> relative costs at most an ulp
    np.testing.assert_allclose(load_cvat(tmp_path / "a.xml").annotations.box, box, rtol=0,
                               atol=1e-15)  # fmt: skip
    save_cvat(ds, tmp_path / "b.xml")  # 2 decimals, as CVAT writes
    # each corner within 0.005 px, so widths within 0.01 px
    np.testing.assert_allclose(load_cvat(tmp_path / "b.xml").annotations.box, box, atol=0.01 / 217)


def test_attributes_groups_subsets_and_label_specs_round_trip(tmp_path):
    body = (
        '<box label="car" source="auto" occluded="1" xtl="10" ytl="5" xbr="30.5" ybr="25"'
        ' z_order="2" group_id="7"><attribute name="colour">blue &amp; grey</attribute></box>'
        '<polyline label="road" source="manual" occluded="0" points="0,0;50,25;100,50"'
        ' z_order="0"/>'
        '<tag label="road" source="manual"><attribute name="note">wet</attribute></tag>'
    )
    path = write(tmp_path, cvat_xml(body, image='id="12" name="x/a.jpg" subset="train" '
                                           'task_id="3" width="100" height="50"'))  # fmt: skip
    back = load_cvat(path)
    assert back.labels == ["car", "road"]
    rec = back.images[0]
    assert rec.file_name == "x/a.jpg" and rec.meta == {
        "cvat_id": 12, "subset": "train", "cvat_task_id": "3"
    }  # fmt: skip
    data = back.annotations.data
    assert data["attributes"].tolist() == [{"colour": "blue & grey"}, None, {"note": "wet"}]
    assert data["occluded"].tolist() == [True, False, None]
    assert data["z_order"].tolist() == [2, 0, None]
    assert data["group_id"].tolist() == [7, None, None]
    assert data["cvat_source"].tolist() == ["auto", "manual", "manual"]
    assert back.annotations.kind.tolist() == [Kind.BBOX, Kind.LINE, Kind.LABEL]
    np.testing.assert_allclose(back.annotations.box[0], [20.25 / 100, 15 / 50, 0.205, 0.4])

    out = tmp_path / "out"
    out.mkdir()
    report = save_cvat(back, out)  # a folder: annotations.xml is written in it
    assert report.dropped == {} and report.annotations == 3
    text = (out / "annotations.xml").read_text()
    assert "<color>#ff0000</color>" in text and "<input_type>select</input_type>" in text
    again = load_cvat(out)
    assert again.annotations.equals(back.annotations)
    for key in data:
        assert again.annotations.data[key].tolist() == data[key].tolist(), key
    assert again.images[0].meta == rec.meta


def test_points_element_gives_one_annotation_per_point(tmp_path):
    body = '<points label="car" occluded="0" points="10,5;20,10;30.5,40" z_order="0"/>'
    back = load_cvat(write(tmp_path, cvat_xml(body)))
    np.testing.assert_allclose(back.annotations.box[:, :2], [[0.1, 0.1], [0.2, 0.2], [0.305, 0.8]])
    assert (back.annotations.box[:, 2:] == 0).all()
    save_cvat(back, tmp_path / "out.xml")
    assert (tmp_path / "out.xml").read_text().count("<points ") == 3


def test_rotated_box_becomes_polygon(tmp_path):
    body = '<box label="car" xtl="40" ytl="20" xbr="60" ybr="30" rotation="90"/>'
    back = load_cvat(write(tmp_path, cvat_xml(body)))
    assert back.annotations.kind.tolist() == [Kind.POLYGON]
    ring = back.annotations.shape[0][0][0] * [100, 50]
    # turned a quarter about its centre (50, 25): 20 wide, 10 high becomes 10 wide, 20 high
    np.testing.assert_allclose(ring.min(axis=0), [45, 15], atol=1e-9)
    np.testing.assert_allclose(ring.max(axis=0), [55, 35], atol=1e-9)
    np.testing.assert_allclose(ring[0], [55, 15], atol=1e-9)  # top-left went to top-right


def test_cvat_mask_encoding(tmp_path):
    # a 3 wide, 2 high box at (left 1, top 2): rows "011" and "110", row-major runs 1, 4, 1
    body = '<mask label="road" source="manual" occluded="0" rle="1, 4, 1" left="1" top="2"' \
           ' width="3" height="2" z_order="0"/>'  # fmt: skip
    path = write(tmp_path, cvat_xml(body, image='id="0" name="m.png" width="6" height="5"'))
    back = load_cvat(path)
    mask = rle_decode(back.annotations.shape[0])
    expected = np.zeros((5, 6), dtype=bool)
    expected[2, 2:4] = True
    expected[3, 1:3] = True
    assert np.array_equal(mask, expected)
    np.testing.assert_allclose(back.annotations.box[0], [2.5 / 6, 3 / 5, 3 / 6, 2 / 5])
    save_cvat(back, tmp_path / "out.xml")
    assert (
        'rle="1, 4, 1" left="1" top="2" width="3" height="2"' in (tmp_path / "out.xml").read_text()
    )


def test_mask_with_set_corner_starts_with_empty_run(tmp_path):
    mask = np.zeros((4, 4), dtype=bool)
    mask[1:3, 1:3] = True
    ann = Annotations(
        image=[0], kind=[int(Kind.MASK)], label=[0], box=[[0.5, 0.5, 0.5, 0.5]],
        confidence=[np.nan], shape=[rle_encode(mask)],
    )  # fmt: skip
    ds = Dataset(images=[record("m.png", 4, 4)], labels=["x"], annotations=ann)
    save_cvat(ds, tmp_path / "out.xml")
    assert 'rle="0, 4"' in (tmp_path / "out.xml").read_text()
    assert np.array_equal(rle_decode(load_cvat(tmp_path / "out.xml").annotations.shape[0]), mask)


def test_labels_without_meta_and_unsupported_shapes(tmp_path):
    body = (
        '<ellipse label="sun" cx="10" cy="10" rx="3" ry="3"/><box label="sky" xtl="0" ytl="0"'
        ' xbr="10" ybr="10"/><tag label="day"/>'
    )
    path = write(tmp_path, cvat_xml(body, meta=""))
    expect_error(path, "annotations.xml: image[0] 'a.jpg' ellipse[0]", "skip_unsupported")
    back = load_cvat(path, skip_unsupported=True)
    assert back.labels == ["sky", "day"]
    assert back.annotations.kind.tolist() == [Kind.BBOX, Kind.LABEL]


def test_image_size_from_images_root(sample, tmp_path):
    photos = copy_photos(sample, tmp_path / "photos")
    path = write(tmp_path, cvat_xml('<tag label="car"/>', image='id="0" name="rocket.jpg"'))
    back = load_cvat(path, images_root=photos)
    assert (back.images[0].width, back.images[0].height) == photo_size("rocket.jpg")
    expect_error(path, "annotations.xml: image[0] 'rocket.jpg'.width", "images_root")


def test_registry_and_memory_location(sample):
    fmt = get_format("cvat")
    report = fmt.save(sample, "memory://cvat-test/annotations.xml")
    assert len(fmt.load("memory://cvat-test/annotations.xml").annotations) == report.annotations


def test_save_reports_unlabelled_and_empty_shapes(tmp_path):
    empty = rle_encode(np.zeros((4, 4), dtype=bool))
    ann = Annotations(
        image=[0, 0], kind=[int(Kind.BBOX), int(Kind.MASK)], label=[-1, 0],
        box=[[0.5, 0.5, 0.5, 0.5], [np.nan] * 4], confidence=[np.nan, np.nan],
        shape=[None, empty],
    )  # fmt: skip
    ds = Dataset(images=[record("m.png", 4, 4)], labels=["x"], annotations=ann)
    report = save_cvat(ds, tmp_path / "out.xml")
    assert report.dropped == {"no_label": 1, "empty_shape": 1} and report.annotations == 0
    assert len(load_cvat(tmp_path / "out.xml").annotations) == 0


# -- hostile input -------------------------------------------------------------------------
IMG = "annotations.xml: image[0] 'a.jpg'"


@pytest.mark.parametrize(
    ("body", "where", "match"),
    [
        ('<box label="car" xtl="abc" ytl="0" xbr="1" ybr="1"/>', f"{IMG} box[0].xtl",
         "expected a number"),
        ('<box label="car" xtl="0" ytl="0" xbr="1"/>', f"{IMG} box[0].ybr", "needs xtl"),
        ('<box label="car" xtl="0" ytl="0" xbr="1" ybr="inf"/>', f"{IMG} box[0]", "finite"),
        ('<box label="car" xtl="0" ytl="0" xbr="10" ybr="90"/>', f"{IMG} box[0]", "outside"),
        ('<box label="car" xtl="9" ytl="0" xbr="1" ybr="1"/>', f"{IMG} box[0]", "xbr >= xtl"),
        ('<box label="truck" xtl="0" ytl="0" xbr="1" ybr="1"/>', f"{IMG} box[0]",
         "not declared"),
        ('<box xtl="0" ytl="0" xbr="1" ybr="1"/>', f"{IMG} box[0]", "needs a 'label'"),
        ('<tag label="car"/><polygon label="car" points="1,1;2,2;3"/>',
         f"{IMG} polygon[1].points", "x,y pairs"),
        ('<polygon label="car" points="1,1;2,x;3,3"/>', f"{IMG} polygon[0].points", "numbers"),
        ('<polygon label="car" points="1,1;2,2"/>', f"{IMG} polygon[0]", "2 point"),
        ('<polyline label="car" points="1,1;200,2"/>', f"{IMG} polyline[0]", "outside"),
        ('<points label="car" points="1,1;2,nan"/>', f"{IMG} points[0].points", "finite"),
        ('<mask label="car" rle="1, 2" left="0" top="0" width="2" height="2"/>',
         f"{IMG} mask[0].rle", "cover 3 pixels"),
        ('<mask label="car" rle="1, -2, 5" left="0" top="0" width="2" height="2"/>',
         f"{IMG} mask[0].rle", "negative"),
        ('<mask label="car" rle="1, 3" left="99" top="0" width="2" height="2"/>',
         f"{IMG} mask[0]", "leaves the 100x50 image"),
        ('<mask label="car" rle="a, b" left="0" top="0" width="2" height="2"/>',
         f"{IMG} mask[0].rle", "whole numbers"),
        ('<mask label="car" left="0" top="0" width="2" height="2"/>', f"{IMG} mask[0]",
         "non-empty 'rle'"),
        ('<box label="car" xtl="0" ytl="0" xbr="1" ybr="1" occluded="yes"/>',
         f"{IMG} box[0].occluded", "whole number"),
        ('<cuboid label="car"/>', f"{IMG} cuboid[0]", "cannot be read"),
        ('<circle label="car"/>', f"{IMG} circle[0]", "cannot be read"),
    ],
)  # fmt: skip
def test_bad_shapes_name_image_and_element(tmp_path, body, where, match):
    expect_error(write(tmp_path, cvat_xml(body)), where, match)


@pytest.mark.parametrize(
    ("image", "where", "match"),
    [
        ('id="0" name="../../etc/passwd" width="10" height="10"', "image[0].name", "escapes"),
        ('id="0" name="/abs/a.jpg" width="10" height="10"', "image[0].name", "relative"),
        ('id="0" width="10" height="10"', "image[0].name", "non-empty string"),
        ('id="0" name="a.jpg" width="-10" height="10"', "image[0] 'a.jpg'.width", "positive"),
        ('id="0" name="a.jpg" width="ten" height="10"', "image[0] 'a.jpg'.width", "number"),
    ],
)
def test_bad_images(tmp_path, image, where, match):
    expect_error(write(tmp_path, cvat_xml("", image=image)), f"annotations.xml: {where}", match)


def test_document_level_problems(tmp_path):
    doc = cvat_xml('<tag label="car"/>')
    expect_error(write(tmp_path, doc[: len(doc) - 30]), "annotations.xml", "invalid XML")
    expect_error(write(tmp_path, "<annotation/>"), "annotations.xml", "must be <annotations>")
    video = '<annotations><track id="0" label="car"><box frame="0"/></track></annotations>'
    expect_error(write(tmp_path, video), "annotations.xml", "CVAT for video")
    twice = cvat_xml("").replace("</annotations>", '<image id="1" name="a.jpg" width="1" '
                                                   'height="1"/></annotations>')  # fmt: skip
    expect_error(write(tmp_path, twice), "annotations.xml: image[1].name", "listed twice")
    dup = LABELS.replace("<name>road</name>", "<name>car</name>")
    expect_error(
        write(tmp_path, cvat_xml("", meta=dup)), "annotations.xml: meta labels[1]", "declared twice"
    )
    with pytest.raises(InvalidInput, match="does not exist"):
        load_cvat(tmp_path / "missing.xml")


def test_entity_expansion_and_external_entities_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    cp037_body = BILLION_LAUGHS.decode().split("\n", 1)[1] + cvat_xml('<tag label="&lol9;"/>')
    attacks = {
        "laughs": BILLION_LAUGHS + cvat_xml('<tag label="&lol9;"/>', meta="").encode(),
        "xxe": external_entity(secret) + cvat_xml('<tag label="&xxe;"/>', meta="").encode(),
        # EBCDIC after an ASCII declaration: no ASCII "<!DOCTYPE" to see; refused all the same
        "cp037": b'<?xml version="1.0" encoding="cp037"?>' + cp037_body.encode("cp037"),
    }
    for name, doc in attacks.items():
        with pytest.raises(InvalidInput) as info:
            load_cvat(write(tmp_path, doc))
        assert info.value.where == "annotations.xml", name
        assert "TOP SECRET" not in str(info.value)


def test_save_refuses_unsafe_names(tmp_path):
    ann = Annotations.from_boxes([0], [[0.5, 0.5, 0.2, 0.2]], 0)
    ds = Dataset(images=[record("../a.jpg", 10, 10)], labels=["x"], annotations=ann)
    with pytest.raises(InvalidInput, match="escapes"):
        save_cvat(ds, tmp_path / "out.xml")
    ds = Dataset(images=[record("a.jpg", 10, 10)], labels=["x\x00"], annotations=ann)
    with pytest.raises(InvalidInput, match="XML cannot store"):
        save_cvat(ds, tmp_path / "out.xml")
    assert not (tmp_path / "out.xml").exists()


# -- huge input ----------------------------------------------------------------------------
@pytest.mark.slow
def test_million_boxes(tmp_path):
    n = 1_000_000
    rng = np.random.default_rng(0)
    width, height = 640, 480
    corner = rng.integers(0, 400, size=(n, 2))
    size = rng.integers(1, 80, size=(n, 2))
    rel = np.column_stack([(corner + size / 2) / [width, height], size / [width, height]])
    ann = Annotations.from_boxes(np.zeros(n), rel, rng.integers(0, 3, size=n))
    big = Dataset(images=[record("big.jpg", width, height)], labels=["a", "b", "c"],
                  annotations=ann)  # fmt: skip

    start = time.perf_counter()
    save_cvat(big, tmp_path / "big.xml")
    saved = time.perf_counter() - start
    back = load_cvat(tmp_path / "big.xml")
    loaded = time.perf_counter() - start - saved
    print(f"CVAT, {n} boxes: saved in {saved:.2f} s, loaded in {loaded:.2f} s")
    assert len(back.annotations) == n
    np.testing.assert_allclose(back.annotations.box, rel, atol=1e-12)
    assert np.array_equal(back.annotations.label, ann.label)
