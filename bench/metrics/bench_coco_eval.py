"""COCO box evaluation: faster-coco-eval against pycocotools on 5,000 generated images.

Data: 5,000 images of 640 x 480, about 7 ground-truth boxes each (Poisson) in 10 categories,
and 20 detections per image: jittered copies of most ground-truth boxes (some with the wrong
category), the rest false positives, all with random scores. Both libraries run their whole
path (index the ground truth, load the results, evaluate, accumulate, summarise) on fresh
copies of the same dicts; ``coco_detection`` (annoloop's checked wrapper on faster-coco-eval)
is timed too. The three run in turn ``--repeat`` times and each keeps its best wall-clock and
CPU time (CPU time is the steadier number on a machine shared with other work).

    python bench/metrics/bench_coco_eval.py [--images 5000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import platform
import time
from typing import Any

import numpy as np

STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def make_data(n_images: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """Ground truth and detections as COCO dicts."""
    rng = np.random.default_rng(seed)
    w_img, h_img = 640, 480
    images = [{"id": i + 1, "width": w_img, "height": h_img} for i in range(n_images)]
    counts = np.clip(rng.poisson(7, n_images), 1, 20)
    n_gt = int(counts.sum())
    img_of_gt = np.repeat(np.arange(1, n_images + 1), counts)
    wh = np.exp(rng.uniform(np.log(8), np.log(300), (n_gt, 2)))
    xy = rng.uniform(0, 1, (n_gt, 2)) * (np.array([w_img, h_img]) - wh)
    gt_boxes = np.concatenate([xy, wh], axis=1)
    gt_cat = rng.integers(1, 11, n_gt)
    annotations = [
        {
            "id": k + 1,
            "image_id": int(i),
            "category_id": int(c),
            "bbox": b,
            "area": float(b[2] * b[3]),
            "iscrowd": 0,
        }
        for k, (i, c, b) in enumerate(zip(img_of_gt, gt_cat, gt_boxes.tolist(), strict=True))
    ]
    gt = {
        "images": images,
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, 11)],
        "annotations": annotations,
    }
    # detections: 20 per image; found objects first, the rest false positives
    dets = []
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for image_id, start, count in zip(range(1, n_images + 1), starts, counts, strict=True):
        found = rng.random(count) < 0.8
        for k in np.flatnonzero(found)[:20]:
            x, y, w, h = gt_boxes[start + k]
            jit = rng.normal(0, 0.08, 4) * np.array([w, h, w, h])
            cat = int(gt_cat[start + k]) if rng.random() > 0.1 else int(rng.integers(1, 11))
            dets.append(
                {
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x + jit[0], y + jit[1], max(w + jit[2], 1.0), max(h + jit[3], 1.0)],
                    "score": float(rng.uniform(0.3, 1.0)),
                }
            )
        for _ in range(20 - min(int(found.sum()), 20)):
            w, h = np.exp(rng.uniform(np.log(8), np.log(300), 2))
            dets.append(
                {
                    "image_id": image_id,
                    "category_id": int(rng.integers(1, 11)),
                    "bbox": [
                        float(rng.uniform(0, w_img - w)),
                        float(rng.uniform(0, h_img - h)),
                        float(w),
                        float(h),
                    ],
                    "score": float(rng.uniform(0.0, 0.7)),
                }
            )
    return gt, dets


def run_pycocotools(gt: dict, dets: list[dict]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats[:12], dtype=float)


def run_faster(gt: dict, dets: list[dict]) -> np.ndarray:
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt)
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=lambda *a, **k: None)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats[:12], dtype=float)


def run_annoloop(gt: dict, dets: list[dict]) -> np.ndarray:
    from annoloop.metrics import coco_detection

    result = coco_detection(gt, dets)
    return np.array([result[k] for k in STATS], dtype=float)


def timed(fn: Any, gt: dict, dets: list[dict]) -> tuple[float, float, np.ndarray]:
    """Wall and CPU seconds of one run on fresh copies (the libraries mutate their input)."""
    g, d = copy.deepcopy(gt), copy.deepcopy(dets)
    wall, cpu = time.perf_counter(), time.process_time()
    stats = fn(g, d)
    return time.perf_counter() - wall, time.process_time() - cpu, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    gt, dets = make_data(args.images)
    load_before = os.getloadavg()
    print(
        f"{args.images} images, {len(gt['annotations'])} ground-truth boxes, "
        f"{len(dets)} detections; best of {args.repeat}"
    )
    runners = {"pycocotools": run_pycocotools, "faster": run_faster, "annoloop": run_annoloop}
    wall = dict.fromkeys(runners, float("inf"))
    cpu = dict.fromkeys(runners, float("inf"))
    stats: dict[str, np.ndarray] = {}
    # interleaved, best of N: other load on the machine hits all three alike
    for _ in range(args.repeat):
        for name, fn in runners.items():
            w, c, stats[name] = timed(fn, gt, dets)
            wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
    t_py, t_fast, t_ours = wall["pycocotools"], wall["faster"], wall["annoloop"]
    c_py, c_fast, c_ours = cpu["pycocotools"], cpu["faster"], cpu["annoloop"]
    s_py, s_fast, s_ours = stats["pycocotools"], stats["faster"], stats["annoloop"]
    load_after = os.getloadavg()
    diff = float(np.max(np.abs(s_py - s_fast)))
    diff_ours = float(np.max(np.abs(s_py - s_ours)))
    print(f"{'':26s}{'wall s':>8s}{'ratio':>8s}{'CPU s':>8s}{'ratio':>8s}")
    for label, w, c in (
        ("pycocotools 2.0", t_py, c_py),
        ("faster-coco-eval", t_fast, c_fast),
        ("annoloop coco_detection", t_ours, c_ours),
    ):
        print(f"{label:26s}{w:8.2f}{t_py / w:7.1f}x{c:8.2f}{c_py / c:7.1f}x")
    print("stats (pycocotools):", dict(zip(STATS, np.round(s_py, 4).tolist(), strict=True)))
    print(f"max |difference| of the 12 stats: faster {diff:.3g}, annoloop {diff_ours:.3g}")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if args.json:
        from importlib.metadata import version

        record = {
            "images": args.images,
            "gt_boxes": len(gt["annotations"]),
            "detections": len(dets),
            "wall_seconds": {"pycocotools": t_py, "faster_coco_eval": t_fast, "annoloop": t_ours},
            "cpu_seconds": {"pycocotools": c_py, "faster_coco_eval": c_fast, "annoloop": c_ours},
            "stats_max_abs_diff": {"faster_coco_eval": diff, "annoloop": diff_ours},
            "stats": dict(zip(STATS, s_py.tolist(), strict=True)),
            "versions": {
                "pycocotools": version("pycocotools"),
                "faster_coco_eval": version("faster-coco-eval"),
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "cpus": os.cpu_count(),
            "load_average_1min": [load_before[0], load_after[0]],
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
