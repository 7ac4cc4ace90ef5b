"""Dataset statistics: numbers checked by hand on a small dataset, JSON and PNG files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from annoloop.experiments import ExperimentDataset, dataset_statistics


def test_statistics_of_photo_dataset(photo_dataset: ExperimentDataset, tmp_path: Path) -> None:
    stats = dataset_statistics(photo_dataset, tmp_path / "stats")
    assert stats["images"]["count"] == 4
    assert stats["images"]["width"]["max"] == 640 and stats["images"]["height"]["min"] == 400
    assert stats["classes"]["annotations"] == {"box": 4, "triangle": 4}
    assert stats["classes"]["images"] == {"box": 4, "triangle": 4}
    assert stats["kinds"] == {"bbox": 4, "polygon": 4}
    assert stats["annotations_per_image"]["mean"] == 2.0
    # boxes are half the image width and 0.4 of its height (the triangles' boxes 0.5 x 0.6)
    images = {r.file_name: (r.width, r.height) for r in photo_dataset.load().images}
    expected = sorted(
        [w * 0.5 * h * 0.4 for w, h in images.values()]
        + [w * 0.5 * h * 0.6 for w, h in images.values()]
    )
    assert stats["boxes"]["area"]["min"] == pytest.approx(expected[0])
    assert stats["boxes"]["area"]["max"] == pytest.approx(expected[-1])
    assert sum(stats["boxes"]["area_histogram"]["counts"]) == 8
    # the triangle (0.1,0.1)-(0.6,0.1)-(0.3,0.7) of a square image: compactness by hand
    w = h = 512.0
    pts = [(0.1 * w, 0.1 * h), (0.6 * w, 0.1 * h), (0.3 * w, 0.7 * h)]
    sides = [math.dist(pts[i], pts[(i + 1) % 3]) for i in range(3)]
    area = 0.5 * (0.5 * w) * (0.6 * h)
    astro = 4 * math.pi * area / sum(sides) ** 2
    assert stats["polygons"]["count"] == 4
    assert (
        stats["polygons"]["compactness"]["min"] <= astro <= stats["polygons"]["compactness"]["max"]
    )
    assert 0 < stats["polygons"]["compactness"]["mean"] < 1
    files = {Path(f).name for f in stats["files"]}
    assert files == {
        "image_sizes.png",
        "classes.png",
        "box_sizes.png",
        "box_aspect_ratios.png",
        "annotations_per_image.png",
        "polygon_compactness.png",
        "statistics.json",
    }
    for f in stats["files"]:
        assert Path(f).stat().st_size > 500
    assert json.loads((tmp_path / "stats" / "statistics.json").read_text())["images"]["count"] == 4


def test_statistics_of_image_labels(patch_sets: tuple[ExperimentDataset, ...]) -> None:
    stats = dataset_statistics(patch_sets[0])
    assert stats["kinds"] == {"label": 32} and stats["boxes"]["area"] == {"count": 0}
    assert set(stats["classes"]["annotations"].values()) == {8}
    assert "polygons" not in stats and "files" not in stats
