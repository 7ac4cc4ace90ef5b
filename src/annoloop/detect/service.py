"""The service behind ``annoloop detect``: open the project (when one is named), or talk to
an annoloop server (``server`` + ``token``: remote mode), run, and return a JSON-able
summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from annoloop.progress import Progress


def detect_service(
    detector: str,
    sources: list[str] | None,
    *,
    project: Path | str | None = None,
    server: str | None = None,
    images: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run :func:`annoloop.detect.run` and return :meth:`DetectReport.summary`.

    ``project`` is a project folder or database URL; ``server`` an annoloop server's URL
    (remote mode, with ``token`` among the options); with neither, ``sources`` are required.
    ``images`` selects a project's or server's images: ``"all"`` or ids separated by commas.
    ``options`` are the keyword arguments of ``run``."""
    from annoloop.detect.run import run
    from annoloop.errors import InvalidInput

    ids = parse_images(images)
    if server is not None:
        if project is not None or sources:
            raise InvalidInput("remote mode works on the server's images: no project, no files",
                               "server")  # fmt: skip
        return run(detector, server=server, images=ids, progress=progress, **options).summary()
    if ids is not None:
        options["images"] = ids
    if not sources and project is None:
        raise InvalidInput("name media files or folders, or a project", "sources")
    if project is None:
        report = run(detector, sources, progress=progress, **options)
        return report.summary()
    from annoloop.store import Project

    with Project.open(project) as proj:
        report = run(detector, sources or None, project=proj, progress=progress, **options)
        return report.summary()


def parse_images(text: str | None) -> list[int] | None:
    """``"all"`` / None -> None (every image); ``"3,5-7"`` -> [3, 5, 6, 7]."""
    from annoloop.errors import InvalidInput

    if text is None or text.strip().lower() in ("", "all"):
        return None
    ids: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise InvalidInput(f"{part.strip()!r} is not an image id or a range A-B", "images")
        lo, hi = int(first), int(last) if dash else int(first)
        if lo < 1 or hi < lo or hi - lo > 1_000_000:
            raise InvalidInput(f"{part.strip()!r} is not a range of image ids", "images")
        ids.extend(range(lo, hi + 1))
    return list(dict.fromkeys(ids))
