"""Alembic environment: runs on a connection handed over by annoloop.store.engine.

``annoloop.store.engine.upgrade`` puts an open connection (inside a write transaction) into
``config.attributes["connection"]``; the command line (``alembic -x url=...``) also works.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from annoloop.store.schema import metadata

# One advisory lock key for every annoloop migration on PostgreSQL: two processes that open
# the same out-of-date project migrate one after the other.
_PG_LOCK_KEY = 0x616E6E6F  # "anno"


def _run(connection: sa.engine.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER TABLE is limited
        compare_type=True,
    )
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database URL: alembic -x url=sqlite:///annoloop.db ...")
    from annoloop.store.engine import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("annoloop migrations run online only (they need the connection)")
run_migrations_online()
