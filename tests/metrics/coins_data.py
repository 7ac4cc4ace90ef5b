"""Test data for the COCO metrics, made from the bundled coins.png (no files committed).

Ground truth: the 24 coins of skimage's coins.png, found by a local threshold, hole filling
and connected components (skimage.measure.label + regionprops), on two images: the photo and
the photo scaled 2x (so small, medium and large COCO area ranges all occur). Coins are split
into two categories by size. Detections: every coin jittered (box shifted and scaled, mask
shifted and grown or shrunk), some dropped, some duplicated, some with the wrong category, plus
false positives, all with random scores. Everything is seeded, so the data is the same on
every run.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np

from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import to_relative, xywh_to_cxcywh
from annoloop.geometry.kinds import Kind
from annoloop.geometry.masks import rle_encode
from annoloop.samples import photo_path

CATEGORIES = [{"id": 1, "name": "small coin"}, {"id": 7, "name": "large coin"}]


@lru_cache(maxsize=1)
def coin_masks() -> tuple[np.ndarray, ...]:
    """The 24 coin masks (bool, 303 x 384) of coins.png, top-left first."""
    from scipy import ndimage as ndi
    from skimage import io, measure
    from skimage.filters import threshold_local

    image = io.imread(photo_path("coins.png"))
    bw = image > threshold_local(image, 151, offset=-10)
    bw = ndi.binary_opening(bw, structure=np.ones((5, 5), bool))
    bw = ndi.binary_fill_holes(bw)
    labels = measure.label(bw)
    regions = [r for r in measure.regionprops(labels) if r.area >= 500]
    regions.sort(key=lambda r: (r.bbox[0] // 50, r.bbox[1]))
    return tuple(labels == r.label for r in regions)


def _masks_for(scale: int) -> list[np.ndarray]:
    return [np.kron(m, np.ones((scale, scale), bool)) for m in coin_masks()]


def _box(mask: np.ndarray) -> list[float]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return [
        float(cols[0]),
        float(rows[0]),
        float(cols[-1] - cols[0] + 1),
        float(rows[-1] - rows[0] + 1),
    ]


@lru_cache(maxsize=1)
def _ground_truth() -> dict:
    images, anns = [], []
    median = float(np.median([m.sum() for m in coin_masks()]))
    for image_id, scale in ((1, 1), (2, 2)):
        masks = _masks_for(scale)
        h, w = masks[0].shape
        images.append({"id": image_id, "file_name": f"coins_x{scale}.png", "width": w, "height": h})
        for m in masks:
            area = float(m.sum())
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1 if area / scale**2 < median else 7,
                    "bbox": _box(m),
                    "area": area,
                    "segmentation": rle_encode(m),
                    "iscrowd": 0,
                }
            )
    return {"images": images, "categories": CATEGORIES, "annotations": anns}


def coin_ground_truth() -> dict:
    """COCO ground truth: 2 images, 48 coins, boxes, RLE masks and areas."""
    return copy.deepcopy(_ground_truth())


def _jitter_mask(mask: np.ndarray, rng: np.random.Generator, scale: int) -> np.ndarray:
    from scipy import ndimage as ndi

    dy, dx = rng.integers(-3 * scale, 3 * scale + 1, size=2)
    out = np.roll(mask, (int(dy), int(dx)), axis=(0, 1))
    grow = int(rng.integers(-2, 3)) * scale
    if grow > 0:
        out = ndi.binary_dilation(out, iterations=grow)
    elif grow < 0:
        out = ndi.binary_erosion(out, iterations=-grow)
    return out


def coin_detections(iou_type: str = "bbox", seed: int = 0) -> list[dict]:
    """COCO results for :func:`coin_ground_truth`: jittered, dropped, duplicated, false."""
    rng = np.random.default_rng(seed)
    gt = _ground_truth()
    out: list[dict] = []
    masks = {1: _masks_for(1), 2: _masks_for(2)}
    for k, ann in enumerate(gt["annotations"]):
        scale = ann["image_id"]
        if rng.random() < 0.15:
            continue  # missed
        copies = 2 if rng.random() < 0.1 else 1  # a duplicate detection
        for _ in range(copies):
            cat = ann["category_id"]
            if rng.random() < 0.1:
                cat = 8 - cat  # the other category (1 <-> 7)
            det = {"image_id": ann["image_id"], "category_id": cat, "score": float(rng.random())}
            if iou_type == "bbox":
                x, y, w, h = ann["bbox"]
                s = rng.normal(1.0, 0.12, size=2)
                det["bbox"] = [
                    x + rng.normal(0, 3) * scale,
                    y + rng.normal(0, 3) * scale,
                    max(w * s[0], 1.0),
                    max(h * s[1], 1.0),
                ]
            else:
                det["segmentation"] = rle_encode(_jitter_mask(masks[scale][k % 24], rng, scale))
            out.append(det)
    for image in gt["images"]:  # false positives
        h, w = image["height"], image["width"]
        for _ in range(6):
            x, y = rng.uniform(0, w - 60), rng.uniform(0, h - 60)
            size = rng.uniform(15, 60, size=2)
            det = {
                "image_id": image["id"],
                "category_id": int(rng.choice([1, 7])),
                "score": float(rng.uniform(0, 0.8)),
            }
            if iou_type == "bbox":
                det["bbox"] = [x, y, float(size[0]), float(size[1])]
            else:
                rr, cc = np.mgrid[0:h, 0:w]
                disc = (rr - y - size[1] / 2) ** 2 + (cc - x - size[0] / 2) ** 2 < (
                    size[0] / 2
                ) ** 2
                det["segmentation"] = rle_encode(disc)
            out.append(det)
    return out


def as_dataset(gt: dict, dets: list[dict] | None = None) -> tuple[Dataset, Annotations | None]:
    """The ground truth as an annoloop Dataset (bbox rows) and detections as Annotations."""
    index = {img["id"]: i for i, img in enumerate(gt["images"])}
    cat_index = {c["id"]: j for j, c in enumerate(gt["categories"])}
    sizes = np.array([[img["width"], img["height"]] for img in gt["images"]], float)

    def rows(records: list[dict], with_score: bool) -> Annotations:
        img = np.array([index[r["image_id"]] for r in records])
        boxes = xywh_to_cxcywh(np.array([r["bbox"] for r in records], float))
        rel = to_relative(boxes, sizes[img, 0], sizes[img, 1])
        conf = np.array([r["score"] for r in records], np.float32) if with_score else None
        return Annotations.from_boxes(
            img,
            rel,
            [cat_index[r["category_id"]] for r in records],
            conf,
            kind=Kind.BBOX,
            label_names=[c["name"] for c in gt["categories"]],
        )

    dataset = Dataset(
        images=[ImageRecord(img["file_name"], img["width"], img["height"]) for img in gt["images"]],
        labels=[c["name"] for c in gt["categories"]],
        annotations=rows(gt["annotations"], False),
    )
    return dataset, (rows(dets, True) if dets is not None else None)
