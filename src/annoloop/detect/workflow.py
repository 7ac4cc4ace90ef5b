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
from typing import Any

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


def _stamped(meta: Any, key: str, spec: DetectorSpec) -> bool:
    stamp = (meta or {}).get(key) if isinstance(meta, dict) else None
    return isinstance(stamp, dict) and stamp.get("model") == spec.label()


def setup(
    sources: Any,
    spec: DetectorSpec,
    settings: DetectSettings,
    *,
    project: Any = None,
) -> tuple[list[MediaItem], list[MediaResult]]:
    """(media to process, results of media skipped as already processed).

    ``sources`` are files/folders/URLs, or ``None`` with a project: all its images that are
    not video frames. With a project, files are registered as its images (not copied; a
    video as one record with its first frame's size) so they can be stamped."""
    if sources is None:
        if project is None:
            raise InvalidInput("give media sources or a project", "sources")
        images = project.images()
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
        if not settings.force and _stamped(meta, settings.stamp_key, spec):
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
def _model_state(project: Any, spec: DetectorSpec, label_ids: np.ndarray) -> int:
    """The project's model state for the detector (reused when the same version exists)."""
    if spec.state_id is not None:
        return int(spec.state_id)
    model = f"detect-{spec.kind}"
    states = project.model_states(model)
    for _, row in states.iterrows():
        opts = row["options"] or {}
        if opts.get("detector") == spec.label() and list(row["label_map"]) == label_ids.tolist():
            return int(row["id"])
    return int(
        project.add_model_state(
            model,
            spec.location or spec.name or spec.kind,
            label_map=label_ids.tolist(),
            options={
                "detector": spec.label(),
                "kind": spec.kind,
                "arch": spec.arch,
                "options": spec.options,
            },
        )
    )


def _frame_records(project: Any, r: MediaResult) -> np.ndarray:
    """Image ids of the result's frames: the media itself for images; for videos one image
    record per frame with boxes (video location + frame number)."""
    if r.kind != "video":
        return np.full(len(r.frames), int(r.media_id), np.int64)
    uniq, inverse = np.unique(r.frames, return_inverse=True)
    ids = project.add_image_records(
        [f"{r.media}#frame={int(f)}" for f in uniq],
        [r.width] * len(uniq),
        [r.height] * len(uniq),
        video_locations=[r.media] * len(uniq),
        frames=uniq.tolist(),
    )
    return np.asarray(ids, np.int64)[inverse]


def _set_meta(project: Any, updates: dict[int, dict[str, Any]]) -> None:
    """Merge ``updates`` into the meta of images (one transaction)."""
    import sqlalchemy as sa

    from annoloop.store.schema import image

    if not updates:
        return
    ids = list(updates)
    with project.engine.begin() as conn:
        rows = conn.execute(sa.select(image.c.id, image.c.meta).where(image.c.id.in_(ids)))
        current = {int(i): (json.loads(m) if isinstance(m, str) else m) for i, m in rows}
        for i, extra in updates.items():
            meta = dict(current.get(i) or {})
            meta.update(extra)
            conn.execute(image.update().where(image.c.id == i).values(meta=meta))


def teardown(
    results: Sequence[MediaResult],
    spec: DetectorSpec,
    settings: DetectSettings,
    *,
    project: Any = None,
    out_csv: str | Path | None = None,
    out_coco: str | Path | None = None,
) -> DetectReport:
    """Write predictions, track ids and stamps into the project; CSV and COCO files."""
    from annoloop.detect.outputs import write_coco, write_csv
    from annoloop.geometry.annotations import Annotations

    report = DetectReport(list(results), settings, spec.label())
    attrs = {"label_attr": settings.label_attr, "confidence_attr": settings.confidence_attr}
    if out_csv is not None:
        report.out_csv = str(write_csv(results, out_csv, **attrs))
    if out_coco is not None:
        report.out_coco = str(write_coco(results, out_coco, **attrs))
    if project is None:
        return report
    done = [r for r in results if r.ok and not r.skipped and r.media_id is not None]
    if not done:
        return report
    label_ids = np.asarray(project.label_ids(spec.classes, create=True), np.int64)
    state_id = _model_state(project, spec, label_ids)
    report.model_state_id = state_id
    parts, meta = [], {}
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for r in done:
        if r.n_boxes:
            image_ids = _frame_records(project, r)
            parts.append(Annotations.from_boxes(image_ids, r.boxes, label_ids[r.labels],
                                                r.scores))  # fmt: skip
            if r.kind == "video":
                for fid in np.unique(image_ids).tolist():
                    sel = image_ids == fid
                    meta[fid] = {"track_ids": r.track_ids[sel].tolist(),
                                 "detector": spec.label()}  # fmt: skip
        meta[int(r.media_id)] = {
            settings.stamp_key: {
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
        }
    if parts:
        ann = Annotations.concat(parts)
        report.prediction_ids = np.asarray(project.add_predictions(ann, state_id))
    _set_meta(project, meta)
    return report


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
