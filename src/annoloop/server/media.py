"""Image bytes for the API: only from inside the project's storage, never a client path.

A route names an image by id; the store gives its location (:meth:`Project.image_location`),
and the location must lie under the project's media root (or one of the configured extra
roots). On local files the real path (symbolic links resolved) must stay inside too.
"""

from __future__ import annotations

import mimetypes
import os
from typing import Any

from annoloop.errors import AccessDenied, InvalidInput

# Served with their own type; anything else goes out as an opaque download.
IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)


def _inside(loc: Any, root: Any) -> bool:
    try:
        rel = loc.relative_to(root)
    except InvalidInput:
        return False
    if not rel:
        return False  # the root itself is a folder, not an image
    if loc.protocol == "file" and root.protocol == "file":
        real_root = os.path.realpath(root.path)
        real = os.path.realpath(loc.path)
        return real.startswith(real_root.rstrip(os.sep) + os.sep)
    return True


def image_location(project: Any, image_id: int, extra_roots: tuple[Any, ...] = ()) -> Any:
    """The storage location of image ``image_id``; NotFound for an unknown id, AccessDenied
    when the file lies outside the project's storage."""
    from annoloop.storage import Location

    loc = project.image_location(int(image_id))
    roots = (project.media, *(Location.parse(r) for r in extra_roots))
    if not any(_inside(loc, root) for root in roots):
        raise AccessDenied(f"image {image_id} is stored outside the project's storage")
    return loc


def media_type(loc: Any) -> str:
    """The Content-Type to serve ``loc`` with (images only; else octet-stream)."""
    guessed, _ = mimetypes.guess_type(loc.name)
    return guessed if guessed in IMAGE_TYPES else "application/octet-stream"
