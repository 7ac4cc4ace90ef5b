"""The store tables of pipes, registered on the store's MetaData (``annoloop.store.schema``).

The Alembic migration ``0003_pipes`` creates exactly these tables (a frozen copy); a change
here needs a new migration.

- ``pipe``: one running instance of a template: its template, files, state and engine lease.
- ``pipe_element``: the state of each element of a pipe (pending, in_progress, finished,
  failed, paused), its iteration, the job that runs it, its task, progress and error.
- ``pipe_log``: log records of the engine and of the scripts, in order.
- ``pipe_result``: what scripts hand to visual and export elements (files, HTML), and exports.
- ``pipe_proposal``: the shapes a script proposes for a work item (shown to the annotator).
"""

from __future__ import annotations

import sqlalchemy as sa

from annoloop.store.schema import BigId, UTCDateTime, metadata

PIPE_STATES = ("running", "paused", "stopped", "finished")
ELEMENT_STATES = ("pending", "in_progress", "finished", "failed", "paused")


def _in(values: tuple[str, ...], column: str) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _created() -> sa.Column:
    return sa.Column(
        "created_at", UTCDateTime(), nullable=False, server_default=sa.func.current_timestamp()
    )


def _fk(column: str, target: str, *, nullable: bool = True, ondelete: str | None = None):
    return sa.Column(
        column, BigId, sa.ForeignKey(f"{target}.id", ondelete=ondelete), nullable=nullable
    )


def _table(name: str, *items: sa.SchemaItem) -> sa.Table:
    # Re-importing this module (a reload, a second import path) must not redefine tables.
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(name, metadata, *items)


pipe = _table(
    "pipe",
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("template", sa.JSON(), nullable=False),
    sa.Column("files", sa.Text()),  # location of the pipeline project (scripts, static files)
    sa.Column("state", sa.String(12), nullable=False, server_default="running"),
    sa.Column("owner", sa.String(64)),  # the engine driving the pipe now
    sa.Column("heartbeat", UTCDateTime()),
    _created(),
    sa.Column("updated_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.CheckConstraint(_in(PIPE_STATES, "state"), name="state"),
)

pipe_element = _table(
    "pipe_element",
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _fk("pipe_id", "pipe", nullable=False, ondelete="CASCADE"),
    sa.Column("element", sa.String(64), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("state", sa.String(12), nullable=False, server_default="pending"),
    sa.Column("iteration", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("loop_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("broken", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    _fk("task_id", "task", ondelete="SET NULL"),
    _fk("job_id", "job", ondelete="SET NULL"),
    sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("progress_total", sa.Integer()),
    sa.Column("message", sa.Text()),
    sa.Column("error", sa.Text()),
    sa.Column("traceback", sa.Text()),
    sa.Column("not_before", UTCDateTime()),  # a script that rejected its run waits until then
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("updated_at", UTCDateTime()),
    sa.UniqueConstraint("pipe_id", "element"),
    sa.CheckConstraint(_in(ELEMENT_STATES, "state"), name="state"),
)

pipe_log = _table(
    "pipe_log",
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _fk("pipe_id", "pipe", nullable=False, ondelete="CASCADE"),
    sa.Column("element", sa.String(64)),
    sa.Column("iteration", sa.Integer()),
    sa.Column("job_id", BigId),  # no foreign key: logs outlive their jobs
    sa.Column("level", sa.String(10), nullable=False, server_default="INFO"),
    sa.Column("message", sa.Text(), nullable=False),
    _created(),
    sa.Index("ix_pipe_log_pipe_id_id", "pipe_id", "id"),
)

pipe_result = _table(
    "pipe_result",
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _fk("pipe_id", "pipe", nullable=False, ondelete="CASCADE"),
    sa.Column("element", sa.String(64), nullable=False),  # the visual / export element
    sa.Column("source", sa.String(64)),  # the script that produced it
    sa.Column("iteration", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("job_id", BigId),
    sa.Column("kind", sa.String(16), nullable=False),  # visual | export | file
    sa.Column("location", sa.Text()),
    sa.Column("html", sa.Text()),
    sa.Column("data", sa.JSON()),
    _created(),
    sa.Index("ix_pipe_result_pipe_id_element", "pipe_id", "element"),
)

pipe_proposal = _table(
    "pipe_proposal",
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _fk("work_item_id", "work_item", nullable=False, ondelete="CASCADE"),
    _fk("image_id", "image", nullable=False, ondelete="CASCADE"),
    sa.Column("kind", sa.SmallInteger(), nullable=False),
    _fk("label_id", "label_class", ondelete="SET NULL"),
    sa.Column("x", sa.Float()),
    sa.Column("y", sa.Float()),
    sa.Column("w", sa.Float()),
    sa.Column("h", sa.Float()),
    sa.Column("shape", sa.Text()),
    sa.Column("confidence", sa.Float()),
    _created(),
    sa.Index("ix_pipe_proposal_work_item_id", "work_item_id"),
)

__all__ = [
    "ELEMENT_STATES",
    "PIPE_STATES",
    "pipe",
    "pipe_element",
    "pipe_log",
    "pipe_proposal",
    "pipe_result",
]
