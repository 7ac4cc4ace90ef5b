"""COCO: round trips over real photos, pycocotools reading our files, hostile and huge input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.formats import get_format, load, save
from annoloop.formats.coco import load_coco, load_coco_results, save_coco
from annoloop.geometry import (
    Kind,
    bbox_of_shape,
    polygon_to_mask,
    rle_decode,
    rle_encode,
    rle_to_uncompressed,
)
from tests.formats.coco_data import coins_mask, copy_photos, photo_size, sample_dataset

# pycocotools trips a numpy 2 deprecation inside its own code
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def expected_after_coco(ds):
    """What COCO can hold of ``ds``: lines dropped, polygons with holes turned into masks."""
    ann = ds.annotations[ds.annotations.kind != int(Kind.LINE)]
    for i in np.flatnonzero(ann.kind == int(Kind.POLYGON)):
        if any(len(p) > 1 for p in ann.shape[i]):
            rec = ds.images[ann.image[i]]
            ann.shape[i] = rle_encode(polygon_to_mask(ann.shape[i], rec.width, rec.height))
            ann.kind[i] = int(Kind.MASK)
            ann.box[i] = bbox_of_shape(Kind.MASK, ann.shape[i], rec.width, rec.height)
    return ann


def test_round_trip_over_real_photos(tmp_path: Path) -> None:
    ds = sample_dataset()
    report = save_coco(ds, tmp_path / "instances.json")
    assert report.dropped == {"line": 2, "polygon_hole->rle": 1}
    assert report.images == 5 and report.annotations == len(ds.annotations) - 2
    back = load_coco(tmp_path / "instances.json")
    assert [(r.file_name, r.width, r.height) for r in back.images] == [
        (r.file_name, r.width, r.height) for r in ds.images
    ]
    assert back.labels == ds.labels
    want = expected_after_coco(ds)
    assert back.annotations.equals(want, atol=1e-9)
    assert back.annotations.data["source"].tolist() == want.data["source"].tolist()
    assert back.annotations.data["author"].tolist() == want.data["author"].tolist()
    # the coins mask survives bit for bit
    mask_row = np.flatnonzero(
        (back.annotations.kind == int(Kind.MASK)) & (back.annotations.image == 0)
    )[0]
    assert np.array_equal(rle_decode(back.annotations.shape[mask_row]), coins_mask())
    # a second round trip changes nothing, and keeps the ids
    save_coco(back, tmp_path / "again.json")
    first = json.loads((tmp_path / "instances.json").read_text())
    second = json.loads((tmp_path / "again.json").read_text())
    assert first["annotations"] == second["annotations"]
    assert first["categories"] == second["categories"]


def test_multipolygon_becomes_parts_and_points_keypoints(tmp_path: Path) -> None:
    ds = sample_dataset(["polygon", "point"])
    save_coco(ds, tmp_path / "x.json")
    doc = json.loads((tmp_path / "x.json").read_text())
    ears = [a for a in doc["annotations"] if a["category_id"] == ds.labels.index("ear") + 1]
    assert len(ears) == 1 and len(ears[0]["segmentation"]) == 2  # two parts, one annotation
    eye = next(c for c in doc["categories"] if c["name"] == "eye")
    assert eye["keypoints"] == ["point"]
    nose = next(a for a in doc["annotations"] if "keypoints" in a and a["image_id"] == 3)
    assert nose["keypoints"] == [240.0, 180.0, 2] and nose["num_keypoints"] == 1


def test_pycocotools_reads_our_file_and_scores_perfect_results(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ds = sample_dataset(["bbox", "mask", "polygon"])
    save_coco(ds, tmp_path / "gt.json")
    gt = COCO(str(tmp_path / "gt.json"))
    assert len(gt.getAnnIds()) == len(ds.annotations)
    mask_ann = next(
        a for a in gt.loadAnns(gt.getAnnIds()) if isinstance(a.get("segmentation"), dict)
    )
    assert np.array_equal(gt.annToMask(mask_ann).astype(bool), coins_mask())

    # detections equal to the ground truth boxes score AP 1.0, read back through our loader
    anns = gt.loadAnns(gt.getAnnIds())
    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1}
        for a in anns
    ]
    (tmp_path / "results.json").write_text(json.dumps(results))
    det = gt.loadRes(str(tmp_path / "results.json"))
    ev = COCOeval(gt, det, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    capsys.readouterr()
    assert ev.stats[0] == pytest.approx(1.0)

    loaded = load_coco_results(tmp_path / "results.json", ds)
    want = ds.annotations
    assert np.array_equal(loaded.image, want.image)
    assert np.array_equal(loaded.label, want.label)
    assert np.allclose(loaded.box, want.box, atol=1e-9)
    assert np.all(loaded.kind == int(Kind.BBOX))
    assert np.all(loaded.confidence == 1)


def small_doc() -> dict:
    """A hand-written COCO file over two bundled photos, with odd ids as real files have."""
    w, h = photo_size("coins.png")
    crowd = rle_to_uncompressed(rle_encode(coins_mask()))
    return {
        "info": {"description": "test"},
        "licenses": [{"id": 3, "name": "CC"}],
        "images": [
            {"id": 42, "file_name": "coins.png", "width": w, "height": h, "license": 3},
            {"id": 7, "file_name": "sub/chelsea.png", "width": 451, "height": 300},
        ],
        "categories": [
            {"id": 13, "name": "coin", "supercategory": "money"},
            {"id": 2, "name": "cat", "supercategory": "animal"},
        ],
        "annotations": [
            {"id": 1, "image_id": 42, "category_id": 13, "bbox": [10, 20, 30, 40], "score": 0.5},
            {"id": 2, "image_id": 42, "category_id": 13, "segmentation": crowd, "iscrowd": 1},
            {
                "id": 3,
                "image_id": 7,
                "category_id": 2,
                "segmentation": [[10, 10, 100, 10, 100, 90], [200, 200, 250, 200, 250, 260]],
                "bbox": [10, 10, 240, 250],
            },
            {"id": 4, "image_id": 7, "category_id": 2},
        ],
    }


def test_hand_written_file_ids_crowd_and_meta_survive(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(json.dumps(small_doc()))
    ds = load_coco(tmp_path / "in.json")
    ann = ds.annotations
    assert ds.labels == ["coin", "cat"]
    assert ann.kind.tolist() == [int(Kind.BBOX), int(Kind.MASK), int(Kind.POLYGON), 0]
    assert ds.images[0].meta == {"coco_id": 42, "license": 3}
    assert np.array_equal(rle_decode(ann.shape[1]), coins_mask())
    assert isinstance(ann.shape[1]["counts"], str)  # stored compressed
    assert ann.data["iscrowd"].tolist() == [False, True, False, False]
    assert ann.confidence[0] == pytest.approx(0.5) and np.isnan(ann.confidence[1])
    assert len(ann.shape[2]) == 2  # two parts
    assert np.allclose(ann.box[0], [25 / 384, 40 / 303, 30 / 384, 40 / 303])
    assert np.isnan(ann.box[3]).all()

    save_coco(ds, tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert [i["id"] for i in out["images"]] == [42, 7]
    assert out["images"][0]["license"] == 3
    assert [(c["id"], c["supercategory"]) for c in out["categories"]] == [
        (13, "money"),
        (2, "animal"),
    ]
    assert out["info"] == {"description": "test"} and out["licenses"] == [{"id": 3, "name": "CC"}]
    assert [a.get("iscrowd") for a in out["annotations"]] == [0, 1, 0, None]
    assert isinstance(out["annotations"][1]["segmentation"]["counts"], str)
    assert set(out["annotations"][3]) == {"id", "image_id", "category_id"}  # image label
    again = load_coco(tmp_path / "out.json")
    assert again.annotations.equals(ann, atol=1e-9)


def test_missing_sizes_read_from_images_root(tmp_path: Path) -> None:
    ds = sample_dataset(["bbox"])
    root = copy_photos(ds, tmp_path / "photos")
    save_coco(ds, tmp_path / "x.json")
    doc = json.loads((tmp_path / "x.json").read_text())
    for image in doc["images"]:
        del image["width"], image["height"]
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="images_root") as err:
        load_coco(tmp_path / "x.json")
    assert err.value.where == "x.json: images[0].width"
    back = load_coco(tmp_path / "x.json", images_root=root)
    assert [(r.width, r.height) for r in back.images] == [(r.width, r.height) for r in ds.images]
    assert back.annotations.equals(ds.annotations, atol=1e-9)


def test_registry_and_memory_location() -> None:
    ds = sample_dataset(["bbox", "point", "label"])
    fmt = get_format("coco")
    assert fmt.name == "coco"
    report = save("coco", ds, "memory://coco-test/sub/instances.json")
    assert report.path == "memory:///coco-test/sub/instances.json"
    back = load("coco", "memory://coco-test/sub/instances.json")
    assert back.annotations.equals(ds.annotations, atol=1e-9)


def test_empty_dataset_round_trips(tmp_path: Path) -> None:
    from annoloop.formats.dataset import Dataset

    save_coco(Dataset.empty(), tmp_path / "e.json")
    back = load_coco(tmp_path / "e.json")
    assert back.images == [] and back.labels == [] and len(back.annotations) == 0


def _mutate(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return doc


_DELETE = object()
HOSTILE = [
    ("images", {"a": 1}, "in.json: images"),
    ("images.0", "coins.png", "in.json: images[0]"),
    ("images.0.file_name", "../../etc/passwd", "in.json: images[0].file_name"),
    ("images.0.file_name", "/etc/passwd", "in.json: images[0].file_name"),
    ("images.0.file_name", "C:\\windows\\x.png", "in.json: images[0].file_name"),
    ("images.0.file_name", 12, "in.json: images[0].file_name"),
    ("images.0.width", -384, "in.json: images[0].width"),
    ("images.0.width", "wide", "in.json: images[0].width"),
    ("images.0.height", 30.5, "in.json: images[0].height"),
    ("images.1.id", 42, "in.json: images[1].id"),
    ("images.1.file_name", "coins.png", "in.json: images[1].file_name"),
    ("categories.1.id", 13, "in.json: categories[1].id"),
    ("categories.1.name", "", "in.json: categories[1]"),
    ("annotations", "many", "in.json: annotations"),
    ("annotations.0", [1, 2], "in.json: annotations[0]"),
    ("annotations.0.image_id", 999, "in.json: annotations[0].image_id"),
    ("annotations.0.image_id", True, "in.json: annotations[0].image_id"),
    ("annotations.0.image_id", [42], "in.json: annotations[0].image_id"),
    ("annotations.0.image_id", _DELETE, "in.json: annotations[0].image_id"),
    ("annotations.3.category_id", 99, "in.json: annotations[3].category_id"),
    ("annotations.0.bbox", ["10", "20", "30", "40"], "in.json: annotations[0].bbox"),
    ("annotations.0.bbox", [10, 20, 30], "in.json: annotations[0].bbox"),
    ("annotations.0.bbox", [10, 20, -30, 40], "in.json: annotations[0].bbox"),
    ("annotations.0.bbox", [300, 20, 300, 40], "in.json: annotations[0].bbox"),
    ("annotations.0.bbox", [-50, 20, 30, 40], "in.json: annotations[0].bbox"),
    ("annotations.0.score", "high", "in.json: annotations[0].score"),
    ("annotations.0.annoloop", [1], "in.json: annotations[0].annoloop"),
    ("annotations.2.segmentation", [[10, 10, 100]], "in.json: annotations[2].segmentation[0]"),
    ("annotations.2.segmentation", [[10, 10, 100, 10]], "in.json: annotations[2].segmentation"),
    (
        "annotations.2.segmentation",
        [[1e9, 10, 100, 10, 5, 5]],
        "in.json: annotations[2].segmentation",
    ),
    ("annotations.2.segmentation", 5, "in.json: annotations[2].segmentation"),
    ("annotations.1.segmentation.counts", [5, 3], "in.json: annotations[1].segmentation"),
    ("annotations.1.segmentation.size", [10, 10], "in.json: annotations[1].segmentation"),
    ("annotations.1.segmentation.counts", "!!", "in.json: annotations[1].segmentation"),
]


@pytest.mark.parametrize(("path", "value", "where"), HOSTILE)
def test_hostile_records_name_the_record(tmp_path: Path, path: str, value, where: str) -> None:
    (tmp_path / "in.json").write_text(json.dumps(_mutate(small_doc(), path, value)))
    with pytest.raises(InvalidInput) as err:
        load_coco(tmp_path / "in.json")
    assert err.value.where is not None and err.value.where.startswith(where), err.value


def test_hostile_files(tmp_path: Path) -> None:
    text = json.dumps(small_doc())
    cases = {
        "truncated.json": (text[: len(text) // 2], "invalid JSON"),
        "list.json": ("[1, 2, 3]", "JSON object"),
        "nested.json": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        "binary.json": (None, "not UTF-8"),
        "empty.json": ("", "invalid JSON"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is None:
            path.write_bytes(b'{"images": "\x80\x81"}')
        else:
            path.write_text(content)
        with pytest.raises(InvalidInput, match=message):
            load_coco(path)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_coco(tmp_path / "missing.json")


def test_point_keypoint_not_labelled_is_refused(tmp_path: Path) -> None:
    doc = small_doc()
    doc["categories"][0]["keypoints"] = ["point"]
    doc["annotations"][0] = {"id": 1, "image_id": 42, "category_id": 13, "keypoints": [0, 0, 0]}
    (tmp_path / "in.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="visibility 0") as err:
        load_coco(tmp_path / "in.json")
    assert err.value.where == "in.json: annotations[0].keypoints"


def test_results_with_unknown_ids_are_refused(tmp_path: Path) -> None:
    ds = sample_dataset(["bbox"])
    bad = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.1}] * 2
    bad[1] = {"image_id": 77, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.1}
    (tmp_path / "r.json").write_text(json.dumps(bad))
    with pytest.raises(InvalidInput) as err:
        load_coco_results(tmp_path / "r.json", ds)
    assert err.value.where == "r.json: [1].image_id"
    (tmp_path / "r.json").write_text(json.dumps({"image_id": 1}))
    with pytest.raises(InvalidInput, match="JSON list"):
        load_coco_results(tmp_path / "r.json", ds)


@pytest.mark.slow
def test_million_boxes_load(tmp_path: Path) -> None:
    n, n_images = 1_000_000, 2_000
    rng = np.random.default_rng(7)
    image_ids = rng.integers(1, n_images + 1, n)
    xy = rng.integers(0, 500, (n, 2))
    wh = rng.integers(1, 100, (n, 2))
    boxes = np.hstack([xy, wh]).tolist()
    doc = {
        "images": [
            {"id": i, "file_name": f"img{i:05d}.jpg", "width": 640, "height": 640}
            for i in range(1, n_images + 1)
        ],
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, 11)],
        "annotations": [
            {"id": k, "image_id": i, "category_id": c, "bbox": b, "area": 1, "iscrowd": 0}
            for k, i, c, b in zip(
                range(n), image_ids.tolist(), rng.integers(1, 11, n).tolist(), boxes, strict=True
            )
        ],
    }
    (tmp_path / "big.json").write_text(json.dumps(doc))
    del doc
    ds = load_coco(tmp_path / "big.json")
    ann = ds.annotations
    assert len(ann) == n and len(ds.images) == n_images
    assert np.array_equal(ann.image, image_ids - 1)
    want = (xy + wh / 2) / 640
    assert np.allclose(ann.box[:, :2], want)


def test_failed_save_leaves_the_old_file(tmp_path: Path) -> None:
    ds = sample_dataset(["bbox"])
    target = tmp_path / "instances.json"
    save_coco(ds, target)
    before = target.read_bytes()
    broken = sample_dataset(["mask"])
    broken.annotations.shape[0] = {"size": [303, 384], "counts": "not an rle"}
    with pytest.raises(InvalidInput):
        save_coco(broken, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instances.json"]
