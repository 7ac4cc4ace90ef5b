"""Render ``bench/points/results.json`` (from ``bench_points.py``) as ``RESULTS.md``.

Usage::

    python bench/points/report.py [results.json] [RESULTS.md]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "n/a"


# result key -> label, in table order (bench_points.VARIANTS plus PySpacer)
TOOLS = {
    "pyspacer": "PySpacer 0.14.0",
    "annoloop": "annoloop torch float32",
    "annoloop_onnx": "annoloop onnx float32",
    "annoloop_bf16": "annoloop torch bfloat16",
    "annoloop_int8": "annoloop onnx int8",
    "annoloop_ov_bf16": "annoloop openvino bfloat16",
}


TRAIN_TOOLS = {
    "pyspacer": "PySpacer 0.14.0",
    "annoloop": "annoloop (PySpacer's files)",
    "annoloop_native": "annoloop (its own files)",
    "annoloop_f32": "annoloop float32 (PySpacer's files)",
}


def _present(container: dict[str, Any], need: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(key, label, result) of each tool, in table order, that ``container`` holds with a
    non-empty ``need`` entry."""
    for tool, name in TOOLS.items():
        r = container.get(tool)
        if isinstance(r, dict) and r.get(need):
            yield tool, name, r


def _sizes(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, v) for k, v in res.items() if isinstance(v, dict) and "pyspacer" in v]


def _table(header: str, body: list[str]) -> list[str]:
    """A markdown table from ``"a | b | c"`` header and row strings."""
    width = header.count("|") + 1
    return [f"| {header} |", "|" + " --- |" * width, *(f"| {line} |" for line in body)]


def _nan(d: dict[str, Any], key: str) -> float:
    return float(d.get(key, float("nan")))


def _extract_rows(res: dict[str, Any]) -> list[str]:
    body = []
    for key, row in _sizes(res):
        base = row["pyspacer"]
        n = len(base["per_image"])
        bw, bc = base["wall"] / n, base["cpu"] / n
        for _, name, r in _present(row, "per_image"):
            w, c = r["wall"] / n, r["cpu"] / n
            load = f"{r['load_before']:.1f} -> {r['load_after']:.1f}" if "load_before" in r else ""
            body.append(
                f"{key} | {name} | {n} | {w:.2f} | {c:.2f} | {1 / w:.2f} | {_ratio(bw, w)} | "
                f"{_ratio(bc, c)} | {r['peak_rss_mb']:.0f} | {load}"
            )
    return _table(
        "image size | tool | images | wall s/image | CPU s/image | images/s (wall) | speed-up "
        "(wall) | speed-up (CPU) | peak RSS MiB | load avg before -> after",
        body,
    )


def _bare(r: dict[str, Any]) -> tuple[float, float, float, float]:
    """(task wall, bare wall, task CPU, bare CPU) seconds per image."""
    per = r["per_image"]
    bare_w = sum(r["bare_forward"]) / len(r["bare_forward"])
    bare_c = sum(r.get("bare_forward_cpu") or [0]) / max(1, len(r["bare_forward"]))
    # the whole task less building the network (once per process, cached after)
    task_w = sum(p["wall"] - p["timings"].get("load_extractor", 0) for p in per) / len(per)
    task_c = sum(p["cpu"] for p in per) / len(per)
    return task_w, bare_w, task_c, bare_c


def _bare_rows(res: dict[str, Any]) -> list[str]:
    body = []
    for key, row in _sizes(res):
        for _, name, r in _present(row, "bare_forward"):
            tw, bw, tc, bc = _bare(r)
            body.append(
                f"{key} | {name.removeprefix('annoloop ')} | {tw:.2f} | {bw:.2f} | "
                f"{_ratio(tw, bw)} | {tc:.2f} | {bc:.2f} | {_ratio(tc, bc)}"
            )
    return _table(
        "image size | annoloop variant | task wall s/image | bare forward wall s/image | task / "
        "bare (wall) | task CPU s/image | bare forward CPU s/image | task / bare (CPU)",
        body,
    )


def _agreement_rows(res: dict[str, Any]) -> list[str]:
    body = []
    for key, row in res.items():
        if not isinstance(row, dict) or "agreement" not in row:
            continue
        for variant, a in row["agreement"].items():
            v = a.get("vs_float32") or {}
            body.append(
                f"{key} | {variant} | {a['cos_min']:.6f} | {a['cos_mean']:.6f} | "
                f"{a['max_abs_diff']:.3g} | {_nan(v, 'cos_min'):.6f} | {_nan(v, 'cos_mean'):.6f}"
                f" | {_nan(v, 'max_abs_diff'):.3g} | {a['max_abs_value']:.3g}"
            )
    return _table(
        "image size | annoloop variant | vs PySpacer: cosine min | cosine mean | max abs diff | "
        "vs annoloop torch float32: cosine min | cosine mean | max abs diff | max abs value",
        body,
    )


def _goal_lines(res: dict[str, Any]) -> list[str]:
    """Where the 5x extraction goal stands, in numbers (CPU seconds per image)."""
    out = []
    for key, row in _sizes(res):
        base = row["pyspacer"]
        n = len(base["per_image"])
        budget = base["cpu"] / n / 5
        parts = []
        for _, name, r in _present(row, "bare_forward"):
            _, _, task_c, bare_c = _bare(r)
            parts.append(
                f"{name.removeprefix('annoloop ')}: task {task_c:.2f} s "
                f"({base['cpu'] / n / task_c:.1f}x), bare forward {bare_c:.2f} s"
            )
        out.append(
            f"- {key}: PySpacer {base['cpu'] / n:.2f} CPU s/image, so 5x means "
            f"<= {budget:.2f} CPU s/image for everything. annoloop " + "; ".join(parts) + "."
        )
    return out


def _quality_rows(q: dict[str, Any]) -> list[str]:
    body = [
        f"{name.removeprefix('annoloop ')} | {r['extract_cpu']:.1f} | {r['LR']['acc']:.4f} | "
        f"{r['MLP']['acc']:.4f} | {r['LR']['ece']:.4f} | {r['MLP']['ece']:.4f} | "
        f"{_nan(r['vs_float32'], 'cos_min'):.4f} / {_nan(r['vs_float32'], 'cos_mean'):.4f}"
        for _, name, r in _present(q, "LR")
    ]
    return _table(
        "features | extraction CPU s | LR val accuracy | MLP val accuracy | LR ECE | MLP ECE | "
        "cosine to float32 min / mean",
        body,
    )


def _train_rows(res: dict[str, Any]) -> list[str]:
    body = []
    for clf in ("MLP", "LR"):
        pair = res.get(clf)
        if not pair:
            continue
        base = pair["pyspacer"]
        for tool in TRAIN_TOOLS:
            r = pair.get(tool)
            if r is None:
                continue
            parts = ", ".join(f"{k} {v:.2f} s" for k, v in (r.get("timings") or {}).items())
            if clf == "MLP" and r.get("precision"):
                parts = f"first layer {r['precision']}; {parts}"
            if len(r.get("runs_wall", [])) > 1:
                walls = r["runs_wall"]
                parts = f"median of {len(walls)} runs ({min(walls):.2f}-{max(walls):.2f} s)" + (
                    f"; {parts}" if parts else ""
                )
            body.append(
                f"{clf} | {TRAIN_TOOLS[tool]} | "
                f"{r['wall']:.2f} | {r['cpu']:.2f} | {_ratio(base['wall'], r['wall'])} | "
                f"{_ratio(base['cpu'], r['cpu'])} | {r['acc']:.4f} | {r['ece']:.4f} | {parts}"
            )
    return _table(
        "classifier | tool | wall s | CPU s | speed-up (wall) | speed-up (CPU) | validation "
        "accuracy | ECE (val) | where the wall time went",
        body,
    )


def render(results: dict[str, Any]) -> str:
    """The markdown report of one bench run."""
    m = results["machine"]
    out = [
        "# annoloop.points against PySpacer 0.14.0",
        "",
        f"Measured {results['date']} on {m['cores']} cores ({m['cpu']}), CPU only, Python "
        f"{m['python']}, torch threads {results['threads']} (the date is the last part's "
        f"start). Load average {m['load_avg_start'][0]:.1f} at the start of the last part "
        f"and {m['load_avg_end'][0]:.1f} at its end; on a shared machine wall times are "
        "noisy and CPU seconds (process time) are the steadier comparison.",
        "",
        *[part for note in results.get("notes", []) for part in (note, "")],
        *(
            [
                "Load average (1 min) before and after each part: "
                + ", ".join(
                    f"{k} {a:.1f} -> {b:.1f}" for k, (a, b) in results["load_by_part"].items()
                )
                + "."
            ]
            if results.get("load_by_part")
            else []
        ),
        "",
        "Commands (repository root, project venv; PySpacer is in requirements-weights.txt):",
        "",
        "```console",
        "python bench/points/bench_points.py            # extract, quality, train, memory",
        "python bench/points/report.py                  # results.json -> RESULTS.md",
        "```",
        "",
    ]
    if "extract" in results:
        ex = results["extract"]
        out += [
            "## Feature extraction",
            "",
            f"Same backbone on both sides: EfficientNet-B0 in PySpacer's own class and weight "
            f"file format. No pretrained B0 ships in a package here, so the weights are "
            f"randomly initialised (batch-norm statistics re-estimated on real patches so the "
            f"activations are not degenerate); speed and agreement are what is measured. "
            f"{ex['images_per_size']} bundled photo(s) per size, resized and saved as JPEG, "
            f"{ex['points']} random points each, {ex['patch']} px patches, batch 16.",
            "",
            *_extract_rows(ex),
            "",
            "Against the bare backbone (forward alone over the same, already prepared "
            "patches, in the same batches):",
            "",
            *_bare_rows(ex),
            "",
            "Feature agreement (same weights, same patches; annoloop stores float32 here):",
            "",
            *_agreement_rows(ex),
            "",
            "Where the 5x goal stands (CPU seconds per image; the ratio in brackets is the "
            "speed-up over PySpacer):",
            "",
            *_goal_lines(ex),
            "",
        ]
    if "quality" in results:
        q = results["quality"]
        out += [
            "## Downstream accuracy with the faster features",
            "",
            f"EfficientNet-Lite0 (ImageNet weights) features of {q['images']} mosaics of "
            f"bundled photos ({q['points']} points, {q['patch']} px patches, label = the photo "
            "under the point) through each variant; the same split by mosaic (32 train, 4 "
            "reference, 4 validation), annoloop's LR and MLP trained on each (the MLP's "
            "accuracy and ECE are means over 5 seeds; one run's standard error on these "
            "validation points is about 0.012). onnx float32 is the float32 reference here "
            "(it equals torch float32 within 1e-4, see above).",
            "",
            *_quality_rows(q),
            "",
        ]
    if "train" in results:
        tr = results["train"]
        counts = tr["label_counts"]
        out += [
            "## Training on the same features",
            "",
            f"Both `train_classifier`s read the same PySpacer-format feature files "
            f"(EfficientNet-Lite0 features of mosaics of {tr['classes']} bundled photos, label "
            f"= the photo under the point) with the same split made by PySpacer's own "
            f"`preprocess_labels` (train {counts['train']}, ref {counts['ref']}, val "
            f"{counts['val']} points), {tr['epochs']} epochs. ECE is computed the same way "
            'for both from the stored validation scores. The row "annoloop (its own files)" '
            "trains on the same vectors stored the way annoloop's `extract_features` stores "
            "them (uncompressed float32 `.npz`, bit-identical values), so each tool reads its "
            "own format; the row \"annoloop (PySpacer's files)\" reads PySpacer's "
            "zlib-compressed float64 files, as PySpacer does. Each row is the median of "
            f"{len(tr['MLP']['pyspacer'].get('runs_wall', [0]))} runs in fresh processes.",
            "",
            *_train_rows(tr),
            "",
        ]
        if "mlp_seeds" in tr:
            seeds = tr["mlp_seeds"]
            if "accs" in seeds:  # results of a run before the bfloat16 trainer
                seeds = {"float32": seeds}
            out += [
                "annoloop's MLP over several seeds (1199 validation points make one run's "
                "standard error about 0.0035):",
                "",
                *[
                    f"- first layer in {p}: validation accuracy "
                    + ", ".join(f"{a:.4f}" for a in sd["accs"])
                    + f" (mean {sd['mean']:.4f})"
                    for p, sd in seeds.items()
                ],
                "",
            ]
        if "mlp_product_floor" in tr:
            f = tr["mlp_product_floor"]
            base = tr["MLP"]["pyspacer"]
            bf = (
                f", in bfloat16 {f['cpu_bf16']:.2f} CPU s (annoloop's kernels)"
                if "cpu_bf16" in f
                else ""
            )
            out += [
                f"The MLP's floor: its first layer's forward and weight-gradient products "
                f"alone ({f['n']} x {f['d']} inputs, {f['hidden']} hidden units, "
                f"{f['epochs']} epochs, one thread) take {f['cpu']:.2f} CPU s in float32 "
                f"(OpenBLAS){bf}; 10x PySpacer's {base['wall']:.2f} s wall leaves "
                f"{base['wall'] / 10:.2f} s for everything, importing and reading the features "
                "included (see the annoloop rows' import and read times).",
                "",
            ]
    if "memory" in results:
        mem = results["memory"]
        per = mem["per_image"][0]
        resolved = mem.get("resolved") or {"runtime": "torch", "precision": "float32"}
        run = f"{resolved['runtime']} {resolved['precision']}"
        out += [
            "## Memory",
            "",
            f"A 10,000 x 10,000 JPEG (decoded: {mem['image_mb']:.0f} MiB) with "
            f"{mem['points']} points through annoloop (EfficientNet-Lite0, {run}): peak RSS "
            f"{mem['peak_rss_mb']:.0f} MiB; a process that only loads the extractor peaks at "
            f"{mem['baseline_rss_mb']:.0f} MiB, so the image costs "
            f"{mem['peak_rss_mb'] - mem['baseline_rss_mb']:.0f} MiB above it (one decoded copy "
            f"is {mem['image_mb']:.0f} MiB). Time {per['wall']:.1f} s wall, {per['cpu']:.1f} s "
            "CPU.",
            "",
        ]
    return "\n".join(out) + "\n"


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json"
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "RESULTS.md"
    dst.write_text(render(json.loads(src.read_text())))
    print(f"written {dst}")


if __name__ == "__main__":
    main()
