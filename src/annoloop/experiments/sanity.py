"""Sanity check of a dataset: find what is broken, fix what can be fixed, drop the rest.

iquaflow's ``SanityCheck`` (``check_annotations`` + ``fix_annotations`` / ``autofix``) on the
raw files, so that input the strict loaders refuse can still be cleaned::

    report = sanity_check("data/fields", "data/fields_clean")
    report.counts      # {"images_listed": 40, "images_kept": 37, "IMG_DUP_FILE": 1, ...}
    report.problems    # each with code, where (file: images[3]), message and action

Checks, with their codes (``action`` says what was done):

- images on disk: unreadable or truncated files (``IMG_UNREADABLE``, dropped), files with the
  same content under two names (``IMG_DUP_CONTENT``, the later dropped);
- COCO images: a record that is not an object or has no usable id or file name
  (``IMG_INVALID``), a repeated id (``IMG_DUP_ID``) or file name (``IMG_DUP_FILE``), a file name
  that is not an image (``IMG_FILE_TYPE``), a missing file (``IMG_MISSING``), a file rejected
  above (``IMG_REJECTED``): dropped with their annotations; a width or height that differs
  from the file (``IMG_WRONG_SIZE``): fixed;
- COCO categories: invalid or repeated ids (``CAT_INVALID``, ``CAT_DUP_ID``): dropped;
- COCO annotations: not an object (``ANN_INVALID``), on a dropped or unknown image
  (``ANN_ORPHAN``) or category (``ANN_BAD_CATEGORY``), a box that is not 4 finite numbers or has
  a negative size (``ANN_BBOX_INVALID``): dropped; a box reaching outside the image
  (``ANN_BBOX_CLIPPED``): clipped; a polygon with an odd or non-numeric coordinate list
  (``ANN_SEG_INVALID``): dropped; a self-intersecting polygon (``ANN_SEG_REPAIRED``): repaired,
  area and box recomputed (dropped as ``ANN_SEG_EMPTY`` when nothing is left);
- GeoJSON features (annoloop's ``image``/``label`` properties or iquaflow's
  ``image_filename``/``class_id``): a missing image or class property (``GEO_MISSING_FIELD``),
  a missing geometry (``GEO_MISSING_GEOMETRY``), an empty one (``GEO_EMPTY``), unparseable
  coordinates (``GEO_INVALID_DROPPED``), an image that was dropped or is not there
  (``GEO_ORPHAN``): dropped; an invalid geometry (``GEO_REPAIRED``): repaired, with
  ``shapely.make_valid`` by default (a bow-tie becomes its two triangles) or iquaflow's
  ``buffer(0)`` (``repair="buffer0"``, which keeps only one lobe of a bow-tie); wrong
  ``image_width``/``image_height`` properties (``GEO_WRONG_SIZE``): fixed.

With ``output`` the cleaned dataset is written there: annotation files with the same names,
the kept images (hard links where possible, else copies), the mask folder, and the report as
``sanity.json``. Without it nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from annoloop.errors import InvalidInput
from annoloop.experiments.dataset import ExperimentDataset
from annoloop.storage import is_image_name

REPAIRS = ("make_valid", "buffer0")
_IMAGE_KEYS = ("image", "image_filename", "file_name")
_LABEL_KEYS = ("label", "class_id", "class", "category", "category_id")


class SanityProblem(BaseModel):
    """One problem found: its code, where it is, what is wrong, and what was done."""

    code: str
    where: str
    message: str
    action: str  # dropped, fixed, repaired or reported


class SanityReport(BaseModel):
    """Counts per problem code and per outcome, and every problem found."""

    source: str
    output: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    problems: list[SanityProblem] = Field(default_factory=list)

    def add(self, code: str, where: str, message: str, action: str) -> None:
        """Record one problem."""
        self.problems.append(SanityProblem(code=code, where=where, message=message, action=action))
        self.counts[code] = self.counts.get(code, 0) + 1

    def count(self, code: str) -> int:
        """How many problems (or items, for ``images_kept`` etc.) of ``code``."""
        return self.counts.get(code, 0)

    @classmethod
    def example(cls) -> SanityReport:
        """A filled-in example (documentation and round-trip tests)."""
        report = cls(source="/data/fields", output="/data/fields_clean")
        report.add(
            "IMG_DUP_FILE",
            "annotations.json: images[3]",
            "file name 'a.png' repeats images[0]",
            "dropped",
        )
        report.counts.update(images_listed=4, images_kept=3)
        return report


def _file_info(path: Path, check_pixels: bool) -> tuple[str, int, int, str | None]:
    """(sha256, width, height, error) of one image file."""
    from annoloop.experiments._images import decode
    from annoloop.storage import read_header

    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        if check_pixels:
            image = decode(data, path.name).image
            return sha, int(image.shape[1]), int(image.shape[0]), None
        header = read_header(data)
        return sha, header.width, header.height, None
    except InvalidInput as exc:
        return sha, 0, 0, exc.reason


def _scan_images(
    ds: ExperimentDataset, check_pixels: bool, report: SanityReport
) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """(readable, non-duplicate image files on disk -> (width, height), rejected -> why)."""
    ok: dict[str, tuple[int, int]] = {}
    rejected: dict[str, str] = {}
    seen: dict[str, str] = {}
    on_disk = ds.image_files()
    report.counts["images_on_disk"] = len(on_disk)
    for rel in on_disk:
        sha, w, h, error = _file_info(ds.images / rel, check_pixels)
        where = f"{ds.images.name}/{rel}"
        if error is not None:
            report.add("IMG_UNREADABLE", where, error, "dropped")
            rejected[rel] = f"unreadable ({error})"
            continue
        if sha in seen:
            report.add("IMG_DUP_CONTENT", where, f"same content as {seen[sha]!r}", "dropped")
            rejected[rel] = f"the same content as {seen[sha]!r}"
            continue
        seen[sha] = rel
        ok[rel] = (w, h)
    return ok, rejected


def _finite_numbers(values: Any, n: int | None = None) -> list[float] | None:
    if not isinstance(values, list) or (n is not None and len(values) != n):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def _hashable(value: Any) -> bool:
    return (isinstance(value, (int, str))) and not isinstance(value, bool)


def _check_coco(
    doc: Any,
    name: str,
    files: dict[str, tuple[int, int]],
    rejected: dict[str, str],
    repair: str,
    report: SanityReport,
) -> dict[str, Any]:
    from annoloop.formats._common import check_file_name

    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise InvalidInput("not a COCO file: expected an object with an 'images' list", name)
    images_in = doc["images"]
    report.counts["images_listed"] = report.counts.get("images_listed", 0) + len(images_in)
    kept_images: list[dict[str, Any]] = []
    ids: dict[Any, int] = {}
    names: dict[str, int] = {}
    for i, rec in enumerate(images_in):
        where = f"{name}: images[{i}]"
        if not isinstance(rec, dict) or not _hashable(rec.get("id")):
            report.add(
                "IMG_INVALID", where, "not an object with an integer or string id", "dropped"
            )
            continue
        try:
            file_name = check_file_name(rec.get("file_name"), where)
        except InvalidInput as exc:
            report.add("IMG_INVALID", where, exc.reason, "dropped")
            continue
        if rec["id"] in ids:
            report.add(
                "IMG_DUP_ID", where, f"id {rec['id']!r} repeats images[{ids[rec['id']]}]", "dropped"
            )
            continue
        if file_name in names:
            report.add(
                "IMG_DUP_FILE",
                where,
                f"file name {file_name!r} repeats images[{names[file_name]}]",
                "dropped",
            )
            continue
        ids[rec["id"]] = i
        names[file_name] = i
        if not is_image_name(file_name):
            report.add(
                "IMG_FILE_TYPE", where, f"{file_name!r} is not an image file name", "dropped"
            )
            continue
        if file_name in rejected:
            report.add("IMG_REJECTED", where, f"{file_name!r} is {rejected[file_name]}", "dropped")
            continue
        if file_name not in files:
            report.add(
                "IMG_MISSING", where, f"{file_name!r} is not in the images folder", "dropped"
            )
            continue
        w, h = files[file_name]
        if rec.get("width") != w or rec.get("height") != h:
            report.add(
                "IMG_WRONG_SIZE",
                where,
                f"says {rec.get('width')}x{rec.get('height')}, the file is {w}x{h}",
                "fixed",
            )
            rec = {**rec, "width": w, "height": h}
        kept_images.append({**rec, "file_name": file_name})
    image_sizes = {rec["id"]: (rec["width"], rec["height"]) for rec in kept_images}
    report.counts["images_kept"] = report.counts.get("images_kept", 0) + len(kept_images)

    cats_in = doc.get("categories") if isinstance(doc.get("categories"), list) else []
    kept_cats: list[dict[str, Any]] = []
    cat_ids: set[Any] = set()
    for j, cat in enumerate(cats_in):
        where = f"{name}: categories[{j}]"
        if not isinstance(cat, dict) or not _hashable(cat.get("id")) or not cat.get("name"):
            report.add("CAT_INVALID", where, "not an object with an id and a name", "dropped")
            continue
        if cat["id"] in cat_ids:
            report.add("CAT_DUP_ID", where, f"category id {cat['id']!r} repeats", "dropped")
            continue
        cat_ids.add(cat["id"])
        kept_cats.append(cat)

    anns_in = doc.get("annotations") if isinstance(doc.get("annotations"), list) else []
    report.counts["annotations_total"] = report.counts.get("annotations_total", 0) + len(anns_in)
    kept_anns = []
    for k, ann in enumerate(anns_in):
        where = f"{name}: annotations[{k}]"
        fixed = _check_coco_annotation(ann, where, image_sizes, cat_ids, repair, report)
        if fixed is not None:
            kept_anns.append(fixed)
    report.counts["annotations_kept"] = report.counts.get("annotations_kept", 0) + len(kept_anns)
    return {**doc, "images": kept_images, "categories": kept_cats, "annotations": kept_anns}


def _check_coco_annotation(
    ann: Any,
    where: str,
    image_sizes: dict[Any, tuple[int, int]],
    cat_ids: set[Any],
    repair: str,
    report: SanityReport,
) -> dict[str, Any] | None:
    if not isinstance(ann, dict):
        report.add("ANN_INVALID", where, "an annotation must be an object", "dropped")
        return None
    image_id = ann.get("image_id")
    if not _hashable(image_id) or image_id not in image_sizes:
        report.add("ANN_ORPHAN", where, f"image_id {image_id!r} is not a kept image", "dropped")
        return None
    if not _hashable(ann.get("category_id")) or ann.get("category_id") not in cat_ids:
        report.add(
            "ANN_BAD_CATEGORY", where, f"unknown category_id {ann.get('category_id')!r}", "dropped"
        )
        return None
    w, h = image_sizes[image_id]
    out = dict(ann)
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg:
        parts = [_finite_numbers(p) for p in seg]
        if any(p is None or len(p) % 2 or len(p) < 6 for p in parts):
            report.add(
                "ANN_SEG_INVALID",
                where + ".segmentation",
                "polygons must be flat lists of an even number (>= 6) of numbers",
                "dropped",
            )
            return None
        fixed = _repair_coco_polygon(parts, repair)  # type: ignore[arg-type]
        if fixed is not None:
            polygons, area, bbox = fixed
            if not polygons:
                report.add(
                    "ANN_SEG_EMPTY",
                    where + ".segmentation",
                    "nothing is left of the polygon after repair",
                    "dropped",
                )
                return None
            report.add(
                "ANN_SEG_REPAIRED",
                where + ".segmentation",
                "self-intersecting polygon repaired",
                "repaired",
            )
            out.update(segmentation=polygons, area=area, bbox=bbox)
    if "bbox" in out:
        box = _finite_numbers(out["bbox"], 4)
        if box is None or box[2] < 0 or box[3] < 0:
            report.add(
                "ANN_BBOX_INVALID",
                where + ".bbox",
                f"bbox must be 4 finite numbers with a non-negative size, got {out['bbox']!r}",
                "dropped",
            )
            return None
        x0, y0 = max(0.0, box[0]), max(0.0, box[1])
        x1, y1 = min(float(w), box[0] + box[2]), min(float(h), box[1] + box[3])
        if [x0, y0, x1 - x0, y1 - y0] != box:
            if x1 <= x0 or y1 <= y0:
                report.add(
                    "ANN_BBOX_INVALID", where + ".bbox", "box lies outside the image", "dropped"
                )
                return None
            report.add(
                "ANN_BBOX_CLIPPED",
                where + ".bbox",
                f"box {box} reaches outside the {w}x{h} image",
                "fixed",
            )
            out["bbox"] = [x0, y0, x1 - x0, y1 - y0]
    return out


def _repair_coco_polygon(
    parts: list[list[float]], repair: str
) -> tuple[list[list[float]], float, list[float]] | None:
    """None when the polygons are valid, else (repaired flat polygons, area, xywh box)."""
    import shapely

    polys = [shapely.Polygon(list(zip(p[0::2], p[1::2], strict=True))) for p in parts]
    if all(p.is_valid for p in polys):
        return None
    geom = _repair_geometry(shapely.MultiPolygon(polys), repair)
    if geom is None or geom.is_empty:
        return [], 0.0, [0.0, 0.0, 0.0, 0.0]
    flat = []
    for part in shapely.get_parts(geom):
        if isinstance(part, shapely.Polygon) and not part.is_empty:
            coords = list(part.exterior.coords)[:-1]
            flat.append([float(v) for xy in coords for v in xy[:2]])
    x0, y0, x1, y1 = geom.bounds
    return flat, float(geom.area), [x0, y0, x1 - x0, y1 - y0]


def _repair_geometry(geom: Any, repair: str) -> Any:
    """A valid polygonal geometry, or None when nothing polygonal is left."""
    import shapely

    fixed = geom.buffer(0) if repair == "buffer0" else shapely.make_valid(geom)
    polys = [
        g
        for g in shapely.get_parts(fixed)
        if isinstance(g, (shapely.Polygon, shapely.MultiPolygon)) and not g.is_empty
    ]
    if not polys and not isinstance(geom, (shapely.Polygon, shapely.MultiPolygon)):
        polys = [g for g in shapely.get_parts(fixed) if not g.is_empty]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.union_all(polys)


def _first(props: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = props.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return value
    return None


def _check_geojson(
    doc: Any,
    name: str,
    files: dict[str, tuple[int, int]],
    repair: str,
    keep_null_geometry: bool,
    report: SanityReport,
) -> dict[str, Any]:
    import shapely
    import shapely.geometry

    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise InvalidInput("not a GeoJSON FeatureCollection with a 'features' list", name)
    features = doc["features"]
    report.counts["annotations_total"] = report.counts.get("annotations_total", 0) + len(features)
    used_images: set[str] = set()
    kept = []
    for i, feature in enumerate(features):
        where = f"{name}: features[{i}]"
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            report.add("GEO_MISSING_FIELD", where, "a feature needs a properties object", "dropped")
            continue
        image = _first(props, _IMAGE_KEYS)
        label = _first(props, _LABEL_KEYS)
        if image is None or label is None:
            missing = "image" if image is None else "class"
            report.add("GEO_MISSING_FIELD", where, f"no {missing} property", "dropped")
            continue
        if str(image) not in files:
            report.add(
                "GEO_ORPHAN",
                where,
                f"image {image!r} is missing, unreadable or a duplicate",
                "dropped",
            )
            continue
        out = dict(feature)
        out["properties"] = props = dict(props)
        w, h = files[str(image)]
        if ("image_width" in props or "image_height" in props) and (
            props.get("image_width") != w or props.get("image_height") != h
        ):
            report.add(
                "GEO_WRONG_SIZE",
                where,
                f"says {props.get('image_width')}x{props.get('image_height')}, the file is {w}x{h}",
                "fixed",
            )
            props["image_width"], props["image_height"] = w, h
        geometry = feature.get("geometry")
        if geometry is None:
            if keep_null_geometry:
                kept.append(out)
                used_images.add(str(image))
                continue
            report.add("GEO_MISSING_GEOMETRY", where, "no geometry", "dropped")
            continue
        try:
            geom = shapely.geometry.shape(geometry)
        except Exception as exc:
            report.add(
                "GEO_INVALID_DROPPED",
                where + ".geometry",
                f"unparseable geometry: {exc}",
                "dropped",
            )
            continue
        if geom.is_empty:
            report.add("GEO_EMPTY", where + ".geometry", "empty geometry", "dropped")
            continue
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            fixed = _repair_geometry(geom, repair)
            if fixed is None or fixed.is_empty:
                report.add(
                    "GEO_INVALID_DROPPED",
                    where + ".geometry",
                    f"invalid ({reason}) and nothing is left after repair",
                    "dropped",
                )
                continue
            report.add(
                "GEO_REPAIRED",
                where + ".geometry",
                f"invalid ({reason}), repaired with {repair}",
                "repaired",
            )
            out["geometry"] = shapely.geometry.mapping(fixed)
            out["geometry"] = json.loads(json.dumps(out["geometry"]))  # tuples -> lists
        kept.append(out)
        used_images.add(str(image))
    report.counts["annotations_kept"] = report.counts.get("annotations_kept", 0) + len(kept)
    # GeoJSON has no image list: the images are the files on disk
    report.counts["images_listed"] = report.counts.get("images_on_disk", 0)
    report.counts["images_kept"] = len(files)
    return {**doc, "features": kept}


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def sanity_check(
    dataset: ExperimentDataset | str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    repair: str = "make_valid",
    check_pixels: bool = True,
    keep_null_geometry: bool = False,
) -> SanityReport:
    """Check (and with ``output``, write a cleaned copy of) a dataset; see the module docstring.

    ``repair``: ``"make_valid"`` (default) or ``"buffer0"`` (iquaflow). ``check_pixels``
    decodes every image (finds truncated files; False reads headers only).
    ``keep_null_geometry`` keeps GeoJSON features without geometry (annoloop's image labels).
    A file that is not JSON at all raises InvalidInput naming it: there is nothing to keep.
    """
    from annoloop.formats._common import read_json

    if repair not in REPAIRS:
        raise InvalidInput(f"repair must be one of {', '.join(REPAIRS)}, got {repair!r}")
    ds = dataset if isinstance(dataset, ExperimentDataset) else ExperimentDataset.open(dataset)
    report = SanityReport(source=str(ds.root), output=str(output) if output is not None else None)
    files, rejected = _scan_images(ds, check_pixels, report)
    cleaned: dict[str, dict[str, Any]] = {}
    for path in ds.annotations:
        doc = read_json(str(path))
        if path.suffix.lower() == ".geojson":
            cleaned[path.name] = _check_geojson(
                doc, path.name, files, repair, keep_null_geometry, report
            )
        else:
            cleaned[path.name] = _check_coco(doc, path.name, files, rejected, repair, report)
    if not ds.annotations:
        report.counts["images_listed"] = report.counts.get("images_on_disk", 0)
        report.counts["images_kept"] = len(files)
    for key in ("images", "annotations"):
        listed = report.counts.get(f"{key}_listed" if key == "images" else f"{key}_total", 0)
        report.counts[f"{key}_dropped"] = listed - report.counts.get(f"{key}_kept", 0)
    if output is not None:
        _write(ds, Path(output), cleaned, files, report)
    return report


def _write(
    ds: ExperimentDataset,
    out: Path,
    cleaned: dict[str, dict[str, Any]],
    files: dict[str, tuple[int, int]],
    report: SanityReport,
) -> None:
    out = out.expanduser().resolve()
    if out == ds.root.resolve():
        raise InvalidInput("the output folder must not be the dataset itself", str(out))
    images = out / (ds.images.relative_to(ds.root) if ds.images != ds.root else Path())
    listed: set[str] | None = None
    for doc in cleaned.values():
        if "images" in doc:
            names = {rec["file_name"] for rec in doc["images"]}
            listed = names if listed is None else listed | names
    keep = sorted(files if listed is None else listed & set(files))
    for rel in keep:
        _link_or_copy(ds.images / rel, images / rel)
    for name, doc in cleaned.items():
        (out / name).write_text(json.dumps(doc))
    if ds.masks is not None:
        target = out / ds.masks.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(ds.masks, target)
    (out / "sanity.json").write_text(report.model_dump_json(indent=1))
