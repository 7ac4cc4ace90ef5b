"""Migrations: upgrade creates exactly the schema, stamps head, old projects are upgraded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from annoloop.errors import AlreadyExists, AnnoloopError, InvalidInput, NotFound
from annoloop.store import Project, current_revision, head_revision, make_engine, upgrade
from annoloop.store.engine import downgrade
from annoloop.store.schema import metadata
from tests.store.helpers import add_records


def _url(tmp_path: Path, db_url: str | None) -> str:
    return db_url or f"sqlite:///{tmp_path / 'empty.db'}"


def test_upgrade_on_empty_database_creates_schema_and_stamps_head(tmp_path, db_url):
    engine = make_engine(_url(tmp_path, db_url))
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == head_revision()
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            # the migrated database matches schema.py exactly: no missing or extra columns,
            # indexes, constraints or types
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
        assert diff == []
        assert set(metadata.tables) <= tables
        assert "alembic_version" in tables
        # upgrading again is a no-op
        assert upgrade(engine) == head_revision()
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_everything(tmp_path, db_url):
    engine = make_engine(_url(tmp_path, db_url))
    try:
        upgrade(engine)
        assert downgrade(engine, "base") == "base"
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_opening_a_project_whose_schema_is_behind_upgrades_it(tmp_path, db_url):
    folder = tmp_path / "old"
    with Project.init(folder, database_url=db_url) as p:
        ids = add_records(p, 3)
        labels = p.add_labels(["a", "b"])
        url = p.engine.url.render_as_string(hide_password=False)
    engine = make_engine(url)
    downgrade(engine, "0001_initial")  # as written by the first release: no user tables
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("user")
    engine.dispose()

    with Project.open(folder) as p:
        assert current_revision(p.engine) == head_revision()
        with p.engine.connect() as conn:
            assert sa.inspect(conn).has_table("user")
            assert sa.inspect(conn).has_table("api_token")
        np.testing.assert_array_equal(p.images()["id"], ids)  # data kept
        np.testing.assert_array_equal(p.labels()["id"], labels)


def test_a_database_from_a_newer_annoloop_is_refused(tmp_path):
    with Project.init(tmp_path / "p") as p, p.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(AnnoloopError, match="newer version"):
        Project.open(tmp_path / "p")


def test_init_writes_the_embedded_layout(tmp_path):
    folder = tmp_path / "survey"
    with Project.init(folder, name="Reef survey") as p:
        assert p.folder == folder.resolve()
        assert p.url.startswith("sqlite:///") and p.url.endswith("annoloop.db")
        assert p.media.local_path() == folder.resolve() / "media"
        assert p.models.local_path() == folder.resolve() / "models"
        assert p.runs.local_path() == folder.resolve() / "runs"
        assert p.name == "Reef survey"
    for name in ("annoloop.db", "media", "models", "runs", "annoloop.yaml"):
        assert (folder / name).exists(), name
    text = (folder / "annoloop.yaml").read_text()
    assert "Reef survey" in text and "database_url" not in text  # the default is not written


def test_init_refuses_an_existing_project_unless_exist_ok(tmp_path):
    folder = tmp_path / "p"
    Project.init(folder).close()
    with pytest.raises(AlreadyExists):
        Project.init(folder)
    with Project.init(folder, exist_ok=True) as p:
        assert p.name == "p"


def test_init_refuses_a_database_that_holds_a_project(tmp_path, postgres_url):
    Project.init(tmp_path / "a", database_url=postgres_url, name="first").close()
    with pytest.raises(AlreadyExists, match="first"):
        Project.init(tmp_path / "b", database_url=postgres_url)
    assert not (tmp_path / "b" / "annoloop.yaml").exists()


def test_open_by_database_url_finds_storage_from_the_project_row(tmp_path, db_url):
    with Project.init(tmp_path / "p", database_url=db_url) as p:
        url = p.engine.url.render_as_string(hide_password=False)
        media = str(p.media)
        records = add_records(p, 2)
    with Project.open(url) as p:
        assert p.folder is None
        assert str(p.media) == media
        assert str(p.models).endswith("/models")
        assert p.image_location(int(records[0])).url == media + "/img/00000.png"


def test_open_errors_name_the_problem(tmp_path):
    with pytest.raises(NotFound, match="no project folder"):
        Project.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="holds no annoloop project"):
        Project.open(tmp_path / "empty")
    with pytest.raises(NotFound, match="holds no annoloop project"):
        Project.open(f"sqlite:///{tmp_path / 'nothing.db'}")
    with pytest.raises(InvalidInput, match="unsupported database"):
        make_engine("mysql://localhost/x")
    with pytest.raises(InvalidInput, match="not a database URL"):
        make_engine("::::")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="is a file"):
        Project.init(tmp_path / "file")


def test_yaml_and_environment_choose_the_database(tmp_path, postgres_url, monkeypatch):
    with Project.init(tmp_path / "p", database_url=postgres_url) as p:
        assert p.url.startswith("postgresql+psycopg://")
    assert "database_url" in (tmp_path / "p" / "annoloop.yaml").read_text()
    with Project.open(tmp_path / "p") as p:
        assert p.url.startswith("postgresql+psycopg://")
    # ANNOLOOP_DATABASE_URL wins over the project file
    other = tmp_path / "other.db"
    Project.init(tmp_path / "q", database_url=f"sqlite:///{other}").close()
    monkeypatch.setenv("ANNOLOOP_DATABASE_URL", f"sqlite:///{other}")
    with Project.open(tmp_path / "p") as p:
        assert p.url.endswith("other.db")


def test_storage_url_outside_the_folder(tmp_path, photos):
    media = tmp_path / "shared-media"
    with Project.init(tmp_path / "p", storage_url=str(media)) as p:
        assert p.media.local_path() == media
        ids = p.add_images(photos[:1])
    assert (media / photos[0].name).exists()
    with Project.open(tmp_path / "p") as p:
        assert p.media.local_path() == media
        assert p.image_location(int(ids[0])).local_path() == media / photos[0].name
    # a relative storage_url in annoloop.yaml is relative to the project folder
    (tmp_path / "p" / "annoloop.yaml").write_text("name: p\nstorage_url: ../shared-media\n")
    with Project.open(tmp_path / "p") as p:
        assert p.media.local_path() == media


def test_projects_created_in_parallel_threads_all_migrate(tmp_path):
    """Alembic's migration context is global to the process: threads that create projects at
    once (a server creating projects for two requests) take turns instead of failing."""
    from concurrent.futures import ThreadPoolExecutor

    from annoloop.store import Project

    def create(i: int) -> int:
        with Project.init(tmp_path / f"p{i}") as p:
            p.add_labels([f"label{i}"])
            return len(p.labels())

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(create, range(6))) == [1] * 6
