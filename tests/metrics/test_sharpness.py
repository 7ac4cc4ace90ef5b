"""Sharpness from edges: slanted-edge values against theory, and blur on real photos."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from PIL import Image

from annoloop.errors import InvalidInput
from annoloop.metrics import (
    edge_profile,
    find_edges,
    get_metric,
    sharpness,
    slanted_edge,
    slanted_edge_image,
)
from annoloop.samples import photo_path

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548


@pytest.mark.parametrize("sigma", [0.75, 1.0, 1.5, 2.0, 3.0])
def test_gaussian_lsf_values_match_theory(sigma: float) -> None:
    profile = edge_profile(slanted_edge_image((96, 96), angle=5.0, sigma=sigma))
    assert profile.fwhm == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.03)
    assert profile.rer == pytest.approx(math.erf(1 / (2 * math.sqrt(2) * sigma)), rel=0.03)
    assert profile.angle == pytest.approx(5.0, abs=0.05)
    assert profile.sigma == pytest.approx(sigma, rel=0.01)
    assert profile.oversample == 4
    # the model values are the closed forms of the fitted sigma
    model = profile.values("model")
    assert model["FWHM"] == pytest.approx(FWHM_PER_SIGMA * profile.sigma)


@pytest.mark.parametrize("sigma", [0.3, 0.5, 0.7])
def test_mtf_at_nyquist_matches_theory(sigma: float) -> None:
    profile = edge_profile(slanted_edge_image((96, 96), angle=5.0, sigma=sigma))
    assert profile.mtf_nyquist == pytest.approx(math.exp(-(math.pi**2) * sigma**2 / 2), abs=0.02)
    assert profile.mtf_half_nyquist == pytest.approx(
        math.exp(-(math.pi**2) * sigma**2 / 8), abs=0.02
    )


def test_more_blur_lowers_rer_and_mtf_and_widens_fwhm() -> None:
    # a sensor-like edge (each pixel averages its area) blurred by growing Gaussians
    sigmas = [0.3, 0.45, 0.6, 0.8]
    profiles = [
        edge_profile(slanted_edge_image((64, 64), angle=4.0, sigma=s, aperture=True))
        for s in sigmas
    ]
    rer = [p.rer for p in profiles]
    mtf = [p.mtf_nyquist for p in profiles]
    fwhm = [p.fwhm for p in profiles]
    assert all(a > b for a, b in itertools.pairwise(rer)), rer
    assert all(a > b for a, b in itertools.pairwise(mtf)), mtf
    assert all(a < b for a, b in itertools.pairwise(fwhm)), fwhm
    # with a wider range, RER and FWHM keep their order (the MTF at Nyquist is ~0 past 1 px)
    wide = [edge_profile(slanted_edge_image((64, 64), sigma=s, aperture=True)) for s in (1, 2, 3)]
    assert wide[0].rer > wide[1].rer > wide[2].rer
    assert wide[0].fwhm < wide[1].fwhm < wide[2].fwhm


def test_orientation_polarity_noise_and_roi() -> None:
    base = slanted_edge_image((64, 80), angle=-7.0, sigma=1.2)
    ref = edge_profile(base)
    flipped = edge_profile(255.0 - base)  # bright to dark
    assert flipped.fwhm == pytest.approx(ref.fwhm, rel=1e-6)
    assert flipped.dark == pytest.approx(255.0 - 200.0, abs=0.5)
    assert flipped.bright == pytest.approx(255.0 - 50.0, abs=0.5)
    horizontal = edge_profile(base.T, direction="y")
    assert horizontal.fwhm == pytest.approx(ref.fwhm, rel=1e-6)
    auto = slanted_edge(base.T)  # direction chosen from the gradients
    assert auto.fwhm == pytest.approx(ref.fwhm, rel=1e-6)
    noisy = edge_profile(slanted_edge_image((64, 80), angle=-7.0, sigma=1.2, noise=3.0))
    assert noisy.fwhm == pytest.approx(ref.fwhm, rel=0.1)
    assert 30 < noisy.edge_snr < 200
    # the region of interest of a larger picture
    canvas = np.full((200, 200), 50.0)
    canvas[50:114, 60:140] = base
    in_roi = slanted_edge(canvas, (50, 114, 60, 140))
    assert in_roi.fwhm == pytest.approx(ref.fwhm, rel=1e-6)


def test_axis_aligned_edge_uses_coarser_bins() -> None:
    profile = edge_profile(slanted_edge_image((40, 40), angle=0.0, sigma=1.5))
    assert profile.oversample == 1  # no sub-pixel phases to bin into
    assert profile.fwhm == pytest.approx(FWHM_PER_SIGMA * 1.5, rel=0.1)


def test_bad_patches() -> None:
    with pytest.raises(InvalidInput, match=r"no contrast|too few lines|border"):
        edge_profile(np.full((20, 20), 7.0))
    with pytest.raises(InvalidInput, match="too small"):
        edge_profile(np.zeros((2, 20)))
    with pytest.raises(InvalidInput, match="must be 2-D"):
        edge_profile(np.zeros(20))
    with pytest.raises(InvalidInput, match="NaN"):
        edge_profile(np.full((20, 20), np.nan))
    with pytest.raises(InvalidInput, match="direction must be"):
        edge_profile(np.zeros((20, 20)), direction="z")
    with pytest.raises(InvalidInput, match="outside the image"):
        slanted_edge(np.zeros((20, 20)), (0, 30, 0, 10))
    with pytest.raises(InvalidInput, match="source must be"):
        edge_profile(slanted_edge_image()).values("guess")


@pytest.fixture(scope="module")
def grey_photos() -> dict[str, np.ndarray]:
    out = {}
    for name in ("camera.png", "astronaut.png", "grace_hopper.jpg"):
        img = np.asarray(Image.open(photo_path(name)).convert("L"), dtype=np.float64)
        out[name] = img
    return out


@pytest.mark.parametrize("name", ["camera.png", "astronaut.png", "grace_hopper.jpg"])
def test_blurring_a_photo_lowers_rer(grey_photos: dict[str, np.ndarray], name: str) -> None:
    from scipy.ndimage import gaussian_filter

    image = grey_photos[name]
    results = [sharpness(gaussian_filter(image, s) if s else image) for s in (0, 1, 2, 3)]
    rer = [r["RER"] for r in results]
    fwhm = [r["FWHM"] for r in results]
    assert all(a > b for a, b in itertools.pairwise(rer)), rer
    assert all(a < b for a, b in itertools.pairwise(fwhm)), fwhm
    assert all(r["edges_X"] + r["edges_Y"] >= 3 for r in results)
    # a Gaussian blur of 2 px on an already soft photo gives an FWHM of at least 2.355 * 2
    assert fwhm[2] > FWHM_PER_SIGMA * 2 * 0.95


def test_found_edges_are_clean_and_apart(grey_photos: dict[str, np.ndarray]) -> None:
    edges = find_edges(grey_photos["astronaut.png"])
    assert len(edges) >= 5
    assert {e.direction for e in edges} == {"x", "y"}
    for e in edges:
        assert e.profile.r2 >= 0.98 and e.profile.edge_snr >= 10
    centres = {((e.rows[0] + e.rows[1]) // 2, (e.cols[0] + e.cols[1]) // 2) for e in edges}
    assert len(centres) == len(edges)


def test_metric_class_on_files_and_directions(tmp_path, grey_photos) -> None:
    path = tmp_path / "camera.png"
    Image.fromarray(grey_photos["camera.png"].astype(np.uint8)).save(path)
    metric = get_metric("sharpness")
    result = metric.compute(path)
    assert {"RER_X", "RER_Y", "FWHM_X", "MTF_NYQ_Y", "MTF_halfNYQ", "edges_X"} <= result.keys()
    assert not metric.is_higher_better("FWHM_X") and metric.is_higher_better("RER_Y")
    # a flat image has no edges: NaN values, zero counts, no error
    flat = sharpness(np.full((64, 64), 9.0))
    assert math.isnan(flat["RER"]) and flat["edges_X"] == 0.0
    data = get_metric("sharpness", source="data").compute(grey_photos["astronaut.png"])
    assert 0.0 < data["RER"] < 1.0
