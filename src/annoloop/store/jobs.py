"""Jobs: units of work on the executor, with state, progress, log and result, kept in the store
so that progress survives the process that made it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from annoloop.errors import InvalidInput, NotFound
from annoloop.store import bulk
from annoloop.store.labels import check_name
from annoloop.store.schema import JOB_STATES, job, utcnow

# Fields update_job may set (id and created_at are fixed; the log grows via append_job_log).
JOB_FIELDS = frozenset(
    {
        "kind", "name", "state", "progress_done", "progress_total", "message", "log", "error",
        "traceback", "result", "spec", "started_at", "finished_at",
    }
)  # fmt: skip
_FINAL = ("finished", "failed", "cancelled")


def _check_state(state: Any) -> str:
    if state not in JOB_STATES:
        raise InvalidInput(f"unknown job state {state!r}; known: {', '.join(JOB_STATES)}", "job")
    return str(state)


def add_job(conn: Connection, kind: str, name: str, spec: Any = None) -> int:
    """A queued job; returns its id."""
    result = conn.execute(
        job.insert().values(
            kind=check_name(kind, "job kind"),
            name=check_name(name, "job name"),
            state="queued",
            progress_done=0,
            log="",
            spec=bulk.json_safe(spec, "job spec"),
            created_at=utcnow(),
        )
    )
    return int(result.inserted_primary_key[0])


def update_job(conn: Connection, job_id: int, **fields: Any) -> None:
    """Set some fields of a job. Moving to ``running`` sets ``started_at``, to a final state
    ``finished_at``, unless given."""
    unknown = sorted(set(fields) - JOB_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown job field(s) {unknown}; known: {sorted(JOB_FIELDS)}", "job")
    values = dict(fields)
    if "state" in values:
        state = _check_state(values["state"])
        if state == "running":
            values.setdefault("started_at", utcnow())
        if state in _FINAL:
            values.setdefault("finished_at", utcnow())
    for key in ("result", "spec"):
        if key in values:
            values[key] = bulk.json_safe(values[key], f"job {key}")
    for key in ("progress_done", "progress_total"):
        if values.get(key) is not None:
            values[key] = int(values[key])
    if not values:
        return
    result = conn.execute(job.update().where(job.c.id == int(job_id)).values(**values))
    if result.rowcount == 0:
        raise NotFound(f"no job {job_id}")


def append_job_log(conn: Connection, job_id: int, text: str) -> None:
    """Append ``text`` to a job's log (in the database, without reading the log back)."""
    result = conn.execute(
        job.update()
        .where(job.c.id == int(job_id))
        .values(log=sa.func.coalesce(job.c.log, "") + str(text))
    )
    if result.rowcount == 0:
        raise NotFound(f"no job {job_id}")


def _row_dict(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key in ("created_at", "started_at", "finished_at"):
        value = out.get(key)
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            out[key] = value.replace(tzinfo=dt.UTC)
    return out


def get_job(conn: Connection, job_id: int) -> dict[str, Any]:
    """Every field of one job as a dict."""
    row = conn.execute(sa.select(job).where(job.c.id == int(job_id))).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return _row_dict(row)


def jobs_frame(conn: Connection, state: Any = None) -> pd.DataFrame:
    """Jobs (all fields but the log) ordered by id; only the given state(s) when set."""
    cols = [c for c in job.c if c.name != "log"]
    query = sa.select(*cols).order_by(job.c.id)
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        query = query.where(job.c.state.in_([_check_state(s) for s in states]))
    rows = conn.execute(query).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in cols])
    df["id"] = df["id"].astype(np.int64)
    df["progress_done"] = df["progress_done"].astype(np.int64)
    df["progress_total"] = df["progress_total"].astype("Int64")
    for key in ("created_at", "started_at", "finished_at"):
        df[key] = pd.to_datetime(df[key], utc=True)
    return df
