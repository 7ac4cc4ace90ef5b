"""Array-level image conversions: EXIF orientation, alpha compositing, 16-bit reduction.

All vectorised numpy; used by :mod:`annoloop.storage.images` on both decoding paths so that
simplejpeg and Pillow give the same result.
"""

from __future__ import annotations

import numpy as np

ORIENTATION_TAG = 0x0112  # EXIF "Orientation"
SWAPS_AXES = frozenset({5, 6, 7, 8})


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an image as stored into the image as meant to be seen (EXIF orientation 1..8).

    Same result as ``PIL.ImageOps.exif_transpose``: 2 mirror, 3 rotate 180, 4 flip, 5
    transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise. Any other
    value leaves the image unchanged. Works on HxW and HxWxC arrays.
    """
    if orientation == 2:
        out = arr[:, ::-1]
    elif orientation == 3:
        out = arr[::-1, ::-1]
    elif orientation == 4:
        out = arr[::-1]
    elif orientation == 5:
        out = arr.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(arr, -1)
    elif orientation == 7:
        out = arr.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        out = np.rot90(arr, 1)
    else:
        return arr
    return np.ascontiguousarray(out)


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """HxWx4 uint8 RGBA -> HxWx3 uint8 RGB over a white background (rounded)."""
    alpha = rgba[..., 3:4].astype(np.uint16)
    rgb = rgba[..., :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def to_uint8_from_16(arr: np.ndarray) -> np.ndarray:
    """16-bit (or wider integer) samples -> 8 bit by keeping the high byte (``>> 8``).

    Values outside 0..65535 (a 32-bit integer image) are clipped first.
    """
    wide = arr.astype(np.int64, copy=False)
    return (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)


def to_uint8_from_float(arr: np.ndarray) -> np.ndarray:
    """Float samples taken as 0..255 intensities: rounded and clipped (NaN -> 0)."""
    clean = np.nan_to_num(arr.astype(np.float64, copy=False), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(clean), 0, 255).astype(np.uint8)


def grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """HxW -> HxWx3 by replicating the channel."""
    return np.repeat(grey[:, :, None], 3, axis=2)
