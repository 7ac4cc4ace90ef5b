"""``detector``: Faster R-CNN on the pretrained MobileNetV2 backbone, trained on the
project's boxes; or a user's torchvision detector loaded from a weights file.

The state blob is the network's state dict as safetensors bytes (no pickle) with the
architecture and image sizes in its metadata. :meth:`Detector.from_weights` turns a user's
state-dict file for ``fasterrcnn_mobilenet_v3_large_fpn``, ``fasterrcnn_resnet50_fpn`` and
the other names of :data:`TORCHVISION_ARCHS` into a state (loaded with
``torch.load(weights_only=True)``). :meth:`Detector.update_classes` replaces the rows of the
box predictor: rows of kept classes stay, new classes start from the mean row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annoloop.ai.base import Model, ModelInfo, ModelState, Predictions, TrainingData
from annoloop.ai.models._vision_frcnn import (
    BUILTIN_ARCH,
    TORCHVISION_ARCHS,
    CachedPrefix,
    build_builtin,
    build_torchvision,
    predict,
    to_tensor,
)
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress, as_progress

__all__ = ["TORCHVISION_ARCHS", "Detector", "DetectorOptions", "load_network"]

_CLS_W = "roi_heads.box_predictor.cls_score.weight"
_CLS_B = "roi_heads.box_predictor.cls_score.bias"
_BOX_W = "roi_heads.box_predictor.bbox_pred.weight"
_BOX_B = "roi_heads.box_predictor.bbox_pred.bias"


class DetectorOptions(BaseModel):
    """Options of ``detector``."""

    model_config = ConfigDict(extra="forbid")

    arch: str = Field(BUILTIN_ARCH, description=f"{BUILTIN_ARCH} or a torchvision detector")
    min_size: int = Field(320, ge=32, le=4096, description="short image side the net sees")
    max_size: int = Field(640, ge=32, le=8192, description="cap on the long side")
    iterations: int = Field(200, ge=1, le=1_000_000, description="training steps")
    time_limit_s: float = Field(0.0, ge=0, description="stop training after this (0: no cap)")
    min_iterations: int = Field(0, ge=0, description="steps run even past time_limit_s")
    batch_size: int = Field(1, ge=1, le=256)
    learning_rate: float = Field(0.02, gt=0, le=10, description="SGD with momentum 0.9")
    weight_decay: float = Field(1e-4, ge=0, le=1)
    frozen_blocks: int = Field(
        14,
        ge=0,
        le=19,
        description="first MobileNetV2 blocks kept frozen; their output is computed once per "
        "augmented image and reused (CPU training speed, small data)",
    )
    augment: bool = Field(True, description="random flips and multi-scale training")
    score_threshold: float = Field(0.05, ge=0, le=1, description="drop weaker detections")
    nms_iou: float = Field(0.5, gt=0, le=1, description="per-class NMS in the network")
    detections_per_image: int = Field(100, ge=1, le=10_000)
    neck_channels: int = Field(
        256, ge=0, le=4096, description="1x1 conv after the backbone (0: the 1280 channels)"
    )
    proposals: int = Field(300, ge=1, le=10_000, description="RPN proposals kept per image")
    rois_per_image: int = Field(128, ge=1, le=4096, description="RoIs sampled per image")
    warm_start: bool = Field(True, description="continue from the given state")
    device: str = "auto"
    seed: int = 0


def _net_kwargs(o: dict[str, Any]) -> dict[str, Any]:
    # fewer proposals and sampled rois than torchvision's defaults (2000 / 512): the RoI
    # head dominates a CPU step, and annotation projects have tens of objects per image
    return {
        "box_score_thresh": o["score_threshold"],
        "box_nms_thresh": o["nms_iou"],
        "box_detections_per_img": o["detections_per_image"],
        "rpn_pre_nms_top_n_train": 1000,
        "rpn_post_nms_top_n_train": o["proposals"],
        "rpn_pre_nms_top_n_test": 1000,
        "rpn_post_nms_top_n_test": o["proposals"],
        "box_batch_size_per_image": o["rois_per_image"],
    }


def build_network(arch: str, num_classes: int, options: dict[str, Any]) -> Any:
    """An untrained network of ``arch`` (the built-in one has pretrained backbone weights)."""
    kw = _net_kwargs(options)
    if arch == BUILTIN_ARCH:
        return build_builtin(
            num_classes,
            min_size=options["min_size"],
            max_size=options["max_size"],
            neck_channels=options["neck_channels"],
            **kw,
        )
    extra = {"min_size": options["min_size"], "max_size": options["max_size"]}
    if arch.startswith("fasterrcnn"):
        extra.update(kw)
    elif arch.startswith(("retinanet", "fcos")):
        extra.update(score_thresh=options["score_threshold"], nms_thresh=options["nms_iou"])
    elif arch.startswith("ssd"):
        extra = {}
    return build_torchvision(arch, num_classes, **extra)


def load_network(
    state: ModelState, device: str = "auto", options: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """(network, device): the torch network of a ``detector`` state in eval mode."""
    from annoloop.ai.blobs import blob_metadata, unpack_torch
    from annoloop.backbones.device import resolve_device

    o = {**Detector.default_options(), **state.options, **(options or {})}
    arch = blob_metadata(state.blob).get("arch", o["arch"])
    net = build_network(arch, len(state.classes), o)
    tensors = unpack_torch(state.blob, "detector state")
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InvalidInput(
            f"state does not fit {arch}: {str(exc)[:400]}", "detector state"
        ) from None
    dev = resolve_device(device)
    return net.to(dev).eval(), dev


class Detector(Model):
    """Boxes from Faster R-CNN (MobileNetV2 backbone, or a torchvision detector's weights)."""

    info = ModelInfo(
        name="detector",
        author="annoloop",
        description="Faster R-CNN on the ImageNet-pretrained MobileNetV2 backbone, trained on "
        "the project's boxes; or a user's torchvision detector weights by name.",
        accepts=["bbox", "polygon", "mask"],
        predicts="bbox",
        can_add_classes=True,
        can_remove_classes=True,
        version="1.0",
    )
    Options = DetectorOptions

    # -- states -----------------------------------------------------------------------------
    def _state(self, net: Any, classes: Sequence[str], metrics: dict[str, float]) -> ModelState:
        from annoloop.ai.blobs import pack_torch

        meta = {"arch": self.options["arch"], "min_size": str(self.options["min_size"])}
        return ModelState(
            blob=pack_torch(net.state_dict(), meta),
            classes=list(classes),
            options=dict(self.options),
            metrics=dict(metrics),
            model=self.info.name,
        )

    @classmethod
    def from_weights(
        cls,
        arch: str,
        weights: Any,
        classes: Sequence[str],
        options: dict[str, Any] | None = None,
    ) -> ModelState:
        """A state from a user's torchvision detector weights (a state-dict file, loaded with
        ``weights_only=True``); ``classes`` name its outputs 1..N (0 is the background)."""
        from annoloop.backbones.weights import load_into, load_state_dict

        model = cls({**(options or {}), "arch": arch})
        net = build_network(arch, len(classes), model.options)
        load_into(net, load_state_dict(weights), f"{arch} weights {weights}")
        return model._state(net, classes, {"n_train": 0.0})

    def update_classes(self, state: ModelState, classes: Sequence[str]) -> ModelState:
        """Replace the box predictor rows: kept classes keep theirs (reordered), new classes
        get the mean row (class bias below every other, so they do not win untrained)."""
        classes = list(classes)
        where = "update_classes of model 'detector'"
        if len(set(classes)) != len(classes):
            raise InvalidInput(f"class names repeat: {classes}", where)
        if classes == state.classes:
            return state
        from annoloop.ai.base import _repack

        arrays = state.arrays()
        if _CLS_W not in arrays:
            raise InvalidInput("the state has no Faster R-CNN box predictor to update", where)
        old = {c: i + 1 for i, c in enumerate(state.classes)}  # row 0 is the background
        src = np.array([0, *[old.get(c, -1) for c in classes]], np.int64)
        new = src < 0
        cls_w, cls_b = arrays[_CLS_W], arrays[_CLS_B]
        box_w = arrays[_BOX_W].reshape(-1, 4, arrays[_BOX_W].shape[-1])
        box_b = arrays[_BOX_B].reshape(-1, 4)
        pick = np.where(new, 0, src)
        out_cls_w, out_cls_b = cls_w[pick].copy(), cls_b[pick].copy()
        out_box_w, out_box_b = box_w[pick].copy(), box_b[pick].copy()
        if new.any():
            out_cls_w[new] = cls_w[1:].mean(0) if len(cls_w) > 1 else 0.0
            out_cls_b[new] = cls_b.min() - 1.0
            out_box_w[new] = box_w[1:].mean(0) if len(box_w) > 1 else 0.0
            out_box_b[new] = box_b[1:].mean(0) if len(box_b) > 1 else 0.0
        arrays.update(
            {
                _CLS_W: out_cls_w,
                _CLS_B: out_cls_b,
                _BOX_W: out_box_w.reshape(-1, out_box_w.shape[-1]),
                _BOX_B: out_box_b.reshape(-1),
            }
        )
        metrics = dict(state.metrics)
        metrics["classes_added"] = float(new.sum())
        metrics["classes_removed"] = float(sum(c not in classes for c in state.classes))
        return ModelState(_repack(state.blob, arrays), classes, dict(state.options), metrics,
                          state.model)  # fmt: skip

    # -- training ---------------------------------------------------------------------------
    def _targets(self, data: TrainingData) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        from annoloop.geometry.boxes import cxcywh_to_xyxy
        from annoloop.storage import Location, read_image

        ann = data.annotations
        use = (ann.kind != int(Kind.LABEL)) & (ann.kind != int(Kind.POINT)) & (ann.label >= 0)
        use &= np.all(np.isfinite(ann.box), axis=1) & (ann.box[:, 2] > 0) & (ann.box[:, 3] > 0)
        out = []
        for im in data.images:
            rows = use & (ann.image == im.id)
            if not rows.any():
                continue  # images without boxes are skipped (no negatives mined from them)
            pixels = read_image(Location.parse(im.location))
            h, w = pixels.shape[:2]
            xyxy = cxcywh_to_xyxy(ann.box[rows]) * np.array([w, h, w, h])
            out.append((pixels, {"boxes": xyxy, "labels": ann.label[rows] + 1}))
        return out

    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        """SGD on the boxes (polygons and masks count by their box) of ``data``."""
        import torch

        from annoloop.backbones.device import resolve_device

        report = as_progress(progress)
        o = self.options
        data.validate("training data of detector")
        if not data.classes:
            raise InvalidInput("no classes to train on", "training data of detector")
        samples = self._targets(data)
        if not samples:
            raise InvalidInput("no boxes to train on", "training data of detector")
        torch.manual_seed(o["seed"])
        rng = np.random.default_rng(o["seed"])
        if state is not None and o["warm_start"]:
            state = self.update_classes(self.check_state(state), data.classes)
            net, dev = load_network(state, o["device"], o)
        else:
            dev = resolve_device(o["device"])
            net = build_network(o["arch"], len(data.classes), o).to(dev)
        cached = None
        if o["arch"] == BUILTIN_ARCH:
            for i, block in enumerate(net.backbone):
                block.requires_grad_(i >= o["frozen_blocks"])
            if o["frozen_blocks"]:
                cached = CachedPrefix(net, o["frozen_blocks"])
                cached.install()
        scales = [o["min_size"]]
        if o["augment"]:
            scales = sorted({int(o["min_size"] * f) for f in (0.8, 1.0, 1.2)})
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.SGD(
            params, lr=o["learning_rate"], momentum=0.9, weight_decay=o["weight_decay"]
        )
        warmup = min(20, o["iterations"] // 5 + 1)
        net.train()
        # frozen batch norm: batches of 2 are too small for batch statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
        losses: list[float] = []
        start = time.perf_counter()
        step = 0
        for step in range(1, o["iterations"] + 1):
            for g in opt.param_groups:
                g["lr"] = o["learning_rate"] * min(1.0, step / warmup)
            picks = rng.integers(0, len(samples), o["batch_size"])
            size = int(rng.choice(scales))
            net.transform.min_size = (size,)
            images, targets, key = [], [], [size]
            for k in picks.tolist():
                pixels, tgt = samples[k]
                boxes = tgt["boxes"].copy()
                h, w = pixels.shape[:2]
                flip_x = bool(o["augment"] and rng.random() < 0.5)
                flip_y = bool(o["augment"] and rng.random() < 0.5)
                key.append((k, flip_x, flip_y))
                if flip_x:
                    pixels = pixels[:, ::-1]
                    boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
                if flip_y:
                    pixels = pixels[::-1]
                    boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
                images.append(to_tensor(pixels, dev))
                targets.append(
                    {
                        "boxes": torch.as_tensor(boxes, dtype=torch.float32, device=dev),
                        "labels": torch.as_tensor(tgt["labels"], dtype=torch.int64, device=dev),
                    }
                )
            if cached is not None:
                cached.key = tuple(key)
            loss_dict = net(images, targets)
            loss = sum(loss_dict.values())
            if not torch.isfinite(loss):
                raise InvalidInput(f"training diverged at step {step} (loss {loss.item()})",
                                   "detector learning_rate")  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            report(step, o["iterations"], f"loss {losses[-1]:.3f}")
            over = o["time_limit_s"] and time.perf_counter() - start > o["time_limit_s"]
            if over and step >= o["min_iterations"]:
                break
        net.transform.min_size = (o["min_size"],)
        if cached is not None:
            cached.remove()
        k = max(1, min(10, len(losses) // 4))
        metrics = {
            "n_train": float(len(samples)),
            "loss_start": float(np.mean(losses[:k])),
            "loss_end": float(np.mean(losses[-k:])),
            "iterations": float(step),
            "train_seconds": time.perf_counter() - start,
        }
        self.loss_history = losses
        return self._state(net.eval(), data.classes, metrics)

    # -- inference --------------------------------------------------------------------------
    def inference(
        self, state: ModelState, data: TrainingData, progress: Progress | None = None
    ) -> Predictions:
        """Boxes on every image of ``data`` (relative centre boxes, label, confidence)."""
        from annoloop.geometry.boxes import xyxy_to_cxcywh
        from annoloop.storage import Location, read_image

        report = as_progress(progress)
        net, dev = load_network(self.check_state(state), self.options["device"], self.options)
        parts = []
        for i, im in enumerate(data.images):
            pixels = read_image(Location.parse(im.location))
            h, w = pixels.shape[:2]
            boxes, scores, labels = predict(net, [pixels], dev)[0]
            rel = xyxy_to_cxcywh(np.clip(boxes / np.array([w, h, w, h]), 0.0, 1.0))
            parts.append(
                Annotations.from_boxes(
                    np.full(len(rel), im.id), rel, labels, scores, label_names=state.classes
                )
            )
            report(i + 1, len(data.images), f"image {im.id}: {len(rel)} boxes")
        ann = Annotations.concat(parts) if parts else Annotations.empty(state.classes)
        ann.label_names = list(state.classes)
        return Predictions(ann, state.classes)
