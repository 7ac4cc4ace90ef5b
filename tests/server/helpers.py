"""Shared test data of the server tests: users, photos, task ids, the project builder (a home
project with two registered projects, ``alpha`` and ``beta``), shapes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from annoloop.samples import photo_path
from annoloop.server import add_user, auth
from annoloop.store import Project

PHOTOS = ("coffee.png", "chelsea.png", "astronaut.png", "rocket.jpg")
USERS = {
    "admin": ("admin", "admin-password"),
    "designer": ("designer", "designer-password"),
    "ann": ("annotator", "ann-password"),
    "ann2": ("annotator", "ann2-password"),
}
SHAPES_TASK = 1  # kinds: every drawable kind; all labels
CATS_TASK = 2  # kinds: point; label "cat" only
# The registered projects: their photos (image ids 1, 2, ... in this order), labels and the
# members' roles. Home admins ("admin") are admins of both; "ann2" is no member of alpha and
# "ann" none of beta. Each has one bbox task (id 1) with every image requested.
PROJECTS = {
    "alpha": {
        "photos": ("chelsea.png", "coffee.png"),
        "labels": ("cat", "cup"),
        "members": {"designer": "designer", "ann": "annotator"},
    },
    "beta": {
        "photos": ("astronaut.png", "rocket.jpg", "coins.png"),
        "labels": ("person", "rocket"),
        "members": {"designer": "annotator", "ann2": "annotator"},
    },
}


@contextmanager
def cheap_password_hashes() -> Iterator[None]:
    """Test-only: hash new passwords with a small scrypt cost. Verification reads the cost
    stored with each hash, so the hundreds of logins of the test suite stay fast (a full-cost
    hash takes ~0.1 s on a loaded 2-core machine) while the code path is the real one."""
    saved = auth._SCRYPT_N
    auth._SCRYPT_N = 2**8
    try:
        yield
    finally:
        auth._SCRYPT_N = saved


def build_project(folder: Path, *, database_url: str | None = None) -> Project:
    """A project with the photos, labels cat/cup/person, the two tasks (every image requested
    in each) and the users of :data:`USERS` (with cheap password hashes)."""
    p = Project.init(folder, name="server-test", database_url=database_url)
    with cheap_password_hashes():
        for name, (role, password) in USERS.items():
            add_user(p, name, password, role)
    ids = p.add_images([photo_path(n) for n in PHOTOS])
    p.add_labels(["cat", "cup", "person"])
    p.add_task("shapes", kinds=["bbox", "point", "polygon", "line", "label"])
    p.add_task("cats", kinds=["point"], labels=["cat"])
    p.request_annotations(ids, ["shapes", "cats"])
    return p


def add_projects(home: Project) -> None:
    """Register the projects of :data:`PROJECTS` in ``home`` (folders under
    ``HOME/projects/``), fill them and grant their members."""
    from annoloop.server import projects

    for name, spec in PROJECTS.items():
        projects.create_project(home, name, created_by="admin")
        entry = projects.get_project(home, name)
        with Project.open(projects.resolve_location(home, entry)) as p:
            ids = p.add_images([photo_path(n) for n in spec["photos"]])
            p.add_labels(list(spec["labels"]))
            p.add_task("boxes", kinds=["bbox"])
            p.request_annotations(ids, ["boxes"])
        for user, role in spec["members"].items():
            projects.set_member(home, name, user, role)


@contextmanager
def served_copy(template: Path, folder: Path, **settings: object) -> Iterator[tuple]:
    """``(server, project)``: a real uvicorn server on 127.0.0.1 over a fresh copy of the
    template project in ``folder``, with ``ServerSettings(token_cache_seconds=0, **settings)``."""
    import shutil

    from annoloop.server import create_app
    from annoloop.server.run import BackgroundServer
    from annoloop.server.settings import ServerSettings

    shutil.copytree(template, folder)
    with Project.open(folder) as project:
        app = create_app(project, settings=ServerSettings(token_cache_seconds=0, **settings))
        with BackgroundServer(app) as server:
            yield server, project


def shape_box(label: int = 1, box=(0.5, 0.5, 0.2, 0.2)) -> dict:
    return {"kind": "bbox", "label": label, "box": list(box)}


def shape_point(label: int = 1, point=(0.25, 0.75)) -> dict:
    return {"kind": "point", "label": label, "point": list(point)}
