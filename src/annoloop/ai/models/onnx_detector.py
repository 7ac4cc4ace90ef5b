"""``onnx-detector``: any ONNX detection network run with onnxruntime.

The ONNX file is the model: :meth:`OnnxDetector.train` does not train, it packs the file
named by the ``model`` option (with its class names) into a state, so the file travels with
the project like any other state (bytes as a uint8 array in npz; no pickle). Options say how
to feed the network (input size, scale, mean/std, channel order, layout) and how to read it:
``postprocess="boxes"`` reads outputs of boxes (xyxy), scores and labels by name;
``postprocess="dbnet"`` thresholds a text probability map (DBNet, as in RapidOCR's PP-OCR
detector) into boxes.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annoloop.ai.base import Model, ModelInfo, ModelState, Predictions, TrainingData
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.progress import Progress, as_progress

__all__ = ["OnnxDetector", "OnnxDetectorOptions", "dbnet_options", "rapidocr_text_detector"]


class OnnxDetectorOptions(BaseModel):
    """Options of ``onnx-detector``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("", description="location of the .onnx file (read by train)")
    classes: list[str] = Field(default_factory=lambda: ["object"])
    input_size: list[int] | None = Field(None, description="fixed [height, width], or None")
    min_side: int | None = Field(None, ge=8, description="without input_size: short side")
    max_side: int | None = Field(1024, ge=8, description="without input_size: long side cap")
    size_multiple: int = Field(32, ge=1, le=256, description="input sides rounded to this")
    scale: float = Field(1 / 255, gt=0, description="pixels are multiplied by this first")
    mean: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = Field(default_factory=lambda: [1.0, 1.0, 1.0])
    channel_order: Literal["rgb", "bgr"] = "rgb"
    layout: Literal["nchw", "nhwc"] = "nchw"
    batch: bool = Field(True, description="stack images of a fixed input size in one run")
    postprocess: Literal["boxes", "dbnet"] = "boxes"
    boxes_output: str = "boxes"
    scores_output: str = "scores"
    labels_output: str = Field("labels", description="'' when the model has one class")
    label_offset: int = Field(0, ge=0, description="1 when label 0 is the background")
    boxes_relative: bool = Field(False, description="boxes in 0..1 instead of input pixels")
    score_threshold: float = Field(0.3, ge=0, le=1)
    dbnet_threshold: float = Field(0.3, gt=0, lt=1, description="pixel probability cut")
    dbnet_box_threshold: float = Field(0.5, ge=0, le=1, description="mean probability cut")
    dbnet_unclip: float = Field(1.6, ge=0, le=10, description="DBNet's unclip ratio")
    min_box_side: float = Field(3.0, ge=0, description="smaller regions are dropped (pixels)")
    device: str = "cpu"


def dbnet_options() -> dict[str, Any]:
    """Options for PP-OCR's DBNet text detector (RapidOCR's preprocessing)."""
    return {
        "classes": ["text"],
        "postprocess": "dbnet",
        "min_side": 736,
        "max_side": 2000,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "channel_order": "bgr",
    }


def rapidocr_text_detector() -> str:
    """Path of the PP-OCRv4 DBNet text detector shipped in ``rapidocr-onnxruntime``
    (found without importing the package, which needs OpenCV)."""
    from annoloop.backbones.builtin import _package_file

    return str(_package_file("rapidocr_onnxruntime", "models", "ch_PP-OCRv4_det_infer.onnx"))


class OnnxDetector(Model):
    """Boxes from an ONNX network (box outputs, or a DBNet probability map)."""

    info = ModelInfo(
        name="onnx-detector",
        author="annoloop",
        description="An ONNX detection network run with onnxruntime: outputs boxes (xyxy), "
        "scores, labels by name, or a DBNet probability map turned into boxes.",
        accepts=["bbox"],
        predicts="bbox",
        can_add_classes=False,
        can_remove_classes=False,
        version="1.0",
    )
    Options = OnnxDetectorOptions

    def state_from_file(self, location: Any = None) -> ModelState:
        """A state holding the ONNX file at ``location`` (default: the ``model`` option)."""
        from annoloop.storage import Location

        where = location or self.options["model"]
        if not where:
            raise InvalidInput("no ONNX file given (option 'model')", "onnx-detector")
        data = Location.parse(where).read_bytes()
        engine = self.engine_for(data)  # fails early on a broken file or wrong output names
        del engine
        return self.make_state(
            {"onnx": np.frombuffer(data, np.uint8)},
            self.options["classes"],
            {"n_train": 0.0, "onnx_bytes": float(len(data))},
        )

    def engine_for(self, model: bytes) -> Any:
        """An :class:`~annoloop.ai.models._vision_onnx.OnnxEngine` for ONNX bytes."""
        from annoloop.ai.models._vision_onnx import OnnxEngine

        return OnnxEngine(model, self.options, self.options["device"])

    def engine(self, state: ModelState) -> Any:
        """The engine of a state made by :meth:`state_from_file`."""
        arrays = self.check_state(state).arrays()
        if "onnx" not in arrays:
            raise InvalidInput("the state holds no ONNX model", "onnx-detector state")
        return self.engine_for(arrays["onnx"].tobytes())

    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        """No training: ONNX networks are trained elsewhere. Packs the ``model`` file (or
        returns ``state`` when no file is named)."""
        if not self.options["model"] and state is not None:
            return self.check_state(state)
        as_progress(progress)(1, 1, "ONNX model packed (not trainable here)")
        return self.state_from_file()

    def inference(
        self, state: ModelState, data: TrainingData, progress: Progress | None = None
    ) -> Predictions:
        """Boxes on each image of ``data`` above ``score_threshold``."""
        from annoloop.geometry.boxes import xyxy_to_cxcywh
        from annoloop.storage import Location, read_image

        report = as_progress(progress)
        engine = self.engine(state)
        parts = []
        for i, im in enumerate(data.images):
            pixels = read_image(Location.parse(im.location))
            h, w = pixels.shape[:2]
            boxes, scores, labels = engine.detect([pixels])[0]
            keep = scores >= self.options["score_threshold"]
            rel = np.clip(boxes[keep] / np.array([w, h, w, h]), 0, 1)
            parts.append(
                Annotations.from_boxes(
                    np.full(int(keep.sum()), im.id), xyxy_to_cxcywh(rel), labels[keep],
                    scores[keep], label_names=state.classes,
                )
            )  # fmt: skip
            report(i + 1, len(data.images), f"image {im.id}: {int(keep.sum())} boxes")
        ann = Annotations.concat(parts) if parts else Annotations.empty(state.classes)
        ann.label_names = list(state.classes)
        return Predictions(ann, state.classes)
