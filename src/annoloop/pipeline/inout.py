"""What flows into a script: datasources and the annotation tasks before it.

``self.inp.datasources`` are :class:`Datasource` objects (``path``, ``location``,
``image_ids()``, ``files()``, ``get_fs()``). The annotations of the tasks before the script
come as LOST's frame (``to_df()``, ``to_vec()``), as objects (``img_annos``, ``twod_annos``,
``bbox_annos`` ...) or as one ``Annotations`` struct (``annotations()``). Reads are cached for
the script run: the inputs do not change while a script runs (the tasks before it finished).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annoloop.errors import InvalidInput
from annoloop.pipeline.annos import ImageAnno, TwoDAnno, images_from_frame, twod_from_frame
from annoloop.pipeline.outputs import Output

if TYPE_CHECKING:
    from annoloop.geometry.annotations import Annotations
    from annoloop.pipeline.messages import DatasourceRef, TaskRef
    from annoloop.pipeline.script import ScriptContext

__all__ = ["Datasource", "Input", "InputTask", "Output"]


class Datasource:
    """A datasource element as seen by a script: a storage location or project images."""

    def __init__(self, ctx: ScriptContext, ref: DatasourceRef) -> None:
        self._ctx = ctx
        self.ref = ref
        self.element = ref.element
        self._ids: np.ndarray | None = None

    @property
    def location(self) -> Any:
        """The Location of the datasource (the project's media root for project images)."""
        from annoloop.storage import Location

        if self.ref.location is None:
            return self._ctx.project.media
        return Location.parse(self.ref.location)

    @property
    def path(self) -> str:
        """LOST's ``ds.path``: the local folder, or the URL for remote storage."""
        loc = self.location
        local = loc.local_path()
        return str(local) if local is not None else str(loc)

    def get_fs(self) -> Any:
        """The fsspec filesystem of the location (LOST's ``ds.get_fs()``)."""
        return self.location.fs

    def files(self) -> list[Any]:
        """Image files under the location (hidden files left out), as Locations."""
        from annoloop.storage import list_images

        if self.ref.location is None:
            raise InvalidInput(
                "this datasource is a set of project images, not a folder: use image_ids()",
                f"datasource {self.element!r}",
            )
        return list_images(self.location, recursive=self.ref.recursive)

    def image_ids(self, *, add: bool = True) -> np.ndarray:
        """Project image ids of the datasource. For a location, its image files; files not in
        the project yet are added (without copying) unless ``add`` is False."""
        if self._ids is not None:
            return self._ids
        project = self._ctx.project
        images = self.ref.images
        if self.ref.location is None and (images is None or images == "all"):
            ids = all_image_ids(project)
        elif self.ref.location is None:
            wanted = np.asarray(images, dtype=np.int64)
            known = project.images(wanted)["id"].to_numpy(np.int64)
            missing = np.setdiff1d(wanted, known)
            if missing.size:
                raise InvalidInput(
                    f"no image(s) with id {missing[:20].tolist()} in the project",
                    f"datasource {self.element!r} field images",
                )
            ids = wanted
        else:
            ids = resolve_images(project, self.files(), add=add)
        self._ids = ids
        return ids

    def images(self) -> pd.DataFrame:
        """The project's image records of the datasource (id, location, width, height ...)."""
        return self._ctx.project.images(self.image_ids())

    def __repr__(self) -> str:
        return f"<Datasource {self.element!r} {self.ref.location or self.ref.images or 'all'}>"


def all_image_ids(project: Any) -> np.ndarray:
    """Every image id of the project, sorted (one lean query: no metadata parsing)."""
    from annoloop.store import bulk
    from annoloop.store.engine import read_transaction

    with read_transaction(project.engine) as conn:
        rows = bulk.fetch_rows(conn, "SELECT id FROM image ORDER BY id")
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def resolve_images(project: Any, sources: list[Any], *, add: bool = True) -> np.ndarray:
    """Project image ids of locations / paths, in order; unknown ones are added (no copy)."""
    from annoloop.store.engine import read_transaction
    from annoloop.store.images import existing_ids, stored_location

    if not sources:
        return np.zeros(0, np.int64)
    stored = [stored_location(s, project.media) for s in sources]
    with read_transaction(project.engine) as conn:
        known = existing_ids(conn, stored)
    missing = [s for s, key in zip(sources, stored, strict=True) if key not in known]
    if missing:
        if not add:
            raise InvalidInput(f"{len(missing)} image(s) are not in the project", str(missing[0]))
        new = project.add_images(list(dict.fromkeys(missing)), copy=False)
        keys = [stored_location(s, project.media) for s in dict.fromkeys(missing)]
        known.update(dict(zip(keys, new.tolist(), strict=True)))
    return np.array([known[k] for k in stored], dtype=np.int64)


class InputTask:
    """An annotation task before the script (LOST's ``anno_task``)."""

    def __init__(self, ctx: ScriptContext, ref: TaskRef) -> None:
        self._ctx = ctx
        self.element = ref.element
        self.task_id = ref.task_id
        self.name = ref.name
        self.kinds = list(ref.kinds)
        self.iteration = ref.iteration

    @property
    def idx(self) -> int:
        return self.task_id

    def work_items(self, state: Any = None) -> pd.DataFrame:
        """The task's work items (all iterations)."""
        return self._ctx.project.work_items(self.task_id, state)

    @property
    def progress(self) -> float:
        """Finished share of the current iteration's work items, in percent."""
        items = self.work_items()
        items = items[items["iteration"] == self.iteration]
        if items.empty:
            return 100.0
        return 100.0 * float(items["state"].isin(["done", "junk"]).mean())

    def __repr__(self) -> str:
        return f"<InputTask {self.element!r} task={self.task_id} {self.name!r}>"


class Input:
    """The inputs of a running script (see the module docstring)."""

    def __init__(self, ctx: ScriptContext) -> None:
        self._ctx = ctx
        self._frame: pd.DataFrame | None = None
        self._data: Any = None

    # -- elements before the script -----------------------------------------------------
    @property
    def datasources(self) -> list[Datasource]:
        return [Datasource(self._ctx, ref) for ref in self._ctx.request.datasources]

    raw_files = datasources  # LOST 1.x name

    @property
    def anno_tasks(self) -> list[InputTask]:
        return [InputTask(self._ctx, ref) for ref in self._ctx.request.input_tasks]

    def _task_ids(self) -> list[int]:
        return [t.task_id for t in self._ctx.request.input_tasks]

    # -- annotations --------------------------------------------------------------------
    def task_data(self) -> Any:
        """The raw columnar read of the tasks' annotations and work items (cached)."""
        if self._data is None:
            from annoloop.pipeline.frames import read_task_data
            from annoloop.store.engine import read_transaction

            project = self._ctx.project
            with read_transaction(project.engine) as conn:
                self._data = read_task_data(conn, self._task_ids(), project.media)
        return self._data

    def to_df(self) -> pd.DataFrame:
        """LOST's frame of the annotations of the tasks before this script (all iterations;
        columns in :mod:`annoloop.pipeline.frames`). A copy: change it freely."""
        if self._frame is None:
            from annoloop.pipeline.frames import lost_frame

            self._frame = lost_frame(self.task_data())
        return self._frame.copy(deep=False)

    def to_vec(self, columns: str | list[str] = "all") -> list[Any]:
        """Columns of :meth:`to_df` as lists (one column: a flat list)."""
        df = self.to_df()
        if columns == "all":
            return df.values.tolist()
        if isinstance(columns, str):
            return df[columns].tolist()
        return df[list(columns)].values.tolist()

    def annotations(self, *, iteration: int | None = None) -> Annotations:
        """The tasks' annotations as one ``Annotations`` struct (label ids in ``label``;
        ``data``: id, task, work_item, source, author); optionally of one iteration."""
        from annoloop.geometry.annotations import Annotations

        data = self.task_data()
        ann = data.ann
        keep = np.ones(len(ann["id"]), dtype=bool)
        if iteration is not None:
            item_ids = data.items["id"].astype(np.int64)
            wi = ann["work_item_id"].astype(np.int64)
            pos = np.minimum(np.searchsorted(item_ids, wi), max(len(item_ids) - 1, 0))
            keep = np.zeros(len(wi), dtype=bool)
            if len(item_ids):
                iters = data.items["iteration"].astype(np.int64)
                keep = (item_ids[pos] == wi) & (iters[pos] == int(iteration))
        box = np.stack([ann[c] for c in ("x", "y", "w", "h")], axis=1).reshape(-1, 4)
        out = Annotations(
            image=ann["image_id"].astype(np.int64),
            kind=ann["kind"].astype(np.int8),
            label=ann["label_id"].astype(np.int64),
            box=box,
            confidence=ann["confidence"].astype(np.float32),
            shape=data.shapes(),
            data={
                "id": ann["id"].astype(np.int64),
                "task": ann["task_id"].astype(np.int64),
                "work_item": ann["work_item_id"].astype(np.int64),
                "source": ann["source"].astype(object),
                "author": ann["author"].astype(object),
            },
        )
        return out[keep]

    @property
    def img_annos(self) -> Iterator[ImageAnno]:
        """One ImageAnno per work item of the tasks before this script."""
        return images_from_frame(self.to_df())

    @property
    def twod_annos(self) -> Iterator[TwoDAnno]:
        return twod_from_frame(self.to_df())

    def _twod_of(self, kind: str) -> Iterator[TwoDAnno]:
        df = self.to_df()
        return twod_from_frame(df[df["anno_dtype"] == kind])

    @property
    def bbox_annos(self) -> Iterator[TwoDAnno]:
        return self._twod_of("bbox")

    @property
    def point_annos(self) -> Iterator[TwoDAnno]:
        return self._twod_of("point")

    @property
    def line_annos(self) -> Iterator[TwoDAnno]:
        return self._twod_of("line")

    @property
    def polygon_annos(self) -> Iterator[TwoDAnno]:
        return self._twod_of("polygon")
