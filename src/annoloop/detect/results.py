"""What a detection worker returns for one media: boxes per frame, tracks and timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annoloop.geometry.boxes import cxcywh_to_xyxy


@dataclass
class Timings:
    """Seconds spent decoding (incl. reading the file), pre-processing (resizing) and in the
    detector, and the wall time of the whole media. Decoding and pre-processing run in a
    thread beside inference, so ``total`` can be less than their sum."""

    decode: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    total: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Rounded seconds by name."""
        return {k: round(float(v), 4) for k, v in vars(self).items()}


@dataclass
class MediaResult:
    """Detections in one image or video: relative centre boxes (``boxes``), the frame each
    box is on, class index into ``classes``, score and track id; ``ok`` False with ``error``
    when the media failed; ``skipped`` when it was already processed."""

    media: str
    kind: str  # "image" or "video"
    width: int = 0
    height: int = 0
    frames_processed: int = 0
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    classes: list[str] = field(default_factory=list)
    model: str = ""
    model_version: str = ""
    timings: Timings = field(default_factory=Timings)
    ok: bool = True
    error: str = ""
    traceback: str = ""
    skipped: bool = False
    media_id: int | None = None

    @property
    def n_boxes(self) -> int:
        """Number of boxes kept."""
        return len(self.frames)

    @property
    def n_tracks(self) -> int:
        """Number of distinct tracks."""
        return len(np.unique(self.track_ids)) if self.n_boxes else 0

    def boxes_pixels(self) -> np.ndarray:
        """xyxy boxes in the media's pixels."""
        return cxcywh_to_xyxy(self.boxes) * np.array(
            [self.width, self.height, self.width, self.height], dtype=np.float64
        )

    def fps(self) -> float:
        """Processed frames per second of wall time."""
        return self.frames_processed / self.timings.total if self.timings.total > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-able line about this media."""
        return {
            "media": self.media,
            "kind": self.kind,
            "ok": self.ok,
            "skipped": self.skipped,
            "error": self.error,
            "frames": self.frames_processed,
            "boxes": self.n_boxes,
            "tracks": self.n_tracks,
            "fps": round(self.fps(), 2),
            "seconds": self.timings.as_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-able values (arrays as lists): what the pipeline's worker stage
        writes for teardown, read back by :meth:`from_dict`."""
        out: dict[str, Any] = {}
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                out[name] = value.tolist()
            elif isinstance(value, Timings):
                out[name] = vars(value).copy()
            else:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaResult:
        """A result from :meth:`to_dict` (arrays get their dtypes and shapes back)."""
        data = dict(data)
        arrays = {"frames": np.int64, "labels": np.int64, "scores": np.float32,
                  "track_ids": np.int64}  # fmt: skip
        for name, dtype in arrays.items():
            data[name] = np.asarray(data.get(name, []), dtype=dtype).reshape(-1)
        data["boxes"] = np.asarray(data.get("boxes", []), np.float64).reshape(-1, 4)
        data["timings"] = Timings(**data.get("timings", {}))
        return cls(**data)
