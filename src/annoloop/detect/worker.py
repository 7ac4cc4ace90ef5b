"""The worker stage: one media through the detector (decode thread -> batches -> detector
-> keep threshold and NMS -> tracks). Runs anywhere: it needs the media's storage and the
detector spec, not the project database. Errors come back in the result, never raised."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from annoloop.detect.detectors import DetectorSpec, load_detector
from annoloop.detect.media import (
    Frame,
    batched,
    is_video,
    iter_frames,
    prefetch,
    resize,
    resize_factor,
)
from annoloop.detect.postprocess import filter_detections
from annoloop.detect.results import MediaResult, Timings
from annoloop.detect.settings import DetectSettings
from annoloop.detect.tracking import track_boxes
from annoloop.geometry.boxes import xyxy_to_cxcywh


class MediaItem(BaseModel):
    """One media to process: its location, image or video, and its project record id."""

    model_config = ConfigDict(extra="forbid")

    media: str
    kind: str = "image"
    media_id: int | None = None

    @classmethod
    def of(cls, location: str, media_id: int | None = None) -> MediaItem:
        """An item whose kind follows the file suffix."""
        return cls(media=location, kind="video" if is_video(location) else "image",
                   media_id=media_id)  # fmt: skip


def _timed_frames(item: MediaItem, s: DetectSettings, timings: Timings) -> Iterator[Frame]:
    """Frames resized for the detector; decode and resize times added to ``timings``."""
    raw = iter_frames(item.media, frame_stride=s.frame_stride)
    while True:
        t0 = time.perf_counter()
        try:
            frame = next(raw)
        except StopIteration:
            return
        t1 = time.perf_counter()
        h, w = frame.pixels.shape[:2]
        scale = resize_factor(w, h, s.img_min_side, s.img_max_side)
        pixels = resize(frame.pixels, scale)
        timings.decode += t1 - t0
        timings.preprocess += time.perf_counter() - t1
        yield Frame(frame.index, pixels, w, h, scale)


def detect_media(item: MediaItem, spec: DetectorSpec, settings: DetectSettings) -> MediaResult:
    """Run the detector over one media; a failure (unreadable file, broken video, detector
    error) is returned as ``ok=False`` with the error, after the frames that worked."""
    from annoloop.execution import TaskCancelled, report_progress

    start = time.perf_counter()
    timings = Timings()
    result = MediaResult(media=item.media, kind=item.kind, media_id=item.media_id,
                         model=spec.name or spec.kind, model_version=spec.version,
                         classes=list(spec.classes))  # fmt: skip
    frames_l: list[np.ndarray] = []
    boxes_l: list[np.ndarray] = []
    scores_l: list[np.ndarray] = []
    labels_l: list[np.ndarray] = []
    try:
        detector = load_detector(spec)
        result.classes = list(detector.classes)
        frames: Any = _timed_frames(item, settings, timings)
        if settings.prefetch:
            frames = prefetch(frames, settings.prefetch)
        for batch in batched(frames, settings.batch_size):
            t0 = time.perf_counter()
            found = detector.detect([f.pixels for f in batch])
            timings.inference += time.perf_counter() - t0
            for frame, (b, sc, lab) in zip(batch, found, strict=True):
                b, sc, lab = filter_detections(
                    np.asarray(b) / frame.scale, sc, lab, keep_threshold=settings.keep_threshold,
                    nms_iou=settings.nms_iou, class_aware=settings.class_aware_nms,
                )  # fmt: skip
                size = np.array([frame.width, frame.height] * 2, np.float64)
                rel = np.clip(b / size, 0.0, 1.0)
                ok = (rel[:, 2] > rel[:, 0]) & (rel[:, 3] > rel[:, 1])
                frames_l.append(np.full(int(ok.sum()), frame.index, np.int64))
                boxes_l.append(rel[ok])
                scores_l.append(sc[ok])
                labels_l.append(lab[ok])
                result.width, result.height = frame.width, frame.height
                result.frames_processed += 1
            report_progress(result.frames_processed, None, f"{item.media}: frame {batch[-1].index}")
    except TaskCancelled:  # the run was stopped: not a failure of this media
        raise
    except Exception as exc:  # reported in the result; the other media go on
        result.ok = False
        result.error = f"{type(exc).__name__}: {exc}"
        result.traceback = traceback.format_exc(limit=6)
    if frames_l:
        result.frames = np.concatenate(frames_l)
        xyxy = np.concatenate(boxes_l)
        result.boxes = xyxy_to_cxcywh(xyxy)
        result.scores = np.concatenate(scores_l).astype(np.float32)
        result.labels = np.concatenate(labels_l).astype(np.int64)
        if settings.tracker != "none" and item.kind == "video":
            result.track_ids = track_boxes(
                result.frames // settings.frame_stride, xyxy, result.labels,
                iou_threshold=settings.track_iou, max_gap=settings.track_max_gap,
                method=settings.tracker,
            )  # fmt: skip
        else:  # every box of a still image is its own track
            result.track_ids = np.arange(len(result.frames), dtype=np.int64)
    timings.total = time.perf_counter() - start
    result.timings = timings
    return result
