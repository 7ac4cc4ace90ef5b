"""Server fixtures: a home project with real photos, labels, tasks, one user per role and two
registered projects (alpha, beta) with their members, copied fresh for each test from a
session template; the app over it; a TestClient; logins."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from annoloop.server.settings import ServerSettings
from annoloop.store import Project
from tests.server.helpers import USERS, add_projects, build_project


def pytest_configure(config: pytest.Config) -> None:
    # Starlette's TestClient warns that it will move from httpx to httpx2; not our concern.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("server-template") / "proj"
    with build_project(folder) as home:
        add_projects(home)
    return folder


@pytest.fixture()
def project(template_project: Path, tmp_path: Path) -> Iterator[Project]:
    folder = tmp_path / "proj"
    shutil.copytree(template_project, folder)
    with Project.open(folder) as p:
        yield p


@pytest.fixture()
def settings() -> ServerSettings:
    # No token cache: a revoked token must fail on the very next request in tests.
    return ServerSettings(token_cache_seconds=0)


@pytest.fixture()
def app(project: Project, settings: ServerSettings):
    from annoloop.server import create_app

    return create_app(project, settings=settings)


@pytest.fixture()
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture()
def login(client) -> Callable[[str], dict[str, str]]:
    """``login(name)`` -> Authorization headers of a fresh session of that user."""
    cache: dict[str, dict[str, str]] = {}

    def _login(name: str) -> dict[str, str]:
        if name not in cache:
            r = client.post("/api/login", json={"name": name, "password": USERS[name][1]})
            assert r.status_code == 200, r.text
            client.cookies.clear()  # each call names its user by header
            cache[name] = {"Authorization": f"Bearer {r.json()['token']}"}
        return cache[name]

    return _login
