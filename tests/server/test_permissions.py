"""Every route checks who calls it: 401 without a valid token, 403 below its role, and under
``/api/projects/{project}`` 404 for a caller who is no member of the project.

The table below is the permission model; a new route must be added to it (the first test
fails otherwise), so no route can be left open by accident. Every route of the table but the
server's own (projects, the spec, the UI) is mounted a second time under the project prefix,
where the role is the caller's role in that project.
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
    ("GET", "/api/detections/stamps"): "designer",
    ("POST", "/api/detections"): "designer",
    ("GET", "/api/projects"): "annotator",
    ("POST", "/api/projects"): "admin",
    ("GET", "/api/projects/{project}"): "annotator",
    ("GET", "/api/projects/{project}/members"): "admin",
    ("PUT", "/api/projects/{project}/members/{name}"): "admin",
    ("DELETE", "/api/projects/{project}/members/{name}"): "admin",
    ("GET", "/openapi.json"): "annotator",
    ("GET", "/"): None,  # the web UI's page (its scripts are static files)
}
BELOW = {"designer": "ann", "admin": "designer"}
PREFIX = "/api/projects/{project}"
# Routes of the server itself, not mounted per project.
SERVER_ROUTES = {k for k in ROLES if not k[1].startswith("/api/") or k[1].startswith(PREFIX)} | {
    ("GET", "/api/projects"),
    ("POST", "/api/projects"),
}
# The project-scoped copies: the same lowest role, now the role in project alpha.
SCOPED = {
    (m, PREFIX + path[len("/api") :]): role
    for (m, path), role in ROLES.items()
    if (m, path) not in SERVER_ROUTES
}


def _routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route: the app's own and those of the API routers (read from
    the routers, since FastAPI versions differ in how app.routes shows included routers)."""
    from fastapi.routing import APIRoute

    from annoloop.server import routes

    out = []
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.path.startswith("/api/"):
            out.extend((m, route.path) for m in sorted(route.methods))
    from annoloop.server.routes import projects

    for module in (*routes.MODULES, projects):
        for route in module.router.routes:
            out.extend((m, "/api" + route.path) for m in sorted(route.methods))
    return out


def _url(path: str, project: str = "alpha") -> str:
    return re.sub(r"\{[^}]+\}", "1", path.replace("{project}", project))


def test_every_route_is_in_the_permission_table(app) -> None:
    assert sorted(_routes(app)) == sorted(ROLES)


def test_every_router_is_mounted_again_under_the_project_prefix(app) -> None:
    """Whatever routes.MODULES holds (also routers added later) is project-scoped too (read
    from the spec: FastAPI versions differ in how app.routes shows included routers)."""
    from annoloop.server import routes

    paths = app.openapi()["paths"]
    for module in routes.MODULES:
        for route in module.router.routes:
            for m in route.methods:
                assert m.lower() in paths["/api" + route.path], (m, route.path)
                assert m.lower() in paths[PREFIX + route.path], (m, route.path)


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


@pytest.mark.parametrize("method,path", sorted(k for k, v in SCOPED.items() if v))
def test_no_token_gets_401_under_a_project_too(client, method, path) -> None:
    # the same answer for a project that exists and one that does not: names do not leak
    for project in ("alpha", "no-such-project"):
        r = client.request(method, _url(path, project))
        assert r.status_code == 401, (project, r.text)


@pytest.mark.parametrize("method,path", sorted(k for k, v in SCOPED.items() if v))
def test_a_non_member_gets_404_like_a_missing_project(client, login, method, path) -> None:
    headers = login("ann2")  # no member of alpha
    for project in ("alpha", "no-such-project"):
        r = client.request(method, _url(path, project), headers=headers)
        assert r.status_code == 404, (project, r.text)
        assert r.json()["detail"] == f"no project {project!r}"


@pytest.mark.parametrize("method,path", sorted(k for k, v in SCOPED.items() if v in BELOW))
def test_a_lower_role_in_the_project_gets_403(client, login, method, path) -> None:
    who = BELOW[SCOPED[(method, path)]]  # designer and ann have these roles in alpha
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
    assert listed == {k for k in ROLES if k[1].startswith("/api/")} | set(SCOPED)
    scoped = spec["paths"]["/api/projects/{project}/images"]["get"]["parameters"]
    assert any(p["name"] == "project" and p["in"] == "path" for p in scoped)
    assert ("POST", "/api/tasks/{task_id}/next") in listed


def test_api_responses_are_not_cached_and_not_sniffed(client, login) -> None:
    r = client.get("/api/me", headers=login("ann"))
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
