"""The bridge between the store and :mod:`annoloop.formats`: import a ``Dataset`` into a
project in one transaction, export a project's annotations as a ``Dataset``.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from annoloop.errors import AnnoloopError, InvalidInput
from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.store import bulk
from annoloop.store.images import stored_location


@dataclass
class ImportReport:
    """What :meth:`Project.import_dataset` did."""

    images_added: int = 0
    images_matched: int = 0
    annotations_added: int = 0
    labels_added: int = 0


@dataclass
class ImagePlan:
    """How each dataset image maps to the project: a stored location and, for new images,
    the record to create."""

    locations: list[str]  # stored location per dataset image
    new: list[int]  # dataset image indexes to create
    sizes: np.ndarray  # (n, 2) width, height per dataset image (header size when checked)
    copies: list[tuple[Any, str]]  # (source Location, path under media) to copy


def _known_locations(conn: Connection) -> tuple[set[str], dict[str, list[str]]]:
    """Every stored image location, and base name -> locations (for name matching)."""
    rows = bulk.fetch_rows(conn, "SELECT location FROM image")
    known = {r[0] for r in rows}
    by_name: dict[str, list[str]] = defaultdict(list)
    for loc in known:
        by_name[posixpath.basename(loc.rstrip("/"))].append(loc)
    return known, by_name


def plan_images(
    conn: Connection,
    dataset: Dataset,
    *,
    media: Any,
    images_root: Any = None,
    add_missing_images: bool = True,
    copy_images: bool = False,
) -> ImagePlan:
    """Match dataset images to project images: by the location of ``images_root/file_name``,
    then by ``file_name`` as a stored location, then by a unique base name. Unmatched images
    are planned as new records (sizes from the dataset, checked against the file header when
    the file exists); with ``add_missing_images=False`` they are an error."""
    from annoloop.storage import Location, image_size

    root = Location.parse(images_root) if images_root is not None else media
    known, by_name = _known_locations(conn)
    n = len(dataset.images)
    locations: list[str] = [""] * n
    sizes = np.zeros((n, 2), dtype=np.int64)
    new: list[int] = []
    copies: list[tuple[Any, str]] = []
    missing: list[str] = []
    for i, rec in enumerate(dataset.images):
        where = f"dataset image {i} ({rec.file_name!r})"
        if not isinstance(rec.file_name, str) or not rec.file_name:
            raise InvalidInput("file name must be a non-empty string", where)
        try:
            source = root.join(rec.file_name)
        except AnnoloopError as exc:
            raise InvalidInput(getattr(exc, "reason", None) or str(exc), where) from None
        candidate = stored_location(source, media)
        sizes[i] = (int(rec.width or 0), int(rec.height or 0))
        if candidate in known:
            locations[i] = candidate
            continue
        if rec.file_name in known:
            locations[i] = rec.file_name
            continue
        same_name = by_name.get(posixpath.basename(rec.file_name), [])
        if len(same_name) == 1:
            locations[i] = same_name[0]
            continue
        if not add_missing_images:
            missing.append(rec.file_name)
            continue
        exists = source.exists()
        if exists:
            try:
                w, h = image_size(source)
            except AnnoloopError as exc:
                reason = getattr(exc, "reason", None) or str(exc)
                raise InvalidInput(f"cannot read the image header: {reason}", where) from None
            if sizes[i, 0] and (sizes[i, 0], sizes[i, 1]) != (w, h):
                raise InvalidInput(
                    f"the dataset says {sizes[i, 0]}x{sizes[i, 1]} but the file is {w}x{h} "
                    "(width x height)",
                    where,
                )
            sizes[i] = (w, h)
        elif sizes[i, 0] <= 0 or sizes[i, 1] <= 0:
            raise InvalidInput("the dataset gives no image size and the file is not there", where)
        if copy_images and exists and not _inside(source, media):
            rel = source.name if images_root is None else root_relative(source, root)
            copies.append((source, rel))
            candidate = rel
        locations[i] = candidate
        new.append(i)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise InvalidInput(
            f"{len(missing)} dataset image(s) are not in the project: {shown}{more} "
            "(pass add_missing_images=True to add them)",
            "import",
        )
    # Two dataset records for one location must agree; the first one is created.
    seen: set[str] = set()
    unique_new = []
    for i in new:
        if locations[i] not in seen:
            seen.add(locations[i])
            unique_new.append(i)
    return ImagePlan(locations, unique_new, sizes, copies)


def root_relative(source: Any, root: Any) -> str:
    """``source``'s path under ``root`` (its name when it is not under it)."""
    try:
        return source.relative_to(root) or source.name
    except InvalidInput:
        return source.name


def _inside(loc: Any, media: Any) -> bool:
    try:
        return bool(loc.relative_to(media))
    except InvalidInput:
        return False


def remap_annotations(
    dataset: Dataset, image_ids: np.ndarray, label_ids: np.ndarray
) -> Annotations:
    """The dataset's annotations with image indexes -> image ids, label indexes -> label ids."""
    ann = dataset.annotations
    labels = np.where(
        ann.label >= 0, label_ids[np.clip(ann.label, 0, None)] if label_ids.size else -1, -1
    )
    return Annotations(
        image=image_ids[ann.image] if len(ann) else ann.image,
        kind=ann.kind,
        label=labels,
        box=ann.box,
        confidence=ann.confidence,
        shape=ann.shape,
        data=dict(ann.data),
    )


def dataset_from_store(
    ann: Annotations,
    images: Any,
    label_names: dict[int, str],
    extra_image_ids: np.ndarray | None = None,
) -> Dataset:
    """A ``Dataset`` from store annotations (``ann.label`` = label ids) and the images frame:
    images that carry annotations (and ``extra_image_ids``), labels in id order."""
    wanted = np.unique(ann.image)
    if extra_image_ids is not None and extra_image_ids.size:
        wanted = np.union1d(wanted, extra_image_ids)
    frame = images[images["id"].isin(wanted)].sort_values("id")
    ids = frame["id"].to_numpy(np.int64)
    records = [
        ImageRecord(
            file_name=str(loc), width=int(w), height=int(h), meta=dict(meta) if meta else {}
        )
        for loc, w, h, meta in zip(
            frame["location"], frame["width"], frame["height"], frame["meta"], strict=True
        )
    ]
    # Labels used, in id order; a retired and an active label of one name share one entry.
    used = np.unique(ann.label[ann.label >= 0])
    names = list(dict.fromkeys(label_names[int(i)] for i in used.tolist()))
    name_index = np.array([names.index(label_names[int(i)]) for i in used.tolist()], np.int64)
    labels = np.full(len(ann), -1, dtype=np.int64)
    has = ann.label >= 0
    if has.any():
        labels[has] = name_index[np.searchsorted(used, ann.label[has])]
    out = Annotations(
        image=np.searchsorted(ids, ann.image),
        kind=ann.kind,
        label=labels,
        box=ann.box,
        confidence=ann.confidence,
        shape=ann.shape,
        data=dict(ann.data),
        label_names=names,
    )
    return Dataset(images=records, labels=names, annotations=out)
