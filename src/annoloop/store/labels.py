"""The label tree: add, rename, retire, list, and map names to ids in bulk."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from annoloop.errors import AlreadyExists, InvalidInput, NotFound
from annoloop.store.schema import label_class, utcnow

# Colours handed out in turn to labels created without one (matplotlib's tab20).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$")
MAX_NAME = 200


def check_name(name: Any, where: str = "label name") -> str:
    """A label name: a non-empty string of at most 200 characters without control characters."""
    if not isinstance(name, str):
        raise InvalidInput(f"must be a string, got {type(name).__name__} {name!r}", where)
    clean = name.strip()
    if not clean:
        raise InvalidInput("must not be empty", where)
    if len(clean) > MAX_NAME:
        raise InvalidInput(f"is {len(clean)} characters, at most {MAX_NAME}", where)
    if any(ord(c) < 32 for c in clean):
        raise InvalidInput(f"contains control characters: {clean!r}", where)
    return clean


def _check_color(color: str | None) -> str | None:
    if color is None:
        return None
    if not isinstance(color, str) or not _COLOR.match(color):
        raise InvalidInput(f"colour must look like #rrggbb, got {color!r}", "label colour")
    return color.lower()


def _active_ids(conn: Connection, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    rows = conn.execute(
        sa.select(label_class.c.name, label_class.c.id).where(
            label_class.c.name.in_(names), label_class.c.retired.is_(False)
        )
    ).all()
    return {name: int(i) for name, i in rows}


def _retired_ids(conn: Connection, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    rows = conn.execute(
        sa.select(label_class.c.name, sa.func.max(label_class.c.id))
        .where(label_class.c.name.in_(names), label_class.c.retired.is_(True))
        .group_by(label_class.c.name)
    ).all()
    return {name: int(i) for name, i in rows}


def _next_color(conn: Connection, offset: int = 0) -> str:
    count = conn.execute(sa.select(sa.func.count()).select_from(label_class)).scalar() or 0
    return PALETTE[(int(count) + offset) % len(PALETTE)]


def resolve_label(conn: Connection, label: str | int, *, include_retired: bool = True) -> int:
    """The id of a label given by name (active first, else the newest retired) or by id."""
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        found = conn.execute(
            sa.select(label_class.c.id).where(label_class.c.id == int(label))
        ).scalar()
        if found is None:
            raise NotFound(f"no label with id {int(label)}")
        return int(found)
    name = check_name(label)
    ids = _active_ids(conn, [name])
    if name not in ids and include_retired:
        ids = _retired_ids(conn, [name])
    if name not in ids:
        raise NotFound(f"no label named {name!r}")
    return ids[name]


def add_label(
    conn: Connection,
    name: str,
    *,
    code: str | None = None,
    color: str | None = None,
    parent: str | int | None = None,
) -> int:
    """Add one active label; an existing active label of that name is returned when the given
    code, colour and parent agree with it, else AlreadyExists."""
    name = check_name(name)
    color = _check_color(color)
    if code is not None:
        code = check_name(code, "label code")
    parent_id = resolve_label(conn, parent, include_retired=False) if parent is not None else None
    existing = conn.execute(
        sa.select(label_class).where(label_class.c.name == name, label_class.c.retired.is_(False))
    ).first()
    if existing is not None:
        wanted = {"code": code, "color": color, "parent_id": parent_id}
        clash = {
            k: (getattr(existing, k), v)
            for k, v in wanted.items()
            if v is not None and getattr(existing, k) != v
        }
        if clash:
            detail = ", ".join(f"{k} is {old!r}, not {new!r}" for k, (old, new) in clash.items())
            raise AlreadyExists(f"label {name!r} exists with other settings: {detail}")
        return int(existing.id)
    result = conn.execute(
        label_class.insert().values(
            name=name,
            code=code,
            color=color or _next_color(conn),
            parent_id=parent_id,
            retired=False,
            created_at=utcnow(),
        )
    )
    return int(result.inserted_primary_key[0])


def add_labels(conn: Connection, names: Iterable[str]) -> np.ndarray:
    """Ids for ``names`` in order; names without an active label are created in one statement."""
    return label_ids(conn, list(names), create=True)


def label_ids(conn: Connection, names: Any, *, create: bool = False) -> np.ndarray:
    """Vectorised name -> id (int64 array in the order given).

    Active labels come first; without ``create``, a name known only as a retired label maps to
    the newest retired one (old annotations stay findable). Unknown names raise NotFound listing
    them, or are created as active labels with ``create=True``.
    """
    values = np.asarray(list(names) if not isinstance(names, np.ndarray) else names, dtype=object)
    if values.size == 0:
        return np.zeros(0, np.int64)
    if values.dtype.kind not in "US":
        for i, v in enumerate(values.tolist()):
            if not isinstance(v, str):
                raise InvalidInput(f"must be a string, got {type(v).__name__} {v!r}", f"label {i}")
    uniq, first, inverse = np.unique(values.astype(str), return_index=True, return_inverse=True)
    clean = [check_name(str(u), f"label name {u!r}") for u in uniq]
    found = _active_ids(conn, sorted(set(clean)))
    # new labels are created in the order their names first appear
    by_appearance = [clean[k] for k in np.argsort(first, kind="stable").tolist()]
    missing = [c for c in dict.fromkeys(by_appearance) if c not in found]
    if missing and not create:
        found.update(_retired_ids(conn, missing))
        missing = [c for c in missing if c not in found]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise NotFound(f"unknown label name(s): {shown}{more}")
    if missing:
        now = utcnow()
        base = _next_color(conn)
        start = PALETTE.index(base)
        conn.execute(
            label_class.insert(),
            [
                {
                    "name": m,
                    "color": PALETTE[(start + i) % len(PALETTE)],
                    "retired": False,
                    "created_at": now,
                }
                for i, m in enumerate(missing)
            ],
        )
        found.update(_active_ids(conn, missing))
    ids = np.array([found[c] for c in clean], dtype=np.int64)
    return ids[inverse.reshape(-1)]


def rename_label(conn: Connection, old: str | int, new: str) -> None:
    """Rename the active label ``old`` (name or id); annotations keep pointing at it."""
    new = check_name(new)
    label_id = resolve_label(conn, old, include_retired=False)
    clash = _active_ids(conn, [new])
    if new in clash and clash[new] != label_id:
        raise AlreadyExists(f"an active label is already named {new!r}")
    conn.execute(label_class.update().where(label_class.c.id == label_id).values(name=new))


def retire_label(conn: Connection, name: str | int) -> None:
    """Retire an active label: hidden from new work, its annotations kept."""
    label_id = resolve_label(conn, name, include_retired=False)
    conn.execute(label_class.update().where(label_class.c.id == label_id).values(retired=True))


def labels_frame(conn: Connection, include_retired: bool = False) -> pd.DataFrame:
    """Columns id, name, code, color, parent (name), parent_id, retired; ordered by id."""
    parent = label_class.alias("parent")
    query = (
        sa.select(
            label_class.c.id,
            label_class.c.name,
            label_class.c.code,
            label_class.c.color,
            parent.c.name.label("parent"),
            label_class.c.parent_id,
            label_class.c.retired,
        )
        .select_from(label_class.outerjoin(parent, parent.c.id == label_class.c.parent_id))
        .order_by(label_class.c.id)
    )
    if not include_retired:
        query = query.where(label_class.c.retired.is_(False))
    rows = conn.execute(query).all()
    df = pd.DataFrame(
        [tuple(r) for r in rows],
        columns=["id", "name", "code", "color", "parent", "parent_id", "retired"],
    )
    df["id"] = df["id"].astype(np.int64)
    df["parent_id"] = df["parent_id"].astype("Int64")
    df["retired"] = df["retired"].astype(bool)
    return df


def label_name_map(conn: Connection) -> dict[int, str]:
    """Every label id (retired too) -> name."""
    return {int(i): n for i, n in conn.execute(sa.select(label_class.c.id, label_class.c.name))}
