"""Database engines for the store (SQLite and PostgreSQL), write transactions and migrations.

SQLite runs in WAL mode with ``synchronous=NORMAL``, foreign keys on and a 30 s busy timeout.
Write transactions start with ``BEGIN IMMEDIATE`` so that a writer takes the lock up front
(a deferred transaction that later upgrades to a writer fails at once instead of waiting);
:func:`run_write` also retries a whole transaction on "database is locked".
PostgreSQL goes through psycopg 3 (``postgresql+psycopg://``).
"""

from __future__ import annotations

import importlib.resources
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from annoloop.errors import AnnoloopError, InvalidInput, MissingDependency

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
# Page cache per SQLite connection (KiB, negative in the pragma): bulk inserts keep their
# index pages in memory instead of spilling them.
SQLITE_CACHE_KIB = 65536
_WRITE_OPTION = "annoloop_write"
# Alembic's migration context is module-global: two threads migrating two databases at once
# would run each other's operations, so migrations in one process take turns.
_ALEMBIC_LOCK = threading.Lock()


def normalize_url(url: str) -> str:
    """Map ``postgres://`` / ``postgresql://`` to the psycopg 3 driver; keep other URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (``sqlite:///FILE``, ``sqlite://`` in memory, or PostgreSQL)."""
    url = normalize_url(str(url))
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InvalidInput(f"not a database URL: {exc}", url) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, echo)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise InvalidInput("PostgreSQL URLs use psycopg 3: postgresql+psycopg://...", url)
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise MissingDependency("psycopg", "postgres") from None
        return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)
    raise InvalidInput(f"unsupported database {backend!r} (use sqlite or postgresql)", url)


def _sqlite_engine(url: sa.engine.URL, echo: bool) -> Engine:
    memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
        "echo": echo,
    }
    if memory:
        # One shared connection, or every checkout would see a different empty database.
        kwargs["poolclass"] = sa.pool.StaticPool
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: the "begin" hook below emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    """True for an SQLite engine or connection."""
    return engine_or_conn.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine, *, references_checked: bool = False) -> Iterator[Connection]:
    """A connection inside one write transaction (``BEGIN IMMEDIATE`` on SQLite).

    ``references_checked``: the caller only inserts rows whose references it has checked
    inside this transaction (bulk annotations: every image, label, task and work item id
    looked up once per distinct value). SQLite then skips its own per-row foreign key
    lookups, a quarter of the time of a million-row insert; the pragma can only change
    outside a transaction, so it is switched off before ``BEGIN`` and back on after.
    PostgreSQL always checks.
    """
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        raw = conn.connection.dbapi_connection if references_checked and is_sqlite(engine) else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                yield conn
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one read transaction (a consistent snapshot)."""
    with engine.connect() as conn, conn.begin():
        yield conn


def _is_locked_error(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "database is busy" in text


def run_write(
    engine: Engine,
    fn: Callable[[Connection], T],
    *,
    attempts: int = 8,
    references_checked: bool = False,
) -> T:
    """Run ``fn(conn)`` in one write transaction; retry it whole on "database is locked".

    The busy timeout already makes SQLite wait for the lock; the retry covers the cases it
    does not (a lock held past the timeout, a checkpoint in the way). ``fn`` must not have
    side effects outside the database, since it may run more than once. For
    ``references_checked`` see :func:`write_transaction`.
    """
    delay = 0.05
    for attempt in range(attempts):
        try:
            with write_transaction(engine, references_checked=references_checked) as conn:
                return fn(conn)
        except sa.exc.OperationalError as exc:
            if not is_sqlite(engine) or not _is_locked_error(exc) or attempt == attempts - 1:
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


# -- migrations -------------------------------------------------------------------------------


@contextmanager
def _alembic_config(conn: Connection | None = None) -> Iterator[Any]:
    from alembic.config import Config

    migrations = importlib.resources.files("annoloop.store") / "migrations"
    # as_file gives a real folder even when the package is imported from a zip.
    with importlib.resources.as_file(migrations) as path:
        cfg = Config()
        cfg.set_main_option("script_location", str(path))
        if conn is not None:
            cfg.attributes["connection"] = conn
        yield cfg


def head_revision() -> str:
    """The newest schema revision this version of annoloop knows."""
    from alembic.script import ScriptDirectory

    with _alembic_config() as cfg:
        head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise AnnoloopError("annoloop.store ships no migrations")
    return head


def current_revision(engine_or_conn: Engine | Connection) -> str | None:
    """The schema revision stamped in the database, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    return MigrationContext.configure(engine_or_conn).get_current_revision()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    with _alembic_config() as cfg:
        return {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate the database to ``revision`` (default: the newest) in one transaction.

    Returns the revision the database is at afterwards. A database stamped with a revision
    this annoloop does not know (written by a newer version) is refused with a clear error.
    """
    from alembic import command

    current = current_revision(engine)
    if current is not None and current not in _known_revisions():
        raise AnnoloopError(
            f"the database schema is at revision {current}, which this annoloop does not know "
            "(a newer version wrote it): upgrade annoloop"
        )

    def migrate(conn: Connection) -> None:
        with _ALEMBIC_LOCK, _alembic_config(conn) as cfg:
            command.upgrade(cfg, revision)

    run_write(engine, migrate)
    return current_revision(engine) or ""


def downgrade(engine: Engine, revision: str) -> str:
    """Migrate the database down to ``revision`` (``"base"`` removes every table)."""
    from alembic import command

    def migrate(conn: Connection) -> None:
        with _ALEMBIC_LOCK, _alembic_config(conn) as cfg:
            command.downgrade(cfg, revision)

    run_write(engine, migrate)
    return current_revision(engine) or "base"
