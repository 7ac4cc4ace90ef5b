"""Where to put the points on an image: CoralNet's three point-generation methods.

- ``random``: ``n`` points uniformly at random over the image ("simple random").
- ``stratified``: the image cut into a grid of cells, the same number of random points in
  each cell ("stratified random"); ``cell_rows`` x ``cell_cols`` default to a near-square
  grid of about ``n`` cells, and the total is trimmed to ``n``.
- ``grid``: points at the centres of a ``rows`` x ``cols`` grid ("uniform grid"); by default
  the grid closest to ``n`` points with the image's aspect ratio, which may hold a few more
  than ``n`` points (a grid cannot be trimmed without breaking it).

All return an ``(n, 2)`` int64 array of pixel (row, col), vectorised, reproducible by seed.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from annoloop.errors import InvalidInput

SampleMethod = Literal["random", "stratified", "grid"]
SAMPLE_METHODS: tuple[str, ...] = ("random", "stratified", "grid")


def sample_rowcols(
    height: int,
    width: int,
    n: int,
    method: SampleMethod = "random",
    seed: int = 0,
    *,
    cell_rows: int | None = None,
    cell_cols: int | None = None,
) -> np.ndarray:
    """Pixel (row, col) points on a ``height`` x ``width`` image (see the module docstring)."""
    if height < 1 or width < 1:
        raise InvalidInput(f"image size must be positive, got {width}x{height}", "sample_points")
    if n < 1:
        raise InvalidInput(f"n must be at least 1, got {n}", "sample_points")
    rng = np.random.default_rng(seed)
    if method == "random":
        return np.stack([rng.integers(0, height, n), rng.integers(0, width, n)], axis=1)
    if method == "stratified":
        rows = cell_rows or max(1, round(math.sqrt(n * height / width)))
        cols = cell_cols or max(1, math.ceil(n / rows))
        rows, cols = min(rows, height), min(cols, width)
        per_cell = math.ceil(n / (rows * cols))
        r_edges = np.linspace(0, height, rows + 1).astype(np.int64)
        c_edges = np.linspace(0, width, cols + 1).astype(np.int64)
        ci, cj = np.divmod(np.repeat(np.arange(rows * cols), per_cell), cols)
        r = r_edges[ci] + (rng.random(len(ci)) * (r_edges[ci + 1] - r_edges[ci])).astype(np.int64)
        c = c_edges[cj] + (rng.random(len(cj)) * (c_edges[cj + 1] - c_edges[cj])).astype(np.int64)
        pts = np.stack([r, c], axis=1)
        if len(pts) > n:  # drop the surplus at random, at most one point from each cell
            order = np.arange(len(pts)).reshape(rows * cols, per_cell)
            surplus = rng.choice(rows * cols, len(pts) - n, replace=False)
            keep = np.ones(len(pts), bool)
            keep[order[surplus, -1]] = False
            pts = pts[keep]
        return pts
    if method == "grid":
        rows = cell_rows or max(1, round(math.sqrt(n * height / width)))
        cols = cell_cols or max(1, math.ceil(n / rows))
        r = ((np.arange(rows) + 0.5) * height / rows).astype(np.int64)
        c = ((np.arange(cols) + 0.5) * width / cols).astype(np.int64)
        rr, cc = np.meshgrid(r, c, indexing="ij")
        return np.stack([rr.ravel(), cc.ravel()], axis=1)
    raise InvalidInput(
        f"unknown sampling method {method!r} (allowed: {', '.join(SAMPLE_METHODS)})",
        "sample_points",
    )
