"""YOLO txt folders (Ultralytics / darknet layout): detection boxes and segmentation polygons.

Layout read and written::

    folder/
      data.yaml              names: [a, b] or {0: a, 1: b}   (else classes.txt, one name a line)
      images/[split/]x.jpg   split folders (train/, val/, ...) are optional
      labels/[split/]x.txt   one object a line, coordinates relative to the image (0..1)

Label lines:

- detection: ``class cx cy w h`` (6th value: confidence, as Ultralytics ``save_conf`` writes it);
- segmentation: ``class x1 y1 x2 y2 ... xk yk`` (k >= 3; an even value count means the last one
  is a confidence). One polygon without holes a line.

Reading (:func:`load_yolo`):

- ``ImageRecord.file_name`` is the path under ``images/`` (``train/x.jpg``): import the dataset
  with ``images_root=folder/images``. ``meta["split"]`` is its first folder, when it has one.
  Image sizes come from the image headers. Images are in path order, annotations in line order.
- An image without a label file, or with an empty one, is an image without annotations (a
  negative example, as YOLO defines it). A label file without an image is an error naming the
  file (``missing_images="skip"`` ignores such files instead): its size cannot be known.
- ``task="auto"`` reads 5/6 values as a box and 7+ as a polygon; ``"detect"`` turns polygon
  lines into their bounding boxes (as Ultralytics trains on them); ``"segment"`` accepts
  polygon lines only. Keypoint (pose) label files are not supported.
- Class ids must be whole numbers below the number of names; boxes and points may leave the
  image by 1 % at most; a wrong value count, a non-number or a bad class id raises InvalidInput
  naming ``labels/x.txt: line N``.

Writing (:func:`save_yolo`) writes ``data.yaml`` and one label file per image (empty for an
image without annotations), each file atomically. Class ids are positions in
``dataset.labels``. What YOLO cannot hold is reported in ``ExportReport.dropped``:

- detect: boxes written; polygons and masks become their bounding boxes (``polygon->bbox``,
  ``mask->bbox``); points, lines and image labels are dropped (``point``, ``line``,
  ``label``).
- segment: polygons written one part a line (``polygon_multipart->split`` counts annotations
  split into several lines) without holes (``polygon_hole``); masks are traced into polygons
  (``mask->polygon``); boxes become 4-corner polygons (``bbox->polygon``); points, lines and
  image labels are dropped.
- always: annotations without a label (``no_label``), confidences unless
  ``confidence=True`` (``confidence``), data columns (``data:KEY``).

``ExportReport.annotations`` counts label lines written.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

import numpy as np

from annoloop.errors import AnnoloopError, InvalidInput
from annoloop.formats._coco_shared import check_rows
from annoloop.formats._common import check_file_name, read_bytes_guarded
from annoloop.formats._yolo_shared import (
    count_dropped_data,
    count_dropped_kinds,
    per_image_names,
)
from annoloop.formats._yolo_text import NumberLines, read_number_lines
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

TASKS = ("detect", "segment", "auto")
_NAMES_MAX_BYTES = 16 * 1024**2  # data.yaml / classes.txt larger than this is not a class list
_BOX, _POLYGON = int(Kind.BBOX), int(Kind.POLYGON)


# -- reading ----------------------------------------------------------------------------
def _names_from_yaml(loc: Any, where: str) -> list[str]:
    import yaml

    raw = read_bytes_guarded(loc, max_bytes=_NAMES_MAX_BYTES)
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise InvalidInput(f"invalid YAML{at}: {getattr(exc, 'problem', exc)}", where) from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"must be a YAML mapping, got {type(doc).__name__}", where)
    names = doc.get("names")
    nc = doc.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc < 0):
        raise InvalidInput(f"nc must be a non-negative integer, got {nc!r}", f"{where}: nc")
    if names is None:
        if nc is None:
            raise InvalidInput("has neither 'names' nor 'nc'", where)
        return [f"class_{i}" for i in range(nc)]  # Ultralytics' names for a bare nc
    if isinstance(names, dict):
        keys = []
        for key in names:
            ok = isinstance(key, int) and not isinstance(key, bool)
            if not ok and not (isinstance(key, str) and key.isdigit()):
                raise InvalidInput(f"class ids must be integers, got {key!r}", f"{where}: names")
            keys.append(int(key))
        if sorted(keys) != list(range(len(keys))):
            raise InvalidInput(
                f"class ids must be 0..{len(keys) - 1} without gaps, got {sorted(keys)[:10]}",
                f"{where}: names",
            )
        names = [value for _, value in sorted(zip(keys, names.values(), strict=True))]
    if not isinstance(names, list):
        raise InvalidInput(
            f"names must be a list or a mapping, got {type(names).__name__}", f"{where}: names"
        )
    out = [_class_name(value, f"{where}: names[{i}]") for i, value in enumerate(names)]
    if nc is not None and nc != len(out):
        raise InvalidInput(f"nc is {nc} but there are {len(out)} names", f"{where}: nc")
    return out


def _class_name(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(f"a class name must be a string, got {type(value).__name__}", where)
    name = str(value)
    if not name.strip():
        raise InvalidInput("a class name must not be empty", where)
    return name


def _names_from_txt(loc: Any, where: str) -> list[str]:
    raw = read_bytes_guarded(loc, max_bytes=_NAMES_MAX_BYTES)
    try:
        lines = raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 text (byte {exc.start})", where) from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [_class_name(line.strip(), f"{where}: line {i + 1}") for i, line in enumerate(lines)]


def _class_names(root: Any, names: Any) -> list[str]:
    if names is not None:
        if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
            raise InvalidInput(f"names must be a list of strings, got {names!r}", "names")
        out = [_class_name(n, f"names[{i}]") for i, n in enumerate(names)]
    else:
        for file_name in ("data.yaml", "data.yml"):
            loc = root.join(file_name)
            if loc.exists():
                out = _names_from_yaml(loc, file_name)
                break
        else:
            loc = root.join("classes.txt")
            if not loc.exists():
                raise InvalidInput(
                    "no data.yaml or classes.txt with the class names; pass names=[...]", str(root)
                )
            out = _names_from_txt(loc, "classes.txt")
    seen: dict[str, int] = {}
    for i, name in enumerate(out):
        if name in seen:
            raise InvalidInput(
                f"class name {name!r} is used by class {seen[name]} too", f"class {i}"
            )
        seen[name] = i
    return out


def _visible(rel: str) -> bool:
    return not any(part.startswith(".") for part in rel.split("/"))


def _list_images(root: Any) -> tuple[list[ImageRecord], dict[str, int]]:
    """Image records under ``images/`` (sizes from headers) and stem -> index."""
    from annoloop.storage import image_size, list_images

    folder = root.join("images")
    if not folder.is_dir():
        return [], {}
    images: list[ImageRecord] = []
    stems: dict[str, int] = {}
    for loc in list_images(folder, recursive=True):
        rel = loc.relative_to(folder)
        where = f"images/{rel}"
        file_name = check_file_name(rel, where)
        stem = posixpath.splitext(file_name)[0]
        if stem in stems:
            other = images[stems[stem]].file_name
            raise InvalidInput(
                f"images {other!r} and {file_name!r} would share the label file labels/{stem}.txt",
                where,
            )
        try:
            width, height = image_size(loc)
        except AnnoloopError as exc:
            raise InvalidInput(f"cannot read the image size: {exc}", where) from None
        meta = {"split": file_name.split("/", 1)[0]} if "/" in file_name else {}
        stems[stem] = len(images)
        images.append(ImageRecord(file_name, int(width), int(height), meta))
    return images, stems


def _label_files(root: Any, stems: dict[str, int], missing_images: str) -> list[tuple[str, int]]:
    """(path relative to the root, image index) of each label file that has an image."""
    folder = root.join("labels")
    if not folder.is_dir():
        return []
    out = []
    for loc in folder.list("*.txt", recursive=True):
        rel = loc.relative_to(folder)
        if not _visible(rel):
            continue
        image = stems.get(rel[: -len(".txt")])
        if image is None:
            if missing_images == "skip":
                continue
            raise InvalidInput(
                f"no image in images/ for this label file (expected images/{rel[:-4]}.<ext>); "
                "pass missing_images='skip' to ignore such files",
                f"labels/{rel}",
            )
        out.append((f"labels/{rel}", image))
    return out


def _segment_ranges(starts: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of every x value of polygon lines, and the offset of each line's first one."""
    total = int(pairs.sum())
    offsets = np.cumsum(pairs) - pairs
    seg = np.repeat(np.arange(len(pairs)), pairs)
    k = np.arange(total) - offsets[seg]
    return starts[seg] + 1 + 2 * k, offsets


def _annotations(
    parsed: NumberLines, file_image: np.ndarray, n_names: int, task: str, names: list[str]
) -> tuple[Annotations, Callable[[int], str]]:
    """The Annotations of all parsed label lines (vectorised but for polygon shapes) and a
    function naming ``file: line N`` of a row."""
    vals, start, count = parsed.values, parsed.start, parsed.count

    def where(j: int) -> str:
        return f"{names[int(parsed.file[j])]}: line {int(parsed.line[j])}"

    is_box = (count == 5) | (count == 6)
    is_poly = count >= 7
    bad = ~(is_box | is_poly)
    if task == "segment":
        bad |= is_box
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        if task == "segment" and is_box[j]:
            problem = "a box line in a segmentation file; load with task='auto' or 'detect'"
        else:
            problem = (
                f"expected 'class cx cy w h [conf]' (5 or 6 values) or 'class x1 y1 ... xk yk "
                f"[conf]' (k >= 3), got {int(count[j])} value(s)"
            )
        raise InvalidInput(problem, where(j))

    cls = vals[start] if len(start) else np.zeros(0)
    bad = (cls != np.round(cls)) | (cls < 0) | (cls >= n_names)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"class id {cls[j]:g} is not one of 0..{n_names - 1} (names in data.yaml)", where(j)
        )

    n = len(start)
    box = np.empty((n, 4))
    conf = np.full(n, np.nan)
    kind = np.where(is_box | (task == "detect"), _BOX, _POLYGON).astype(np.int8)
    shape = np.empty(n, dtype=object)

    rows = np.flatnonzero(is_box)
    box[rows] = vals[start[rows, None] + np.arange(1, 5)]
    with_conf = rows[count[rows] == 6]
    conf[with_conf] = vals[start[with_conf] + 5]

    rows = np.flatnonzero(is_poly)
    if rows.size:
        has_conf = count[rows] % 2 == 0
        pairs = (count[rows] - 1 - has_conf) // 2
        conf[rows[has_conf]] = vals[start[rows[has_conf]] + count[rows[has_conf]] - 1]
        xpos, offsets = _segment_ranges(start[rows], pairs)
        xs, ys = vals[xpos], vals[xpos + 1]
        lo = np.stack([np.minimum.reduceat(xs, offsets), np.minimum.reduceat(ys, offsets)], 1)
        hi = np.stack([np.maximum.reduceat(xs, offsets), np.maximum.reduceat(ys, offsets)], 1)
        box[rows] = np.concatenate([(lo + hi) / 2, hi - lo], axis=1)
        if task != "detect":
            rings = np.split(np.stack([xs, ys], axis=1), offsets[1:])
            for j, ring in zip(rows.tolist(), rings, strict=True):
                if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
                    ring = ring[:-1]  # a closing point repeating the first is not stored
                shape[j] = [[ring]]

    ann = Annotations(
        image=file_image[parsed.file],
        kind=kind,
        label=cls.astype(np.int64),
        box=box,
        confidence=conf,
        shape=shape,
    )
    return ann, where


def load_yolo(
    path: Any,
    *,
    task: str = "auto",
    names: list[str] | None = None,
    missing_images: str = "error",
) -> Dataset:
    """Read a YOLO folder (see the module docstring for the layout and the rules).

    ``path`` is a folder (path, URL or Location). ``task`` is ``"auto"``, ``"detect"`` or
    ``"segment"``. ``names`` overrides the class names of data.yaml / classes.txt.
    ``missing_images`` is ``"error"`` or ``"skip"`` for label files without an image.
    """
    from annoloop.storage import Location

    if task not in TASKS:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}, got {task!r}", "task")
    if missing_images not in ("error", "skip"):
        raise InvalidInput(
            f"missing_images must be 'error' or 'skip', got {missing_images!r}", "missing_images"
        )
    root = Location.parse(path)
    if not root.is_dir():
        raise InvalidInput("is not a folder (a YOLO dataset is a folder)", str(root))
    labels = _class_names(root, names)
    images, stems = _list_images(root)
    files = _label_files(root, stems, missing_images)
    if not images and not files and not root.join("labels").is_dir():
        raise InvalidInput("holds neither images/ nor labels/", str(root))

    blobs = [read_bytes_guarded(root.join(rel)) for rel, _ in files]
    file_names = [rel for rel, _ in files]
    parsed = read_number_lines(blobs, file_names or ["labels"])
    del blobs
    file_image = np.array([image for _, image in files], dtype=np.int64)
    ann, where = _annotations(parsed, file_image, len(labels), task, file_names)
    check_rows(ann, images, where)
    return Dataset(images=images, labels=labels, annotations=ann)


# -- writing ----------------------------------------------------------------------------
def _number_format(precision: int | None) -> str:
    if precision is None:
        return "%r"  # shortest repr: reads back to the same float
    if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 17:
        raise InvalidInput(f"precision must be 0..17 or None, got {precision!r}", "precision")
    return f"%.{precision}f"


def _box_lines(labels: np.ndarray, boxes: np.ndarray, fmt: str) -> list[str]:
    """``class cx cy w h`` lines, formatted in one call (no Python loop over rows)."""
    n = len(labels)
    if n == 0:
        return []
    values = np.column_stack([labels.astype(np.float64), boxes]).ravel().tolist()
    text = (("%d" + (" " + fmt) * 4 + "\n") * n) % tuple(values)
    return text.split("\n")[:-1]


def _polygon_lines(
    ann: Annotations, rows: np.ndarray, report: ExportReport, fmt: str
) -> tuple[list[str], list[int]]:
    """Segmentation lines of polygon, mask and box rows, and the row of each line."""
    from annoloop.geometry.boxes import cxcywh_to_xyxy
    from annoloop.geometry.masks import mask_to_polygon, rle_decode
    from annoloop.geometry.polygons import as_shape

    lines: list[str] = []
    line_rows: list[int] = []
    for i in rows.tolist():
        k = int(ann.kind[i])
        if k == _BOX:
            x0, y0, x1, y1 = cxcywh_to_xyxy(ann.box[i]).tolist()
            polygons = [[np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])]]
        elif k == int(Kind.MASK):
            polygons = mask_to_polygon(rle_decode(ann.shape[i]))
        else:
            polygons = as_shape(ann.shape[i], f"annotations[{i}].shape")
        if any(len(p) > 1 for p in polygons):
            report.drop("polygon_hole")
        parts = [p[0] for p in polygons if p and len(p[0]) >= 3]
        if len(parts) > 1:
            report.drop("polygon_multipart->split")
        if not parts:
            report.drop("empty_shape")
        for ring in parts:
            coords = np.asarray(ring, dtype=np.float64).ravel().tolist()
            lines.append(f"{int(ann.label[i])}" + (" " + fmt) * len(coords) % tuple(coords))
            line_rows.append(i)
    return lines, line_rows


def _write_data_yaml(root: Any, labels: list[str], file_names: list[str]) -> None:
    import yaml

    splits = {name.split("/", 1)[0] for name in file_names if "/" in name}
    doc: dict[str, Any] = {}
    if "train" in splits:
        doc["train"] = "images/train"
        val = next((s for s in ("val", "valid", "validation") if s in splits), "train")
        doc["val"] = f"images/{val}"
        if "test" in splits:
            doc["test"] = "images/test"
    else:
        doc["train"] = doc["val"] = "images"
    doc["nc"] = len(labels)
    doc["names"] = dict(enumerate(labels))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    root.join("data.yaml").write_text("# written by annoloop\n" + text)


def save_yolo(
    dataset: Dataset,
    path: Any,
    *,
    task: str = "detect",
    images_root: Any = None,
    copy_images: bool = False,
    confidence: bool = False,
    precision: int | None = 6,
) -> ExportReport:
    """Write ``dataset`` as a YOLO folder: data.yaml and labels/ (and images/ when copying).

    ``task`` is ``"detect"`` or ``"segment"`` (see the module docstring for conversions and
    the dropped counts). ``copy_images`` copies each image from ``images_root/file_name`` to
    ``images/file_name`` (the loader needs the images for their sizes). ``confidence`` writes
    a confidence as the last value of lines that have one (prediction files; Ultralytics
    training refuses them). ``precision`` is the number of decimals, or None for exact floats.
    """
    from annoloop.storage import Location

    if task not in ("detect", "segment"):
        raise InvalidInput(f"task must be 'detect' or 'segment', got {task!r}", "task")
    fmt = _number_format(precision)
    if copy_images and images_root is None:
        raise InvalidInput(
            "copy_images=True needs images_root (where the images are)", "images_root"
        )
    root = Location.parse(path)
    targets = per_image_names(dataset, ".txt")
    report = ExportReport(path=str(root), images=len(dataset.images))
    ann = dataset.annotations
    kind = ann.kind.astype(np.int64)

    usable = np.isin(kind, (_BOX, _POLYGON, int(Kind.MASK)))
    labelled = ann.label >= 0
    count_dropped_kinds(report, ann, ~usable)
    report.drop("no_label", int(np.count_nonzero(usable & ~labelled)))
    written = usable & labelled
    # conversions between the stored kind and the one the file holds
    if task == "detect":
        for code, name in ((_POLYGON, "polygon->bbox"), (int(Kind.MASK), "mask->bbox")):
            report.drop(name, int(np.count_nonzero(written & (kind == code))))
    else:
        for code, name in ((_BOX, "bbox->polygon"), (int(Kind.MASK), "mask->polygon")):
            report.drop(name, int(np.count_nonzero(written & (kind == code))))
    if not confidence:
        report.drop("confidence", int(np.count_nonzero(written & ~np.isnan(ann.confidence))))
    count_dropped_data(report, ann, written)

    rows = np.flatnonzero(written)
    rows = rows[np.argsort(ann.image[rows], kind="stable")]
    if task == "detect":
        lines = _box_lines(ann.label[rows], ann.box[rows], fmt)
        line_rows = rows
    else:
        lines, found = _polygon_lines(ann, rows, report, fmt)
        line_rows = np.asarray(found, dtype=np.int64)
    if confidence:
        conf = ann.confidence[line_rows].astype(np.float64)
        for j in np.flatnonzero(~np.isnan(conf)).tolist():
            lines[j] += " " + fmt % float(conf[j])
    # rows are sorted by image: each image's lines are one slice
    bounds = np.searchsorted(ann.image[line_rows], np.arange(len(dataset.images) + 1))

    file_names = [rec.file_name for rec in dataset.images]
    if copy_images:
        # every source is checked before anything is written
        source = Location.parse(images_root)
        sources = []
        for i, name in enumerate(file_names):
            try:
                loc = source.join(name)
                found = loc.exists()
            except AnnoloopError as exc:
                raise InvalidInput(f"cannot copy the image: {exc}", f"images[{i}]") from None
            if not found:
                raise InvalidInput(f"image {name!r} is not in {source}", f"images[{i}]")
            sources.append(loc)
        for name, loc in zip(file_names, sources, strict=True):
            root.join("images", name).write_bytes(loc.read_bytes())
    for i, target in enumerate(targets):
        chunk = lines[bounds[i] : bounds[i + 1]]
        root.join("labels", target).write_text("".join(line + "\n" for line in chunk))
    _write_data_yaml(root, list(dataset.labels), file_names)
    report.annotations = len(lines)
    return report
