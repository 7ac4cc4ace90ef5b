"""Modifiers on the bundled photos: what each does to pixels, sizes and annotations."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annoloop.errors import InvalidInput, NotFound
from annoloop.experiments import ExperimentDataset, apply_modifier, apply_modifiers, get_modifier
from annoloop.experiments.modifiers import ImageContext, Modifier, list_modifiers
from annoloop.experiments.modifiers.optics import sigma_for_rer
from annoloop.samples import photo_path
from annoloop.storage import read_image


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf")


def _modified(name: str, modifier: Modifier) -> np.ndarray:
    path = photo_path(name)
    out = modifier.process(path.read_bytes(), path.suffix, ImageContext(name))
    return read_image(out.data)


def test_jpeg_quality_lowers_size_and_psnr_monotonically(photo_dataset: ExperimentDataset) -> None:
    qualities = [95, 70, 40, 10]
    copies = apply_modifiers(
        photo_dataset, [get_modifier("jpeg", quality=q) for q in qualities], executor="local"
    )
    for name in photo_dataset.image_files():
        original = read_image(photo_dataset.images / name)
        psnrs, sizes = [], []
        for copy in copies:
            manifest = json.loads((copy.root / ".annoloop-modifier.json").read_text())
            sizes.append(manifest["images"][name]["extra"]["jpeg_bytes"])
            psnrs.append(_psnr(original, read_image(copy.images / name)))
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes), name
        assert psnrs == sorted(psnrs, reverse=True) and len(set(psnrs)) == len(psnrs), name
        assert psnrs[0] - psnrs[-1] > 5, name
    # a JPEG source holds the quality-q stream itself: its file shrinks with the quality
    jpg_sizes = [(c.images / "rocket.jpg").stat().st_size for c in copies]
    assert jpg_sizes == sorted(jpg_sizes, reverse=True)


def test_jpeg_pixels_equal_pillow_round_trip() -> None:
    """The modified pixels are exactly what libjpeg (Pillow, OpenCV) gives at that quality."""
    original = read_image(photo_path("astronaut.png"))
    buf = io.BytesIO()
    Image.fromarray(original).save(buf, "JPEG", quality=30)
    expected = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    got = _modified("astronaut.png", get_modifier("jpeg", quality=30))
    assert np.array_equal(got, expected)


def test_blur_lowers_sharpness_rer() -> None:
    from annoloop.metrics.sharpness import sharpness

    before = sharpness(read_image(photo_path("camera.png"), mode="L"))["RER"]
    values = [before]
    for sigma in (1.0, 2.5):
        blurred = _modified("camera.png", get_modifier("blur", sigma=sigma))
        values.append(sharpness(blurred[:, :, 0])["RER"])
    assert np.all(np.isfinite(values))
    assert values[0] > values[1] > values[2]


def test_rer_modifier_moves_rer_towards_target() -> None:
    from annoloop.metrics.sharpness import sharpness

    grey = read_image(photo_path("camera.png"), mode="L")
    before = sharpness(grey)["RER"]
    target = 0.3
    after = sharpness(_modified("camera.png", get_modifier("rer", rer=target))[:, :, 0])["RER"]
    assert before > 0.45
    assert abs(after - target) < abs(before - target)
    assert abs(after - target) < 0.12
    # the closed form inverts RER = 2 Phi(0.5 / sigma) - 1
    from scipy.stats import norm

    sigma = sigma_for_rer(0.4)
    assert 2 * norm.cdf(0.5 / sigma) - 1 == pytest.approx(0.4, abs=1e-12)


@pytest.mark.parametrize("kind", ["gaussian", "poisson"])
def test_noise_reaches_target_snr(kind: str) -> None:
    from annoloop.metrics.snr import snr_homogeneous_blocks

    # targets below every channel's own SNR (coins 45; chelsea 36, 30, 14)
    for name, targets in (("coins.png", (5.0, 8.0, 20.0)), ("chelsea.png", (5.0, 8.0))):
        for target in targets:
            noisy = _modified(name, get_modifier("noise", snr=target, kind=kind))
            measured = [
                snr_homogeneous_blocks(noisy[:, :, c], correct_bias=True).snr for c in range(3)
            ]
            assert np.mean(measured) == pytest.approx(target, rel=0.15), (name, target)
    # camera.png is noisier (SNR 15) than a target of 20: it is left as it is
    unchanged = _modified("camera.png", get_modifier("noise", snr=20, kind=kind))
    assert np.array_equal(unchanged, read_image(photo_path("camera.png")))
    # seeded: the same file gives the same noise, another seed other noise
    a = _modified("camera.png", get_modifier("noise", snr=10, kind=kind))
    b = _modified("camera.png", get_modifier("noise", snr=10, kind=kind))
    c = _modified("camera.png", get_modifier("noise", snr=10, kind=kind, seed=3))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_resample_half_halves_sizes_and_scales_coco_exactly(
    photo_dataset: ExperimentDataset,
) -> None:
    src = json.loads(photo_dataset.coco.read_text())
    copy = apply_modifier(photo_dataset, get_modifier("resample", scale=0.5), executor="local")
    assert copy.root.name == "photos#resample_scale0.5_interpolationbilinear"
    out = json.loads(copy.coco.read_text())
    by_id = {im["id"]: im for im in src["images"]}
    for new in out["images"]:
        old = by_id[new["id"]]
        w, h = Image.open(copy.images / new["file_name"]).size
        assert (
            (new["width"], new["height"])
            == (w, h)
            == (round(old["width"] / 2), round(old["height"] / 2))
        )
    for a, b in zip(src["annotations"], out["annotations"], strict=True):
        old, new = by_id[a["image_id"]], {im["id"]: im for im in out["images"]}[a["image_id"]]
        sx, sy = new["width"] / old["width"], new["height"] / old["height"]
        assert b["bbox"] == [
            a["bbox"][0] * sx,
            a["bbox"][1] * sy,
            a["bbox"][2] * sx,
            a["bbox"][3] * sy,
        ]
        if "segmentation" in a:
            flat = np.array(a["segmentation"][0]).reshape(-1, 2) * [sx, sy]
            assert b["segmentation"][0] == flat.reshape(-1).tolist()
        assert b["area"] == pytest.approx(a["area"] * sx * sy, rel=1e-12)
    # the even-sized photos are exactly halved
    halved = next(im for im in out["images"] if im["file_name"] == "astronaut.png")
    assert (halved["width"], halved["height"]) == (256, 256)
    assert copy.params["scale_factor"] == 0.5 and copy.params["modifier"] == copy.root.name[7:]
    # the annoloop loader reads the scaled file; relative boxes are those of the original
    a0, a1 = photo_dataset.load().annotations, copy.load().annotations
    np.testing.assert_allclose(a0.box[a0.kind == 2], a1.box[a1.kind == 2], atol=1e-12)


def test_resample_by_gsd_and_interpolations() -> None:
    m = get_modifier("resample", gsd=0.6, source_gsd=0.3, interpolation=3)  # torchvision code
    assert m.factor == 0.5 and m.params["interpolation"] == "bicubic"
    assert m.log_params()["gsd"] == 0.6
    out = _modified("coffee.png", m)
    assert out.shape[:2] == (200, 300)
    nearest = _modified("coffee.png", get_modifier("resample", scale=2, interpolation="nearest"))
    np.testing.assert_array_equal(nearest[::2, ::2], read_image(photo_path("coffee.png")))


def test_quantize_bits() -> None:
    original = read_image(photo_path("astronaut.png"))
    for bits in (1, 3, 6):
        q = _modified("astronaut.png", get_modifier("quantize", bits=bits))
        assert np.array_equal(q, original & np.uint8((0xFF << (8 - bits)) & 0xFF))
        assert len(np.unique(q)) <= 2**bits
    assert np.array_equal(_modified("astronaut.png", get_modifier("quantize", bits=8)), original)


def test_sharpen_factor() -> None:
    from scipy import ndimage

    original = read_image(photo_path("camera.png"), mode="L").astype(float)
    same = _modified("camera.png", get_modifier("sharpen", factor=1.0))[:, :, 0]
    assert np.array_equal(same, original.astype(np.uint8))
    sharp = _modified("camera.png", get_modifier("sharpen", factor=3.0))[:, :, 0].astype(float)
    smooth = _modified("camera.png", get_modifier("sharpen", factor=0.0))[:, :, 0].astype(float)
    energy = [ndimage.laplace(x).var() for x in (smooth, original, sharp)]
    assert energy[0] < energy[1] < energy[2]


def test_grey_16bit_and_alpha_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "odd" / "images"
    folder.mkdir(parents=True)
    grey16 = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "deep.png")
    rgba = np.dstack(
        [read_image(photo_path("coffee.png"))[:60, :80], np.full((60, 80), 77, np.uint8)]
    )
    Image.fromarray(rgba).save(folder / "alpha.png")
    ds = ExperimentDataset.open(tmp_path / "odd")
    q, half = apply_modifiers(
        ds,
        [get_modifier("quantize", bits=4), get_modifier("resample", scale=0.5)],
        executor="local",
    )
    deep = np.asarray(Image.open(q.images / "deep.png"))
    assert deep.dtype == np.uint16 and np.array_equal(deep, grey16 & np.uint16(0xF000))
    with Image.open(q.images / "alpha.png") as im:
        assert im.mode == "RGBA" and np.all(np.asarray(im)[:, :, 3] == 77)
    with Image.open(half.images / "alpha.png") as im:
        assert im.size == (40, 30) and im.mode == "RGBA"


def test_reuse_writes_nothing_new(photo_dataset: ExperimentDataset) -> None:
    mods = [get_modifier("jpeg", quality=20), get_modifier("resample", scale=0.5)]
    first = apply_modifiers(photo_dataset, mods, executor="local")

    def snapshot() -> dict[str, int]:
        return {
            str(p): p.stat().st_mtime_ns for c in first for p in c.root.rglob("*") if p.is_file()
        }

    before = snapshot()
    second = apply_modifiers(photo_dataset, mods, executor="local")
    assert snapshot() == before
    assert [c.root for c in second] == [c.root for c in first]
    # a changed source image is redone, alone; other params write another copy
    src = photo_dataset.images / "coffee.png"
    Image.open(src).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(src)
    apply_modifiers(photo_dataset, mods, executor="local")
    after = snapshot()
    changed = {Path(p).name for p in after if after[p] != before[p]}
    assert changed == {"coffee.png", "annotations.json", ".annoloop-modifier.json"}
    other = apply_modifier(photo_dataset, get_modifier("jpeg", quality=21), executor="local")
    assert other.root.name == "photos#jpeg_quality21" and other.root.is_dir()


def test_original_and_chained_modifiers(photo_dataset: ExperimentDataset) -> None:
    same = apply_modifier(photo_dataset, get_modifier("original"), executor="local")
    assert same.root == photo_dataset.root and same.params["modifier"] == "original"
    blurred = apply_modifier(photo_dataset, get_modifier("blur", sigma=1), executor="local")
    both = apply_modifier(blurred, get_modifier("jpeg", quality=50), executor="local")
    assert both.root.name == "photos#blur_sigma1#jpeg_quality50"
    assert both.params["modifier"] == "blur_sigma1#jpeg_quality50"
    assert both.params["sigma"] == 1 and both.params["quality"] == 50


def test_plugin_modifier_by_subclassing(photo_dataset: ExperimentDataset) -> None:
    from tests.experiments.plugins import Invert

    m = Invert(strength=0.5)
    assert m.tag == "invert_strength0.5"
    same = get_modifier("tests.experiments.plugins:Invert", strength=0.5)
    assert same == m
    copy = apply_modifier(photo_dataset, m, executor="local:2")  # pickled to worker processes
    original = read_image(photo_dataset.images / "astronaut.png").astype(float)
    got = read_image(copy.images / "astronaut.png").astype(float)
    np.testing.assert_allclose(got, np.rint(0.5 * original + 0.5 * (255 - original)), atol=0.51)
    assert json.loads(copy.coco.read_text()) == json.loads(photo_dataset.coco.read_text())


def test_registry_and_bad_parameters() -> None:
    names = list_modifiers()
    for name in ("jpeg", "blur", "noise", "resample", "sharpen", "quantize", "rer", "original"):
        assert name in names
    assert get_modifier("jpg", quality=5).tag == "jpeg_quality5"  # iquaflow's name
    with pytest.raises(InvalidInput, match=r"unknown parameter.*'qualty'"):
        get_modifier("jpeg", qualty=5)
    with pytest.raises(InvalidInput, match=r"quality must be an integer 1\.\.100"):
        get_modifier("jpeg", quality=0)
    with pytest.raises(InvalidInput, match="either scale or gsd"):
        get_modifier("resample")
    with pytest.raises(InvalidInput, match="snr must be a positive"):
        get_modifier("noise", snr=-1)
    with pytest.raises(NotFound, match="unknown modifier 'sepia'"):
        get_modifier("sepia")
    with pytest.raises(InvalidInput, match="not a subclass"):
        get_modifier("annoloop.experiments.dataset:ExperimentDataset")


def test_unreadable_image_is_named_and_the_rest_is_kept(photo_dataset: ExperimentDataset) -> None:
    bad = photo_dataset.images / "broken.png"
    bad.write_bytes(photo_path("astronaut.png").read_bytes()[:3000])  # truncated PNG
    (photo_dataset.images / "noise.jpg").write_bytes(b"\xff\xd8 not really a jpeg" * 50)
    with pytest.raises(InvalidInput, match=r"2 image\(s\) could not be modified.*broken\.png"):
        apply_modifier(photo_dataset, get_modifier("quantize", bits=2), executor="local")
    copy = photo_dataset.root.parent / "photos#quantize_bits2"
    manifest = json.loads((copy / ".annoloop-modifier.json").read_text())
    assert set(manifest["images"]) == {"astronaut.png", "camera.png", "coffee.png", "rocket.jpg"}


def test_resample_scales_geojson_rle_and_masks(tmp_path: Path) -> None:
    from annoloop.geometry.masks import rle_area, rle_encode

    folder = tmp_path / "geo"
    (folder / "images").mkdir(parents=True)
    (folder / "images_mask").mkdir()
    Image.open(photo_path("astronaut.png")).save(folder / "images" / "a.png")
    labels = np.zeros((512, 512), np.uint8)
    labels[100:300, 50:250] = 3
    Image.fromarray(labels).save(folder / "images_mask" / "a.png")
    square = [[[10, 20], [110, 20], [110, 220], [10, 220], [10, 20]]]
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square},
               "properties": {"image": "a.png", "label": "field", "image_width": 512,
                              "image_height": 512}}  # fmt: skip
    geo = {"type": "FeatureCollection", "features": [feature]}
    (folder / "fields.geojson").write_text(json.dumps(geo))
    mask = np.zeros((512, 512), bool)
    mask[40:80, 40:120] = True
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 512, "height": 512}],
        "categories": [{"id": 1, "name": "blob"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "segmentation": rle_encode(mask), "area": 3200,
                         "bbox": [40, 40, 80, 40]}],
    }  # fmt: skip
    (folder / "instances.json").write_text(json.dumps(coco))
    geo_ref = {**geo, "crs": {"type": "name", "properties": {"name": "EPSG:32631"}}}
    (folder / "zz_georef.geojson").write_text(json.dumps(geo_ref))
    ds = ExperimentDataset.open(folder)
    assert ds.masks == folder / "images_mask" and len(ds.annotations) == 3
    copy = apply_modifier(ds, get_modifier("resample", scale=0.5), executor="local")
    out = json.loads((copy.root / "fields.geojson").read_text())
    props = out["features"][0]["properties"]
    assert out["features"][0]["geometry"]["coordinates"] == (np.array(square) / 2).tolist()
    assert (props["image_width"], props["image_height"]) == (256, 256)
    assert json.loads((copy.root / "zz_georef.geojson").read_text()) == geo_ref  # ground coords
    seg = json.loads((copy.root / "instances.json").read_text())["annotations"][0]
    assert seg["segmentation"]["size"] == [256, 256] and seg["area"] == rle_area(
        seg["segmentation"]
    )
    assert seg["area"] == 800 and seg["bbox"] == [20.0, 20.0, 40.0, 20.0]
    small = np.asarray(Image.open(copy.masks / "a.png"))
    assert small.shape == (256, 256) and set(np.unique(small)) == {0, 3}
    assert (small == 3).sum() == 100 * 100


def test_pixel_limit_and_malformed_annotations(
    photo_dataset: ExperimentDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANNOLOOP_MAX_IMAGE_PIXELS", "100000")  # every photo is above it
    with pytest.raises(InvalidInput, match=r"4 image\(s\).*above the pixel limit of 100000"):
        apply_modifier(photo_dataset, get_modifier("quantize", bits=5), executor="local")
    monkeypatch.delenv("ANNOLOOP_MAX_IMAGE_PIXELS")
    doc = json.loads(photo_dataset.coco.read_text())
    doc["annotations"][0]["bbox"] = [1, 2, "three", 4]
    photo_dataset.coco.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match=r"annotations\.json: annotations.*4 numbers"):
        apply_modifier(photo_dataset, get_modifier("resample", scale=0.5), executor="local")
