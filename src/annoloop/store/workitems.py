"""Annotation tasks and their work items: request, claim atomically, submit, release.

An item moves ``open -> locked(user, until) -> done | junk``. Claiming is atomic: on SQLite
the claim runs in a ``BEGIN IMMEDIATE`` transaction (one writer at a time) and updates the
chosen row with ``UPDATE .. RETURNING``; on PostgreSQL the candidate rows are read with
``SELECT .. FOR UPDATE SKIP LOCKED``, so concurrent annotators each get a different item.
A lock whose time ran out makes the item claimable again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from annoloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from annoloop.geometry.kinds import Kind
from annoloop.store import bulk
from annoloop.store.labels import check_name
from annoloop.store.schema import WORK_ITEM_STATES, task, utcnow, work_item


@dataclass(frozen=True)
class WorkItem:
    """One image to annotate in one task (see :data:`WORK_ITEM_STATES`)."""

    id: int
    task_id: int
    image_id: int
    iteration: int
    state: str
    locked_by: str | None
    locked_until: dt.datetime | None
    priority: float

    @classmethod
    def from_row(cls, row: Any) -> WorkItem:
        """From a row holding the work_item columns."""
        until = row.locked_until
        if isinstance(until, dt.datetime) and until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
        return cls(
            id=int(row.id),
            task_id=int(row.task_id),
            image_id=int(row.image_id),
            iteration=int(row.iteration),
            state=str(row.state),
            locked_by=row.locked_by,
            locked_until=until,
            priority=float(row.priority),
        )


_ITEM_COLUMNS = (
    work_item.c.id,
    work_item.c.task_id,
    work_item.c.image_id,
    work_item.c.iteration,
    work_item.c.state,
    work_item.c.locked_by,
    work_item.c.locked_until,
    work_item.c.priority,
)


# -- tasks --------------------------------------------------------------------------------------


def add_task(
    conn: Connection,
    name: str,
    *,
    instructions: str = "",
    kinds: Sequence[str | int | Kind] = ("bbox",),
    labels: Sequence[int] | None = None,
    show_proposals: bool = True,
) -> int:
    """Create an annotation task; ``kinds`` are the shape kinds allowed, ``labels`` the label
    ids allowed (None = all)."""
    name = check_name(name, "task name")
    if isinstance(kinds, (str, int, Kind)):
        kinds = [kinds]
    kind_names = [Kind.parse(k).label for k in kinds]
    if not kind_names:
        raise InvalidInput("a task needs at least one shape kind", f"task {name!r}")
    exists = conn.execute(sa.select(task.c.id).where(task.c.name == name)).scalar()
    if exists is not None:
        raise AlreadyExists(f"a task named {name!r} exists (id {exists})")
    result = conn.execute(
        task.insert().values(
            name=name,
            instructions=str(instructions or ""),
            kinds=kind_names,
            labels=None if labels is None else [int(v) for v in labels],
            show_proposals=bool(show_proposals),
            created_at=utcnow(),
        )
    )
    return int(result.inserted_primary_key[0])


def task_id(conn: Connection, name_or_id: str | int) -> int:
    """The id of a task given by name or id; NotFound otherwise."""
    if isinstance(name_or_id, (int, np.integer)) and not isinstance(name_or_id, bool):
        query = sa.select(task.c.id).where(task.c.id == int(name_or_id))
    else:
        query = sa.select(task.c.id).where(task.c.name == str(name_or_id))
    found = conn.execute(query).scalar()
    if found is None:
        raise NotFound(f"no task {name_or_id!r}")
    return int(found)


def task_ids(conn: Connection, tasks: Any) -> list[int]:
    """Ids of one task or a list of tasks (names or ids)."""
    if isinstance(tasks, (str, int, np.integer)):
        tasks = [tasks]
    return [task_id(conn, t) for t in tasks]


def task_row(conn: Connection, tid: int) -> Any:
    """The task's row (name, kinds, labels, ...)."""
    return conn.execute(sa.select(task).where(task.c.id == tid)).one()


def tasks_frame(conn: Connection) -> pd.DataFrame:
    """Columns id, name, instructions, kinds, labels, show_proposals, created_at."""
    rows = conn.execute(sa.select(task).order_by(task.c.id)).all()
    cols = ["id", "name", "instructions", "kinds", "labels", "show_proposals", "created_at"]
    df = pd.DataFrame([tuple(getattr(r, c) for c in cols) for r in rows], columns=cols)
    df["id"] = df["id"].astype(np.int64)
    df["show_proposals"] = df["show_proposals"].astype(bool)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    return df


# -- requesting ----------------------------------------------------------------------------------


def _check_images(conn: Connection, image_ids: np.ndarray) -> None:
    uniq = np.unique(image_ids)
    sql, params = bulk.in_filter(conn, "id", uniq.tolist())
    found = np.array(
        [r[0] for r in bulk.fetch_rows(conn, f"SELECT id FROM image WHERE {sql}", params)]
    )
    missing = np.setdiff1d(uniq, found)
    if missing.size:
        shown = ", ".join(str(v) for v in missing[:20].tolist())
        raise NotFound(f"no image(s) with id {shown}" + (" ..." if missing.size > 20 else ""))


def request_annotations(
    conn: Connection,
    image_ids: Any,
    tasks: Any,
    *,
    priority: Any = None,
    iteration: int = 0,
    meta: dict[str, Any] | None = None,
) -> int:
    """One open item per (image, task) for ``iteration``; existing ones are kept as they are.

    ``priority`` is one value or one per image. Returns how many items were created.
    """
    images = np.atleast_1d(np.asarray(image_ids, dtype=np.int64)).reshape(-1)
    tids = task_ids(conn, tasks)
    if images.size == 0 or not tids:
        return 0
    if priority is None:
        prio = np.zeros(images.size)
    else:
        prio = np.broadcast_to(np.asarray(priority, dtype=np.float64), images.shape).copy()
        if not np.isfinite(prio).all():
            raise InvalidInput("priorities must be finite numbers", "request_annotations")
    # one row per image: duplicates in the request would otherwise collide with each other
    images, first = np.unique(images, return_index=True)
    prio = prio[first]
    _check_images(conn, images)
    n_tasks = len(tids)
    col_task = np.repeat(np.asarray(tids, dtype=np.int64), images.size)
    col_image = np.tile(images, n_tasks)
    col_prio = np.tile(prio, n_tasks)
    n = col_task.size
    now = bulk.timestamp_param(conn)
    before = conn.exec_driver_sql("SELECT COUNT(*) FROM work_item").scalar() or 0
    meta_text = bulk.json_text(meta)
    if bulk.is_sqlite(conn):
        cur = bulk.raw_cursor(conn)
        cur.executemany(
            "INSERT OR IGNORE INTO work_item (task_id, image_id, iteration, state, priority, "
            "meta, created_at) VALUES (?, ?, ?, 'open', ?, ?, ?)",
            zip(
                col_task.tolist(),
                col_image.tolist(),
                [int(iteration)] * n,
                col_prio.tolist(),
                [meta_text] * n,
                [now] * n,
                strict=True,
            ),
        )
        cur.close()
    else:
        cur = bulk.raw_cursor(conn)
        cur.execute(
            "INSERT INTO work_item (task_id, image_id, iteration, state, priority, meta, "
            "created_at) SELECT t, i, %s, 'open', p, %s::json, %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::float8[]) AS u(t, i, p) "
            "ON CONFLICT (task_id, image_id, iteration) DO NOTHING",
            (int(iteration), meta_text, now, col_task.tolist(), col_image.tolist(),
             col_prio.tolist()),
        )  # fmt: skip
        cur.close()
    after = conn.exec_driver_sql("SELECT COUNT(*) FROM work_item").scalar() or 0
    return int(after) - int(before)


# -- claiming ----------------------------------------------------------------------------------


def next_item(
    conn: Connection, tid: int, user: str, *, lock_seconds: float = 600
) -> WorkItem | None:
    """Lock the best claimable item of task ``tid`` for ``user`` (run in a write transaction).

    A live lock the user already holds is returned (and extended) first; then the highest
    priority item that is open or whose lock expired, the oldest among equal priorities.
    """
    user = check_name(user, "user")
    if not lock_seconds or lock_seconds <= 0:
        raise InvalidInput(f"lock_seconds must be positive, got {lock_seconds}", "next_item")
    now = utcnow()
    until = now + dt.timedelta(seconds=float(lock_seconds))
    mine = conn.execute(
        sa.select(work_item.c.id)
        .where(
            work_item.c.task_id == tid,
            work_item.c.state == "locked",
            work_item.c.locked_by == user,
            work_item.c.locked_until > now,
        )
        .order_by(work_item.c.priority.desc(), work_item.c.id)
        .limit(1)
    ).scalar()
    if mine is not None:
        row = conn.execute(
            work_item.update()
            .where(work_item.c.id == mine)
            .values(locked_until=until)
            .returning(*_ITEM_COLUMNS)
        ).one()
        return WorkItem.from_row(row)
    order = (work_item.c.priority.desc(), work_item.c.id)
    candidates = []
    for condition in (
        work_item.c.state == "open",
        sa.and_(work_item.c.state == "locked", work_item.c.locked_until <= now),
    ):
        row = conn.execute(
            sa.select(work_item.c.id, work_item.c.priority)
            .where(work_item.c.task_id == tid, condition)
            .order_by(*order)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the write lock
        ).first()
        if row is not None:
            candidates.append((-float(row.priority), int(row.id)))
    if not candidates:
        return None
    _, chosen = min(candidates)
    row = conn.execute(
        work_item.update()
        .where(work_item.c.id == chosen)
        .values(state="locked", locked_by=user, locked_until=until)
        .returning(*_ITEM_COLUMNS)
    ).one()
    return WorkItem.from_row(row)


def get_item(conn: Connection, item_id: int, *, for_update: bool = False) -> WorkItem:
    """One work item; NotFound when there is none."""
    query = sa.select(*_ITEM_COLUMNS).where(work_item.c.id == int(item_id))
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no work item {item_id}")
    return WorkItem.from_row(row)


def check_holder(item: WorkItem, user: str) -> None:
    """Conflict unless ``user`` holds the item's lock (an expired lock still counts while
    nobody else has taken the item)."""
    if item.state != "locked":
        raise Conflict(
            f"work item {item.id} is {item.state}, not locked by {user!r}"
            + (" (its lock expired and it was released)" if item.state == "open" else "")
        )
    if item.locked_by != user:
        raise Conflict(f"work item {item.id} is locked by another user, not {user!r}")


def finish_item(
    conn: Connection, item: WorkItem, state: str, meta: dict[str, Any] | None = None
) -> None:
    """Close a locked item as ``done`` or ``junk``."""
    values: dict[str, Any] = {"state": state, "finished_at": utcnow(), "locked_until": None}
    if meta:
        old = conn.execute(sa.select(work_item.c.meta).where(work_item.c.id == item.id)).scalar()
        values["meta"] = {**(old or {}), **meta}
    conn.execute(work_item.update().where(work_item.c.id == item.id).values(**values))


def check_final_state(state: str) -> str:
    """``state`` when it closes an item (done or junk), else InvalidInput."""
    if state not in ("done", "junk"):
        raise InvalidInput(f"state must be 'done' or 'junk', got {state!r}", "submit")
    return state


def release_item(conn: Connection, item_id: int, user: str) -> None:
    """Give a locked item back (state open) so that someone else can take it."""
    item = get_item(conn, item_id, for_update=True)
    check_holder(item, user)
    conn.execute(
        work_item.update()
        .where(work_item.c.id == item.id)
        .values(state="open", locked_by=None, locked_until=None)
    )


def set_priorities(conn: Connection, item_ids: Any, priorities: Any) -> None:
    """Set the priority of many items (one value, or one per item)."""
    ids = np.atleast_1d(np.asarray(item_ids, dtype=np.int64)).reshape(-1)
    prio = np.broadcast_to(np.asarray(priorities, dtype=np.float64), ids.shape)
    if not np.isfinite(prio).all():
        raise InvalidInput("priorities must be finite numbers", "set_priorities")
    if ids.size == 0:
        return
    uniq = np.unique(ids)
    sql, params = bulk.in_filter(conn, "id", uniq.tolist())
    found = np.array(
        [r[0] for r in bulk.fetch_rows(conn, f"SELECT id FROM work_item WHERE {sql}", params)]
    )
    missing = np.setdiff1d(uniq, found)
    if missing.size:
        raise NotFound(f"no work item(s) with id {', '.join(map(str, missing[:20].tolist()))}")
    ph = bulk.placeholder(conn)
    cur = bulk.raw_cursor(conn)
    cur.executemany(
        f"UPDATE work_item SET priority = {ph} WHERE id = {ph}",
        list(zip(prio.tolist(), ids.tolist(), strict=True)),
    )
    cur.close()


def work_items_frame(conn: Connection, tid: int | None = None, state: Any = None) -> pd.DataFrame:
    """Columns id, task_id, task, image_id, iteration, state, locked_by, locked_until, priority,
    meta, created_at, finished_at."""
    query = sa.select(
        work_item.c.id,
        work_item.c.task_id,
        task.c.name.label("task"),
        work_item.c.image_id,
        work_item.c.iteration,
        work_item.c.state,
        work_item.c.locked_by,
        work_item.c.locked_until,
        work_item.c.priority,
        work_item.c.meta,
        work_item.c.created_at,
        work_item.c.finished_at,
    ).select_from(work_item.join(task, task.c.id == work_item.c.task_id))
    if tid is not None:
        query = query.where(work_item.c.task_id == tid)
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        bad = [s for s in states if s not in WORK_ITEM_STATES]
        if bad:
            raise InvalidInput(f"unknown work item state(s) {bad}; known: {WORK_ITEM_STATES}")
        query = query.where(work_item.c.state.in_(states))
    result = conn.execute(query.order_by(work_item.c.id))
    cols = list(result.keys())
    df = pd.DataFrame([tuple(r) for r in result.all()], columns=cols)
    for c in ("id", "task_id", "image_id", "iteration"):
        df[c] = df[c].astype(np.int64)
    df["priority"] = df["priority"].astype(np.float64)
    for c in ("locked_until", "created_at", "finished_at"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df
