"""Every route checks who calls it: 401 without a valid token, 403 below its role.

The table below is the permission model; a new route must be added to it (the first test
fails otherwise), so no route can be left open by accident.
"""

from __future__ import annotations

import re

import pytest

# (method, path) -> the lowest role allowed; None = open (login only)
ROLES = {
    ("POST", "/api/login"): None,
    ("POST", "/api/logout"): "annotator",
    ("GET", "/api/me"): "annotator",
    ("PUT", "/api/me/password"): "annotator",
    ("POST", "/api/tokens"): "annotator",
    ("GET", "/api/users"): "admin",
    ("POST", "/api/users"): "admin",
    ("PATCH", "/api/users/{name}"): "admin",
    ("DELETE", "/api/users/{name}"): "admin",
    ("GET", "/api/project"): "annotator",
    ("GET", "/api/labels"): "annotator",
    ("POST", "/api/labels"): "designer",
    ("PATCH", "/api/labels/{label_id}"): "designer",
    ("DELETE", "/api/labels/{label_id}"): "designer",
    ("GET", "/api/images"): "annotator",
    ("POST", "/api/images"): "designer",
    ("GET", "/api/images/{image_id}"): "annotator",
    ("GET", "/api/images/{image_id}/file"): "annotator",
    ("GET", "/api/images/{image_id}/thumb"): "annotator",
    ("GET", "/api/tasks"): "annotator",
    ("POST", "/api/tasks"): "designer",
    ("GET", "/api/tasks/{task_id}"): "annotator",
    ("POST", "/api/tasks/{task_id}/requests"): "designer",
    ("POST", "/api/tasks/{task_id}/next"): "annotator",
    ("GET", "/api/tasks/{task_id}/items"): "designer",
    ("GET", "/api/items/{item_id}"): "annotator",
    ("PUT", "/api/items/{item_id}/draft"): "annotator",
    ("POST", "/api/items/{item_id}/submit"): "annotator",
    ("POST", "/api/items/{item_id}/junk"): "annotator",
    ("POST", "/api/items/{item_id}/release"): "annotator",
    ("POST", "/api/items/{item_id}/skip"): "annotator",
    ("POST", "/api/items/{item_id}/review"): "designer",
    ("GET", "/api/annotations"): "designer",
    ("POST", "/api/annotations"): "designer",
    ("PUT", "/api/annotations/{annotation_id}"): "designer",
    ("DELETE", "/api/annotations/{annotation_id}"): "designer",
    ("GET", "/api/stats"): "annotator",
    ("GET", "/api/stats/plot.png"): "annotator",
    ("GET", "/api/formats"): "designer",
    ("POST", "/api/exports"): "designer",
    ("GET", "/api/exports"): "designer",
    ("GET", "/api/exports/{job_id}/download"): "designer",
    ("GET", "/api/jobs"): "designer",
    ("GET", "/api/jobs/{job_id}"): "designer",
    ("GET", "/api/pipelines/templates"): "designer",
    ("GET", "/api/pipes"): "designer",
    ("POST", "/api/pipes"): "designer",
    ("GET", "/api/pipes/{pipe_id}"): "designer",
    ("GET", "/api/pipes/{pipe_id}/logs"): "designer",
    ("POST", "/api/pipes/{pipe_id}/pause"): "designer",
    ("POST", "/api/pipes/{pipe_id}/resume"): "designer",
    ("POST", "/api/pipes/{pipe_id}/stop"): "designer",
    ("GET", "/api/models"): "designer",
    ("GET", "/api/models/states"): "designer",
    ("POST", "/api/models/states/{state_id}/current"): "designer",
    ("POST", "/api/models/{name}/train"): "designer",
    ("POST", "/api/models/infer"): "designer",
    ("GET", "/openapi.json"): "annotator",
    ("GET", "/"): None,  # the web UI's page (its scripts are static files)
}
BELOW = {"designer": "ann", "admin": "designer"}


def _routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route: the app's own and those of the API routers (read from
    the routers, since FastAPI versions differ in how app.routes shows included routers)."""
    from fastapi.routing import APIRoute

    from annoloop.server import routes

    out = []
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.path.startswith("/api/"):
            out.extend((m, route.path) for m in sorted(route.methods))
    for module in routes.MODULES:
        for route in module.router.routes:
            out.extend((m, "/api" + route.path) for m in sorted(route.methods))
    return out


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_is_in_the_permission_table(app) -> None:
    assert sorted(_routes(app)) == sorted(ROLES)


@pytest.mark.parametrize("method,path", sorted(k for k, v in ROLES.items() if v))
def test_no_token_gets_401(client, method, path) -> None:  # every route but login and the UI
    r = client.request(method, _url(path))
    assert r.status_code == 401, r.text
    assert r.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize("method,path", sorted(k for k, v in ROLES.items() if v in BELOW))
def test_a_lower_role_gets_403(client, login, method, path) -> None:
    who = BELOW[ROLES[(method, path)]]
    r = client.request(method, _url(path), headers=login(who))
    assert r.status_code == 403, (who, r.text)
    assert "role" in r.json()["detail"]


def test_the_static_ui_and_login_are_open(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "annoloop" in page.text
    assert "Content-Security-Policy" in page.headers
    for name in (
        "app.js",
        "api.js",
        "annotate.js",
        "editor.js",
        "review.js",
        "ui.js",
        "pipes.js",
        "models.js",
        "style.css",
    ):
        assert client.get(f"/static/{name}").status_code == 200, name
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404


def test_openapi_spec_lists_every_api_route(client, login) -> None:
    spec = client.get("/openapi.json", headers=login("ann")).json()
    listed = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert listed == {k for k in ROLES if k[1].startswith("/api/")}
    assert ("POST", "/api/tasks/{task_id}/next") in listed


def test_api_responses_are_not_cached_and_not_sniffed(client, login) -> None:
    r = client.get("/api/me", headers=login("ann"))
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
