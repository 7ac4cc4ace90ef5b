"""Labelled data for active-learning simulations, tests and benchmarks, made from data that
ships inside installed packages (no download).

- :func:`write_digits`: scikit-learn's 1797 labelled 8 x 8 digit images as PNG files.
- :func:`write_point_mosaics`: mosaics of bundled photos whose tiles give point labels
  (the photo a tile comes from).

``annoloop al simulate --digits`` uses the first; run ``python -m annoloop.ai.sample_data
OUT_DIR`` to write both sets to a folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from annoloop.ai.base import ImageItem, TrainingData
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

DIGIT_CLASSES = [str(d) for d in range(10)]


def write_digits(folder: Path, n: int | None = None) -> TrainingData:
    """Write the digits (grey 8 x 8, 0..16 scaled to 0..255) as PNGs; return them labelled."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    target = digits.target.astype(np.int64)
    if n is not None:
        images, target = images[:n], target[:n]
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i, img in enumerate(images):
        path = folder / f"digit-{i:04d}.png"
        if not path.exists():
            Image.fromarray(img).save(path)
        items.append(ImageItem(i + 1, str(path), 8, 8))
    ids = np.arange(1, len(items) + 1)
    ann = Annotations.from_boxes(
        ids, np.full((len(ids), 4), np.nan), target, kind=Kind.LABEL, label_names=DIGIT_CLASSES
    )
    return TrainingData(items, ann, DIGIT_CLASSES)


MOSAIC_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "flower.jpg",
    "china.jpg",
)


def mosaic_tiles(
    rng: np.random.Generator, photos: list[np.ndarray], tile: int
) -> tuple[np.ndarray, np.ndarray]:
    """A 2 x 3 mosaic (``2*tile`` x ``3*tile`` x 3 uint8) of random ``tile``-sized crops of the
    six ``photos`` in a shuffled order, and its 2 x 3 grid of photo indices."""
    img = np.zeros((2 * tile, 3 * tile, 3), np.uint8)
    grid = np.zeros((2, 3), np.int64)
    for k, which in enumerate(rng.permutation(len(photos))):
        i, j = divmod(k, 3)
        p = photos[which]
        y = rng.integers(0, p.shape[0] - tile)
        x = rng.integers(0, p.shape[1] - tile)
        img[i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] = p[y : y + tile, x : x + tile]
        grid[i, j] = which
    return img, grid


def write_point_mosaics(
    folder: Path, n_images: int = 12, n_points: int = 30, tile: int = 96, seed: int = 0
) -> TrainingData:
    """Mosaics of 2 x 3 photo tiles; each point is labelled with the photo of its tile."""
    from PIL import Image

    from annoloop.samples import photo_path
    from annoloop.storage import read_image

    photos = [read_image(photo_path(name)) for name in MOSAIC_PHOTOS]
    folder.mkdir(parents=True, exist_ok=True)
    items, rows = [], []
    h, w = 2 * tile, 3 * tile
    for s in range(n_images):
        rng = np.random.default_rng(seed * 100_003 + s)
        img, grid = mosaic_tiles(rng, photos, tile)
        path = folder / f"mosaic-{seed}-{s:03d}.png"
        Image.fromarray(img).save(path)
        items.append(ImageItem(s + 1, str(path), w, h))
        cell = rng.integers(0, 6, n_points)
        ci, cj = np.divmod(cell, 3)
        off = rng.integers(tile // 4, 3 * tile // 4, (n_points, 2))
        row = ci * tile + off[:, 0]
        col = cj * tile + off[:, 1]
        box = np.stack(
            [(col + 0.5) / w, (row + 0.5) / h, np.zeros(n_points), np.zeros(n_points)], 1
        )
        rows.append(
            Annotations.from_boxes(np.full(n_points, s + 1), box, grid[ci, cj], kind=Kind.POINT)
        )
    names = [n.split(".")[0] for n in MOSAIC_PHOTOS]
    ann = Annotations.concat(rows)
    ann.label_names = names
    return TrainingData(items, ann, names)


if __name__ == "__main__":  # pragma: no cover - manual use
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "ai-data")
    write_digits(out / "digits")
    write_point_mosaics(out / "mosaics")
