"""Checks on paths that come from users: what may be joined under a root without escaping it.

Pure string work, no filesystem access; the symlink check for ``file://`` lives in
:mod:`annoloop.storage.location` because it needs the disk.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath
from urllib.parse import unquote

from annoloop.errors import AccessDenied, InvalidInput

_DRIVE = re.compile(r"^[A-Za-z]:")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:(//|$)")
# Undo at most this many layers of percent-encoding (``%252e`` is ``%2e`` is ``.``).
_MAX_UNQUOTE = 4


def _components(text: str, original: str, root: str) -> list[str]:
    """The path's components after resolving ``.`` and ``..``, or AccessDenied if it escapes."""
    if "\x00" in text:
        raise AccessDenied(f"path {original!r} contains a NUL byte (under {root})")
    text = text.replace("\\", "/")  # a backslash is a separator on Windows: treat it as one
    if text.startswith("/"):
        raise AccessDenied(f"path {original!r} is absolute; it must be relative to {root}")
    if _DRIVE.match(text):
        raise AccessDenied(f"path {original!r} names a drive; it must be relative to {root}")
    if _SCHEME.match(text) or "://" in text:
        raise AccessDenied(f"path {original!r} is a URL; it must be relative to {root}")
    out: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                raise AccessDenied(f"path {original!r} climbs above the root {root}")
            out.pop()
        else:
            out.append(part)
    return out


def clean_relative(user_path: str | os.PathLike[str], root: str) -> str:
    """Return ``user_path`` as a normalised relative POSIX path that stays under ``root``.

    Rejected with :class:`AccessDenied` (the message names the path and the root): NUL bytes,
    absolute paths, drive letters, URLs, and ``..`` components that climb above the root, in
    the text as given and in every percent-decoded form of it (``%2e%2e%2f``). Backslashes are
    taken as separators. ``..`` that stays inside (``a/../b``) is resolved. An empty result
    (``""``) means the root itself. ``root`` is only used in messages.
    """
    if isinstance(user_path, PurePath):
        user_path = user_path.as_posix()
    elif isinstance(user_path, os.PathLike):
        user_path = os.fspath(user_path)
    if not isinstance(user_path, str):
        raise InvalidInput(
            f"a path to join must be a string, got {type(user_path).__name__} {user_path!r}",
            root,
        )
    parts = _components(user_path, user_path, root)
    # A server or a later layer may decode percent-escapes: check every decoded form too.
    decoded = user_path
    for _ in range(_MAX_UNQUOTE):
        more = unquote(decoded) if "%" in decoded else decoded
        if more == decoded:
            break
        decoded = more
        _components(decoded, user_path, root)
    else:
        if "%" in decoded and unquote(decoded) != decoded:
            raise AccessDenied(f"path {user_path!r} is percent-encoded too many times ({root})")
    return "/".join(parts)
