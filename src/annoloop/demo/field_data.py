"""Annotation files "from the field" over the bundled photos, made from the photos themselves.

The coins photo is segmented with scikit-image's watershed recipe (24 coins): each coin becomes
a box and a polygon in a COCO file, and random points labelled coin/background by the
segmentation go into a CoralNet CSV. The colour photos get one image-level label each.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from annoloop.samples import photo_path

# What each bundled colour photo shows: image-level labels for the demo.
IMAGE_LABELS: dict[str, str] = {
    "astronaut.png": "person",
    "grace_hopper.jpg": "person",
    "chelsea.png": "cat",
    "coffee.png": "cup",
    "rocket.jpg": "rocket",
    "motorcycle_left.png": "motorcycle",
    "china.jpg": "building",
    "flower.jpg": "flower",
    "ihc.png": "tissue",
    "retina.jpg": "retina",
}


def segment_coins() -> np.ndarray:
    """Label image of the coins photo: 0 background, 1..N one id per coin."""
    from scipy import ndimage
    from skimage import io
    from skimage.filters import sobel
    from skimage.measure import label
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import watershed

    coins = io.imread(photo_path("coins.png"))
    markers = np.zeros_like(coins, dtype=np.int32)
    markers[coins < 30] = 1
    markers[coins > 150] = 2
    segmentation = watershed(sobel(coins), markers) == 2
    segmentation = ndimage.binary_fill_holes(segmentation)
    segmentation = remove_small_objects(segmentation, max_size=40)
    return label(segmentation)


def coin_shapes() -> list[dict]:
    """One dict per coin: pixel box (x, y, w, h), polygon (flat pixel list), area."""
    from skimage.measure import find_contours, regionprops

    regions = segment_coins()
    out = []
    for region in regionprops(regions):
        r0, c0, r1, c1 = region.bbox
        padded = np.pad(region.image, 1)
        contour = max(find_contours(padded.astype(float), 0.5), key=len)
        contour = contour[:: max(1, len(contour) // 40)]  # ~40 vertices is plenty for a coin
        xy = np.stack([contour[:, 1] - 1 + c0, contour[:, 0] - 1 + r0], axis=1)
        out.append(
            {
                "bbox": [float(c0), float(r0), float(c1 - c0), float(r1 - r0)],
                "polygon": [round(float(v), 2) for v in xy.reshape(-1)],
                "area": float(region.area),
            }
        )
    return out


def write_coco(
    path: Path, *, image_sizes: dict[str, tuple[int, int]], coins_only: bool = False
) -> Path:
    """COCO file with coin boxes and polygons and one image label per colour photo
    (``coins_only``: just the coins photo and its coins)."""
    names = ["coins.png"] if coins_only else ["coins.png", *IMAGE_LABELS]
    categories = ["coin"] if coins_only else ["coin", *sorted(set(IMAGE_LABELS.values()))]
    cat_id = {name: i + 1 for i, name in enumerate(categories)}
    images = [
        {"id": i + 1, "file_name": n, "width": image_sizes[n][0], "height": image_sizes[n][1]}
        for i, n in enumerate(names)
    ]
    annotations = []
    for coin in coin_shapes():
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": 1,
                "category_id": cat_id["coin"],
                "bbox": coin["bbox"],
                "segmentation": [coin["polygon"]],
                "area": coin["area"],
                "iscrowd": 0,
            }
        )
    for i, name in enumerate(names[1:], start=2):
        annotations.append(
            {"id": len(annotations) + 1, "image_id": i, "category_id": cat_id[IMAGE_LABELS[name]]}
        )
    coco = {
        "images": images,
        "categories": [{"id": cat_id[c], "name": c} for c in categories],
        "annotations": annotations,
    }
    path.write_text(json.dumps(coco), encoding="utf-8")
    return path


def write_coralnet_points(path: Path, *, n: int = 60, seed: int = 0) -> Path:
    """CoralNet CSV: random points on the coins photo labelled by the segmentation."""
    regions = segment_coins()
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, regions.shape[0], n)
    cols = rng.integers(0, regions.shape[1], n)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Name", "Row", "Column", "Label"])
        for r, c in zip(rows, cols, strict=True):
            writer.writerow(
                ["coins.png", int(r), int(c), "coin" if regions[r, c] else "background"]
            )
    return path
