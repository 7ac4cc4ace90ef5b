"""Apply modifiers to a dataset: ``NAME#TAG`` copies, in parallel, reusing earlier outputs.

For each modifier the copy ``<parent>/<name>#<tag>/`` gets the same layout as the source
(images folder, annotation files, mask folder). Images are cut into chunks that run as tasks on
the executor (``"local:2"`` uses both cores of a 2-core machine); each task decodes, modifies,
encodes and writes its images atomically and reports their sizes. When every task is done the
annotation files (scaled if sizes changed) and a manifest ``.annoloop-modifier.json`` are
written.

Reuse: the manifest records the modifier (class and params) and, per image, the source's size
and modification time and the output's size. A later run with the same modifier skips every
image whose source is unchanged and whose output is still there; when nothing changed it
writes nothing at all. Another parameter set writes another folder (the tag names it), so
results are never mixed.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annoloop.errors import InvalidInput
from annoloop.experiments import _images
from annoloop.experiments._exec import executor_scope, report, task_spec
from annoloop.experiments.dataset import MANIFEST_NAME, ExperimentDataset, _sha256_file
from annoloop.experiments.modifiers._geometry import Sizes, write_annotations, write_masks
from annoloop.experiments.modifiers.base import ImageContext, Modifier, Original
from annoloop.progress import Progress, as_progress

MANIFEST_FORMAT = 1


@dataclass
class _Plan:
    """What one modifier application has to do."""

    modifier: Modifier
    source: ExperimentDataset
    root: Path
    images: Path
    manifest: dict[str, Any]
    stats: dict[str, list[int]]  # rel -> [size, mtime_ns] of the source image
    todo: list[str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def copy_name(dataset: ExperimentDataset, modifier: Modifier) -> Path:
    """Where ``modifier`` writes its copy of ``dataset``: ``<parent>/<name>#<tag>``."""
    return dataset.root.parent / f"{dataset.root.name}#{modifier.tag}"


def _load_manifest(root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or manifest.get("modifier") != spec
        or not isinstance(manifest.get("images"), dict)
    ):
        return {}
    return manifest


def _plan(dataset: ExperimentDataset, modifier: Modifier, force: bool) -> _Plan:
    root = copy_name(dataset, modifier)
    rel_images = (
        dataset.images.relative_to(dataset.root) if dataset.images != dataset.root else None
    )
    images = root / rel_images if rel_images is not None else root
    spec = modifier.spec()
    manifest = {} if force else _load_manifest(root, spec)
    done = manifest.get("images", {})
    stats: dict[str, list[int]] = {}
    todo: list[str] = []
    for rel in dataset.image_files():
        st = (dataset.images / rel).stat()
        stats[rel] = [st.st_size, st.st_mtime_ns]
        entry = done.get(rel)
        out = images / rel
        ok = (
            isinstance(entry, dict)
            and entry.get("source") == stats[rel]
            and out.is_file()
            and out.stat().st_size == entry.get("output")
        )
        if not ok:
            todo.append(rel)
    if not stats:
        raise InvalidInput("no image files to modify", str(dataset.images))
    return _Plan(modifier, dataset, root, images, manifest, stats, todo)


def modify_images(
    modifier: Modifier, src_dir: str, dst_dir: str, items: list[str]
) -> list[dict[str, Any]]:
    """One executor task: modify the images ``items`` (paths relative to ``src_dir``).

    Returns one dict per image: ``rel``, ``size_in`` (w, h), ``size`` (w, h), ``output``
    (bytes written), ``extra`` (values the modifier reported) or ``error`` (the reason it
    failed; the other images go on).
    """
    out: list[dict[str, Any]] = []
    for n, rel in enumerate(items):
        src = Path(src_dir) / rel
        try:
            data = src.read_bytes()
            context = ImageContext(file_name=rel)
            result = modifier.process(data, src.suffix, context)
            _images.write_atomic(Path(dst_dir) / rel, result.data)
            out.append(
                {
                    "rel": rel,
                    "size_in": [result.width_in, result.height_in],
                    "size": [result.width, result.height],
                    "output": len(result.data),
                    "extra": result.extra,
                }
            )
        except (InvalidInput, OSError) as exc:
            out.append({"rel": rel, "error": str(exc)})
        report(n + 1, len(items), f"{modifier.tag}: {rel}")
    return out


def _chunks(items: list[str], chunk_size: int | None) -> list[list[str]]:
    if not items:
        return []
    size = chunk_size or max(1, min(64, math.ceil(len(items) / 16)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _finish(plan: _Plan) -> ExperimentDataset:
    """Write annotations, masks and the manifest once the images are done."""
    src, root = plan.source, plan.root
    entries: dict[str, Any] = dict(plan.manifest.get("images", {}))
    for rel in list(entries):
        if rel not in plan.stats:  # the source image is gone: so is its copy
            (plan.images / rel).unlink(missing_ok=True)
            del entries[rel]
    for rel, res in plan.results.items():
        entries[rel] = {
            "source": plan.stats[rel],
            "output": res["output"],
            "size_in": res["size_in"],
            "size": res["size"],
            "extra": res["extra"],
        }
    sizes: Sizes = {
        rel: (*e["size_in"], *e["size"])  # type: ignore[misc]
        for rel, e in entries.items()
        if rel in plan.stats
    }
    ann_sums = {p.name: _sha256_file(p) for p in src.annotations}
    changed = bool(plan.results) or plan.manifest.get("annotations") != ann_sums
    for path in src.annotations:
        target = root / path.name
        if changed or not target.is_file():
            write_annotations(path, target, sizes)
    masks = None
    if src.masks is not None:
        rel_masks = src.masks.relative_to(src.root) if src.masks.is_relative_to(src.root) else None
        masks = root / (rel_masks if rel_masks is not None else src.masks.name)
        if changed or not masks.is_dir():
            if masks.is_dir():
                shutil.rmtree(masks)
            write_masks(src.masks, masks, sizes)
    if changed or not (root / MANIFEST_NAME).is_file():
        manifest = {
            "format": MANIFEST_FORMAT,
            "modifier": plan.modifier.spec(),
            "source": str(src.root),
            "annotations": ann_sums,
            "images": entries,
        }
        _images.write_atomic(root / MANIFEST_NAME, json.dumps(manifest, indent=1).encode())
    previous = src.params.get("modifier")
    chain = (
        plan.modifier.tag if previous in (None, "original") else f"{previous}#{plan.modifier.tag}"
    )
    params = {**src.params, **plan.modifier.log_params(), "ds_name": root.name, "modifier": chain}
    return ExperimentDataset(
        root, plan.images, [root / p.name for p in src.annotations], masks, params
    )


def apply_modifiers(
    dataset: ExperimentDataset,
    modifiers: list[Modifier],
    *,
    executor: Any = None,
    progress: Progress | None = None,
    force: bool = False,
    chunk_size: int | None = None,
) -> list[ExperimentDataset]:
    """Apply each modifier to ``dataset`` (not chained) and return the modified datasets.

    All chunks of all modifiers are submitted at once so that every worker stays busy.
    ``executor`` is an executor or a name for :func:`annoloop.execution.get_executor`
    (None: the default). ``force`` redoes every image. An image that cannot be read or
    modified does not stop the others; InvalidInput naming them is raised at the end (the
    good ones are kept and reused by the next run).
    """
    report_to = as_progress(progress)
    plans: list[_Plan | None] = []
    for m in modifiers:
        if not isinstance(m, Modifier):
            raise InvalidInput(f"expected a Modifier, got {type(m).__name__}")
        plans.append(None if isinstance(m, Original) else _plan(dataset, m, force))
    total = sum(len(p.todo) for p in plans if p is not None)
    done = 0
    report_to(0, total, "modifying images")
    if total:
        with executor_scope(executor) as ex:
            jobs = []
            for plan in plans:
                if plan is None:
                    continue
                for chunk in _chunks(plan.todo, chunk_size):
                    spec = task_spec(f"modify {dataset.name} with {plan.modifier.tag}")
                    fut = ex.submit(
                        modify_images,
                        plan.modifier,
                        str(dataset.images),
                        str(plan.images),
                        chunk,
                        spec=spec,
                    )
                    jobs.append((plan, fut, len(chunk)))
            for plan, fut, n in jobs:
                for res in fut.result():
                    if "error" in res:
                        plan.errors[res["rel"]] = res["error"]
                    else:
                        plan.results[res["rel"]] = res
                done += n
                report_to(done, total, f"modified {done}/{total} images")
    out = []
    failed: list[str] = []
    for plan in plans:
        if plan is None:
            out.append(dataset.with_params(modifier="original"))
            continue
        out.append(_finish(plan))
        failed += [f"{plan.modifier.tag}: {rel}: {err}" for rel, err in plan.errors.items()]
    if failed:
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        raise InvalidInput(
            f"{len(failed)} image(s) could not be modified: " + "; ".join(failed[:5]) + more,
            str(dataset.root),
        )
    return out


def apply_modifier(
    dataset: ExperimentDataset,
    modifier: Modifier,
    *,
    executor: Any = None,
    progress: Progress | None = None,
    force: bool = False,
    chunk_size: int | None = None,
) -> ExperimentDataset:
    """Apply one modifier; see :func:`apply_modifiers`. Chain modifiers by applying the next
    one to the result (``coins#blur_sigma2#jpeg_quality10``)."""
    return apply_modifiers(
        dataset,
        [modifier],
        executor=executor,
        progress=progress,
        force=force,
        chunk_size=chunk_size,
    )[0]


def remove_copy(dataset: ExperimentDataset) -> None:
    """Delete a modified copy made by :func:`apply_modifier` (refuses anything else)."""
    if not (dataset.root / MANIFEST_NAME).is_file() or "#" not in dataset.root.name:
        raise InvalidInput("not a modified copy (no modifier manifest)", str(dataset.root))
    shutil.rmtree(dataset.root)


__all__ = ["apply_modifier", "apply_modifiers", "copy_name", "modify_images", "remove_copy"]
