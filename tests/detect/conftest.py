"""Shared fixtures: the generated pan video and a truncated (corrupt) copy of it; a real
server over a project of photos for remote mode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from annoloop.samples import photo_path
from annoloop.store import Project
from tests.detect.make_video import make_video, truncate


@pytest.fixture(scope="session")
def pan_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames, 192x144, the astronaut's face moving."""
    return make_video(tmp_path_factory.mktemp("video") / "astronaut_pan.mp4", 12, 192, 144)


@pytest.fixture(scope="session")
def broken_video(pan_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pan video cut after 40 % of its bytes."""
    return truncate(pan_video, tmp_path_factory.mktemp("broken") / "broken.mp4")


# -- remote mode: a real server on 127.0.0.1 over a project with the portraits ----------------

PORTRAITS = ("astronaut.png", "grace_hopper.jpg", "coffee.png")


@dataclass
class Served:
    """A running server: its URL, the project behind it, API keys of a designer and an
    annotator."""

    url: str
    project: Project
    designer_key: str
    annotator_key: str


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    """A uvicorn server in a thread (stopped by the test) over a new project holding the
    bundled portraits and the coffee photo, with a designer and an annotator account."""
    from annoloop.server import add_user, create_app
    from annoloop.server.auth import issue_api_key
    from annoloop.server.run import BackgroundServer
    from annoloop.server.settings import ServerSettings
    from tests.server.helpers import cheap_password_hashes

    project = Project.init(tmp_path / "served", name="detect-served")
    project.add_images([photo_path(n) for n in PORTRAITS])
    with cheap_password_hashes():
        add_user(project, "des", "designer-password", "designer")
        add_user(project, "ann", "annotator-password", "annotator")
    keys = issue_api_key(project, "des"), issue_api_key(project, "ann")
    settings = ServerSettings(token_cache_seconds=0, drive_pipes=False)
    try:
        with BackgroundServer(create_app(project, settings=settings)) as server:
            yield Served(server.url.rstrip("/"), project, *keys)
    finally:
        project.close()
