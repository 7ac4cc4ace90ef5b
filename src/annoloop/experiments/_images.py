"""Pixels in and out for modifiers: decode keeping depth and channels, encode in the same format.

Unlike :func:`annoloop.storage.read_image` (always 8-bit RGB or grey, for models and display),
a modifier must give back an image of the same kind it was given: grey stays grey, 16-bit stays
16-bit, an alpha channel is kept aside and put back, and the file keeps its name and format.

- JPEG is decoded with simplejpeg (libjpeg-turbo, accurate DCT and fancy upsampling: the same
  pixels as Pillow and OpenCV, measured in bench/experiments) and encoded with Pillow, whose
  libjpeg-turbo uses the accurate integer DCT; simplejpeg's encoder always takes the fast DCT
  (its ``fastdct=False`` has no effect in 1.9), so its output differs from OpenCV's and
  Pillow's and is slightly worse.
- PNG is written by :func:`png_bytes`: every row "Up"-filtered with numpy and deflated by zlib
  at level 1 with the run-length strategy, as OpenCV (iquaflow's writer) does by default; three
  times faster than Pillow's writer at its fastest level, files of the same size.
- EXIF orientation is applied on reading; outputs carry no EXIF, so they display the same.
- Writes are atomic (a temporary file renamed over the target): an interrupted run never leaves
  a half-written file that a later run would take as done.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.storage import pixel_limit
from annoloop.storage._pixels import apply_orientation

JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})
# Files we write get the usual permissions (mkstemp makes them 0600); read once at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
# Errors Pillow and simplejpeg raise on damaged data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, RuntimeError, IndexError)


@dataclass
class Pixels:
    """A decoded image: colour channels, an optional alpha plane, and how it was stored.

    ``image`` is (h, w) or (h, w, 3), uint8 or uint16. ``alpha`` is (h, w) or None.
    ``subsampling`` is the JPEG chroma subsampling of a JPEG source ("420", "444", ...).
    """

    image: np.ndarray
    alpha: np.ndarray | None
    format: str
    subsampling: str | None = None


def _orientation(im: Any) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def decode(data: bytes, where: str) -> Pixels:
    """Decode image bytes, keeping grey/colour, 8/16 bit and alpha (see the module docstring)."""
    from PIL import Image

    limit = pixel_limit()
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise InvalidInput(f"refused: {exc}", where) from None
    except _DECODE_ERRORS as exc:
        raise InvalidInput(f"not a readable image ({type(exc).__name__}: {exc})", where) from None
    with im:
        width, height = im.size
        if width * height > limit:
            raise InvalidInput(
                f"image is {width}x{height}, above the pixel limit of {limit} "
                "(raise it with ANNOLOOP_MAX_IMAGE_PIXELS)",
                where,
            )
        orientation = _orientation(im)
        if im.format in ("JPEG", "MPO") and im.mode in ("L", "RGB"):
            pixels = _decode_jpeg(data, im.mode)
            if pixels is not None:
                pixels.image = apply_orientation(pixels.image, orientation)
                return pixels
        try:
            im.load()
            pixels = _from_pillow(im)
        except Image.DecompressionBombError as exc:
            raise InvalidInput(f"refused: {exc}", where) from None
        except _DECODE_ERRORS as exc:
            raise InvalidInput(
                f"cannot decode image ({type(exc).__name__}: {exc})", where
            ) from None
    pixels.image = apply_orientation(pixels.image, orientation)
    if pixels.alpha is not None:
        pixels.alpha = apply_orientation(pixels.alpha, orientation)
    return pixels


def _decode_jpeg(data: bytes, mode: str) -> Pixels | None:
    """simplejpeg decode; None when it refuses the file (Pillow decides then)."""
    try:
        import simplejpeg
    except ImportError:
        return None
    try:
        _, _, _, subsampling = simplejpeg.decode_jpeg_header(data)
        if mode == "L":
            image = simplejpeg.decode_jpeg(data, colorspace="GRAY")[:, :, 0]
        else:
            image = simplejpeg.decode_jpeg(data, colorspace="RGB")
    except (ValueError, RuntimeError, MemoryError):
        return None
    return Pixels(np.ascontiguousarray(image), None, "JPEG", str(subsampling))


def _from_pillow(im: Any) -> Pixels:
    mode = im.mode
    fmt = str(im.format or "PNG")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return Pixels(np.asarray(im).astype(np.uint16), None, fmt)
    if mode == "I":
        return Pixels(np.clip(np.asarray(im), 0, 65535).astype(np.uint16), None, fmt)
    if mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0)
        return Pixels(np.clip(np.rint(arr), 0, 65535).astype(np.uint16), None, fmt)
    if mode == "L":
        return Pixels(np.asarray(im), None, fmt)
    if mode == "RGB":
        return Pixels(np.asarray(im), None, fmt)
    if mode == "LA":
        arr = np.asarray(im)
        return Pixels(np.ascontiguousarray(arr[:, :, 0]), np.ascontiguousarray(arr[:, :, 1]), fmt)
    if mode in ("RGBA", "PA") or "transparency" in im.info:
        arr = np.asarray(im.convert("RGBA"))
        return Pixels(np.ascontiguousarray(arr[:, :, :3]), np.ascontiguousarray(arr[:, :, 3]), fmt)
    if mode == "1":
        return Pixels(np.asarray(im.convert("L")), None, fmt)
    return Pixels(np.asarray(im.convert("RGB")), None, fmt)


def jpeg_bytes(image: np.ndarray, quality: int, subsampling: str | None = None) -> bytes:
    """Encode uint8 grey or RGB as JPEG with Pillow (accurate DCT, libjpeg's quality tables).

    ``subsampling`` is "444", "422" or "420" (Pillow's default, also OpenCV's).
    """
    from PIL import Image

    if image.dtype != np.uint8:
        raise InvalidInput(f"JPEG holds 8-bit samples only, got {image.dtype}")
    options: dict[str, Any] = {"quality": int(quality)}
    codes = {"444": 0, "422": 1, "420": 2}
    if image.ndim == 3 and subsampling in codes:
        options["subsampling"] = codes[subsampling]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", **options)
    return buf.getvalue()


def jpeg_round_trip(image: np.ndarray, quality: int) -> tuple[np.ndarray, int]:
    """The image as a JPEG of ``quality`` decodes to, and the JPEG's size in bytes."""
    data = jpeg_bytes(image, quality)
    decoded = _decode_jpeg(data, "L" if image.ndim == 2 else "RGB")
    if decoded is None:  # simplejpeg missing: Pillow decodes the same pixels
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(data))), len(data)
    return decoded.image, len(data)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(image: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    """Encode a (h, w) or (h, w, 3) uint8/uint16 array (plus an optional alpha plane) as PNG.

    Rows use PNG's "Up" filter (each byte minus the one above, modulo 256, computed for the
    whole image at once) and zlib level 1 with ``Z_RLE``: fast, and as small as Pillow's
    level-1 output on photos. 16-bit samples are written big-endian as PNG requires.
    """
    if image.dtype not in (np.uint8, np.uint16):
        raise InvalidInput(f"PNG holds 8- or 16-bit samples, got {image.dtype}")
    planes = image[:, :, None] if image.ndim == 2 else image
    if alpha is not None:
        planes = np.dstack([planes, alpha.astype(image.dtype)])
    h, w, c = planes.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}.get(c)
    if color_type is None:
        raise InvalidInput(f"PNG holds 1 to 4 channels, got {c}")
    depth = 8 * image.dtype.itemsize
    rows = np.ascontiguousarray(planes.astype(">u2") if depth == 16 else planes)
    raw = rows.view(np.uint8).reshape(h, -1)
    filtered = np.empty((h, raw.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # "Up"; the row above the first one is zeros
    filtered[0, 1:] = raw[0]
    np.subtract(raw[1:], raw[:-1], out=filtered[1:, 1:], dtype=np.uint8, casting="unsafe")
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = packer.compress(filtered.data) + packer.flush()
    header = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def encode(pixels: Pixels, suffix: str, *, jpeg_quality: int = 95) -> bytes:
    """Encode ``pixels`` in the format the file name's ``suffix`` says."""
    from PIL import Image

    image, alpha = pixels.image, pixels.alpha
    suffix = suffix.lower()
    if suffix in JPEG_EXTENSIONS:
        if image.dtype != np.uint8:
            image = (image >> 8).astype(np.uint8)
        return jpeg_bytes(image, jpeg_quality, pixels.subsampling)
    if suffix == ".png" and (image.ndim == 2 or image.shape[2] == 3):
        return png_bytes(image, alpha)
    if alpha is not None and image.dtype == np.uint8:
        im = Image.fromarray(np.dstack([image, alpha]))  # RGBA or LA from the channel count
    elif image.dtype == np.uint16:
        im = Image.fromarray(image.astype("<u2") if image.ndim == 2 else (image >> 8).astype("u1"))
    else:
        im = Image.fromarray(image)
    buf = io.BytesIO()
    if suffix in (".tif", ".tiff"):
        im.save(buf, "TIFF")
    elif suffix == ".webp":
        im.save(buf, "WEBP", lossless=True)
    else:
        fmt = Image.registered_extensions().get(suffix)
        if fmt is None:
            raise InvalidInput(f"cannot write images with extension {suffix!r}")
        im.save(buf, fmt)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resize(image: np.ndarray, width: int, height: int, method: str) -> np.ndarray:
    """Resize a (h, w) or (h, w, c) uint8/uint16 array with Pillow's filters."""
    from PIL import Image

    filters = {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
        "area": Image.Resampling.BOX,
        "hamming": Image.Resampling.HAMMING,
    }
    resample = filters[method]
    if image.dtype == np.uint8 and image.ndim == 2:
        return np.asarray(Image.fromarray(image).resize((width, height), resample))
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.asarray(Image.fromarray(image).resize((width, height), resample))
    # 16-bit or odd channel counts: resize each plane as 32-bit float ("F" mode)
    planes = image[:, :, None] if image.ndim == 2 else image
    out = np.empty((height, width, planes.shape[2]), dtype=image.dtype)
    top = np.iinfo(image.dtype).max
    for c in range(planes.shape[2]):
        plane = Image.fromarray(planes[:, :, c].astype(np.float32))  # mode "F"
        resized = np.asarray(plane.resize((width, height), resample))
        out[:, :, c] = np.clip(np.rint(resized), 0, top)
    return out[:, :, 0] if image.ndim == 2 else out
