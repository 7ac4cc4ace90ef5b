"""Move annotations between files and a project: the service behind ``annoloop import/export``."""

from __future__ import annotations

import inspect
from typing import Any

from annoloop.formats import get_format
from annoloop.formats.dataset import ExportReport
from annoloop.progress import Progress, as_progress


def _accepted(fn: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that ``fn`` takes (formats differ in their keywords)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in options.items() if v is not None}
    return {k: v for k, v in options.items() if k in params and v is not None}


def import_annotations(
    project: Any,
    format: str,
    path: Any,
    *,
    images_root: Any = None,
    task: str | int | None = None,
    source: str = "human",
    progress: Progress | None = None,
    **options: Any,
) -> Any:
    """Load ``path`` in ``format`` and add it to ``project`` in one transaction.

    Returns the project's ImportReport. Nothing is written if the file or any record is bad.
    """
    report = as_progress(progress)
    fmt = get_format(format)
    loader = getattr(fmt.module, f"load_{fmt.name}")
    report(0, 2, f"reading {format}")
    dataset = loader(path, **_accepted(loader, {"images_root": images_root, **options}))
    report(1, 2, f"importing {len(dataset.annotations)} annotations")
    result = project.import_dataset(dataset, images_root=images_root, task=task, source=source)
    report(2, 2, "done")
    return result


def export_annotations(
    project: Any,
    format: str,
    path: Any,
    *,
    task: str | int | None = None,
    source: str | None = None,
    kind: str | None = None,
    format_options: dict[str, Any] | None = None,
) -> ExportReport:
    """Write the project's annotations (optionally filtered) to ``path`` in ``format``.

    ``format_options`` go to the format's saver (for example ``{"task": "segment"}`` for YOLO).
    """
    fmt = get_format(format)
    saver = getattr(fmt.module, f"save_{fmt.name}")
    dataset = project.export_dataset(task=task, source=source, kind=kind)
    return saver(dataset, path, **_accepted(saver, format_options or {}))
