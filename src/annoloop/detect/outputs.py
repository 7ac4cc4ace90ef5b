"""Detection results as CSV and COCO files.

Rows are the :class:`~annoloop.detect.results.MediaResult` boxes: one CSV row per box with
the media, frame, pixel box, label (under ``label_attr``), confidence (under
``confidence_attr``) and track id; COCO has one image per processed frame that holds boxes
(``file_name`` the media, ``frame`` the frame index) and the label, confidence and track as
``attributes`` of each annotation (the names Tator uses, e.g. ``Species``, ``Confidence``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annoloop.detect.results import MediaResult

CSV_FIELDS = ["media", "frame", "x1", "y1", "x2", "y2", "width", "height", "track_id"]


def write_csv(
    results: Sequence[MediaResult],
    path: str | Path,
    *,
    label_attr: str = "Species",
    confidence_attr: str = "Confidence",
) -> Path:
    """One row per box (pixel xyxy in the media's original size); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*CSV_FIELDS, label_attr, confidence_attr])
        for r in results:
            if not r.ok or r.n_boxes == 0:
                continue
            px = np.round(r.boxes_pixels(), 2)
            names = np.asarray(r.classes, dtype=object)[r.labels] if r.classes else r.labels
            for i in range(r.n_boxes):  # csv.writer takes rows one by one
                writer.writerow(
                    [r.media, int(r.frames[i]), *px[i].tolist(), r.width, r.height,
                     int(r.track_ids[i]), names[i], round(float(r.scores[i]), 5)]
                )  # fmt: skip
    return path


def coco_dict(
    results: Sequence[MediaResult],
    *,
    label_attr: str = "Species",
    confidence_attr: str = "Confidence",
) -> dict[str, Any]:
    """A COCO detection dict of the boxes (``score`` also set, as COCO results have it)."""
    classes: list[str] = []
    for r in results:
        for c in r.classes:
            if c not in classes:
                classes.append(c)
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for r in results:
        if not r.ok or r.n_boxes == 0:
            continue
        px = r.boxes_pixels()
        xywh = np.column_stack([px[:, :2], px[:, 2:] - px[:, :2]])
        image_of: dict[int, int] = {}
        for f in np.unique(r.frames).tolist():
            image_of[f] = len(images) + 1
            images.append(
                {"id": len(images) + 1, "file_name": r.media, "frame": f,
                 "width": r.width, "height": r.height}
            )  # fmt: skip
        for i in range(r.n_boxes):
            name = r.classes[int(r.labels[i])]
            score = round(float(r.scores[i]), 5)
            box = [round(float(v), 2) for v in xywh[i]]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_of[int(r.frames[i])],
                    "category_id": cat_id[name],
                    "bbox": box,
                    "area": round(box[2] * box[3], 2),
                    "iscrowd": 0,
                    "score": score,
                    "track_id": int(r.track_ids[i]),
                    "attributes": {label_attr: name, confidence_attr: score},
                }
            )
    return {
        "info": {"description": "annoloop.detect results"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": c} for c, i in cat_id.items()],
    }


def write_coco(results: Sequence[MediaResult], path: str | Path, **attrs: str) -> Path:
    """Write :func:`coco_dict` as JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco_dict(results, **attrs)), encoding="utf-8")
    return path
