"""Checked COCO inputs for :func:`~annoloop.metrics.coco.coco_detection`.

Ground truth and detections arrive as COCO dicts and lists, JSON files, annoloop
:class:`~annoloop.formats.dataset.Dataset` objects or (detections) an
:class:`~annoloop.geometry.annotations.Annotations` struct aligned with a ground-truth Dataset.
Everything is checked and rebuilt into fresh, minimal COCO records so that the evaluators never
see (or mutate) the caller's objects, and so that a hostile file fails here with a message that
names the record (``gt.annotations[12].bbox``) instead of deep inside pycocotools:

- ids are integers (``true`` is not an id), bboxes four finite numbers with non-negative width
  and height, scores finite, areas finite and non-negative, ``iscrowd`` 0 or 1;
- every annotation and detection names a known image and category (a detection of a category
  that is not in the ground truth is an error, not silently skipped);
- polygons are lists of rings of at least 3 points (6 numbers); RLEs are checked by
  :func:`annoloop.geometry.masks.rle_counts` and must have their image's size.

Ground-truth annotation ids are renumbered 1..n: COCOeval uses id 0 as "unmatched". A missing
``area`` is filled in (box area for boxes, mask area for masks). For ``segm`` evaluation a
detection's ``bbox`` is dropped so that its area is its mask's (pycocotools takes the box area
when a result has a bbox); polygon and uncompressed-RLE detections become compressed RLEs.

Conversion from annoloop geometry: a ``bbox`` row is its box (and, for ``segm``, the box's
rectangle); a ``polygon`` row its rings in pixels (a polygon with holes is rasterised at pixel
centres into an RLE, since COCO polygons cannot hold holes); a ``mask`` row its RLE. Points,
lines and image labels have no area and are left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.formats.dataset import Dataset
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

IOU_TYPES = ("bbox", "segm")
_MISSING = object()
# Larger images than this (per side) are refused: no camera makes them, a hostile file might.
MAX_SIDE = 1 << 20


# -- reading -------------------------------------------------------------------------------
def read_json(path: str | PathLike, where: str) -> Any:
    """Parse a JSON file; unreadable, truncated or absurdly nested files raise InvalidInput."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InvalidInput("file not found", f"{where} {p}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"not valid JSON: {exc}", f"{where} {p}") from None
    except RecursionError:
        raise InvalidInput("JSON nested too deeply", f"{where} {p}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc}", f"{where} {p}") from None


# -- field extraction with located errors ---------------------------------------------------
def _records(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"must be a list, got {type(value).__name__}", where)
    return value


def _field(records: list[Any], key: str, where: str, default: Any = _MISSING) -> list[Any]:
    """``[r[key] for r in records]``, naming the first record that is not an object or lacks it."""
    try:
        if default is _MISSING:
            return [r[key] for r in records]
        return [r.get(key, default) for r in records]
    except (KeyError, TypeError, AttributeError):
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise InvalidInput(
                    f"must be an object, got {type(r).__name__}", f"{where}[{i}]"
                ) from None
            if key not in r:
                raise InvalidInput(f"missing {key!r}", f"{where}[{i}]") from None
        raise


def _ints(values: list[Any], where: str, key: str) -> np.ndarray:
    """Integer ids as int64; ``true``, ``1.0``, ``"1"`` and out-of-range numbers are refused."""
    if not values:
        return np.zeros(0, np.int64)
    if not set(map(type, values)) <= {int}:
        for i, v in enumerate(values):
            if type(v) is not int and not isinstance(v, np.integer):
                raise InvalidInput(f"must be an integer, got {v!r:.80}", f"{where}[{i}].{key}")
    try:
        arr = np.array(values)
    except OverflowError:
        arr = np.array(values, dtype=object)
    if arr.dtype.kind != "i":  # object (beyond 64 bits) or uint64 (beyond int64)
        for i, v in enumerate(values):
            if not -(2**63) <= int(v) < 2**63:
                raise InvalidInput(f"integer {v} out of range", f"{where}[{i}].{key}")
    return arr.astype(np.int64)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _numbers(values: list[Any], width: int, where: str, key: str) -> np.ndarray:
    """(n, width) finite floats from rows of numbers, or the first bad row named."""
    n = len(values)
    if n == 0:
        return np.zeros((0, width)) if width else np.zeros(0)
    try:
        arr = np.array(values)
        shape_ok = arr.shape == ((n, width) if width else (n,))
        ok = shape_ok and arr.dtype.kind in "iuf"
    except (ValueError, TypeError):
        ok = False
    if not ok or any(type(v) is bool for v in (values if not width else ())):
        for i, v in enumerate(values):
            row = v if width else [v]
            if width and (not isinstance(v, (list, tuple)) or len(v) != width):
                raise InvalidInput(f"must be {width} numbers, got {v!r:.80}", f"{where}[{i}].{key}")
            if not all(_is_number(x) for x in row):
                raise InvalidInput(f"must be numbers, got {v!r:.80}", f"{where}[{i}].{key}")
        raise InvalidInput(f"must be numbers ({width or 1} per record)", f"{where}.{key}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) if arr.ndim == 1 else ~np.isfinite(arr).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(f"must be finite, got {values[i]!r}", f"{where}[{i}].{key}")
    return arr


def _lookup(
    ids: np.ndarray, known: np.ndarray, where: str, key: str, what: str, note: str = ""
) -> None:
    """Every entry of ``ids`` must be in ``known``."""
    missing = ~np.isin(ids, known)
    if missing.any():
        i = int(np.argmax(missing))
        raise InvalidInput(f"unknown {what} {int(ids[i])}{note}", f"{where}[{i}].{key}")


# -- segmentation ---------------------------------------------------------------------------
def _check_segmentation(
    segm: Any, size: tuple[int, int], where: str, mask_api: ModuleType, *, as_rle: bool
) -> Any:
    """A checked COCO segmentation; with ``as_rle`` polygons and list-RLEs become str RLEs."""
    from annoloop.geometry.masks import rle_counts

    if segm is _MISSING:
        raise InvalidInput("missing 'segmentation'", where.rsplit(".", 1)[0])
    h, w = size
    if isinstance(segm, dict):
        counts, rh, rw = rle_counts(segm, where)
        if (rh, rw) != (h, w):
            raise InvalidInput(f"RLE size {[rh, rw]} differs from the image's {[h, w]}", where)
        if isinstance(segm["counts"], list):
            rle = {"size": [h, w], "counts": [int(c) for c in counts]}
            return _compress(mask_api.frPyObjects(rle, h, w)) if as_rle else rle
        text = segm["counts"]
        return {"size": [h, w], "counts": text.decode() if isinstance(text, bytes) else text}
    if not isinstance(segm, list) or not segm:
        raise InvalidInput("segmentation must be a non-empty list of polygons or an RLE", where)
    rings = []
    for j, ring in enumerate(segm):
        if not isinstance(ring, list) or len(ring) < 6 or len(ring) % 2:
            raise InvalidInput(
                "each polygon must be a list of at least 3 x, y pairs", f"{where}[{j}]"
            )
        arr = _numbers(ring, 0, f"{where}[{j}]", "xy")
        rings.append(arr.tolist())
    if as_rle:
        return _compress(mask_api.merge(mask_api.frPyObjects(rings, h, w)))
    return rings


def _compress(rle: Any) -> dict[str, Any]:
    """A mask API's RLE (bytes counts) as a JSON-friendly dict with str counts."""
    if isinstance(rle, list):
        rle = rle[0]
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode() if isinstance(counts, bytes) else counts,
    }


# -- ground truth ---------------------------------------------------------------------------
def check_gt(data: Any, iou_type: str, mask_api: ModuleType, where: str = "gt") -> dict:
    """A fresh, checked COCO ground-truth dict with only what evaluation needs."""
    if not isinstance(data, dict):
        raise InvalidInput(f"COCO ground truth must be an object, got {type(data).__name__}", where)
    for key in ("images", "categories"):
        if key not in data:
            raise InvalidInput(f"missing {key!r}", where)
    images = _records(data["images"], f"{where}.images")
    categories = _records(data["categories"], f"{where}.categories")
    anns = _records(data.get("annotations", []), f"{where}.annotations")

    img_ids = _ints(_field(images, "id", f"{where}.images"), f"{where}.images", "id")
    _unique(img_ids, f"{where}.images", "id")
    need_size = iou_type == "segm"
    sizes = np.zeros((len(images), 2), np.int64)
    if need_size or all(isinstance(r, dict) and "width" in r for r in images):
        widths = _ints(_field(images, "width", f"{where}.images"), f"{where}.images", "width")
        heights = _ints(_field(images, "height", f"{where}.images"), f"{where}.images", "height")
        sizes = np.stack([widths, heights], axis=1) if len(images) else sizes
        bad = (sizes <= 0).any(axis=1) | (sizes > MAX_SIDE).any(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidInput(
                f"width and height must be 1..{MAX_SIDE}, got {sizes[i].tolist()}",
                f"{where}.images[{i}]",
            )
    cat_ids = _ints(_field(categories, "id", f"{where}.categories"), f"{where}.categories", "id")
    _unique(cat_ids, f"{where}.categories", "id")
    names = _field(categories, "name", f"{where}.categories", default=None)

    a_where = f"{where}.annotations"
    ann_img = _ints(_field(anns, "image_id", a_where), a_where, "image_id")
    ann_cat = _ints(_field(anns, "category_id", a_where), a_where, "category_id")
    _lookup(ann_img, img_ids, a_where, "image_id", "image id")
    _lookup(ann_cat, cat_ids, a_where, "category_id", "category id")
    crowd_raw = _field(anns, "iscrowd", a_where, default=0)
    crowd = _numbers(crowd_raw, 0, a_where, "iscrowd") if anns else np.zeros(0)
    if anns and not np.isin(crowd, (0, 1)).all():
        i = int(np.argmax(~np.isin(crowd, (0, 1))))
        raise InvalidInput(f"iscrowd must be 0 or 1, got {crowd_raw[i]!r}", f"{a_where}[{i}]")
    has_bbox = [isinstance(a, dict) and "bbox" in a for a in anns]
    if iou_type == "bbox" and not all(has_bbox):
        i = has_bbox.index(False)
        raise InvalidInput("missing 'bbox'", f"{a_where}[{i}]")
    boxes = np.zeros((len(anns), 4))
    if all(has_bbox):
        boxes = _numbers(_field(anns, "bbox", a_where), 4, a_where, "bbox")
        _check_box_sizes(boxes, a_where)
    area_given = [isinstance(a, dict) and "area" in a for a in anns]
    areas = np.full(len(anns), np.nan)
    if any(area_given):
        idx = [i for i, g in enumerate(area_given) if g]
        vals = _numbers([anns[i]["area"] for i in idx], 0, a_where, "area")
        if (vals < 0).any():
            k = int(np.argmax(vals < 0))
            raise InvalidInput(f"area must be >= 0, got {vals[k]}", f"{a_where}[{idx[k]}].area")
        areas[idx] = vals

    size_of = dict(zip(img_ids.tolist(), sizes[:, ::-1].tolist(), strict=True))  # id -> (h, w)
    box_rows = boxes.tolist()
    out_anns = [
        {"id": i + 1, "image_id": img, "category_id": cat, "iscrowd": int(c)}
        for i, (img, cat, c) in enumerate(
            zip(ann_img.tolist(), ann_cat.tolist(), crowd.tolist(), strict=True)
        )
    ]
    if iou_type == "bbox":
        # vectorised: box areas where none was given
        areas = np.where(np.isfinite(areas), areas, boxes[:, 2] * boxes[:, 3])
        for rec, box, area in zip(out_anns, box_rows, areas.tolist(), strict=True):
            rec["bbox"] = box
            rec["area"] = area
    else:
        for i, (a, rec) in enumerate(zip(anns, out_anns, strict=True)):
            h, w = size_of[rec["image_id"]]
            segm = _check_segmentation(
                a.get("segmentation", _MISSING) if isinstance(a, dict) else None,
                (h, w),
                f"{a_where}[{i}].segmentation",
                mask_api,
                as_rle=False,
            )
            rec["segmentation"] = segm
            rec["bbox"] = box_rows[i] if has_bbox[i] else _bbox(segm, h, w, mask_api)
            given = float(areas[i])
            rec["area"] = given if math.isfinite(given) else _area(segm, h, w, mask_api)
    return {
        "images": [
            {"id": int(i), "width": int(s[0]), "height": int(s[1])}
            for i, s in zip(img_ids.tolist(), sizes.tolist(), strict=True)
        ],
        "categories": [
            {"id": int(c), "name": str(n) if n is not None else str(c)}
            for c, n in zip(cat_ids.tolist(), names, strict=True)
        ],
        "annotations": out_anns,
    }


def _unique(ids: np.ndarray, where: str, key: str) -> None:
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = int(values[np.argmax(counts > 1)])
        positions = np.flatnonzero(ids == dup)[:2].tolist()
        raise InvalidInput(f"duplicate {key} {dup} (records {positions})", where)


def _check_box_sizes(boxes: np.ndarray, where: str) -> None:
    bad = (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(
            f"bbox width and height must be >= 0, got {boxes[i].tolist()}", f"{where}[{i}].bbox"
        )


def _as_rle(segm: Any, h: int, w: int, mask_api: ModuleType) -> Any:
    if isinstance(segm, dict):
        return mask_api.frPyObjects(segm, h, w) if isinstance(segm["counts"], list) else segm
    return mask_api.merge(mask_api.frPyObjects(segm, h, w))


def _area(segm: Any, h: int, w: int, mask_api: ModuleType) -> float:
    return float(np.asarray(mask_api.area(_as_rle(segm, h, w, mask_api))).reshape(-1)[0])


def _bbox(segm: Any, h: int, w: int, mask_api: ModuleType) -> list[float]:
    return (
        np.asarray(mask_api.toBbox(_as_rle(segm, h, w, mask_api)), float).reshape(-1)[:4].tolist()
    )


# -- detections -----------------------------------------------------------------------------
def check_dt(
    data: Any, gt: dict, iou_type: str, mask_api: ModuleType, where: str = "dt"
) -> list[dict]:
    """Fresh, checked COCO results (``image_id, category_id, score, bbox | segmentation``)."""
    if isinstance(data, dict):
        if "annotations" not in data:
            raise InvalidInput("a detections object needs an 'annotations' list", where)
        data = data["annotations"]
        where = f"{where}.annotations"
    dets = _records(data, where)
    img = _ints(_field(dets, "image_id", where), where, "image_id")
    cat = _ints(_field(dets, "category_id", where), where, "category_id")
    _lookup(img, np.array([r["id"] for r in gt["images"]], np.int64), where, "image_id", "image id")
    _lookup(
        cat,
        np.array([r["id"] for r in gt["categories"]], np.int64),
        where,
        "category_id",
        "category id",
        " (not in the ground truth's categories)",
    )
    scores = _numbers(_field(dets, "score", where), 0, where, "score")
    out: list[dict] = [
        {"image_id": i, "category_id": c, "score": s}
        for i, c, s in zip(img.tolist(), cat.tolist(), scores.tolist(), strict=True)
    ]
    if iou_type == "bbox":
        boxes = _numbers(_field(dets, "bbox", where), 4, where, "bbox")
        _check_box_sizes(boxes, where)
        for rec, box in zip(out, boxes.tolist(), strict=True):
            rec["bbox"] = box
    else:
        segms = _field(dets, "segmentation", where)
        size_of = {r["id"]: (r["height"], r["width"]) for r in gt["images"]}
        for i, (rec, segm) in enumerate(zip(out, segms, strict=True)):
            rec["segmentation"] = _check_segmentation(
                segm, size_of[rec["image_id"]], f"{where}[{i}].segmentation", mask_api, as_rle=True
            )
    return out


# -- annoloop datasets ----------------------------------------------------------------------
_AREA_KINDS = (int(Kind.BBOX), int(Kind.POLYGON), int(Kind.MASK))


def dataset_to_coco(dataset: Dataset, iou_type: str, where: str = "gt") -> dict:
    """COCO ground truth from a Dataset: image ``i`` gets id ``i + 1``, label ``j`` id ``j + 1``.

    ``annotations.data["iscrowd"]``, when present, marks crowd regions.
    """
    sizes = dataset.sizes()
    images = [
        {"id": i + 1, "file_name": rec.file_name, "width": int(w), "height": int(h)}
        for i, (rec, (w, h)) in enumerate(zip(dataset.images, sizes.tolist(), strict=True))
    ]
    categories = [{"id": j + 1, "name": name} for j, name in enumerate(dataset.labels)]
    records = annotations_to_records(
        dataset.annotations,
        sizes,
        np.arange(1, len(images) + 1),
        np.arange(1, len(categories) + 1),
        iou_type,
        role="gt",
        where=f"{where}.annotations",
    )
    return {"images": images, "categories": categories, "annotations": records}


def annotations_to_records(
    ann: Annotations,
    sizes: np.ndarray,
    image_ids: np.ndarray,
    category_ids: np.ndarray,
    iou_type: str,
    *,
    role: str,
    where: str,
) -> list[dict]:
    """COCO records for the box/polygon/mask rows of ``ann``; see the module docstring.

    ``ann.image`` indexes ``sizes`` (width, height) and ``image_ids``; ``ann.label`` indexes
    ``category_ids``. ``role="dt"`` adds ``score`` from ``confidence`` (which must be set).
    """
    from annoloop.geometry.boxes import cxcywh_to_xywh, to_pixels
    from annoloop.geometry.masks import rle_area
    from annoloop.geometry.polygons import as_shape, polygon_area

    rows = np.flatnonzero(np.isin(ann.kind, _AREA_KINDS))
    if len(ann) and (ann.image.min() < 0 or ann.image.max() >= len(sizes)):
        raise InvalidInput("annotation image index outside the image list", where)
    labels = ann.label[rows]
    if len(rows) and (labels.min() < 0 or labels.max() >= len(category_ids)):
        i = int(rows[np.argmax((labels < 0) | (labels >= len(category_ids)))])
        raise InvalidInput(f"label index {int(ann.label[i])} has no category", f"{where}[{i}]")
    img = ann.image[rows]
    wh = sizes[img].astype(np.float64)
    boxes = cxcywh_to_xywh(to_pixels(ann.box[rows], wh[:, 0], wh[:, 1]))
    bad = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if bad.any():
        i = int(rows[np.argmax(bad)])
        raise InvalidInput(f"box {ann.box[i].tolist()} is not a valid box", f"{where}[{i}]")
    if role == "dt":
        conf = ann.confidence[rows].astype(np.float64)
        if not np.isfinite(conf).all():
            i = int(rows[np.argmax(~np.isfinite(conf))])
            raise InvalidInput("a detection needs a finite confidence (score)", f"{where}[{i}]")
    crowd = ann.data.get("iscrowd")
    kinds = ann.kind[rows]
    out = []
    for k, i in enumerate(rows.tolist()):
        w, h = int(wh[k, 0]), int(wh[k, 1])
        x, y, bw, bh = boxes[k].tolist()
        rec: dict[str, Any] = {
            "image_id": int(image_ids[img[k]]),
            "category_id": int(category_ids[labels[k]]),
        }
        kind = int(kinds[k])
        segm: Any = None
        if kind == Kind.BBOX:
            area = bw * bh
            segm = [[x, y, x, y + bh, x + bw, y + bh, x + bw, y]]
        elif kind == Kind.POLYGON:
            shape = as_shape(ann.shape[i], f"{where}[{i}].shape")
            area = polygon_area(shape, w, h)
            if iou_type == "segm":
                segm = _polygon_segmentation(shape, w, h)
                if segm is None:
                    continue  # a degenerate polygon has no pixels to match
        else:
            segm = ann.shape[i]
            if not isinstance(segm, dict):
                raise InvalidInput("mask shape must be a COCO RLE dict", f"{where}[{i}].shape")
            area = float(rle_area(segm))
        rec["bbox"] = [x, y, bw, bh]
        if iou_type == "segm":
            rec["segmentation"] = segm
            if role == "dt":
                del rec["bbox"]  # see the module docstring: a mask result's area is its mask's
        if role == "dt":
            rec["score"] = float(conf[k])
        else:
            rec["area"] = float(area)
            rec["iscrowd"] = int(crowd[i]) if crowd is not None else 0
        out.append(rec)
    return out


def _polygon_segmentation(shape: Any, w: int, h: int) -> Any:
    """COCO pixel polygons, or an RLE where a polygon has holes; None when nothing is left."""
    from annoloop.geometry.masks import polygon_to_mask, rle_encode

    if any(len(poly) > 1 for poly in shape):  # holes: COCO polygons cannot hold them
        return rle_encode(polygon_to_mask(shape, w, h))
    scale = np.array([w, h], dtype=np.float64)
    rings = [(poly[0] * scale).reshape(-1).tolist() for poly in shape if len(poly[0]) >= 3]
    return rings or None


def dataset_detections(
    dt: Dataset | Annotations, gt: dict, gt_dataset: Dataset | None, iou_type: str
) -> list[dict]:
    """Detection records from a Dataset (matched to ``gt`` by file name and category name) or
    from Annotations aligned with the ground-truth Dataset ``gt_dataset``."""
    if isinstance(dt, Annotations):
        if gt_dataset is None:
            raise InvalidInput(
                "detections as Annotations need the ground truth as a Dataset "
                "(their image and label indexes refer to it); pass a Dataset or COCO results"
            )
        ann, sizes = dt, gt_dataset.sizes()
        image_ids = np.arange(1, len(gt_dataset.images) + 1)
        names = list(dt.label_names) or list(gt_dataset.labels)
        if names != list(gt_dataset.labels):
            raise InvalidInput("detections' label_names differ from the ground truth's labels")
        category_ids = np.arange(1, len(names) + 1)
    else:
        by_name = {}
        for rec in gt["images"]:
            name = rec.get("file_name")
            if name is not None:
                by_name[name] = rec["id"]
        missing = [r.file_name for r in dt.images if r.file_name not in by_name]
        if missing:
            raise InvalidInput(
                f"{len(missing)} detection images are not in the ground truth, "
                f"first {missing[0]!r}",
                "dt.images",
            )
        image_ids = np.array([by_name[r.file_name] for r in dt.images], dtype=np.int64)
        sizes = dt.sizes()  # the detections' own image sizes scale their relative boxes
        cat_by_name = {c["name"]: c["id"] for c in gt["categories"]}
        unknown = [n for n in dt.labels if n not in cat_by_name]
        if unknown:
            raise InvalidInput(f"detection labels not in the ground truth: {unknown[:5]}", "dt")
        category_ids = np.array([cat_by_name[n] for n in dt.labels], dtype=np.int64)
        ann = dt.annotations
    return annotations_to_records(
        ann, sizes, image_ids, category_ids, iou_type, role="dt", where="dt.annotations"
    )


def load_gt(gt: Any, iou_type: str, mask_api: ModuleType) -> tuple[dict, Dataset | None]:
    """Checked COCO ground truth from a dict, a JSON path or a Dataset (returned too)."""
    if isinstance(gt, Dataset):
        raw: Any = dataset_to_coco(gt, iou_type)
        dataset = gt
    elif isinstance(gt, (str, PathLike)):
        raw, dataset = read_json(gt, "gt"), None
    elif isinstance(gt, Mapping):
        raw, dataset = dict(gt), None
    else:
        raise InvalidInput(
            f"ground truth must be a COCO dict, a JSON path or a Dataset, got {type(gt).__name__}"
        )
    checked = check_gt(raw, iou_type, mask_api)
    # keep file names: detection Datasets are matched to the ground truth by them
    for rec, img in zip(checked["images"], raw["images"], strict=True):
        if isinstance(img.get("file_name"), str):
            rec["file_name"] = img["file_name"]
    return checked, dataset


def load_dt(
    dt: Any, gt: dict, gt_dataset: Dataset | None, iou_type: str, mask_api: ModuleType
) -> list[dict]:
    """Checked COCO results from a list, a dict, a JSON path, a Dataset or Annotations."""
    if isinstance(dt, (Dataset, Annotations)):
        raw: Any = dataset_detections(dt, gt, gt_dataset, iou_type)
    elif isinstance(dt, (str, PathLike)):
        raw = read_json(dt, "dt")
    elif isinstance(dt, (Mapping, Sequence)) and not isinstance(dt, (str, bytes)):
        raw = dict(dt) if isinstance(dt, Mapping) else list(dt)
    else:
        raise InvalidInput(
            "detections must be a COCO results list, a JSON path, a Dataset or Annotations, "
            f"got {type(dt).__name__}"
        )
    return check_dt(raw, gt, iou_type, mask_api)
