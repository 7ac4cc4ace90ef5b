"""Small builders shared by the store tests."""

from __future__ import annotations

import numpy as np

from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import rle_encode
from annoloop.store import Project


def add_records(project: Project, n: int = 5, size: int = 100) -> np.ndarray:
    """``n`` image records of ``size`` x ``size`` pixels (no files)."""
    sizes = np.full(n, size)
    return project.add_image_records([f"img/{i:05d}.png" for i in range(n)], sizes, sizes)


def boxes(image_ids: np.ndarray, label_ids: np.ndarray, n: int, seed: int = 0) -> Annotations:
    """``n`` random valid boxes over the given images and labels."""
    rng = np.random.default_rng(seed)
    wh = rng.uniform(0.05, 0.3, size=(n, 2))
    centre = rng.uniform(0, 1, size=(n, 2)) * (1 - wh) + wh / 2
    return Annotations.from_boxes(
        image=rng.choice(image_ids, n),
        box=np.hstack([centre, wh]),
        label=rng.choice(label_ids, n),
    )


def every_kind(image_id: int, label_id: int) -> Annotations:
    """One annotation of each shape kind on one image (100 x 100 pixels)."""
    line = np.array([[0.1, 0.1], [0.5, 0.4], [0.9, 0.2]])
    ring = np.array([[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]])
    hole = np.array([[0.4, 0.4], [0.6, 0.4], [0.6, 0.6]])
    pixels = np.zeros((100, 100), np.uint8)
    pixels[40:60, 40:60] = 1
    mask = rle_encode(pixels)
    return Annotations(
        image=[image_id] * 6,
        kind=[Kind.LABEL, Kind.POINT, Kind.BBOX, Kind.LINE, Kind.POLYGON, Kind.MASK],
        label=[label_id, label_id, -1, label_id, label_id, label_id],
        box=[
            [np.nan] * 4,
            [0.25, 0.75, 0.0, 0.0],
            [0.5, 0.5, 0.2, 0.4],
            [0.5, 0.25, 0.8, 0.3],
            [0.5, 0.5, 0.6, 0.6],
            [0.5, 0.5, 0.2, 0.2],
        ],
        confidence=[np.nan, 0.5, 0.25, np.nan, 0.75, np.nan],
        shape=[None, None, None, line, [[ring, hole]], mask],
    )
