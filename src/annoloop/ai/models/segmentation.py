"""``segmentation``: a small U-Net-style decoder on the pretrained MobileNetV2 encoder,
trained on the project's masks and polygons (rasterised with
:func:`~annoloop.geometry.masks.polygon_to_mask`), binary or multi-class.

Predictions are masks as COCO RLE (:func:`~annoloop.geometry.masks.rle_encode`): one per
class present in an image, or one per connected region with ``instances``. The state blob is
the network's state dict as safetensors bytes. The first ``frozen_blocks`` encoder blocks
stay frozen and their outputs are computed once per augmented image, so CPU training pays
only for the decoder and the deep blocks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annoloop.ai.base import Model, ModelInfo, ModelState, Predictions, TrainingData
from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.progress import Progress, as_progress

__all__ = ["Segmentation", "SegmentationOptions", "label_map", "mask_iou"]

_HEAD_W, _HEAD_B = "head.weight", "head.bias"


class SegmentationOptions(BaseModel):
    """Options of ``segmentation``."""

    model_config = ConfigDict(extra="forbid")

    image_size: int = Field(256, ge=32, le=4096, description="short side the net sees (/32)")
    iterations: int = Field(80, ge=1, le=1_000_000)
    time_limit_s: float = Field(0.0, ge=0, description="stop training after this (0: no cap)")
    learning_rate: float = Field(3e-3, gt=0, le=1, description="Adam")
    weight_decay: float = Field(1e-4, ge=0, le=1)
    frozen_blocks: int = Field(14, ge=0, le=19, description="encoder blocks kept frozen")
    augment: bool = True
    instances: bool = Field(False, description="one mask per connected region")
    min_area: int = Field(20, ge=0, description="regions smaller than this (pixels) dropped")
    warm_start: bool = True
    device: str = "auto"
    seed: int = 0


def label_map(data: TrainingData, image_id: int, width: int, height: int) -> np.ndarray:
    """(height, width) int64 map of an image: 0 background, class index + 1 where a polygon
    or mask of that class lies (later annotations paint over earlier ones)."""
    from annoloop.geometry.masks import polygon_to_mask, rle_decode

    ann = data.annotations
    out = np.zeros((height, width), np.int64)
    rows = np.flatnonzero((ann.image == image_id) & (ann.label >= 0))
    for i in rows.tolist():  # one raster per shape: no vector form of the fill exists
        kind = int(ann.kind[i])
        if kind == int(Kind.POLYGON):
            mask = polygon_to_mask(ann.shape[i], width, height)
        elif kind == int(Kind.MASK):
            mask = rle_decode(ann.shape[i])
            if mask.shape != (height, width):
                raise InvalidInput(
                    f"mask of annotation {i} is {mask.shape[1]}x{mask.shape[0]}, "
                    f"image {image_id} is {width}x{height}",
                    "training data of segmentation",
                )
        else:
            continue
        out[mask] = int(ann.label[i]) + 1
    return out


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def _net_size(w: int, h: int, short: int) -> tuple[int, int]:
    scale = short / min(w, h)
    return max(32, round(w * scale / 32) * 32), max(32, round(h * scale / 32) * 32)


class Segmentation(Model):
    """Masks from a U-Net-style decoder on MobileNetV2."""

    info = ModelInfo(
        name="segmentation",
        author="annoloop",
        description="U-Net-style decoder on the ImageNet-pretrained MobileNetV2 encoder, "
        "trained on polygons and masks; predicts COCO RLE masks (per class or per region).",
        accepts=["polygon", "mask"],
        predicts="mask",
        can_add_classes=True,
        can_remove_classes=True,
        version="1.0",
    )
    Options = SegmentationOptions

    # -- states ---------------------------------------------------------------------------
    def _network(self, state: ModelState | None, n_classes: int) -> tuple[Any, Any]:
        from annoloop.ai.blobs import unpack_torch
        from annoloop.ai.models._vision_unet import build_unet
        from annoloop.backbones.device import resolve_device

        dev = resolve_device(self.options["device"])
        net = build_unet(n_classes + 1, pretrained=state is None)
        if state is not None:
            try:
                net.load_state_dict(unpack_torch(state.blob, "segmentation state"), strict=True)
            except RuntimeError as exc:
                raise InvalidInput(
                    f"state does not fit the network: {str(exc)[:300]}", "segmentation state"
                ) from None
        return net.to(dev), dev

    def update_classes(self, state: ModelState, classes: Sequence[str]) -> ModelState:
        """Rows of the 1x1 head: kept classes keep theirs, new ones get the mean row with a
        bias below every other (row 0 is the background)."""
        from annoloop.ai.base import _repack

        classes = list(classes)
        if len(set(classes)) != len(classes):
            raise InvalidInput(f"class names repeat: {classes}", "update_classes")
        if classes == state.classes:
            return state
        arrays = state.arrays()
        w, b = arrays[_HEAD_W], arrays[_HEAD_B]
        old = {c: i + 1 for i, c in enumerate(state.classes)}
        src = np.array([0, *[old.get(c, -1) for c in classes]])
        new = src < 0
        out_w, out_b = w[np.where(new, 0, src)].copy(), b[np.where(new, 0, src)].copy()
        if new.any():
            out_w[new] = w[1:].mean(0) if len(w) > 1 else 0.0
            out_b[new] = b.min() - 1.0
        arrays[_HEAD_W], arrays[_HEAD_B] = out_w, out_b
        metrics = {**state.metrics, "classes_added": float(new.sum())}
        return ModelState(_repack(state.blob, arrays), classes, dict(state.options), metrics,
                          state.model)  # fmt: skip

    # -- training -------------------------------------------------------------------------
    def _samples(self, data: TrainingData) -> list[tuple[np.ndarray, np.ndarray]]:
        from PIL import Image

        from annoloop.storage import Location, read_image

        shaped = np.isin(data.annotations.kind, [int(Kind.POLYGON), int(Kind.MASK)])
        with_shapes = set(data.annotations.image[shaped & (data.annotations.label >= 0)].tolist())
        out = []
        for im in data.images:
            if im.id not in with_shapes:
                continue
            pixels = read_image(Location.parse(im.location))
            h, w = pixels.shape[:2]
            labels = label_map(data, im.id, w, h)
            size = _net_size(w, h, self.options["image_size"])
            x = np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))
            y = np.asarray(Image.fromarray(labels.astype(np.int32)).resize(size, Image.NEAREST))
            out.append((x, y.astype(np.int64)))
        return out

    def train(
        self, state: ModelState | None, data: TrainingData, progress: Progress | None = None
    ) -> ModelState:
        """Adam on per-pixel cross entropy over the polygons and masks of ``data``."""
        import torch
        import torch.nn.functional as F

        from annoloop.ai.blobs import pack_torch
        from annoloop.ai.models._vision_frcnn import to_tensor

        report = as_progress(progress)
        o = self.options
        data.validate("training data of segmentation")
        samples = self._samples(data)
        if not samples or not data.classes:
            raise InvalidInput("no polygons or masks to train on", "training data of segmentation")
        torch.manual_seed(o["seed"])
        rng = np.random.default_rng(o["seed"])
        if state is not None and o["warm_start"]:
            state = self.update_classes(self.check_state(state), data.classes)
            net, dev = self._network(state, len(data.classes))
        else:
            net, dev = self._network(None, len(data.classes))
        k = o["frozen_blocks"]
        for i, block in enumerate(net.encoder):
            block.requires_grad_(i >= k)
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=o["learning_rate"], weight_decay=o["weight_decay"])
        net.train()
        for i, block in enumerate(net.encoder):  # frozen blocks keep their batch-norm stats
            if i < k:
                block.eval()
        cache: dict[tuple[int, bool, bool], Any] = {}
        losses: list[float] = []
        start = time.perf_counter()
        step = 0
        for step in range(1, o["iterations"] + 1):
            j = int(rng.integers(len(samples)))
            fx = bool(o["augment"] and rng.random() < 0.5)
            fy = bool(o["augment"] and rng.random() < 0.5)
            x, y = samples[j]
            if fx:
                x, y = x[:, ::-1], y[:, ::-1]
            if fy:
                x, y = x[::-1], y[::-1]
            xt = to_tensor(x, dev)[None]
            frozen = None
            if k:
                if (j, fx, fy) not in cache:
                    cache[(j, fx, fy)] = net.encode_frozen(xt, k)
                frozen = (k, *cache[(j, fx, fy)])
            logits = net(xt, frozen)
            target = torch.from_numpy(np.ascontiguousarray(y))[None].to(dev)
            loss = F.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            report(step, o["iterations"], f"loss {losses[-1]:.4f}")
            if o["time_limit_s"] and time.perf_counter() - start > o["time_limit_s"]:
                break
        m = max(1, min(5, len(losses) // 4))
        metrics = {
            "n_train": float(len(samples)),
            "loss_start": float(np.mean(losses[:m])),
            "loss_end": float(np.mean(losses[-m:])),
            "iterations": float(step),
        }
        net.eval()
        return ModelState(pack_torch(net.state_dict(), {"arch": "mobilenet_v2_unet"}),
                          list(data.classes), dict(o), metrics, self.info.name)  # fmt: skip

    # -- inference ------------------------------------------------------------------------
    def predict_map(self, net: Any, dev: Any, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class map 0..C at the image's size, probability of the chosen class)."""
        import torch
        import torch.nn.functional as F
        from PIL import Image

        from annoloop.ai.models._vision_frcnn import to_tensor

        h, w = pixels.shape[:2]
        size = _net_size(w, h, self.options["image_size"])
        x = np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))
        with torch.inference_mode():
            logits = net(to_tensor(x, dev)[None])
            probs = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            probs = probs.softmax(1)[0]
            conf, cls = probs.max(0)
        return cls.cpu().numpy(), conf.float().cpu().numpy()

    def inference(
        self, state: ModelState, data: TrainingData, progress: Progress | None = None
    ) -> Predictions:
        """Masks (COCO RLE) per class present, or per region with ``instances``."""
        from scipy import ndimage

        from annoloop.geometry.masks import rle_encode
        from annoloop.storage import Location, read_image

        report = as_progress(progress)
        net, dev = self._network(self.check_state(state), len(state.classes))
        net.eval()
        o = self.options
        rows: dict[str, list[Any]] = {"image": [], "label": [], "box": [], "conf": [], "rle": []}
        for n, im in enumerate(data.images):
            pixels = read_image(Location.parse(im.location))
            h, w = pixels.shape[:2]
            cls, conf = self.predict_map(net, dev, pixels)
            for c in np.unique(cls[cls > 0]).tolist():
                mask = cls == c
                regions, count = (
                    ndimage.label(mask) if o["instances"] else (mask.astype(np.int32), 1)
                )
                if count == 0:
                    continue
                index = np.arange(1, count + 1)
                areas = ndimage.sum_labels(np.ones_like(conf), regions, index)
                means = ndimage.mean(conf, regions, index)
                slices = ndimage.find_objects(regions)
                for r in np.flatnonzero(areas >= max(1, o["min_area"])).tolist():
                    sl = slices[r]
                    y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
                    rows["image"].append(im.id)
                    rows["label"].append(c - 1)
                    rows["box"].append([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h,
                                        (x1 - x0) / w, (y1 - y0) / h])  # fmt: skip
                    rows["conf"].append(float(means[r]))
                    rows["rle"].append(rle_encode(regions == r + 1))
            report(n + 1, len(data.images), f"image {im.id}")
        count = len(rows["image"])
        ann = Annotations(
            image=np.asarray(rows["image"], np.int64),
            kind=np.full(count, int(Kind.MASK), np.int8),
            label=np.asarray(rows["label"], np.int64),
            box=np.asarray(rows["box"], np.float64).reshape(count, 4),
            confidence=np.asarray(rows["conf"], np.float32),
            shape=rows["rle"],
            label_names=state.classes,
        )
        return Predictions(ann, state.classes)
