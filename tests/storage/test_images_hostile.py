"""Broken, hostile and huge images: every failure is InvalidInput naming the source."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from annoloop.errors import InvalidInput, NotFound
from annoloop.samples import photo_path
from annoloop.storage import DEFAULT_MAX_PIXELS, image_size, pixel_limit, read_header, read_image
from tests.storage._images import astronaut_crop, encode, jpeg_with_size, png_with_size

# Pillow warns (DecompressionBombWarning) on its way to our refusal: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def _small_png() -> bytes:
    return encode(astronaut_crop(), "PNG")


def _small_jpeg() -> bytes:
    return encode(astronaut_crop(), "JPEG", quality=90)


# ------------------------------------------------------------------------ decompression bombs
def test_png_bomb_header_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = png_with_size(_small_png(), 100_000, 100_000)  # 10^10 pixels claimed, 20 KB file
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    with pytest.raises(InvalidInput, match="limit of 250000000 pixels") as info:
        read_image(path)
    assert "bomb.png" in str(info.value)
    assert "10000000000 pixels" in str(info.value)
    with pytest.raises(InvalidInput, match=r"bomb\.png"):
        image_size(path)  # beyond twice the limit even the header read is refused


def test_bomb_just_above_the_limit_names_its_size(tmp_path: Path) -> None:
    """Above our limit, below Pillow's hard guard: our check refuses it from the header."""
    bomb = png_with_size(_small_png(), 20_000, 15_000)  # 300 M pixels
    path = tmp_path / "big.png"
    path.write_bytes(bomb)
    assert image_size(path) == (20_000, 15_000)  # the header alone is fine to read
    with pytest.raises(InvalidInput, match=r"20000x15000 \(300000000 pixels\)") as info:
        read_image(path)
    assert "big.png" in str(info.value)
    # The same header with a raised limit gets past the guard, to fail decoding the tiny
    # IDAT: proof that the refusal above happened before any decoding.
    with pytest.raises(InvalidInput, match="cannot decode"):
        read_image(path, max_pixels=400_000_000)


def test_jpeg_bomb_header() -> None:
    bomb = jpeg_with_size(_small_jpeg(), 60_000, 60_000)
    with pytest.raises(InvalidInput, match="limit of"):
        read_image(bomb)
    bomb = jpeg_with_size(_small_jpeg(), 17_000, 17_000)
    with pytest.raises(InvalidInput, match="17000x17000"):
        read_image(bomb)


def test_limit_from_argument_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    path = photo_path("chelsea.png")  # 451 x 300 = 135300 pixels
    assert read_image(path, max_pixels=135_300).shape == (300, 451, 3)
    with pytest.raises(InvalidInput, match=r"451x300 \(135300 pixels\).*limit of 135299"):
        read_image(path, max_pixels=135_299)
    monkeypatch.setenv("ANNOLOOP_MAX_IMAGE_PIXELS", "100_000")
    assert pixel_limit() == 100_000
    with pytest.raises(InvalidInput, match=r"chelsea\.png"):
        read_image(path)
    assert read_image(path, max_pixels=10**6).shape == (300, 451, 3)  # the argument wins
    monkeypatch.setenv("ANNOLOOP_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(InvalidInput, match="ANNOLOOP_MAX_IMAGE_PIXELS"):
        read_image(path)
    monkeypatch.delenv("ANNOLOOP_MAX_IMAGE_PIXELS")
    assert pixel_limit() == DEFAULT_MAX_PIXELS
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidInput, match="max_pixels"):
            read_image(path, max_pixels=bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- broken files
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_jpeg(tmp_path: Path, fraction: float) -> None:
    data = photo_path("china.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(InvalidInput, match=r"cut\.jpg"):
        read_image(path)
    assert image_size(path) == (640, 427)  # the header survived the cut


def test_truncated_file_refused_even_when_pillow_was_told_to_fill_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PySpacer sets ImageFile.LOAD_TRUNCATED_IMAGES on import; annoloop stays strict."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    for name in ("china.jpg", "coffee.png"):
        data = photo_path(name).read_bytes()
        path = tmp_path / f"cut-{name}"
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(InvalidInput, match="cut-"):
            read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the other library's choice is restored


def test_truncated_png(tmp_path: Path) -> None:
    data = photo_path("coffee.png").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match=r"cut\.png: cannot decode"):
        read_image(path)


def test_cut_inside_the_header(tmp_path: Path) -> None:
    path = tmp_path / "stub.jpg"
    path.write_bytes(photo_path("china.jpg").read_bytes()[:40])
    with pytest.raises(InvalidInput, match=r"stub\.jpg"):
        image_size(path)
    with pytest.raises(InvalidInput, match=r"stub\.jpg"):
        read_image(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00", os.urandom(4096), b"<html><body>404</body></html>", b"\xff\xd8\xff", b"GIF89a"],
)
def test_not_images(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=r"photo\.jpg"):
        read_image(path)
    with pytest.raises(InvalidInput, match=r"photo\.jpg"):
        image_size(path)
    with pytest.raises(InvalidInput, match=rf"<{len(content)} bytes>"):
        read_image(content)


def test_png_with_a_bad_crc(tmp_path: Path) -> None:
    data = bytearray(_small_png())
    data[40] ^= 0xFF  # inside the first chunk after IHDR
    with pytest.raises(InvalidInput):
        read_image(bytes(data))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"absent\.png"):
        read_image(tmp_path / "absent.png")
    with pytest.raises(NotFound, match=r"absent\.png"):
        image_size(tmp_path / "absent.png")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_corrupt_exif_does_not_break_reading() -> None:
    data = bytearray(encode(astronaut_crop(), "JPEG", orientation=6))
    start = data.index(b"Exif\x00\x00")
    data[start + 6 : start + 14] = b"MM\x00\x2a\xff\xff\xff\xff"  # IFD offset far outside
    assert read_header(bytes(data)).orientation == 1
    assert read_image(bytes(data)).shape == (96, 64, 3)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    which=st.sampled_from(["png", "jpeg", "gif", "webp", "tiff", "bmp"]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=6),
    cut=st.none() | st.integers(0, 10**6),
)
def test_fuzzed_files_give_an_array_or_invalid_input(which, flips, cut) -> None:
    """Damaged files of every format: a uint8 array of sane shape or InvalidInput, nothing else."""
    data = bytearray(_FUZZ_BASES[which])
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    if cut is not None:
        data = data[: cut % len(data)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on some damage; the outcome is checked
        try:
            out = read_image(bytes(data), max_pixels=10**6)
        except InvalidInput as exc:
            assert "bytes>" in str(exc)
            return
    assert out.dtype == np.uint8
    assert out.ndim == 3 and out.shape[2] == 3
    assert out.shape[0] * out.shape[1] <= 10**6


_FUZZ_BASES = {
    "png": encode(astronaut_crop()[:24, :16], "PNG"),
    "jpeg": encode(astronaut_crop()[:24, :16], "JPEG", orientation=3),
    "gif": encode(astronaut_crop()[:24, :16], "GIF"),
    "webp": encode(astronaut_crop()[:24, :16], "WEBP"),
    "tiff": encode(astronaut_crop()[:24, :16], "TIFF", compression="tiff_lzw"),
    "bmp": encode(astronaut_crop()[:24, :16], "BMP"),
}


# ------------------------------------------------------------------------------------- huge
def test_huge_image_header_and_decode(tmp_path: Path) -> None:
    """A 6000 x 6000 image (36 M pixels, cheap to compress): the header read stays cheap."""
    big = Image.new("L", (6000, 6000), 90)
    big.paste(255, (1000, 2000, 1500, 2600))
    path = tmp_path / "big.png"
    big.save(path, "PNG", compress_level=1)
    del big
    assert image_size(path) == (6000, 6000)
    grey = read_image(path, mode="L")
    assert grey.shape == (6000, 6000)
    assert grey[2100, 1100] == 255 and grey[0, 0] == 90
    del grey
    with pytest.raises(InvalidInput, match="6000x6000"):
        read_image(path, max_pixels=35_999_999)


def test_many_frames_gif_is_cheap() -> None:
    """A GIF with 500 frames: only the first one is decoded."""
    frames = [Image.new("P", (64, 64), i % 200) for i in range(500)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert read_image(buf.getvalue()).shape == (64, 64, 3)
