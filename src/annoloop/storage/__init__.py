"""Storage: locations over fsspec (``file://``, ``memory://``, ``s3://``, read-only
``http(s)://``), safe joins of user paths, and image reading.

``Location.parse(value)`` names a place; ``root.join(user_path)`` / ``safe_join`` never leave
``root``; :mod:`annoloop.storage.images` reads sizes and pixels with a decompression-bomb guard.
"""

from __future__ import annotations

from annoloop.storage.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageHeader,
    checksum,
    file_checksum,
    image_size,
    is_image_name,
    list_images,
    pixel_limit,
    read_header,
    read_image,
)
from annoloop.storage.location import Location, safe_join

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageHeader",
    "Location",
    "checksum",
    "file_checksum",
    "image_size",
    "is_image_name",
    "list_images",
    "pixel_limit",
    "read_header",
    "read_image",
    "safe_join",
]
