"""Image sharpness from edges: RER, FWHM and MTF at Nyquist along x and y.

After iquaflow's ``sharpness`` metric (which follows Cenci et al. 2021, "Presenting a
semi-automatic, statistically-based approach to assess the sharpness level of optical images
from natural targets via the edge method"): find short straight edges in the image, keep the
clean ones, measure each with the slanted-edge method (:func:`~annoloop.metrics.edges.
edge_profile`) and summarise per direction:

1. Canny edges (skimage, thresholds at the 80th/90th percentile of the gradient) and the
   probabilistic Hough transform give straight segments at least ``edge_length`` long, within
   ``max_angle`` degrees of vertical (``X``: the profile runs across x) or horizontal (``Y``).
2. Around each segment a patch ``half_width`` pixels to each side is cut, widened (up to three
   times) when the edge's blur needs more room. Segments are taken longest first and one whose
   centre falls in an accepted patch is skipped, so each edge counts once.
3. An edge is kept when its profile is clean: step-model fit ``r2 >= min_r2``, edge SNR
   ``>= min_edge_snr``, per-line positions within ``max_straightness`` pixels of a line, angle
   within ``max_angle``.
4. The result holds the median over kept edges of RER, FWHM (pixels), MTF at Nyquist and at
   half Nyquist (from the fitted blur model by default, see ``source``), per direction
   (``RER_X``, ``FWHM_Y``, ``MTF_NYQ_X``, ``MTF_halfNYQ_Y``) and over both (``RER``, ...),
   plus the edge counts. iquaflow reports the mean per image; the median is used here because
   one bad edge among twenty must not move the value.

Colour images are measured on the mean of their channels. :func:`slanted_edge` measures one
edge in a chosen region (a test chart) without any detection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.metrics.edges import EdgeProfile, edge_profile

VALUE_NAMES = ("RER", "FWHM", "MTF_NYQ", "MTF_halfNYQ")
DIRECTIONS = {"x": "X", "y": "Y"}


@dataclass
class MeasuredEdge:
    """One accepted edge: where it is (pixel rows/cols of its patch) and its profile."""

    direction: str  # "x" (near-vertical edge, profile across x) or "y"
    rows: tuple[int, int]
    cols: tuple[int, int]
    profile: EdgeProfile


def _grey(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype.kind not in "iuf" or arr.dtype == bool:
        raise InvalidInput(f"image must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=2) if arr.shape[2] >= 3 else arr.mean(axis=2)
    if arr.ndim != 2:
        raise InvalidInput(f"image must be (h, w) or (h, w, channels), got {np.shape(image)}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InvalidInput("image holds NaN or infinite values")
    return arr


def slanted_edge(
    image: Any,
    roi: tuple[int, int, int, int] | None = None,
    *,
    direction: str | None = None,
    oversample: int = 4,
) -> EdgeProfile:
    """Measure the single edge in ``roi`` = (row0, row1, col0, col1) of ``image`` (or all of it).

    ``direction`` is ``"x"`` for a near-vertical edge, ``"y"`` for a near-horizontal one, or
    None to choose by where the gradient is stronger.
    """
    grey = _grey(image)
    if roi is not None:
        r0, r1, c0, c1 = (int(v) for v in roi)
        if not (0 <= r0 < r1 <= grey.shape[0] and 0 <= c0 < c1 <= grey.shape[1]):
            raise InvalidInput(f"roi {roi} is outside the image {grey.shape[:2]}")
        grey = grey[r0:r1, c0:c1]
    if direction is None:
        gx = np.abs(np.diff(grey, axis=1)).sum()
        gy = np.abs(np.diff(grey, axis=0)).sum()
        direction = "x" if gx >= gy else "y"
    return edge_profile(grey, direction=direction, oversample=oversample)


def _segments(
    grey: np.ndarray, edge_length: int, max_angle: float, canny_sigma: float
) -> list[tuple[str, float, int, int, int, int]]:
    """(direction, length, x0, y0, x1, y1) of straight Canny/Hough segments, longest first."""
    from skimage.feature import canny
    from skimage.transform import probabilistic_hough_line

    edges = canny(
        grey, sigma=canny_sigma, low_threshold=0.8, high_threshold=0.9, use_quantiles=True
    )
    # only angles near vertical and horizontal lines are of use: search just those
    # (skimage's theta is the angle of the line's normal)
    near = np.deg2rad(np.linspace(-max_angle, max_angle, int(4 * max_angle) + 1))
    theta = np.concatenate([near, near + np.pi / 2])
    theta = np.where(theta >= np.pi / 2, theta - np.pi, theta)
    lines = probabilistic_hough_line(
        edges, threshold=10, line_length=edge_length, line_gap=1, theta=theta, rng=42
    )
    if not lines:
        return []
    arr = np.array([[x0, y0, x1, y1] for (x0, y0), (x1, y1) in lines], dtype=np.int64)
    dx = np.abs(arr[:, 2] - arr[:, 0])
    dy = np.abs(arr[:, 3] - arr[:, 1])
    length = np.hypot(dx, dy)
    tan = math.tan(math.radians(max_angle))
    vertical = dx <= tan * dy
    horizontal = dy <= tan * dx
    order = np.argsort(-length, kind="stable")
    out = []
    for i in order.tolist():
        if vertical[i] or horizontal[i]:
            out.append(("x" if vertical[i] else "y", float(length[i]), *arr[i].tolist()))
    return out


def _cut(
    shape: tuple[int, int], direction: str, seg: tuple[int, int, int, int], half_width: int
) -> tuple[int, int, int, int] | None:
    """Rows and columns of the patch around a segment, or None if it leaves the image."""
    x0, y0, x1, y1 = seg
    if direction == "x":
        r0, r1 = min(y0, y1), max(y0, y1) + 1
        c0, c1 = min(x0, x1) - half_width, max(x0, x1) + half_width + 1
    else:
        r0, r1 = min(y0, y1) - half_width, max(y0, y1) + half_width + 1
        c0, c1 = min(x0, x1), max(x0, x1) + 1
    if r0 < 0 or c0 < 0 or r1 > shape[0] or c1 > shape[1]:
        return None
    return r0, r1, c0, c1


def _measure(
    grey: np.ndarray,
    direction: str,
    seg: tuple[int, int, int, int],
    half_width: int,
    oversample: int,
) -> tuple[tuple[int, int, int, int], EdgeProfile] | None:
    """Profile of the edge along ``seg``; the patch widens (up to 3x) to hold a wide blur.

    The blur must fit in the patch (3.5 fitted sigmas each side), or the plateaus, and with
    them the contrast and every value, would be guesses.
    """
    width = half_width
    for _ in range(3):
        box = _cut(grey.shape, direction, seg, width)
        if box is None:
            return None
        r0, r1, c0, c1 = box
        try:
            profile = edge_profile(grey[r0:r1, c0:c1], direction=direction, oversample=oversample)
        except InvalidInput:
            return None  # no usable edge in this patch
        if not profile.sigma > 0:
            return None
        need = math.ceil(3.5 * profile.sigma) + 2
        if need <= width:
            return box, profile
        if width >= 3 * half_width:
            return None
        width = min(need, 3 * half_width)
    return None


def find_edges(
    image: Any,
    *,
    edge_length: int = 16,
    half_width: int = 8,
    max_angle: float = 15.0,
    canny_sigma: float = 1.5,
    oversample: int = 4,
    min_r2: float = 0.98,
    min_edge_snr: float = 10.0,
    max_straightness: float = 0.5,
    max_edges: int = 200,
) -> list[MeasuredEdge]:
    """Detect, cut and measure the clean straight edges of an image; see the module docstring."""
    grey = _grey(image)
    h, w = grey.shape
    if edge_length < 4 or half_width < 4:
        raise InvalidInput("edge_length and half_width must be at least 4 pixels")
    taken = np.zeros((h, w), dtype=bool)
    found: list[MeasuredEdge] = []
    for direction, _length, x0, y0, x1, y1 in _segments(grey, edge_length, max_angle, canny_sigma):
        if len(found) >= max_edges:
            break
        xc, yc = (x0 + x1) // 2, (y0 + y1) // 2
        if taken[yc, xc]:
            continue
        measured = _measure(grey, direction, (x0, y0, x1, y1), half_width, oversample)
        if measured is None:
            continue
        (r0, r1, c0, c1), profile = measured
        ok = (
            profile.r2 >= min_r2
            and profile.edge_snr >= min_edge_snr
            and profile.straightness <= max_straightness
            and abs(profile.angle) <= max_angle
        )
        if not ok:
            continue
        found.append(MeasuredEdge(direction, (r0, r1), (c0, c1), profile))
        taken[r0:r1, c0:c1] = True
    return found


def _summary(edges: list[MeasuredEdge], suffix: str, source: str) -> dict[str, float]:
    out: dict[str, float] = {}
    table = np.array(
        [[e.profile.values(source)[name] for name in VALUE_NAMES] for e in edges], dtype=float
    ).reshape(len(edges), len(VALUE_NAMES))
    for j, name in enumerate(VALUE_NAMES):
        col = table[:, j]
        col = col[np.isfinite(col)]
        out[f"{name}{suffix}"] = float(np.median(col)) if col.size else math.nan
    return out


def sharpness(image: Any, *, source: str = "model", **options: Any) -> dict[str, float]:
    """RER, FWHM, MTF_NYQ and MTF_halfNYQ of an image: per direction (``_X``, ``_Y``), overall
    and the edge counts ``edges_X``, ``edges_Y``. NaN where no clean edge was found.

    ``source="model"`` (default, as iquaflow) takes the values from the blurred-step model
    fitted to each edge, which short edges in natural images measure reliably; ``"data"``
    takes them from the measured profiles (test charts, long edges). ``options`` go to
    :func:`find_edges`.
    """
    if source not in ("model", "data"):
        raise InvalidInput(f"source must be 'model' or 'data', got {source!r}")
    edges = find_edges(image, **options)
    out = _summary(edges, "", source)
    for direction, tag in DIRECTIONS.items():
        chosen = [e for e in edges if e.direction == direction]
        out.update(_summary(chosen, f"_{tag}", source))
        out[f"edges_{tag}"] = float(len(chosen))
    return out
