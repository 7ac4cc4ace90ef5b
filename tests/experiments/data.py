"""Test datasets for annoloop.experiments, made from the photos bundled in installed packages.

Nothing is committed but this script: every dataset is built in a temporary folder.

- :func:`make_patches`: 64x64 patches cut at seeded positions from four colour photos
  (astronaut, coffee, chelsea, rocket), one PNG per patch, labelled with the photo they come
  from (COCO image labels). ``train`` and ``test`` sets come from disjoint positions. A colour
  histogram tells the photos apart, so a small classifier learns it, and image degradations
  move its accuracy.
- :func:`make_photo_dataset`: the bundled colour photos with one box and one polygon per photo
  in COCO (for modifiers that must carry annotations along).
- :func:`make_coins`: skimage's coins.png with its 24 coins as COCO boxes (local threshold +
  connected components), for the threshold detector.

Run ``python tests/experiments/data.py OUT`` to write them to OUT and look at them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from annoloop.samples import photo_path

PATCH_SOURCES = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")
PATCH = 64


def _rgb(name: str) -> np.ndarray:
    from annoloop.storage import read_image

    return read_image(photo_path(name))


def make_patches(root: Path, per_class: int = 8, *, seed: int = 0, name: str = "patches") -> Path:
    """A dataset folder ``root/name`` of labelled 64x64 patches (see the module docstring)."""
    from PIL import Image

    folder = root / name
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for c, source in enumerate(PATCH_SOURCES):
        photo = _rgb(source)
        h, w = photo.shape[:2]
        for k in range(per_class):
            y = int(rng.integers(0, h - PATCH))
            x = int(rng.integers(0, w - PATCH))
            file_name = f"{Path(source).stem}_{k:02d}.png"
            Image.fromarray(photo[y : y + PATCH, x : x + PATCH]).save(images_dir / file_name)
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": file_name, "width": PATCH, "height": PATCH})
            annotations.append({"id": image_id, "image_id": image_id, "category_id": c + 1})
    categories = [{"id": c + 1, "name": Path(s).stem} for c, s in enumerate(PATCH_SOURCES)]
    doc = {"images": images, "annotations": annotations, "categories": categories}
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder


def make_photo_dataset(
    root: Path, names: tuple[str, ...] = ("astronaut.png", "rocket.jpg", "camera.png", "coffee.png")
) -> Path:
    """The given bundled photos with a box and a polygon each, as COCO in ``root/photos``."""
    from annoloop.storage import image_size

    folder = root / "photos"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, name in enumerate(names):
        shutil.copy(photo_path(name), folder / "images" / name)
        w, h = image_size(photo_path(name))
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        bx, by, bw, bh = w * 0.25, h * 0.2, w * 0.5, h * 0.4
        annotations.append(
            {
                "id": 2 * i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [bx, by, bw, bh],
                "area": bw * bh,
                "iscrowd": 0,
            }
        )
        tri = [w * 0.1, h * 0.1, w * 0.6, h * 0.1, w * 0.3, h * 0.7]
        annotations.append(
            {
                "id": 2 * i + 2,
                "image_id": i + 1,
                "category_id": 2,
                "segmentation": [tri],
                "bbox": [w * 0.1, h * 0.1, w * 0.5, h * 0.6],
                "area": 0.5 * (w * 0.5) * (h * 0.6),
                "iscrowd": 0,
            }
        )
    doc = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "triangle"}],
    }
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder


def coin_boxes() -> list[list[float]]:
    """xywh pixel boxes of the 24 coins of coins.png (local threshold + components)."""
    from scipy import ndimage as ndi
    from skimage import measure
    from skimage.filters import threshold_local

    image = _rgb("coins.png")[:, :, 0]
    bw = image > threshold_local(image, 151, offset=-10)
    bw = ndi.binary_fill_holes(ndi.binary_opening(bw, structure=np.ones((5, 5), bool)))
    regions = [r for r in measure.regionprops(measure.label(bw)) if r.area >= 500]
    regions.sort(key=lambda r: (r.bbox[0] // 50, r.bbox[1]))
    return [
        [float(c0), float(r0), float(c1 - c0), float(r1 - r0)]
        for r0, c0, r1, c1 in (r.bbox for r in regions)
    ]


def make_coins(root: Path) -> Path:
    """coins.png with its coins as COCO boxes in ``root/coins``."""
    folder = root / "coins"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    shutil.copy(photo_path("coins.png"), folder / "images" / "coins.png")
    boxes = coin_boxes()
    doc = {
        "images": [{"id": 1, "file_name": "coins.png", "width": 384, "height": 303}],
        "categories": [{"id": 1, "name": "coin"}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": b,
                "area": b[2] * b[3],
                "iscrowd": 0,
            }
            for i, b in enumerate(boxes)
        ],
    }
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "experiment-test-data")
    for path in (make_patches(out), make_photo_dataset(out), make_coins(out)):
        print(path)
