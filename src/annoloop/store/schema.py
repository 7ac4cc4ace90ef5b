"""The store's tables as SQLAlchemy 2 Core objects, portable between SQLite and PostgreSQL.

The Alembic migrations in ``migrations/versions`` create exactly these tables; a test compares
a migrated database with this metadata, so a change here needs a new migration.

Conventions: ids are 64-bit on PostgreSQL (``BIGSERIAL``) and SQLite's rowid
(``INTEGER PRIMARY KEY``); timestamps are UTC (:class:`UTCDateTime`); JSON goes through
``sqlalchemy.JSON``; booleans are real booleans on PostgreSQL and 0/1 on SQLite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

# Work-item and job states (CHECK constraints keep stray values out of the tables).
WORK_ITEM_STATES = ("open", "locked", "done", "junk")
JOB_STATES = ("queued", "running", "finished", "failed", "cancelled")

# Constraint names follow one convention so migrations and databases agree on them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (UTC).

    PostgreSQL keeps ``timestamptz``; SQLite keeps SQLAlchemy's text form of the UTC time.
    Naive datetimes are taken to be UTC already.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, str):  # rows written with raw SQL and read back through Core
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# 64-bit ids on PostgreSQL; on SQLite INTEGER PRIMARY KEY is the (64-bit) rowid.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def _created() -> sa.Column:
    return sa.Column(
        "created_at", UTCDateTime(), nullable=False, server_default=sa.func.current_timestamp()
    )


def _fk(column: str, target: str, *, nullable: bool = True, ondelete: str | None = None):
    return sa.Column(
        column, BigId, sa.ForeignKey(f"{target}.id", ondelete=ondelete), nullable=nullable
    )


def _geometry_columns() -> list[sa.Column]:
    """Kind code, label and relative centre box, shared by annotations and predictions."""
    return [
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        _fk("label_id", "label_class"),
        sa.Column("x", sa.Float()),
        sa.Column("y", sa.Float()),
        sa.Column("w", sa.Float()),
        sa.Column("h", sa.Float()),
        sa.Column("shape", sa.Text()),  # JSON text for line / polygon / mask, else NULL
        sa.Column("confidence", sa.Float()),
    ]


project = sa.Table(
    "project",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("storage_url", sa.Text()),
    _created(),
    sa.Column("settings", sa.JSON()),
)

label_class = sa.Table(
    "label_class",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("code", sa.String(50)),
    sa.Column("color", sa.String(32)),
    _fk("parent_id", "label_class", ondelete="SET NULL"),
    sa.Column("retired", sa.Boolean(), nullable=False, server_default=sa.false()),
    _created(),
    # Names are unique among active classes; a retired name may be reused.
    sa.Index(
        "uq_label_class_active_name",
        "name",
        unique=True,
        sqlite_where=sa.text("NOT retired"),
        postgresql_where=sa.text("NOT retired"),
    ),
)

image = sa.Table(
    "image",
    metadata,
    _id(),
    sa.Column("location", sa.Text(), nullable=False, unique=True),
    sa.Column("width", sa.Integer(), nullable=False),
    sa.Column("height", sa.Integer(), nullable=False),
    sa.Column("checksum", sa.String(64)),
    sa.Column("meta", sa.JSON()),
    sa.Column("video_location", sa.Text()),
    sa.Column("frame", sa.Integer()),
    _created(),
)

task = sa.Table(
    "task",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("instructions", sa.Text(), nullable=False, server_default=""),
    sa.Column("kinds", sa.JSON(), nullable=False),
    sa.Column("labels", sa.JSON()),  # allowed label ids, NULL = all
    sa.Column("show_proposals", sa.Boolean(), nullable=False, server_default=sa.true()),
    _created(),
)

work_item = sa.Table(
    "work_item",
    metadata,
    _id(),
    _fk("task_id", "task", nullable=False, ondelete="CASCADE"),
    _fk("image_id", "image", nullable=False, ondelete="CASCADE"),
    sa.Column("iteration", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("state", sa.String(8), nullable=False, server_default="open"),
    sa.Column("locked_by", sa.String(200)),
    sa.Column("locked_until", UTCDateTime()),
    sa.Column("priority", sa.Float(), nullable=False, server_default="0"),
    sa.Column("meta", sa.JSON()),
    _created(),
    sa.Column("finished_at", UTCDateTime()),
    sa.UniqueConstraint("task_id", "image_id", "iteration"),
    sa.CheckConstraint(
        "state IN (" + ", ".join(f"'{s}'" for s in WORK_ITEM_STATES) + ")", name="state"
    ),
)
# Claiming takes the highest priority first and the oldest item among equals: the index holds
# exactly that order, so a claim reads one index entry however many items are open.
sa.Index(
    "ix_work_item_task_state_priority",
    work_item.c.task_id,
    work_item.c.state,
    work_item.c.priority.desc(),
    work_item.c.id,
)

annotation = sa.Table(
    "annotation",
    metadata,
    _id(),
    _fk("image_id", "image", nullable=False, ondelete="CASCADE"),
    _fk("task_id", "task", ondelete="SET NULL"),
    _fk("work_item_id", "work_item", ondelete="SET NULL"),
    *_geometry_columns(),
    sa.Column("source", sa.String(200), nullable=False, server_default="human"),
    sa.Column("author", sa.String(200)),
    sa.Column("time_spent", sa.Float()),
    _created(),
    sa.Column(
        "updated_at", UTCDateTime(), nullable=False, server_default=sa.func.current_timestamp()
    ),
    sa.Index("ix_annotation_image_id", "image_id"),
    sa.Index("ix_annotation_task_id", "task_id"),
    # no index on label_id alone: it cost a fifth of every bulk insert (migration 0005)
)

model_state = sa.Table(
    "model_state",
    metadata,
    _id(),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("location", sa.Text(), nullable=False),
    sa.Column("label_map", sa.JSON(), nullable=False),
    sa.Column("options", sa.JSON()),
    sa.Column("metrics", sa.JSON()),
    _fk("parent_id", "model_state", ondelete="SET NULL"),
    sa.Column("is_current", sa.Boolean(), nullable=False, server_default=sa.false()),
    _created(),
    sa.UniqueConstraint("model", "version"),
)

prediction = sa.Table(
    "prediction",
    metadata,
    _id(),
    _fk("image_id", "image", nullable=False, ondelete="CASCADE"),
    _fk("model_state_id", "model_state", nullable=False, ondelete="CASCADE"),
    *_geometry_columns(),
    sa.Column("scores", sa.LargeBinary()),  # float32 little-endian per-class scores
    sa.Column("priority", sa.Float()),
    _created(),
    sa.Index("ix_prediction_image_id", "image_id"),
    sa.Index("ix_prediction_model_state_id", "model_state_id"),
)

job = sa.Table(
    "job",
    metadata,
    _id(),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(12), nullable=False, server_default="queued"),
    sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("progress_total", sa.Integer()),
    sa.Column("message", sa.Text()),
    sa.Column("log", sa.Text(), nullable=False, server_default=""),
    sa.Column("error", sa.Text()),
    sa.Column("traceback", sa.Text()),
    sa.Column("result", sa.JSON()),
    sa.Column("spec", sa.JSON()),
    _created(),
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in JOB_STATES) + ")", name="state"),
    sa.Index("ix_job_state", "state"),
)

# Accounts for the server; created now, filled by the server.
user = sa.Table(
    "user",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("role", sa.String(50), nullable=False, server_default="annotator"),
    sa.Column("password_hash", sa.Text()),
    _created(),
)

api_token = sa.Table(
    "api_token",
    metadata,
    _id(),
    _fk("user_id", "user", nullable=False, ondelete="CASCADE"),
    sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
    _created(),
)

# -- server registry (migration 0004) ----------------------------------------------------------
# Only the home project's database uses these: the projects one server serves besides itself,
# and the accounts' roles in them (an account's own ``role`` is its role in the home project).
server_project = sa.Table(
    "server_project",
    metadata,
    _id(),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    # a folder (relative to the home project's folder, or absolute) or a database URL
    sa.Column("location", sa.Text(), nullable=False),
    _created(),
    sa.Column("created_by", sa.String(200)),
)

membership = sa.Table(
    "membership",
    metadata,
    sa.Column(
        "user_id",
        BigId,
        sa.ForeignKey("user.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "project_id",
        BigId,
        sa.ForeignKey("server_project.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("role", sa.String(50), nullable=False),
    _created(),
    sa.CheckConstraint("role IN ('annotator', 'designer', 'admin')", name="role"),
    sa.Index("ix_membership_project_id", "project_id"),
)
