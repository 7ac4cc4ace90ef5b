"""Test images built from the bundled photos: EXIF orientations, odd modes, hostile headers.

Everything is made in memory from ``annoloop.samples`` photos with Pillow and numpy, so the
tests need no committed binary files.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

import numpy as np
from PIL import Image

from annoloop.samples import photo_path

ORIENTATION = 0x0112


@cache
def astronaut_crop() -> np.ndarray:
    """A 96x64 (HxW) RGB crop of the astronaut: not square, so rotations show."""
    arr = np.asarray(Image.open(photo_path("astronaut.png")).convert("RGB"))
    return np.ascontiguousarray(arr[40:136, 180:244])


def encode(arr: np.ndarray, fmt: str, *, orientation: int | None = None, **params) -> bytes:
    """Encode an array (or Pillow-convertible data) with Pillow, optionally with an EXIF tag."""
    im = Image.fromarray(arr)
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        params["exif"] = exif.tobytes()
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def raw_png(arr: np.ndarray, bit_depth: int, colour_type: int) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB): no filter, one IDAT."""
    h, w = arr.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = b"".join(b"\x00" + arr[y].astype(dtype).tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_size(png: bytes, width: int, height: int) -> bytes:
    """Patch a PNG's IHDR to claim another size (CRC fixed, so only the size lies)."""
    if png[12:16] != b"IHDR":
        raise ValueError("not a PNG with IHDR first")
    ihdr = bytearray(png[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    return png[:8] + png_chunk(b"IHDR", bytes(ihdr)) + png[33:]


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """Patch a JPEG's start-of-frame marker to claim another size."""
    data = bytearray(jpeg)
    i = 2
    while i < len(data) - 9:
        if data[i] != 0xFF:
            raise ValueError(f"not at a marker at byte {i}")
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise ValueError("no start-of-frame marker")
