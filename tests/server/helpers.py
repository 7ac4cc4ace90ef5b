"""Shared test data of the server tests: users, photos, task ids, the project builder, shapes."""

from __future__ import annotations

from pathlib import Path

from annoloop.samples import photo_path
from annoloop.server import add_user
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


def build_project(folder: Path, *, database_url: str | None = None) -> Project:
    """A project with the photos, labels cat/cup/person, the two tasks (every image requested
    in each) and the users of :data:`USERS`."""
    p = Project.init(folder, name="server-test", database_url=database_url)
    for name, (role, password) in USERS.items():
        add_user(p, name, password, role)
    ids = p.add_images([photo_path(n) for n in PHOTOS])
    p.add_labels(["cat", "cup", "person"])
    p.add_task("shapes", kinds=["bbox", "point", "polygon", "line", "label"])
    p.add_task("cats", kinds=["point"], labels=["cat"])
    p.request_annotations(ids, ["shapes", "cats"])
    return p


def shape_box(label: int = 1, box=(0.5, 0.5, 0.2, 0.2)) -> dict:
    return {"kind": "bbox", "label": label, "box": list(box)}


def shape_point(label: int = 1, point=(0.25, 0.75)) -> dict:
    return {"kind": "point", "label": label, "point": list(point)}
