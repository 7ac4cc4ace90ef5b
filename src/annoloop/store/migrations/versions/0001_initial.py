"""Initial schema: project, labels, images, tasks, work items, annotations, models, jobs.

Revision ID: 0001_initial
Revises: <base>
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the schema's column types: a migration must not change when schema.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "image",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("video_location", sa.Text(), nullable=True),
        sa.Column("frame", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image")),
        sa.UniqueConstraint("location", name=op.f("uq_image_location")),
    )
    op.create_table(
        "job",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=12), server_default="queued", nullable=False),
        sa.Column("progress_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("log", sa.Text(), server_default="", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'finished', 'failed', 'cancelled')",
            name=op.f("ck_job_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_index("ix_job_state", "job", ["state"], unique=False)
    op.create_table(
        "label_class",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=True),
        sa.Column("color", sa.String(length=32), nullable=True),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("retired", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["label_class.id"],
            name=op.f("fk_label_class_parent_id_label_class"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_class")),
    )
    op.create_index(
        "uq_label_class_active_name",
        "label_class",
        ["name"],
        unique=True,
        sqlite_where=sa.text("NOT retired"),
        postgresql_where=sa.text("NOT retired"),
    )
    op.create_table(
        "model_state",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("label_map", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("is_current", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["model_state.id"],
            name=op.f("fk_model_state_parent_id_model_state"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_state")),
        sa.UniqueConstraint("model", "version", name=op.f("uq_model_state_model_version")),
    )
    op.create_table(
        "project",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("storage_url", sa.Text(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
    )
    op.create_table(
        "task",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), server_default="", nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=True),
        sa.Column("show_proposals", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("name", name=op.f("uq_task_name")),
    )
    op.create_table(
        "prediction",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("image_id", ID, nullable=False),
        sa.Column("model_state_id", ID, nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("label_id", ID, nullable=True),
        sa.Column("x", sa.Float(), nullable=True),
        sa.Column("y", sa.Float(), nullable=True),
        sa.Column("w", sa.Float(), nullable=True),
        sa.Column("h", sa.Float(), nullable=True),
        sa.Column("shape", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("scores", sa.LargeBinary(), nullable=True),
        sa.Column("priority", sa.Float(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["image.id"],
            name=op.f("fk_prediction_image_id_image"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"], ["label_class.id"], name=op.f("fk_prediction_label_id_label_class")
        ),
        sa.ForeignKeyConstraint(
            ["model_state_id"],
            ["model_state.id"],
            name=op.f("fk_prediction_model_state_id_model_state"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction")),
    )
    op.create_index("ix_prediction_image_id", "prediction", ["image_id"], unique=False)
    op.create_index("ix_prediction_model_state_id", "prediction", ["model_state_id"], unique=False)
    op.create_table(
        "work_item",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("image_id", ID, nullable=False),
        sa.Column("iteration", sa.Integer(), server_default="0", nullable=False),
        sa.Column("state", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("priority", sa.Float(), server_default="0", nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint(
            "state IN ('open', 'locked', 'done', 'junk')", name=op.f("ck_work_item_state")
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["image.id"], name=op.f("fk_work_item_image_id_image"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_work_item_task_id_task"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_item")),
        sa.UniqueConstraint(
            "task_id", "image_id", "iteration", name=op.f("uq_work_item_task_id_image_id_iteration")
        ),
    )
    op.create_index(
        "ix_work_item_task_state_priority",
        "work_item",
        ["task_id", "state", sa.text("priority DESC"), "id"],
        unique=False,
    )
    op.create_table(
        "annotation",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("image_id", ID, nullable=False),
        sa.Column("task_id", ID, nullable=True),
        sa.Column("work_item_id", ID, nullable=True),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("label_id", ID, nullable=True),
        sa.Column("x", sa.Float(), nullable=True),
        sa.Column("y", sa.Float(), nullable=True),
        sa.Column("w", sa.Float(), nullable=True),
        sa.Column("h", sa.Float(), nullable=True),
        sa.Column("shape", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=200), server_default="human", nullable=False),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("time_spent", sa.Float(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("updated_at", TS, server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["image.id"],
            name=op.f("fk_annotation_image_id_image"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"], ["label_class.id"], name=op.f("fk_annotation_label_id_label_class")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_annotation_task_id_task"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_item.id"],
            name=op.f("fk_annotation_work_item_id_work_item"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation")),
    )
    op.create_index("ix_annotation_image_id", "annotation", ["image_id"], unique=False)
    op.create_index("ix_annotation_label_id", "annotation", ["label_id"], unique=False)
    op.create_index("ix_annotation_task_id", "annotation", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_table("annotation")
    op.drop_table("work_item")
    op.drop_table("prediction")
    op.drop_table("task")
    op.drop_table("project")
    op.drop_table("model_state")
    op.drop_table("label_class")
    op.drop_table("job")
    op.drop_table("image")
