"""Image reading on real photos: sizes, EXIF orientation, mode conversions, both decoders."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from annoloop.errors import InvalidInput
from annoloop.samples import PHOTOS, photo_path
from annoloop.storage import (
    IMAGE_EXTENSIONS,
    Location,
    checksum,
    file_checksum,
    image_size,
    is_image_name,
    list_images,
    read_header,
    read_image,
)
from annoloop.storage import images as images_module
from tests.storage._images import astronaut_crop, encode, raw_png

JPEGS = sorted(n for n in PHOTOS if n.endswith(".jpg"))


def _pillow_rgb(data: bytes) -> np.ndarray:
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    return np.asarray(im.convert("RGB"))


# ------------------------------------------------------------------------------------ sizes
@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_image_size_matches_decoded_size(name: str) -> None:
    path = photo_path(name)
    width, height = image_size(path)
    pixels = read_image(path)
    assert pixels.shape == (height, width, 3)
    assert pixels.dtype == np.uint8
    assert read_image(path, mode="L").shape == (height, width)
    with Image.open(path) as im:
        assert (width, height) == im.size


def test_image_size_accepts_every_kind_of_source(photo_dir: Path) -> None:
    path = photo_dir / "chelsea.png"
    expected = (451, 300)
    assert image_size(path) == expected
    assert image_size(str(path)) == expected
    assert image_size(f"file://{path}") == expected
    assert image_size(Location.parse(path)) == expected
    assert image_size(path.read_bytes()) == expected
    assert image_size(bytearray(path.read_bytes())) == expected
    header = read_header(path)
    assert header.format == "PNG" and header.mode == "RGB" and header.orientation == 1


def test_memory_location(photo_dir: Path) -> None:
    loc = Location.parse("memory:///annoloop-images-test/cat.png")
    try:
        loc.write_bytes((photo_dir / "chelsea.png").read_bytes())
        assert image_size(loc) == (451, 300)
        assert np.array_equal(read_image(loc), read_image(photo_dir / "chelsea.png"))
    finally:
        loc.parent.delete(recursive=True)


# ------------------------------------------------------------------------------ orientation
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_png_exact(orientation: int) -> None:
    """PNG (Pillow path, lossless): exactly what PIL.ImageOps.exif_transpose gives."""
    data = encode(astronaut_crop(), "PNG", orientation=orientation)
    expected = _pillow_rgb(data)
    assert read_header(data).orientation == orientation
    assert image_size(data) == (expected.shape[1], expected.shape[0])
    assert np.array_equal(read_image(data), expected)
    swapped = orientation >= 5
    assert image_size(data) == ((96, 64) if swapped else (64, 96))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_jpeg(orientation: int) -> None:
    """JPEG (simplejpeg path): same geometry as Pillow's exif_transpose, pixels close."""
    data = encode(astronaut_crop(), "JPEG", orientation=orientation, quality=95)
    expected = _pillow_rgb(data)
    got = read_image(data)
    assert got.shape == expected.shape
    assert image_size(data) == (got.shape[1], got.shape[0])
    assert np.abs(got.astype(int) - expected).mean() < 1.5


def test_orientation_6_rotates_clockwise() -> None:
    upright = read_image(encode(astronaut_crop(), "JPEG", quality=95))
    rotated = read_image(encode(astronaut_crop(), "JPEG", orientation=6, quality=95))
    assert image_size(encode(astronaut_crop(), "JPEG", orientation=6)) == (96, 64)
    assert rotated.shape == (64, 96, 3)
    assert np.array_equal(rotated, np.rot90(upright, -1))
    # mode L follows the same rotation
    grey = read_image(encode(astronaut_crop(), "JPEG", orientation=6, quality=95), mode="L")
    assert grey.shape == (64, 96)


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_invalid_orientation_is_ignored(value: int) -> None:
    data = encode(astronaut_crop(), "PNG", orientation=value)
    assert image_size(data) == (64, 96)
    assert np.array_equal(read_image(data), astronaut_crop())


# ------------------------------------------------------------------------------- conversions
def test_grey_is_replicated() -> None:
    grey = np.asarray(Image.open(photo_path("camera.png")))
    assert grey.ndim == 2
    rgb = read_image(photo_path("camera.png"))
    assert rgb.shape == (*grey.shape, 3)
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))
    assert np.array_equal(read_image(photo_path("camera.png"), mode="L"), grey)


def test_rgba_is_composited_on_white() -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = [200, 40, 0]
    rgba[0, :, 3] = [0, 128, 255]
    rgba[1, :, 3] = [255, 255, 1]
    out = read_image(encode(rgba, "PNG"))
    assert out[0, 0].tolist() == [255, 255, 255]  # transparent -> white
    assert out[0, 2].tolist() == [200, 40, 0]  # opaque -> the colour
    assert out[0, 1].tolist() == [227, 147, 127]  # (c*128 + 255*127) / 255, rounded
    assert out[1, 2].tolist() == [255, 254, 254]


def test_rgba_photo_against_pillow_alpha_composite() -> None:
    rgb = np.asarray(Image.open(photo_path("coffee.png")).convert("RGB"))
    alpha = np.linspace(0, 255, rgb.shape[1]).astype(np.uint8)[None, :].repeat(rgb.shape[0], 0)
    rgba = np.dstack([rgb, alpha])
    white = Image.new("RGBA", (rgb.shape[1], rgb.shape[0]), (255, 255, 255, 255))
    expected = np.asarray(Image.alpha_composite(white, Image.fromarray(rgba)).convert("RGB"))
    got = read_image(encode(rgba, "PNG"))
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_grey_with_alpha() -> None:
    la = Image.fromarray(np.array([[[0, 0], [0, 255], [100, 255]]], np.uint8), "LA")
    buf = io.BytesIO()
    la.save(buf, "PNG")
    out = read_image(buf.getvalue())
    assert out.tolist() == [[[255, 255, 255], [0, 0, 0], [100, 100, 100]]]
    assert read_image(buf.getvalue(), mode="L").tolist() == [[255, 0, 100]]


def test_palette_images() -> None:
    photo = Image.open(photo_path("chelsea.png")).convert("RGB")
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    buf = io.BytesIO()
    pal.save(buf, "PNG")
    assert read_header(buf.getvalue()).mode == "P"
    assert np.array_equal(read_image(buf.getvalue()), np.asarray(pal.convert("RGB")))
    # a transparent palette entry becomes white
    pal.info["transparency"] = 0
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=0)
    out = read_image(buf.getvalue())
    index0 = np.asarray(pal) == 0
    assert index0.any()
    assert (out[index0] == 255).all()
    assert np.array_equal(out[~index0], np.asarray(pal.convert("RGB"))[~index0])
    gif = io.BytesIO()
    pal.save(gif, "GIF")
    assert read_image(gif.getvalue()).shape == (300, 451, 3)


def test_bilevel() -> None:
    bits = Image.fromarray(astronaut_crop()).convert("1")
    buf = io.BytesIO()
    bits.save(buf, "PNG")
    out = read_image(buf.getvalue(), mode="L")
    assert set(np.unique(out).tolist()) <= {0, 255}
    assert np.array_equal(out, np.asarray(bits.convert("L")))


def test_16_bit_is_scaled_by_shift() -> None:
    rng = np.random.default_rng(7)
    grey16 = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    rgb16 = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    rgba16 = rng.integers(0, 65536, (9, 11, 4), dtype=np.uint16)
    rgba16[..., 3] = 65535
    assert np.array_equal(read_image(raw_png(grey16, 16, 0), mode="L"), grey16 >> 8)
    assert np.array_equal(read_image(raw_png(grey16, 16, 0))[..., 1], grey16 >> 8)
    assert np.array_equal(read_image(raw_png(rgb16, 16, 2)), rgb16 >> 8)
    assert np.array_equal(read_image(raw_png(rgba16, 16, 6)), rgba16[..., :3] >> 8)
    # a 16-bit TIFF goes the same way
    tif = io.BytesIO()
    Image.fromarray(grey16).save(tif, "TIFF")
    assert np.array_equal(read_image(tif.getvalue(), mode="L"), grey16 >> 8)


def test_32_bit_integer_and_float_images() -> None:
    values = np.array([[-5, 0, 255, 65535, 70000]], np.int32)
    tif = io.BytesIO()
    Image.fromarray(values, "I").save(tif, "TIFF")
    assert read_image(tif.getvalue(), mode="L").tolist() == [[0, 0, 0, 255, 255]]
    floats = np.array([[-1.0, 0.4, 127.6, 300.0]], np.float32)
    tif = io.BytesIO()
    Image.fromarray(floats, "F").save(tif, "TIFF")
    assert read_image(tif.getvalue(), mode="L").tolist() == [[0, 0, 128, 255]]


def test_cmyk_jpeg() -> None:
    cmyk = Image.fromarray(astronaut_crop()).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    out = read_image(buf.getvalue())
    assert out.shape == (96, 64, 3)
    assert np.abs(out.astype(int) - _pillow_rgb(buf.getvalue())).max() <= 2
    assert np.abs(out.astype(int) - astronaut_crop()).mean() < 3


def test_grey_jpeg() -> None:
    grey = np.asarray(Image.open(photo_path("camera.png")))
    data = encode(grey, "JPEG", quality=95)
    rgb = read_image(data)
    assert np.array_equal(rgb[..., 0], rgb[..., 2])
    assert np.abs(read_image(data, mode="L").astype(int) - grey).mean() < 2


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True}), ("PPM", {})],
)
def test_lossless_formats_round_trip(fmt: str, params: dict) -> None:
    data = encode(astronaut_crop(), fmt, **params)
    assert np.array_equal(read_image(data), astronaut_crop())
    assert image_size(data) == (64, 96)


def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (8, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=10)
    out = read_image(buf.getvalue())
    assert out.shape == (6, 8, 3)
    assert (out == [255, 0, 0]).all()


# -------------------------------------------------------------------------- simplejpeg path
@pytest.mark.parametrize("name", JPEGS)
def test_simplejpeg_close_to_pillow(name: str) -> None:
    data = photo_path(name).read_bytes()
    fast = images_module._decode_jpeg(data, "RGB")
    assert fast is not None  # these photos do go through simplejpeg
    got = read_image(data)
    assert np.array_equal(got, fast)
    reference = _pillow_rgb(data)
    diff = np.abs(got.astype(int) - reference)
    assert diff.mean() < 1.0
    assert np.percentile(diff, 99.9) <= 8
    grey = read_image(data, mode="L")
    pil_grey = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    assert np.abs(grey.astype(int) - pil_grey).mean() < 1.5


def test_mode_l_of_colour_matches_pillow_luma() -> None:
    got = read_image(photo_path("coffee.png"), mode="L")
    assert np.array_equal(got, np.asarray(Image.open(photo_path("coffee.png")).convert("L")))


def test_bad_mode() -> None:
    with pytest.raises(InvalidInput, match="mode must be"):
        read_image(photo_path("coffee.png"), mode="RGBA")


# ------------------------------------------------------------------------ checksums, listing
def test_checksums(tmp_path: Path) -> None:
    assert checksum(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert checksum(b"abc") == hashlib.sha256(b"abc").hexdigest()
    data = os.urandom(3 << 20) + b"tail"  # several chunks
    (tmp_path / "f.bin").write_bytes(data)
    assert file_checksum(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()
    assert file_checksum(Location.parse(tmp_path / "f.bin")) == checksum(data)


def test_list_images(tmp_path: Path) -> None:
    for rel in [
        "a.jpg",
        "B.JPEG",
        "c.png",
        "notes.txt",
        "raw.cr2",
        "sub/d.tif",
        "sub/e.TIFF",
        "sub/deep/f.webp",
        "sub/deep/g.gif",
        "sub/h.bmp",
        "._a.jpg",
        ".thumbs/t.jpg",
        "jpg",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    root = Location.parse(tmp_path)
    names = [loc.relative_to(root) for loc in list_images(root)]
    assert names == [
        "B.JPEG",
        "a.jpg",
        "c.png",
        "sub/d.tif",
        "sub/deep/f.webp",
        "sub/deep/g.gif",
        "sub/e.TIFF",
        "sub/h.bmp",
    ]
    assert [loc.name for loc in list_images(tmp_path, recursive=False)] == [
        "B.JPEG",
        "a.jpg",
        "c.png",
    ]
    assert list_images(tmp_path / "a.jpg") == [root.join("a.jpg")]
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"} == set(
        IMAGE_EXTENSIONS
    )
    assert is_image_name("X.WebP") and not is_image_name("x.txt") and not is_image_name("png")
