"""Store fixtures: a database URL for each backend and a fresh project on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from annoloop.store import Project


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """None for the embedded SQLite default, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture()
def project(tmp_path: Path, db_url: str | None) -> Iterator[Project]:
    """A new project on each backend."""
    with Project.init(tmp_path / "proj", database_url=db_url, name="test") as p:
        yield p


@pytest.fixture()
def sqlite_project(tmp_path: Path) -> Iterator[Project]:
    """A new project on the embedded SQLite default only."""
    with Project.init(tmp_path / "proj", name="test") as p:
        yield p
