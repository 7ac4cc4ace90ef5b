"""SNR by homogeneous blocks and areas: known noise on flat images, falling SNR on photos."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annoloop.errors import InvalidInput
from annoloop.metrics import get_metric, snr, snr_homogeneous_areas, snr_homogeneous_blocks
from annoloop.metrics.snr import clipped_std_bias
from annoloop.samples import photo_path


def flat_image(sigma: float, seed: int = 0, level: float = 128.0) -> np.ndarray:
    """A uniform grey level plus Gaussian noise, stored as 8-bit like a camera would."""
    rng = np.random.default_rng(seed)
    noisy = level + rng.normal(0.0, sigma, (512, 512))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return np.asarray(Image.open(photo_path("camera.png")), dtype=np.float64)


@pytest.mark.parametrize("sigma", [2.0, 4.0, 8.0, 16.0])
def test_flat_image_gives_the_known_snr(sigma: float) -> None:
    true_snr = 128.0 / sigma
    hb = snr_homogeneous_blocks(flat_image(sigma), correct_bias=True)
    assert hb.snr == pytest.approx(true_snr, rel=0.05)
    assert hb.signal == 128.0 and hb.noise == pytest.approx(sigma, rel=0.05)
    # iquaflow's estimate, without the correction, is biased high by the clipped median
    raw = snr_homogeneous_blocks(flat_image(sigma))
    assert raw.snr == pytest.approx(hb.snr / clipped_std_bias(9), rel=1e-9)
    ha = snr_homogeneous_areas(flat_image(sigma))
    assert ha.snr == pytest.approx(true_snr, rel=0.08)
    assert ha.blocks >= 3


def test_bias_factor_matches_simulation() -> None:
    from scipy.stats import sigmaclip

    rng = np.random.default_rng(1)
    stds = rng.normal(size=(200_000, 9)).std(axis=1, ddof=1)
    kept, _, _ = sigmaclip(stds, 4.0, 2.0)
    assert clipped_std_bias(9) == pytest.approx(np.median(kept), abs=2e-3)


@pytest.mark.parametrize("method", ["HB", "HA"])
def test_snr_falls_as_noise_rises_on_a_photo(camera: np.ndarray, method: str) -> None:
    rng = np.random.default_rng(0)
    values = []
    for sigma in (5.0, 10.0, 20.0, 40.0):
        noisy = np.clip(camera + rng.normal(0.0, sigma, camera.shape), 0, 255)
        values.append(snr(noisy, method)["snr"])
    assert all(a > b for a, b in itertools.pairwise(values)), values
    # at strong noise the estimate is close to median / sigma
    assert values[-1] == pytest.approx(np.median(camera) / 40.0, rel=0.25)


def test_colour_channels_and_nodata(tmp_path: Path) -> None:
    rgb = np.stack([flat_image(4, seed=s) for s in range(3)], axis=2)
    result = snr(rgb, "HB", each_channel=True, correct_bias=True)
    assert result["snr"] == pytest.approx(32.0, rel=0.05)
    assert {"snr/channel_0", "snr/channel_1", "snr/channel_2"} <= result.keys()
    # nodata (0) pixels are left out: a black border does not change the result
    framed = flat_image(4)
    framed[:, :100] = 0
    assert snr_homogeneous_blocks(framed).signal == 128.0
    # through the Metric class, from files (RGBA: the alpha channel is dropped)
    path = tmp_path / "flat.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(path)
    metric = get_metric("snr", correct_bias=True)
    out = metric.compute([path, rgb])
    assert out["n_images"] == 2.0 and out["snr"] == pytest.approx(32.0, rel=0.05)


def test_bad_input() -> None:
    with pytest.raises(InvalidInput, match="unknown SNR method"):
        snr(flat_image(2), "XX")
    with pytest.raises(InvalidInput, match="patch_size must be an integer >= 2"):
        snr_homogeneous_blocks(flat_image(2), patch_size=1)
    with pytest.raises(InvalidInput, match="smaller than one"):
        snr_homogeneous_blocks(np.ones((2, 2)))
    with pytest.raises(InvalidInput, match="no valid pixels"):
        snr_homogeneous_blocks(np.zeros((20, 20)))
    with pytest.raises(InvalidInput, match="image must be numeric"):
        snr(np.array([["a"]]))
    with pytest.raises(InvalidInput, match=r"image must be \(h, w\)"):
        snr(np.zeros((2, 3, 4, 5)))
    with pytest.raises(InvalidInput, match="not found"):
        get_metric("snr").compute("/no/such/image.png")
    # a flat image without noise has zero noise: infinite SNR, not an error
    assert snr_homogeneous_blocks(np.full((50, 50), 100.0)).snr == np.inf
    # NaN and inf pixels are ignored like nodata
    img = flat_image(4).astype(float)
    img[5, 5] = np.nan
    img[6, 6] = np.inf
    assert np.isfinite(snr_homogeneous_blocks(img).snr)


def test_huge_image_runs_in_bounded_memory() -> None:
    rng = np.random.default_rng(0)
    big = (100.0 + rng.normal(0.0, 5.0, (2000, 2000))).astype(np.float32)
    est = snr_homogeneous_blocks(big, stride=1, correct_bias=True)  # 4M overlapping blocks
    assert est.snr == pytest.approx(20.0, rel=0.05)
