"""Project statistics: counts as JSON and the same as a PNG of bar charts."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from annoloop.server.deps import AnyUser, Ctx

router = APIRouter(tags=["statistics"])


@router.get("/stats")
def stats(user: AnyUser, ctx: Ctx) -> dict:
    """Counts: images, labels, annotations per label / kind / source, work items per task and
    state."""
    return ctx.project.stats()


@router.get("/stats/plot.png")
def stats_plot(user: AnyUser, ctx: Ctx) -> Response:
    """Bar charts of the statistics (``annoloop.plots.plot_stats``), redrawn when they change."""
    from annoloop.plots import plot_stats

    counts = ctx.project.stats()
    signature = json.dumps(counts, sort_keys=True)
    with ctx.lock:  # matplotlib's pyplot is not thread-safe
        cached = ctx.plot_cache.get("stats")
        if cached is None or cached[0] != signature:
            with tempfile.TemporaryDirectory(prefix="annoloop-plot-") as tmp:
                path = plot_stats(counts, Path(tmp) / "stats.png")
                cached = (signature, Path(path).read_bytes())
            ctx.plot_cache["stats"] = cached
    return Response(cached[1], media_type="image/png", headers={"Cache-Control": "no-store"})
