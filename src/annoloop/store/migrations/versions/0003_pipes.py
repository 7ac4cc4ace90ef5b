"""Pipes: pipe, pipe_element, pipe_log, pipe_result, pipe_proposal (annoloop.pipeline).

Revision ID: 0003_pipes
Revises: 0002_users
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# The tables are defined in annoloop.pipeline.tables on the store's MetaData; importing it
# here puts them in that MetaData whenever migrations run, so that a migrated database and
# the MetaData agree (the store's migration test compares the two).
import annoloop.pipeline.tables  # noqa: F401

revision = "0003_pipes"
down_revision = "0002_users"
branch_labels = None
depends_on = None

# Frozen copies of the schema's column types: a migration must not change when tables.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "pipe",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("files", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=12), server_default="running", nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("heartbeat", TS, nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("updated_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint(
            "state IN ('running', 'paused', 'stopped', 'finished')", name=op.f("ck_pipe_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipe")),
        sa.UniqueConstraint("name", name=op.f("uq_pipe_name")),
    )
    op.create_table(
        "pipe_element",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipe_id", ID, nullable=False),
        sa.Column("element", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=12), server_default="pending", nullable=False),
        sa.Column("iteration", sa.Integer(), server_default="0", nullable=False),
        sa.Column("loop_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("broken", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("task_id", ID, nullable=True),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("progress_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("not_before", TS, nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'in_progress', 'finished', 'failed', 'paused')",
            name=op.f("ck_pipe_element_state"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_pipe_element_job_id_job"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["pipe_id"], ["pipe.id"], name=op.f("fk_pipe_element_pipe_id_pipe"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_pipe_element_task_id_task"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipe_element")),
        sa.UniqueConstraint("pipe_id", "element", name=op.f("uq_pipe_element_pipe_id_element")),
    )
    op.create_table(
        "pipe_log",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipe_id", ID, nullable=False),
        sa.Column("element", sa.String(length=64), nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("level", sa.String(length=10), server_default="INFO", nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["pipe_id"], ["pipe.id"], name=op.f("fk_pipe_log_pipe_id_pipe"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipe_log")),
    )
    op.create_index("ix_pipe_log_pipe_id_id", "pipe_log", ["pipe_id", "id"], unique=False)
    op.create_table(
        "pipe_result",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipe_id", ID, nullable=False),
        sa.Column("element", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("iteration", sa.Integer(), server_default="0", nullable=False),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["pipe_id"], ["pipe.id"], name=op.f("fk_pipe_result_pipe_id_pipe"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipe_result")),
    )
    op.create_index(
        "ix_pipe_result_pipe_id_element", "pipe_result", ["pipe_id", "element"], unique=False
    )
    op.create_table(
        "pipe_proposal",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("work_item_id", ID, nullable=False),
        sa.Column("image_id", ID, nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("label_id", ID, nullable=True),
        sa.Column("x", sa.Float(), nullable=True),
        sa.Column("y", sa.Float(), nullable=True),
        sa.Column("w", sa.Float(), nullable=True),
        sa.Column("h", sa.Float(), nullable=True),
        sa.Column("shape", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["image.id"],
            name=op.f("fk_pipe_proposal_image_id_image"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["label_class.id"],
            name=op.f("fk_pipe_proposal_label_id_label_class"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_item.id"],
            name=op.f("fk_pipe_proposal_work_item_id_work_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipe_proposal")),
    )
    op.create_index(
        "ix_pipe_proposal_work_item_id", "pipe_proposal", ["work_item_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_pipe_proposal_work_item_id", table_name="pipe_proposal")
    op.drop_table("pipe_proposal")
    op.drop_index("ix_pipe_result_pipe_id_element", table_name="pipe_result")
    op.drop_table("pipe_result")
    op.drop_index("ix_pipe_log_pipe_id_id", table_name="pipe_log")
    op.drop_table("pipe_log")
    op.drop_table("pipe_element")
    op.drop_table("pipe")
