"""API routers, one module per resource; :data:`MODULES` is what the app mounts under /api."""

# No "from __future__ import annotations": it would bind the name `annotations` and hide the
# routes.annotations module.
from annoloop.server.routes import (
    annotations,
    auth,
    detections,
    exports,
    images,
    items,
    jobs,
    labels,
    models,
    pipelines,
    project,
    stats,
    tasks,
    users,
)

MODULES = (
    auth,
    users,
    project,
    labels,
    images,
    tasks,
    items,
    annotations,
    stats,
    exports,
    jobs,
    pipelines,
    models,
    detections,
)
