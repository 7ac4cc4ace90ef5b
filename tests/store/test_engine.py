"""Engines: SQLite settings, write transactions and the retry on a locked database."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from annoloop.store import make_engine
from annoloop.store.engine import normalize_url, run_write, upgrade
from annoloop.store.pgserver import PostgresServer, find_pg_bin


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 30000
    engine.dispose()


def test_checked_references_skip_sqlite_checks_for_that_transaction_only(tmp_path):
    """``references_checked`` turns SQLite's per-row foreign key lookups off inside that one
    transaction; every other transaction on the pooled connection checks again, also after
    the bulk one failed."""
    from annoloop.store.engine import write_transaction

    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    upgrade(engine)
    orphan = "INSERT INTO annotation (image_id, kind, source) VALUES (999, 2, 'human')"
    with write_transaction(engine, references_checked=True) as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    with pytest.raises(RuntimeError), write_transaction(engine, references_checked=True):
        raise RuntimeError("the bulk write failed")
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
        run_write(engine, lambda c: c.exec_driver_sql(orphan))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_in_memory_sqlite_keeps_one_database():
    engine = make_engine("sqlite://")
    upgrade(engine)
    run_write(engine, lambda c: c.exec_driver_sql("INSERT INTO job (kind, name) VALUES ('a', 'b')"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM job").scalar() == 1


def test_url_normalisation():
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_write_waits_for_another_writer_and_fails_cleanly(tmp_path):
    path = tmp_path / "a.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    released = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    released.start()
    start = time.monotonic()
    run_write(engine, lambda c: c.exec_driver_sql("INSERT INTO job (kind, name) VALUES ('a', 'b')"))
    assert time.monotonic() - start >= 0.4  # it waited instead of failing
    released.join()

    def boom(conn: sa.Connection) -> None:
        conn.exec_driver_sql("INSERT INTO job (kind, name) VALUES ('c', 'd')")
        raise RuntimeError("half way")

    with pytest.raises(RuntimeError):
        run_write(engine, boom)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM job").scalar() == 1  # rolled back
    other.close()
    engine.dispose()


def test_retry_when_the_lock_outlasts_the_busy_timeout(tmp_path, monkeypatch):
    import annoloop.store.engine as engine_module

    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "a.db"
    engine = engine_module.make_engine(f"sqlite:///{path}")
    upgrade(engine)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.4, lambda: other.execute("COMMIT"))
    released.start()
    start = time.monotonic()
    run_write(
        engine,
        lambda c: c.exec_driver_sql("INSERT INTO job (kind, name) VALUES ('a', 'b')"),
        attempts=20,
    )
    # the busy timeout (0.05 s) ran out several times; the retries outlasted the 0.4 s lock
    assert time.monotonic() - start >= 0.3
    released.join()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM job").scalar() == 1
    other.close()
    engine.dispose()


@pytest.mark.postgres
def test_pgserver_start_create_stop():
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    server = PostgresServer()
    with server:
        url = server.create_database("check_me")
        engine = make_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        engine.dispose()
        root = server.root
        assert root is not None and root.exists()
    assert not root.exists()  # stopped and removed
    with pytest.raises(Exception, match="must match"):
        server.create_database("Robert'); DROP TABLE x;--")
