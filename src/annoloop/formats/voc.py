"""Pascal VOC XML: one ``<annotation>`` file per image holding its boxes.

Reading (:func:`load_voc`) takes a folder with ``Annotations/`` (searched recursively), a
folder of ``.xml`` files, or one ``.xml`` file. Each file holds::

    <annotation>
      <folder>VOC2007</folder> <filename>000005.jpg</filename> <path>...</path>
      <source>...</source> <segmented>0</segmented>
      <size><width>500</width><height>375</height><depth>3</depth></size>
      <object>
        <name>chair</name> <pose>Rear</pose> <truncated>0</truncated> <difficult>0</difficult>
        <occluded>0</occluded>
        <bndbox><xmin>263</xmin><ymin>211</ymin><xmax>324</xmax><ymax>339</ymax></bndbox>
        <attributes><attribute><name>a</name><value>v</value></attribute></attributes>
      </object>
    </annotation>

Coordinates: VOC numbers pixels from 1 and its boxes include both end pixels, so the box above
covers pixel columns 263..324 (62 pixels). In annoloop's continuous pixel space (pixel column
``c`` counting from 0 covers ``[c, c+1)``) that is ``x1 = xmin - 1``, ``x2 = xmax`` (the
conversion of the VOC devkit, detectron2 and torchvision). Files written by tools that use
0-based continuous coordinates (Datumaro, CVAT's VOC export) load with ``one_based=False``
(``x1 = xmin``).

- ``ImageRecord.file_name`` is ``<filename>``; ``<folder>``, ``<path>``, ``<source>`` and
  ``<segmented>`` go to ``meta`` as ``voc_folder``, ``voc_path``, ``voc_source`` (a dict) and
  ``voc_segmented``, ``<depth>`` as ``depth``. A missing or zero width/height is read from
  the image under ``images_root``.
- Object ``<difficult>``, ``<truncated>``, ``<occluded>`` (0/1) become bool data columns,
  ``<pose>`` a str column, CVAT-style ``<attributes>`` a dict column ``attributes``; objects
  without the element hold None. ``<part>`` children (person layout) are not read.
- Labels are object names in order of first use; images are in file path order.

Writing (:func:`save_voc`) writes ``Annotations/<file name stem>.xml`` per image (also for an
image without boxes), each file atomically, with integer coordinates (``decimals`` for more).
VOC holds only boxes: points, lines, polygons, masks and image labels are dropped and counted
by kind name in ``ExportReport.dropped``, as are ``confidence``, ``no_label`` and data columns
other than the five above (``data:KEY``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.formats._coco_shared import check_rows, positive_int, size_from_image
from annoloop.formats._common import LabelIndex, check_file_name, number, read_bytes_guarded
from annoloop.formats._voc_xml import check_xml_chars, no_gc, parse_xml_fast, text
from annoloop.formats._yolo_shared import (
    count_dropped_confidence,
    count_dropped_data,
    count_dropped_kinds,
    is_missing,
    per_image_names,
)
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import cxcywh_to_xyxy, to_pixels, to_relative, xyxy_to_cxcywh
from annoloop.geometry.kinds import Kind

FLAGS = ("difficult", "truncated", "occluded")
_DATA_KEYS = (*FLAGS, "pose", "attributes")
_CORNERS = ("xmin", "ymin", "xmax", "ymax")
_TRUE = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


# -- reading ----------------------------------------------------------------------------
def _files(loc: Any) -> tuple[Any, list[Any]]:
    """(base for display names, xml files) of a file, a VOC root or a folder of xml files."""
    if not loc.exists():
        raise InvalidInput("does not exist", str(loc))
    if not loc.is_dir():
        return loc.parent, [loc]
    annotations = loc.join("Annotations")
    if annotations.is_dir():
        return loc, annotations.list("*.xml", recursive=True)
    return loc, loc.list("*.xml")


def _flag(value: str | None, where: str) -> bool | None:
    if value is None:
        return None
    flag = _TRUE.get(value.strip().lower())
    if flag is None:
        raise InvalidInput(f"expected 0 or 1, got {value!r}", where)
    return flag


def _size(root: Any, where: str, file_name: str, images_root: Any) -> tuple[int, int, dict]:
    size = root.find("size")
    meta: dict[str, Any] = {}
    values: dict[str, int | None] = {"width": None, "height": None}
    if size is not None:
        for key in ("width", "height"):
            raw = size.findtext(key)
            if raw is None or not raw.strip():
                continue
            value = number(raw.strip(), f"{where}: size.{key}")
            if value < 0:
                raise InvalidInput(
                    f"{key} must not be negative, got {raw!r}", f"{where}: size.{key}"
                )
            values[key] = positive_int(value, f"{where}: size.{key}") if value else None
        depth = size.findtext("depth")
        if depth is not None and depth.strip():
            value = number(depth.strip(), f"{where}: size.depth")
            if value < 0 or value != int(value):
                raise InvalidInput(f"depth must be a whole number, got {depth!r}", where)
            meta["depth"] = int(value)
    width, height = values["width"], values["height"]
    if width is None or height is None:
        width, height = size_from_image(images_root, file_name, f"{where}: size")
    return width, height, meta


def _image_meta(root: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key in ("folder", "path", "segmented"):
        value = root.findtext(key)
        if value is not None:
            meta[f"voc_{key}"] = value.strip()
    source = root.find("source")
    if source is not None:
        meta["voc_source"] = {child.tag: (child.text or "").strip() for child in source}
    return meta


def _attributes(obj: Any, where: str) -> dict[str, str] | None:
    block = obj.find("attributes")
    if block is None:
        return None
    out: dict[str, str] = {}
    for k, item in enumerate(block.findall("attribute")):
        name = item.findtext("name")
        if name is None or not name.strip():
            raise InvalidInput("an attribute needs a <name>", f"{where}.attributes[{k}]")
        out[name.strip()] = (item.findtext("value") or "").strip()
    return out


class _Reader:
    """Collects objects of all files into flat lists, then into one Annotations struct."""

    def __init__(self) -> None:
        self.labels = LabelIndex()
        self.image: list[int] = []
        self.label: list[int] = []
        self.corners: list[list[str | None]] = []
        self.files: list[str] = []
        self.row_file: list[int] = []
        self.row_object: list[int] = []
        self.columns: dict[str, list[Any]] = {key: [] for key in _DATA_KEYS}

    def where(self, row: int) -> str:
        """``file: object[k]`` of an annotation row."""
        return f"{self.files[self.row_file[row]]}: object[{self.row_object[row]}]"

    def read_objects(self, root: Any, image: int, where: str) -> None:
        """Add the objects of one file (``where`` names it in errors)."""
        file = len(self.files)
        self.files.append(where)
        before = len(self.label)
        self._read_each(root, where)
        added = len(self.label) - before
        self.image.extend([image] * added)
        self.row_file.extend([file] * added)

    def _read_each(self, root: Any, where: str) -> None:
        # one pass over each object's children: several times quicker than find() per field
        columns = self.columns
        for k, obj in enumerate(root.iterfind("object")):
            child = {c.tag: c for c in reversed(obj)}  # the first of repeated children wins
            at = f"{where}: object[{k}]"
            name = child.get("name")
            name = name.text.strip() if name is not None and name.text else ""
            if not name:
                raise InvalidInput("an object needs a non-empty <name>", f"{at}.name")
            box = child.get("bndbox")
            if box is None:
                raise InvalidInput("an object needs a <bndbox>", f"{at}.bndbox")
            corner = {c.tag: c.text for c in reversed(box)}
            values = [corner.get(c) for c in _CORNERS]
            if None in values:  # absent, or an empty element
                missing = _CORNERS[values.index(None)]
                raise InvalidInput("is missing or empty", f"{at}.bndbox.{missing}")
            self.corners.append(values)
            self.label.append(self.labels.add(name))
            self.row_object.append(k)
            for key in FLAGS:
                el = child.get(key)
                columns[key].append(None if el is None else _flag(el.text or "", f"{at}.{key}"))
            pose = child.get("pose")
            columns["pose"].append(None if pose is None else (pose.text or "").strip())
            attributes = _attributes(obj, at) if "attributes" in child else None
            columns["attributes"].append(attributes)

    def annotations(self, images: list[ImageRecord], one_based: bool) -> Annotations:
        n = len(self.image)
        xyxy = self._numbers()
        bad = ~np.isfinite(xyxy).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(
                f"bndbox values must be finite, got {self.corners[i]}", f"{self.where(i)}.bndbox"
            )
        if one_based:
            xyxy[:, :2] -= 1.0
        backwards = (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])
        if backwards.any():
            i = int(np.flatnonzero(backwards)[0])
            raise InvalidInput(
                f"xmax/ymax lie before xmin/ymin: {[self.corners[i][k] for k in range(4)]}",
                f"{self.where(i)}.bndbox",
            )
        image = np.array(self.image, dtype=np.int64)
        sizes = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
        wh = sizes[image] if n else np.zeros((0, 2))
        box = to_relative(xyxy_to_cxcywh(xyxy), wh[:, 0], wh[:, 1]) if n else np.zeros((0, 4))
        data = {}
        for key, values in self.columns.items():
            if any(v is not None for v in values):
                data[key] = np.fromiter(values, dtype=object, count=n)
        return Annotations(
            image=image,
            kind=np.full(n, int(Kind.BBOX), dtype=np.int8),
            label=np.array(self.label, dtype=np.int64),
            box=box,
            confidence=np.full(n, np.nan),
            shape=np.empty(n, dtype=object),
            data=data,
        )

    def _numbers(self) -> np.ndarray:
        try:
            return np.array(self.corners, dtype=np.float64).reshape(-1, 4)
        except (TypeError, ValueError):
            pass
        for i, row in enumerate(self.corners):
            for name, value in zip(_CORNERS, row, strict=True):
                number(value.strip(), f"{self.where(i)}.bndbox.{name}")
        raise InvalidInput("bndbox values are malformed", "bndbox")  # unreachable


def load_voc(path: Any, *, images_root: Any = None, one_based: bool = True) -> Dataset:
    """Read Pascal VOC XML files (see the module docstring for layout and conventions).

    ``path`` is a folder holding ``Annotations/``, a folder of ``.xml`` files, or one file
    (path, URL or Location). ``images_root`` is where image sizes are read when a file has
    none. ``one_based=False`` reads 0-based continuous coordinates (Datumaro/CVAT exports).
    Malformed input raises InvalidInput naming the file and the object.
    """
    from annoloop.storage import Location

    loc = Location.parse(path)
    base, files = _files(loc)
    if not files:
        raise InvalidInput("holds no .xml files (nor an Annotations/ folder with some)", str(loc))
    images: list[ImageRecord] = []
    seen: dict[str, str] = {}
    reader = _Reader()
    for file in files:
        where = file.relative_to(base) if file != base else file.name
        root = parse_xml_fast(read_bytes_guarded(file), where)
        if root.tag != "annotation":
            raise InvalidInput(f"root element must be <annotation>, got <{root.tag}>", where)
        raw_name = root.findtext("filename")
        file_name = check_file_name(
            raw_name.strip() if raw_name else raw_name, f"{where}: filename"
        )
        if file_name in seen:
            raise InvalidInput(
                f"image {file_name!r} is described by {seen[file_name]} too", f"{where}: filename"
            )
        seen[file_name] = where
        width, height, meta = _size(root, where, file_name, images_root)
        meta.update(_image_meta(root))
        with no_gc():
            reader.read_objects(root, len(images), where)
        images.append(ImageRecord(file_name, width, height, meta))
    ann = reader.annotations(images, one_based)
    check_rows(ann, images, lambda r: f"{reader.where(r)}.bndbox")
    return Dataset(images=images, labels=reader.labels.names, annotations=ann)


# -- writing ----------------------------------------------------------------------------
def _flag_cells(values: list[Any] | None, n: int, optional: bool, tag: str) -> list[str]:
    """The ``<tag>0|1</tag>`` line of each row ("" for a missing optional flag)."""
    on, off = f"\t\t<{tag}>1</{tag}>\n", f"\t\t<{tag}>0</{tag}>\n"
    if values is None:
        return [""] * n if optional else [off] * n
    return ["" if optional and is_missing(v) else on if v and not is_missing(v) else off
            for v in values]  # fmt: skip


def _text_cells(values: list[Any] | None, n: int, default: str) -> list[str]:
    """Escaped text of each row (``default`` where missing), escaping each distinct value once."""
    if values is None:
        return [text(default)] * n
    cache: dict[Any, str] = {}
    out = []
    for v in values:
        key = default if is_missing(v) else str(v)
        cell = cache.get(key)
        if cell is None:
            cell = cache[key] = text(check_xml_chars(key, "pose"))
        out.append(cell)
    return out


def _attribute_cells(values: list[Any] | None, n: int, rows: list[int]) -> list[str]:
    """The ``<attributes>`` block of each row ("" for none)."""
    if values is None:
        return [""] * n
    out = []
    for v, row in zip(values, rows, strict=True):
        if not isinstance(v, dict) or not v:
            out.append("")
            continue
        items = []
        for key, value in v.items():
            check_xml_chars(f"{key}{value}", f"annotations[{row}].attributes")
            items.append(
                f"\t\t\t<attribute><name>{text(key)}</name>"
                f"<value>{text(value)}</value></attribute>\n"
            )
        out.append("\t\t<attributes>\n" + "".join(items) + "\t\t</attributes>\n")
    return out


def _objects_xml(dataset: Dataset, rows: np.ndarray, xyxy: np.ndarray, fmt: str) -> list[str]:
    """The ``<object>`` element of each row, formatted in one call over all rows."""
    ann = dataset.annotations
    n = len(rows)
    if n == 0:
        return []
    order = rows.tolist()

    def column(key: str) -> list[Any] | None:
        return ann.data[key][rows].tolist() if key in ann.data else None

    names = np.array([text(label) for label in dataset.labels], dtype=object)[ann.label[rows]]
    cells = [
        names.tolist(),
        _text_cells(column("pose"), n, "Unspecified"),
        _flag_cells(column("truncated"), n, False, "truncated"),
        _flag_cells(column("difficult"), n, False, "difficult"),
        _flag_cells(column("occluded"), n, True, "occluded"),  # not in every VOC file
        *(xyxy[:, k].tolist() for k in range(4)),
        _attribute_cells(column("attributes"), n, order),
    ]
    template = (
        "\t<object>\n\t\t<name>%s</name>\n\t\t<pose>%s</pose>\n%s%s%s\t\t<bndbox>\n"
        f"\t\t\t<xmin>{fmt}</xmin>\n\t\t\t<ymin>{fmt}</ymin>\n"
        f"\t\t\t<xmax>{fmt}</xmax>\n\t\t\t<ymax>{fmt}</ymax>\n"
        "\t\t</bndbox>\n%s\t</object>\n\x00"
    )
    flat = [value for row in zip(*cells, strict=True) for value in row]
    return (template * n % tuple(flat)).split("\x00")[:-1]


def _image_xml(rec: ImageRecord, objects: list[str], where: str) -> str:
    meta = rec.meta

    def meta_text(value: Any, key: str) -> str:
        return text(check_xml_chars(str(value), f"{where}.meta[{key!r}]"))

    head = [
        "<annotation>\n",
        f"\t<folder>{meta_text(meta.get('voc_folder', ''), 'voc_folder')}</folder>\n",
        f"\t<filename>{text(rec.file_name)}</filename>\n",
    ]
    if meta.get("voc_path"):
        head.append(f"\t<path>{meta_text(meta['voc_path'], 'voc_path')}</path>\n")
    source = meta.get("voc_source")
    if isinstance(source, dict) and source:
        head.append("\t<source>\n")
        head.extend(
            f"\t\t<{k}>{meta_text(v, 'voc_source')}</{k}>\n"
            for k, v in source.items()
            if _tag_ok(k)
        )
        head.append("\t</source>\n")
    depth = meta.get("depth", 3)
    head.append(
        f"\t<size>\n\t\t<width>{int(rec.width)}</width>\n\t\t<height>{int(rec.height)}</height>\n"
        f"\t\t<depth>{int(depth) if isinstance(depth, int) else 3}</depth>\n\t</size>\n"
    )
    segmented = meta_text(meta.get("voc_segmented", "0"), "voc_segmented")
    head.append(f"\t<segmented>{segmented}</segmented>\n")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + "".join(head + objects) + "</annotation>\n"


def _tag_ok(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier() and not name.lower().startswith("xml")


def _check_text(dataset: Dataset) -> None:
    for i, rec in enumerate(dataset.images):
        check_xml_chars(rec.file_name, f"images[{i}].file_name")
    for j, label in enumerate(dataset.labels):
        check_xml_chars(label, f"labels[{j}]")


def save_voc(
    dataset: Dataset, path: Any, *, one_based: bool = True, decimals: int = 0
) -> ExportReport:
    """Write ``dataset`` as ``path/Annotations/<stem>.xml`` files, one per image.

    Coordinates are written 1-based inclusive (``one_based=False``: 0-based continuous) and
    rounded to ``decimals`` (0 = integers, as VOC defines them). Returns an ExportReport whose
    ``dropped`` counts what VOC cannot hold (see the module docstring).
    """
    from annoloop.storage import Location

    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 10:
        raise InvalidInput(f"decimals must be 0..10, got {decimals!r}", "decimals")
    root = Location.parse(path)
    targets = per_image_names(dataset, ".xml")
    _check_text(dataset)
    report = ExportReport(path=str(root), images=len(dataset.images))
    ann = dataset.annotations
    is_box = ann.kind == int(Kind.BBOX)
    count_dropped_kinds(report, ann, ~is_box)
    report.drop("no_label", int(np.count_nonzero(is_box & (ann.label < 0))))
    written = is_box & (ann.label >= 0)
    count_dropped_confidence(report, ann, written)
    count_dropped_data(report, ann, written, keep=_DATA_KEYS)

    rows = np.flatnonzero(written)
    rows = rows[np.argsort(ann.image[rows], kind="stable")]
    sizes = np.array([[r.width, r.height] for r in dataset.images], dtype=np.float64)
    wh = sizes[ann.image[rows]] if len(rows) else np.zeros((0, 2))
    xyxy = to_pixels(cxcywh_to_xyxy(ann.box[rows]), wh[:, 0], wh[:, 1])
    if one_based:
        xyxy[:, :2] += 1.0
    xyxy = np.round(xyxy, decimals)
    fmt = "%d" if decimals == 0 else f"%.{decimals}f"
    objects = _objects_xml(dataset, rows, xyxy, fmt)
    # rows are sorted by image: each image's objects are one slice
    bounds = np.searchsorted(ann.image[rows], np.arange(len(dataset.images) + 1)).tolist()
    per_image = [objects[bounds[i] : bounds[i + 1]] for i in range(len(dataset.images))]
    documents = [
        _image_xml(rec, objects, f"images[{i}]")
        for i, (rec, objects) in enumerate(zip(dataset.images, per_image, strict=True))
    ]  # all built (and checked) before the first file is written
    for target, document in zip(targets, documents, strict=True):
        root.join("Annotations", target).write_text(document)
    report.annotations = len(rows)
    return report
