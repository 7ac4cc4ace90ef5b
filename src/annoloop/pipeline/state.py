"""Reading and writing pipe state in the store: pipes, element states, logs, results.

Every function takes a connection inside the caller's transaction, so the engine and the
jobs combine them with other writes (a script's outputs and its element's new state are
written in one transaction).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from annoloop.errors import AlreadyExists, InvalidInput, NotFound
from annoloop.pipeline.tables import (
    ELEMENT_STATES,
    PIPE_STATES,
    pipe,
    pipe_element,
    pipe_log,
    pipe_result,
)
from annoloop.store.schema import utcnow

MAX_LOG_MESSAGE = 100_000  # characters kept of one log record (a runaway print is cut)


@dataclass(frozen=True)
class PipeRow:
    """One pipe: its id, name, template (JSON data), files location and state."""

    id: int
    name: str
    template: dict[str, Any]
    files: str | None
    state: str
    owner: str | None
    heartbeat: dt.datetime | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


@dataclass
class ElementRow:
    """The state of one element of a pipe (see :data:`ELEMENT_STATES`)."""

    element: str
    type: str
    state: str
    iteration: int
    loop_count: int
    broken: bool
    attempts: int
    task_id: int | None
    job_id: int | None
    progress_done: int
    progress_total: int | None
    message: str | None
    error: str | None
    traceback: str | None
    not_before: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Any) -> ElementRow:
        m = row._mapping
        return cls(
            element=m["element"],
            type=m["type"],
            state=m["state"],
            iteration=int(m["iteration"]),
            loop_count=int(m["loop_count"]),
            broken=bool(m["broken"]),
            attempts=int(m["attempts"]),
            task_id=None if m["task_id"] is None else int(m["task_id"]),
            job_id=None if m["job_id"] is None else int(m["job_id"]),
            progress_done=int(m["progress_done"]),
            progress_total=None if m["progress_total"] is None else int(m["progress_total"]),
            message=m["message"],
            error=m["error"],
            traceback=m["traceback"],
            not_before=m["not_before"],
            started_at=m["started_at"],
            finished_at=m["finished_at"],
        )


def _pipe_row(row: Any) -> PipeRow:
    m = row._mapping
    return PipeRow(
        id=int(m["id"]),
        name=m["name"],
        template=m["template"],
        files=m["files"],
        state=m["state"],
        owner=m["owner"],
        heartbeat=m["heartbeat"],
        created_at=m["created_at"],
        finished_at=m["finished_at"],
    )


# -- pipes --------------------------------------------------------------------------------------


def create_pipe(
    conn: Connection,
    name: str,
    template: dict[str, Any],
    files: str | None,
    elements: Sequence[tuple[str, str, int | None]],
) -> int:
    """A new running pipe with one pending row per ``(element, type, task_id)``."""
    exists = conn.execute(sa.select(pipe.c.id).where(pipe.c.name == name)).scalar()
    if exists is not None:
        raise AlreadyExists(f"a pipe named {name!r} exists (id {exists})")
    now = utcnow()
    pid = int(
        conn.execute(
            pipe.insert().values(
                name=name,
                template=template,
                files=files,
                state="running",
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
    )
    conn.execute(
        pipe_element.insert(),
        [
            {
                "pipe_id": pid,
                "element": e,
                "type": t,
                "state": "pending",
                "task_id": task,
                "iteration": 0,
                "loop_count": 0,
                "broken": False,
                "attempts": 0,
                "progress_done": 0,
                "updated_at": now,
            }
            for e, t, task in elements
        ],
    )
    return pid


def find_pipe(conn: Connection, name_or_id: str | int) -> PipeRow:
    """A pipe by name or id; NotFound otherwise."""
    if isinstance(name_or_id, int) and not isinstance(name_or_id, bool):
        query = sa.select(pipe).where(pipe.c.id == int(name_or_id))
    else:
        text = str(name_or_id)
        query = sa.select(pipe).where(pipe.c.name == text)
        if text.isdigit() and conn.execute(query).first() is None:
            query = sa.select(pipe).where(pipe.c.id == int(text))
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no pipe {name_or_id!r}")
    return _pipe_row(row)


def list_pipes(conn: Connection) -> list[PipeRow]:
    """Every pipe, oldest first."""
    return [_pipe_row(r) for r in conn.execute(sa.select(pipe).order_by(pipe.c.id)).all()]


def set_pipe_state(conn: Connection, pipe_id: int, state: str) -> None:
    if state not in PIPE_STATES:
        raise InvalidInput(f"unknown pipe state {state!r}; known: {', '.join(PIPE_STATES)}")
    values: dict[str, Any] = {"state": state, "updated_at": utcnow()}
    values["finished_at"] = utcnow() if state == "finished" else None
    conn.execute(pipe.update().where(pipe.c.id == pipe_id).values(**values))


def claim_pipe(
    conn: Connection, pipe_id: int, owner: str, *, stale_after: float, force: bool = False
) -> bool:
    """Make ``owner`` the engine of a pipe if nobody else drives it (or the other engine
    has not been seen for ``stale_after`` seconds, or ``force``); True when it now owns it."""
    row = conn.execute(
        sa.select(pipe.c.owner, pipe.c.heartbeat).where(pipe.c.id == pipe_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"no pipe {pipe_id}")
    now = utcnow()
    stale = row.heartbeat is None or (now - row.heartbeat).total_seconds() > stale_after
    if row.owner not in (None, owner) and not stale and not force:
        return False
    conn.execute(pipe.update().where(pipe.c.id == pipe_id).values(owner=owner, heartbeat=now))
    return True


def heartbeat(conn: Connection, pipe_id: int, owner: str) -> bool:
    """Refresh the engine lease; False when another engine took the pipe over."""
    result = conn.execute(
        pipe.update().where(pipe.c.id == pipe_id, pipe.c.owner == owner).values(heartbeat=utcnow())
    )
    return bool(result.rowcount)


def release_pipe(conn: Connection, pipe_id: int, owner: str) -> None:
    conn.execute(
        pipe.update().where(pipe.c.id == pipe_id, pipe.c.owner == owner).values(owner=None)
    )


# -- elements -----------------------------------------------------------------------------------


def element_rows(conn: Connection, pipe_id: int) -> dict[str, ElementRow]:
    """Element id -> state of every element of a pipe."""
    rows = conn.execute(
        sa.select(pipe_element).where(pipe_element.c.pipe_id == pipe_id).order_by(pipe_element.c.id)
    ).all()
    return {r.element: ElementRow.from_row(r) for r in rows}


def element_row(conn: Connection, pipe_id: int, element: str, *, lock: bool = False) -> ElementRow:
    query = sa.select(pipe_element).where(
        pipe_element.c.pipe_id == pipe_id, pipe_element.c.element == element
    )
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"pipe {pipe_id} has no element {element!r}")
    return ElementRow.from_row(row)


def update_element(
    conn: Connection,
    pipe_id: int,
    element: str,
    *,
    where: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Set fields of an element; with ``where`` only if those fields hold those values
    (a compare-and-set: True when the row was changed)."""
    if "state" in values and values["state"] not in ELEMENT_STATES:
        raise InvalidInput(f"unknown element state {values['state']!r}")
    values["updated_at"] = utcnow()
    query = pipe_element.update().where(
        pipe_element.c.pipe_id == pipe_id, pipe_element.c.element == element
    )
    for key, value in (where or {}).items():
        query = query.where(pipe_element.c[key] == value)
    result = conn.execute(query.values(**values))
    return bool(result.rowcount)


# -- logs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRecord:
    """One line of a pipe's log."""

    id: int
    created_at: dt.datetime
    level: str
    element: str | None
    iteration: int | None
    job_id: int | None
    message: str


def add_logs(
    conn: Connection,
    pipe_id: int,
    records: Iterable[tuple[str | None, int | None, int | None, str, str]],
) -> None:
    """Append ``(element, iteration, job_id, level, message)`` records."""
    now = utcnow()
    rows = [
        {
            "pipe_id": pipe_id,
            "element": e,
            "iteration": it,
            "job_id": job,
            "level": level[:10],
            "message": message[:MAX_LOG_MESSAGE],
            "created_at": now,
        }
        for e, it, job, level, message in records
    ]
    if rows:
        conn.execute(pipe_log.insert(), rows)


def read_logs(
    conn: Connection,
    pipe_id: int,
    *,
    element: str | None = None,
    after_id: int = 0,
    limit: int | None = None,
) -> list[LogRecord]:
    """Log records of a pipe (of one element), oldest first, newer than ``after_id``."""
    query = sa.select(pipe_log).where(pipe_log.c.pipe_id == pipe_id, pipe_log.c.id > after_id)
    if element is not None:
        query = query.where(pipe_log.c.element == element)
    query = query.order_by(pipe_log.c.id)
    if limit is not None:
        query = query.limit(int(limit))
    return [
        LogRecord(
            id=int(r.id),
            created_at=r.created_at,
            level=r.level,
            element=r.element,
            iteration=r.iteration,
            job_id=r.job_id,
            message=r.message,
        )
        for r in conn.execute(query).all()
    ]


# -- results ------------------------------------------------------------------------------------


def add_results(conn: Connection, pipe_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Append result rows (element, source, iteration, job_id, kind, location, html, data)."""
    if rows:
        now = utcnow()
        blank = {"source": None, "iteration": 0, "job_id": None, "location": None, "html": None,
                 "data": None}  # fmt: skip
        conn.execute(
            pipe_result.insert(),
            [{**blank, "pipe_id": pipe_id, "created_at": now, **r} for r in rows],
        )


def read_results(
    conn: Connection, pipe_id: int, element: str | None = None
) -> list[dict[str, Any]]:
    """Results of a pipe (of one element), oldest first, as dicts."""
    query = sa.select(pipe_result).where(pipe_result.c.pipe_id == pipe_id)
    if element is not None:
        query = query.where(pipe_result.c.element == element)
    return [dict(r._mapping) for r in conn.execute(query.order_by(pipe_result.c.id)).all()]
