"""COCO with 100,000 images: import into a project, export, and import the export again.

Generates a COCO file of N images with K boxes each (and one polygon per 10 images), then times:

- ``json.load`` of the file alone (the practical floor for reading it),
- ``annoloop import coco`` into a fresh SQLite project (parse, validate, plan images, insert),
- ``annoloop export --format coco`` of everything,
- importing that export into a second project,

and checks that the second project holds the same boxes as the first (the round trip is
lossless). Prints seconds and ratios.

    python bench/formats/bench_coco_roundtrip.py [--images 100000] [--per-image 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from annoloop.formats.transfer import export_annotations, import_annotations
from annoloop.store import Project

CATEGORIES = ["coral", "algae", "sand", "sponge", "fish", "rock", "seagrass", "urchin"]


def make_coco(n_images: int, per_image: int, seed: int = 0) -> dict[str, Any]:
    """A valid COCO dict: ``per_image`` boxes per 640x480 image, a polygon every 10th image."""
    rng = np.random.default_rng(seed)
    width, height = 640, 480
    images = [
        {"id": i + 1, "file_name": f"survey/img_{i:06d}.jpg", "width": width, "height": height}
        for i in range(n_images)
    ]
    n = n_images * per_image
    wh = rng.uniform(8, 120, size=(n, 2))
    xy = rng.uniform(0, 1, size=(n, 2)) * (np.array([width, height]) - wh)
    boxes = np.round(np.hstack([xy, wh]), 2).tolist()
    cats = rng.integers(1, len(CATEGORIES) + 1, n).tolist()
    annotations: list[dict[str, Any]] = [
        {
            "id": j + 1,
            "image_id": j // per_image + 1,
            "category_id": cats[j],
            "bbox": boxes[j],
            "area": boxes[j][2] * boxes[j][3],
            "iscrowd": 0,
        }
        for j in range(n)
    ]
    for i in range(0, n_images, 10):
        x, y = float(rng.uniform(50, 500)), float(rng.uniform(50, 350))
        poly = [x, y, x + 60, y, x + 60, y + 40, x + 30, y + 70, x, y + 40]
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": i + 1,
                "category_id": 1,
                "segmentation": [poly],
                "bbox": [x, y, 60, 70],
                "area": 3300.0,
                "iscrowd": 0,
            }
        )
    categories = [{"id": k + 1, "name": c} for k, c in enumerate(CATEGORIES)]
    return {"images": images, "annotations": annotations, "categories": categories}


def timed(label: str, fn: Any) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:8.2f} s", flush=True)
    return seconds, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--per-image", type=int, default=5)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-coco-"))
    try:
        coco = make_coco(args.images, args.per_image)
        n_ann = len(coco["annotations"])
        src = work / "survey.json"
        src.write_text(json.dumps(coco))
        del coco
        size_mb = src.stat().st_size / 1e6
        print(f"{args.images} images, {n_ann} annotations, {size_mb:.0f} MB of COCO JSON")

        t_parse, _ = timed("json.load (floor)", lambda: json.loads(src.read_text()))
        first = Project.init(work / "first")
        t_import, report = timed("import coco", lambda: import_annotations(first, "coco", src))
        out = work / "export.json"
        t_export, _ = timed("export coco", lambda: export_annotations(first, "coco", out))
        second = Project.init(work / "second")
        t_reimport, _ = timed(
            "re-import the export", lambda: import_annotations(second, "coco", out)
        )
        a = first.annotation_arrays()
        b = second.annotation_arrays()
        same = len(a) == len(b) == n_ann and np.allclose(
            np.sort(a.box, axis=0), np.sort(b.box, axis=0), atol=1e-6
        )
        print(f"round trip lossless: {same} ({len(a)} and {len(b)} annotations)")
        print(
            f"import {t_import / t_parse:.1f}x json.load; "
            f"{n_ann / t_import:,.0f} annotations/s; export {n_ann / t_export:,.0f}/s; "
            f"re-import {n_ann / t_reimport:,.0f}/s"
        )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak_mb:,.0f} MB")
        first.close()
        second.close()
        del report
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
