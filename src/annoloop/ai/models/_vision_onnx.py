"""Running an ONNX detection network with onnxruntime: pre-processing, the session, and the
two output decoders (box outputs, or a DBNet probability map thresholded into boxes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput, MissingDependency

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy pixels, scores, class index


def _session(model: bytes, device: str) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime comes with the torch extra
        raise MissingDependency("onnxruntime", "torch") from None
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(model, sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own types on bad files
        raise InvalidInput(f"not a loadable ONNX model ({str(exc)[:300]})", "onnx model") from None


class OnnxEngine:
    """An ONNX detector session with its options (see ``OnnxDetectorOptions``)."""

    def __init__(self, model: bytes, options: dict[str, Any], device: str = "cpu") -> None:
        self.options = options
        self.session = _session(model, device)
        self.input = self.session.get_inputs()[0]
        self.output_names = [o.name for o in self.session.get_outputs()]
        if options["postprocess"] == "boxes":
            want = [options["boxes_output"], options["scores_output"]]
            if options["labels_output"]:
                want.append(options["labels_output"])
            missing = [n for n in want if n not in self.output_names]
            if missing:
                raise InvalidInput(
                    f"the model has no output {missing[0]!r}; its outputs are {self.output_names}",
                    "onnx-detector options",
                )

    # -- pre-processing ---------------------------------------------------------------------
    def _input_size(self, h: int, w: int) -> tuple[int, int]:
        o = self.options
        if o["input_size"]:
            return int(o["input_size"][0]), int(o["input_size"][1])
        from annoloop.detect.media import resize_factor

        scale = resize_factor(w, h, o["min_side"], o["max_side"])
        m = o["size_multiple"]
        return max(m, round(h * scale / m) * m), max(m, round(w * scale / m) * m)

    def _tensor(self, pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        from PIL import Image

        o = self.options
        if pixels.shape[:2] != size:
            pixels = np.asarray(Image.fromarray(pixels).resize((size[1], size[0]), Image.BILINEAR))
        x = pixels.astype(np.float32) * np.float32(o["scale"])
        if o["channel_order"] == "bgr":
            x = x[..., ::-1]
        x = (x - np.asarray(o["mean"], np.float32)) / np.asarray(o["std"], np.float32)
        return x.transpose(2, 0, 1) if o["layout"] == "nchw" else x

    # -- running ----------------------------------------------------------------------------
    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections per image, in that image's pixels."""
        out: list[Detections] = []
        fixed = bool(self.options["input_size"])
        batch = self.options["batch"] and fixed
        groups = [list(range(len(images)))] if batch else [[i] for i in range(len(images))]
        for group in groups:
            sizes = [self._input_size(*images[i].shape[:2]) for i in group]
            x = np.stack([self._tensor(images[i], s) for i, s in zip(group, sizes, strict=True)])
            results = self.session.run(None, {self.input.name: x})
            named = dict(zip(self.output_names, results, strict=True))
            for k, i in enumerate(group):
                h, w = images[i].shape[:2]
                sh, sw = sizes[k]
                if self.options["postprocess"] == "dbnet":
                    det = dbnet_boxes(np.asarray(results[0])[k], self.options)
                else:
                    det = self._boxes(named, k)
                boxes = det[0]
                if not self.options["boxes_relative"]:
                    boxes = boxes / np.array([sw, sh, sw, sh])
                out.append((boxes * np.array([w, h, w, h]), det[1], det[2]))
        return out

    def _boxes(self, named: dict[str, Any], k: int) -> Detections:
        o = self.options
        boxes = np.asarray(named[o["boxes_output"]], np.float64)
        scores = np.asarray(named[o["scores_output"]], np.float32)
        labels = named.get(o["labels_output"]) if o["labels_output"] else None
        # batched outputs (B, N, 4) or unbatched (N, 4) for a batch of one
        if boxes.ndim == 3:
            boxes, scores = boxes[k], scores[k]
            labels = None if labels is None else np.asarray(labels)[k]
        boxes = boxes.reshape(-1, 4)
        scores = scores.reshape(-1)
        if len(scores) != len(boxes):
            raise InvalidInput(
                f"{len(boxes)} boxes but {len(scores)} scores in the model output", "onnx output"
            )
        labels = np.zeros(len(boxes), np.int64) if labels is None else np.asarray(labels)
        labels = labels.reshape(-1).astype(np.int64) - int(o["label_offset"])
        ok = (labels >= 0) & (labels < len(o["classes"]))
        return boxes[ok], scores[ok], labels[ok]


def dbnet_boxes(prob: np.ndarray, options: dict[str, Any]) -> Detections:
    """Boxes (xyxy, in map pixels) of a DBNet text probability map: threshold, connected
    components, mean probability per component as score, then each box grown by DBNet's
    unclip distance (area * ratio / perimeter), since DBNet predicts shrunk text regions."""
    from scipy import ndimage

    prob = np.asarray(prob, np.float32)
    while prob.ndim > 2:
        prob = prob[0]
    h, w = prob.shape
    regions, n = ndimage.label(prob > options["dbnet_threshold"])
    if n == 0:
        return np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros(0, np.int64)
    index = np.arange(1, n + 1)
    scores = np.asarray(ndimage.mean(prob, regions, index), np.float32)
    slices = ndimage.find_objects(regions)
    box = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices], np.float64)
    bw, bh = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    grow = bw * bh * options["dbnet_unclip"] / np.maximum(2 * (bw + bh), 1e-6)
    box += np.column_stack([-grow, -grow, grow, grow])
    box = np.clip(box, 0, [w, h, w, h])
    keep = (scores >= options["dbnet_box_threshold"]) & (
        np.minimum(bw, bh) >= options["min_box_side"]
    )
    return box[keep], scores[keep], np.zeros(int(keep.sum()), np.int64)
