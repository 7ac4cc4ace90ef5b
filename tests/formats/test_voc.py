"""Pascal VOC XML: round trips over the bundled photos, conventions, hostile and huge input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.formats import get_format
from annoloop.formats.dataset import Dataset
from annoloop.formats.voc import load_voc, save_voc
from annoloop.geometry import Annotations, Kind
from tests.formats.coco_data import copy_photos, photo_size, sample_dataset
from tests.formats.yolo_data import (
    BILLION_LAUGHS,
    by_file_name,
    external_entity,
    of_kinds,
    record,
    relabel,
)


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return sample_dataset()


def voc_xml(objects: str, *, filename: str = "img.jpg", size: str | None = None) -> str:
    size = size if size is not None else "<width>100</width><height>50</height><depth>3</depth>"
    return (
        f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>"
        f"<size>{size}</size>{objects}</annotation>"
    )


def obj(name="dog", box=(1, 1, 10, 20), extra="") -> str:
    xmin, ymin, xmax, ymax = box
    return (
        f"<object><name>{name}</name>{extra}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = folder / "Annotations" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


def expect_error(path: Path, where: str, match: str, **options) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        load_voc(path, **options)
    assert info.value.where == where, str(info.value)


# -- round trips ----------------------------------------------------------------------------
def test_round_trip_over_bundled_photos(sample, tmp_path):
    report = save_voc(sample, tmp_path / "voc")
    back = load_voc(tmp_path / "voc")
    boxes = of_kinds(sample, Kind.BBOX)
    expected = relabel(by_file_name(boxes), back.labels)
    assert [(r.file_name, r.width, r.height) for r in back.images] == [
        (r.file_name, r.width, r.height) for r in expected.images
    ]
    # whole-pixel boxes survive VOC's integer, 1-based coordinates exactly
    assert np.array_equal(back.annotations.image, expected.annotations.image)
    assert np.array_equal(back.annotations.label, expected.annotations.label)
    np.testing.assert_allclose(back.annotations.box, expected.annotations.box, atol=1e-12)
    assert np.isnan(back.annotations.confidence).all()
    assert set(back.labels) == {sample.labels[j] for j in boxes.annotations.label}

    kinds = sample.annotations.kind
    n_boxes = int(np.sum(kinds == Kind.BBOX))
    assert report.annotations == n_boxes and report.images == len(sample.images)
    assert report.dropped == {
        "label": int(np.sum(kinds == Kind.LABEL)),
        "point": int(np.sum(kinds == Kind.POINT)),
        "line": int(np.sum(kinds == Kind.LINE)),
        "polygon": int(np.sum(kinds == Kind.POLYGON)),
        "mask": int(np.sum(kinds == Kind.MASK)),
        "confidence": int(np.sum(~np.isnan(boxes.annotations.confidence))),
        "data:source": n_boxes,
        "data:author": n_boxes,
    }
    # every image gets a file, also those without boxes
    assert sorted(p.name for p in (tmp_path / "voc" / "Annotations").iterdir()) == sorted(
        Path(r.file_name).stem + ".xml" for r in sample.images
    )


def test_one_based_inclusive_convention(tmp_path):
    write(tmp_path, {"a.xml": voc_xml(obj(box=(1, 1, 10, 20)))})
    back = load_voc(tmp_path)
    # pixels 1..10 (1-based, inclusive) are [0, 10) in continuous pixels: 10 wide
    np.testing.assert_allclose(back.annotations.box[0], [5 / 100, 10 / 50, 10 / 100, 20 / 50])
    zero_based = load_voc(tmp_path, one_based=False)
    np.testing.assert_allclose(zero_based.annotations.box[0], [5.5 / 100, 10.5 / 50, 0.09, 0.38])
    save_voc(back, tmp_path / "again")
    text = (tmp_path / "again" / "Annotations" / "img.xml").read_text()
    assert "<xmin>1</xmin>" in text and "<xmax>10</xmax>" in text
    save_voc(back, tmp_path / "zero", one_based=False, decimals=1)
    text = (tmp_path / "zero" / "Annotations" / "img.xml").read_text()
    assert "<xmin>0.0</xmin>" in text and "<xmax>10.0</xmax>" in text


def test_flags_pose_attributes_and_meta_round_trip(tmp_path):
    extra = (
        "<pose>Left</pose><truncated>1</truncated><difficult>0</difficult><occluded>1</occluded>"
        "<attributes><attribute><name>colour</name><value>brown &amp; white</value></attribute>"
        "</attributes>"
    )
    doc = voc_xml(obj(extra=extra) + obj("cat", (5, 5, 50, 40))).replace(
        "<size>",
        "<source><database>The VOC2007 Database</database></source><segmented>1</segmented><size>",
    )
    write(tmp_path / "in", {"a.xml": doc})
    back = load_voc(tmp_path / "in")
    data = back.annotations.data
    assert data["pose"].tolist() == ["Left", None]
    assert data["truncated"].tolist() == [True, None]
    assert data["difficult"].tolist() == [False, None]
    assert data["occluded"].tolist() == [True, None]
    assert data["attributes"].tolist() == [{"colour": "brown & white"}, None]
    meta = back.images[0].meta
    assert meta["voc_folder"] == "VOC2007" and meta["depth"] == 3
    assert meta["voc_source"] == {"database": "The VOC2007 Database"}
    assert meta["voc_segmented"] == "1"

    report = save_voc(back, tmp_path / "out")
    assert report.dropped == {}
    again = load_voc(tmp_path / "out")
    assert again.annotations.equals(back.annotations)
    assert again.images[0].meta == meta
    # written defaults: VOC always has pose, truncated and difficult
    assert again.annotations.data["pose"].tolist() == ["Left", "Unspecified"]
    assert again.annotations.data["truncated"].tolist() == [True, False]
    assert again.annotations.data["occluded"].tolist() == [True, None]
    assert again.annotations.data["attributes"].tolist() == data["attributes"].tolist()


def test_layouts_single_file_and_plain_folder(tmp_path):
    write(tmp_path / "root", {"sub/a.xml": voc_xml(obj(), filename="a.jpg")})
    assert len(load_voc(tmp_path / "root").annotations) == 1  # Annotations/ searched deeply
    single = tmp_path / "root" / "Annotations" / "sub" / "a.xml"
    assert load_voc(single).images[0].file_name == "a.jpg"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.xml").write_text(voc_xml(obj(), filename="x.jpg"))
    (plain / "y.xml").write_text(voc_xml("", filename="y.jpg"))
    back = load_voc(plain)
    assert [r.file_name for r in back.images] == ["x.jpg", "y.jpg"]
    assert back.annotations.image.tolist() == [0]


def test_missing_size_read_from_image(sample, tmp_path):
    photos = copy_photos(sample, tmp_path / "photos")
    write(tmp_path / "ds", {"c.xml": voc_xml(obj(box=(1, 1, 5, 5)), filename="coins.png", size="")})
    back = load_voc(tmp_path / "ds", images_root=photos)
    assert (back.images[0].width, back.images[0].height) == photo_size("coins.png")
    expect_error(tmp_path / "ds", "Annotations/c.xml: size", "images_root")


def test_registry_round_trip_via_memory_location(sample):
    fmt = get_format("voc")
    fmt.save(sample, "memory://voc-test/ds")
    back = fmt.load("memory://voc-test/ds")
    assert len(back.annotations) == int(np.sum(sample.annotations.kind == Kind.BBOX))


def test_special_characters_in_names(tmp_path):
    ann = Annotations.from_boxes([0], [[0.5, 0.5, 0.2, 0.2]], 0)
    ds = Dataset(images=[record("a & b <1>.jpg", 10, 10)], labels=['"x" & <y>'], annotations=ann)
    save_voc(ds, tmp_path / "out")
    back = load_voc(tmp_path / "out")
    assert back.labels == ['"x" & <y>'] and back.images[0].file_name == "a & b <1>.jpg"
    bad = Dataset(images=[record("a.jpg", 10, 10)], labels=["bell\x07"], annotations=ann)
    with pytest.raises(InvalidInput, match="XML cannot store") as info:
        save_voc(bad, tmp_path / "bad")
    assert info.value.where == "labels[0]"


# -- hostile input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("objects", "where", "match"),
    [
        (obj(box=("abc", 1, 10, 20)), "object[0].bndbox.xmin", "expected a number"),
        (obj(box=(1, 1, 10, 20)) + obj(box=(1, 1, "", 20)), "object[1].bndbox.xmax",
         "missing or empty"),
        (obj(box=(1, 1, 10, 20)) + obj(box=(1, 1, " ", 20)), "object[1].bndbox.xmax",
         "expected a number"),
        ("<object><name>x</name></object>", "object[0].bndbox", "needs a <bndbox>"),
        ("<object><bndbox/></object>", "object[0].name", "non-empty <name>"),
        (obj(box=(1, 1, 10, None)).replace("<ymax>None</ymax>", ""), "object[0].bndbox.ymax",
         "is missing"),
        (obj(box=(10, 1, 5, 20)), "object[0].bndbox", "before xmin"),
        (obj(box=(1, 1, 10, 60)), "object[0].bndbox", "outside"),
        (obj(box=(-20, 1, 10, 20)), "object[0].bndbox", "outside"),
        (obj(box=(1, 1, "inf", 20)), "object[0].bndbox", "finite"),
        (obj(extra="<difficult>maybe</difficult>"), "object[0].difficult", "expected 0 or 1"),
    ],
)  # fmt: skip
def test_bad_objects_name_file_and_object(tmp_path, objects, where, match):
    write(tmp_path, {"a.xml": voc_xml(objects)})
    expect_error(tmp_path, f"Annotations/a.xml: {where}", match)


@pytest.mark.parametrize(
    ("size", "where", "match"),
    [
        ("<width>-5</width><height>50</height>", "size.width", "must not be negative"),
        ("<width>abc</width><height>50</height>", "size.width", "expected a number"),
        ("<width>10.5</width><height>50</height>", "size.width", "positive integer"),
    ],
)
def test_bad_sizes(tmp_path, size, where, match):
    write(tmp_path, {"a.xml": voc_xml(obj(), size=size)})
    expect_error(tmp_path, f"Annotations/a.xml: {where}", match)


@pytest.mark.parametrize(
    ("filename", "match"),
    [("../../etc/passwd", "escapes"), ("/etc/passwd", "relative"), ("", "non-empty")],
)
def test_unsafe_file_names(tmp_path, filename, match):
    write(tmp_path, {"a.xml": voc_xml(obj(), filename=filename)})
    expect_error(tmp_path, "Annotations/a.xml: filename", match)


def test_two_files_for_one_image(tmp_path):
    write(tmp_path, {"a.xml": voc_xml(obj()), "b.xml": voc_xml(obj())})
    expect_error(tmp_path, "Annotations/b.xml: filename", "described by Annotations/a.xml")


def test_truncated_and_wrong_documents(tmp_path):
    good = voc_xml(obj())
    write(tmp_path / "t", {"a.xml": good[: len(good) // 2]})
    expect_error(tmp_path / "t", "Annotations/a.xml", "invalid XML")
    write(tmp_path / "r", {"a.xml": "<annotations><image/></annotations>"})
    expect_error(tmp_path / "r", "Annotations/a.xml", "must be <annotation>")
    write(tmp_path / "b", {"a.xml": b"\x89PNG\r\n\x1a\n\x00\x00binary"})
    expect_error(tmp_path / "b", "Annotations/a.xml", "XML")


def test_entity_expansion_and_external_entities_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    laughs = BILLION_LAUGHS + voc_xml(obj(name="&lol9;")).encode()
    xxe = external_entity(secret) + voc_xml(obj(name="&xxe;")).encode()
    # the same attack in UTF-16, where a byte scan for "<!DOCTYPE" sees nothing
    utf16 = (
        (BILLION_LAUGHS + voc_xml(obj(name="&lol9;")).encode())
        .decode()
        .replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
        .encode("utf-16")
    )
    for name, doc in (("laughs", laughs), ("xxe", xxe), ("utf16", utf16)):
        write(tmp_path / name, {"a.xml": doc})
        with pytest.raises(InvalidInput, match="refused unsafe XML") as info:
            load_voc(tmp_path / name)
        assert info.value.where == "Annotations/a.xml"
        assert "TOP SECRET" not in str(info.value)


def test_latin1_document_takes_the_careful_parser(tmp_path):
    doc = voc_xml(obj(name="caf\xe9")).replace("<annotation>", "<annotation>", 1)
    data = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + doc.encode("latin-1")
    write(tmp_path, {"a.xml": data})
    assert load_voc(tmp_path).labels == ["caf\xe9"]


def test_save_refuses_colliding_and_unsafe_names(tmp_path):
    ann = Annotations.from_boxes([0, 1], [[0.5, 0.5, 0.2, 0.2]] * 2, 0)
    ds = Dataset(
        images=[record("a.jpg", 10, 10), record("a.png", 10, 10)], labels=["x"], annotations=ann
    )
    with pytest.raises(InvalidInput, match="both be written"):
        save_voc(ds, tmp_path / "out")
    ds.images[1].file_name = "../b.png"
    with pytest.raises(InvalidInput, match="escapes") as info:
        save_voc(ds, tmp_path / "out")
    assert info.value.where == "images[1].file_name"
    assert not (tmp_path / "out").exists()


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
    save_voc(big, tmp_path / "big")
    saved = time.perf_counter() - start
    back = load_voc(tmp_path / "big")
    loaded = time.perf_counter() - start - saved
    print(f"VOC, {n} boxes in one file: saved in {saved:.2f} s, loaded in {loaded:.2f} s")
    assert len(back.annotations) == n
    np.testing.assert_allclose(back.annotations.box, rel, atol=1e-12)
    assert back.labels == sorted(back.labels, key=["a", "b", "c"].index)


def test_folder_without_xml_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match=r"holds no \.xml files"):
        load_voc(tmp_path / "empty")
    with pytest.raises(InvalidInput, match="does not exist"):
        load_voc(tmp_path / "missing")
