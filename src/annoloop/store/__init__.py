"""The store: SQLAlchemy schema, Alembic migrations and the ``Project`` facade.

``Project.init(folder)`` / ``Project.open(folder_or_url)`` give one object over a project's
database (SQLite by default, PostgreSQL at scale) and its storage. Bulk paths (images,
annotations, work items, predictions) go straight to the driver: see :mod:`.bulk`.
"""

# No "from __future__ import annotations" here: it would bind the name `annotations` in this
# package and hide the submodule annoloop.store.annotations.
from annoloop.store.datasets import ImportReport
from annoloop.store.engine import current_revision, head_revision, make_engine, upgrade
from annoloop.store.project import Project
from annoloop.store.workitems import WorkItem

__all__ = [
    "ImportReport",
    "Project",
    "WorkItem",
    "current_revision",
    "head_revision",
    "make_engine",
    "upgrade",
]
