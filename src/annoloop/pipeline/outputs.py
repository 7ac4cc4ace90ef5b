"""What flows out of a script, buffered while ``main`` runs and written in one transaction.

``request_annos`` asks for human annotations of an image in every annotation task connected to
the script (one work item per task, keyed by (image, task, iteration), so a request made twice
creates one item), optionally with proposals (``annos`` + ``anno_types`` + ``anno_labels``,
``img_labels``). Its bulk form takes image ids (an array) or a DataFrame. ``add_annos`` /
``add_annotations`` store annotations made by the script itself (source
``model:pipe<ID>-<ELEMENT>@job<JOB>``); ``add_visual_output`` and ``add_data_export`` hand
files or HTML to the visual and export elements after the script.

Coordinates are LOST's and annoloop's: relative to the image size, boxes as centre x, centre y,
width, height. Proposals are kept per work item in ``pipe_proposal``; a task only gets the
proposals of the shape kinds it allows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

if TYPE_CHECKING:
    from annoloop.pipeline.script import ScriptContext

_GEOMETRY_KINDS = {
    "point": Kind.POINT,
    "bbox": Kind.BBOX,
    "line": Kind.LINE,
    "polygon": Kind.POLYGON,
}


def _where(ctx: ScriptContext, call: str) -> str:
    return f"{call} in element {ctx.request.element!r}"


class _Refs:
    """Image references (ids, or paths resolved in bulk at the end), in call order."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.pending: list[int] = []
        self.paths: dict[int, Any] = {}
        self.count = 0

    def add_one(self, image: Any, where: str) -> int:
        from annoloop.pipeline.annos import ImageAnno

        index = self.count
        if isinstance(image, ImageAnno):
            image = image.image_id
        if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
            if int(image) <= 0:
                raise InvalidInput(f"image id must be positive, got {image}", where)
            self.pending.append(int(image))
        elif isinstance(image, (str, os.PathLike)) or type(image).__name__ == "Location":
            self.pending.append(-1)
            self.paths[index] = image
        else:
            raise InvalidInput(
                "an image is an id, a path, a Location or an ImageAnno, not "
                f"{type(image).__name__}",
                where,
            )
        self.count += 1
        return index

    def _flush(self) -> None:
        if self.pending:
            self.chunks.append(np.asarray(self.pending, dtype=np.int64))
            self.pending = []

    def add_ids(self, ids: np.ndarray) -> np.ndarray:
        self._flush()
        self.chunks.append(ids)
        start = self.count
        self.count += len(ids)
        return np.arange(start, self.count, dtype=np.int64)

    def add_paths(self, paths: list[Any]) -> np.ndarray:
        self._flush()
        start = self.count
        self.chunks.append(np.full(len(paths), -1, dtype=np.int64))
        for i, path in enumerate(paths):
            self.paths[start + i] = path
        self.count += len(paths)
        return np.arange(start, self.count, dtype=np.int64)

    def resolve(self, project: Any) -> np.ndarray:
        """Image id per reference (paths looked up, unknown ones added to the project)."""
        from annoloop.pipeline.inout import resolve_images

        self._flush()
        ids = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int64)
        if self.paths:
            rows = np.fromiter(self.paths.keys(), dtype=np.int64, count=len(self.paths))
            ids = ids.copy()
            ids[rows] = resolve_images(project, list(self.paths.values()))
        return ids


@dataclass
class ResolvedOutputs:
    """A script's outputs with every image resolved to its id (ready to write)."""

    request_images: np.ndarray  # image id per request (may repeat)
    request_priority: np.ndarray
    request_meta: dict[int, dict[str, Any]]  # request row -> meta for its work items
    proposals: Annotations  # image = image id; data["request"] = request row
    annotations: Annotations  # image = image id
    visuals: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_requests(self) -> int:
        return len(self.request_images)


class Output:
    """The outputs of a running script (see the module docstring)."""

    def __init__(self, ctx: ScriptContext) -> None:
        self._ctx = ctx
        self._refs = _Refs()
        self._req_refs: list[np.ndarray] = []
        self._req_prio: list[np.ndarray] = []
        self._req_single: list[tuple[int, float]] = []
        self._req_meta: dict[int, dict[str, Any]] = {}  # ref index -> meta
        self._proposals: list[Annotations] = []  # image = ref index
        self._annotations: list[Annotations] = []  # image = ref index
        self._visuals: list[dict[str, Any]] = []
        self._exports: list[dict[str, Any]] = []
        self._warned: set[str] = set()

    # -- the elements after the script --------------------------------------------------
    @property
    def anno_tasks(self) -> list[Any]:
        """The annotation tasks this script's requests go to."""
        from annoloop.pipeline.inout import InputTask

        return [InputTask(self._ctx, ref) for ref in self._ctx.request.output_tasks]

    @property
    def n_requests(self) -> int:
        """How many image requests were made so far (before de-duplication)."""
        return sum(len(r) for r in self._req_refs) + len(self._req_single)

    # -- labels and shapes --------------------------------------------------------------
    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._ctx.logger.warning(message)

    def _label_id(self, label: Any, where: str) -> int:
        if label is None:
            return -1
        if isinstance(label, (list, tuple, np.ndarray)):
            values = [v for v in label if v is not None]
            if not values:
                return -1
            if len(values) > 1:
                self._warn_once(
                    "multilabel",
                    f"{where}: an annotation holds one label in annoloop; kept the first of "
                    f"{list(values)}",
                )
            label = values[0]
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            return int(label)
        if isinstance(label, str):
            labels = self._ctx.label_map()
            if label not in labels:
                shown = ", ".join(sorted(labels)[:20]) or "none"
                raise InvalidInput(f"unknown label {label!r} (labels: {shown})", where)
            return int(labels[label])
        raise InvalidInput(f"a label is a name or an id, not {type(label).__name__}", where)

    def _shapes(
        self,
        ref: int,
        annos: Any,
        anno_types: Any,
        anno_labels: Any,
        confidences: Any,
        where: str,
    ) -> Annotations | None:
        annos = list(annos or [])
        types = list(anno_types or [])
        if len(annos) != len(types):
            raise InvalidInput(
                f"annos has {len(annos)} entries but anno_types has {len(types)}", where
            )
        if not annos:
            return None
        labels = list(anno_labels) if anno_labels is not None and len(anno_labels) else []
        if labels and len(labels) != len(annos):
            raise InvalidInput(
                f"anno_labels has {len(labels)} entries for {len(annos)} annos", where
            )
        confs = list(confidences) if confidences is not None else []
        if confs and len(confs) != len(annos):
            raise InvalidInput(
                f"confidences has {len(confs)} entries for {len(annos)} annos", where
            )
        kinds, boxes, shapes, label_ids = [], [], [], []
        for i, (data, kind_name) in enumerate(zip(annos, types, strict=True)):
            at = f"{where}: annos[{i}]"
            kind, box, shape = lost_shape(data, kind_name, at)
            kinds.append(int(kind))
            boxes.append(box)
            shapes.append(shape)
            label_ids.append(self._label_id(labels[i], at) if labels else -1)
        n = len(kinds)
        return Annotations(
            image=np.full(n, ref, np.int64),
            kind=np.asarray(kinds, np.int8),
            label=np.asarray(label_ids, np.int64),
            box=np.asarray(boxes, np.float64).reshape(n, 4),
            confidence=np.asarray(confs, np.float32) if confs else np.full(n, np.nan, np.float32),
            shape=shapes,
        )

    def _image_labels(self, ref: int, img_labels: Any, where: str) -> Annotations | None:
        if img_labels is None:
            return None
        values = (
            [img_labels] if isinstance(img_labels, (str, int, np.integer)) else list(img_labels)
        )
        ids = [self._label_id(v, f"{where}: img_labels[{i}]") for i, v in enumerate(values)]
        ids = [i for i in ids if i >= 0]
        if not ids:
            return None
        n = len(ids)
        return Annotations.from_boxes(
            image=np.full(n, ref), box=np.full((n, 4), np.nan), label=ids, kind=Kind.LABEL
        )

    # -- requests -----------------------------------------------------------------------
    def request_annos(
        self,
        img: Any,
        img_labels: Any = None,
        img_sim_class: Any = None,
        annos: Any = (),
        anno_types: Any = (),
        anno_labels: Any = (),
        anno_sim_classes: Any = (),
        frame_n: int | None = None,
        video_path: str | None = None,
        fs: Any = None,
        img_meta: dict[str, Any] | None = None,
        anno_meta: Any = None,
        img_comment: str | None = None,
        *,
        meta: dict[str, Any] | None = None,
        priority: Any = None,
        confidences: Any = None,
        proposals: Annotations | None = None,
    ) -> None:
        """Request human annotations of ``img`` in every connected annotation task.

        ``img`` is an image id, a path or Location (added to the project if new) or an
        ImageAnno. ``annos`` / ``anno_types`` / ``anno_labels`` (names or ids) are proposals
        (bbox ``[x, y, w, h]`` centre-relative, point ``[x, y]``, line / polygon
        ``[[x, y], ...]``); ``img_labels`` proposes image labels. ``frame_n`` and
        ``video_path`` mark a video frame; ``meta`` / ``img_meta`` / ``img_comment`` are kept
        on the work items. LOST's ``img_sim_class``, ``anno_sim_classes`` and ``fs`` are
        accepted and ignored.

        Bulk form: ``img`` is an array of image ids (with ``priority`` one value or one per
        image, and ``proposals`` an Annotations struct whose ``image`` holds image ids) or a
        DataFrame (see :meth:`request_frame`).
        """
        where = _where(self._ctx, "request_annos")
        if isinstance(img, pd.DataFrame):
            self.request_frame(img, priority=priority)
            return
        if isinstance(img, (np.ndarray, pd.Series, pd.Index, range)) or (
            isinstance(img, (list, tuple)) and img and not isinstance(img[0], (str, os.PathLike))
        ):
            self.request_images(img, priority=priority, proposals=proposals, meta=meta)
            return
        if isinstance(img, (list, tuple)):
            refs = self._refs.add_paths(list(img))
            self._req_refs.append(refs)
            self._req_prio.append(_priorities(priority, len(refs), where))
            return
        if (video_path is None) != (frame_n is None):
            raise InvalidInput("frame_n and video_path go together: give both or neither", where)
        ref = self._refs.add_one(img, where)
        prio = _priorities(priority, 1, where)[0]
        self._req_single.append((ref, float(prio)))
        extra: dict[str, Any] = {}
        if meta:
            extra["meta"] = meta
        if img_meta:
            extra["img_meta"] = img_meta
        if anno_meta is not None:
            extra["anno_meta"] = list(anno_meta)
        if img_comment:
            extra["img_comment"] = str(img_comment)
        if frame_n is not None:
            extra["frame_n"] = int(frame_n)
            extra["video_path"] = str(video_path)
        if extra:
            self._req_meta[ref] = extra
        shapes = self._shapes(ref, annos, anno_types, anno_labels, confidences, where)
        labels = self._image_labels(ref, img_labels, where)
        for part in (labels, shapes):
            if part is not None:
                self._proposals.append(part)
        if proposals is not None and len(proposals):
            part = proposals[np.arange(len(proposals))]
            part.image = np.full(len(part), ref, np.int64)
            self._proposals.append(_plain(part))

    def request_images(
        self,
        image_ids: Any,
        *,
        priority: Any = None,
        proposals: Annotations | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Bulk request: one work item per image id per connected task. ``proposals`` is an
        Annotations struct whose ``image`` holds image ids among ``image_ids``."""
        where = _where(self._ctx, "request_annos")
        ids = np.atleast_1d(np.asarray(image_ids, dtype=np.int64)).reshape(-1)
        if ids.size and ids.min() <= 0:
            raise InvalidInput(f"image ids must be positive, got {int(ids.min())}", where)
        refs = self._refs.add_ids(ids)
        self._req_refs.append(refs)
        self._req_prio.append(_priorities(priority, len(ids), where))
        if meta:
            for r in refs[:1].tolist():  # one shared meta: kept once, applied to all
                self._req_meta[r] = {"meta": meta, "bulk": [int(refs[0]), int(refs[-1]) + 1]}
        if proposals is not None and len(proposals):
            order = np.argsort(ids, kind="stable")
            pos = np.searchsorted(ids[order], proposals.image)
            pos = np.minimum(pos, max(len(ids) - 1, 0))
            ok = ids[order][pos] == proposals.image if len(ids) else np.zeros(0, bool)
            if not np.all(ok):
                i = int(np.flatnonzero(~ok)[0])
                raise InvalidInput(
                    f"proposals row {i} is on image {int(proposals.image[i])}, which is not "
                    "requested",
                    where,
                )
            part = _plain(proposals[np.arange(len(proposals))])
            part.image = refs[order][pos]
            self._proposals.append(part)

    def request_frame(self, frame: pd.DataFrame, *, priority: Any = None) -> None:
        """Bulk request from a DataFrame: ``image_id`` or ``img_path`` per row, optional
        ``priority``, and optional proposal columns ``anno_dtype``, ``anno_data``,
        ``anno_lbl`` (a name, an id or a list) and ``anno_confidence`` (LOST's frame; rows
        without ``anno_data`` propose nothing). Rows of the same image make one request."""
        where = _where(self._ctx, "request_annos(DataFrame)")
        if "image_id" in frame:
            ids = frame["image_id"].to_numpy()
            if pd.isna(ids).any():
                i = int(np.flatnonzero(pd.isna(ids))[0])
                raise InvalidInput(f"row {i}: image_id is missing", where)
            refs = self._refs.add_ids(ids.astype(np.int64))
        elif "img_path" in frame:
            paths = frame["img_path"].tolist()
            bad = [i for i, p in enumerate(paths) if not isinstance(p, (str, os.PathLike))]
            if bad:
                raise InvalidInput(f"row {bad[0]}: img_path is not a path", where)
            refs = self._refs.add_paths(paths)
        else:
            raise InvalidInput("the DataFrame needs an image_id or an img_path column", where)
        prio = frame["priority"].to_numpy(np.float64) if "priority" in frame else priority
        self._req_refs.append(refs)
        self._req_prio.append(_priorities(prio, len(refs), where))
        if "anno_data" not in frame or "anno_dtype" not in frame:
            return
        data = frame["anno_data"].tolist()
        types = frame["anno_dtype"].tolist()
        labels = frame["anno_lbl"].tolist() if "anno_lbl" in frame else [None] * len(data)
        confs = (
            frame["anno_confidence"].to_numpy(np.float64)
            if "anno_confidence" in frame
            else np.full(len(data), np.nan)
        )
        rows = [i for i, d in enumerate(data) if d is not None and not _is_nan(d)]
        if not rows:
            return
        kinds, boxes, shapes, label_ids = [], [], [], []
        for i in rows:
            at = f"{where}: row {i}"
            kind, box, shape = lost_shape(data[i], types[i], at)
            kinds.append(int(kind))
            boxes.append(box)
            shapes.append(shape)
            label_ids.append(self._label_id(labels[i], at))
        n = len(rows)
        self._proposals.append(
            Annotations(
                image=refs[rows],
                kind=np.asarray(kinds, np.int8),
                label=np.asarray(label_ids, np.int64),
                box=np.asarray(boxes, np.float64).reshape(n, 4),
                confidence=confs[rows].astype(np.float32),
                shape=shapes,
            )
        )

    # LOST 1.x names
    def request_bba(
        self,
        img_path: Any,
        boxes: Any = (),
        label_list: Any = (),
        frame_n: Any = None,
        video_path: Any = None,
        sim_classes: Any = (),
    ) -> None:
        """LOST 1.x: request box annotations with proposed ``boxes`` and ``label_list``."""
        boxes = list(boxes or [])
        self.request_annos(
            img_path,
            annos=boxes,
            anno_types=["bbox"] * len(boxes),
            anno_labels=list(label_list or []),
            frame_n=frame_n,
            video_path=video_path,
        )

    def request_image_anno(self, img_path: Any, **kwargs: Any) -> None:
        """LOST 1.x: request image-label annotations."""
        self.request_annos(img_path, **kwargs)

    # -- annotations made by the script --------------------------------------------------
    def add_annos(
        self,
        img: Any,
        annos: Any = (),
        anno_types: Any = (),
        anno_labels: Any = (),
        img_labels: Any = None,
        confidences: Any = None,
    ) -> None:
        """Store annotations made by this script on ``img`` (written when main returns)."""
        where = _where(self._ctx, "add_annos")
        ref = self._refs.add_one(img, where)
        for part in (
            self._image_labels(ref, img_labels, where),
            self._shapes(ref, annos, anno_types, anno_labels, confidences, where),
        ):
            if part is not None:
                self._annotations.append(part)

    def add_annotations(self, ann: Annotations) -> None:
        """Store an Annotations struct made by this script (``image``: image ids, ``label``:
        label ids or -1)."""
        if not len(ann):
            return
        where = _where(self._ctx, "add_annotations")
        ids = ann.image.astype(np.int64)
        if ids.min() <= 0:
            raise InvalidInput(f"image ids must be positive, got {int(ids.min())}", where)
        part = _plain(ann[np.arange(len(ann))])
        part.image = self._refs.add_ids(ids)
        self._annotations.append(part)

    # -- visual outputs and exports ------------------------------------------------------
    def add_visual_output(
        self, img_path: Any = None, html: str | None = None, *, path: Any = None
    ) -> None:
        """Show an image file (``img_path`` / ``path``) or ``html`` in the visual elements
        after this script."""
        path = path if path is not None else img_path
        if path is None and html is None:
            raise InvalidInput("give img_path or html", _where(self._ctx, "add_visual_output"))
        self._visuals.append(
            {"location": None if path is None else _location_text(path), "html": html}
        )

    def add_data_export(self, file_path: Any, fs: Any = None) -> None:
        """Offer a file the script wrote in the export elements after this script."""
        self._exports.append({"location": _location_text(file_path)})

    # -- the end ------------------------------------------------------------------------
    def resolve(self) -> ResolvedOutputs:
        """Every image reference looked up (new paths added to the project)."""
        ref_ids = self._refs.resolve(self._ctx.project)
        refs = list(self._req_refs)
        prios = list(self._req_prio)
        if self._req_single:
            refs.append(np.asarray([r for r, _ in self._req_single], np.int64))
            prios.append(np.asarray([p for _, p in self._req_single], np.float64))
        req_refs = np.concatenate(refs) if refs else np.zeros(0, np.int64)
        prio = np.concatenate(prios) if prios else np.zeros(0, np.float64)
        # request rows in ref order, so that meta keyed by ref finds its row
        order = np.argsort(req_refs, kind="stable")
        req_refs, prio = req_refs[order], prio[order]
        meta: dict[int, dict[str, Any]] = {}
        for ref, value in self._req_meta.items():
            if "bulk" in value:
                lo, hi = value["bulk"]
                rows = np.flatnonzero((req_refs >= lo) & (req_refs < hi))
                for row in rows.tolist():
                    meta[row] = {"meta": value["meta"]}
            else:
                row = int(np.searchsorted(req_refs, ref))
                meta[row] = value
        proposals = Annotations.concat(self._proposals) if self._proposals else Annotations.empty()
        prop_rows = (
            np.searchsorted(req_refs, proposals.image) if len(proposals) else proposals.image
        )
        proposals.data = {"request": prop_rows.astype(np.int64)}
        proposals.image = ref_ids[proposals.image] if len(proposals) else proposals.image
        annotations = (
            Annotations.concat(self._annotations) if self._annotations else Annotations.empty()
        )
        if len(annotations):
            annotations.image = ref_ids[annotations.image]
        return ResolvedOutputs(
            request_images=ref_ids[req_refs] if len(req_refs) else req_refs,
            request_priority=prio,
            request_meta=meta,
            proposals=proposals,
            annotations=annotations,
            visuals=list(self._visuals),
            exports=list(self._exports),
        )


def _plain(ann: Annotations) -> Annotations:
    """The geometry of ``ann`` without its data columns and label names."""
    ann.data = {}
    ann.label_names = []
    return ann


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _priorities(priority: Any, n: int, where: str) -> np.ndarray:
    if priority is None:
        return np.zeros(n, np.float64)
    values = np.asarray(priority, dtype=np.float64)
    if values.ndim and values.size != n:
        raise InvalidInput(f"priority has {values.size} values for {n} images", where)
    out = np.broadcast_to(values, (n,)).astype(np.float64)
    if not np.isfinite(out).all():
        raise InvalidInput("priorities must be finite numbers", where)
    return out


def _location_text(value: Any) -> str:
    from annoloop.storage import Location

    return str(Location.parse(value))


def _check_xy(values: np.ndarray, where: str) -> None:
    if not np.isfinite(values).all():
        raise InvalidInput("coordinates must be finite numbers", where)
    if (values < -1e-6).any() or (values > 1 + 1e-6).any():
        raise InvalidInput(
            "coordinates are relative to the image size (0..1); got "
            f"{np.round(values.reshape(-1)[:8], 4).tolist()}",
            where,
        )


def lost_shape(data: Any, kind_name: Any, where: str) -> tuple[Kind, list[float], Any]:
    """(kind, relative centre box, shape) of one LOST annotation (``anno_data`` + type)."""
    name = str(kind_name).lower() if kind_name is not None else ""
    if name not in _GEOMETRY_KINDS:
        raise InvalidInput(
            f"unknown annotation type {kind_name!r} (known: {', '.join(_GEOMETRY_KINDS)})", where
        )
    kind = _GEOMETRY_KINDS[name]
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} data must be numbers, got {data!r:.80}", where) from None
    if kind == Kind.BBOX:
        if arr.shape != (4,):
            raise InvalidInput(f"a bbox is [x, y, w, h], got shape {arr.shape}", where)
        _check_xy(arr, where)
        if arr[2] <= 0 or arr[3] <= 0:
            raise InvalidInput(
                f"a bbox needs a positive width and height, got {arr.tolist()}", where
            )
        return kind, arr.tolist(), None
    if kind == Kind.POINT:
        if arr.shape != (2,):
            raise InvalidInput(f"a point is [x, y], got shape {arr.shape}", where)
        _check_xy(arr, where)
        return kind, [arr[0], arr[1], 0.0, 0.0], None
    need = 2 if kind == Kind.LINE else 3
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < need:
        raise InvalidInput(
            f"a {name} is [[x, y], ...] with at least {need} points, got shape {arr.shape}", where
        )
    _check_xy(arr, where)
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    box = [
        float((lo[0] + hi[0]) / 2),
        float((lo[1] + hi[1]) / 2),
        float(hi[0] - lo[0]),
        float(hi[1] - lo[1]),
    ]
    shape = arr if kind == Kind.LINE else [[arr]]
    return kind, box, shape
