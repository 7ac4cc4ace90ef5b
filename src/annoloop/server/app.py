"""The FastAPI app: API routers under ``/api/``, the OpenAPI spec at ``/openapi.json`` (for
logged-in users), the web UI at ``/`` and ``/static/``.

Every route but ``POST /api/login`` and the static UI needs a user (see :mod:`.deps`). The
routers of :data:`routes.MODULES` are mounted twice: under ``/api`` for the home project and
under ``/api/projects/{project}`` for any project of the server (``routes.projects`` lists the
projects and manages membership).
annoloop errors map to HTTP statuses: InvalidInput 422, NotFound 404, AccessDenied 403,
Conflict and AlreadyExists 409, MissingDependency 501; the body is
``{"detail": message, "where": place or null, "error": class name}``.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from annoloop import __version__
from annoloop.errors import (
    AccessDenied,
    AlreadyExists,
    AnnoloopError,
    Conflict,
    InvalidInput,
    MissingDependency,
    NotFound,
)
from annoloop.server.auth import LoginGuard, TokenStore
from annoloop.server.context import ServerContext
from annoloop.server.deps import current_user, project_param
from annoloop.server.home import ServerHome
from annoloop.server.middleware import BodyLimit, SecurityHeaders
from annoloop.server.settings import ServerSettings

STATIC = Path(__file__).parent / "static"
PROJECT_PREFIX = "/api/projects/{project}"
_STATUS: tuple[tuple[type[AnnoloopError], int], ...] = (
    (InvalidInput, 422),
    (NotFound, 404),
    (AccessDenied, 403),
    (Conflict, 409),
    (AlreadyExists, 409),
    (MissingDependency, 501),
)
# The UI loads nothing from elsewhere; images come from the API as same-origin URLs.
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def status_for(exc: AnnoloopError) -> int:
    """The HTTP status of an annoloop error (500 for the root class)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _open_project(project_or_folder: Any) -> tuple[Any, bool]:
    from annoloop.store import Project

    if isinstance(project_or_folder, Project):
        return project_or_folder, False
    return Project.open(project_or_folder), True


def create_app(
    project_or_folder: Any,
    *,
    secret_key: str | bytes | None = None,
    settings: ServerSettings | None = None,
) -> FastAPI:
    """The app serving a home project (a ``Project``, a project folder or a database URL)
    and the projects registered in it (:mod:`annoloop.server.projects`).

    ``secret_key`` keys the stored token hashes (HMAC-SHA-256; changing it ends every session
    and API key); without it tokens are stored as plain SHA-256. A project opened here is
    closed when the app shuts down (so are the registered projects, opened on first use); a
    ``Project`` passed in stays open.
    """
    from annoloop.server import routes
    from annoloop.server.routes import projects as projects_routes

    settings = settings or ServerSettings()
    if secret_key is None:
        secret_key = os.environ.get("ANNOLOOP_SECRET_KEY") or None
    project, owned = _open_project(project_or_folder)
    ctx = ServerContext(
        project=project,
        settings=settings,
        tokens=TokenStore(
            project,
            secret_key=secret_key,
            session_seconds=settings.session_seconds,
            cache_seconds=settings.token_cache_seconds,
        ),
        guard=LoginGuard(settings.login_attempts, settings.login_window_seconds),
        owns_project=owned,
    )
    server = ServerHome(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        server.start()
        try:
            yield
        finally:
            server.close()

    app = FastAPI(
        title=f"annoloop: {project.name}",
        version=__version__,
        description="Machine-assisted image annotation: labels, images, annotation tasks and "
        "work items, annotations, exports, jobs, pipelines, models and statistics. Routes under "
        "/api act on the home project; the same routes under /api/projects/{project} act on "
        "that project, for its members.",
        docs_url=None,  # the interactive docs load scripts from a CDN; the spec is enough
        redoc_url=None,
        openapi_url=None,  # served below, behind login
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.ctx = ctx  # the home context
    _add_error_handlers(app)
    app.include_router(projects_routes.router, prefix="/api")
    for module in routes.MODULES:
        app.include_router(module.router, prefix="/api")
    # Every router once more per project: the {project} path parameter picks the context
    # (deps.get_ctx) and the caller's role in it (deps.current_user).
    for module in routes.MODULES:
        app.include_router(
            module.router, prefix=PROJECT_PREFIX, dependencies=[Depends(project_param)]
        )

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(current_user)])
    def openapi_spec() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(SecurityHeaders, csp=_CSP)
    # Outermost: refuse oversized bodies before anything reads them.
    app.add_middleware(
        BodyLimit, limit=settings.max_request_bytes, json_limit=settings.max_json_bytes
    )
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AnnoloopError)
    async def annoloop_error(request: Request, exc: AnnoloopError) -> JSONResponse:
        body = {
            "detail": getattr(exc, "reason", None) or str(exc),
            "where": getattr(exc, "where", None),
            "error": type(exc).__name__,
        }
        return JSONResponse(body, status_code=status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the field; never echo the input back (it may be huge or hostile).
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()[:20]
        ]
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else None
        return JSONResponse(
            {"detail": errors, "where": where, "error": "InvalidInput"}, status_code=422
        )
