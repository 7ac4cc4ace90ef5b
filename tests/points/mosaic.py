"""Labelled point data made from the bundled photos: mosaics of photo tiles.

Each mosaic is a 2 x 3 grid of ``tile`` x ``tile`` crops from six different bundled photos
in a shuffled order; a point's label is the photo its tile came from. Points are drawn well
inside their tile, so a patch is mostly of its own photo. Run ``python -m tests.points.mosaic
OUT_DIR`` to write a set as PNG files plus ``labels.json``.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np

from annoloop.ai.sample_data import MOSAIC_PHOTOS, mosaic_tiles
from annoloop.samples import photo_path
from annoloop.storage import read_image

PHOTOS = MOSAIC_PHOTOS


def _photos() -> list[np.ndarray]:
    return [read_image(photo_path(n)) for n in PHOTOS]


def mosaic(
    seed: int, tile: int = 128, photos: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One mosaic image (2*tile x 3*tile x 3 uint8) and its 2 x 3 grid of photo indices."""
    return mosaic_tiles(np.random.default_rng(seed), photos or _photos(), tile)


def points_in(grid: np.ndarray, n: int, seed: int, tile: int = 128) -> tuple[np.ndarray, list[str]]:
    """``n`` (row, col) points inside the central half of random tiles, and their labels."""
    rng = np.random.default_rng(seed + 10_000)
    cell = rng.integers(0, 6, n)
    i, j = np.divmod(cell, 3)
    off = rng.integers(tile // 4, 3 * tile // 4, (n, 2))
    rc = np.stack([i * tile + off[:, 0], j * tile + off[:, 1]], axis=1)
    return rc, [PHOTOS[grid[a, b]] for a, b in zip(i, j, strict=True)]


def png_bytes(img: np.ndarray) -> bytes:
    """The image encoded as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def write_set(out: Path, n_images: int = 12, n_points: int = 30, tile: int = 128) -> dict:
    """Write mosaics and ``labels.json`` ({file: [[row, col, label], ...]}) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    photos = _photos()
    labels = {}
    for s in range(n_images):
        img, grid = mosaic(s, tile, photos)
        (out / f"mosaic-{s:03d}.png").write_bytes(png_bytes(img))
        rc, names = points_in(grid, n_points, s, tile)
        labels[f"mosaic-{s:03d}.png"] = [
            [int(r), int(c), n] for (r, c), n in zip(rc, names, strict=True)
        ]
    (out / "labels.json").write_text(json.dumps(labels))
    return labels


if __name__ == "__main__":  # pragma: no cover - manual use
    write_set(Path(sys.argv[1] if len(sys.argv) > 1 else "mosaics"))
