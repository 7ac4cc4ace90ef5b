"""Signal-to-noise ratio of an image without a reference, as iquaflow measures it.

Two methods, both after iquaflow's ``snr_metric`` (Satellogic), vectorised over blocks:

- **Homogeneous blocks (HB)**: cut the image into ``patch_size`` blocks, take the mean and
  standard deviation (ddof=1) of each, keep the blocks whose mean lies in the bin of the image's
  median value, sigma-clip their standard deviations (4 sigma low, 2 high) and call the median
  of the rest the noise. SNR = median value / noise.
- **Homogeneous areas (HA)**: compute the local binary pattern (uniform, ``8 * radius`` points);
  a pixel is "flat" when its pattern is all-below, all-above or non-uniform (noise). Blocks in
  which the share of flat pixels is at least ``lbp_threshold`` (and below 1) are homogeneous;
  each gives SNR = mean / std, and the result is the mean SNR of the homogeneous blocks whose
  mean lies in the median's bin.

Differences from iquaflow, for images it would give NaN on: the median's bin is ``bin_width``
wide (1 grey level for integer images, as iquaflow's rounding; 1/256 of the value range for
float images) and is widened (doubled) until it holds ``min_blocks`` blocks. ``nodata`` pixels
(0 by default, as in iquaflow) are left out: a block holding one is skipped. Colour images are
measured per channel and the channel SNRs averaged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput

METHODS = ("HB", "HA")

# Blocks are copied this many values at a time (32 MB of float64).
_CHUNK_ELEMENTS = 1 << 22


@dataclass
class SNREstimate:
    """One channel's SNR, its uncertainty, the signal and noise levels and blocks used."""

    snr: float
    error: float
    signal: float
    noise: float
    blocks: int


def _channels(image: Any, where: str = "image") -> tuple[np.ndarray, bool]:
    """(h, w, c) float array with NaN for nothing yet, and whether the input was integer."""
    arr = np.asarray(image)
    if arr.dtype.kind not in "iuf" or arr.dtype == bool:
        raise InvalidInput(f"image must be numeric, got dtype {arr.dtype}", where)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise InvalidInput(f"image must be (h, w) or (h, w, channels), got {arr.shape}", where)
    return arr, arr.dtype.kind in "iu"


def _block_stats(
    img: np.ndarray, size: int, stride: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Mean and std (ddof=1) of every ``size`` block at ``stride``; NaN where a pixel is NaN.

    Blocks are copied a band of block rows at a time, so memory stays bounded for overlapping
    strides and huge images; std is numpy's two-pass one (no cancellation).
    """
    windows = np.lib.stride_tricks.sliding_window_view(img, (size, size))[::stride, ::stride]
    grid = windows.shape[:2]
    per_row = max(grid[1] * size * size, 1)
    band = max(1, _CHUNK_ELEMENTS // per_row)
    means, stds = [], []
    for start in range(0, grid[0], band):
        flat = windows[start : start + band].reshape(-1, size * size)
        means.append(flat.mean(axis=1))
        stds.append(flat.std(axis=1, ddof=1))
    if not means:
        return np.zeros(0), np.zeros(0), grid
    return np.concatenate(means), np.concatenate(stds), grid


def _median_bin(
    means: np.ndarray, median: float, width: float, min_count: int, value_range: float
) -> np.ndarray:
    """Blocks whose mean is within width/2 of the median; widen until min_count are in."""
    distance = np.abs(means - median)
    distance[np.isnan(distance)] = np.inf
    half = width / 2.0
    while True:
        chosen = distance <= half
        if chosen.sum() >= min_count or half >= value_range:
            return chosen
        half *= 2.0


def _prepare(
    channel: np.ndarray, nodata: float | None, patch_size: int, where: str
) -> tuple[np.ndarray, float, float]:
    img = channel.astype(np.float64)
    if nodata is not None:
        img[img == nodata] = np.nan
    img[~np.isfinite(img)] = np.nan
    if img.shape[0] < patch_size or img.shape[1] < patch_size:
        raise InvalidInput(f"image {img.shape} is smaller than one {patch_size}-pixel block", where)
    valid = img[~np.isnan(img)]
    if valid.size == 0:
        raise InvalidInput("image has no valid pixels (all nodata or not finite)", where)
    return img, float(np.median(valid)), float(valid.max() - valid.min())


def _check_patch(patch_size: int, stride: int | None) -> int:
    if not isinstance(patch_size, (int, np.integer)) or patch_size < 2:
        raise InvalidInput(f"patch_size must be an integer >= 2, got {patch_size!r}")
    stride = patch_size if stride is None else stride
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise InvalidInput(f"stride must be a positive integer, got {stride!r}")
    return int(stride)


def _default_width(is_int: bool, value_range: float) -> float:
    return 1.0 if is_int else max(value_range / 256.0, np.finfo(float).tiny)


def _sigmaclip(values: np.ndarray, low: float = 4.0, high: float = 2.0) -> np.ndarray:
    """scipy.stats.sigmaclip, without importing scipy."""
    c = values[~np.isnan(values)]
    while c.size:
        mean, std = c.mean(), c.std()
        keep = (c >= mean - std * low) & (c <= mean + std * high)
        if keep.all():
            break
        c = c[keep]
    return c


@lru_cache(maxsize=64)
def clipped_std_bias(n: int, low: float = 4.0, high: float = 2.0) -> float:
    """Median of sigma-clipped sample standard deviations of ``n`` Gaussian values, over sigma.

    A sample std (ddof=1) is sigma * chi(n - 1) / sqrt(n - 1). The clipping loop of
    :func:`_sigmaclip` is run on that distribution itself (on a fine grid) until it stops
    moving, and the median of what is left is returned: 0.938 for n = 9.
    """
    k = n - 1
    x = np.linspace(1e-6, 4.0, 40001)
    # chi(k) density of y = s / sigma = chi / sqrt(k), in logs to stay finite for large k
    log_pdf = (k - 1) * np.log(x * np.sqrt(k)) - k * x * x / 2.0
    pdf = np.exp(log_pdf - log_pdf.max())
    lo, hi = 0.0, np.inf
    for _ in range(100):
        inside = (x >= lo) & (x <= hi)
        w = pdf * inside
        mean = float(np.sum(w * x) / np.sum(w))
        std = float(np.sqrt(np.sum(w * (x - mean) ** 2) / np.sum(w)))
        new_lo, new_hi = mean - low * std, mean + high * std
        if abs(new_lo - lo) < 1e-9 and abs(new_hi - hi) < 1e-9:
            break
        lo, hi = new_lo, new_hi
    w = pdf * ((x >= lo) & (x <= hi))
    cdf = np.cumsum(w) / np.sum(w)
    return float(np.interp(0.5, cdf, x))


def snr_homogeneous_blocks(
    image: Any,
    *,
    patch_size: int = 3,
    stride: int | None = None,
    nodata: float | None = 0,
    bin_width: float | None = None,
    min_blocks: int = 10,
    correct_bias: bool = False,
) -> SNREstimate:
    """HB method on a 2-D (one channel) image; see the module docstring.

    The median of sigma-clipped block standard deviations underestimates Gaussian noise (by
    about 6% for 3x3 blocks); iquaflow keeps that bias, ``correct_bias=True`` divides it out
    (see :func:`clipped_std_bias`).
    """
    stride = _check_patch(patch_size, stride)
    arr, is_int = _channels(image)
    if arr.shape[2] != 1:
        raise InvalidInput(f"expected one channel, got {arr.shape[2]} (use snr())")
    img, median, value_range = _prepare(arr[:, :, 0], nodata, patch_size, "image")
    mean, std, _ = _block_stats(img, patch_size, stride)
    width = _default_width(is_int, value_range) if bin_width is None else float(bin_width)
    chosen = _median_bin(mean, median, width, min_blocks, value_range)
    clipped = _sigmaclip(std[chosen])
    if clipped.size == 0:
        return SNREstimate(np.nan, np.nan, median, np.nan, 0)
    noise = float(np.median(clipped))
    spread = float(np.std(clipped))
    if correct_bias:
        factor = clipped_std_bias(patch_size * patch_size)
        noise, spread = noise / factor, spread / factor
    if noise <= 0:
        return SNREstimate(np.inf, np.nan, median, noise, int(clipped.size))
    return SNREstimate(median / noise, median / noise**2 * spread, median, noise, int(clipped.size))


def snr_homogeneous_areas(
    image: Any,
    *,
    patch_size: int = 5,
    stride: int | None = None,
    radius: int = 1,
    lbp_threshold: float = 0.6,
    nodata: float | None = 0,
    bin_width: float | None = None,
    min_blocks: int = 3,
    min_homogeneous: int = 10,
) -> SNREstimate:
    """HA method (local binary patterns) on a 2-D image; see the module docstring."""
    from skimage.feature import local_binary_pattern

    stride = _check_patch(patch_size, stride)
    if not isinstance(radius, (int, np.integer)) or radius < 1:
        raise InvalidInput(f"radius must be a positive integer, got {radius!r}")
    arr, is_int = _channels(image)
    if arr.shape[2] != 1:
        raise InvalidInput(f"expected one channel, got {arr.shape[2]} (use snr())")
    img, median, value_range = _prepare(arr[:, :, 0], nodata, patch_size, "image")
    n_points = 8 * radius
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about float input; comparisons are fine
        lbp = local_binary_pattern(np.nan_to_num(img, nan=0.0), n_points, radius, "uniform")
    flat = ((lbp <= radius - 1) | (lbp >= n_points - radius + 1)).astype(np.float64)
    share, _, _ = _block_stats(flat, patch_size, stride)
    mean, std, _ = _block_stats(img, patch_size, stride)
    homogeneous = (share >= lbp_threshold) & (share < 1) & ~np.isnan(mean) & (std > 0)
    if homogeneous.sum() < min_homogeneous:
        return SNREstimate(np.nan, np.nan, median, np.nan, int(homogeneous.sum()))
    mean, std = mean[homogeneous], std[homogeneous]
    width = _default_width(is_int, value_range) if bin_width is None else float(bin_width)
    chosen = _median_bin(mean, median, width, min_blocks, value_range)
    if chosen.sum() < min_blocks:
        return SNREstimate(np.nan, np.nan, median, np.nan, int(chosen.sum()))
    snrs = mean[chosen] / std[chosen]
    return SNREstimate(
        float(np.mean(snrs)),
        float(np.std(snrs)),
        median,
        float(np.median(std[chosen])),
        int(chosen.sum()),
    )


def snr(image: Any, method: str = "HB", *, each_channel: bool = False, **options: Any) -> dict:
    """SNR of a grey or channel-last colour image: ``{"snr", "snr_error"}``.

    Channels are measured one by one and averaged (NaN channels skipped); the error is the
    larger of the combined channel errors and the spread between channels, as iquaflow does.
    ``each_channel=True`` adds ``snr/channel_<i>``. ``options`` go to the method's function.
    """
    method = method.upper()
    if method not in METHODS:
        raise InvalidInput(f"unknown SNR method {method!r}; use one of {', '.join(METHODS)}")
    arr, _ = _channels(image)
    fn = snr_homogeneous_blocks if method == "HB" else snr_homogeneous_areas
    estimates = [fn(arr[:, :, c], **options) for c in range(arr.shape[2])]
    values = np.array([e.snr for e in estimates], dtype=float)
    errors = np.array([e.error for e in estimates], dtype=float)
    ok = np.isfinite(values)
    if not ok.any():
        result = {"snr": float("nan"), "snr_error": float("nan")}
    elif len(values) == 1:
        result = {"snr": float(values[0]), "snr_error": float(errors[0])}
    else:
        good_err = errors[ok & np.isfinite(errors)]
        combined = float(np.sqrt(np.sum(good_err**2)) / len(good_err)) if good_err.size else 0.0
        result = {
            "snr": float(values[ok].mean()),
            "snr_error": max(combined, float(values[ok].std())),
        }
    if each_channel:
        result.update({f"snr/channel_{i}": float(v) for i, v in enumerate(values)})
    return result
