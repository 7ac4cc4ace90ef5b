"""COCO instances JSON: boxes, polygons, RLE masks, points and image labels.

Reading (``load_coco``) and writing (``save_coco``) follow these choices:

- **images**: ``id``, ``file_name``, ``width``, ``height``. The COCO id is kept in
  ``ImageRecord.meta["coco_id"]`` and other keys (``license``, ``coco_url`` ...) in ``meta``
  as they are; a saver reuses the ids when they are unique integers, else numbers images 1..n.
  A missing width/height is read from the image header under ``images_root``.
- **categories**: ``id``, ``name`` (-> ``Dataset.labels``, in file order), ``supercategory``,
  ``keypoints``. The category list is kept as the dataset's ``meta["coco"]["categories"]`` so
  that saving again reuses the ids; without it labels get ids 1..n in label order.
- **boxes**: ``bbox`` = top-left x, y, width, height in pixels; no ``segmentation``.
- **polygons**: ``segmentation`` as a list of flat ``[x1, y1, x2, y2, ...]`` lists, one per
  part (COCO has no holes). A polygon with holes is written as an RLE mask instead and counted
  in the report as ``dropped["polygon_hole->rle"]`` (it reads back as a mask).
- **masks**: ``segmentation`` as RLE ``{"size": [h, w], "counts": ...}``; compressed string
  counts are written; uncompressed list counts (``iscrowd: 1``) are read too. ``iscrowd``
  round-trips through ``data["iscrowd"]`` when a file has crowd regions.
- **points**: a COCO keypoint annotation with one keypoint ``[x, y, 2]``, ``num_keypoints: 1``
  and ``bbox: [x, y, 0, 0]``, on a category whose ``keypoints`` is ``["point"]``. Keypoints of
  other categories (e.g. COCO person skeletons) are not read; their box or segmentation is.
- **image labels**: an annotation with only ``id``, ``image_id`` and ``category_id`` (no bbox,
  no segmentation, no keypoints).
- **confidence** <-> ``score``. **lines** cannot be COCO: they are dropped (``dropped["line"]``).
- **extra data** (source, author, track_id, ...) round-trips under an ``"annoloop"`` object in
  each annotation.

The stored box of a polygon or mask is the bounding box of its geometry (not the file's
``bbox``). ``load_coco_results`` reads a detection results list (``[{image_id, category_id,
bbox, score}]``, optionally with an RLE ``segmentation``) against a dataset.
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
    get_meta,
    json_value,
    pixels,
    positive_int,
    read_json_document,
    set_meta,
    shape_box,
    size_from_image,
)
from annoloop.formats._common import check_file_name
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import cxcywh_to_xywh, to_pixels, to_relative, xywh_to_cxcywh
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import (
    polygon_to_mask,
    rle_area,
    rle_bbox,
    rle_encode,
    rle_from_uncompressed,
)
from annoloop.geometry.polygons import flat_to_ring, polygon_area, polygon_bbox

POINT_KEYPOINTS = ["point"]  # the category keypoints that mark point annotations
_ANNOLOOP_KEY = "annoloop"
_BOX, _POINT, _LABEL, _SHAPE = int(Kind.BBOX), int(Kind.POINT), int(Kind.LABEL), -1


def _is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


# -- reading ----------------------------------------------------------------------------
def _read_images(doc: dict, name: str, images_root: Any) -> tuple[list[ImageRecord], dict]:
    raw = doc.get("images")
    if not isinstance(raw, list):
        raise InvalidInput(f"'images' must be a list, got {type(raw).__name__}", f"{name}: images")
    images: list[ImageRecord] = []
    index: dict[Any, int] = {}
    names: dict[str, int] = {}
    for i, rec in enumerate(raw):
        where = f"{name}: images[{i}]"
        if not isinstance(rec, dict):
            raise InvalidInput(f"an image must be an object, got {type(rec).__name__}", where)
        iid = rec.get("id")
        if not _is_id(iid):
            raise InvalidInput(f"image id must be an integer or string, got {iid!r}", where + ".id")
        if iid in index:
            raise InvalidInput(f"image id {iid!r} is used twice", where + ".id")
        file_name = check_file_name(rec.get("file_name"), where + ".file_name")
        if file_name in names:
            raise InvalidInput(
                f"file name {file_name!r} is used by images[{names[file_name]}] too",
                where + ".file_name",
            )
        if rec.get("width") is None or rec.get("height") is None:
            width, height = size_from_image(images_root, file_name, where + ".width")
        else:
            width = positive_int(rec["width"], where + ".width")
            height = positive_int(rec["height"], where + ".height")
        meta = {k: v for k, v in rec.items() if k not in ("id", "file_name", "width", "height")}
        meta["coco_id"] = iid
        index[iid] = len(images)
        names[file_name] = i
        images.append(ImageRecord(file_name, width, height, meta))
    return images, index


def _read_categories(doc: dict, name: str) -> tuple[list[str], dict, set, list[dict]]:
    raw = doc.get("categories")
    if not isinstance(raw, list):
        raise InvalidInput(
            f"'categories' must be a list, got {type(raw).__name__}", f"{name}: categories"
        )
    labels: list[str] = []
    index: dict[Any, int] = {}
    point_ids: set = set()
    kept: list[dict] = []
    for j, cat in enumerate(raw):
        where = f"{name}: categories[{j}]"
        if not isinstance(cat, dict):
            raise InvalidInput(f"a category must be an object, got {type(cat).__name__}", where)
        cid = cat.get("id")
        if not _is_id(cid):
            raise InvalidInput(f"category id must be an integer, got {cid!r}", where + ".id")
        if cid in index:
            raise InvalidInput(f"category id {cid!r} is used twice", where + ".id")
        label = cat.get("name")
        if not isinstance(label, str) or not label:
            raise InvalidInput(f"category name must be a non-empty string, got {label!r}", where)
        if label in labels:
            raise InvalidInput(f"category name {label!r} is used twice", where + ".name")
        if cat.get("keypoints") == POINT_KEYPOINTS:
            point_ids.add(cid)
        index[cid] = len(labels)
        labels.append(label)
        kept.append({k: v for k, v in cat.items()})
    return labels, index, point_ids, kept


def _lookup(index: dict, value: Any, what: str, where: str) -> int:
    """Position of ``value`` in ``index`` or InvalidInput (unknown, unhashable, bool)."""
    try:
        found = index.get(value) if type(value) is not bool else None
    except TypeError:
        found = None
    if found is None:
        raise InvalidInput(f"unknown {what} {value!r}", where)
    return found


def _map_ids(values: list, index: dict, name: str, field: str) -> np.ndarray:
    """Positions of the referenced ids; an unknown, unhashable or boolean id names its record."""
    get = index.get
    try:
        found = np.array([get(v, -1) for v in values], dtype=np.int64)
    except TypeError:  # an unhashable id (a list, an object)
        found = None
    bad: list[int] = []
    if found is None or (found < 0).any() or any(type(v) is bool for v in values):
        bad = [i for i, v in enumerate(values) if type(v) is bool or not _known(index, v)]
    if bad:
        i = bad[0]
        raise InvalidInput(f"unknown {field} {values[i]!r}", f"{name}: annotations[{i}].{field}")
    return found if found is not None else np.zeros(0, dtype=np.int64)


def _known(index: dict, value: Any) -> bool:
    try:
        return value in index
    except TypeError:
        return False


def _floats(values: list, rows: list[int], width: int, name: str, field: str) -> np.ndarray:
    """(m, width) float array from lists of numbers; errors name the first bad annotation."""
    try:
        arr = np.array(values)
        # inferred first: strings, booleans and None must not pass as numbers
        if arr.dtype.kind in "iuf" and arr.shape == (len(values), width):
            return arr.astype(np.float64)
    except (TypeError, ValueError):
        pass
    for r, v in zip(rows, values, strict=True):
        ok = isinstance(v, (list, tuple)) and len(v) == width
        ok = ok and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        if not ok:
            raise InvalidInput(
                f"{field} must be {width} numbers, got {v!r}", f"{name}: annotations[{r}].{field}"
            )
    raise InvalidInput(f"{field} values are malformed", f"{name}: annotations")  # unreachable


def _scores(raw: list, name: str, prefix: str = "annotations") -> np.ndarray:
    """Scores as float (NaN where absent); a non-number names its record."""
    values = [a.get("score") for a in raw]
    number_types = (int, float)
    for i, v in enumerate(values):
        if v is not None and type(v) not in number_types:
            raise InvalidInput(f"score must be a number, got {v!r}", f"{name}: {prefix}[{i}].score")
    return np.array(values, dtype=np.float64)


def _segmentation(seg: Any, w: int, h: int, where: str) -> tuple[int, Any]:
    """(kind, relative shape) of a COCO segmentation."""
    if isinstance(seg, list):
        scale = np.array([w, h], dtype=np.float64)
        polygons = []
        for p, part in enumerate(seg):
            try:
                ring = flat_to_ring(part)
            except InvalidInput as exc:
                raise InvalidInput(exc.reason, f"{where}[{p}]") from None
            polygons.append([ring / scale])
        return int(Kind.POLYGON), polygons
    if isinstance(seg, dict):
        counts = seg.get("counts")
        if isinstance(counts, list):
            try:
                return int(Kind.MASK), rle_from_uncompressed(seg)
            except InvalidInput as exc:
                raise InvalidInput(exc.reason, where) from None
        if isinstance(counts, str) and isinstance(seg.get("size"), list):
            return int(Kind.MASK), {"size": list(seg["size"]), "counts": counts}
        raise InvalidInput("RLE segmentation must have size [h, w] and counts", where)
    raise InvalidInput(
        f"segmentation must be a list of polygons or an RLE object, got {type(seg).__name__}",
        where,
    )


def _read_annotations(
    doc: dict,
    name: str,
    images: list[ImageRecord],
    image_index: dict,
    cat_index: dict,
    point_ids: set,
) -> Annotations:
    raw = doc.get("annotations", [])
    if not isinstance(raw, list):
        raise InvalidInput(
            f"'annotations' must be a list, got {type(raw).__name__}", f"{name}: annotations"
        )
    n = len(raw)
    # one pass per field: list comprehensions run several times faster than one loop doing all
    not_dict = [i for i, a in enumerate(raw) if type(a) is not dict]
    if not_dict:
        i = not_dict[0]
        raise InvalidInput(
            f"an annotation must be an object, got {type(raw[i]).__name__}",
            f"{name}: annotations[{i}]",
        )
    image = _map_ids([a.get("image_id") for a in raw], image_index, name, "image_id")
    label = _map_ids([a.get("category_id") for a in raw], cat_index, name, "category_id")
    has_seg = np.fromiter((bool(a.get("segmentation")) for a in raw), dtype=bool, count=n)
    has_box = np.fromiter((a.get("bbox") is not None for a in raw), dtype=bool, count=n)
    is_point = np.zeros(n, dtype=bool)
    if point_ids:
        point_labels = [cat_index[c] for c in point_ids]
        has_kp = np.fromiter(("keypoints" in a for a in raw), dtype=bool, count=n)
        is_point = ~has_seg & has_kp & np.isin(label, point_labels)
    is_box = ~has_seg & ~is_point & has_box
    kind = np.full(n, _LABEL, dtype=np.int8)
    kind[is_box] = _BOX
    kind[is_point] = _POINT
    kind[has_seg] = _SHAPE
    box = np.full((n, 4), np.nan)
    shape = np.empty(n, dtype=object)
    box_rows = np.flatnonzero(is_box).tolist()
    box_values = [raw[i]["bbox"] for i in box_rows]
    point_rows = np.flatnonzero(is_point).tolist()
    point_values = [raw[i]["keypoints"] for i in point_rows]
    shape_rows = np.flatnonzero(has_seg).tolist()
    crowd_rows = [i for i, a in enumerate(raw) if a.get("iscrowd")]
    extras = [(i, a[_ANNOLOOP_KEY]) for i, a in enumerate(raw) if _ANNOLOOP_KEY in a]
    for i, extra in extras:
        if not isinstance(extra, dict):
            raise InvalidInput(
                f"must be an object, got {type(extra).__name__}",
                f"{name}: annotations[{i}].{_ANNOLOOP_KEY}",
            )

    sizes = np.array([[r.width, r.height] for r in images], dtype=np.float64).reshape(-1, 2)
    if box_rows:
        rows = np.array(box_rows)
        xywh = _floats(box_values, box_rows, 4, name, "bbox")
        wh = sizes[image[rows]]
        box[rows] = to_relative(xywh_to_cxcywh(xywh), wh[:, 0], wh[:, 1])
    if point_rows:
        rows = np.array(point_rows)
        kp = _floats(point_values, point_rows, 3, name, "keypoints")
        hidden = np.flatnonzero(kp[:, 2] == 0)
        if hidden.size:
            r = point_rows[int(hidden[0])]
            raise InvalidInput(
                "the point's keypoint is not labelled (visibility 0)",
                f"{name}: annotations[{r}].keypoints",
            )
        wh = sizes[image[rows]]
        box[rows, :2] = to_relative(kp[:, :2], wh[:, 0], wh[:, 1])
        box[rows, 2:] = 0.0
    for i in shape_rows:
        rec = images[image[i]]
        where = f"{name}: annotations[{i}].segmentation"
        kind[i], shape[i] = _segmentation(raw[i]["segmentation"], rec.width, rec.height, where)
        box[i] = shape_box(int(kind[i]), shape[i], rec, where)
    confidence = _scores(raw, name)

    data = data_from_extras(extras, n)
    if crowd_rows:
        crowd = np.zeros(n, dtype=bool)
        crowd[crowd_rows] = True
        data["iscrowd"] = crowd

    ann = Annotations(
        image=image, kind=kind, label=label, box=box, confidence=confidence, shape=shape, data=data
    )
    fields = {_BOX: "bbox", _POINT: "keypoints", _LABEL: "category_id"}
    check_rows(
        ann,
        images,
        lambda r: f"{name}: annotations[{r}].{fields.get(int(kind[r]), 'segmentation')}",
    )
    return ann


def load_coco(path: Any, *, images_root: Any = None) -> Dataset:
    """Read a COCO instances JSON file (see the module docstring for what maps to what).

    ``path`` is a path, URL or Location. ``images_root`` is where images are looked up when
    an image record has no width or height. Malformed input raises InvalidInput naming the
    file and the record (``"instances.json: annotations[12].category_id"``).
    """
    from annoloop.storage import Location

    loc = Location.parse(path)
    name = loc.name or str(loc)
    doc = read_json_document(loc, name)
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"a COCO file must be a JSON object with images, categories and annotations, "
            f"got {type(doc).__name__}",
            name,
        )
    images, image_index = _read_images(doc, name, images_root)
    labels, cat_index, point_ids, categories = _read_categories(doc, name)
    ann = _read_annotations(doc, name, images, image_index, cat_index, point_ids)
    dataset = Dataset(images=images, labels=labels, annotations=ann)
    coco_meta = {"categories": categories}
    for key in ("info", "licenses"):
        if key in doc:
            coco_meta[key] = doc[key]
    set_meta(dataset, "coco", coco_meta)
    return dataset


# -- writing ----------------------------------------------------------------------------
def image_ids(dataset: Dataset) -> list[Any]:
    """The COCO image id of each image: ``meta["coco_id"]`` when those are unique integers,
    else 1..n."""
    ids = [rec.meta.get("coco_id") for rec in dataset.images]
    usable = all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    if usable and len(set(ids)) == len(ids):
        return ids
    return list(range(1, len(dataset.images) + 1))


def categories(dataset: Dataset) -> list[dict[str, Any]]:
    """The COCO categories of the dataset's labels, in label order.

    Ids and extra keys come from the categories the dataset was read with (when it was read
    from COCO); other labels get fresh ids after the largest one (1..n without any).
    """
    known = {}
    for cat in (get_meta(dataset, "coco") or {}).get("categories", []) or []:
        if isinstance(cat, dict) and isinstance(cat.get("name"), str):
            known[cat["name"]] = cat
    used_ids = {c.get("id") for c in known.values() if c.get("name") in dataset.labels}
    ints = [i for i in used_ids if isinstance(i, int) and not isinstance(i, bool)]
    next_id = max(ints, default=0) + 1
    out = []
    seen: set = set()
    for label in dataset.labels:
        cat = dict(known.get(label, {}))
        cid = cat.get("id")
        if not _is_id(cid) or cid in seen:
            cid = next_id
            next_id += 1
        seen.add(cid)
        cat.update({"id": cid, "name": label})
        cat.setdefault("supercategory", "")
        out.append(cat)
    return out


def save_coco(dataset: Dataset, path: Any, *, indent: int | None = None) -> ExportReport:
    """Write ``dataset`` as one COCO instances JSON file (atomically).

    Returns an ExportReport; ``dropped`` counts what COCO cannot hold: ``line``,
    ``no_label`` (a shape without a label), ``polygon_hole->rle`` (written as masks),
    ``data:KEY`` (values that are not JSON).
    """
    from annoloop.storage import Location

    loc = Location.parse(path)
    report = ExportReport(path=str(loc), images=len(dataset.images))
    ann = dataset.annotations
    img_ids = image_ids(dataset)
    cats = categories(dataset)
    point_labels = set(ann.label[ann.kind == int(Kind.POINT)].tolist())
    for j in point_labels:
        if j >= 0:
            cats[j]["keypoints"] = list(POINT_KEYPOINTS)
            cats[j].setdefault("skeleton", [])

    images_json = []
    for rec, iid in zip(dataset.images, img_ids, strict=True):
        item: dict[str, Any] = {"id": iid, "file_name": rec.file_name}
        item["width"], item["height"] = int(rec.width), int(rec.height)
        for key, value in rec.meta.items():
            if key in ("coco_id", "id", "file_name", "width", "height"):
                continue
            try:
                item[key] = json_value(value)
            except TypeError:
                report.drop("image_meta")
        images_json.append(item)

    out = _annotations_json(dataset, img_ids, [c["id"] for c in cats], report)
    doc: dict[str, Any] = {}
    meta = get_meta(dataset, "coco") or {}
    if "info" in meta:
        doc["info"] = meta["info"]
    if "licenses" in meta:
        doc["licenses"] = meta["licenses"]
    doc.update(images=images_json, categories=cats, annotations=out)
    text = json.dumps(doc, indent=indent, separators=None if indent else (",", ":"))
    loc.write_text(text)
    report.annotations = len(out)
    return report


def _annotations_json(
    dataset: Dataset, img_ids: list[Any], cat_ids: list[Any], report: ExportReport
) -> list[dict[str, Any]]:
    """COCO annotation objects, built kind by kind in bulk (boxes dominate big datasets)."""
    ann = dataset.annotations
    no_label = ann.label < 0
    is_line = ann.kind == int(Kind.LINE)
    report.drop("no_label", int(no_label.sum()))
    report.drop("line", int((is_line & ~no_label).sum()))
    rows = np.flatnonzero(~no_label & ~is_line)
    m = len(rows)
    if not m:
        return []
    kind = ann.kind[rows]
    sizes = dataset.sizes().astype(np.float64)
    wh = sizes[ann.image[rows]]
    pix = pixels(to_pixels(cxcywh_to_xywh(ann.box[rows]), wh[:, 0], wh[:, 1]))
    image_col = np.array(img_ids, dtype=object)[ann.image[rows]].tolist()
    cat_col = np.array(cat_ids, dtype=object)[ann.label[rows]].tolist()
    out = [
        {"id": k, "image_id": im, "category_id": c}
        for k, im, c in zip(range(1, m + 1), image_col, cat_col, strict=True)
    ]

    sel = np.flatnonzero(kind == int(Kind.BBOX))
    area = (pix[sel, 2] * pix[sel, 3]).tolist()
    for k, b, a in zip(sel.tolist(), pix[sel].tolist(), area, strict=True):
        d = out[k]
        d["bbox"] = b
        d["area"] = a
        d["iscrowd"] = 0
    sel = np.flatnonzero(kind == int(Kind.POINT))
    for k, (x, y) in zip(sel.tolist(), pix[sel, :2].tolist(), strict=True):
        out[k].update(bbox=[x, y, 0.0, 0.0], area=0.0, iscrowd=0, keypoints=[x, y, 2])
        out[k]["num_keypoints"] = 1
    for k in np.flatnonzero(kind == int(Kind.POLYGON)).tolist():
        polygons = ann.shape[rows[k]]
        w, h = wh[k]
        if any(len(p) > 1 for p in polygons):
            report.drop("polygon_hole->rle")
            out[k].update(_mask_fields(rle_encode(polygon_to_mask(polygons, int(w), int(h)))))
            continue
        scale = np.array([w, h])
        out[k]["segmentation"] = [
            pixels(np.asarray(p[0]) * scale).reshape(-1).tolist() for p in polygons
        ]
        bx = cxcywh_to_xywh(polygon_bbox(polygons)) * np.array([w, h, w, h])
        out[k].update(bbox=pixels(bx).tolist(), area=polygon_area(polygons, w, h), iscrowd=0)
    for k in np.flatnonzero(kind == int(Kind.MASK)).tolist():
        out[k].update(_mask_fields(ann.shape[rows[k]]))

    crowd = ann.data.get("iscrowd")
    if crowd is not None:
        shaped = np.isin(kind, [int(Kind.BBOX), int(Kind.POLYGON), int(Kind.MASK)])
        for k in np.flatnonzero(shaped & crowd[rows].astype(bool)).tolist():
            out[k]["iscrowd"] = 1
    conf = confidences(ann.confidence[rows])
    scored = np.flatnonzero(~np.isnan(conf))
    for k, score in zip(scored.tolist(), conf[scored].tolist(), strict=True):
        out[k]["score"] = score
    keys, values, dropped = data_rows(ann[rows], skip=("iscrowd",))
    for reason, count in dropped.items():
        report.drop(reason, count)
    for key, column in zip(keys, values, strict=True):
        for k, value in enumerate(column):
            if value is not None:
                out[k].setdefault(_ANNOLOOP_KEY, {})[key] = value
    return out


def _mask_fields(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if not isinstance(counts, str):
        rle = rle_from_uncompressed(rle) if isinstance(counts, list) else rle
        counts = rle["counts"]
        counts = counts if isinstance(counts, str) else bytes(counts).decode("ascii")
    return {
        "segmentation": {"size": [int(v) for v in rle["size"]], "counts": counts},
        "bbox": rle_bbox(rle).tolist(),
        "area": rle_area(rle),
        "iscrowd": 0,
    }


# -- detection results ------------------------------------------------------------------
def load_coco_results(path: Any, dataset: Dataset) -> Annotations:
    """Read a COCO results list (``[{image_id, category_id, bbox, score}, ...]``).

    Ids are matched the way :func:`save_coco` writes them for ``dataset`` (its COCO image
    ids and category ids). Returns boxes (or masks, for results with an RLE
    ``segmentation``) whose ``image`` indexes ``dataset.images`` and ``label`` indexes
    ``dataset.labels``, with ``confidence`` = score. Unknown ids raise InvalidInput naming
    the entry.
    """
    from annoloop.storage import Location

    loc = Location.parse(path)
    name = loc.name or str(loc)
    raw = read_json_document(loc, name)
    if not isinstance(raw, list):
        raise InvalidInput(
            f"a COCO results file must be a JSON list, got {type(raw).__name__}", name
        )
    img_index = {iid: i for i, iid in enumerate(image_ids(dataset))}
    cat_index = {c["id"]: j for j, c in enumerate(categories(dataset))}
    n = len(raw)
    image = np.empty(n, dtype=np.int64)
    label = np.empty(n, dtype=np.int64)
    kind = np.full(n, int(Kind.BBOX), dtype=np.int8)
    shape = np.empty(n, dtype=object)
    bboxes: list[Any] = []
    seg_rows: list[int] = []
    for i, r in enumerate(raw):
        where = f"{name}: [{i}]"
        if type(r) is not dict:
            raise InvalidInput(f"a result must be an object, got {type(r).__name__}", where)
        image[i] = _lookup(img_index, r.get("image_id"), "image_id", where + ".image_id")
        label[i] = _lookup(cat_index, r.get("category_id"), "category_id", where + ".category_id")
        if isinstance(r.get("segmentation"), dict):
            seg_rows.append(i)
            bboxes.append([0, 0, 0, 0])
        else:
            bboxes.append(r.get("bbox"))
    try:
        xywh = np.array(bboxes, dtype=np.float64).reshape(n, 4)
    except (TypeError, ValueError):
        for i, b in enumerate(bboxes):
            try:
                np.array(b, dtype=np.float64).reshape(4)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"bbox must be 4 numbers, got {b!r}", f"{name}: [{i}].bbox"
                ) from None
        raise
    score = _scores(raw, name, prefix="")
    sizes = dataset.sizes().astype(np.float64)
    wh = sizes[image] if n else np.zeros((0, 2))
    box = to_relative(xywh_to_cxcywh(xywh), wh[:, 0], wh[:, 1]) if n else np.zeros((0, 4))
    for i in seg_rows:
        rec = dataset.images[image[i]]
        where = f"{name}: [{i}].segmentation"
        kind[i], shape[i] = _segmentation(raw[i]["segmentation"], rec.width, rec.height, where)
        box[i] = shape_box(int(kind[i]), shape[i], rec, where)
    ann = Annotations(
        image=image,
        kind=kind,
        label=label,
        box=box,
        confidence=score,
        shape=shape,
        label_names=dataset.labels,
    )
    check_rows(ann, dataset.images, lambda r: f"{name}: [{r}]")
    return ann
