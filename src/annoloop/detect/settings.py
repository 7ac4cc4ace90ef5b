"""The settings of a detection run (OpenEM's ``img_min_side``, ``img_max_side``,
``batch_size``, ``keep_threshold``, plus NMS, frame stride, tracking and attribute names)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

STAMP_KEY = "Object Detector Processed"


class DetectSettings(BaseModel):
    """How to run a detector over media; round-trips through JSON to workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    img_min_side: int | None = Field(None, ge=8, le=8192, description="short side to resize to")
    img_max_side: int | None = Field(None, ge=8, le=16384, description="cap on the long side")
    batch_size: int = Field(1, ge=1, le=1024, description="frames per detector call")
    keep_threshold: float = Field(0.5, ge=0, le=1, description="drop boxes scoring below")
    nms_iou: float | None = Field(0.5, gt=0, le=1, description="NMS IoU (None: no NMS)")
    class_aware_nms: bool = True
    frame_stride: int = Field(1, ge=1, le=100_000, description="every n-th video frame")
    tracker: Literal["hungarian", "greedy", "none"] = "hungarian"
    track_iou: float = Field(0.3, gt=0, le=1)
    track_max_gap: int = Field(2, ge=0, le=10_000, description="missed frames a track survives")
    label_attr: str = Field("Species", min_length=1, max_length=100)
    confidence_attr: str = Field("Confidence", min_length=1, max_length=100)
    stamp_key: str = Field(STAMP_KEY, min_length=1, max_length=100)
    prefetch: int = Field(16, ge=0, le=1024, description="decoded frames queued (0: no thread)")
    force: bool = Field(False, description="process media already stamped")
