"""Benchmark: the JPEG modifier over a 200-image dataset, annoloop against iquaflow 1.0.1.

    python bench/experiments/bench_jpeg_modifier.py [--iqf-python /tmp/iqf-venv/bin/python]
        [--images 200] [--quality 30] [--repeats 3] [--out bench/experiments/results.json]

Two datasets of 200 images each are generated from the photos bundled in installed packages
(seeded random 480x360 crops of 15 photos, flipped at random): one of JPEG files (quality 95)
and one of PNG files, each with a COCO file of one box per image.

Each side makes the ``NAME#...`` copy from scratch (its output folder is deleted before every
repeat), timed end to end from the caller's view:

- iquaflow: ``DSWrapper(data_path).modify(DSModifier_jpg(params={"quality": q}))`` run by
  bench/experiments/iquaflow_jpeg.py in the iquaflow environment (setup_iquaflow_env.sh).
  Per image: ``cv2.imread`` -> ``cv2.imencode(".jpg", q)`` -> ``cv2.imdecode`` ->
  ``cv2.imwrite`` in the source format (JPEG sources are saved again at OpenCV's quality 95).
- annoloop: ``apply_modifier(ds, Jpeg(quality=q), executor="local:2", force=True)``, the
  process pool started inside the timing ("cold"); the same with a pool started and warmed up
  before the clock starts ("warm", as inside an experiment, which keeps one executor for all
  its modifiers and runs); ``executor="local"`` (in-process, one core); and, for the JPEG
  set, ``reencode=True`` (iquaflow's double encoding, to compare bytes).

The sides are run alternately, ``--repeats`` times, and the median is reported (the machine
is shared). "Same numbers": the output images of both sides are decoded and compared pixel by
pixel (identical pixels, max difference, PSNR between them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from annoloop.execution import get_executor
from annoloop.experiments import ExperimentDataset, apply_modifier, get_modifier
from annoloop.experiments.modifiers.apply import modify_images
from annoloop.samples import PHOTOS, photo_path
from annoloop.storage import read_image


def make_dataset(root: Path, n: int, suffix: str, seed: int = 0) -> Path:
    """``n`` crops of the bundled photos as ``suffix`` files with a COCO file of boxes."""
    from PIL import Image

    folder = root / f"bench{suffix.replace('.', '_')}"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    photos = [read_image(photo_path(name)) for name in sorted(PHOTOS)]
    images, anns = [], []
    w, h = 480, 360
    for i in range(n):
        photo = photos[i % len(photos)]
        if photo.shape[0] < h or photo.shape[1] < w:  # small photos are enlarged first
            scale = max(h / photo.shape[0], w / photo.shape[1])
            big = Image.fromarray(photo).resize(
                (int(np.ceil(photo.shape[1] * scale)), int(np.ceil(photo.shape[0] * scale)))
            )
            photo = np.asarray(big)
        y0 = int(rng.integers(0, photo.shape[0] - h + 1))
        x0 = int(rng.integers(0, photo.shape[1] - w + 1))
        crop = photo[y0 : y0 + h, x0 : x0 + w]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        name = f"img_{i:04d}{suffix}"
        if suffix == ".jpg":
            Image.fromarray(np.ascontiguousarray(crop)).save(folder / "images" / name, quality=95)
        else:
            Image.fromarray(np.ascontiguousarray(crop)).save(folder / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        anns.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [40.0, 30.0, 200.0, 150.0],
                "area": 30000.0,
                "iscrowd": 0,
            }
        )
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder


CPU: dict[str, list[float]] = {"iquaflow": [], "annoloop_1core": []}


def run_iquaflow(python: str, folder: Path, quality: int) -> tuple[float, Path]:
    shutil.rmtree(folder.parent / f"{folder.name}#jpg{quality}_modifier", ignore_errors=True)
    script = Path(__file__).with_name("iquaflow_jpeg.py")
    proc = subprocess.run(
        [python, str(script), str(folder), str(quality)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("{")][-1]
    doc = json.loads(line)
    CPU["iquaflow"].append(float(doc["cpu_seconds"]))
    # the seconds measured inside: interpreter start and imports are not counted against it
    return float(doc["seconds"]), Path(doc["output"])


def run_annoloop(
    folder: Path, quality: int, executor: object, **params: object
) -> tuple[float, Path]:
    ds = ExperimentDataset.open(folder)
    modifier = get_modifier("jpeg", quality=quality, **params)
    shutil.rmtree(folder.parent / f"{folder.name}#{modifier.tag}", ignore_errors=True)
    start, cpu = time.perf_counter(), time.process_time()
    copy = apply_modifier(ds, modifier, executor=executor, force=True)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if executor == "local":  # in this process: its CPU time is the whole work
        CPU["annoloop_1core"].append(cpu)
    return elapsed, copy.root


def compare(a: Path, b: Path) -> dict[str, float]:
    """Pixel comparison of the images of two output folders (same file names)."""
    same = 0
    max_diff = 0
    sq, count = 0.0, 0
    names = sorted(p.name for p in (a / "images").iterdir())
    for name in names:
        x = read_image(a / "images" / name).astype(np.int16)
        y = read_image(b / "images" / name).astype(np.int16)
        d = np.abs(x - y)
        same += int(not d.any())
        max_diff = max(max_diff, int(d.max()))
        sq += float((d.astype(np.float64) ** 2).sum())
        count += d.size
    mse = sq / count
    return {
        "images": len(names),
        "identical_images": same,
        "max_abs_difference": max_diff,
        "psnr_between_db": float("inf") if mse == 0 else 10 * np.log10(255**2 / mse),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--iqf-python", default=os.environ.get("IQF_PYTHON", "/tmp/iqf-venv/bin/python")
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--quality", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args()

    report: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_start": os.getloadavg(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "images": args.images,
        "quality": args.quality,
    }
    with tempfile.TemporaryDirectory(prefix="bench-jpeg-") as tmp:
        root = Path(tmp)
        for suffix in (".jpg", ".png"):
            folder = make_dataset(root, args.images, suffix)
            times: dict[str, list[float]] = {
                "iquaflow": [],
                "annoloop_2proc": [],
                "annoloop_2proc_warm": [],
                "annoloop_1core": [],
            }
            if suffix == ".jpg":
                times["annoloop_2proc_reencode"] = []
            outputs: dict[str, Path] = {}
            for _ in range(args.repeats):
                t, outputs["iquaflow"] = run_iquaflow(args.iqf_python, folder, args.quality)
                times["iquaflow"].append(t)
                t, outputs["annoloop_2proc"] = run_annoloop(folder, args.quality, "local:2")
                times["annoloop_2proc"].append(t)
                with get_executor("local:2") as warm:
                    # started and warmed up before the clock starts, as inside an experiment
                    for fut in [
                        warm.submit(modify_images, get_modifier("jpeg"), "", "", [])
                        for _ in range(4)
                    ]:
                        fut.result()
                    t, outputs["annoloop_2proc_warm"] = run_annoloop(folder, args.quality, warm)
                times["annoloop_2proc_warm"].append(t)
                t, outputs["annoloop_1core"] = run_annoloop(folder, args.quality, "local")
                times["annoloop_1core"].append(t)
                if suffix == ".jpg":
                    t, outputs["annoloop_2proc_reencode"] = run_annoloop(
                        folder, args.quality, "local:2", reencode=True
                    )
                    times["annoloop_2proc_reencode"].append(t)
            medians = {k: statistics.median(v) for k, v in times.items()}
            cpu = {k: statistics.median(v) for k, v in CPU.items()}
            entry: dict[str, object] = {
                "seconds": times,
                "median_seconds": medians,
                "median_cpu_seconds": cpu,
                "cpu_ratio_iquaflow_over_annoloop_1core": cpu["iquaflow"] / cpu["annoloop_1core"],
                "speedup_vs_iquaflow": {
                    k: medians["iquaflow"] / v for k, v in medians.items() if k != "iquaflow"
                },
                "same_numbers": {
                    k: compare(outputs["iquaflow"], p)
                    for k, p in outputs.items()
                    if k != "iquaflow"
                },
            }
            if suffix == ".jpg":
                reenc = outputs["annoloop_2proc_reencode"] / "images"
                iqf = outputs["iquaflow"] / "images"
                entry["byte_identical_files_reencode"] = sum(
                    (reenc / p.name).read_bytes() == p.read_bytes() for p in iqf.iterdir()
                )
            report[f"dataset{suffix}"] = entry
            for values in CPU.values():
                values.clear()
            print(
                json.dumps(
                    {suffix: entry["median_seconds"], "speedup": entry["speedup_vs_iquaflow"]},
                    indent=1,
                )
            )
    report["machine"]["load_average_end"] = os.getloadavg()  # type: ignore[index]
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"written {args.out}")


if __name__ == "__main__":
    sys.exit(main())
