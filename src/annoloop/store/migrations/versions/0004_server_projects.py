"""Server registry: server_project and membership (one server, several projects).

Revision ID: 0004_server_projects
Revises: 0003_pipes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_server_projects"
down_revision = "0003_pipes"
branch_labels = None
depends_on = None

# Frozen copies of the schema's column types: a migration must not change when schema.py does.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "server_project",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_project")),
        sa.UniqueConstraint("name", name=op.f("uq_server_project_name")),
    )
    op.create_table(
        "membership",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("role", sa.String(length=50), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "role IN ('annotator', 'designer', 'admin')", name=op.f("ck_membership_role")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_membership_user_id_user"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["server_project.id"],
            name=op.f("fk_membership_project_id_server_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "project_id", name=op.f("pk_membership")),
    )
    op.create_index("ix_membership_project_id", "membership", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_membership_project_id", table_name="membership")
    op.drop_table("membership")
    op.drop_table("server_project")
