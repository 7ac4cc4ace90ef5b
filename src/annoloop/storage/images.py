"""Reading images from locations: header sizes, decoding to uint8 arrays, checksums, listing.

Decoding rules (the same on every path, so callers never see the decoder):

- EXIF orientation is honoured: arrays and sizes are the image as meant to be seen
  (orientations 5..8 swap width and height).
- ``mode="RGB"`` gives HxWx3 uint8, ``mode="L"`` HxW uint8 (ITU-R 601-2 luma, as Pillow).
- Grey images become RGB by replicating the channel.
- Transparency (RGBA, LA, palette or grey with a transparent colour) is composited on a
  white background.
- 16-bit samples are reduced to 8 bit by keeping the high byte (``value >> 8``); 32-bit
  integer images are clipped to 0..65535 first; float images are taken as 0..255.
- Multi-frame files (GIF, TIFF pages) give their first frame.
- JPEG goes through simplejpeg (libjpeg-turbo, several times faster than Pillow on large
  photos); anything simplejpeg refuses (CMYK, arithmetic coding, damage) falls back to Pillow.
- A pixel limit guards against decompression bombs: ``max_pixels``, else the environment
  variable ``ANNOLOOP_MAX_IMAGE_PIXELS``, else 250 million. An image above it is refused from
  its header, before any pixel is decoded. Pillow's own guard (``Image.MAX_IMAGE_PIXELS``) is
  raised to this limit when it is lower, never lowered, so that annoloop's limit is the one
  that applies.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.storage import _pixels
from annoloop.storage.location import Location

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

Source = Location | str | os.PathLike[str] | bytes | bytearray | memoryview

MAX_PIXELS_ENV = "ANNOLOOP_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 250_000_000

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"}
)
"""File extensions taken as images, lower case, with the dot (compare ``suffix.lower()``)."""

_CHUNK = 1 << 20
_HEADER_BLOCK = 1 << 16
# Errors Pillow's decoders raise on damaged or hostile data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class ImageHeader(NamedTuple):
    """What the header of an image file says; sizes are as displayed (orientation applied)."""

    width: int
    height: int
    format: str
    mode: str
    orientation: int


def pixel_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: ``max_pixels``, else ``ANNOLOOP_MAX_IMAGE_PIXELS``, else 250M."""
    if max_pixels is None:
        raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(raw)
        except ValueError:
            raise InvalidInput(
                f"must be a positive integer, got {raw!r}", f"environment {MAX_PIXELS_ENV}"
            ) from None
        where = f"environment {MAX_PIXELS_ENV}"
    else:
        where = "max_pixels"
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise InvalidInput(f"must be a positive integer, got {max_pixels!r}", where)
    return max_pixels


def _describe(source: Source) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return str(Location.parse(source))


def _raise_pillow_guard(limit: int) -> None:
    from PIL import Image

    # Pillow refuses images above 2x its limit at open time, before we can check ours.
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < limit:
        Image.MAX_IMAGE_PIXELS = limit


def _bomb(
    where: str,
    limit: int,
    width: int | None = None,
    height: int | None = None,
    pixels: int | None = None,
) -> InvalidInput:
    size = (
        f"{width}x{height} ({width * height} pixels)"
        if width and height
        else (f"{pixels} pixels" if pixels else "too many pixels")
    )
    return InvalidInput(
        f"image is {size}, above the limit of {limit} pixels (a decompression bomb guard; "
        f"raise it with max_pixels= or {MAX_PIXELS_ENV})",
        where,
    )


def _open(fp: Any, where: str, limit: int) -> PILImage:
    """Pillow's lazy open (header only), errors turned into InvalidInput naming ``where``."""
    from PIL import Image

    _raise_pillow_guard(limit)
    try:
        return Image.open(fp)
    except Image.DecompressionBombError as exc:
        found = _BOMB_PIXELS.search(str(exc))
        raise _bomb(where, limit, pixels=int(found.group(1)) if found else None) from None
    except Image.UnidentifiedImageError:
        raise InvalidInput("not an image file, or a format Pillow cannot read", where) from None
    except _DECODE_ERRORS as exc:
        raise InvalidInput(
            f"unreadable image header ({type(exc).__name__}: {exc})", where
        ) from None


def _orientation(im: PILImage) -> int:
    """EXIF orientation 1..8 of an opened image, read without decoding pixels; 1 if none."""
    from PIL import Image

    try:
        if im.format == "PNG":
            # PngImageFile.getexif() decodes the whole image to find a late eXIf chunk.
            raw = im.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = im.getexif()
        value = exif.get(_pixels.ORIENTATION_TAG, 1)
    except (*_DECODE_ERRORS, KeyError, TypeError):
        return 1  # broken EXIF must not make a readable image unreadable
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_header(source: Source) -> ImageHeader:
    """Size, format, mode and EXIF orientation from the header, without decoding pixels.

    From a location only the first blocks are fetched where the format allows it (JPEG, PNG
    keep their size up front). No pixel limit applies, except Pillow's own guard at twice it.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _header_of(io.BytesIO(bytes(source)), _describe(source))
    loc = Location.parse(source)
    with loc.open("rb", block_size=_HEADER_BLOCK) as f:
        return _header_of(f, loc.url)


def _header_of(fp: Any, where: str) -> ImageHeader:
    im = _open(fp, where, pixel_limit())
    with im:
        width, height = im.size
        orientation = _orientation(im)
        if orientation in _pixels.SWAPS_AXES:
            width, height = height, width
        return ImageHeader(width, height, str(im.format), im.mode, orientation)


def image_size(source: Source) -> tuple[int, int]:
    """``(width, height)`` as displayed (EXIF orientation 5..8 swaps them), from the header."""
    header = read_header(source)
    return header.width, header.height


def read_image(source: Source, *, mode: str = "RGB", max_pixels: int | None = None) -> np.ndarray:
    """Decode an image to a uint8 array: HxWx3 for ``mode="RGB"``, HxW for ``mode="L"``.

    See the module docstring for the conversions (orientation, transparency on white, 16-bit
    ``>> 8``). An image above the pixel limit, a truncated file or bytes that are not an image
    raise InvalidInput naming the source.
    """
    if mode not in ("RGB", "L"):
        raise InvalidInput(f"mode must be 'RGB' or 'L', got {mode!r}", "read_image")
    limit = pixel_limit(max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), _describe(source)
    else:
        loc = Location.parse(source)
        data, where = loc.read_bytes(), loc.url
    im = _open(io.BytesIO(data), where, limit)
    with im:
        width, height = im.size
        if width * height > limit:
            raise _bomb(where, limit, width, height)
        orientation = _orientation(im)
        arr = _decode_jpeg(data, mode) if im.format in ("JPEG", "MPO") else None
        if arr is None:
            arr = _decode_pillow(im, mode, where)
    return _pixels.apply_orientation(arr, orientation)


def _decode_jpeg(data: bytes, mode: str) -> np.ndarray | None:
    """simplejpeg decode, or None when it is missing or refuses the file (Pillow decides)."""
    try:
        import simplejpeg
    except ImportError:
        return None
    try:
        out = simplejpeg.decode_jpeg(data, colorspace="RGB" if mode == "RGB" else "GRAY")
    except (ValueError, RuntimeError, MemoryError):
        return None
    return np.ascontiguousarray(out[:, :, 0]) if mode == "L" else out


def _decode_pillow(im: PILImage, mode: str, where: str) -> np.ndarray:
    from PIL import Image, ImageFile

    # Another library in the process may have told Pillow to fill truncated files with grey
    # (PySpacer does on import); annoloop never takes a partial image for a whole one.
    lenient = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        im.load()
        arr = _to_uint8(im)
    except Image.DecompressionBombError as exc:  # a later GIF frame larger than the header
        raise InvalidInput(f"refused: {exc}", where) from None
    except _DECODE_ERRORS as exc:
        raise InvalidInput(f"cannot decode image ({type(exc).__name__}: {exc})", where) from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient
    if mode == "RGB":
        return _pixels.grey_to_rgb(arr) if arr.ndim == 2 else arr
    if arr.ndim == 3:
        return np.asarray(Image.fromarray(arr, "RGB").convert("L"))
    return arr


def _to_uint8(im: PILImage) -> np.ndarray:
    """HxW (grey) or HxWx3 (colour) uint8 from a loaded Pillow image of any mode."""
    m = im.mode
    transparent = "transparency" in im.info
    if m.startswith("I;16"):
        return _pixels.to_uint8_from_16(np.asarray(im))
    if m == "I":
        return _pixels.to_uint8_from_16(np.asarray(im))
    if m == "F":
        return _pixels.to_uint8_from_float(np.asarray(im))
    if m in ("RGBA", "LA", "PA", "RGBa", "La") or (m in ("P", "L", "RGB") and transparent):
        return _pixels.composite_on_white(np.asarray(im.convert("RGBA")))
    if m == "L":
        return np.asarray(im)
    if m == "1":
        return np.asarray(im.convert("L"))
    if m == "RGB":
        return np.asarray(im)
    return np.asarray(im.convert("RGB"))


def checksum(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 of ``data``, as lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def file_checksum(location: Location | str | os.PathLike[str]) -> str:
    """SHA-256 of a file's content, read in 1 MiB chunks (never whole into memory)."""
    loc = Location.parse(location)
    digest = hashlib.sha256()
    with loc.open("rb", block_size=_CHUNK) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_image_name(name: str) -> bool:
    """Whether a file name has one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(
    location: Location | str | os.PathLike[str], recursive: bool = True
) -> list[Location]:
    """Image files under ``location`` (by extension), sorted by URL.

    Hidden files and files in hidden folders (a name starting with ``.``, such as macOS
    ``._photo.jpg`` resource forks or ``.thumbnails/``) are left out.
    """
    root = Location.parse(location)
    out = []
    for loc in root.list(recursive=recursive):
        if not is_image_name(loc.name):
            continue
        rel = loc.relative_to(root) if loc != root else loc.name
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        out.append(loc)
    return out
