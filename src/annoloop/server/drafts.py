"""Work-in-progress on a work item, kept in the item's ``meta`` so nothing is lost on reload.

The annotate page saves the whole current shape list of its item after every change (a
*draft*, numbered by a client revision that only grows, so a late retry of an older save
cannot overwrite a newer one). Saving a draft is activity: it extends the item's lock. The
draft becomes annotations only on submit (:meth:`Project.submit`), so exports and statistics
see finished work only. Review verdicts go to ``meta["review"]``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from annoloop.errors import InvalidInput


def _store() -> tuple[Any, Any, Any]:
    from annoloop.store import workitems
    from annoloop.store.engine import read_transaction, run_write

    return workitems, read_transaction, run_write


def item_meta(project: Any, item_id: int) -> tuple[Any, dict[str, Any]]:
    """The work item (:class:`~annoloop.store.WorkItem`) and its meta dict."""
    import sqlalchemy as sa

    from annoloop.store.schema import work_item

    workitems, read_transaction, _ = _store()
    with read_transaction(project.engine) as conn:
        item = workitems.get_item(conn, item_id)
        meta = conn.execute(sa.select(work_item.c.meta).where(work_item.c.id == item.id)).scalar()
    return item, dict(meta or {})


def save_draft(
    project: Any,
    item_id: int,
    user: str,
    draft: dict[str, Any],
    *,
    revision: int,
    lock_seconds: float,
) -> tuple[int, bool]:
    """Store ``draft`` on a work item ``user`` holds and extend the lock.

    Returns ``(stored revision, saved)``; ``saved`` is False when the stored draft is newer
    than ``revision`` (an out-of-order retry), which is then left as it is. Conflict when the
    user does not hold the item.
    """
    import sqlalchemy as sa

    from annoloop.store.schema import utcnow, work_item

    if revision < 0:
        raise InvalidInput(f"revision must be >= 0, got {revision}", "draft.revision")
    workitems, _, run_write = _store()

    def write(conn: Any) -> tuple[int, bool]:
        item = workitems.get_item(conn, item_id, for_update=True)
        workitems.check_holder(item, user)
        meta = conn.execute(sa.select(work_item.c.meta).where(work_item.c.id == item.id)).scalar()
        meta = dict(meta or {})
        now = utcnow()
        until = now + dt.timedelta(seconds=float(lock_seconds))
        old = meta.get("draft") or {}
        stored = int(old.get("revision", -1))
        if stored > revision:
            conn.execute(
                work_item.update().where(work_item.c.id == item.id).values(locked_until=until)
            )
            return stored, False
        meta["draft"] = {**draft, "revision": int(revision), "saved_at": now.isoformat()}
        conn.execute(
            work_item.update()
            .where(work_item.c.id == item.id)
            .values(meta=meta, locked_until=until)
        )
        return int(revision), True

    return run_write(project.engine, write)


def clear_draft(project: Any, item_id: int) -> None:
    """Remove the draft of a finished item (its shapes are annotations now)."""
    import sqlalchemy as sa

    from annoloop.store.schema import work_item

    _, _, run_write = _store()

    def write(conn: Any) -> None:
        meta = conn.execute(
            sa.select(work_item.c.meta).where(work_item.c.id == int(item_id))
        ).scalar()
        if meta and "draft" in meta:
            meta = {k: v for k, v in meta.items() if k != "draft"}
            conn.execute(work_item.update().where(work_item.c.id == int(item_id)).values(meta=meta))

    run_write(project.engine, write)


def set_review(project: Any, item_id: int, review: dict[str, Any]) -> None:
    """Record a review verdict on a finished item."""
    import sqlalchemy as sa

    from annoloop.store.schema import work_item

    workitems, _, run_write = _store()

    def write(conn: Any) -> None:
        item = workitems.get_item(conn, item_id, for_update=True)
        meta = conn.execute(sa.select(work_item.c.meta).where(work_item.c.id == item.id)).scalar()
        meta = {**dict(meta or {}), "review": review}
        conn.execute(work_item.update().where(work_item.c.id == item.id).values(meta=meta))

    run_write(project.engine, write)
