"""Thumbnails: JPEG, longest edge ``size``, cached in the project's ``runs/thumbs/`` folder
under the image's checksum (the same picture added twice shares one file; a changed file gets
a new checksum and so a new thumbnail)."""

from __future__ import annotations

import io
import re
from typing import Any

from annoloop.errors import InvalidInput

_HEX = re.compile(r"^[0-9a-f]{16,128}$")


def cache_key(image_id: int, checksum: Any) -> str:
    """The cache file stem of an image: its checksum, or its id when it has none."""
    if isinstance(checksum, str) and _HEX.match(checksum):
        return checksum
    return f"image-{int(image_id)}"


def thumbnail_bytes(source: Any, size: int) -> bytes:
    """JPEG bytes of the image at ``source`` scaled so that its longest edge is ``size``
    (smaller images are not enlarged)."""
    from PIL import Image

    from annoloop.storage import read_image

    pixels = read_image(source, mode="RGB")
    im = Image.fromarray(pixels, "RGB")
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def thumbnail(project: Any, image_id: int, checksum: Any, source: Any, size: int) -> bytes:
    """The cached thumbnail of an image, made (and stored) on first use."""
    if size <= 0:
        raise InvalidInput(f"size must be positive, got {size}", "thumbnail")
    target = project.runs.join("thumbs", f"{cache_key(image_id, checksum)}-{int(size)}.jpg")
    if target.exists():
        return target.read_bytes()
    data = thumbnail_bytes(source, size)
    target.write_bytes(data)  # atomic: two requests making the same file do not mix
    return data
