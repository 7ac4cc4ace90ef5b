"""The REST body of remote detection (``POST /api/detections``), shared by the client that
builds it (:mod:`annoloop.detect.remote`) and the server route that checks and stores it.

One request carries the detector, the attribute names, and per media the boxes of one
server image, as parallel lists (bulk first)::

    {"detector": {"kind": "mtcnn", "name": "mtcnn", "version": "facenet-pytorch-2.6",
                  "classes": ["face"]},
     "units": "relative",              # boxes [cx, cy, w, h] in 0..1, or "pixel"
     "label_attr": "Species", "confidence_attr": "Confidence",
     "create_labels": true,            # false: every class must be a label already
     "media": [{"image_id": 3, "boxes": [[0.44, 0.23, 0.17, 0.21]], "labels": ["face"],
                "scores": [0.99], "frames_processed": 1, "seconds": 0.41}]}

Videos add ``frames`` (the frame of each box) and ``track_ids``. Everything is checked
before anything is written, and the route writes one request in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from annoloop.detect.detectors import DetectorSpec
from annoloop.detect.results import MediaResult, Timings
from annoloop.detect.settings import STAMP_KEY, DetectSettings
from annoloop.errors import InvalidInput

MAX_MEDIA = 1000  # media per request
MAX_BOXES = 20_000  # boxes per media
MAX_TOTAL_BOXES = 100_000  # boxes per request
MAX_CLASSES = 1000
MAX_OPTIONS_CHARS = 65_536
TOLERANCE = 1e-6  # boxes may touch the border within rounding

Name = Annotated[str, Field(min_length=1, max_length=200)]
Coord = Annotated[float, Field(allow_inf_nan=False, ge=-1e9, le=1e9)]
Box = Annotated[list[Coord], Field(min_length=4, max_length=4)]
Score = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetectorIn(_Message):
    """The detector that made the boxes (names the model state and the stamps)."""

    kind: Literal["mtcnn", "onnx", "torchvision", "state"]
    name: Name
    version: Annotated[str, Field(max_length=200)] = ""
    arch: Annotated[str, Field(max_length=200)] = ""
    classes: Annotated[list[Name], Field(min_length=1, max_length=MAX_CLASSES)]
    options: dict[Annotated[str, Field(max_length=200)], Any] = Field(default_factory=dict)

    @field_validator("classes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("class names must be distinct")
        return value

    @field_validator("options")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_OPTIONS_CHARS:
            raise ValueError(f"options must stay under {MAX_OPTIONS_CHARS} characters of JSON")
        return value

    def spec(self) -> DetectorSpec:
        """The detector spec (no weights: the server only names the detector)."""
        return DetectorSpec(**self.model_dump())

    @classmethod
    def of(cls, spec: DetectorSpec) -> DetectorIn:
        """What a client sends for its spec."""
        return cls(kind=spec.kind, name=spec.name or spec.kind, version=spec.version,
                   arch=spec.arch, classes=list(spec.classes), options=spec.options)  # fmt: skip


class MediaIn(_Message):
    """The boxes of one server image (a still image, or a video record with ``frames``)."""

    image_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    boxes: Annotated[list[Box], Field(max_length=MAX_BOXES)] = Field(default_factory=list)
    labels: Annotated[list[Name], Field(max_length=MAX_BOXES)] = Field(default_factory=list)
    scores: Annotated[list[Score], Field(max_length=MAX_BOXES)] = Field(default_factory=list)
    frames: Annotated[list[Count], Field(max_length=MAX_BOXES)] | None = None
    track_ids: Annotated[list[Count], Field(max_length=MAX_BOXES)] | None = None
    frames_processed: Count = 1
    seconds: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _parallel(self) -> MediaIn:
        n = len(self.boxes)
        for name in ("labels", "scores", "frames", "track_ids"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} boxes")
        return self


class DetectionsIn(_Message):
    """A detector's boxes on some server images, with the names its stamps and outputs use."""

    detector: DetectorIn
    units: Literal["relative", "pixel"] = "relative"
    label_attr: Annotated[str, Field(min_length=1, max_length=100)] = "Species"
    confidence_attr: Annotated[str, Field(min_length=1, max_length=100)] = "Confidence"
    stamp_key: Annotated[str, Field(min_length=1, max_length=100)] = STAMP_KEY
    create_labels: bool = True
    force: bool = False
    media: Annotated[list[MediaIn], Field(min_length=1, max_length=MAX_MEDIA)]

    @model_validator(mode="after")
    def _bounded(self) -> DetectionsIn:
        total = sum(len(m.boxes) for m in self.media)
        if total > MAX_TOTAL_BOXES:
            raise ValueError(f"{total} boxes in one request; at most {MAX_TOTAL_BOXES}")
        seen: set[int] = set()
        for i, m in enumerate(self.media):
            if m.image_id in seen:
                raise ValueError(f"media[{i}]: image {m.image_id} is listed twice")
            seen.add(m.image_id)
        return self

    def settings(self) -> DetectSettings:
        """The settings the stamps record."""
        return DetectSettings(label_attr=self.label_attr, confidence_attr=self.confidence_attr,
                              stamp_key=self.stamp_key, force=self.force)  # fmt: skip

    @classmethod
    def example(cls) -> DetectionsIn:
        """A small valid body (tests, documentation)."""
        detector = DetectorIn(kind="mtcnn", name="mtcnn", version="facenet-pytorch-2.6",
                              classes=["face"])  # fmt: skip
        media = MediaIn(image_id=3, boxes=[[0.44, 0.23, 0.17, 0.21]], labels=["face"],
                        scores=[0.99], seconds=0.41)  # fmt: skip
        return cls(detector=detector, media=[media])


def body_from_results(
    results: Sequence[MediaResult], spec: DetectorSpec, settings: DetectSettings
) -> DetectionsIn:
    """The body that uploads finished results (``media_id`` = the server's image id)."""
    media = []
    for r in results:
        names = np.asarray(r.classes or spec.classes, dtype=object)
        video = r.kind == "video"
        one = MediaIn(
            image_id=int(r.media_id or 0), boxes=r.boxes.tolist(),
            labels=names[r.labels].tolist() if r.n_boxes else [], scores=r.scores.tolist(),
            frames=r.frames.tolist() if video else None,
            track_ids=r.track_ids.tolist() if video else None,
            frames_processed=r.frames_processed, seconds=round(r.timings.total, 4),
        )  # fmt: skip
        media.append(one)
    return DetectionsIn(
        detector=DetectorIn.of(spec), label_attr=settings.label_attr,
        confidence_attr=settings.confidence_attr, stamp_key=settings.stamp_key,
        force=settings.force, media=media,
    )  # fmt: skip


def _first_bad(bad: np.ndarray) -> int | None:
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def results_from_body(body: DetectionsIn, records: Any) -> list[MediaResult]:
    """Media results of a checked body; ``records`` holds the images' rows (``id``, ``width``,
    ``height``, ``frame``, ``video_location``, ``location``: a ``Project.images`` frame with
    the location resolved). InvalidInput names ``media[i].field[j]`` for a box outside its
    image, an empty or negative box, a label that is not a class, frames on a still image."""
    rows = {int(i): row for i, row in zip(records["id"], records.itertuples(), strict=True)}
    classes = {name: k for k, name in enumerate(body.detector.classes)}
    out = []
    for i, m in enumerate(body.media):
        row = rows[m.image_id]
        where = f"media[{i}]"
        video = _present(row.video_location) and not _present(row.frame)
        n = len(m.boxes)
        boxes = np.asarray(m.boxes, np.float64).reshape(n, 4)
        if body.units == "pixel":
            boxes = boxes / np.array([row.width, row.height, row.width, row.height], np.float64)
        half = boxes[:, 2:] / 2
        outside = (boxes[:, :2] - half < -TOLERANCE) | (boxes[:, :2] + half > 1 + TOLERANCE)
        j = _first_bad((boxes[:, 2:] <= 0).any(axis=1))
        if j is not None:
            raise InvalidInput(f"width and height must be > 0, got {m.boxes[j][2:]}",
                               f"{where}.boxes[{j}]")  # fmt: skip
        j = _first_bad(outside.any(axis=1))
        if j is not None:
            size = f"{row.width}x{row.height} pixels" if body.units == "pixel" else "0..1"
            raise InvalidInput(f"box {m.boxes[j]} (cx, cy, w, h) is not inside the image "
                               f"({size})", f"{where}.boxes[{j}]")  # fmt: skip
        unknown = [k for k, name in enumerate(m.labels) if name not in classes]
        if unknown:
            raise InvalidInput(f"{m.labels[unknown[0]]!r} is not one of the detector's classes",
                               f"{where}.labels[{unknown[0]}]")  # fmt: skip
        if m.frames is not None and not video and any(m.frames):
            raise InvalidInput(f"image {m.image_id} is not a video: frames must be 0",
                               f"{where}.frames")  # fmt: skip
        frames = np.asarray(m.frames if m.frames is not None else [0] * n, np.int64)
        tracks = m.track_ids if m.track_ids is not None else range(n)
        result = MediaResult(
            media=str(row.location), kind="video" if video else "image",
            width=int(row.width), height=int(row.height),
            frames_processed=m.frames_processed, frames=frames,
            boxes=np.clip(boxes, 0.0, 1.0),
            labels=np.array([classes[x] for x in m.labels], np.int64).reshape(n),
            scores=np.asarray(m.scores, np.float32).reshape(n),
            track_ids=np.asarray(tracks, np.int64).reshape(n),
            classes=list(body.detector.classes), model=body.detector.name,
            model_version=body.detector.version, timings=Timings(total=m.seconds),
            media_id=m.image_id,
        )  # fmt: skip
        out.append(result)
    return out


def _present(value: Any) -> bool:
    """Whether a frame cell holds a value (not None / NaN / NA)."""
    import pandas as pd

    return value is not None and not pd.isna(value)
