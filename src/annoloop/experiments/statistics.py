"""Dataset statistics as JSON and PNG plots (iquaflow's ``DsStatistics``).

:func:`dataset_statistics` reads a dataset's ground truth with annoloop's loaders (run
:func:`~annoloop.experiments.sanity_check` first on a dataset they refuse) and returns:

- ``images``: count, width/height/area/aspect-ratio summaries (min, max, mean, median, std)
- ``classes``: annotations per class, images per class
- ``kinds``: annotations per shape kind
- ``annotations_per_image``: summary
- ``boxes``: pixel width, height, area and aspect ratio (w / h) summaries with histograms, of
  every annotation with an extent (boxes, polygons and masks by their bounding box)
- ``polygons``: Polsby-Popper compactness 4 pi A / P^2 (1 for a disc, near 0 for a sliver),
  area and perimeter summaries, computed in pixels with shapely's vectorised functions

With ``out_dir``: ``statistics.json`` and the plots ``image_sizes.png``, ``classes.png``,
``box_sizes.png``, ``box_aspect_ratios.png``, ``annotations_per_image.png`` and
``polygon_compactness.png`` (when there are polygons).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from annoloop.experiments.dataset import ExperimentDataset
from annoloop.geometry.kinds import Kind


def _summary(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"count": 0}
    return {
        "count": int(v.size),
        "min": float(v.min()),
        "max": float(v.max()),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "std": float(v.std()),
    }


def _histogram(values: np.ndarray, bins: int = 20, log: bool = False) -> dict[str, list[float]]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & ((v > 0) if log else True)]
    if v.size == 0:
        return {"edges": [], "counts": []}
    if log:
        edges = np.geomspace(v.min(), v.max() * 1.000001, bins + 1) if v.max() > v.min() else None
    else:
        edges = None
    counts, used = np.histogram(v, bins=edges if edges is not None else bins)
    return {"edges": used.tolist(), "counts": counts.astype(int).tolist()}


def _polygon_measures(shapes: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(areas, perimeters) in pixels of polygon shapes (relative) on images of ``sizes``."""
    import shapely

    from annoloop.geometry.polygons import polygon_to_shapely

    geoms = []
    for shape, (w, h) in zip(shapes, sizes, strict=True):
        try:
            geoms.append(polygon_to_shapely(shape, float(w), float(h)))
        except Exception:
            geoms.append(shapely.MultiPolygon())
    arr = np.array(geoms, dtype=object)
    return shapely.area(arr), shapely.length(arr)


def compute_statistics(data: Any) -> dict[str, Any]:
    """Statistics of an annoloop :class:`~annoloop.formats.Dataset` (see the module docs)."""
    return _compute(data)[0]


def _compute(data: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(statistics, raw per-item arrays for the plots)."""
    sizes = data.sizes().astype(np.float64)
    ann = data.annotations
    n_images = len(data.images)
    widths, heights = (sizes[:, 0], sizes[:, 1]) if n_images else (np.zeros(0), np.zeros(0))
    stats: dict[str, Any] = {
        "images": {
            "count": n_images,
            "width": _summary(widths),
            "height": _summary(heights),
            "area": _summary(widths * heights),
            "aspect_ratio": _summary(widths / np.maximum(heights, 1)),
        }
    }
    labels = np.asarray(ann.label)
    counts = np.bincount(labels[labels >= 0], minlength=len(data.labels))
    per_class = {name: int(c) for name, c in zip(data.labels, counts.tolist(), strict=False)}
    images_per_class = {}
    for j, name in enumerate(data.labels):
        images_per_class[name] = int(np.unique(ann.image[labels == j]).size)
    unlabelled = int((labels < 0).sum())
    stats["classes"] = {"annotations": per_class, "images": images_per_class}
    if unlabelled:
        stats["classes"]["unlabelled"] = unlabelled
    kinds, kind_counts = np.unique(ann.kind, return_counts=True)
    stats["kinds"] = {Kind(int(k)).label: int(c) for k, c in zip(kinds, kind_counts, strict=True)}
    per_image = np.bincount(ann.image, minlength=n_images) if n_images else np.zeros(0)
    stats["annotations_per_image"] = _summary(per_image)
    stats["annotations_per_image"]["without_annotations"] = int((per_image == 0).sum())

    extent = np.isin(ann.kind, [int(Kind.BBOX), int(Kind.POLYGON), int(Kind.MASK)])
    box = ann.box[extent]
    wh = sizes[ann.image[extent]] if len(box) else np.zeros((0, 2))
    bw, bh = box[:, 2] * wh[:, 0], box[:, 3] * wh[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bh > 0, bw / bh, np.nan)
    stats["boxes"] = {
        "width": _summary(bw),
        "height": _summary(bh),
        "area": _summary(bw * bh),
        "aspect_ratio": _summary(ratio),
        "area_histogram": _histogram(bw * bh, log=True),
        "aspect_ratio_histogram": _histogram(ratio),
    }
    poly = ann.kind == int(Kind.POLYGON)
    if poly.any():
        areas, perims = _polygon_measures(ann.shape[poly], sizes[ann.image[poly]])
        with np.errstate(divide="ignore", invalid="ignore"):
            compact = np.where(perims > 0, 4 * math.pi * areas / perims**2, np.nan)
        stats["polygons"] = {
            "count": int(poly.sum()),
            "area": _summary(areas),
            "perimeter": _summary(perims),
            "compactness": _summary(compact),
            "compactness_histogram": _histogram(compact),
        }
    return stats, {
        "widths": widths,
        "heights": heights,
        "per_image": per_image,
        "bw": bw,
        "bh": bh,
        "ratio": ratio,
        "compactness": compact if poly.any() else np.zeros(0),
    }


def _plots(stats: dict[str, Any], raw: dict[str, np.ndarray], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(out / name)

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(raw["widths"], raw["heights"], s=12, alpha=0.6)
    ax.set(xlabel="width (px)", ylabel="height (px)", title="image sizes")
    save(fig, "image_sizes.png")

    per_class = stats["classes"]["annotations"]
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(per_class) + 1)))
    if per_class:
        ax.barh(list(per_class), list(per_class.values()), color="#3b7dd8")
        ax.invert_yaxis()
    ax.set(xlabel="annotations", title="annotations per class")
    save(fig, "classes.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    area = raw["bw"] * raw["bh"]
    area = area[np.isfinite(area) & (area > 0)]
    if area.size:
        ax.hist(np.sqrt(area), bins=30, color="#3b7dd8")
    ax.set(xlabel="sqrt(box area) (px)", ylabel="annotations", title="box sizes")
    save(fig, "box_sizes.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    ratio = raw["ratio"][np.isfinite(raw["ratio"])]
    if ratio.size:
        ax.hist(ratio, bins=30, color="#3b7dd8")
    ax.set(xlabel="width / height", ylabel="annotations", title="box aspect ratios")
    save(fig, "box_aspect_ratios.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    if raw["per_image"].size:
        ax.hist(raw["per_image"], bins=min(30, int(raw["per_image"].max()) + 1), color="#3b7dd8")
    ax.set(xlabel="annotations", ylabel="images", title="annotations per image")
    save(fig, "annotations_per_image.png")

    comp = raw["compactness"][np.isfinite(raw["compactness"])]
    if comp.size:
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.hist(comp, bins=30, range=(0, 1), color="#3b7dd8")
        ax.set(xlabel="4 pi area / perimeter^2", ylabel="polygons", title="polygon compactness")
        save(fig, "polygon_compactness.png")
    return written


def dataset_statistics(
    dataset: ExperimentDataset | str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    plots: bool = True,
) -> dict[str, Any]:
    """Statistics of a dataset's ground truth; with ``out_dir`` also ``statistics.json`` and
    PNG plots there (their paths under ``"files"`` in the result)."""
    ds = dataset if isinstance(dataset, ExperimentDataset) else ExperimentDataset.open(dataset)
    stats, raw = _compute(ds.load())
    stats["dataset"] = ds.name
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = _plots(stats, raw, out) if plots else []
        stats["files"] = [str(p) for p in files]
        (out / "statistics.json").write_text(json.dumps(stats, indent=1))
        stats["files"].append(str(out / "statistics.json"))
    return stats
