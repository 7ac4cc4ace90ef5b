"""GeoJSON in pixel space: round trips, foreign files, polygon repair, hostile and huge input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.formats import load, save
from annoloop.formats.geojson import load_geojson, save_geojson
from annoloop.geometry import Kind, polygon_area, rle_decode
from tests.formats.coco_data import coins_mask, copy_photos, photo_size, sample_dataset


def test_round_trip_is_exact_for_every_kind(tmp_path: Path) -> None:
    ds = sample_dataset()
    report = save_geojson(ds, tmp_path / "shapes.geojson")
    assert report.dropped == {} and report.annotations == len(ds.annotations)
    back = load_geojson(tmp_path / "shapes.geojson")
    assert [(r.file_name, r.width, r.height) for r in back.images] == [
        (r.file_name, r.width, r.height) for r in ds.images
    ]
    assert back.labels == ds.labels
    assert back.annotations.equals(ds.annotations, atol=1e-9)
    for key in ("source", "author"):
        assert back.annotations.data[key].tolist() == ds.annotations.data[key].tolist()
    mask_row = int(np.flatnonzero(back.annotations.kind == int(Kind.MASK))[0])
    assert np.array_equal(rle_decode(back.annotations.shape[mask_row]), coins_mask())


def test_written_geometry_is_valid_pixel_geojson(tmp_path: Path) -> None:
    import shapely.geometry

    ds = sample_dataset(["polygon", "bbox", "point", "label"])
    save_geojson(ds, tmp_path / "x.geojson", indent=1)
    doc = json.loads((tmp_path / "x.geojson").read_text())
    assert doc["type"] == "FeatureCollection"
    by_label = {f["properties"]["label"]: f for f in doc["features"]}
    patch = by_label["patch"]["geometry"]
    assert patch["type"] == "Polygon" and len(patch["coordinates"]) == 2  # exterior + hole
    assert patch["coordinates"][0][0] == [300.0, 300.0]
    assert patch["coordinates"][0][0] == patch["coordinates"][0][-1]  # rings are closed
    hole = shapely.geometry.shape(patch)
    assert hole.is_valid and hole.area == pytest.approx(120 * 120 - 60 * 60)
    ears = by_label["ear"]["geometry"]
    assert ears["type"] == "MultiPolygon" and shapely.geometry.shape(ears).is_valid
    rocket = next(f for f in doc["features"] if f["properties"]["kind"] == "bbox")
    assert rocket["properties"]["image_width"] == photo_size("coins.png")[0]
    portrait = by_label["portrait"]
    assert portrait["geometry"] is None and portrait["properties"]["kind"] == "label"
    nose = by_label["nose"]["geometry"]
    assert nose == {"type": "Point", "coordinates": [240.0, 180.0]}


def test_images_without_annotations_keep_their_place(tmp_path: Path) -> None:
    ds = sample_dataset(["line"])  # only chelsea and coffee have lines
    save("geojson", ds, tmp_path / "x.geojson")
    back = load("geojson", tmp_path / "x.geojson")
    assert [r.file_name for r in back.images] == [r.file_name for r in ds.images]
    assert back.annotations.equals(ds.annotations, atol=1e-9)


def foreign_doc() -> dict:
    """A FeatureCollection as another tool might write it: no registry, no sizes, no kinds."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "MultiPoint", "coordinates": [[10, 20], [30, 40, 5.5]]},
                "properties": {"image": "coins.png", "label": "coin", "track_id": 7},
            },
            {
                "type": "Feature",
                "geometry": {
                    "type": "MultiLineString",
                    "coordinates": [[[0, 0], [100, 100]], [[5, 5], [6, 7], [8, 9]]],
                },
                "properties": {"image": "chelsea.png", "label": "whisker", "confidence": 0.25},
            },
            {
                "type": "Feature",
                "geometry": None,
                "properties": {"image": "chelsea.png", "label": "cat"},
            },
            {"type": "Feature", "geometry": None, "properties": {"image": "coffee.png"}},
        ],
    }


def test_foreign_file_splits_multi_geometries_and_reads_sizes(tmp_path: Path) -> None:
    (tmp_path / "f.geojson").write_text(json.dumps(foreign_doc()))
    with pytest.raises(InvalidInput, match="images_root") as err:
        load_geojson(tmp_path / "f.geojson")
    assert err.value.where == "f.geojson: features[0].properties.image_width"

    ds = sample_dataset()
    root = copy_photos(ds, tmp_path / "photos")
    back = load_geojson(tmp_path / "f.geojson", images_root=root)
    assert [r.file_name for r in back.images] == ["coins.png", "chelsea.png", "coffee.png"]
    assert (back.images[1].width, back.images[1].height) == photo_size("chelsea.png")
    ann = back.annotations
    assert ann.kind.tolist() == [1, 1, 3, 3, 0]
    assert back.labels == ["coin", "whisker", "cat"]
    assert np.allclose(ann.box[1], [30 / 384, 40 / 303, 0, 0])
    assert np.allclose(ann.shape[2], [[0, 0], [100 / 451, 100 / 300]])
    assert ann.data["track_id"].tolist() == [7, 7, None, None, None]
    assert np.isnan(ann.confidence[0]) and ann.confidence[3] == pytest.approx(0.25)


def bow_tie_doc() -> dict:
    ring = [[0, 0], [100, 100], [100, 0], [0, 100], [0, 0]]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "image": "a.png",
                    "image_width": 200,
                    "image_height": 200,
                    "label": "x",
                },
            }
        ],
    }


def test_self_intersecting_polygon_is_repaired_or_refused(tmp_path: Path) -> None:
    (tmp_path / "b.geojson").write_text(json.dumps(bow_tie_doc()))
    ds = load_geojson(tmp_path / "b.geojson")
    shape = ds.annotations.shape[0]
    assert len(shape) == 2  # a bow-tie becomes two triangles
    assert polygon_area(shape, 200, 200) == pytest.approx(5000)
    assert np.allclose(ds.annotations.box[0], [0.25, 0.25, 0.5, 0.5])
    with pytest.raises(InvalidInput, match="not valid") as err:
        load_geojson(tmp_path / "b.geojson", repair=False)
    assert err.value.where == "b.geojson: features[0].geometry.coordinates"


def test_conflicting_image_sizes_are_refused(tmp_path: Path) -> None:
    doc = bow_tie_doc()
    second = copy.deepcopy(doc["features"][0])
    second["properties"]["image_width"] = 300
    doc["features"].append(second)
    (tmp_path / "c.geojson").write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="image_width 200") as err:
        load_geojson(tmp_path / "c.geojson")
    assert err.value.where == "c.geojson: features[1].properties.image_width"


def _set(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    target[int(last) if last.isdigit() else last] = value
    return doc


HOSTILE = [
    ("features", {"a": 1}, "x.geojson: features"),
    ("features.0", "feature", "x.geojson: features[0]"),
    ("features.0.properties", None, "x.geojson: features[0].properties"),
    ("features.0.properties.image", "../../etc/passwd", "x.geojson: features[0].properties.image"),
    ("features.0.properties.image", "/abs/a.png", "x.geojson: features[0].properties.image"),
    ("features.0.properties.image", None, "x.geojson: features[0].properties.image"),
    ("features.0.properties.image_width", -5, "x.geojson: features[0].properties.image_width"),
    ("features.0.properties.image_width", "wide", "x.geojson: features[0].properties.image_width"),
    ("features.0.properties.label", 12, "x.geojson: features[0].properties"),
    ("features.0.properties.confidence", "high", "x.geojson: features[0].properties.confidence"),
    ("features.0.properties.kind", "blob", "x.geojson: features[0].properties.kind"),
    ("features.0.properties.kind", "line", "x.geojson: features[0].geometry"),
    ("features.0.geometry", [1, 2], "x.geojson: features[0].geometry"),
    ("features.0.geometry.type", "GeometryCollection", "x.geojson: features[0].geometry"),
    ("features.0.geometry.coordinates", "none", "x.geojson: features[0].geometry.coordinates"),
    (
        "features.0.geometry.coordinates",
        [[["a", "b"], [1, 2], [3, 4]]],
        "x.geojson: features[0].geometry.coordinates[0]",
    ),
    ("features.0.geometry.coordinates", [[[0, 0], [1, 1]]], "x.geojson: features[0].geometry"),
    (
        "features.0.geometry.coordinates",
        [[[0, 0], [900, 0], [900, 50], [0, 50]]],
        "x.geojson: features[0].geometry",
    ),
    ("features.0.geometry", {"type": "Point", "coordinates": [500, 5]}, "x.geojson: features[0]"),
    ("features.0.geometry", {"type": "Point", "coordinates": [5]}, "x.geojson: features[0]"),
]


@pytest.mark.parametrize(("path", "value", "where"), HOSTILE)
def test_hostile_features_name_the_feature(tmp_path: Path, path: str, value, where: str) -> None:
    (tmp_path / "x.geojson").write_text(json.dumps(_set(bow_tie_doc(), path, value)))
    with pytest.raises(InvalidInput) as err:
        load_geojson(tmp_path / "x.geojson")
    assert err.value.where is not None and err.value.where.startswith(where), err.value


def test_hostile_files(tmp_path: Path) -> None:
    text = json.dumps(bow_tie_doc())
    cases = {
        "truncated.geojson": (text[:-10], "invalid JSON"),
        "point.geojson": ('{"type": "Point", "coordinates": [1, 2]}', "FeatureCollection"),
        "list.geojson": ("[]", "must be an object"),
        "nested.geojson": ('{"type": "FeatureCollection", "features": ' + "[" * 50_000, "JSON"),
        "nan.geojson": (text.replace("[100, 0]", "[NaN, 0]"), "finite"),
        "registry.geojson": (text[:-1] + ', "annoloop": {"images": 5}}', "must be lists"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(InvalidInput, match=message):
            load_geojson(tmp_path / name)


def test_single_feature_document_is_accepted(tmp_path: Path) -> None:
    feature = bow_tie_doc()["features"][0]
    feature["geometry"] = {"type": "Point", "coordinates": [10, 20]}
    (tmp_path / "one.geojson").write_text(json.dumps(feature))
    ds = load_geojson(tmp_path / "one.geojson")
    assert np.allclose(ds.annotations.box, [[0.05, 0.1, 0, 0]])


@pytest.mark.slow
def test_two_hundred_thousand_boxes_load(tmp_path: Path) -> None:
    n = 200_000
    rng = np.random.default_rng(3)
    x0 = rng.integers(0, 500, n)
    y0 = rng.integers(0, 500, n)
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x, y], [x + 10, y], [x + 10, y + 20], [x, y + 20], [x, y]]],
            },
            "properties": {
                "image": f"img{k % 500}.jpg",
                "image_width": 640,
                "image_height": 640,
                "label": f"c{k % 7}",
                "kind": "bbox",
            },
        }
        for k, x, y in zip(range(n), x0.tolist(), y0.tolist(), strict=True)
    ]
    (tmp_path / "big.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    del features
    ds = load_geojson(tmp_path / "big.geojson")
    assert len(ds.annotations) == n and len(ds.images) == 500
    assert np.allclose(ds.annotations.box[:, 0], (x0 + 5) / 640)
    assert np.allclose(ds.annotations.box[:, 3], 20 / 640)
