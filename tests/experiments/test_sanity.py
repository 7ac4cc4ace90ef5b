"""Sanity check on hostile COCO and GeoJSON datasets built over the bundled photos."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from annoloop.errors import InvalidInput
from annoloop.experiments import ExperimentDataset, SanityReport, sanity_check
from annoloop.samples import photo_path

BOWTIE = [10, 10, 110, 110, 110, 10, 10, 110]  # two triangles of 2500 px² crossing at (60, 60)


def _images(folder: Path) -> Path:
    images = folder / "images"
    images.mkdir(parents=True)
    shutil.copy(photo_path("astronaut.png"), images / "a.png")
    shutil.copy(photo_path("coffee.png"), images / "b.png")
    shutil.copy(photo_path("astronaut.png"), images / "dup.png")  # same content as a.png
    shutil.copy(photo_path("rocket.jpg"), images / "c.jpg")
    (images / "broken.png").write_bytes(photo_path("chelsea.png").read_bytes()[:5000])
    return images


def _hostile_coco(root: Path) -> Path:
    folder = root / "hostile"
    _images(folder)
    images = [
        {"id": 1, "file_name": "a.png", "width": 512, "height": 512},
        {"id": 2, "file_name": "b.png", "width": 999, "height": 400},  # wrong width
        {"id": 1, "file_name": "c.jpg", "width": 640, "height": 427},  # repeated id
        {"id": 3, "file_name": "a.png", "width": 512, "height": 512},  # repeated file name
        {"id": 4, "file_name": "broken.png", "width": 451, "height": 300},  # unreadable
        {"id": 5, "file_name": "dup.png", "width": 512, "height": 512},  # same content as a.png
        {"id": 6, "file_name": "notes.txt", "width": 1, "height": 1},
        {"id": 7, "file_name": "../../etc/passwd", "width": 1, "height": 1},
        {"id": 8, "file_name": "c.jpg", "width": 640, "height": 427},
        {"id": 9, "file_name": "gone.png", "width": 10, "height": 10},
        "not an object",
    ]
    categories = [{"id": 1, "name": "thing"}, {"id": 1, "name": "again"}, {"name": "no id"}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50]},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, -5, 50]},
        {"id": 3, "image_id": 8, "category_id": 1, "bbox": [600, 400, 100, 100]},
        {"id": 4, "image_id": 3, "category_id": 1, "bbox": [1, 1, 2, 2]},
        {"id": 5, "image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2]},
        {
            "id": 6,
            "image_id": 2,
            "category_id": 1,
            "segmentation": [BOWTIE],
            "bbox": [10, 10, 100, 100],
            "area": 0.0,
        },
        {"id": 7, "image_id": 2, "category_id": 1, "segmentation": [[1, 2, 3, 4, 5]]},
        "string",
        {"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 2, "x", 4]},
        {"id": 10, "image_id": 4, "category_id": 1, "bbox": [1, 2, 3, 4]},
        {"id": 11, "image_id": 8, "category_id": 1, "bbox": [700, 500, 10, 10]},
    ]
    doc = {"images": images, "categories": categories, "annotations": anns}
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder


def test_hostile_coco_report_counts_and_clean_output(tmp_path: Path) -> None:
    from annoloop.formats.coco import load_coco

    src = _hostile_coco(tmp_path)
    out = tmp_path / "clean"
    report = sanity_check(src, out)
    c = report.counts
    assert c["images_on_disk"] == 5 and c["images_listed"] == 11 and c["images_kept"] == 3
    assert c["images_dropped"] == 8
    assert c["IMG_UNREADABLE"] == 1 and c["IMG_DUP_CONTENT"] == 1
    assert c["IMG_DUP_ID"] == 1 and c["IMG_DUP_FILE"] == 1 and c["IMG_REJECTED"] == 2
    assert c["IMG_FILE_TYPE"] == 1 and c["IMG_INVALID"] == 2 and c["IMG_MISSING"] == 1
    assert c["IMG_WRONG_SIZE"] == 1
    assert c["CAT_DUP_ID"] == 1 and c["CAT_INVALID"] == 1
    assert c["annotations_total"] == 11 and c["annotations_kept"] == 3
    assert c["ANN_ORPHAN"] == 2 and c["ANN_BAD_CATEGORY"] == 1 and c["ANN_INVALID"] == 1
    assert c["ANN_BBOX_INVALID"] == 3 and c["ANN_BBOX_CLIPPED"] == 1
    assert c["ANN_SEG_INVALID"] == 1 and c["ANN_SEG_REPAIRED"] == 1
    dup = next(p for p in report.problems if p.code == "IMG_DUP_FILE")
    assert dup.where == "annotations.json: images[3]" and "images[0]" in dup.message
    # the cleaned copy loads with annoloop's strict COCO loader
    data = load_coco(out / "annotations.json", images_root=out / "images")
    assert [r.file_name for r in data.images] == ["a.png", "b.png", "c.jpg"]
    assert (data.images[1].width, data.images[1].height) == (600, 400)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png", "c.jpg"]
    doc = json.loads((out / "annotations.json").read_text())
    bowtie = next(a for a in doc["annotations"] if a["id"] == 6)
    assert len(bowtie["segmentation"]) == 2 and bowtie["area"] == pytest.approx(5000.0)
    clipped = next(a for a in doc["annotations"] if a["id"] == 3)
    assert clipped["bbox"] == [600.0, 400.0, 40.0, 27.0]
    saved = SanityReport.model_validate_json((out / "sanity.json").read_text())
    assert saved.counts == report.counts
    # the cleaned dataset is clean
    again = sanity_check(out)
    assert not again.problems and again.output is None


def _hostile_geojson(root: Path) -> Path:
    folder = root / "geo"
    _images(folder)

    def feature(geometry: object, **props: object) -> dict[str, object]:
        return {"type": "Feature", "geometry": geometry, "properties": props}

    def poly(flat: list[int]) -> dict[str, object]:
        ring = [flat[i : i + 2] for i in range(0, len(flat), 2)]
        return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

    features = [
        feature(poly(BOWTIE), image="a.png", label="field"),
        feature({"type": "Polygon", "coordinates": []}, image="a.png", label="field"),
        feature(None, image="a.png", label="field"),
        feature(poly([0, 0, 10, 0, 10, 10, 0, 10]), image="a.png"),
        feature(poly([0, 0, 20, 0, 20, 20, 0, 20]), image_filename="b.png", class_id=2),
        feature(poly([0, 0, 10, 0, 10, 10, 0, 10]), image="broken.png", label="field"),
        feature({"type": "Polygon", "coordinates": "garbage"}, image="a.png", label="field"),
        feature(
            poly([5, 5, 50, 5, 50, 50]),
            image="a.png",
            label="field",
            image_width=10,
            image_height=512,
        ),
        feature(
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},
            image="a.png",
            label="field",
        ),
        "not a feature",
    ]
    doc = {"type": "FeatureCollection", "features": features}
    (folder / "fields.geojson").write_text(json.dumps(doc))
    return folder


def test_hostile_geojson_repaired_or_dropped(tmp_path: Path) -> None:
    import shapely.geometry

    src = _hostile_geojson(tmp_path)
    out = tmp_path / "clean"
    report = sanity_check(src, out)
    c = report.counts
    assert c["annotations_total"] == 10 and c["annotations_kept"] == 3
    assert c["GEO_REPAIRED"] == 1 and c["GEO_EMPTY"] == 1 and c["GEO_MISSING_GEOMETRY"] == 1
    assert c["GEO_MISSING_FIELD"] == 2 and c["GEO_ORPHAN"] == 1
    assert c["GEO_INVALID_DROPPED"] == 2 and c["GEO_WRONG_SIZE"] == 1
    assert c["images_on_disk"] == 5 and c["images_kept"] == 3
    doc = json.loads((out / "fields.geojson").read_text())
    repaired = shapely.geometry.shape(doc["features"][0]["geometry"])
    assert repaired.is_valid and repaired.area == pytest.approx(5000.0)  # both triangles
    assert doc["features"][2]["properties"]["image_width"] == 512
    # iquaflow's buffer(0) keeps one lobe of the bow-tie
    one_lobe = sanity_check(src, tmp_path / "buffer0", repair="buffer0")
    doc0 = json.loads((tmp_path / "buffer0" / "fields.geojson").read_text())
    assert one_lobe.counts["GEO_REPAIRED"] == 1
    assert shapely.geometry.shape(doc0["features"][0]["geometry"]).area == pytest.approx(2500.0)
    # features without geometry are annoloop's image labels when asked to keep them
    kept = sanity_check(src, keep_null_geometry=True)
    assert kept.counts["annotations_kept"] == 4 and "GEO_MISSING_GEOMETRY" not in kept.counts


def test_broken_files_and_bad_options(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    _images(folder)
    (folder / "annotations.json").write_text('{"images": [1, 2')
    with pytest.raises(InvalidInput, match=r"annotations.json.*invalid JSON.*line 1"):
        sanity_check(folder)
    (folder / "annotations.json").write_text('{"type": "FeatureCollection"}')
    with pytest.raises(InvalidInput, match="not a COCO file"):
        sanity_check(folder)
    (folder / "annotations.json").write_text('{"images": []}')
    with pytest.raises(InvalidInput, match="repair must be one of"):
        sanity_check(folder, repair="glue")
    with pytest.raises(InvalidInput, match="must not be the dataset itself"):
        sanity_check(folder, folder)


def test_huge_coco_is_checked_quickly(tmp_path: Path) -> None:
    folder = tmp_path / "huge"
    (folder / "images").mkdir(parents=True)
    shutil.copy(photo_path("coins.png"), folder / "images" / "coins.png")
    anns = [
        {
            "id": i,
            "image_id": 1,
            "category_id": 1,
            "bbox": [i % 380, (i * 7) % 300, 10, 10] if i % 10 else [1, 1, -1, 1],
        }
        for i in range(30000)
    ]
    doc = {
        "images": [{"id": 1, "file_name": "coins.png", "width": 384, "height": 303}],
        "categories": [{"id": 1, "name": "coin"}],
        "annotations": anns,
    }
    (folder / "annotations.json").write_text(json.dumps(doc))
    start = time.perf_counter()
    report = sanity_check(ExperimentDataset.open(folder), tmp_path / "out", check_pixels=False)
    elapsed = time.perf_counter() - start
    assert report.counts["ANN_BBOX_INVALID"] == 3000
    assert report.counts["annotations_kept"] + 3000 == 30000
    assert report.counts["ANN_BBOX_CLIPPED"] > 0
    print(f"sanity check of 30000 annotations: {elapsed:.2f} s")
