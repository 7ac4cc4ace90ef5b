"""The ``Project`` facade: one object for a project's database and storage.

A project is a folder (embedded default: ``annoloop.db``, ``media/``, ``models/``, ``runs/``,
``annoloop.yaml``) or a database URL plus a storage URL. Methods are thin: they open one
transaction and call the helper modules (labels, images, workitems, annotations, models,
jobs, datasets, stats), so every bulk call writes all or nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from annoloop.errors import AlreadyExists, AnnoloopError, InvalidInput, NotFound
from annoloop.formats.dataset import Dataset
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress
from annoloop.store import annotations as _ann
from annoloop.store import datasets as _datasets
from annoloop.store import images as _images
from annoloop.store import jobs as _jobs
from annoloop.store import labels as _labels
from annoloop.store import models as _models
from annoloop.store import stats as _stats
from annoloop.store import workitems as _work
from annoloop.store.datasets import ImportReport
from annoloop.store.engine import (
    current_revision,
    head_revision,
    make_engine,
    normalize_url,
    read_transaction,
    run_write,
    upgrade,
)
from annoloop.store.schema import label_class as label_class_table
from annoloop.store.schema import project as project_table
from annoloop.store.schema import utcnow
from annoloop.store.workitems import WorkItem

PROJECT_FILE = "annoloop.yaml"
DB_FILE = "annoloop.db"
_DB_SCHEMES = ("sqlite", "postgresql", "postgres")


def _is_database_url(value: Any) -> bool:
    if not isinstance(value, str) or "://" not in value:
        return False
    scheme = value.split("://", 1)[0].split("+", 1)[0].lower()
    return scheme in _DB_SCHEMES


def _default_db_url(folder: Path) -> str:
    return f"sqlite:///{folder.resolve() / DB_FILE}"


def _location(value: Any) -> Any:
    from annoloop.storage import Location

    return Location.parse(value)


class Project:
    """An annotation project: labels, images, tasks and work items, annotations, model states,
    predictions and jobs in one database, media and model files in storage.

    Create with :meth:`init`, open with :meth:`open`; use as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        folder: Path | None,
        media: Any,
        models: Any,
        runs: Any,
        name: str,
    ) -> None:
        self.engine = engine
        self.url: str = engine.url.render_as_string(hide_password=True)
        self.folder = folder
        self.media = media
        self.models = models
        self.runs = runs
        self.name = name

    def __repr__(self) -> str:
        return f"Project({self.name!r}, url={self.url!r}, media={str(self.media)!r})"

    # -- lifecycle --------------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        folder: str | os.PathLike[str],
        *,
        database_url: str | None = None,
        storage_url: str | None = None,
        name: str | None = None,
        exist_ok: bool = False,
    ) -> Project:
        """Create a project in ``folder`` (made if missing) and migrate its database.

        Defaults: SQLite ``folder/annoloop.db`` and media in ``folder/media``. A folder or a
        database that already holds a project is refused (AlreadyExists) unless ``exist_ok``,
        which opens it instead.
        """
        import yaml

        root = Path(folder).expanduser()
        if root.exists() and not root.is_dir():
            raise InvalidInput("is a file, not a folder", str(root))
        if (root / PROJECT_FILE).exists() or (root / DB_FILE).exists():
            if exist_ok:
                return cls.open(root, storage_url=storage_url)
            raise AlreadyExists(f"{root} already holds an annoloop project")
        project_name = _labels.check_name(name or root.resolve().name or "annoloop", "name")
        url = normalize_url(database_url) if database_url else None
        media = _location(storage_url) if storage_url else _location(root / "media")
        engine = make_engine(url or _default_db_url(root))
        created_dirs: list[Path] = []
        try:
            for sub in ("models", "runs") if storage_url else ("media", "models", "runs"):
                path = root / sub
                if not path.exists():
                    path.mkdir(parents=True)
                    created_dirs.append(path)
            upgrade(engine)
            with read_transaction(engine) as conn:
                existing = conn.execute(sa.select(project_table.c.name)).first()
            if existing is not None:
                if exist_ok:
                    engine.dispose()
                    return cls.open(url or root, storage_url=storage_url)
                raise AlreadyExists(
                    f"the database {engine.url.render_as_string(hide_password=True)} already "
                    f"holds project {existing.name!r}"
                )
            settings = {
                "models_url": str(_location(root / "models")),
                "runs_url": str(_location(root / "runs")),
            }

            def create(conn: sa.Connection) -> None:
                conn.execute(
                    project_table.insert().values(
                        name=project_name,
                        storage_url=str(media),
                        settings=settings,
                        created_at=utcnow(),
                    )
                )

            run_write(engine, create)
            config: dict[str, Any] = {"name": project_name}
            if url:
                config["database_url"] = url
            if storage_url:
                config["storage_url"] = str(media)  # absolute: the file is read from any cwd
            _location(root / PROJECT_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
        except BaseException:
            engine.dispose()
            for path in created_dirs:
                if path.exists() and not any(path.iterdir()):
                    path.rmdir()
            raise
        return cls(
            engine,
            folder=root.resolve(),
            media=media,
            models=_location(root / "models"),
            runs=_location(root / "runs"),
            name=project_name,
        )

    @classmethod
    def open(cls, where: str | os.PathLike[str], *, storage_url: str | None = None) -> Project:
        """Open a project folder, or a database URL (``sqlite:///...``, ``postgresql://...``).

        Settings come from defaults < ``annoloop.yaml`` < ``ANNOLOOP_*`` environment. A
        database whose schema is behind this annoloop is migrated first.
        """
        from annoloop.config import load_settings

        folder: Path | None = None
        if _is_database_url(where):
            url = normalize_url(str(where))
        else:
            folder = Path(where).expanduser()
            if not folder.is_dir():
                raise NotFound(f"no project folder {folder}")
            if not (folder / PROJECT_FILE).exists() and not (folder / DB_FILE).exists():
                raise NotFound(f"{folder} holds no annoloop project (no {PROJECT_FILE})")
            settings = load_settings(folder)
            url = normalize_url(settings["database_url"].value or _default_db_url(folder))
            storage_url = storage_url or settings["storage_url"].value
            folder = folder.resolve()
            if storage_url and "://" not in storage_url and not os.path.isabs(storage_url):
                storage_url = str(folder / storage_url)  # relative to the project folder
        engine = make_engine(url)
        try:
            cls._migrate_if_behind(engine, url)
            with read_transaction(engine) as conn:
                row = conn.execute(
                    sa.select(project_table).order_by(project_table.c.id).limit(1)
                ).first()
            if row is None:
                raise NotFound(f"the database {url} holds no annoloop project")
        except BaseException:
            engine.dispose()
            raise
        extra = row.settings or {}
        if folder is not None:
            media = _location(storage_url) if storage_url else _location(folder / "media")
            models, runs = _location(folder / "models"), _location(folder / "runs")
        else:
            media_url = storage_url or row.storage_url
            if not media_url:
                engine.dispose()
                raise InvalidInput("the project has no storage URL; pass storage_url", url)
            media = _location(media_url)
            models = _location(extra.get("models_url") or media.parent.join("models"))
            runs = _location(extra.get("runs_url") or media.parent.join("runs"))
        return cls(engine, folder=folder, media=media, models=models, runs=runs, name=row.name)

    @staticmethod
    def _migrate_if_behind(engine: Engine, url: str) -> None:
        current = current_revision(engine)
        if current is None:
            with engine.connect() as conn:
                has_tables = sa.inspect(conn).has_table("project")
            if not has_tables:
                raise NotFound(f"the database {url} holds no annoloop project")
        if current != head_revision():
            upgrade(engine)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, fn: Any, *, references_checked: bool = False) -> Any:
        return run_write(self.engine, fn, references_checked=references_checked)

    def _read(self, fn: Any) -> Any:
        with read_transaction(self.engine) as conn:
            return fn(conn)

    # -- labels -----------------------------------------------------------------------------
    def add_label(
        self,
        name: str,
        *,
        code: str | None = None,
        color: str | None = None,
        parent: str | int | None = None,
    ) -> int:
        """Add a label (an existing one with the same settings is returned); returns its id."""
        return self._write(
            lambda c: _labels.add_label(c, name, code=code, color=color, parent=parent)
        )

    def add_labels(self, names: Iterable[str]) -> np.ndarray:
        """Ids for many names in order; missing labels are created, existing ones reused."""
        names = list(names)
        return self._write(lambda c: _labels.add_labels(c, names))

    def rename_label(self, old: str | int, new: str) -> None:
        """Rename a label; its annotations keep it."""
        self._write(lambda c: _labels.rename_label(c, old, new))

    def retire_label(self, name: str | int) -> None:
        """Retire a label: hidden from new work, existing annotations kept."""
        self._write(lambda c: _labels.retire_label(c, name))

    def labels(self, include_retired: bool = False) -> pd.DataFrame:
        """The label tree: id, name, code, color, parent, parent_id, retired."""
        return self._read(lambda c: _labels.labels_frame(c, include_retired))

    def label_ids(self, names: Any, *, create: bool = False) -> np.ndarray:
        """Vectorised name -> id; NotFound lists unknown names unless ``create``."""
        if create:
            return self._write(lambda c: _labels.label_ids(c, names, create=True))
        return self._read(lambda c: _labels.label_ids(c, names))

    # -- images -----------------------------------------------------------------------------
    def add_images(
        self,
        sources: Any,
        *,
        copy: bool = True,
        meta: dict[str, Any] | list[dict[str, Any]] | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Add image files (paths, Locations, URLs or folders); returns their ids in order.

        Sizes come from the file headers, checksums from the content; with ``copy`` files from
        outside the media root are copied into it. Known locations return their ids. An
        unreadable file raises InvalidInput naming it and nothing is written.
        """
        pairs = _images.expand_sources(sources)
        files = _images.read_files(pairs, self.media, copy, progress)
        n = len(files)
        metas: list[Any] | None = None
        if isinstance(meta, dict):
            metas = [meta] * n
        elif meta is not None:
            metas = list(meta)
            if len(metas) != n:
                raise InvalidInput(f"meta has {len(metas)} entries for {n} images", "add_images")
        written = _images.place_copies(files, self.media) if copy else []
        locations = [_images.stored_location(f.location, self.media) for f in files]
        try:
            return self._write(
                lambda c: _images.add_image_records(
                    c,
                    locations,
                    [f.width for f in files],
                    [f.height for f in files],
                    checksums=[f.checksum for f in files],
                    metas=metas,
                )
            )
        except BaseException:
            _images.remove_quietly(written)
            raise

    def add_image_records(
        self,
        locations: Any,
        widths: Any,
        heights: Any,
        *,
        checksums: Any = None,
        metas: Any = None,
        video_locations: Any = None,
        frames: Any = None,
    ) -> np.ndarray:
        """Bulk image records without any file I/O; locations inside the media root are stored
        relative to it. Known locations return their ids."""
        stored = [
            loc if isinstance(loc, str) and "://" not in loc and not os.path.isabs(loc)
            else _images.stored_location(loc, self.media)
            for loc in locations
        ]  # fmt: skip
        return self._write(
            lambda c: _images.add_image_records(
                c,
                stored,
                widths,
                heights,
                checksums=checksums,
                metas=metas,
                video_locations=video_locations,
                frames=frames,
            )
        )

    def images(self, ids: Any = None) -> pd.DataFrame:
        """Images: id, location, width, height, checksum, meta, video_location, frame,
        created_at."""
        return self._read(lambda c: _images.images_frame(c, ids))

    def images_with_meta(
        self,
        key: str,
        *,
        after: int = 0,
        limit: int | None = None,
        match: Any = None,
    ) -> list[tuple[int, Any]]:
        """``(image id, meta[key])`` of the images whose meta holds ``key`` (and whose value
        passes ``match``, a predicate, when given), in id order from ids above ``after``, at
        most ``limit``. Reads only candidate rows, in pages (see
        :func:`annoloop.store.images.images_with_meta_key`)."""

        def read(conn: sa.Connection) -> list[tuple[int, Any]]:
            out: list[tuple[int, Any]] = []
            for image_id, value in _images.images_with_meta_key(conn, key, after=after):
                if match is None or match(value):
                    out.append((image_id, value))
                    if limit is not None and len(out) >= limit:
                        break
            return out

        return self._read(read)

    def image_location(self, image_id: int) -> Any:
        """The storage Location of an image (resolved against the media root)."""
        loc, _, _ = self._read(lambda c: _images.image_row(c, image_id))
        return _images.resolve_location(loc, self.media)

    # -- tasks and work items ---------------------------------------------------------------
    def add_task(
        self,
        name: str,
        *,
        instructions: str = "",
        kinds: Any = ("bbox",),
        labels: Any = None,
        show_proposals: bool = True,
    ) -> int:
        """Create an annotation task (allowed shape kinds, allowed labels by name or id)."""

        def create(conn: sa.Connection) -> int:
            label_list = None
            if labels is not None:
                values = [labels] if isinstance(labels, (str, int)) else list(labels)
                label_list = [_labels.resolve_label(conn, v) for v in values]
            return _work.add_task(
                conn,
                name,
                instructions=instructions,
                kinds=kinds,
                labels=label_list,
                show_proposals=show_proposals,
            )

        return self._write(create)

    def tasks(self) -> pd.DataFrame:
        """Tasks: id, name, instructions, kinds, labels, show_proposals, created_at."""
        return self._read(_work.tasks_frame)

    def task_id(self, name_or_id: str | int) -> int:
        """A task's id from its name or id."""
        return self._read(lambda c: _work.task_id(c, name_or_id))

    def request_annotations(
        self,
        image_ids: Any,
        task_ids: Any,
        *,
        priority: Any = None,
        iteration: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> int:
        """One open work item per (image, task, iteration), existing ones skipped; returns the
        number created."""
        return self._write(
            lambda c: _work.request_annotations(
                c, image_ids, task_ids, priority=priority, iteration=iteration, meta=meta
            )
        )

    def next_item(
        self, task: str | int, user: str, *, lock_seconds: float = 600
    ) -> WorkItem | None:
        """Atomically lock the next item of ``task`` for ``user`` (or return the one the user
        holds); None when nothing is left."""

        def claim(conn: sa.Connection) -> WorkItem | None:
            return _work.next_item(conn, _work.task_id(conn, task), user, lock_seconds=lock_seconds)

        return self._write(claim)

    def submit(
        self,
        item_id: int,
        user: str,
        annotations: Annotations | None,
        *,
        state: str = "done",
        time_spent: float | None = None,
    ) -> np.ndarray:
        """Write the item's annotations and close it (``done`` or ``junk``) in one transaction.

        Annotation rows must be on the item's image (or give a negative image id); kinds and
        labels must be allowed by the task. ``time_spent`` (seconds for the whole item) is
        recorded on the item and split evenly over its annotations. Conflict when ``user``
        does not hold the item.
        """
        final = _work.check_final_state(state)
        if time_spent is not None and (not np.isfinite(time_spent) or time_spent < 0):
            raise InvalidInput(f"time_spent must be a non-negative number, got {time_spent}")

        def write(conn: sa.Connection) -> np.ndarray:
            item = _work.get_item(conn, item_id, for_update=True)
            _work.check_holder(item, user)
            ids = np.zeros(0, np.int64)
            if annotations is not None and len(annotations):
                ann = _submission(conn, item, annotations)
                per_row = None if time_spent is None else float(time_spent) / len(ann)
                ids = _ann.insert_annotations(
                    conn,
                    ann,
                    task_id=item.task_id,
                    work_item_id=item.id,
                    author=user,
                    time_spent=per_row,
                )
            meta = {"time_spent": float(time_spent)} if time_spent is not None else None
            _work.finish_item(conn, item, final, meta)
            return ids

        return self._write(write)

    def release_item(self, item_id: int, user: str) -> None:
        """Give back a locked item (it becomes open again)."""
        self._write(lambda c: _work.release_item(c, item_id, user))

    def set_priorities(self, item_ids: Any, priorities: Any) -> None:
        """Set the priority of many work items."""
        self._write(lambda c: _work.set_priorities(c, item_ids, priorities))

    def work_items(self, task: str | int | None = None, state: Any = None) -> pd.DataFrame:
        """Work items (optionally of one task and in some states)."""

        def read(conn: sa.Connection) -> pd.DataFrame:
            tid = None if task is None else _work.task_id(conn, task)
            return _work.work_items_frame(conn, tid, state)

        return self._read(read)

    # -- annotations ------------------------------------------------------------------------
    def add_annotations(
        self,
        ann: Annotations,
        *,
        task: str | int | None = None,
        source: str = "human",
        author: str | None = None,
        time_spent: float | None = None,
        validate: bool = True,
    ) -> np.ndarray:
        """Store ``ann`` (image ids, label ids or -1) in one transaction; returns the new ids.

        ``ann.data`` may carry per-row ``source``, ``author``, ``time_spent``, ``work_item``.
        Unknown images or labels and (with ``validate``) geometry outside the image raise
        InvalidInput naming the row; nothing is written then.
        """

        def write(conn: sa.Connection) -> np.ndarray:
            tid = None if task is None else _work.task_id(conn, task)
            return _ann.insert_annotations(
                conn,
                ann,
                task_id=tid,
                source=source,
                author=author,
                time_spent=time_spent,
                validate=validate,
            )

        # insert_annotations looks up every image, label and work item id it writes
        return self._write(write, references_checked=True)

    def annotations(
        self,
        *,
        task: Any = None,
        image: Any = None,
        label: Any = None,
        kind: Any = None,
        source: Any = None,
    ) -> pd.DataFrame:
        """Annotations as a DataFrame: id, image_id, task_id, kind (name), label_id, label
        (name), x, y, w, h, confidence, shape (parsed), source, author, time_spent,
        created_at, work_item_id. Each filter takes one value or a list (labels by name or
        id, tasks by name or id)."""
        filters = {"task": task, "image": image, "label": label, "kind": kind, "source": source}
        return self._read(lambda c: _ann.annotations_frame(c, **filters))

    def annotation_arrays(
        self,
        *,
        task: Any = None,
        image: Any = None,
        label: Any = None,
        kind: Any = None,
        source: Any = None,
    ) -> Annotations:
        """The same selection as :meth:`annotations` as an ``Annotations`` struct (label ids in
        ``label``; ``data``: id, task, source, author)."""
        filters = {"task": task, "image": image, "label": label, "kind": kind, "source": source}
        return self._read(lambda c: _ann.annotation_arrays(c, **filters))

    def delete_annotations(self, ids: Any) -> int:
        """Delete annotations by id; returns how many were deleted."""
        return self._write(lambda c: _ann.delete_annotations(c, ids))

    # -- datasets ---------------------------------------------------------------------------
    def import_dataset(
        self,
        dataset: Dataset,
        *,
        images_root: Any = None,
        task: str | int | None = None,
        source: str = "human",
        add_missing_images: bool = True,
        copy_images: bool = False,
    ) -> ImportReport:
        """Add a format's ``Dataset`` in ONE transaction (any error: nothing written).

        Images are matched by location (``images_root``/file name, default the media root),
        then by stored location, then by a unique base name; missing ones are created from the
        records (sizes checked against file headers where the files exist), and copied into
        media with ``copy_images``. Label names map to ids, created when new.
        """
        plan = self._read(
            lambda c: _datasets.plan_images(
                c,
                dataset,
                media=self.media,
                images_root=images_root,
                add_missing_images=add_missing_images,
                copy_images=copy_images,
            )
        )
        written: list[Any] = []
        try:
            for source_loc, rel in plan.copies:
                target = self.media.join(rel)
                if not target.exists():
                    target.write_bytes(source_loc.read_bytes())
                    written.append(target)
            return self._write(lambda c: _import(c, dataset, plan, task, source))
        except BaseException:
            _images.remove_quietly(written)
            raise

    def export_dataset(self, *, task: Any = None, source: Any = None, kind: Any = None) -> Dataset:
        """The selected annotations as a ``Dataset`` (``file_name`` = stored image location).

        Without filters every image is listed; with a task, the task's images too."""

        def read(conn: sa.Connection) -> Dataset:
            ann = _ann.annotation_arrays(conn, task=task, source=source, kind=kind)
            frame = _images.images_frame(conn)
            extra = None
            if task is None and source is None and kind is None:
                extra = frame["id"].to_numpy(np.int64)
            elif task is not None:
                tids = _work.task_ids(conn, task)
                items = _work.work_items_frame(conn)
                extra = items.loc[items["task_id"].isin(tids), "image_id"].to_numpy(np.int64)
            return _datasets.dataset_from_store(ann, frame, _labels.label_name_map(conn), extra)

        return self._read(read)

    # -- models and predictions -------------------------------------------------------------
    def add_model_state(
        self,
        model: str,
        location: Any,
        *,
        label_map: Any,
        options: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        parent: int | None = None,
    ) -> int:
        """Record a new version of ``model`` stored at ``location``; returns its id."""
        return self._write(
            lambda c: _models.add_model_state(
                c, model, location, label_map=label_map, options=options, metrics=metrics,
                parent=parent,
            )
        )  # fmt: skip

    def model_states(self, model: str | None = None) -> pd.DataFrame:
        """Model states (of one model when given), oldest first."""
        return self._read(lambda c: _models.model_states_frame(c, model))

    def set_current_state(self, state_id: int) -> None:
        """Make a state the current one of its model."""
        self._write(lambda c: _models.set_current_state(c, state_id))

    def add_predictions(
        self,
        ann: Annotations,
        model_state_id: int,
        *,
        scores: Any = None,
        priorities: Any = None,
    ) -> np.ndarray:
        """Store a model state's predictions (image ids, label ids); returns their ids."""
        return self._write(
            lambda c: _models.insert_predictions(
                c, ann, model_state_id, scores=scores, priorities=priorities
            )
        )

    def predictions(self, *, model_state_id: Any = None, image: Any = None) -> pd.DataFrame:
        """Predictions (of some model states / images) with per-class ``scores`` arrays."""
        return self._read(
            lambda c: _models.predictions_frame(c, model_state_id=model_state_id, image=image)
        )

    # -- jobs -------------------------------------------------------------------------------
    def add_job(self, kind: str, name: str, spec: Any = None) -> int:
        """A queued job; returns its id."""
        return self._write(lambda c: _jobs.add_job(c, kind, name, spec))

    def update_job(self, job_id: int, **fields: Any) -> None:
        """Set job fields (state, progress_done, progress_total, message, result, error ...)."""
        self._write(lambda c: _jobs.update_job(c, job_id, **fields))

    def append_job_log(self, job_id: int, text: str) -> None:
        """Append text to a job's log."""
        self._write(lambda c: _jobs.append_job_log(c, job_id, text))

    def job(self, job_id: int) -> dict[str, Any]:
        """Every field of one job."""
        return self._read(lambda c: _jobs.get_job(c, job_id))

    def jobs(self, state: Any = None) -> pd.DataFrame:
        """Jobs (without their logs), optionally in some states."""
        return self._read(lambda c: _jobs.jobs_frame(c, state))

    # -- statistics -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counts: images, labels, annotations per label / kind / source, work items per task
        and state."""
        return self._read(_stats.project_stats)


def _submission(conn: sa.Connection, item: WorkItem, ann: Annotations) -> Annotations:
    """``ann`` placed on the item's image and checked against the task's kinds and labels."""
    images = ann.image
    wrong = np.flatnonzero((images >= 0) & (images != item.image_id))
    if wrong.size:
        i = int(wrong[0])
        raise InvalidInput(
            f"row {i} is on image {int(images[i])}, but work item {item.id} is image "
            f"{item.image_id}",
            "submit",
        )
    row = _work.task_row(conn, item.task_id)
    allowed = np.array([int(Kind.parse(k)) for k in row.kinds], dtype=np.int64)
    bad = np.flatnonzero(~np.isin(ann.kind.astype(np.int64), allowed))
    if bad.size:
        i = int(bad[0])
        raise InvalidInput(
            f"row {i}: shape kind {Kind(int(ann.kind[i])).label} is not allowed in task "
            f"{row.name!r} (allowed: {', '.join(row.kinds)})",
            "submit",
        )
    labels = ann.label
    used = np.unique(labels[labels >= 0])
    if used.size:
        # only the used ids: a submit is on the annotators' hot path, the label tree is not
        found = conn.execute(
            sa.select(label_class_table.c.id).where(
                label_class_table.c.id.in_([int(v) for v in used]),
                label_class_table.c.retired.is_(False),
            )
        )
        active = np.fromiter((r[0] for r in found), dtype=np.int64)
        if row.labels is not None:
            active = np.intersect1d(active, np.asarray(row.labels, dtype=np.int64))
        bad = np.flatnonzero((labels >= 0) & ~np.isin(labels, active))
        if bad.size:
            i = int(bad[0])
            raise InvalidInput(
                f"row {i}: label {int(labels[i])} is retired, unknown or not allowed in task "
                f"{row.name!r}",
                "submit",
            )
    out = ann[np.arange(len(ann))]
    out.image = np.full(len(ann), item.image_id, dtype=np.int64)
    return out


def _import(
    conn: sa.Connection,
    dataset: Dataset,
    plan: _datasets.ImagePlan,
    task: str | int | None,
    source: str,
) -> ImportReport:
    """The write half of :meth:`Project.import_dataset` (inside its transaction)."""
    tid = None if task is None else _work.task_id(conn, task)

    def count(table: str) -> int:
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar() or 0)

    labels_before, images_before = count("label_class"), count("image")
    label_ids = _labels.label_ids(conn, dataset.labels, create=True)
    # Images planned as new may have been added meanwhile by someone else: they then match.
    known = _images.existing_ids(conn, plan.locations)
    new = [i for i in plan.new if plan.locations[i] not in known]
    if new:
        _images.add_image_records(
            conn,
            [plan.locations[i] for i in new],
            plan.sizes[new, 0],
            plan.sizes[new, 1],
            metas=[dataset.images[i].meta or None for i in new],
        )
    known = _images.existing_ids(conn, plan.locations)
    image_ids = np.array([known[loc] for loc in plan.locations], dtype=np.int64)
    _check_matched_sizes(conn, dataset, plan, image_ids, set(new))
    ann = _datasets.remap_annotations(dataset, image_ids, label_ids)
    try:
        ids = _ann.insert_annotations(conn, ann, task_id=tid, source=source)
    except InvalidInput as exc:
        raise _with_image_name(exc, dataset, ann) from None
    images_added = count("image") - images_before
    return ImportReport(
        images_added=images_added,
        images_matched=len(set(image_ids.tolist())) - images_added,
        annotations_added=len(ids),
        labels_added=count("label_class") - labels_before,
    )


def _check_matched_sizes(
    conn: sa.Connection,
    dataset: Dataset,
    plan: _datasets.ImagePlan,
    image_ids: np.ndarray,
    new: set[int],
) -> None:
    """A matched image whose size differs from the dataset's is probably the wrong image."""
    if not len(image_ids):
        return
    known, widths, heights = _ann.image_sizes(conn, image_ids)
    pos = np.searchsorted(known, image_ids)
    w, h = widths[pos], heights[pos]
    given = plan.sizes
    bad = (given[:, 0] > 0) & ((given[:, 0] != w) | (given[:, 1] != h))
    for i in np.flatnonzero(bad).tolist():
        if i in new:
            continue
        rec = dataset.images[i]
        raise InvalidInput(
            f"matched project image {int(image_ids[i])} is {int(w[i])}x{int(h[i])} but the "
            f"dataset says {given[i, 0]}x{given[i, 1]} (width x height)",
            f"dataset image {i} ({rec.file_name!r})",
        )


def _with_image_name(exc: InvalidInput, dataset: Dataset, ann: Annotations) -> AnnoloopError:
    """Add the dataset image's file name to a row error from validation."""
    row = getattr(exc, "row", None)
    if row is None or not (0 <= row < len(dataset.annotations)):
        return exc
    rec = dataset.images[int(dataset.annotations.image[row])]
    return InvalidInput(exc.reason, f"annotation {row} on {rec.file_name!r}")
