"""CVAT's mask encoding <-> COCO RLE over the whole image.

CVAT for images 1.1 writes a mask as ``<mask rle="a, b, c, ..." left top width height>``: the
runs cover the ``height x width`` box whose top-left pixel is ``(left, top)``, row by row
(row-major, unlike COCO's column-major runs), alternating background and foreground and
starting with background (a first run of 0 when the top-left pixel is set).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.geometry.masks import MAX_MASK_PIXELS, rle_encode


def _whole(value: str | None, name: str, where: str, *, minimum: int) -> int:
    if value is None:
        raise InvalidInput(f"mask needs the attribute {name!r}", where)
    try:
        out = int(value.strip())
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {value!r}", where) from None
    if out < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}, got {out}", where)
    return out


def cvat_mask_to_rle(
    attrib: dict[str, str], image_width: int, image_height: int, where: str
) -> dict[str, Any]:
    """The COCO RLE (over the whole image) of a ``<mask>`` element's attributes."""
    left = _whole(attrib.get("left"), "left", where, minimum=0)
    top = _whole(attrib.get("top"), "top", where, minimum=0)
    width = _whole(attrib.get("width"), "width", where, minimum=1)
    height = _whole(attrib.get("height"), "height", where, minimum=1)
    if left + width > image_width or top + height > image_height:
        raise InvalidInput(
            f"mask box (left {left}, top {top}, width {width}, height {height}) leaves the "
            f"{image_width}x{image_height} image",
            where,
        )
    if image_width * image_height > MAX_MASK_PIXELS:
        raise InvalidInput(f"image of {image_width}x{image_height} is too large for a mask", where)
    raw = attrib.get("rle")
    if raw is None or not raw.strip():
        raise InvalidInput("mask needs a non-empty 'rle' attribute", where)
    try:
        counts = np.array(raw.split(","), dtype=np.int64)
    except (ValueError, OverflowError):
        raise InvalidInput("rle must be comma-separated whole numbers", f"{where}.rle") from None
    if counts.min() < 0:
        raise InvalidInput("rle holds a negative run length", f"{where}.rle")
    if int(counts.sum()) != width * height:
        raise InvalidInput(
            f"rle runs cover {int(counts.sum())} pixels, the {width}x{height} mask box has "
            f"{width * height}",
            f"{where}.rle",
        )
    values = (np.arange(len(counts)) % 2).astype(bool)
    crop = np.repeat(values, counts).reshape(height, width)
    full = np.zeros((image_height, image_width), dtype=bool)
    full[top : top + height, left : left + width] = crop
    return rle_encode(full)


def mask_to_cvat(mask: np.ndarray) -> dict[str, str] | None:
    """``rle``, ``left``, ``top``, ``width``, ``height`` attributes of a bool (h, w) mask;
    None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    crop = mask[top : rows[-1] + 1, left : cols[-1] + 1]
    flat = crop.ravel()  # row-major, as CVAT stores it
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(change, prepend=0, append=flat.size)
    if flat[0]:
        counts = np.concatenate([[0], counts])  # runs start with background
    return {
        "rle": ", ".join(map(str, counts.tolist())),
        "left": str(left),
        "top": str(top),
        "width": str(crop.shape[1]),
        "height": str(crop.shape[0]),
    }
