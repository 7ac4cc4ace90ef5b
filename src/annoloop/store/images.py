"""Images: add files (sizes from headers, checksums, optional copy into media) or bare records,
list them, and turn stored locations back into storage locations.

A stored location is relative to the project's media root when the file is inside it (so a
project folder can move), else the file's full URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from annoloop.errors import AnnoloopError, InvalidInput, NotFound
from annoloop.progress import Progress, as_progress
from annoloop.store import bulk


def _storage() -> Any:
    import annoloop.storage as storage

    return storage


def stored_location(location: Any, media: Any) -> str:
    """The text kept in ``image.location``: relative to ``media`` when inside it, else a URL."""
    Location = _storage().Location
    loc = Location.parse(location)
    try:
        rel = loc.relative_to(media)
    except InvalidInput:
        return loc.url
    if not rel:
        raise InvalidInput("is the media folder itself, not an image file", loc.url)
    return rel


def resolve_location(text: str, media: Any) -> Any:
    """The storage location of a stored ``image.location`` value."""
    Location = _storage().Location
    if "://" in text:
        return Location.parse(text)
    return Location.parse(media).join(text)


# -- bulk records --------------------------------------------------------------------------------


def existing_ids(conn: Connection, locations: Sequence[str]) -> dict[str, int]:
    """Stored location -> id for the given locations that are in the project."""
    if not locations:
        return {}
    uniq = list(dict.fromkeys(locations))
    out: dict[str, int] = {}
    chunk = 20000
    for start in range(0, len(uniq), chunk):
        sql, params = bulk.in_filter(conn, "location", uniq[start : start + chunk])
        for loc, i in bulk.fetch_rows(conn, f"SELECT location, id FROM image WHERE {sql}", params):
            out[loc] = int(i)
    return out


def _positive_ints(values: Any, n: int, name: str, locations: Sequence[str]) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise InvalidInput(f"{name} has shape {arr.shape}, expected ({n},)", "add_image_records")
    try:
        as_float = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be numbers", "add_image_records") from None
    bad = ~np.isfinite(as_float) | (as_float < 1) | (as_float != np.round(as_float))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"{name} must be positive whole numbers, got {arr[i]!r}", f"image {locations[i]!r}"
        )
    return as_float.astype(np.int64)


def _optional(values: Any, n: int, name: str) -> list[Any] | None:
    if values is None:
        return None
    out = list(values)
    if len(out) != n:
        raise InvalidInput(f"{name} has {len(out)} entries, expected {n}", "add_image_records")
    return out


def add_image_records(
    conn: Connection,
    locations: Sequence[str],
    widths: Any,
    heights: Any,
    *,
    checksums: Sequence[str | None] | None = None,
    metas: Sequence[dict[str, Any] | None] | None = None,
    video_locations: Sequence[str | None] | None = None,
    frames: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Ids of image records for stored ``locations`` (already in stored form), creating the
    unknown ones in bulk; known locations (and repeats) keep their ids."""
    n = len(locations)
    if n == 0:
        return np.zeros(0, np.int64)
    for i, loc in enumerate(locations):
        if not isinstance(loc, str) or not loc or "\x00" in loc:
            raise InvalidInput(f"location must be a non-empty string, got {loc!r}", f"image {i}")
    w = _positive_ints(widths, n, "widths", locations)
    h = _positive_ints(heights, n, "heights", locations)
    sums = _optional(checksums, n, "checksums")
    meta = _optional(metas, n, "metas")
    videos = _optional(video_locations, n, "video_locations")
    frame = _optional(frames, n, "frames")
    known = existing_ids(conn, locations)
    first: dict[str, int] = {}
    for i, loc in enumerate(locations):
        if loc not in known and loc not in first:
            first[loc] = i
    rows = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    if rows.size:
        ids = bulk.reserve_ids(conn, "image", rows.size)
        now = bulk.timestamp_param(conn)
        pick = rows.tolist()
        cols: dict[str, Any] = {
            "id": ids.tolist(),
            "location": [locations[i] for i in pick],
            "width": w[rows].tolist(),
            "height": h[rows].tolist(),
            "checksum": [sums[i] for i in pick] if sums else None,
            "meta": [bulk.json_text(meta[i]) for i in pick] if meta else None,
            "video_location": [videos[i] for i in pick] if videos else None,
            "frame": [None if frame[i] is None else int(frame[i]) for i in pick] if frame else None,
            "created_at": now,
        }
        bulk.insert_columns(conn, "image", cols, rows.size)
        known.update(zip((locations[i] for i in pick), ids.tolist(), strict=True))
    return np.array([known[loc] for loc in locations], dtype=np.int64)


# -- files ---------------------------------------------------------------------------------------


@dataclass
class ImageFile:
    """One file to add: where it is, its size and checksum, and where it ends up."""

    source: Any  # Location
    width: int
    height: int
    checksum: str
    copy_to: str | None = None  # path under media when the file is to be copied there
    data: bytes | None = None  # the bytes to copy (read once for size, checksum and copy)
    target: Any = None  # the Location recorded in the store

    @property
    def location(self) -> Any:
        """Where the file is kept: the copy in media, or the original."""
        return self.target if self.target is not None else self.source


def expand_sources(sources: Any) -> list[tuple[Any, str]]:
    """Image file locations from files, folders (their image files, recursively) and URLs,
    each with the path it gets when copied: a folder's files keep their path relative to the
    folder (its content lands in media as ``cp -r folder/* media/`` would put it), a single
    file its name."""
    storage = _storage()
    Location = storage.Location
    if isinstance(sources, (str, os.PathLike, Location)):
        sources = [sources]
    out: list[tuple[Any, str]] = []
    for src in sources:
        loc = Location.parse(src)
        if loc.is_dir():
            for found in storage.list_images(loc):
                out.append((found, found.relative_to(loc)))
        else:
            if not loc.exists():
                raise InvalidInput("image file does not exist", loc.url)
            out.append((loc, loc.name))
    return out


def _inside(loc: Any, media: Any) -> bool:
    try:
        return bool(loc.relative_to(media))
    except InvalidInput:
        return False


def read_files(
    pairs: Sequence[tuple[Any, str]], media: Any, copy: bool, progress: Progress | None
) -> list[ImageFile]:
    """Sizes from headers and checksums (and the bytes of files to copy). Any unreadable file
    raises InvalidInput naming it, before anything is written."""
    storage = _storage()
    report = as_progress(progress)
    total = len(pairs)
    out: list[ImageFile] = []
    for done, (loc, rel) in enumerate(pairs):
        try:
            if copy and not _inside(loc, media):
                data = loc.read_bytes()
                w, h = storage.image_size(data)
                out.append(ImageFile(loc, int(w), int(h), storage.checksum(data), rel, data))
            else:
                w, h = storage.image_size(loc)
                out.append(ImageFile(loc, int(w), int(h), storage.file_checksum(loc)))
        except AnnoloopError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            raise InvalidInput(f"cannot add this image: {reason}", loc.url) from None
        report(done + 1, total, loc.name)
    return out


def place_copies(files: list[ImageFile], media: Any) -> list[Any]:
    """Write the files that need copying into ``media``; returns the locations written, to be
    removed again if the transaction fails. A name taken by other content gets the checksum
    added; a name holding the same content is reused."""
    storage = _storage()
    written: list[Any] = []
    claimed: dict[str, str] = {}
    try:
        for f in files:
            if f.copy_to is None:
                continue
            rel = f.copy_to
            target = media.join(rel)
            taken = claimed.get(rel, f.checksum) != f.checksum or (
                target.exists() and storage.file_checksum(target) != f.checksum
            )
            if taken:
                stem, ext = posixpath.splitext(rel)
                rel = f"{stem}-{f.checksum[:12]}{ext}"
                target = media.join(rel)
            claimed[rel] = f.checksum
            if not target.exists():
                target.write_bytes(f.data or b"")
                written.append(target)
            f.target = target
            f.data = None
    except BaseException:
        remove_quietly(written)
        raise
    return written


def remove_quietly(locations: Iterable[Any]) -> None:
    """Delete files this call wrote, ignoring errors (cleanup after a failed transaction)."""
    for loc in locations:
        with contextlib.suppress(Exception):
            loc.delete()


# -- reading -------------------------------------------------------------------------------------


IMAGE_COLUMNS = [
    "id", "location", "width", "height", "checksum", "meta", "video_location", "frame",
    "created_at",
]  # fmt: skip


def images_frame(conn: Connection, ids: Any = None) -> pd.DataFrame:
    """Columns :data:`IMAGE_COLUMNS`, ordered by id (only ``ids`` when given)."""
    where, params = "", []
    if ids is not None:
        values = np.atleast_1d(np.asarray(ids, dtype=np.int64)).reshape(-1)
        sql, params = bulk.in_filter(conn, "id", np.unique(values).tolist())
        where = f" WHERE {sql}"
    rows = bulk.fetch_rows(
        conn, f"SELECT {', '.join(IMAGE_COLUMNS)} FROM image{where} ORDER BY id", params
    )
    df = pd.DataFrame(rows, columns=IMAGE_COLUMNS)
    df["id"] = df["id"].astype(np.int64)
    df["width"] = df["width"].astype(np.int64)
    df["height"] = df["height"].astype(np.int64)
    df["frame"] = df["frame"].astype("Int64")
    df["meta"] = [json.loads(m) if isinstance(m, str) else m for m in df["meta"]]
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="mixed")
    return df


def image_row(conn: Connection, image_id: int) -> tuple[str, int, int]:
    """(stored location, width, height) of one image; NotFound when unknown."""
    ph = bulk.placeholder(conn)
    rows = bulk.fetch_rows(
        conn, f"SELECT location, width, height FROM image WHERE id = {ph}", [int(image_id)]
    )
    if not rows:
        raise NotFound(f"no image with id {image_id}")
    loc, w, h = rows[0]
    return str(loc), int(w), int(h)


def images_with_meta_key(
    conn: Connection, key: str, *, after: int = 0, chunk: int = 2000
) -> Iterable[tuple[int, Any]]:
    """``(image id, meta[key])`` of the images whose meta holds the top-level ``key``, in id
    order, from ids above ``after``; read in keyset pages of ``chunk`` rows.

    The stored JSON text is matched against the key's JSON form (``"key"``) first, so the
    database hands over only candidate rows; each is then parsed and checked exactly (the text
    may also stand inside a value). Keys with characters JSON writers may spell differently
    (non-ASCII) are checked on every row.
    """
    ph = bulk.placeholder(conn)
    text = "meta" if bulk.is_sqlite(conn) else "CAST(meta AS TEXT)"
    needle = json.dumps(key)
    cond, extra = "meta IS NOT NULL", []
    if needle.isascii():
        escaped = needle.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        cond, extra = f"{text} LIKE {ph} ESCAPE '!'", [f"%{escaped}%"]
    last = int(after)
    while True:
        rows = bulk.fetch_rows(
            conn,
            f"SELECT id, meta FROM image WHERE id > {ph} AND {cond} ORDER BY id LIMIT {int(chunk)}",
            [last, *extra],
        )
        for image_id, meta in rows:
            value = json.loads(meta) if isinstance(meta, str) else meta
            if isinstance(value, dict) and key in value:
                yield int(image_id), value[key]
        if len(rows) < chunk:
            return
        last = int(rows[-1][0])
