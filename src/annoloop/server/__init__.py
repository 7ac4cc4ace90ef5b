"""annoloop.server: the REST API and web UI of a home project and the projects registered in
it (FastAPI + uvicorn).

- :func:`create_app` builds the FastAPI app (``annoloop.server.app``).
- :func:`serve` runs it with uvicorn (the service behind ``annoloop serve``).
- :func:`add_user` creates an account (the service behind ``annoloop users add``).

One app serves a home project, whose database holds the server's accounts and its registry of
other projects with their members (:mod:`annoloop.server.projects`); every API route acts on
the home project under ``/api/`` and on project NAME under ``/api/projects/NAME/``. Importing
this package is cheap: FastAPI is imported only when an app is made.
"""

from __future__ import annotations

from typing import Any


def create_app(project_or_folder: Any, *, secret_key: str | bytes | None = None, **kw: Any) -> Any:
    """The FastAPI app of a project; see :func:`annoloop.server.app.create_app`."""
    from annoloop._lazy import lazy_import

    lazy_import("fastapi", "server")
    from annoloop.server.app import create_app as _create_app

    return _create_app(project_or_folder, secret_key=secret_key, **kw)


def serve(project_folder: Any, host: str = "127.0.0.1", port: int = 8000, **kw: Any) -> None:
    """Serve a project until interrupted; see :func:`annoloop.server.run.serve`."""
    from annoloop.server.run import serve as _serve

    _serve(project_folder, host=host, port=port, **kw)


def add_user(project: Any, name: str, password: str, role: str = "annotator") -> int:
    """Create an account; see :func:`annoloop.server.auth.add_user`."""
    from annoloop.server.auth import add_user as _add_user

    return _add_user(project, name, password, role)


__all__ = ["add_user", "create_app", "serve"]
