"""The :class:`Backbone`: a torch image model turned into ``uint8 patches -> feature rows``.

A backbone holds a module that maps normalised ``(N, 3, H, W)`` float images to ``(N, D)``
features, the per-channel mean and standard deviation it expects (on a 0..1 scale), and how to
run it: device, precision, channels-last layout. :meth:`Backbone.features` takes
``(N, H, W, 3)`` uint8 patches straight from an image array and does the rest (one copy to
the device, normalisation fused into one multiply-add, ``torch.inference_mode``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from annoloop.backbones.device import check_precision, resolve_device
from annoloop.errors import InvalidInput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone:
    """A feature extractor network ready for inference.

    ``module`` maps normalised images to ``(N, feature_dim)``; ``head`` (optional) maps those
    features to class logits (the ImageNet classifier of a pretrained model, for checks).
    ``mean`` / ``std`` are per-channel on the 0..1 scale (``(0, 0, 0)`` / ``(1, 1, 1)`` means
    plain 0..1 input, as PySpacer feeds its EfficientNet).
    """

    def __init__(
        self,
        name: str,
        module: Any,
        feature_dim: int,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        input_size: int = 224,
        head: Any = None,
        device: str | None = "auto",
        precision: str = "float32",
        channels_last: bool = True,
        categories: Sequence[str] | None = None,
    ) -> None:
        import torch

        self.name = name
        self.feature_dim = int(feature_dim)
        self.input_size = int(input_size)
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        self.channels_last = bool(channels_last)
        self.categories = list(categories) if categories else None
        mean_a = np.asarray(mean, dtype=np.float64).reshape(3)
        std_a = np.asarray(std, dtype=np.float64).reshape(3)
        if np.any(std_a <= 0):
            raise InvalidInput(f"std must be positive, got {tuple(std_a)}", f"backbone {name}")
        # x_norm = (x/255 - mean) / std = x * scale + shift, one fused op on the device
        self._scale = torch.tensor(1.0 / (255.0 * std_a), dtype=torch.float32).view(1, 3, 1, 1)
        self._shift = torch.tensor(-mean_a / std_a, dtype=torch.float32).view(1, 3, 1, 1)
        self._scale = self._scale.to(self.device)
        self._shift = self._shift.to(self.device)
        self.module = self._prepare(module)
        self.head = self._prepare(head) if head is not None else None

    def _prepare(self, module: Any) -> Any:
        import torch

        module = module.eval().to(self.device)
        for p in module.parameters():
            p.requires_grad_(False)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def __repr__(self) -> str:
        return (
            f"Backbone({self.name!r}, dim={self.feature_dim}, device={self.device}, "
            f"precision={self.precision})"
        )

    # ---------------------------------------------------------------------------- running
    def _autocast(self) -> Any:
        import torch

        if self.precision == "float32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def to_input(self, patches: np.ndarray) -> Any:
        """``(N, H, W, 3)`` uint8 -> normalised float tensor on the device (channels-last)."""
        import torch

        if patches.dtype != np.uint8 or patches.ndim != 4 or patches.shape[-1] != 3:
            raise InvalidInput(
                f"patches must be (N, H, W, 3) uint8, got {patches.dtype} {patches.shape}",
                f"backbone {self.name}",
            )
        t = torch.from_numpy(np.ascontiguousarray(patches)).to(self.device, non_blocking=True)
        # NHWC memory viewed as NCHW: exactly the channels-last layout, no copy
        t = t.permute(0, 3, 1, 2).float()
        t = t * self._scale + self._shift
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        else:
            t = t.contiguous()
        return t

    def run(self, fn: Callable[[Any], Any], patches: np.ndarray) -> np.ndarray:
        """Apply ``fn`` (a module) to one batch of uint8 patches -> float32 numpy rows."""
        import torch

        with torch.inference_mode(), self._autocast():
            out = fn(self.to_input(patches))
        return out.float().cpu().numpy()

    def features(self, patches: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 patches -> ``(N, feature_dim)`` float32 features."""
        if len(patches) == 0:
            return np.zeros((0, self.feature_dim), np.float32)
        return self.run(self.module, patches)

    def logits(self, patches: np.ndarray) -> np.ndarray:
        """Class logits of the pretrained head (ImageNet for the packaged backbones)."""
        if self.head is None:
            raise InvalidInput(f"backbone {self.name} has no classification head")
        head = self.head

        def both(x: Any) -> Any:
            return head(self.module(x))

        return self.run(both, patches)
