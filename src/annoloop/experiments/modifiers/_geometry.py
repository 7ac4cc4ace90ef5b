"""Ground truth that follows the pixels when a modifier changes image sizes.

Annotation files are rewritten as they are (ids, extra keys and order kept), with only the
geometry scaled: a COCO file's image sizes, ``bbox``, ``area``, polygon ``segmentation``, RLE
masks (resized nearest-neighbour) and ``keypoints``; a pixel-space GeoJSON file's coordinates
and ``image_width``/``image_height`` properties; label-mask images (nearest-neighbour). A
GeoJSON file with a ``crs`` member is geo-referenced: a resample does not move the ground, so
it is copied unchanged. Scale factors are the exact ratios of new to old size per image.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.experiments import _images

# file name -> (old width, old height, new width, new height)
Sizes = dict[str, tuple[int, int, int, int]]


def _scale(sizes: Sizes, name: Any) -> tuple[float, float, int, int] | None:
    entry = sizes.get(name) if isinstance(name, str) else None
    if entry is None:
        return None
    w0, h0, w1, h1 = entry
    if (w0, h0) == (w1, h1):
        return None
    return w1 / w0, h1 / h0, w1, h1


def _scale_flat(values: Any, sx: float, sy: float, stride: int, where: str) -> list[float]:
    """[x, y, (v,) x, y, ...] scaled; ``stride`` 2 for polygons, 3 for keypoints."""
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1, stride)
    except (TypeError, ValueError):
        raise InvalidInput("coordinates must be a flat list of numbers", where) from None
    arr[:, 0] *= sx
    arr[:, 1] *= sy
    return arr.reshape(-1).tolist()


def _scale_rle(seg: dict[str, Any], w1: int, h1: int, where: str) -> dict[str, Any]:
    from annoloop.geometry.masks import rle_decode, rle_encode, rle_from_uncompressed

    rle = rle_from_uncompressed(seg) if isinstance(seg.get("counts"), list) else seg
    try:
        mask = rle_decode(rle)
    except InvalidInput as exc:
        raise InvalidInput(exc.reason, where) from None
    resized = _images.resize(mask.astype(np.uint8), w1, h1, "nearest").astype(bool)
    out = rle_encode(resized)
    counts = out["counts"]
    return {"size": [h1, w1], "counts": counts if isinstance(counts, str) else counts.decode()}


def scale_coco(doc: Any, sizes: Sizes, name: str) -> Any:
    """A COCO document with the images in ``sizes`` resized (see the module docstring)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        return doc  # not a COCO instances file: nothing we know how to scale
    factors: dict[Any, tuple[float, float, int, int]] = {}
    for rec in doc["images"]:
        if not isinstance(rec, dict):
            continue
        f = _scale(sizes, rec.get("file_name"))
        if f is None:
            continue
        factors[rec.get("id")] = f
        if "width" in rec or "height" in rec:
            rec["width"], rec["height"] = f[2], f[3]
    anns = doc.get("annotations")
    if not factors or not isinstance(anns, list):
        return doc
    rows = [
        (i, a) for i, a in enumerate(anns) if isinstance(a, dict) and a.get("image_id") in factors
    ]
    # boxes of all affected annotations in one array operation
    boxed = [(i, a) for i, a in rows if isinstance(a.get("bbox"), list) and len(a["bbox"]) == 4]
    if boxed:
        try:
            boxes = np.array([a["bbox"] for _, a in boxed], dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput("a bbox is not 4 numbers", f"{name}: annotations") from None
        scale = np.array([factors[a["image_id"]][:2] * 2 for _, a in boxed], dtype=np.float64)
        for (_, a), box in zip(boxed, (boxes * scale).tolist(), strict=True):
            a["bbox"] = box
    for i, a in rows:
        sx, sy, w1, h1 = factors[a["image_id"]]
        where = f"{name}: annotations[{i}]"
        seg = a.get("segmentation")
        if isinstance(seg, list) and seg:
            a["segmentation"] = [
                _scale_flat(part, sx, sy, 2, f"{where}.segmentation[{p}]")
                for p, part in enumerate(seg)
            ]
        elif isinstance(seg, dict) and "counts" in seg:
            a["segmentation"] = _scale_rle(seg, w1, h1, f"{where}.segmentation")
            if "area" in a:
                from annoloop.geometry.masks import rle_area

                a["area"] = rle_area(a["segmentation"])
        if isinstance(a.get("area"), (int, float)) and not isinstance(seg, dict):
            a["area"] = float(a["area"]) * sx * sy
        if isinstance(a.get("keypoints"), list) and a["keypoints"]:
            a["keypoints"] = _scale_flat(a["keypoints"], sx, sy, 3, f"{where}.keypoints")
    return doc


def _scale_coords(coords: Any, sx: float, sy: float) -> Any:
    if not isinstance(coords, list) or not coords:
        return coords
    if isinstance(coords[0], (int, float)):
        return [coords[0] * sx, coords[1] * sy, *coords[2:]] if len(coords) >= 2 else coords
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None  # ragged (rings of different lengths): go one level down
    if arr is not None and arr.ndim == 2 and arr.shape[1] >= 2:
        arr[:, 0] *= sx
        arr[:, 1] *= sy
        return arr.tolist()
    return [_scale_coords(c, sx, sy) for c in coords]


def _scale_geometry(geom: Any, sx: float, sy: float) -> Any:
    if not isinstance(geom, dict):
        return geom
    if geom.get("type") == "GeometryCollection":
        geom["geometries"] = [_scale_geometry(g, sx, sy) for g in geom.get("geometries") or []]
    elif "coordinates" in geom:
        geom["coordinates"] = _scale_coords(geom["coordinates"], sx, sy)
    return geom


def scale_geojson(doc: Any, sizes: Sizes) -> Any:
    """A pixel-space GeoJSON document with the images in ``sizes`` resized."""
    if not isinstance(doc, dict) or "crs" in doc or not isinstance(doc.get("features"), list):
        return doc
    for feature in doc["features"]:
        if not isinstance(feature, dict):
            continue
        props = feature.get("properties")
        if not isinstance(props, dict):
            continue
        image = props.get("image", props.get("image_filename"))
        f = _scale(sizes, image)
        if f is None:
            continue
        sx, sy, w1, h1 = f
        feature["geometry"] = _scale_geometry(feature.get("geometry"), sx, sy)
        if "image_width" in props:
            props["image_width"] = w1
        if "image_height" in props:
            props["image_height"] = h1
    return doc


def write_annotations(source: Path, target: Path, sizes: Sizes) -> None:
    """Copy one annotation file to ``target``, scaled when some image sizes changed."""
    if not any((w0, h0) != (w1, h1) for w0, h0, w1, h1 in sizes.values()):
        _images.write_atomic(target, source.read_bytes())
        return
    from annoloop.formats._common import read_json

    doc = read_json(str(source))
    if source.suffix.lower() == ".geojson":
        doc = scale_geojson(doc, sizes)
    else:
        doc = scale_coco(doc, sizes, source.name)
    _images.write_atomic(target, json.dumps(doc).encode())


def write_masks(source: Path, target: Path, sizes: Sizes) -> None:
    """Copy a folder of label masks; masks of resized images are resized nearest-neighbour.

    A mask belongs to the image with the same path without extension.
    """
    by_stem = {str(Path(name).with_suffix("")): value for name, value in sizes.items()}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source)
        dst = target / rel
        f = by_stem.get(str(rel.with_suffix("")))
        if f is None or (f[0], f[1]) == (f[2], f[3]):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst)
            continue
        from PIL import Image

        with Image.open(path) as im:
            resized = im.resize((f[2], f[3]), Image.Resampling.NEAREST)
            dst.parent.mkdir(parents=True, exist_ok=True)
            resized.save(dst)
