"""The detection workflow in three stages, as OpenEM runs it in Tator:

- :func:`setup` lists the media (image and video files, or project images), registers them
  in the project and drops those already stamped as processed by the same detector;
- :func:`~annoloop.detect.worker.detect_media` (the worker) runs the detector over one media,
  on the executor with one media per task (GPU workers chosen by ``TaskSpec(gpu=True)``
  when the detector wants CUDA);
- :func:`teardown` writes the boxes into the project as predictions of a model state, the
  track ids into the frames' meta, stamps each media (processing time, model and version,
  counts), and writes CSV / COCO files.

:func:`annoloop.detect.run` chains them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from annoloop.detect.detectors import DetectorSpec
from annoloop.detect.media import is_video, video_info
from annoloop.detect.results import MediaResult
from annoloop.detect.settings import DetectSettings
from annoloop.detect.worker import MediaItem
from annoloop.errors import InvalidInput, NotFound
from annoloop.storage import Location


@dataclass
class DetectReport:
    """What a run did: per-media results, failures, files written, the model state used."""

    results: list[MediaResult]
    settings: DetectSettings
    detector: str
    model_state_id: int | None = None
    prediction_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_csv: str | None = None
    out_coco: str | None = None

    @property
    def processed(self) -> list[MediaResult]:
        """Media run now and finished."""
        return [r for r in self.results if r.ok and not r.skipped]

    @property
    def failed(self) -> list[MediaResult]:
        """Media that failed (reported, not stamped)."""
        return [r for r in self.results if not r.ok]

    @property
    def skipped(self) -> list[MediaResult]:
        """Media skipped because they were stamped already."""
        return [r for r in self.results if r.skipped]

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (the CLI prints it)."""
        done = self.processed
        frames = sum(r.frames_processed for r in done)
        seconds = sum(r.timings.total for r in done)
        return {
            "detector": self.detector,
            "media": len(self.results),
            "processed": len(done),
            "skipped": len(self.skipped),
            "failed": [{"media": r.media, "error": r.error} for r in self.failed],
            "frames": frames,
            "boxes": sum(r.n_boxes for r in done),
            "tracks": sum(r.n_tracks for r in done if r.kind == "video"),
            "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
            "model_state_id": self.model_state_id,
            "predictions": len(self.prediction_ids),
            "out_csv": self.out_csv,
            "out_coco": self.out_coco,
            "per_media": [r.summary() for r in self.results],
        }


# ---------------------------------------------------------------------------------- setup
def _expand(sources: Any) -> list[str]:
    """Locations of the sources: files, folders (their images and videos), URLs."""
    from annoloop.storage.images import is_image_name

    if isinstance(sources, (str, Path, Location)):
        sources = [sources]
    out: list[str] = []
    for src in sources:
        loc = Location.parse(src)
        if loc.is_dir():
            found = [c for c in loc.list("*", recursive=True)
                     if is_image_name(c.name) or is_video(c)]  # fmt: skip
            out.extend(c.url for c in sorted(found, key=lambda c: c.url))
        elif loc.exists():
            out.append(loc.url)
        else:
            raise NotFound(f"no media at {loc.url}")
    return out


def is_stamped(meta: Any, key: str, spec: DetectorSpec) -> bool:
    """Whether an image's meta holds the stamp of this detector (name and version)."""
    found = meta.get(key) if isinstance(meta, dict) else None
    return isinstance(found, dict) and found.get("model") == spec.label()


def setup(
    sources: Any,
    spec: DetectorSpec,
    settings: DetectSettings,
    *,
    project: Any = None,
    image_ids: Sequence[int] | None = None,
) -> tuple[list[MediaItem], list[MediaResult]]:
    """(media to process, results of media skipped as already processed).

    ``sources`` are files/folders/URLs, or ``None`` with a project: its images that are not
    video frames (all of them, or those of ``image_ids``). With a project, files are
    registered as its images (not copied; a video as one record with its first frame's size)
    so they can be stamped."""
    if sources is None:
        if project is None:
            raise InvalidInput("give media sources or a project", "sources")
        images = project.images(None if image_ids is None else list(image_ids))
        images = images[images["frame"].isna()]
        locations = [str(project.image_location(int(i))) for i in images["id"]]
        ids = images["id"].astype(int).tolist()
        metas = list(images["meta"])
    else:
        locations = _expand(sources)
        ids, metas = [None] * len(locations), [None] * len(locations)
        if project is not None:
            ids, metas = _register(project, locations)
    items, skipped = [], []
    for loc, mid, meta in zip(locations, ids, metas, strict=True):
        if not settings.force and is_stamped(meta, settings.stamp_key, spec):
            skipped.append(MediaResult(media=loc, kind="video" if is_video(loc) else "image",
                                       media_id=mid, skipped=True))  # fmt: skip
            continue
        items.append(MediaItem.of(loc, mid))
    return items, skipped


def _register(project: Any, locations: Sequence[str]) -> tuple[list[int], list[Any]]:
    """Project image ids (and meta) of the media, adding records for new ones."""
    images_at = [loc for loc in locations if not is_video(loc)]
    videos = [loc for loc in locations if is_video(loc)]
    id_of: dict[str, int] = {}
    if images_at:
        ids = project.add_images(images_at, copy=False)
        id_of.update(zip(images_at, np.asarray(ids).tolist(), strict=True))
    for v in videos:
        try:
            info = video_info(v)
            w, h = info["width"], info["height"]
        except InvalidInput:
            w, h = 1, 1  # a broken video still gets a record: its failure is reported
        (vid,) = project.add_image_records([v], [max(1, w)], [max(1, h)],
                                           video_locations=[v])  # fmt: skip
        id_of[v] = int(vid)
    frame = project.images(list(id_of.values()))
    meta_of = dict(zip(frame["id"].astype(int), frame["meta"], strict=True))
    ids = [id_of[loc] for loc in locations]
    return ids, [meta_of.get(i) for i in ids]


# ------------------------------------------------------------------------------- teardown
def _model_state(conn: Any, spec: DetectorSpec, label_ids: np.ndarray) -> int:
    """The project's model state for the detector (reused when the same version exists)."""
    from annoloop.store import models as _models

    if spec.state_id is not None:
        return int(spec.state_id)
    model = f"detect-{spec.kind}"
    states = _models.model_states_frame(conn, model)
    for _, row in states.iterrows():
        opts = row["options"] or {}
        if opts.get("detector") == spec.label() and list(row["label_map"]) == label_ids.tolist():
            return int(row["id"])
    options = {"detector": spec.label(), "kind": spec.kind, "arch": spec.arch,
               "options": spec.options}  # fmt: skip
    where = spec.location or spec.name or spec.kind
    state_id = _models.add_model_state(
        conn, model, where, label_map=label_ids.tolist(), options=options
    )
    return int(state_id)


def _stored(project: Any, location: str) -> str:
    """A location as ``image.location`` keeps it (relative inside the media root)."""
    import os

    from annoloop.store.images import stored_location

    if "://" not in location and not os.path.isabs(location):
        return location  # stored form already (as Project.add_image_records takes it)
    return stored_location(location, project.media)


def _frame_records(conn: Any, project: Any, r: MediaResult) -> np.ndarray:
    """Image ids of the result's frames: the media itself for images; for videos one image
    record per frame with boxes (video location + frame number)."""
    from annoloop.store.images import add_image_records

    if r.kind != "video":
        return np.full(len(r.frames), int(r.media_id or 0), np.int64)
    uniq, inverse = np.unique(r.frames, return_inverse=True)
    ids = add_image_records(
        conn,
        [_stored(project, f"{r.media}#frame={int(f)}") for f in uniq],
        [r.width] * len(uniq),
        [r.height] * len(uniq),
        video_locations=[r.media] * len(uniq),
        frames=uniq.tolist(),
    )
    return np.asarray(ids, np.int64)[inverse]


def _metas(conn: Any, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Image id -> meta (a dict) of ``ids``."""
    import sqlalchemy as sa

    from annoloop.store.schema import image

    rows = conn.execute(sa.select(image.c.id, image.c.meta).where(image.c.id.in_(list(ids))))
    out = {}
    for i, m in rows:
        meta = json.loads(m) if isinstance(m, str) else m
        out[int(i)] = meta if isinstance(meta, dict) else {}
    return out


def _set_meta(conn: Any, current: dict[int, dict[str, Any]], updates: dict[int, dict]) -> None:
    """Merge ``updates`` into the meta of images (``current``: their meta now)."""
    from annoloop.store.schema import image

    for i, extra in updates.items():
        meta = dict(current.get(i) or {})
        meta.update(extra)
        conn.execute(image.update().where(image.c.id == i).values(meta=meta))


def stamp(
    r: MediaResult, spec: DetectorSpec, settings: DetectSettings, state_id: int, now: str
) -> dict[str, Any]:
    """What a processed media's meta gets under ``settings.stamp_key``."""
    return {
        "processed_at": now,
        "model": spec.label(),
        "model_version": spec.version,
        "model_state_id": state_id,
        "seconds": round(r.timings.total, 3),
        "frames": r.frames_processed,
        "boxes": r.n_boxes,
        "tracks": r.n_tracks,
        "label_attr": settings.label_attr,
        "confidence_attr": settings.confidence_attr,
    }


class Stored(NamedTuple):
    """What :func:`store_results` wrote: the model state, the predictions, the media it
    stamped, and those it left alone because they were stamped meanwhile."""

    model_state_id: int | None
    prediction_ids: np.ndarray
    stamped: list[int]
    already: list[int]


def store_results(
    project: Any,
    results: Sequence[MediaResult],
    spec: DetectorSpec,
    settings: DetectSettings,
    *,
    create_labels: bool = True,
) -> Stored:
    """Write the boxes of finished media as predictions of the detector's model state, the
    track ids into the video frames' meta and each media's stamp, in ONE transaction: bad
    input (an unknown label without ``create_labels``, a box outside its image) writes
    nothing. A media that carries this detector's stamp by now (another run, a retried
    upload) is left alone unless ``settings.force``, so nothing is written twice. Shared by
    :func:`teardown` and the server's ``POST /api/detections``."""
    from annoloop.geometry.annotations import Annotations
    from annoloop.store.engine import run_write
    from annoloop.store.labels import label_ids as _label_ids
    from annoloop.store.models import insert_predictions

    done = [r for r in results if r.ok and not r.skipped and r.media_id is not None]
    if not done:
        return Stored(None, np.zeros(0, np.int64), [], [])
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def write(conn: Any) -> Stored:
        current = _metas(conn, [int(r.media_id or 0) for r in done])
        todo, already = [], []
        for r in done:
            mid = int(r.media_id or 0)
            if not settings.force and is_stamped(current.get(mid), settings.stamp_key, spec):
                already.append(mid)  # stamped meanwhile: written by that run
            else:
                todo.append(r)
        if not todo:
            return Stored(None, np.zeros(0, np.int64), [], already)
        label_ids = np.asarray(_label_ids(conn, spec.classes, create=create_labels), np.int64)
        state_id = _model_state(conn, spec, label_ids)
        parts, meta = [], {}
        for r in todo:
            if r.n_boxes:
                image_ids = _frame_records(conn, project, r)
                parts.append(Annotations.from_boxes(image_ids, r.boxes, label_ids[r.labels],
                                                    r.scores))  # fmt: skip
                if r.kind == "video":
                    for fid in np.unique(image_ids).tolist():
                        sel = image_ids == fid
                        meta[fid] = {"track_ids": r.track_ids[sel].tolist(),
                                     "detector": spec.label()}  # fmt: skip
            meta[int(r.media_id or 0)] = {
                settings.stamp_key: stamp(r, spec, settings, state_id, now)
            }
        ids = np.zeros(0, np.int64)
        if parts:
            ids = np.asarray(insert_predictions(conn, Annotations.concat(parts), state_id))
        current.update(_metas(conn, [k for k in meta if k not in current]))
        _set_meta(conn, current, meta)
        stamped = [int(r.media_id or 0) for r in todo]
        return Stored(state_id, ids, stamped, already)

    return run_write(project.engine, write)


def teardown(
    results: Sequence[MediaResult],
    spec: DetectorSpec,
    settings: DetectSettings,
    *,
    project: Any = None,
    out_csv: str | Path | None = None,
    out_coco: str | Path | None = None,
) -> DetectReport:
    """Write predictions, track ids and stamps into the project (one transaction, see
    :func:`store_results`); CSV and COCO files."""
    report = DetectReport(list(results), settings, spec.label())
    write_files(report, out_csv, out_coco)
    if project is not None:
        stored = store_results(project, results, spec, settings)
        report.model_state_id, report.prediction_ids = stored.model_state_id, stored.prediction_ids
        mark_already(report.results, stored.already)
    return report


def mark_already(results: Sequence[MediaResult], media_ids: Sequence[int]) -> None:
    """Mark the results of media stamped meanwhile (by another run) as skipped."""
    already = set(media_ids)
    for r in results:
        if r.media_id is not None and int(r.media_id) in already and not r.skipped:
            r.skipped = True


def write_files(
    report: DetectReport, out_csv: str | Path | None, out_coco: str | Path | None
) -> None:
    """Write the report's boxes as CSV and / or COCO (names recorded in the report)."""
    from annoloop.detect.outputs import write_coco, write_csv

    s = report.settings
    attrs = {"label_attr": s.label_attr, "confidence_attr": s.confidence_attr}
    if out_csv is not None:
        report.out_csv = str(write_csv(report.results, out_csv, **attrs))
    if out_coco is not None:
        report.out_coco = str(write_coco(report.results, out_coco, **attrs))


def collect(futures: Iterable[Any], items: Sequence[MediaItem]) -> list[MediaResult]:
    """Results of executor futures; a task that raised (lost worker, ...) becomes a failed
    result for its media instead of stopping the run."""
    out = []
    for fut, item in zip(futures, items, strict=True):
        try:
            out.append(fut.result())
        except Exception as exc:
            out.append(MediaResult(media=item.media, kind=item.kind, media_id=item.media_id,
                                   ok=False, error=f"{type(exc).__name__}: {exc}"))  # fmt: skip
    return out
