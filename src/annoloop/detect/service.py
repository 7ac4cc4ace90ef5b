"""The service behind ``annoloop detect``: open the project (when one is named), run, and
return a JSON-able summary. Local mode only: a remote mode that fetches media and uploads
localizations through an annoloop server's REST API is not built yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from annoloop.progress import Progress


def detect_service(
    detector: str,
    sources: list[str] | None,
    *,
    project: Path | str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run :func:`annoloop.detect.run` and return :meth:`DetectReport.summary`.

    ``project`` is a project folder or database URL (None: no project; then ``sources``
    are required). ``options`` are the keyword arguments of ``run``."""
    from annoloop.detect.run import run
    from annoloop.errors import InvalidInput

    if not sources and project is None:
        raise InvalidInput("name media files or folders, or a project", "sources")
    if project is None:
        report = run(detector, sources, progress=progress, **options)
        return report.summary()
    from annoloop.store import Project

    with Project.open(project) as proj:
        report = run(detector, sources or None, project=proj, progress=progress, **options)
        return report.summary()
