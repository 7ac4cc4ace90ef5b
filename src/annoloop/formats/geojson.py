"""GeoJSON FeatureCollection in pixel space: one feature per annotation.

Coordinates are image pixels (x to the right, y down), not geographic positions. Each
feature's ``properties`` hold:

- ``image`` (file name, required), ``image_width``, ``image_height`` (pixels; when missing the
  size is read from the image header under ``images_root``);
- ``label`` (class name or null), ``confidence`` (number or absent), ``kind`` (optional: the
  annoloop shape kind; needed only to tell a box or a mask from a polygon);
- any other property is an extra per-annotation value (``source``, ``author``, ...), kept in
  ``Annotations.data`` under its name.

Geometry -> kind: ``Point`` -> point; ``MultiPoint`` -> one point per position;
``LineString`` -> line; ``MultiLineString`` -> one line per part; ``Polygon`` (holes kept) and
``MultiPolygon`` -> polygon, or a box when ``kind`` is ``"bbox"`` (the polygon's bounds), or a
mask when ``kind`` is ``"mask"`` (the polygons rasterised into an RLE at the image size);
``null`` -> image label (a feature with neither geometry nor label only registers its image).

Saving writes boxes as rectangles with ``kind: "bbox"`` and masks as their exact pixel outline
polygons with ``kind: "mask"`` (which rasterise back to the same mask). A top-level foreign
member ``"annoloop": {"images": [...], "labels": [...]}`` keeps the image and label lists
(order, sizes, images without annotations); readers that do not know it ignore it.

Self-intersecting or overlapping polygons are repaired (``repair_polygon``) when
``repair=True``; with ``repair=False`` they raise InvalidInput naming the feature.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.formats._coco_shared import (
    check_rows,
    confidences,
    data_from_extras,
    data_rows,
    pixels,
    positive_int,
    read_json_document,
    shape_box,
    size_from_image,
)
from annoloop.formats._common import LabelIndex, check_file_name, number
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import cxcywh_to_xyxy, to_pixels
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import mask_to_polygon, polygon_to_mask, rle_decode, rle_encode
from annoloop.geometry.polygons import polygon_to_shapely, repair_polygon

# properties that are not extra data
RESERVED = frozenset({"image", "image_width", "image_height", "label", "confidence", "kind"})
_FOREIGN_KEY = "annoloop"


class _Reader:
    """State of one load: images and labels seen so far, and the rows being collected."""

    def __init__(self, name: str, images_root: Any, repair: bool) -> None:
        self.name = name
        self.images_root = images_root
        self.repair = repair
        self.image_index: dict[str, int] = {}
        self.checked_names: dict[str, str] = {}  # file name as written -> checked name
        self.sizes: list[list[int | None]] = []
        self.size_source: list[int] = []  # feature that gave each image its size (-1: header)
        self.labels = LabelIndex()
        # per annotation row
        self.feature: list[int] = []
        self.image: list[int] = []
        self.kind: list[int] = []
        self.label: list[int] = []
        self.conf: list[float] = []
        self.points: list[Any] = []  # pixel (x, y) for points, None otherwise
        self.shape: list[Any] = []  # pixel geometry for the other kinds
        self.extra: list[dict[str, Any] | None] = []

    def where(self, i: int, field: str = "") -> str:
        return f"{self.name}: features[{i}]{field}"

    # -- registry -------------------------------------------------------------------------
    def register(self, file_name: str, width: Any, height: Any, where: str, source: int) -> int:
        idx = self.image_index.get(file_name)
        if idx is not None and self.sizes[idx] == [width, height] and type(width) is int:
            return idx  # the common case: the same image and size as before
        w = None if width is None else positive_int(width, where + ".image_width")
        h = None if height is None else positive_int(height, where + ".image_height")
        if idx is None:
            idx = self.image_index[file_name] = len(self.sizes)
            self.sizes.append([w, h])
            self.size_source.append(source)
            return idx
        known = self.sizes[idx]
        for axis, value, field in ((0, w, "image_width"), (1, h, "image_height")):
            if value is None:
                continue
            if known[axis] is None:
                known[axis] = value
            elif known[axis] != value:
                raise InvalidInput(
                    f"image {file_name!r} has {field} {known[axis]} in an earlier record, "
                    f"{value} here",
                    f"{where}.{field}",
                )
        return idx

    def read_registry(self, foreign: Any) -> None:
        """The top-level ``annoloop`` member written by :func:`save_geojson`, if any."""
        if foreign is None:
            return
        where = f"{self.name}: {_FOREIGN_KEY}"
        if not isinstance(foreign, dict):
            raise InvalidInput(f"must be an object, got {type(foreign).__name__}", where)
        images = foreign.get("images", [])
        labels = foreign.get("labels", [])
        if not isinstance(images, list) or not isinstance(labels, list):
            raise InvalidInput("images and labels must be lists", where)
        for j, rec in enumerate(images):
            w = f"{where}.images[{j}]"
            if not isinstance(rec, dict):
                raise InvalidInput(f"must be an object, got {type(rec).__name__}", w)
            file_name = check_file_name(rec.get("file_name"), w + ".file_name")
            if file_name in self.image_index:
                raise InvalidInput(f"image {file_name!r} is listed twice", w)
            self.register(file_name, rec.get("width"), rec.get("height"), w, -2)
        for j, label in enumerate(labels):
            if not isinstance(label, str) or not label:
                raise InvalidInput(f"a label must be a non-empty string, got {label!r}", where)
            if label in self.labels:
                raise InvalidInput(f"label {label!r} is listed twice", f"{where}.labels[{j}]")
            self.labels.add(label)

    # -- features -------------------------------------------------------------------------
    def add(self, i: int, feature: Any) -> None:
        if type(feature) is not dict:
            raise InvalidInput(
                f"a feature must be an object, got {type(feature).__name__}", self.where(i)
            )
        props = feature.get("properties")
        if type(props) is not dict:
            raise InvalidInput(
                "properties must be an object with at least 'image'", self.where(i, ".properties")
            )
        pw = self.where(i, ".properties")
        raw_name = props.get("image")
        file_name = self.checked_names.get(raw_name) if type(raw_name) is str else None
        if file_name is None:
            file_name = check_file_name(raw_name, pw + ".image")
            self.checked_names[raw_name] = file_name
        image = self.register(file_name, props.get("image_width"), props.get("image_height"), pw, i)
        name = props.get("label")
        if name is None:
            label = -1
        elif isinstance(name, str) and name:
            label = self.labels.add(name)
        else:
            raise InvalidInput(f"label must be a non-empty string or null, got {name!r}", pw)
        conf = props.get("confidence")
        conf = np.nan if conf is None else number(conf, pw + ".confidence")
        kind_name = props.get("kind")
        wanted = None if kind_name is None else _kind(kind_name, pw + ".kind")
        extra = {k: v for k, v in props.items() if k not in RESERVED} or None

        geom = feature.get("geometry")
        if geom is None:
            if wanted not in (None, Kind.LABEL):
                raise InvalidInput(f"a {wanted.label} needs a geometry", self.where(i, ".geometry"))
            if label >= 0:
                self._row(i, image, Kind.LABEL, label, conf, None, None, extra)
            return
        parts = self._geometry(i, geom, wanted)
        for kind, points, shape in parts:
            self._row(i, image, kind, label, conf, points, shape, extra)

    def _row(
        self,
        i: int,
        image: int,
        kind: Kind,
        label: int,
        conf: float,
        points: Any,
        shape: Any,
        extra: dict[str, Any] | None,
    ) -> None:
        self.feature.append(i)
        self.image.append(image)
        self.kind.append(int(kind))
        self.label.append(label)
        self.conf.append(conf)
        self.points.append(points)
        self.shape.append(shape)
        self.extra.append(extra)

    def _geometry(self, i: int, geom: Any, wanted: Kind | None) -> list[tuple[Kind, Any, Any]]:
        gw = self.where(i, ".geometry")
        if type(geom) is not dict:
            raise InvalidInput(f"geometry must be an object or null, got {type(geom).__name__}", gw)
        gtype = geom.get("type")
        coords = geom.get("coordinates")
        allowed = _ALLOWED
        if gtype not in allowed:
            raise InvalidInput(
                f"unsupported geometry type {gtype!r} (allowed: {', '.join(allowed)})", gw
            )
        kind = allowed[gtype][0] if wanted is None else wanted
        if kind not in allowed[gtype]:
            raise InvalidInput(f"kind {kind.label!r} does not fit a {gtype} geometry", gw)
        cw = gw + ".coordinates"
        if gtype == "Point":
            return [(kind, _position(coords, cw), None)]
        if gtype == "MultiPoint":
            if not isinstance(coords, list):
                raise InvalidInput("MultiPoint coordinates must be a list of positions", cw)
            return [(kind, _position(c, f"{cw}[{k}]"), None) for k, c in enumerate(coords)]
        if gtype == "LineString":
            return [(kind, None, _positions(coords, cw))]
        if gtype == "MultiLineString":
            if not isinstance(coords, list):
                raise InvalidInput("MultiLineString coordinates must be a list of lines", cw)
            return [(kind, None, _positions(c, f"{cw}[{k}]")) for k, c in enumerate(coords)]
        if gtype == "Polygon" and kind == Kind.BBOX:
            # only the bounds matter: the exterior, unchecked for validity
            if not isinstance(coords, list) or not coords:
                raise InvalidInput("a polygon must be a non-empty list of rings", cw)
            return [(kind, None, _positions(coords[0], cw + "[0]"))]
        if gtype == "Polygon":
            polygons = [_rings(coords, cw)]
        else:
            if not isinstance(coords, list):
                raise InvalidInput("MultiPolygon coordinates must be a list of polygons", cw)
            polygons = [_rings(c, f"{cw}[{k}]") for k, c in enumerate(coords)]
        if kind == Kind.BBOX:
            # only the bounds matter: no validity check, all exterior points together
            return [(kind, None, np.concatenate([polygon[0] for polygon in polygons]))]
        return [(kind, None, self._checked_polygons(polygons, cw))]

    def _checked_polygons(self, polygons: list, where: str) -> list:
        """Repair (or refuse) invalid polygons; rings of < 3 points are left to validation."""
        if any(len(ring) < 3 for polygon in polygons for ring in polygon):
            return polygons
        geom = polygon_to_shapely(polygons)
        if geom.is_valid:
            return polygons
        if not self.repair:
            raise InvalidInput("polygon is not valid (self-intersecting or overlapping)", where)
        fixed = repair_polygon(polygons)
        if not fixed:
            raise InvalidInput("polygon has no area, even after repair", where)
        return fixed

    # -- result ---------------------------------------------------------------------------
    def images(self) -> list[ImageRecord]:
        out = []
        for file_name, idx in self.image_index.items():
            w, h = self.sizes[idx]
            if w is None or h is None:
                src = self.size_source[idx]
                where = self.where(src, ".properties.image_width") if src >= 0 else self.name
                w, h = size_from_image(self.images_root, file_name, where)
            out.append(ImageRecord(file_name, w, h))
        return out

    def annotations(self, images: list[ImageRecord]) -> Annotations:
        n = len(self.feature)
        image = np.array(self.image, dtype=np.int64)
        kind = np.array(self.kind, dtype=np.int8)
        sizes = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
        wh = sizes[image] if n else np.zeros((0, 2))
        box = np.full((n, 4), np.nan)
        rows = np.flatnonzero(kind == int(Kind.POINT))
        if rows.size:
            xy = np.array([self.points[r] for r in rows], dtype=np.float64)
            box[rows, :2] = xy / wh[rows]
            box[rows, 2:] = 0.0
        shape = np.empty(n, dtype=object)
        rows = np.flatnonzero(kind == int(Kind.BBOX))
        if rows.size:
            # bounds of every box outline at once
            pts = [self.shape[r] for r in rows.tolist()]
            starts = np.cumsum([0] + [len(p) for p in pts[:-1]])
            flat = np.concatenate(pts)
            lo = np.minimum.reduceat(flat, starts, axis=0) / wh[rows]
            hi = np.maximum.reduceat(flat, starts, axis=0) / wh[rows]
            box[rows] = np.hstack([(lo + hi) / 2, hi - lo])
        for r in np.flatnonzero(kind >= int(Kind.LINE)).tolist():
            scale = wh[r]
            rec = images[image[r]]
            where = self.where(self.feature[r], ".geometry")
            geom = self.shape[r]
            if kind[r] == Kind.LINE:
                shape[r] = geom / scale
            else:
                rel = [[ring / scale for ring in polygon] for polygon in geom]
                if kind[r] == Kind.POLYGON:
                    shape[r] = rel
                elif kind[r] == Kind.MASK:
                    try:
                        shape[r] = rle_encode(polygon_to_mask(rel, rec.width, rec.height))
                    except InvalidInput as exc:
                        raise InvalidInput(exc.reason, where) from None
            box[r] = shape_box(int(kind[r]), shape[r], rec, where)
        return Annotations(
            image=image,
            kind=kind,
            label=np.array(self.label, dtype=np.int64),
            box=box,
            confidence=np.array(self.conf, dtype=np.float32),
            shape=shape,
            data=data_from_extras(((r, e) for r, e in enumerate(self.extra) if e), n),
        )


_KIND_NAMES = {k.label: k for k in Kind}
_ALLOWED = {
    "Point": (Kind.POINT,),
    "MultiPoint": (Kind.POINT,),
    "LineString": (Kind.LINE,),
    "MultiLineString": (Kind.LINE,),
    "Polygon": (Kind.POLYGON, Kind.BBOX, Kind.MASK),
    "MultiPolygon": (Kind.POLYGON, Kind.BBOX, Kind.MASK),
}


def _kind(value: Any, where: str) -> Kind:
    found = _KIND_NAMES.get(value) if type(value) is str else None
    if found is not None:
        return found
    try:
        return Kind.parse(value) if isinstance(value, str) else Kind.parse(str(value))
    except InvalidInput as exc:
        raise InvalidInput(exc.reason, where) from None


def _position(value: Any, where: str) -> list[float]:
    """An (x, y) position; a third value (elevation) is ignored as GeoJSON allows."""
    if not isinstance(value, list) or len(value) < 2:
        raise InvalidInput(f"a position must be [x, y], got {value!r}", where)
    return [number(value[0], where), number(value[1], where)]


def _positions(value: Any, where: str) -> np.ndarray:
    """(k, 2) float pixel array from a list of positions."""
    if not isinstance(value, list):
        raise InvalidInput(f"expected a list of positions, got {type(value).__name__}", where)
    try:
        arr = np.array(value)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.dtype.kind not in "iuf" or arr.ndim != 2 or arr.shape[1] < 2:
        for k, pos in enumerate(value):
            _position(pos, f"{where}[{k}]")
        raise InvalidInput("positions must all have the same length", where)
    arr = arr[:, :2].astype(np.float64)
    if not np.isfinite(arr).all():
        raise InvalidInput("coordinates must be finite numbers", where)
    return arr


def _rings(value: Any, where: str) -> list[np.ndarray]:
    """A polygon's rings as (k, 2) pixel arrays without the closing position."""
    if not isinstance(value, list) or not value:
        raise InvalidInput("a polygon must be a non-empty list of rings", where)
    rings = []
    for q, ring in enumerate(value):
        arr = _positions(ring, f"{where}[{q}]")
        if len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
            arr = arr[:-1]
        rings.append(arr)
    return rings


def load_geojson(path: Any, *, images_root: Any = None, repair: bool = True) -> Dataset:
    """Read a pixel-space GeoJSON FeatureCollection (see the module docstring).

    ``images_root`` is where image sizes are read when features lack ``image_width`` /
    ``image_height``. ``repair`` fixes invalid polygons instead of refusing them. Errors name
    the file and the feature (``"shapes.geojson: features[3].geometry.coordinates[0]"``).
    """
    from annoloop.storage import Location

    loc = Location.parse(path)
    name = loc.name or str(loc)
    doc = read_json_document(loc, name)
    if not isinstance(doc, dict):
        raise InvalidInput(f"GeoJSON must be an object, got {type(doc).__name__}", name)
    if doc.get("type") == "Feature":
        features: Any = [doc]
    elif doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise InvalidInput("features must be a list", f"{name}: features")
    else:
        raise InvalidInput(
            f"expected a FeatureCollection or a Feature, got type {doc.get('type')!r}", name
        )
    reader = _Reader(name, images_root, repair)
    reader.read_registry(doc.get(_FOREIGN_KEY))
    for i, feature in enumerate(features):
        reader.add(i, feature)
    images = reader.images()
    ann = reader.annotations(images)
    feature_of = reader.feature
    fields = {int(Kind.POINT): ".geometry.coordinates", int(Kind.LABEL): ".properties"}
    check_rows(
        ann,
        images,
        lambda r: reader.where(feature_of[r], fields.get(int(ann.kind[r]), ".geometry")),
    )
    return Dataset(images=images, labels=reader.labels.names, annotations=ann)


# -- writing ----------------------------------------------------------------------------
def _closed(ring: np.ndarray) -> list[list[float]]:
    pts = ring.tolist()
    if pts and pts[0] != pts[-1]:
        pts.append(pts[0])
    return pts


def _polygon_geometry(polygons: list, scale: np.ndarray) -> dict[str, Any]:
    parts = [
        [_closed(pixels(np.asarray(ring) * scale)) for ring in polygon] for polygon in polygons
    ]
    if len(parts) == 1:
        return {"type": "Polygon", "coordinates": parts[0]}
    return {"type": "MultiPolygon", "coordinates": parts}


def save_geojson(dataset: Dataset, path: Any, *, indent: int | None = None) -> ExportReport:
    """Write ``dataset`` as a pixel-space GeoJSON FeatureCollection (atomically).

    Every kind fits (see the module docstring); ``dropped`` counts only ``mask_empty`` (a mask
    with no pixels has no outline), ``data:KEY`` (a value JSON cannot hold, or a data column
    whose name is a reserved property).
    """
    from annoloop.storage import Location

    loc = Location.parse(path)
    report = ExportReport(path=str(loc), images=len(dataset.images))
    ann = dataset.annotations
    n = len(ann)
    sizes = dataset.sizes().astype(np.float64)
    wh = sizes[ann.image] if n else np.zeros((0, 2))
    xyxy = pixels(to_pixels(cxcywh_to_xyxy(ann.box), wh[:, 0], wh[:, 1])) if n else np.zeros((0, 4))
    xyxy_list = xyxy.tolist()
    keys, values, dropped = data_rows(ann)
    for reason, count in dropped.items():
        report.drop(reason, count)
    clashing = [k for k in keys if k in RESERVED]
    for key in clashing:
        report.drop(f"data:{key}", n)
    keep = [(k, v) for k, v in zip(keys, values, strict=True) if k not in RESERVED]
    conf = confidences(ann.confidence).tolist()
    kinds = ann.kind.tolist()
    labels = ann.label.tolist()
    images_idx = ann.image.tolist()
    features = []
    for i in range(n):
        rec = dataset.images[images_idx[i]]
        k = kinds[i]
        scale = wh[i]
        geometry: dict[str, Any] | None
        if k == Kind.LABEL:
            geometry = None
        elif k == Kind.POINT:
            geometry = {"type": "Point", "coordinates": xyxy_list[i][:2]}
        elif k == Kind.BBOX:
            x0, y0, x1, y1 = xyxy_list[i]
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
            geometry = {"type": "Polygon", "coordinates": [ring]}
        elif k == Kind.LINE:
            geometry = {"type": "LineString", "coordinates": pixels(ann.shape[i] * scale).tolist()}
        elif k == Kind.POLYGON:
            geometry = _polygon_geometry(ann.shape[i], scale)
        else:
            outline = mask_to_polygon(rle_decode(ann.shape[i]), tolerance=0)
            if not outline:
                report.drop("mask_empty")
                continue
            geometry = _polygon_geometry(outline, scale)
        props: dict[str, Any] = {
            "image": rec.file_name,
            "image_width": int(rec.width),
            "image_height": int(rec.height),
            "label": dataset.labels[labels[i]] if labels[i] >= 0 else None,
            "kind": Kind(k).label,
        }
        if conf[i] == conf[i]:  # not NaN
            props["confidence"] = conf[i]
        for key, column in keep:
            if column[i] is not None:
                props[key] = column[i]
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    registry = {
        "images": [
            {"file_name": r.file_name, "width": int(r.width), "height": int(r.height)}
            for r in dataset.images
        ],
        "labels": list(dataset.labels),
    }
    doc = {"type": "FeatureCollection", _FOREIGN_KEY: registry, "features": features}
    text = json.dumps(doc, indent=indent, separators=None if indent else (",", ":"))
    loc.write_text(text)
    report.annotations = len(features)
    return report
