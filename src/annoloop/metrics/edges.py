"""Slanted-edge analysis of one edge: ESF, LSF, RER, FWHM and MTF (ISO 12233 style).

:func:`edge_profile` takes a patch holding one straight edge that runs roughly along the rows
(``direction="x"``: the profile is taken across x) or along the columns (``"y"``):

1. The edge position in every line is the centroid of the derivative around its peak; a
   straight line is fitted through the positions (twice, dropping lines off by more than a
   pixel).
2. Every pixel's signed distance to that line (perpendicular, in pixels) and its value give
   the edge spread function (ESF), averaged in bins of ``1 / oversample`` pixel. A slanted edge
   puts pixels at many sub-pixel distances, so the ESF is super-resolved; an edge almost along
   the pixel grid does not, and gets the finest bins that all hold samples (down to 1 pixel).
3. The dark and bright levels come from a fit of ``d + a * Phi((x - b) / c)`` (a Gaussian-blurred
   step) to the ESF, or from the outer tails when the fit fails; the ESF is normalised to 0..1
   with them and oriented dark to bright.
4. RER = ESF(x50 + 0.5) - ESF(x50 - 0.5) around the 50 % crossing (as iquaflow and the
   GIQE define it). The LSF is the ESF's derivative; FWHM is its full width at half maximum in
   pixels (linear interpolation of the half-maximum crossings). The MTF is the modulus of the
   Fourier transform of the Hamming-windowed LSF, divided by the transfer functions of the
   binning and the finite difference, read at Nyquist (0.5 cycles/pixel) and half Nyquist.

For a Gaussian blur of standard deviation ``s`` pixels on a point-sampled edge: FWHM = 2.355 s,
RER = erf(1 / (2 sqrt(2) s)), MTF(f) = exp(-2 pi^2 s^2 f^2). Those closed forms of the fitted
model's ``sigma`` are :meth:`EdgeProfile.values` with ``source="model"``: steadier than the
measured profile on short, noisy edges (iquaflow also reports model values). The quality
numbers of the result (``edge_snr``, ``r2``, ``straightness``) let a caller reject edges that
are not clean.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput


@dataclass
class EdgeProfile:
    """The measured edge: profiles and the values taken from them (NaN when not measurable)."""

    x: np.ndarray  # bin centres: distance from the edge line in pixels (dark side negative)
    esf: np.ndarray  # normalised ESF (0 dark, 1 bright)
    lsf: np.ndarray  # derivative of the normalised ESF at bin edges x[:-1] + step / 2
    frequencies: np.ndarray  # cycles per pixel
    mtf: np.ndarray  # MTF at ``frequencies`` (1 at zero)
    rer: float
    fwhm: float
    mtf_nyquist: float
    mtf_half_nyquist: float
    angle: float  # degrees between the edge and the line direction (0 = exactly along rows)
    dark: float  # image level on the dark side
    bright: float  # image level on the bright side
    edge_snr: float  # (bright - dark) / noise of the ESF tails
    r2: float  # fit quality of the blurred-step model to the ESF
    straightness: float  # RMS distance (pixels) of the per-line edge positions to the line
    lines: int  # lines (rows or columns) that took part
    oversample: int  # bins per pixel actually used (lower than asked for a near-axis edge)
    sigma: float  # blur (pixels) of the fitted step model d + a * Phi((x - b) / sigma); NaN

    def values(self, source: str = "data") -> dict[str, float]:
        """RER, FWHM, MTF at Nyquist and half Nyquist, from the measured profile (``"data"``)
        or from the fitted Gaussian-blurred step (``"model"``, robust on short noisy edges)."""
        if source == "model":
            s = self.sigma
            if not (math.isfinite(s) and s > 0):
                return dict.fromkeys(("RER", "FWHM", "MTF_NYQ", "MTF_halfNYQ"), math.nan)
            return {
                "RER": math.erf(1.0 / (2.0 * math.sqrt(2.0) * s)),
                "FWHM": 2.0 * math.sqrt(2.0 * math.log(2.0)) * s,
                "MTF_NYQ": math.exp(-2.0 * math.pi**2 * s * s * 0.25),
                "MTF_halfNYQ": math.exp(-2.0 * math.pi**2 * s * s * 0.0625),
            }
        if source != "data":
            raise InvalidInput(f"source must be 'data' or 'model', got {source!r}")
        return {
            "RER": self.rer,
            "FWHM": self.fwhm,
            "MTF_NYQ": self.mtf_nyquist,
            "MTF_halfNYQ": self.mtf_half_nyquist,
        }


def _edge_positions(a: np.ndarray, sign: float, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel edge position in each row: centroid of the signed derivative near its peak."""
    d = np.diff(a, axis=1) * sign  # (rows, cols - 1); derivative sample j sits at j + 0.5
    # smooth along x a little so one noisy pixel does not win the argmax
    k = np.array([0.25, 0.5, 0.25])
    smooth = d.copy()
    smooth[:, 1:-1] = d[:, :-2] * k[0] + d[:, 1:-1] * k[1] + d[:, 2:] * k[2]
    peak = np.argmax(smooth, axis=1)
    offsets = np.arange(-half, half + 1)
    idx = np.clip(peak[:, None] + offsets[None, :], 0, d.shape[1] - 1)
    w = np.clip(np.take_along_axis(d, idx, axis=1), 0.0, None)
    total = w.sum(axis=1)
    pos = np.where(total > 0, (w * (idx + 0.5)).sum(axis=1) / np.where(total > 0, total, 1), np.nan)
    return pos, total


def _fit_line(rows: np.ndarray, pos: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """Least-squares pos = slope * row + offset, refitted without lines > 1 px off."""
    ok = np.isfinite(pos)
    for _ in range(2):
        if ok.sum() < 2:
            raise InvalidInput("too few lines with a detectable edge")
        slope, offset = np.polyfit(rows[ok], pos[ok], 1)
        resid = pos - (slope * rows + offset)
        keep = ok & (np.abs(resid) <= 1.0)
        if keep.sum() == ok.sum() or keep.sum() < 2:
            break
        ok = keep
    rms = float(np.sqrt(np.mean(resid[ok] ** 2)))
    return float(slope), float(offset), rms, ok


def _crossing(x: np.ndarray, y: np.ndarray, level: float, start: int, step: int) -> float:
    """x where y falls below ``level`` walking from index ``start`` by ``step`` (interpolated)."""
    i = start
    while 0 <= i + step < len(y):
        j = i + step
        if y[j] < level <= y[i]:
            t = (y[i] - level) / (y[i] - y[j])
            return float(x[i] + t * (x[j] - x[i]))
        i = j
    return math.nan


def _fit_step(x: np.ndarray, esf: np.ndarray) -> tuple[np.ndarray | None, float]:
    """Fit d + a * Phi((x - b) / c) to the ESF; returns (params, r2) or (None, nan)."""
    from scipy.optimize import curve_fit
    from scipy.special import ndtr

    def model(xv: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
        return d + a * ndtr((xv - b) / c)

    n = max(len(esf) // 8, 1)
    lo, hi = float(np.median(esf[:n])), float(np.median(esf[-n:]))
    p0 = [hi - lo, 0.0, 1.0, lo]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # "covariance could not be estimated" on exact fits
            params, _ = curve_fit(model, x, esf, p0=p0, maxfev=2000)
    except (RuntimeError, ValueError, FloatingPointError):
        return None, math.nan
    if not np.all(np.isfinite(params)) or params[2] == 0:
        return None, math.nan
    resid = esf - model(x, *params)
    ss_tot = float(np.sum((esf - esf.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else math.nan
    return params, r2


def edge_profile(
    patch: Any,
    *,
    direction: str = "x",
    oversample: int = 4,
    search: int = 4,
) -> EdgeProfile:
    """Measure the one straight edge in ``patch``; see the module docstring.

    ``direction="x"``: the edge runs along the columns' direction (a near-vertical edge) and the
    profile is taken across x; ``"y"``: a near-horizontal edge, profile across y. ``search``
    is the half-width (pixels) of the window around the derivative peak used for each line's
    edge position. Raises InvalidInput when no edge can be located.
    """
    a = np.asarray(patch, dtype=np.float64)
    if a.ndim != 2:
        raise InvalidInput(f"edge patch must be 2-D, got shape {a.shape}")
    if direction not in ("x", "y"):
        raise InvalidInput(f"direction must be 'x' or 'y', got {direction!r}")
    if direction == "y":
        a = a.T
    if not isinstance(oversample, (int, np.integer)) or not 1 <= oversample <= 64:
        raise InvalidInput(f"oversample must be an integer 1..64, got {oversample!r}")
    rows, cols = a.shape
    if rows < 3 or cols < 8:
        raise InvalidInput(f"edge patch {a.shape} too small: need >= 3 lines of >= 8 pixels")
    if not np.all(np.isfinite(a)):
        raise InvalidInput("edge patch holds NaN or infinite values")

    sign = 1.0 if a[:, -max(cols // 4, 1) :].mean() >= a[:, : max(cols // 4, 1)].mean() else -1.0
    pos, _ = _edge_positions(a, sign, search)
    row_idx = np.arange(rows, dtype=np.float64)
    slope, offset, straightness, used = _fit_line(row_idx, pos)
    norm = math.sqrt(1.0 + slope * slope)

    # signed perpendicular distance of every pixel centre to the edge line (dark side < 0)
    cols_idx = np.arange(cols, dtype=np.float64)
    dist = sign * (cols_idx[None, :] - (slope * row_idx[:, None] + offset)) / norm
    dist = dist[used]
    values = a[used]
    # keep the distance range every used line covers, so each bin mixes all lines
    reach = min(float(np.min(-dist.min(axis=1))), float(np.min(dist.max(axis=1))))
    reach = math.floor(reach)  # whole pixels, so every bin size below tiles it exactly
    if reach < 2.0:
        raise InvalidInput("edge too close to the patch border (needs 2 pixels each side)")
    inside = np.abs(dist) < reach
    near, near_values = dist[inside] + reach, values[inside]
    # An edge close to the pixel grid's axis puts its pixels at only a few sub-pixel phases:
    # use the finest bins that all get samples (the full ``oversample`` for a good slant).
    for factor in range(int(oversample), 0, -1):
        nbins = round(2 * reach * factor)
        bins = np.clip(np.floor(near * factor).astype(np.int64), 0, nbins - 1)
        counts = np.bincount(bins, minlength=nbins)
        if counts.min() > 0:
            break
    step = 1.0 / factor
    sums = np.bincount(bins, weights=near_values, minlength=nbins)
    x = -reach + (np.arange(nbins) + 0.5) * step
    filled = counts > 0
    esf_raw = np.interp(x, x[filled], sums[filled] / counts[filled])

    params, r2 = _fit_step(x, esf_raw)
    if params is not None and params[0] > 0 and abs(params[1]) < reach:
        dark, bright = float(params[3]), float(params[3] + params[0])
    else:
        n = max(nbins // 8, 1)
        dark, bright = float(np.median(esf_raw[:n])), float(np.median(esf_raw[-n:]))
    contrast = bright - dark
    if not contrast > 0:
        raise InvalidInput("no contrast across the edge")
    esf = (esf_raw - dark) / contrast

    # noise: spread of the ESF tails (beyond 3 fitted sigmas, else the outer eighths)
    width = abs(float(params[2])) if params is not None else reach / 4
    tails = np.abs(x - (float(params[1]) if params is not None else 0.0)) > 3 * width
    if tails.sum() < 4:
        tails = np.zeros(nbins, bool)
        n = max(nbins // 8, 2)
        tails[:n] = tails[-n:] = True
    if params is not None:
        from scipy.special import ndtr

        fitted = (params[3] + params[0] * ndtr((x - params[1]) / params[2]) - dark) / contrast
    else:
        fitted = np.where(x > 0, 1.0, 0.0)
    noise = float(np.std((esf - fitted)[tails]))
    edge_snr = 1.0 / noise if noise > 0 else math.inf

    lsf = np.diff(esf) / step
    x_lsf = x[:-1] + step / 2
    rer, fwhm = _rer_fwhm(x, esf, x_lsf, lsf, step)
    freqs, mtf = _mtf(lsf, step)
    mtf_nyq = float(np.interp(0.5, freqs, mtf)) if len(freqs) > 1 else math.nan
    mtf_half = float(np.interp(0.25, freqs, mtf)) if len(freqs) > 1 else math.nan
    return EdgeProfile(
        x=x,
        esf=esf,
        lsf=lsf,
        frequencies=freqs,
        mtf=mtf,
        rer=rer,
        fwhm=fwhm,
        mtf_nyquist=mtf_nyq,
        mtf_half_nyquist=mtf_half,
        angle=math.degrees(math.atan(slope)),
        dark=dark,
        bright=bright,
        edge_snr=edge_snr,
        r2=r2,
        straightness=straightness,
        lines=int(used.sum()),
        oversample=factor,
        sigma=abs(float(params[2])) if params is not None else math.nan,
    )


def _rer_fwhm(
    x: np.ndarray, esf: np.ndarray, x_lsf: np.ndarray, lsf: np.ndarray, step: float
) -> tuple[float, float]:
    """RER around the 50 % crossing nearest the LSF peak; FWHM of the LSF around its peak."""
    peak = int(np.argmax(lsf))
    if not lsf[peak] > 0:
        return math.nan, math.nan
    # 50 % crossing: the sign change of esf - 0.5 closest to the LSF peak
    above = esf >= 0.5
    changes = np.nonzero(above[1:] != above[:-1])[0]
    if changes.size == 0:
        return math.nan, math.nan
    j = int(changes[np.argmin(np.abs(changes - peak))])
    t = (0.5 - esf[j]) / (esf[j + 1] - esf[j])
    x50 = float(x[j] + t * (x[j + 1] - x[j]))
    if x50 - 0.5 < x[0] or x50 + 0.5 > x[-1]:
        rer = math.nan
    else:
        rer = float(np.interp(x50 + 0.5, x, esf) - np.interp(x50 - 0.5, x, esf))
    half = lsf[peak] / 2.0
    left = _crossing(x_lsf, lsf, half, peak, -1)
    right = _crossing(x_lsf, lsf, half, peak, +1)
    fwhm = right - left if math.isfinite(left) and math.isfinite(right) else math.nan
    return rer, fwhm


def _mtf(lsf: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """MTF from the LSF: Hamming window centred on the peak, FFT, finite-difference correction."""
    n = len(lsf)
    if n < 4:
        return np.zeros(0), np.zeros(0)
    peak = int(np.argmax(lsf))
    # a Hamming window as wide as the LSF, centred on its peak (ISO 12233)
    idx = np.arange(n)
    half = max(peak, n - 1 - peak)
    window = 0.54 + 0.46 * np.cos(np.pi * (idx - peak) / max(half, 1))
    # zero padding samples the spectrum finely, so reading it at 0.5 cycles/pixel is exact
    nfft = max(1024, 1 << (n - 1).bit_length())
    spectrum = np.abs(np.fft.rfft(lsf * window, n=nfft))
    freqs = np.fft.rfftfreq(nfft, d=step)
    if not spectrum[0] > 0:
        return np.zeros(0), np.zeros(0)
    mtf = spectrum / spectrum[0]
    # binning the ESF and the forward difference are each a box of width ``step``: divide
    # both sincs out so the MTF is the edge's own, not the measurement's
    mtf = mtf / np.maximum(np.sinc(freqs * step) ** 2, 1e-6)
    keep = freqs <= 1.0
    return freqs[keep], mtf[keep]


def slanted_edge_image(
    shape: tuple[int, int] = (64, 64),
    *,
    angle: float = 5.0,
    sigma: float = 1.0,
    dark: float = 50.0,
    bright: float = 200.0,
    noise: float = 0.0,
    aperture: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """A near-vertical edge through the centre, blurred by a Gaussian LSF of ``sigma`` pixels.

    Each pixel centre gets ``dark + (bright - dark) * Phi(d / sigma)`` where ``d`` is its signed
    distance to the edge line (tilted ``angle`` degrees from vertical); ``noise`` adds Gaussian
    noise of that standard deviation. ``sigma=0`` gives a sharp step. For calibrating and
    testing: its FWHM is 2.355 * sigma and its MTF at Nyquist exp(-pi^2 sigma^2 / 2).
    ``aperture=True`` averages each pixel over its area (8 x 8 samples) as a real sensor
    does, which multiplies the MTF by sinc(f).
    """
    from scipy.special import ndtr

    h, w = shape
    sub = 8 if aperture else 1
    offsets = (np.arange(sub) + 0.5) / sub - 0.5  # sample positions inside a pixel
    rows = np.arange(h)[:, None, None, None] + offsets[None, :, None, None]
    cols = np.arange(w)[None, None, :, None] + offsets[None, None, None, :]
    t = math.radians(angle)
    # line through the image centre, tilted ``angle`` degrees from vertical
    d = (cols - (w - 1) / 2) * math.cos(t) - (rows - (h - 1) / 2) * math.sin(t)
    step = ndtr(d / sigma) if sigma > 0 else (d > 0).astype(np.float64) + 0.5 * (d == 0)
    image = dark + (bright - dark) * step.mean(axis=(1, 3))
    if noise > 0:
        image = image + np.random.default_rng(seed).normal(0.0, noise, image.shape)
    return image
