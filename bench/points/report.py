"""Render ``bench/points/results.json`` (from ``bench_points.py``) as ``RESULTS.md``.

Usage::

    python bench/points/report.py [results.json] [RESULTS.md]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "n/a"


def _extract_rows(res: dict[str, Any]) -> list[str]:
    rows = [
        "| image size | tool | images | wall s/image | CPU s/image | images/s (wall) "
        "| speed-up (wall) | speed-up (CPU) | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, row in res.items():
        if not isinstance(row, dict) or "pyspacer" not in row:
            continue
        base = row["pyspacer"]
        n = len(base["per_image"])
        bw, bc = base["wall"] / n, base["cpu"] / n
        for tool in ("pyspacer", "annoloop", "annoloop_bf16"):
            r = row.get(tool)
            if not r:
                continue
            w, c = r["wall"] / n, r["cpu"] / n
            name = {"pyspacer": "PySpacer 0.14.0", "annoloop": "annoloop float32",
                    "annoloop_bf16": "annoloop bfloat16"}[tool]  # fmt: skip
            rows.append(
                f"| {key} | {name} | {n} | {w:.2f} | {c:.2f} | {1 / w:.2f} | "
                f"{_ratio(bw, w)} | {_ratio(bc, c)} | {r['peak_rss_mb']:.0f} |"
            )
    return rows


def _bare_rows(res: dict[str, Any]) -> list[str]:
    rows = [
        "| image size | precision | task wall s/image | bare forward wall s/image | task / bare "
        "(wall) | task CPU s/image | bare forward CPU s/image | task / bare (CPU) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, row in res.items():
        if not isinstance(row, dict) or "pyspacer" not in row:
            continue
        for tool, prec in (("annoloop", "float32"), ("annoloop_bf16", "bfloat16")):
            r = row.get(tool)
            if not r or not r.get("bare_forward"):
                continue
            per = r["per_image"]
            bare_w = sum(r["bare_forward"]) / len(r["bare_forward"])
            bare_c = sum(r.get("bare_forward_cpu") or [0]) / max(1, len(r["bare_forward"]))
            # the whole task less building the network (once per process, cached after)
            task_w = sum(p["wall"] - p["timings"].get("load_extractor", 0) for p in per) / len(per)
            task_c = sum(p["cpu"] for p in per) / len(per)
            rows.append(
                f"| {key} | {prec} | {task_w:.2f} | {bare_w:.2f} | {_ratio(task_w, bare_w)} | "
                f"{task_c:.2f} | {bare_c:.2f} | {_ratio(task_c, bare_c)} |"
            )
    return rows


def _agreement_rows(res: dict[str, Any]) -> list[str]:
    rows = [
        "| image size | annoloop precision | cosine min | cosine mean | max abs diff "
        "| max abs value |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, row in res.items():
        if not isinstance(row, dict) or "agreement" not in row:
            continue
        for prec, a in row["agreement"].items():
            rows.append(
                f"| {key} | {prec} | {a['cos_min']:.6f} | {a['cos_mean']:.6f} | "
                f"{a['max_abs_diff']:.3g} | {a['max_abs_value']:.3g} |"
            )
    return rows


def _train_rows(res: dict[str, Any]) -> list[str]:
    rows = [
        "| classifier | tool | wall s | CPU s | speed-up (wall) | validation accuracy "
        "| ECE (val) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for clf in ("MLP", "LR"):
        pair = res.get(clf)
        if not pair:
            continue
        base = pair["pyspacer"]
        for tool in ("pyspacer", "annoloop"):
            r = pair[tool]
            rows.append(
                f"| {clf} | {'PySpacer 0.14.0' if tool == 'pyspacer' else 'annoloop'} | "
                f"{r['wall']:.2f} | {r['cpu']:.2f} | {_ratio(base['wall'], r['wall'])} | "
                f"{r['acc']:.4f} | {r['ece']:.4f} |"
            )
    return rows


def render(results: dict[str, Any]) -> str:
    """The markdown report of one bench run."""
    m = results["machine"]
    out = [
        "# annoloop.points against PySpacer 0.14.0",
        "",
        f"Measured {results['date']} on {m['cores']} cores ({m['cpu']}), CPU only, Python "
        f"{m['python']}, torch threads {results['threads']}. The machine was shared with other "
        f"jobs: load average {m['load_avg_start'][0]:.1f} at the start and "
        f"{m['load_avg_end'][0]:.1f} at the end, so wall times are noisy; CPU seconds "
        "(process time) are the steadier comparison. Total run "
        f"{results.get('total_s', 0):.0f} s.",
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
        "python bench/points/bench_points.py            # extract, train, memory",
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
            "Feature agreement with PySpacer (same weights, same patches; annoloop stores "
            "float32 here):",
            "",
            *_agreement_rows(ex),
            "",
        ]
        if "bf16_vs_fp32" in results:
            b = results["bf16_vs_fp32"]
            out += [
                f"annoloop bfloat16 against float32 features: cosine min {b['cos_min']:.4f}, "
                f"mean {b['cos_mean']:.4f}, max abs diff {b['max_abs_diff']:.3g}.",
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
            "for both from the stored validation scores.",
            "",
            *_train_rows(tr),
            "",
        ]
    if "memory" in results:
        mem = results["memory"]
        per = mem["per_image"][0]
        out += [
            "## Memory",
            "",
            f"A 10,000 x 10,000 JPEG (decoded: {mem['image_mb']:.0f} MiB) with "
            f"{mem['points']} points through annoloop (EfficientNet-Lite0, float32): peak RSS "
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
