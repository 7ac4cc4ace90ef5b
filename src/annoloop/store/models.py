"""Model states (versioned, with label map, options, metrics, parent) and predictions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from annoloop.store import bulk
from annoloop.store.annotations import (
    GEOMETRY_READ,
    as_object,
    constant_or_column,
    geometry_columns,
    kind_categories,
    label_names_for,
    nullable_int,
    parse_shapes,
    utc_times,
)
from annoloop.store.labels import check_name
from annoloop.store.schema import model_state, utcnow


def add_model_state(
    conn: Connection,
    model: str,
    location: Any,
    *,
    label_map: Any,
    options: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    parent: int | None = None,
) -> int:
    """Record a new state of ``model`` (version = previous + 1); returns its id."""
    model = check_name(model, "model name")
    if label_map is None:
        raise InvalidInput("label_map is required (model output index -> label)", "model state")
    if parent is not None:
        found = conn.execute(
            sa.select(model_state.c.id).where(model_state.c.id == int(parent))
        ).scalar()
        if found is None:
            raise NotFound(f"no model state {parent} (given as parent)")
    version = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(model_state.c.version), 0)).where(
            model_state.c.model == model
        )
    ).scalar()
    result = conn.execute(
        model_state.insert().values(
            model=model,
            version=int(version or 0) + 1,
            location=str(location),
            label_map=bulk.json_safe(label_map, "label_map"),
            options=bulk.json_safe(options, "options"),
            metrics=bulk.json_safe(metrics, "metrics"),
            parent_id=None if parent is None else int(parent),
            is_current=False,
            created_at=utcnow(),
        )
    )
    return int(result.inserted_primary_key[0])


def model_states_frame(conn: Connection, model: str | None = None) -> pd.DataFrame:
    """Columns id, model, version, location, label_map, options, metrics, parent_id,
    is_current, created_at; ordered by id."""
    query = sa.select(model_state).order_by(model_state.c.id)
    if model is not None:
        query = query.where(model_state.c.model == model)
    result = conn.execute(query)
    cols = list(result.keys())
    df = pd.DataFrame([tuple(r) for r in result.all()], columns=cols)
    df["id"] = df["id"].astype(np.int64)
    df["version"] = df["version"].astype(np.int64)
    df["parent_id"] = df["parent_id"].astype("Int64")
    df["is_current"] = df["is_current"].astype(bool)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    return df


def set_current_state(conn: Connection, state_id: int) -> None:
    """Make ``state_id`` the current state of its model (and no other state of it)."""
    model = conn.execute(
        sa.select(model_state.c.model).where(model_state.c.id == int(state_id))
    ).scalar()
    if model is None:
        raise NotFound(f"no model state {state_id}")
    conn.execute(
        model_state.update()
        .where(model_state.c.model == model)
        .values(is_current=model_state.c.id == int(state_id))
    )


def insert_predictions(
    conn: Connection,
    ann: Annotations,
    model_state_id: int,
    *,
    scores: Any = None,
    priorities: Any = None,
    validate: bool = True,
) -> np.ndarray:
    """Insert predictions of one model state; ``scores`` is (n, classes) per-class scores kept
    as float32 blobs, ``priorities`` one value per prediction (or one for all)."""
    n = len(ann)
    found = conn.execute(
        sa.select(model_state.c.id).where(model_state.c.id == int(model_state_id))
    ).scalar()
    if found is None:
        raise NotFound(f"no model state {model_state_id}")
    if n == 0:
        return np.zeros(0, np.int64)
    geo = geometry_columns(conn, ann, validate=validate, where="predictions")
    cols = dict(geo.columns)
    cols["model_state_id"] = int(model_state_id)
    if scores is None:
        cols["scores"] = None
    else:
        arr = np.asarray(scores, dtype="<f4")
        if arr.ndim != 2 or arr.shape[0] != n:
            raise InvalidInput(f"scores has shape {arr.shape}, expected ({n}, classes)", "scores")
        if not np.isfinite(arr).all():
            raise InvalidInput("scores must be finite numbers", "scores")
        arr = np.ascontiguousarray(arr)
        cols["scores"] = [row.tobytes() for row in arr]
    if priorities is None:
        cols["priority"] = None
    else:
        prio = np.broadcast_to(np.asarray(priorities, dtype=np.float64), (n,))
        if np.isinf(prio).any():
            raise InvalidInput("priorities must be finite numbers (or NaN)", "priorities")
        cols["priority"] = constant_or_column(prio)
    cols["created_at"] = bulk.timestamp_param(conn)
    ids = bulk.reserve_ids(conn, "prediction", n)
    bulk.insert_columns(conn, "prediction", {"id": ids.tolist(), **cols}, n)
    return ids


_PREDICTION_READ = [
    *GEOMETRY_READ,
    ("model_state_id", "t.model_state_id", "int"),
    ("scores", "t.scores", "sparse"),
    ("priority", "t.priority", "float"),
]

PREDICTION_COLUMNS = [
    "id", "image_id", "model_state_id", "kind", "label_id", "label", "x", "y", "w", "h",
    "confidence", "shape", "scores", "priority", "created_at",
]  # fmt: skip


def predictions_frame(
    conn: Connection, *, model_state_id: Any = None, image: Any = None
) -> pd.DataFrame:
    """Columns :data:`PREDICTION_COLUMNS`; ``scores`` holds float32 arrays (or None)."""
    clauses: list[str] = []
    params: list[Any] = []
    for col, value in (("model_state_id", model_state_id), ("image_id", image)):
        if value is not None:
            values = np.atleast_1d(np.asarray(value, dtype=np.int64)).reshape(-1).tolist()
            sql, p = bulk.in_filter(conn, f"t.{col}", values)
            clauses.append(sql)
            params.extend(p)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    cols = bulk.read_columns(conn, "prediction", where, params, _PREDICTION_READ)
    kinds = cols["kind"].astype(np.int8)
    scores = np.empty(len(kinds), dtype=object)
    for i in np.flatnonzero(np.not_equal(cols["scores"], None)).tolist():
        scores[i] = np.frombuffer(bytes(cols["scores"][i]), dtype="<f4").copy()
    return pd.DataFrame(
        {
            "id": cols["id"],
            "image_id": cols["image_id"],
            "model_state_id": cols["model_state_id"],
            "kind": kind_categories(kinds),
            "label_id": nullable_int(cols["label_id"]),
            "label": as_object(label_names_for(conn, cols["label_id"])),
            "x": cols["x"],
            "y": cols["y"],
            "w": cols["w"],
            "h": cols["h"],
            "confidence": cols["confidence"],
            "shape": parse_shapes(kinds, cols["shape_text"]),
            "scores": scores,
            "priority": cols["priority"],
            "created_at": utc_times(cols["created_at"]),
        },
        columns=PREDICTION_COLUMNS,
    )
