"""CVAT for images 1.1 XML: boxes, polygons, polylines, points, masks and tags in one file.

Structure read and written::

    <annotations>
      <version>1.1</version>
      <meta><task><labels><label><name>car</name><color>#ff0000</color><type>any</type>
        <attributes><attribute><name>colour</name>...</attribute></attributes>
      </label></labels></task></meta>
      <image id="0" name="a.jpg" width="640" height="480" [subset="train"]>
        <box label="car" source="manual" occluded="0" xtl="1.00" ytl="2.00" xbr="30.00"
             ybr="40.00" z_order="0" [rotation="15.0"] [group_id="1"]>
          <attribute name="colour">red</attribute>
        </box>
        <polygon label points="x,y;x,y;..."/> <polyline label points="..."/>
        <points label points="x,y;..."/> <tag label/>
        <mask label rle="a, b, ..." left top width height/>
      </image>
    </annotations>

Coordinates are pixels in continuous image space (0 = the left edge of the first pixel).

Reading (:func:`load_cvat`, ``path`` = the XML file or a folder holding ``annotations.xml``):

- ``ImageRecord.file_name`` is ``name``; ``id``, ``subset`` and ``task_id`` go to ``meta`` as
  ``cvat_id``, ``subset`` and ``cvat_task_id``. Images keep file order, shapes element order.
- Labels are the ``<meta>`` labels (task, job or project) in order; a shape with an undeclared
  label is an error. A file without declared labels takes labels in order of first use. The
  label specs (colours, attribute definitions) are kept for saving (``meta["cvat"]``).
- ``<points>`` gives one point annotation per point; a rotated box becomes a 4-corner polygon;
  ``<mask>`` becomes a COCO RLE over the whole image; ``<tag>`` an image label.
- Data columns: ``attributes`` (dict name -> value text), ``occluded`` (bool), ``z_order``
  and ``group_id`` (int), ``cvat_source`` (CVAT's ``source``: manual, auto, ...); None where
  an element has none.
- ``<ellipse>``, ``<cuboid>`` and ``<skeleton>`` cannot be held: InvalidInput, or left out with
  ``skip_unsupported=True``. A "CVAT for video" file (``<track>``) is refused.

Writing (:func:`save_cvat`) writes the same structure (coordinates with ``decimals`` decimals,
2 as CVAT writes them). CVAT has no holes and no multi-part polygons: a polygon with holes is
written as a mask (``dropped["polygon_hole->mask"]``); a multi-part polygon without holes as one
``<polygon>`` per part (``polygon_multipart->split``). ``source`` is ``cvat_source``, else
``manual`` for human and ``auto`` for model annotations. Not held and counted in ``dropped``:
``confidence``, ``no_label``, ``empty_shape`` (a mask without pixels), data columns other than
the five above (``data:KEY``; ``data:source`` counts values reduced to manual/auto).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.formats._coco_shared import (
    check_rows,
    get_meta,
    positive_int,
    set_meta,
    shape_box,
    size_from_image,
)
from annoloop.formats._common import LabelIndex, check_file_name, number, read_bytes_guarded
from annoloop.formats._cvat_masks import cvat_mask_to_rle, mask_to_cvat
from annoloop.formats._voc_xml import attr, check_xml_chars, no_gc, parse_xml_fast, text
from annoloop.formats._yolo_shared import (
    count_dropped_confidence,
    count_dropped_data,
    count_dropped_kinds,
    is_missing,
)
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import cxcywh_to_xyxy, to_pixels, to_relative, xyxy_to_cxcywh
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import polygon_to_mask, rle_decode
from annoloop.geometry.polygons import as_line, as_shape

_TAGS = {
    "box": Kind.BBOX,
    "polygon": Kind.POLYGON,
    "polyline": Kind.LINE,
    "points": Kind.POINT,
    "tag": Kind.LABEL,
    "mask": Kind.MASK,
}
UNSUPPORTED = ("ellipse", "cuboid", "skeleton")
_BOX, _LABEL = int(Kind.BBOX), int(Kind.LABEL)
_CORNERS = ("xtl", "ytl", "xbr", "ybr")
DATA_KEYS = ("attributes", "occluded", "z_order", "group_id", "cvat_source")
_LABEL_PATHS = ("meta/task/labels/label", "meta/job/labels/label", "meta/project/labels/label")


# -- reading ----------------------------------------------------------------------------
def _label_specs(root: Any, name: str) -> list[dict[str, Any]]:
    """The declared labels with their colour, type and attribute definitions."""
    for path in _LABEL_PATHS:
        found = root.findall(path)
        if found:
            break
    else:
        return []
    specs: list[dict[str, Any]] = []
    for k, label in enumerate(found):
        label_name = (label.findtext("name") or "").strip()
        if not label_name:
            raise InvalidInput("a label needs a non-empty <name>", f"{name}: meta labels[{k}]")
        spec: dict[str, Any] = {"name": label_name}
        for key in ("color", "type"):
            value = label.findtext(key)
            if value is not None:
                spec[key] = value.strip()
        attributes = []
        for a in label.findall("attributes/attribute"):
            attributes.append({child.tag: (child.text or "").strip() for child in a})
        spec["attributes"] = attributes
        specs.append(spec)
    return specs


def _whole(value: str | None, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidInput(f"expected a whole number, got {value!r}", where) from None


def _points(value: str | None, where: str) -> np.ndarray:
    """``"x,y;x,y"`` -> float (k, 2) pixels."""
    if value is None or not value.strip():
        raise InvalidInput("needs a non-empty 'points' attribute", where)
    parts = value.replace(";", ",").split(",")
    try:
        arr = np.array(parts, dtype=np.float64)
    except ValueError:
        raise InvalidInput(
            f"points must be 'x,y;x,y;...' numbers, got {value[:60]!r}", where
        ) from None
    if arr.size % 2 or not np.isfinite(arr).all():
        raise InvalidInput(f"points must be finite x,y pairs, got {value[:60]!r}", where)
    return arr.reshape(-1, 2)


def _rotated_corners(xyxy: np.ndarray, degrees: float) -> np.ndarray:
    """The 4 corners of a box turned ``degrees`` clockwise (on screen) about its centre."""
    x0, y0, x1, y1 = xyxy
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) - centre
    t = math.radians(degrees)
    # y points down, so this matrix turns clockwise as seen on screen
    turn = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return corners @ turn.T + centre


class _Rows:
    """Annotation rows collected element by element, turned into arrays once at the end."""

    def __init__(self, labels: LabelIndex, declared: bool) -> None:
        self.labels = labels
        self.declared = declared
        self.image: list[int] = []
        self.kind: list[int] = []
        self.label: list[int] = []
        self.shape: list[Any] = []  # pixel geometry until the end
        self.where: list[tuple[int, str, int]] = []
        self.columns: dict[str, list[Any]] = {key: [] for key in DATA_KEYS}
        self.box_rows: list[int] = []
        self.box_values: list[list[str | None]] = []

    def label_of(self, el: Any, where: str) -> int:
        name = el.get("label")
        if name is None or not name.strip():
            raise InvalidInput("needs a 'label' attribute", where)
        if name in self.labels:
            return self.labels[name]
        if self.declared:
            raise InvalidInput(f"label {name!r} is not declared in <meta> labels", where)
        return self.labels.add(name)

    def add(self, image: int, kind: Kind, label: int, shape: Any, el: Any, at: tuple) -> None:
        """One row; ``at`` is ((image, tag, element index), where-text) of its element."""
        place, where = at
        self.image.append(image)
        self.kind.append(int(kind))
        self.label.append(label)
        self.shape.append(shape)
        self.where.append(place)
        attributes = {a.get("name", ""): (a.text or "") for a in el.findall("attribute")}
        if "" in attributes:
            raise InvalidInput("an <attribute> needs a 'name'", where)
        occluded = _whole(el.get("occluded"), f"{where}.occluded")
        self.columns["attributes"].append(attributes or None)
        self.columns["occluded"].append(None if occluded is None else bool(occluded))
        self.columns["z_order"].append(_whole(el.get("z_order"), f"{where}.z_order"))
        self.columns["group_id"].append(_whole(el.get("group_id"), f"{where}.group_id"))
        self.columns["cvat_source"].append(el.get("source"))


def _read_image(
    el: Any, i: int, name: str, rows: _Rows, images_root: Any, skip: bool
) -> ImageRecord:
    at = f"{name}: image[{i}]"
    file_name = check_file_name(el.get("name"), f"{at}.name")
    at = f"{name}: image[{i}] {file_name!r}"
    if el.get("width") is None or el.get("height") is None:
        width, height = size_from_image(images_root, file_name, f"{at}.width")
    else:
        width = positive_int(number(el.get("width"), f"{at}.width"), f"{at}.width")
        height = positive_int(number(el.get("height"), f"{at}.height"), f"{at}.height")
    meta: dict[str, Any] = {}
    if el.get("id") is not None:
        raw = el.get("id")
        meta["cvat_id"] = int(raw) if raw.strip().lstrip("-").isdigit() else raw
    for key, target in (("subset", "subset"), ("task_id", "cvat_task_id")):
        if el.get(key) is not None:
            meta[target] = el.get(key)
    for j, child in enumerate(el):
        tag = child.tag
        where = f"{at} {tag}[{j}]"
        kind = _TAGS.get(tag)
        if kind is None:
            if tag in UNSUPPORTED and skip:
                continue
            hint = "; pass skip_unsupported=True to leave them out" if tag in UNSUPPORTED else ""
            raise InvalidInput(f"<{tag}> cannot be read{hint}", where)
        label = rows.label_of(child, where)
        loc = ((i, tag, j), where)
        if kind == Kind.BBOX:
            rotation = child.get("rotation")
            angle = number(rotation, f"{where}.rotation") if rotation is not None else 0.0
            corners = [child.get(c) for c in _CORNERS]
            if None in corners:
                missing = _CORNERS[corners.index(None)]
                raise InvalidInput("box needs xtl, ytl, xbr and ybr", f"{where}.{missing}")
            if angle % 360:
                xyxy = np.array(
                    [number(v, f"{where}.{c}") for c, v in zip(_CORNERS, corners, strict=True)]
                )
                polygon = [[_rotated_corners(xyxy, angle)]]
                rows.add(i, Kind.POLYGON, label, polygon, child, loc)
            else:
                rows.box_rows.append(len(rows.image))
                rows.box_values.append(corners)
                rows.add(i, Kind.BBOX, label, None, child, loc)
        elif kind == Kind.POLYGON:
            rows.add(
                i, kind, label, [[_points(child.get("points"), f"{where}.points")]], child, loc
            )
        elif kind == Kind.LINE:
            rows.add(i, kind, label, _points(child.get("points"), f"{where}.points"), child, loc)
        elif kind == Kind.POINT:
            for point in _points(child.get("points"), f"{where}.points"):
                rows.add(i, kind, label, point, child, loc)
        elif kind == Kind.MASK:
            rle = cvat_mask_to_rle(child.attrib, width, height, where)
            rows.add(i, kind, label, rle, child, loc)
        else:
            rows.add(i, kind, label, None, child, loc)
    return ImageRecord(file_name, width, height, meta)


def _box_numbers(rows: _Rows, name: str, images: list[ImageRecord]) -> np.ndarray:
    try:
        return np.array(rows.box_values, dtype=np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        pass
    for r, values in zip(rows.box_rows, rows.box_values, strict=True):
        for c, v in zip(_CORNERS, values, strict=True):
            number(v, f"{_where(rows, r, name, images)}.{c}")
    raise InvalidInput("box coordinates are malformed", name)  # unreachable


def _where(rows: _Rows, r: int, name: str, images: list[ImageRecord]) -> str:
    i, tag, j = rows.where[r]
    return f"{name}: image[{i}] {images[i].file_name!r} {tag}[{j}]"


def _annotations(rows: _Rows, images: list[ImageRecord], name: str) -> Annotations:
    n = len(rows.image)
    image = np.array(rows.image, dtype=np.int64)
    kind = np.array(rows.kind, dtype=np.int8)
    box = np.full((n, 4), np.nan)
    shape = np.empty(n, dtype=object)
    sizes = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
    if rows.box_rows:
        sel = np.array(rows.box_rows)
        xyxy = _box_numbers(rows, name, images)
        bad = ~np.isfinite(xyxy).all(axis=1) | (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])
        if bad.any():
            r = int(sel[np.flatnonzero(bad)[0]])
            raise InvalidInput(
                f"box corners must be finite with xbr >= xtl and ybr >= ytl, got "
                f"{xyxy[np.flatnonzero(bad)[0]].tolist()}",
                _where(rows, r, name, images),
            )
        wh = sizes[image[sel]]
        box[sel] = to_relative(xyxy_to_cxcywh(xyxy), wh[:, 0], wh[:, 1])
    for r, (k, geom) in enumerate(zip(rows.kind, rows.shape, strict=True)):
        if geom is None:
            continue
        rec = images[rows.image[r]]
        scale = np.array([rec.width, rec.height], dtype=np.float64)
        if k == int(Kind.POINT):
            box[r] = [geom[0] / scale[0], geom[1] / scale[1], 0.0, 0.0]
            continue
        if k == int(Kind.POLYGON):
            shape[r] = [[ring / scale for ring in polygon] for polygon in geom]
        elif k == int(Kind.LINE):
            shape[r] = geom / scale
        else:
            shape[r] = geom
        box[r] = shape_box(k, shape[r], rec, _where(rows, r, name, images))
    data = {}
    for key, values in rows.columns.items():
        if any(v is not None for v in values):
            data[key] = np.fromiter(values, dtype=object, count=n)
    return Annotations(
        image=image,
        kind=kind,
        label=np.array(rows.label, dtype=np.int64),
        box=box,
        confidence=np.full(n, np.nan),
        shape=shape,
        data=data,
    )


def load_cvat(path: Any, *, images_root: Any = None, skip_unsupported: bool = False) -> Dataset:
    """Read a CVAT for images 1.1 XML file (see the module docstring for what maps to what).

    ``path`` is the XML file or a folder holding ``annotations.xml`` (path, URL or Location).
    ``images_root`` is where image sizes are read when an ``<image>`` has none.
    ``skip_unsupported`` leaves out ellipses, cuboids and skeletons instead of refusing them.
    Malformed input raises InvalidInput naming the file, the image and the element.
    """
    from annoloop.storage import Location

    loc = Location.parse(path)
    if loc.is_dir():
        loc = loc.join("annotations.xml")
    name = loc.name or str(loc)
    root = parse_xml_fast(read_bytes_guarded(loc), name)
    if root.tag != "annotations":
        raise InvalidInput(f"root element must be <annotations>, got <{root.tag}>", name)
    if root.find("track") is not None:
        raise InvalidInput(
            "holds <track> elements: this is 'CVAT for video'; export as 'CVAT for images'", name
        )
    specs = _label_specs(root, name)
    labels = LabelIndex()
    for k, spec in enumerate(specs):
        if spec["name"] in labels:
            raise InvalidInput(
                f"label {spec['name']!r} is declared twice", f"{name}: meta labels[{k}]"
            )
        labels.add(spec["name"])
    rows = _Rows(labels, declared=bool(specs))
    images: list[ImageRecord] = []
    seen: dict[str, int] = {}
    with no_gc():
        for i, el in enumerate(root.findall("image")):
            rec = _read_image(el, i, name, rows, images_root, skip_unsupported)
            if rec.file_name in seen:
                raise InvalidInput(
                    f"image {rec.file_name!r} is listed twice (also image[{seen[rec.file_name]}])",
                    f"{name}: image[{i}].name",
                )
            seen[rec.file_name] = i
            images.append(rec)
    ann = _annotations(rows, images, name)
    check_rows(ann, images, lambda r: _where(rows, r, name, images))
    dataset = Dataset(images=images, labels=labels.names, annotations=ann)
    if specs:
        set_meta(dataset, "cvat", {"labels": specs})
    return dataset


# -- writing ----------------------------------------------------------------------------
def _label_xml(spec: dict[str, Any]) -> str:
    parts = [f"        <label>\n          <name>{text(spec['name'])}</name>\n"]
    for key in ("color", "type"):
        if spec.get(key) is not None:
            parts.append(f"          <{key}>{text(spec[key])}</{key}>\n")
    parts.append("          <attributes>\n")
    for a in spec.get("attributes") or []:
        inner = "".join(
            f"<{k}>{text(v)}</{k}>" for k, v in a.items() if isinstance(k, str) and k.isidentifier()
        )
        parts.append(f"            <attribute>{inner}</attribute>\n")
    parts.append("          </attributes>\n        </label>\n")
    return "".join(parts)


def _label_specs_for(dataset: Dataset) -> list[dict[str, Any]]:
    """Specs of the dataset's labels: those it was read with, else new ones listing the
    attribute names its annotations use (as free text)."""
    known = {s.get("name"): s for s in (get_meta(dataset, "cvat") or {}).get("labels", [])}
    ann = dataset.annotations
    used: dict[int, list[str]] = {}
    if "attributes" in ann.data:
        for label, attributes in zip(
            ann.label.tolist(), ann.data["attributes"].tolist(), strict=True
        ):
            if isinstance(attributes, dict):
                names = used.setdefault(label, [])
                names.extend(str(k) for k in attributes if str(k) not in names)
    specs = []
    for j, label in enumerate(dataset.labels):
        if label in known:
            specs.append(known[label])
            continue
        attributes = [
            {"name": a, "mutable": "False", "input_type": "text", "default_value": "", "values": ""}
            for a in used.get(j, [])
        ]
        specs.append({"name": label, "color": "", "type": "any", "attributes": attributes})
    return specs


def _cached(values: list[Any], render: Any) -> list[str]:
    """``render(v)`` for each value, computed once per distinct (hashable) value."""
    cache: dict[Any, str] = {}
    out = []
    for v in values:
        key = (type(v), v) if isinstance(v, (str, int, float, bool)) or v is None else None
        if key is None:
            out.append(render(v))
            continue
        cell = cache.get(key)
        if cell is None:
            cell = cache[key] = render(v)
        out.append(cell)
    return out


def _source_text(cvat: Any, ours: Any) -> str:
    if isinstance(cvat, str) and cvat:
        return cvat
    return "auto" if isinstance(ours, str) and ours.startswith("model") else "manual"


def _attribute_children(attributes: Any, row: int) -> str:
    if not isinstance(attributes, dict) or not attributes:
        return ""
    parts = []
    for key, value in attributes.items():
        check_xml_chars(f"{key}{value}", f"annotations[{row}].attributes")
        parts.append(f"      <attribute name={attr(key)}>{text(value)}</attribute>\n")
    return "".join(parts)


class _Writer:
    """Turns annotation rows into CVAT elements, counting conversions in the report.

    The per-row attribute texts (label, source, occluded, z_order, group_id, attribute
    children) and the pixel boxes are computed for all rows up front.
    """

    def __init__(self, dataset: Dataset, report: ExportReport, decimals: int | None) -> None:
        self.dataset = dataset
        self.report = report
        self.fmt = "%r" if decimals is None else f"%.{decimals}f"
        ann = dataset.annotations
        n = len(ann)
        columns = {k: v.tolist() for k, v in ann.data.items()}
        nothing = [None] * n

        labels = [attr(name) for name in dataset.labels]
        self.label_attr = [labels[j] if j >= 0 else "" for j in ann.label.tolist()]
        sources = [
            _source_text(c, o)
            for c, o in zip(
                columns.get("cvat_source", nothing), columns.get("source", nothing), strict=True
            )
        ]
        self.source_attr = _cached(sources, attr)
        self.occluded = _cached(
            columns.get("occluded", nothing),
            lambda v: f' occluded="{int(bool(v)) if not is_missing(v) else 0}"',
        )
        self.z_order = _cached(
            columns.get("z_order", nothing),
            lambda v: f' z_order="{int(v) if not is_missing(v) else 0}"',
        )
        self.group = _cached(
            columns.get("group_id", nothing),
            lambda v: f' group_id="{int(v)}"' if not is_missing(v) and int(v) else "",
        )
        attributes = columns.get("attributes", nothing)
        self.children = [
            _attribute_children(a, i) if a is not None else "" for i, a in enumerate(attributes)
        ]
        sizes = np.array([[r.width, r.height] for r in dataset.images], dtype=np.float64)
        wh = sizes.reshape(-1, 2)[ann.image] if n else np.zeros((0, 2))
        self.pixel_boxes = to_pixels(cxcywh_to_xyxy(ann.box), wh[:, 0], wh[:, 1]).tolist()
        self.kinds = ann.kind.tolist()
        self.box_format = "".join(f' {c}="{self.fmt}"' for c in _CORNERS)

    def number(self, value: float) -> str:
        return self.fmt % float(value)

    def points(self, xy: np.ndarray) -> str:
        flat = np.asarray(xy, dtype=np.float64).ravel().tolist()
        pairs = ((self.fmt + "," + self.fmt + ";") * (len(flat) // 2)) % tuple(flat)
        return pairs[:-1]

    def element(self, tag: str, row: int, geometry: str) -> str:
        if tag == "tag":
            head = f"    <tag label={self.label_attr[row]} source={self.source_attr[row]}"
            head += self.group[row]
        else:
            head = f"    <{tag} label={self.label_attr[row]} source={self.source_attr[row]}"
            head += self.occluded[row] + geometry + self.z_order[row] + self.group[row]
        children = self.children[row]
        if not children:
            return head + "/>\n"
        return f"{head}>\n{children}    </{tag}>\n"

    def mask(self, row: int, mask: np.ndarray) -> str:
        fields = mask_to_cvat(mask)
        if fields is None:
            self.report.drop("empty_shape")
            return ""
        geometry = "".join(f" {k}={attr(v)}" for k, v in fields.items())
        return self.element("mask", row, geometry)

    def row(self, i: int, rec: ImageRecord) -> tuple[str, int]:
        """The XML of annotation row ``i`` and the number of elements it became."""
        k = self.kinds[i]
        if k == _BOX:
            return self.element("box", i, self.box_format % tuple(self.pixel_boxes[i])), 1
        if k == _LABEL:
            return self.element("tag", i, ""), 1
        ann = self.dataset.annotations
        scale = np.array([rec.width, rec.height], dtype=np.float64)
        if k == int(Kind.POINT):
            geometry = f' points="{self.points(ann.box[i, :2] * scale)}"'
            return self.element("points", i, geometry), 1
        if k == int(Kind.LINE):
            line = as_line(ann.shape[i], f"annotations[{i}].shape") * scale
            return self.element("polyline", i, f' points="{self.points(line)}"'), 1
        if k == int(Kind.MASK):
            xml = self.mask(i, rle_decode(ann.shape[i]))
            return xml, int(bool(xml))
        polygons = as_shape(ann.shape[i], f"annotations[{i}].shape")
        if any(len(p) > 1 for p in polygons):
            self.report.drop("polygon_hole->mask")
            xml = self.mask(i, polygon_to_mask(polygons, rec.width, rec.height))
            return xml, int(bool(xml))
        if len(polygons) > 1:
            self.report.drop("polygon_multipart->split")
        parts = [
            self.element("polygon", i, f' points="{self.points(p[0] * scale)}"')
            for p in polygons
            if p and len(p[0])
        ]
        return "".join(parts), len(parts)


def _image_ids(dataset: Dataset) -> list[Any]:
    ids = [rec.meta.get("cvat_id") for rec in dataset.images]
    if all(isinstance(i, int) and not isinstance(i, bool) for i in ids) and len(set(ids)) == len(
        ids
    ):
        return ids
    return list(range(len(dataset.images)))


def save_cvat(
    dataset: Dataset, path: Any, *, decimals: int | None = 2, task_name: str = "annoloop"
) -> ExportReport:
    """Write ``dataset`` as one CVAT for images 1.1 XML file (atomically).

    ``path`` is the file, or an existing folder (``annotations.xml`` is written in it).
    ``decimals`` rounds pixel coordinates (None writes exact floats). Returns an ExportReport
    whose ``dropped`` counts what CVAT cannot hold (see the module docstring).
    """
    from annoloop.storage import Location

    if decimals is not None and (
        isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 17
    ):
        raise InvalidInput(f"decimals must be 0..17 or None, got {decimals!r}", "decimals")
    loc = Location.parse(path)
    if loc.is_dir():
        loc = loc.join("annotations.xml")
    report = ExportReport(path=str(loc), images=len(dataset.images))
    for i, rec in enumerate(dataset.images):
        check_file_name(rec.file_name, f"images[{i}].file_name")
        check_xml_chars(rec.file_name, f"images[{i}].file_name")
    for j, label in enumerate(dataset.labels):
        check_xml_chars(label, f"labels[{j}]")
    check_xml_chars(task_name, "task_name")
    ann = dataset.annotations
    labelled = ann.label >= 0
    report.drop("no_label", int(np.count_nonzero(~labelled)))
    count_dropped_kinds(report, ann, labelled & ~np.isin(ann.kind, [int(k) for k in Kind]))
    count_dropped_confidence(report, ann, labelled)
    count_dropped_data(report, ann, labelled, keep=DATA_KEYS)

    writer = _Writer(dataset, report, decimals)
    rows = np.flatnonzero(labelled)
    rows = rows[np.argsort(ann.image[rows], kind="stable")]
    per_image: list[list[str]] = [[] for _ in dataset.images]
    elements = 0
    image_of_row = ann.image.tolist()
    for i in rows.tolist():
        image = image_of_row[i]
        xml, count = writer.row(i, dataset.images[image])
        per_image[image].append(xml)
        elements += count

    specs = _label_specs_for(dataset)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n',
        "  <meta>\n    <task>\n",
        f"      <name>{text(task_name)}</name>\n      <size>{len(dataset.images)}</size>\n",
        "      <mode>annotation</mode>\n      <labels>\n",
        *(_label_xml(s) for s in specs),
        "      </labels>\n    </task>\n  </meta>\n",
    ]
    for rec, image_id, body in zip(dataset.images, _image_ids(dataset), per_image, strict=True):
        head = f"  <image id={attr(image_id)} name={attr(rec.file_name)}"
        if isinstance(rec.meta.get("subset"), str):
            head += f" subset={attr(rec.meta['subset'])}"
        if rec.meta.get("cvat_task_id") is not None:
            head += f" task_id={attr(rec.meta['cvat_task_id'])}"
        head += f' width="{int(rec.width)}" height="{int(rec.height)}"'
        out.append(f"{head}>\n" + "".join(body) + "  </image>\n" if body else f"{head}/>\n")
    out.append("</annotations>\n")
    loc.write_text("".join(out))
    report.annotations = elements
    return report
