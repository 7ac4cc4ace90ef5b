"""YOLO folders: round trips over the bundled photos, layout rules, hostile and huge input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from annoloop.errors import AccessDenied, InvalidInput
from annoloop.formats import get_format
from annoloop.formats.dataset import Dataset
from annoloop.formats.yolo import load_yolo, save_yolo
from annoloop.geometry import Annotations, Kind, polygon_area, rle_area, rle_decode
from tests.formats.coco_data import copy_photos, photo_size, sample_dataset
from tests.formats.yolo_data import by_file_name, of_kinds, record, without_data, write_png


# -- helpers ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample() -> Dataset:
    return sample_dataset()


@pytest.fixture(scope="module")
def photo_src(sample: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_photos(sample, tmp_path_factory.mktemp("yolo_photos"))


def make_folder(root: Path, labels: dict[str, str], *, images: dict[str, tuple[int, int]], names):
    """A YOLO folder with real PNG images, label files and a data.yaml (or none)."""
    for name, (w, h) in images.items():
        write_png(root / "images" / name, w, h)
    for name, content in labels.items():
        path = root / "labels" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    if names is not None:
        (root / "data.yaml").write_text(names)
    return root


def simple(tmp_path: Path, label_text: str | bytes, names: str = "names: [a, b]\n") -> Path:
    return make_folder(
        tmp_path / "ds", {"img.txt": label_text}, images={"img.png": (100, 50)}, names=names
    )


def expect_error(folder: Path, where: str, match: str, **options) -> InvalidInput:
    with pytest.raises(InvalidInput, match=match) as info:
        load_yolo(folder, **options)
    assert info.value.where == where, str(info.value)
    return info.value


# -- round trips ----------------------------------------------------------------------------
def test_detect_round_trip_over_bundled_photos(sample, photo_src, tmp_path):
    report = save_yolo(sample, tmp_path / "y", images_root=photo_src, copy_images=True)
    back = load_yolo(tmp_path / "y")

    kept = of_kinds(sample, Kind.BBOX, Kind.POLYGON, Kind.MASK)
    expected = by_file_name(without_data(kept, confidence=False))
    ann = expected.annotations
    ann.kind[:] = int(Kind.BBOX)  # polygons and masks come back as their bounding boxes
    ann.shape[:] = None
    assert back.labels == sample.labels  # data.yaml keeps the whole label list, in order
    assert [(r.file_name, r.width, r.height) for r in back.images] == [
        (r.file_name, r.width, r.height) for r in expected.images
    ]
    assert back.images[0].width == photo_size("astronaut.png")[0]
    assert back.annotations.equals(ann, atol=1e-6)

    kinds = sample.annotations.kind
    assert report.annotations == len(kept.annotations)
    assert report.dropped == {
        "label": int(np.sum(kinds == Kind.LABEL)),
        "point": int(np.sum(kinds == Kind.POINT)),
        "line": int(np.sum(kinds == Kind.LINE)),
        "polygon->bbox": int(np.sum(kinds == Kind.POLYGON)),
        "mask->bbox": int(np.sum(kinds == Kind.MASK)),
        "confidence": int(np.sum(~np.isnan(kept.annotations.confidence))),
        "data:source": len(kept.annotations),
        "data:author": len(kept.annotations),
    }


def test_exact_floats_and_confidence_round_trip(sample, photo_src, tmp_path):
    boxes = of_kinds(sample, Kind.BBOX)
    report = save_yolo(
        boxes, tmp_path / "y", images_root=photo_src, copy_images=True,
        precision=None, confidence=True,
    )  # fmt: skip
    assert "confidence" not in report.dropped
    back = load_yolo(tmp_path / "y", task="detect")
    expected = by_file_name(without_data(boxes))
    assert back.annotations.equals(expected.annotations, atol=0.0)
    assert np.count_nonzero(~np.isnan(back.annotations.confidence)) == 2


def test_segment_round_trip(sample, photo_src, tmp_path):
    report = save_yolo(
        sample, tmp_path / "s", task="segment", images_root=photo_src, copy_images=True
    )
    back = load_yolo(tmp_path / "s")
    assert set(back.annotations.kind.tolist()) == {int(Kind.POLYGON)}
    assert report.dropped["bbox->polygon"] == int(np.sum(sample.annotations.kind == Kind.BBOX))
    assert report.dropped["mask->polygon"] == 1
    assert report.dropped["polygon_hole"] >= 1  # the astronaut patch (and holes in the mask)
    assert report.dropped["polygon_multipart->split"] >= 1  # the two cat ears

    images = {r.file_name: i for i, r in enumerate(back.images)}
    ann = back.annotations
    # the cat ears: one annotation with two parts comes back as two one-part polygons
    ears = sample.annotations[sample.annotations.label == sample.labels.index("ear")]
    got = ann[(ann.image == images["chelsea.png"]) & (ann.label == back.labels.index("ear"))]
    assert len(got) == 2
    for part, polygon in zip(ears.shape[0], got.shape, strict=True):
        np.testing.assert_allclose(polygon[0][0], part[0], atol=1e-6)
    # the patch with a hole keeps its exterior only
    patch = ann[ann.label == back.labels.index("patch")]
    outer = sample.annotations.shape[sample.annotations.label == sample.labels.index("patch")][0]
    assert len(patch) == 1 and len(patch.shape[0][0]) == 1
    np.testing.assert_allclose(patch.shape[0][0][0], outer[0][0], atol=1e-6)
    # the coins mask becomes polygons covering about the same area
    w, h = photo_size("coins.png")
    coin_rows = ann[(ann.image == images["coins.png"])]
    mask_row = sample.annotations.kind == Kind.MASK
    mask_area = rle_area(sample.annotations.shape[mask_row][0])
    traced = coin_rows[coin_rows.box[:, 2] * w > 0]
    n_boxes = int(np.sum((sample.annotations.kind == Kind.BBOX) & (sample.annotations.image == 0)))
    traced_area = sum(polygon_area(s, w, h) for s in traced.shape[n_boxes:])
    assert traced_area == pytest.approx(mask_area, rel=0.05)
    assert rle_decode(sample.annotations.shape[mask_row][0]).sum() == mask_area


def test_polygon_lines_as_boxes_with_task_detect(tmp_path):
    folder = simple(tmp_path, "1 0.1 0.2 0.5 0.2 0.3 0.8\n0 0.5 0.5 0.2 0.2\n")
    back = load_yolo(folder, task="detect")
    np.testing.assert_allclose(back.annotations.box[0], [0.3, 0.5, 0.4, 0.6])
    assert back.annotations.kind.tolist() == [Kind.BBOX, Kind.BBOX]
    auto = load_yolo(folder)
    assert auto.annotations.kind.tolist() == [Kind.POLYGON, Kind.BBOX]
    np.testing.assert_allclose(
        auto.annotations.shape[0][0][0], [[0.1, 0.2], [0.5, 0.2], [0.3, 0.8]]
    )
    np.testing.assert_allclose(auto.annotations.box[0], [0.3, 0.5, 0.4, 0.6])


def test_confidence_columns_are_read(tmp_path):
    folder = simple(tmp_path, "0 0.5 0.5 0.2 0.2 0.75\n1 0.1 0.1 0.5 0.1 0.3 0.4 0.5\n")
    back = load_yolo(folder)
    np.testing.assert_allclose(back.annotations.confidence, [0.75, 0.5])
    assert back.annotations.kind.tolist() == [Kind.BBOX, Kind.POLYGON]


def test_split_folders_and_names_list(tmp_path):
    folder = make_folder(
        tmp_path / "ds",
        {"train/a.txt": "0 0.5 0.5 0.5 0.5\n", "val/b.txt": "1 0.5 0.5 0.2 0.2\n"},
        images={"train/a.png": (40, 30), "val/b.jpg": (20, 10)},
        names="train: images/train\nval: images/val\nnames: [cat, dog]\n",
    )
    back = load_yolo(folder)
    assert [r.file_name for r in back.images] == ["train/a.png", "val/b.jpg"]
    assert [r.meta["split"] for r in back.images] == ["train", "val"]
    assert (back.images[1].width, back.images[1].height) == (20, 10)
    assert back.labels == ["cat", "dog"]
    save_yolo(back, tmp_path / "out", images_root=folder / "images", copy_images=True)
    text = (tmp_path / "out" / "data.yaml").read_text()
    assert "train: images/train" in text and "val: images/val" in text
    again = load_yolo(tmp_path / "out")
    assert again.annotations.equals(back.annotations, atol=1e-6)
    assert [r.meta for r in again.images] == [r.meta for r in back.images]


def test_images_without_labels_and_empty_label_files(tmp_path):
    folder = make_folder(
        tmp_path / "ds",
        {"a.txt": "0 0.5 0.5 0.5 0.5\n", "b.txt": "", "c.txt": "\n  \n"},
        images={"a.png": (10, 10), "b.png": (10, 10), "c.png": (10, 10), "d.png": (8, 6)},
        names="names: {0: only}\n",
    )
    back = load_yolo(folder)
    assert [r.file_name for r in back.images] == ["a.png", "b.png", "c.png", "d.png"]
    assert back.annotations.image.tolist() == [0]
    out = tmp_path / "out"
    save_yolo(back, out, images_root=folder / "images", copy_images=True)
    # every image gets a label file; negatives get an empty one
    assert (out / "labels" / "d.txt").read_text() == ""
    assert load_yolo(out).annotations.equals(back.annotations, atol=1e-6)


def test_label_file_without_image(tmp_path):
    folder = make_folder(
        tmp_path / "ds",
        {"a.txt": "0 0.5 0.5 0.5 0.5\n", "ghost.txt": "0 0.5 0.5 0.1 0.1\n"},
        images={"a.png": (10, 10)},
        names="names: [x]\n",
    )
    expect_error(folder, "labels/ghost.txt", "no image")
    back = load_yolo(folder, missing_images="skip")
    assert len(back.images) == 1 and len(back.annotations) == 1


def test_class_names_from_classes_txt_and_option(tmp_path):
    folder = simple(tmp_path, "1 0.5 0.5 0.2 0.2\n", names=None)
    (folder / "classes.txt").write_text("\ufeffcoral\nsand\n\n")
    assert load_yolo(folder).labels == ["coral", "sand"]
    assert load_yolo(folder, names=["x", "y", "z"]).labels == ["x", "y", "z"]
    (folder / "classes.txt").unlink()
    expect_error(folder, f"file://{folder}", "no data.yaml")


def test_crlf_bom_and_tabs(tmp_path):
    folder = simple(tmp_path, b"\xef\xbb\xbf0\t0.5 0.5 0.2 0.2\r\n1 0.5 0.5 0.4 0.4\r\n")
    back = load_yolo(folder)
    assert back.annotations.label.tolist() == [0, 1]


def test_memory_location_round_trip(sample, photo_src):
    boxes = of_kinds(sample, Kind.BBOX)
    save_yolo(boxes, "memory://yolo-test/ds", images_root=photo_src, copy_images=True)
    back = load_yolo("memory://yolo-test/ds")
    expected = by_file_name(without_data(boxes, confidence=False))
    assert back.annotations.equals(expected.annotations, atol=1e-6)


def test_registry_and_no_temporary_files(sample, photo_src, tmp_path):
    fmt = get_format("yolo")
    report = fmt.save(of_kinds(sample, Kind.BBOX), tmp_path / "y", images_root=photo_src,
                      copy_images=True)  # fmt: skip
    assert report.images == len(sample.images)
    assert not [p for p in (tmp_path / "y").rglob("*") if p.name.endswith(".part")]
    assert len(fmt.load(tmp_path / "y").annotations) == report.annotations


# -- hostile input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "line", "match"),
    [
        ("0 0.5 0.5 0.2 0.2\n0 0.5 abc 0.2 0.2\n", 2, "'abc' is not a number"),
        ("0 0.5 0.5 0.2\n", 1, "got 4 value"),
        ("0 0.5 0.5 0.2 0.2\n\n0 0.5 0.5 0.2 0.2 0.1 0.3 0.4 0.7 0.8 0.1 0.2 x\n", 3,
         "'x' is not a number"),
        ("2 0.5 0.5 0.2 0.2\n", 1, "class id 2 is not one of 0..1"),
        ("-1 0.5 0.5 0.2 0.2\n", 1, "class id -1"),
        ("0.5 0.5 0.5 0.2 0.2\n", 1, "class id 0.5"),
        ("0 0.5 0.5 0.2 0.2\n1 1.5 0.5 0.4 0.4\n", 2, "outside"),
        ("0 0.5 0.5 0 0.2\n", 1, "positive"),
        ("0 nan 0.5 0.2 0.2\n", 1, "finite"),
        ("0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.5 0.1 0.3 0.4 0.5 0.6\n0 0.5 0.5 0.2 0.2\n0 0.5 0.", 4,
         "got 3 value"),
        ("0 0.1 0.1 0.5 0.1 0.1 0.1\n", 1, "ring 0 has 2 point"),
        ("\x00\xff\xfe garbage\n", 1, "is not a number"),
    ],
)  # fmt: skip
def test_bad_label_lines_name_file_and_line(tmp_path, content, line, match):
    folder = simple(tmp_path, content)
    expect_error(folder, f"labels/img.txt: line {line}", match)


def test_small_overshoot_is_tolerated(tmp_path):
    # 0.5 % outside the image: inside the 1 % tolerance
    back = load_yolo(simple(tmp_path, "0 0.5 0.5 1.01 0.2\n"))
    assert len(back.annotations) == 1


def test_segment_task_refuses_box_lines(tmp_path):
    folder = simple(tmp_path, "0 0.1 0.1 0.5 0.1 0.3 0.4\n0 0.5 0.5 0.2 0.2\n")
    expect_error(folder, "labels/img.txt: line 2", "box line", task="segment")


@pytest.mark.parametrize(
    ("yaml_text", "where", "match"),
    [
        ("names: [a, b\n", "data.yaml", "invalid YAML"),
        ("- a\n- b\n", "data.yaml", "YAML mapping"),
        ("names: 5\n", "data.yaml: names", "list or a mapping"),
        ("names: {0: a, 2: b}\n", "data.yaml: names", "without gaps"),
        ("names: [a, [b]]\n", "data.yaml: names[1]", "must be a string"),
        ("names: [a, a]\n", "class 1", "used by class 0"),
        ("nc: 3\nnames: [a, b]\n", "data.yaml: nc", "nc is 3"),
        ("names: !!python/object/apply:os.system ['echo hacked']\n", "data.yaml", "invalid YAML"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nnames: [*c, *c, *c, *c, *c, *c, *c]\n",
            "data.yaml: names[0]",
            "must be a string",
        ),
    ],
)
def test_bad_data_yaml(tmp_path, yaml_text, where, match):
    folder = simple(tmp_path, "0 0.5 0.5 0.2 0.2\n", names=yaml_text)
    expect_error(folder, where, match)


def test_bad_images_and_names(tmp_path):
    folder = simple(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    (folder / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    expect_error(folder, "images/broken.png", "cannot read the image size")
    (folder / "images" / "broken.png").unlink()
    write_png(folder / "images" / "img.jpg", 4, 4)  # img.png and img.jpg share labels/img.txt
    expect_error(folder, "images/img.png", "share the label file")


def test_label_file_linked_outside_the_folder(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("0 0.5 0.5 0.2 0.2\n")
    folder = simple(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    (folder / "labels" / "img.txt").unlink()
    (folder / "labels" / "img.txt").symlink_to(outside)
    with pytest.raises(AccessDenied, match="symbolic link"):
        load_yolo(folder)


def test_hidden_files_are_ignored(tmp_path):
    folder = simple(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    (folder / "labels" / "._img.txt").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (folder / "images" / "._img.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    assert len(load_yolo(folder).annotations) == 1


def test_not_a_folder(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InvalidInput, match="not a folder"):
        load_yolo(tmp_path / "file.txt")
    with pytest.raises(InvalidInput, match="not a folder"):
        load_yolo(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "classes.txt").write_text("a\n")
    with pytest.raises(InvalidInput, match="neither images/ nor labels/"):
        load_yolo(tmp_path / "empty")


def test_save_refuses_unsafe_names_and_collisions(tmp_path):
    ann = Annotations.from_boxes([0], [[0.5, 0.5, 0.2, 0.2]], 0, label_names=["a"])
    for bad in ("../evil.png", "/etc/passwd.png"):
        ds = Dataset(images=[record(bad, 10, 10)], labels=["a"], annotations=ann)
        with pytest.raises(InvalidInput) as info:
            save_yolo(ds, tmp_path / "out")
        assert info.value.where == "images[0].file_name"
    ds = Dataset(
        images=[record("a.jpg", 10, 10), record("a.png", 10, 10)], labels=["a"], annotations=ann
    )
    with pytest.raises(InvalidInput, match="both be written"):
        save_yolo(ds, tmp_path / "out")
    with pytest.raises(InvalidInput, match="needs images_root"):
        save_yolo(ds, tmp_path / "out", copy_images=True)
    with pytest.raises(InvalidInput, match="task"):
        save_yolo(ds, tmp_path / "out", task="pose")
    assert not (tmp_path / "out").exists()


def test_unlabelled_rows_are_reported(tmp_path):
    ann = Annotations.from_boxes([0, 0], [[0.5, 0.5, 0.2, 0.2]] * 2, [0, -1], label_names=["a"])
    ds = Dataset(images=[record("a.png", 10, 10)], labels=["a"], annotations=ann)
    report = save_yolo(ds, tmp_path / "out")
    assert report.dropped == {"no_label": 1} and report.annotations == 1


# -- huge input ----------------------------------------------------------------------------
def test_million_boxes_save_and_load_in_seconds(tmp_path):
    n = 1_000_000
    rng = np.random.default_rng(0)
    centre = rng.uniform(0.2, 0.8, size=(n, 2))
    size = rng.uniform(0.01, 0.2, size=(n, 2))
    cls = rng.integers(0, 3, size=n)
    ann = Annotations.from_boxes(np.zeros(n), np.hstack([centre, size]), cls)
    big = Dataset(images=[record("big.png", 64, 48)], labels=["a", "b", "c"], annotations=ann)
    folder = tmp_path / "big"
    write_png(folder / "images" / "big.png", 64, 48)

    start = time.perf_counter()
    report = save_yolo(big, folder)
    saved = time.perf_counter() - start
    back = load_yolo(folder)
    loaded = time.perf_counter() - start - saved
    print(f"YOLO, {n} boxes: saved in {saved:.2f} s, loaded in {loaded:.2f} s")
    assert report.annotations == n
    assert (folder / "labels" / "big.txt").stat().st_size > 30 * n
    assert len(back.annotations) == n
    np.testing.assert_allclose(back.annotations.box, ann.box, atol=5e-7)
    assert np.array_equal(back.annotations.label, cls)


@pytest.mark.parametrize(("bad", "match"), [("abc", "'abc' is not a number"), ("nan", "finite")])
def test_bad_value_deep_in_a_large_file(tmp_path, bad, match):
    lines = ["0 0.5 0.5 0.2 0.2"] * 30_000
    lines[24_999] = f"0 0.5 {bad} 0.2 0.2"
    folder = simple(tmp_path, "\n".join(lines) + "\n")
    expect_error(folder, "labels/img.txt: line 25000", match)


def test_copy_images_checks_every_source_first(sample, photo_src, tmp_path):
    boxes = of_kinds(sample, Kind.BBOX)
    boxes.images[-1] = record("not-there.png", 10, 10)
    with pytest.raises(InvalidInput, match="not in") as info:
        save_yolo(boxes, tmp_path / "out", images_root=photo_src, copy_images=True)
    assert info.value.where == f"images[{len(boxes.images) - 1}]"
    assert not (tmp_path / "out").exists()
