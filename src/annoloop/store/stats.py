"""Counts over a project: images, labels, annotations per label / kind / source, work items."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from annoloop.geometry.kinds import Kind
from annoloop.store import bulk


def _count(conn: Connection, sql: str) -> int:
    return int(bulk.fetch_rows(conn, sql)[0][0])


def project_stats(conn: Connection) -> dict[str, Any]:
    """``images``, ``labels`` (active), ``annotations``, ``predictions``, ``tasks``, ``jobs``;
    ``per_label`` / ``per_kind`` / ``per_source`` annotation counts (largest first) and
    ``work_items`` as ``{task name: {state: count}}``."""
    per_label: dict[str, int] = {}
    rows = bulk.fetch_rows(
        conn,
        "SELECT l.name, COUNT(*) FROM annotation a LEFT JOIN label_class l ON l.id = a.label_id "
        "GROUP BY a.label_id, l.name ORDER BY COUNT(*) DESC, l.name",
    )
    for name, count in rows:
        key = "(none)" if name is None else str(name)
        per_label[key] = per_label.get(key, 0) + int(count)
    per_kind = {
        Kind(int(code)).label: int(count)
        for code, count in bulk.fetch_rows(
            conn, "SELECT kind, COUNT(*) FROM annotation GROUP BY kind ORDER BY COUNT(*) DESC"
        )
    }
    per_source = {
        str(src): int(count)
        for src, count in bulk.fetch_rows(
            conn,
            "SELECT source, COUNT(*) FROM annotation GROUP BY source ORDER BY COUNT(*) DESC",
        )
    }
    work: dict[str, dict[str, int]] = {}
    for name, state, count in bulk.fetch_rows(
        conn,
        "SELECT t.name, w.state, COUNT(*) FROM work_item w JOIN task t ON t.id = w.task_id "
        "GROUP BY t.name, w.state ORDER BY t.name, w.state",
    ):
        work.setdefault(str(name), {})[str(state)] = int(count)
    return {
        "images": _count(conn, "SELECT COUNT(*) FROM image"),
        "labels": _count(conn, "SELECT COUNT(*) FROM label_class WHERE NOT retired"),
        "annotations": _count(conn, "SELECT COUNT(*) FROM annotation"),
        "predictions": _count(conn, "SELECT COUNT(*) FROM prediction"),
        "tasks": _count(conn, "SELECT COUNT(*) FROM task"),
        "jobs": _count(conn, "SELECT COUNT(*) FROM job"),
        "per_label": per_label,
        "per_kind": per_kind,
        "per_source": per_source,
        "work_items": work,
    }
